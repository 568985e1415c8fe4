//! The attempt loop: begin an attempt (journaled before anything leaves), send it,
//! judge the answer, and let the retry rule say what follows. A sync call runs
//! it to the end on the caller's thread, sleeping through backoffs; a worker runs
//! one attempt and hands a retry back to the queue.

use super::classify::{self, Judged};
use super::queue::{Begun, Claimed, NextClaim};
use super::{failed_final, sdk_output, Core, Outcome};
use crate::error::{Code, Error, Result};
use crate::journal::{Attempt, CallMode, Final, Inserted, NewRequest, Next, RequestRow, Start, State};
use crate::logging;
use crate::protocol::envelope::{self, CallInput, SendTime};
use crate::protocol::retry::{self, Decision};

/// Who runs the attempts of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// The calling thread, to the end, sleeping through backoffs (sync calls).
    Inline,
    /// A worker, one attempt at a time; a retry goes back to the queue.
    Worker,
}

/// The row of a request just inserted, as the journal now holds it.
fn inserted_row(req: &NewRequest, ins: Inserted, attempts: i64) -> RequestRow {
    RequestRow {
        id: ins.id,
        msgid: ins.msgid,
        infno: req.infno.clone(),
        mode: req.mode,
        priority: req.priority,
        state: State::Sending,
        envelope: ins.envelope,
        attempts,
        mi_code: None,
        result: None,
        last_error: None,
        reversal_of: req.reversal_of,
        reversed_by: None,
        created_at: ins.created_at.clone(),
        updated_at: ins.created_at,
    }
}

impl Core {
    /// A sync call from its parsed input to its outcome. The request row and its
    /// first attempt are committed together, with the envelope as it goes out (but
    /// for what `protocol::wire` adds on the wire only), so the common case costs two journal commits: one before the send and
    /// one after. `Err` means nothing was journaled.
    pub fn call_sync(&self, infno: &str, call: &CallInput) -> Result<Outcome> {
        self.call_sync_from(infno, call, None)
    }

    /// `call_sync` for a request from outside the ABI under a unique name (`source`,
    /// a bridge row): the journal refuses the same source twice, and a process that
    /// takes over finds what was sent under it.
    pub fn call_sync_from(&self, infno: &str, call: &CallInput, source: Option<&str>) -> Result<Outcome> {
        let opter = call.opter(&self.cfg).to_string();
        let sign_no = match self.sign_no_if_needed(infno, &opter) {
            Ok(s) => s,
            Err(e) => {
                // Journaled all the same, as failed and never sent: the HIS asked.
                let row = self.journal_claimed(infno, call, None)?;
                return self.finish_unsent(&row, e);
            }
        };
        let req = NewRequest { source: source.map(str::to_owned), ..Core::new_request(infno, call, CallMode::Sync, 0) };
        let inf_time = envelope::format_inf_time(self.clock.local());
        let ins = self.journal.write(|tx| {
            tx.insert(&req, Start::Sending(&self.owner), |msgid| {
                envelope::text(&self.cfg, infno, call, &SendTime { msgid, inf_time: &inf_time, sign_no: &sign_no })
            })
        })?;
        let begun = Begun { no: 1, msgid: ins.msgid.clone(), envelope: ins.envelope.clone() };
        let row = inserted_row(&req, ins, 1);
        let id = row.id;
        Ok(self.run(&row, Runner::Inline, &opter, sign_no, Some(begun), None).unwrap_or_else(|e| self.failed(id, e)))
    }

    /// Commits a new request claimed by this process, no attempt begun yet (a
    /// sign-in, a reversal): from here on it is never lost. A reversal is linked to
    /// its original in the same commit.
    pub(super) fn journal_claimed(
        &self,
        infno: &str,
        call: &CallInput,
        reversal_of: Option<i64>,
    ) -> Result<RequestRow> {
        let req = NewRequest { reversal_of, ..Core::new_request(infno, call, CallMode::Sync, 0) };
        let ins = self.journal.write(|tx| {
            let ins = tx.insert(&req, Start::Claimed(&self.owner), |m| self.envelope_text(infno, m, call))?;
            if let Some(original) = reversal_of {
                tx.link_reversal(original, ins.id)?;
            }
            Ok(ins)
        })?;
        Ok(inserted_row(&req, ins, 0))
    }

    /// Sends a claimed request once (a worker's turn). With `next`, the worker's next
    /// request is claimed in the commit that records this one's outcome.
    pub fn execute_claimed(&self, c: Claimed, next: NextClaim<'_>) -> Outcome {
        let id = c.row.id;
        let done = match c.begun {
            Some((begun, opter, sign_no)) => self.run(&c.row, Runner::Worker, &opter, sign_no, Some(begun), next),
            None => self.execute_row(c.row, Runner::Worker, next),
        };
        done.unwrap_or_else(|e| self.failed(id, e))
    }

    /// Runs a request this process claimed to its end, on the calling thread.
    pub(super) fn execute(&self, row: RequestRow) -> Outcome {
        let id = row.id;
        self.execute_row(row, Runner::Inline, None).unwrap_or_else(|e| self.failed(id, e))
    }

    /// The outcome of a request the journal could not follow through.
    /// One another process took over has the outcome that process gave it.
    pub(super) fn failed(&self, id: i64, e: Error) -> Outcome {
        if e.is_lost_claim() {
            log::error!("request {id}: {}; its outcome is the one the journal holds", e.message);
            if let Ok(theirs) = self.result_of(id) {
                return theirs;
            }
        }
        log::error!("request {id}: {e}");
        self.stats.failure(e.message.clone());
        Outcome { request_id: id, code: e.code, output: sdk_output(e.code, &e.message, "") }
    }

    /// Signs in if needed, then runs the attempts of a journaled request.
    pub(super) fn execute_row(&self, row: RequestRow, runner: Runner, next: NextClaim<'_>) -> Result<Outcome> {
        let opter = self.opter_of(&row);
        let sign_no = match self.sign_no_if_needed(&row.infno, &opter) {
            Ok(s) => s,
            Err(e) => return self.unsent(&row, runner, e),
        };
        self.run(&row, runner, &opter, sign_no, None, next)
    }

    /// The attempts of a request: to the end (`Inline`) or one (`Worker`).
    /// `begun` is a first attempt already committed with the row or its claim.
    pub(super) fn run(
        &self,
        row: &RequestRow,
        runner: Runner,
        opter: &str,
        mut sign_no: String,
        mut begun: Option<Begun>,
        next: NextClaim<'_>,
    ) -> Result<Outcome> {
        let id = row.id;
        let resendable = self.resendable(&row.infno);
        // A resent query gets a fresh msgid; a state-changing request is resent
        // only when it never left, under the msgid it already has.
        let mut fresh = row.attempts > 0 && begun.is_none() && resendable;
        let mut msgid = row.msgid.clone();
        let mut renewed_sign_in = false;
        loop {
            let b = match begun.take() {
                Some(b) => b,
                None => self.begin(row, fresh, &msgid, &sign_no)?,
            };
            msgid.clone_from(&b.msgid);
            let mut judged = self.send(row, &b, resendable);
            fresh = resendable;
            // The platform refusing the sign_no (it restarted, or another terminal
            // signed the operator in again) proves the request was not processed:
            // sign in anew and resend once, under a fresh msgid.
            if !renewed_sign_in && classify::is_sign_no_refusal(&row.infno, &judged.fin) {
                renewed_sign_in = true;
                log::warn!("request {id}: the platform refused the sign_no of {opter}; signing in again and resending");
                let last_error = judged.fin.last_error.clone().unwrap_or_default();
                let waiting = Next::Retry { at_ms: 0, last_error, keep_owner: Some(self.owner.clone()) };
                self.journal.write(|tx| {
                    tx.advance(id, &self.owner, Some(&judged.attempt), &waiting)?;
                    self.forget_sign_in(tx, opter)
                })?;
                // Not put back even when mi_shutdown broke the sign-in off: this
                // request was sent once, and its msgid must not go out again.
                sign_no = match self.sign_no_for(opter) {
                    Ok(s) => s,
                    Err(e) => return self.finish_unsent(row, e),
                };
                fresh = true;
                continue;
            }
            // "Duplicate msgid" to the first send of one of our msgids (no earlier send
            // of it can have reached the platform): another workstation sent the same
            // msgid (same node, same second), so this request was not processed.
            // Resent at once under a fresh msgid, within max_attempts. To a msgid the
            // platform may have had from us already, it means that send was processed
            // and its answer lost: a state-changing request is then uncertain.
            if classify::is_duplicate_msgid(&judged.fin) {
                if self.journal.first_send_of_own_msgid(id, &b.msgid, b.no)? {
                    if b.no < i64::from(self.cfg.retry.max_attempts) {
                        log::warn!(
                            "request {id}: msgid {} was already used by another workstation; resending",
                            b.msgid
                        );
                        let last_error = judged.fin.last_error.clone().unwrap_or_default();
                        let waiting = Next::Retry { at_ms: 0, last_error, keep_owner: Some(self.owner.clone()) };
                        self.journal.write(|tx| tx.advance(id, &self.owner, Some(&judged.attempt), &waiting))?;
                        fresh = true;
                        continue;
                    }
                } else if !resendable {
                    let why = "the platform already holds this msgid: an earlier send of it was processed";
                    judged.fin = super::uncertain_final(&row.infno, &b.msgid, why);
                }
            }
            match retry::decide(judged.outcome(), resendable, b.no as u32, &self.cfg.retry) {
                Decision::Retry(delay) => {
                    let at_ms = self.clock.unix_ms() + delay.as_millis() as i64;
                    let last_error = judged.fin.last_error.clone().unwrap_or_default();
                    log::info!(
                        "request {id} ({}) attempt {} failed, resending in {} ms: {last_error}",
                        row.infno,
                        b.no,
                        delay.as_millis()
                    );
                    match runner {
                        Runner::Inline if self.halt.is_set() => {
                            // mi_shutdown broke the call off: the caller is told so at
                            // once instead of sleeping through resends that cannot go.
                            let msg = format!("not resent: mi_shutdown broke the call off ({last_error})");
                            let fin = failed_final(Code::Shutdown, msg, &msgid);
                            self.record(runner, id, Some(&judged.attempt), &Next::Final(fin.clone()), None)?;
                            log::warn!("request {id} ({}) ended by mi_shutdown: {last_error}", row.infno);
                            self.stats.failure(fin.last_error.clone().unwrap_or_default());
                            return Ok(Outcome { request_id: id, code: fin.code, output: fin.result });
                        }
                        Runner::Inline => {
                            let waiting = Next::Retry { at_ms, last_error, keep_owner: Some(self.owner.clone()) };
                            self.record(runner, id, Some(&judged.attempt), &waiting, None)?;
                            // Shutdown wakes it: the next send then fails at once as
                            // never sent, and the call ends MI_E_SHUTDOWN.
                            self.halt.sleep(delay);
                            self.journal.write(|tx| tx.reclaim(id, &self.owner))?;
                        }
                        Runner::Worker => {
                            let waiting = Next::Retry { at_ms, last_error, keep_owner: None };
                            self.record(runner, id, Some(&judged.attempt), &waiting, next)?;
                            let output = super::pending_output(&msgid, State::RetryWait);
                            return Ok(Outcome { request_id: id, code: Code::Pending, output });
                        }
                    }
                }
                Decision::Final | Decision::Uncertain => {
                    if let Err(e) =
                        self.record(runner, id, Some(&judged.attempt), &Next::Final(judged.fin.clone()), next)
                    {
                        if e.is_lost_claim() {
                            // Another process judged this one gone and decided the
                            // request's fate (uncertain, perhaps reversed): that
                            // stands. What the platform said is kept here.
                            log::error!(
                                "request {id} ({}) ended {} after another process took it over: {}",
                                row.infno,
                                judged.fin.code.name(),
                                logging::for_log(&judged.fin.result, self.cfg.log.mask_pii)
                            );
                            return Err(e);
                        }
                        // The request left and the platform answered: that answer is
                        // the truth the cashier must see, never "not sent". The row
                        // stays `sending` with this attempt open, which the next start
                        // marks uncertain (a query: resent), so it is never lost.
                        log::error!(
                            "request {id} ({}) ended {} but the journal could not record it: {e}",
                            row.infno,
                            judged.fin.code.name()
                        );
                        self.stats.failure(e.message.clone());
                    }
                    // One line per call for the operators: what, which msgid, how it ended.
                    log::info!(
                        "call infno={} msgid={} request={} attempt={} outcome={} latency_ms={}",
                        row.infno,
                        msgid,
                        id,
                        b.no,
                        judged.fin.code.name(),
                        judged.attempt.latency_ms.unwrap_or(0)
                    );
                    self.after(row, opter, &judged.fin);
                    return Ok(Outcome { request_id: id, code: judged.fin.code, output: judged.fin.result });
                }
            }
        }
    }

    /// Commits the start of an attempt: the envelope refreshed for this send, under
    /// `msgid` or (`fresh`) a new one.
    fn begin(&self, row: &RequestRow, fresh: bool, msgid: &str, sign_no: &str) -> Result<Begun> {
        self.journal.write(|tx| {
            self.begin_in(tx, row, fresh, msgid, sign_no)?
                .ok_or_else(|| Error::journal(format!("the journaled envelope of request {} is damaged", row.id)))
        })
    }

    /// One send of a begun attempt, judged (not yet recorded).
    fn send(&self, row: &RequestRow, b: &Begun, resendable: bool) -> Judged {
        log::debug!("send {} request={} msgid={} attempt={}", row.infno, row.id, b.msgid, b.no);
        if log::log_enabled!(log::Level::Debug) {
            log::debug!("request {} envelope: {}", row.id, logging::for_log(&b.envelope, self.cfg.log.mask_pii));
        }
        let t0 = self.clock.mono();
        let wire = crate::protocol::wire::complete(&self.cfg, &row.infno, &b.envelope, self.clock.local());
        let sent = self.channels.exchange(&row.infno, &wire);
        let latency_ms = self.clock.mono().since(t0).as_millis() as u64;
        let judged = classify::classify(&row.infno, &b.msgid, b.no, sent, latency_ms, resendable);
        if judged.answered() {
            self.stats.answered(latency_ms);
        }
        judged
    }

    /// Records how a request moved on: a worker's through the writer (with its next
    /// claim), a sync call's directly.
    fn record(
        &self,
        runner: Runner,
        id: i64,
        attempt: Option<&Attempt>,
        next: &Next,
        claim: NextClaim<'_>,
    ) -> Result<()> {
        match runner {
            Runner::Worker => self.record_shared(id, attempt, next, claim),
            Runner::Inline => self.journal.write(|tx| tx.advance(id, &self.owner, attempt, next)),
        }
    }

    /// A request that cannot be sent because its sign-in (9001) failed. One a
    /// worker runs that `mi_shutdown` broke off waits in the queue for the next
    /// start: the HIS was told it is kept (`mi_call_async`), and it never left.
    /// Otherwise it ends failed, never sent.
    fn unsent(&self, row: &RequestRow, runner: Runner, e: Error) -> Result<Outcome> {
        if runner == Runner::Worker && e.code == Code::Shutdown {
            let waiting = Next::Retry { at_ms: 0, last_error: e.message.clone(), keep_owner: None };
            self.journal.write(|tx| tx.advance(row.id, &self.owner, None, &waiting))?;
            log::info!("request {} ({}) not sent: {}; the next start sends it", row.id, row.infno, e.message);
            let output = super::pending_output(&row.msgid, State::RetryWait);
            return Ok(Outcome { request_id: row.id, code: Code::Pending, output });
        }
        self.finish_unsent(row, e)
    }

    /// Ends a request failed, never sent (its sign-in failed).
    pub(super) fn finish_unsent(&self, row: &RequestRow, e: Error) -> Result<Outcome> {
        let fin = failed_final(e.code, e.message.clone(), &row.msgid);
        let result = fin.result.clone();
        self.journal.write(|tx| tx.advance(row.id, &self.owner, None, &Next::Final(fin)))?;
        log::warn!("request {} ({}) not sent: {}", row.id, row.infno, e.message);
        self.stats.failure(e.message);
        Ok(Outcome { request_id: row.id, code: e.code, output: result })
    }

    /// Logging, statistics and the state a finished call changes: sign-ins,
    /// reversal links, and the automatic reversal of `uncertain_policy: "reverse"`.
    fn after(&self, row: &RequestRow, opter: &str, fin: &Final) {
        let (infno, id) = (row.infno.as_str(), row.id);
        match fin.code {
            Code::Ok => {
                log::debug!("done {infno} request={id} -> MI_OK");
                self.stats.success(self.clock.stamp());
            }
            code => {
                let msg = fin.last_error.clone().unwrap_or_default();
                log::warn!("done {infno} request={id} -> {} {}", code.name(), msg);
                self.stats.failure(format!("{infno}: {msg}"));
            }
        }
        if log::log_enabled!(log::Level::Debug) {
            log::debug!("request {id} result: {}", logging::for_log(&fin.result, self.cfg.log.mask_pii));
        }
        self.after_sign_in(row, opter, fin);
        self.after_reversal(row, fin);
    }
}
