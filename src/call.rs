//! One call, start to finish: validate, journal, sign in when needed, send, classify
//! the outcome, decide whether it may be sent again, record it. The sync path and the
//! async workers share this code; they differ only in who waits out a backoff.

use crate::config::Config;
use crate::engine::retry::{self, Failure as Why, Verdict};
use crate::engine::writer::{Submission, Writer};
use crate::engine::Wake;
use crate::error::{Code, Error, Result};
use crate::journal::{self, state, AttemptRecord, Batch, Final, Journal, NewRequest, RequestRow};
use crate::logging;
use crate::protocol::envelope::{self, CallInput};
use crate::protocol::{signin, transactions};
use crate::stats::Stats;
use crate::transport::channel::{Channels, Exchange};
use crate::transport::{Failure, Transport};
use serde_json::{json, Map, Value};
use std::sync::atomic::AtomicI64;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// What a call gives its caller: the code and the output text (ABI.md §3).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub request_id: i64,
    pub code: Code,
    pub output: String,
}

/// A request a worker claimed, with its attempt (number, envelope), operator and
/// sign_no when that attempt was begun in the claiming commit.
pub struct Claimed {
    pub row: RequestRow,
    #[allow(clippy::type_complexity)]
    begun: Option<((i64, String), String, String)>,
}

impl Claimed {
    pub fn id(&self) -> i64 {
        self.row.id
    }
}

/// Where a worker wants its next request, claimed in the commit that records the
/// outcome of the current one (`None`: no claim, e.g. while shutting down).
pub type Next<'a> = Option<&'a mut Option<Claimed>>;

/// Keeps a claim made along with an outcome.
fn put_next(r: Result<Option<Claimed>>, next: Next<'_>) -> Result<()> {
    let claimed = r?;
    if let Some(slot) = next {
        *slot = claimed;
    }
    Ok(())
}

/// Who runs the attempts of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The calling thread, to the end, sleeping through backoffs (sync calls).
    Inline,
    /// A worker, one attempt at a time; a retry goes back to the queue.
    Worker,
}

/// The output the SDK writes when the platform did not answer.
pub fn sdk_output(code: Code, err_msg: &str, msgid: &str) -> String {
    json!({"infcode": -1, "err_msg": err_msg, "mi_code": code.as_i32(), "msgid": msgid}).to_string()
}

/// The pending output of an unfinished request.
pub fn pending_output(msgid: &str, state: &str) -> String {
    json!({"infcode": -1, "err_msg": "pending", "mi_code": Code::Pending.as_i32(), "msgid": msgid, "state": state})
        .to_string()
}

/// The final state of a request that may have been processed and was not resent.
pub fn uncertain_final(infno: &str, msgid: &str, why: &str) -> Final {
    let msg = format!(
        "no valid answer after sending {infno}: it may have been processed and was not resent; reverse it (2601) or query: {why}"
    );
    Final {
        state: state::UNCERTAIN,
        code: Code::Uncertain,
        result: sdk_output(Code::Uncertain, &msg, msgid),
        last_error: Some(msg),
    }
}

/// Whether a refusal is about the sign_no (not for sign-in and sign-out themselves,
/// whose inputs carry their own sign-in data).
fn is_sign_no_refusal(infno: &str, err_msg: Option<&str>) -> bool {
    infno != transactions::SIGN_OUT
        && transactions::needs_sign_no(infno)
        && err_msg.is_some_and(|m| m.contains("sign_no") || m.contains("签到"))
}

/// Everything a call needs, shared by the sync path and the workers.
pub struct Core {
    pub cfg: Config,
    pub journal: Journal,
    pub transport: Transport,
    /// The gateway and mobile-payment channels, with their keys.
    channels: Channels,
    pub stats: Stats,
    /// This process's name in the journal's claims (`mi_owner`).
    pub owner: String,
    /// Wakes idle workers when new work is queued.
    pub wake: Wake,
    /// Requests waiting to be sent (for `MI_E_BUSY` and the status); kept exact by
    /// this process and re-counted from the journal every second.
    pub queued: AtomicI64,
    signins: signin::SignIns,
    /// Serialises sign-ins so sixteen threads at 8 a.m. sign in once, not sixteen times.
    signin_lock: Mutex<()>,
    /// Group commit for async submissions and the workers' claims and outcomes;
    /// set once the core is shared (`Sdk::start`). Without it (tools reading the
    /// journal) everything is written directly.
    pub writer: OnceLock<Writer>,
    /// Set when the workers are told to stop: they claim nothing more, neither on
    /// their own nor along with an outcome, so what is queued stays queued.
    pub stopping: std::sync::atomic::AtomicBool,
}

impl Core {
    pub fn new(cfg: Config, journal: Journal, owner: String) -> Result<Core> {
        let transport = Transport::new(&cfg.gateway, cfg.ca_path().as_deref())?;
        let channels = Channels::new(&cfg)?;
        Ok(Core {
            channels,
            cfg,
            journal,
            transport,
            stats: Stats::default(),
            owner,
            wake: Wake::default(),
            queued: AtomicI64::new(0),
            signins: Default::default(),
            signin_lock: Mutex::new(()),
            writer: OnceLock::new(),
            stopping: Default::default(),
        })
    }

    /// Checks `infno` and `input` and builds nothing yet: errors here mean nothing was
    /// journaled.
    pub fn parse(&self, infno: &str, input: &str) -> Result<CallInput> {
        if !transactions::is_valid_infno(infno) {
            return Err(Error::invalid(format!(
                "infno \"{}\" is not a transaction code (4 digits and an optional capital letter, e.g. 1101 or 2203A)",
                infno.chars().take(16).collect::<String>()
            )));
        }
        if input.len() as u64 > self.cfg.max_input_bytes {
            return Err(Error::invalid(format!(
                "input is {} bytes, more than max_input_bytes ({})",
                input.len(),
                self.cfg.max_input_bytes
            )));
        }
        self.channels.check(infno)?;
        let call = CallInput::parse(input)?;
        envelope::check(&self.cfg, &call)?;
        Ok(call)
    }

    /// The identity columns of a new request.
    pub fn new_request<'a>(
        &'a self,
        infno: &'a str,
        call: &'a CallInput,
        mode: &'a str,
        priority: i32,
        reversal_of: Option<i64>,
    ) -> NewRequest<'a> {
        NewRequest {
            infno,
            mode,
            priority,
            caller_msgid: call.msgid(),
            fixmedins_code: &self.cfg.institution.fixmedins_code,
            node_id: self.cfg.node_id,
            reversal_of,
            source: None,
        }
    }

    /// The envelope JSON of a call under a msgid.
    pub fn envelope_text(&self, infno: &str, msgid: &str, call: &CallInput) -> Result<String> {
        let env = envelope::build(&self.cfg, infno, msgid, call)?;
        Ok(serde_json::to_string(&env).expect("a JSON map always serialises"))
    }

    /// Commits a new request claimed by this process (a sync call): from here on it
    /// is never lost.
    pub fn journal_sync(&self, infno: &str, call: &CallInput, reversal_of: Option<i64>) -> Result<(i64, String)> {
        let req = self.new_request(infno, call, "sync", 0, reversal_of);
        let (id, msgid, _) = self
            .journal
            .insert_request(&req, state::SENDING, Some(&self.owner), |m| self.envelope_text(infno, m, call))?;
        Ok((id, msgid))
    }

    /// Whether failures of this request may be resent: queries and calculations, and
    /// reversals (2601 is safe to repeat with the same omsgid).
    fn retry_safe(&self, row: &RequestRow) -> bool {
        transactions::matches_any(&row.infno, &self.cfg.retry.safe_infnos) || row.infno == transactions::REVERSAL
    }

    /// A sync call from its parsed input to its outcome. The request row and its
    /// first attempt are committed together, with the envelope exactly as it goes
    /// out, so the common case costs two journal commits: one before the send and
    /// one after. `Err` means nothing was journaled.
    pub fn call_sync(&self, infno: &str, call: &CallInput) -> Result<Outcome> {
        let opter = call.opter(&self.cfg).to_string();
        let sign_no = if transactions::needs_sign_no(infno) {
            match self.sign_no_for(&opter) {
                Ok(s) => s,
                Err(e) => {
                    // Journaled all the same, as failed and never sent: the HIS asked.
                    let (id, _) = self.journal_sync(infno, call, None)?;
                    let row =
                        self.journal.request(id)?.ok_or_else(|| Error::journal(format!("request {id} vanished")))?;
                    return self.finish_unsent(&row, e);
                }
            }
        } else {
            String::new()
        };
        let req = self.new_request(infno, call, "sync", 0, None);
        let inf_time = envelope::format_inf_time(crate::protocol::now_local());
        let (id, msgid, env, now) = self.journal.insert_sending(&req, &self.owner, |m| {
            let mut e = envelope::build(&self.cfg, infno, m, call)?;
            e.insert("inf_time".into(), Value::String(inf_time.clone()));
            e.insert("sign_no".into(), Value::String(sign_no.clone()));
            Ok(serde_json::to_string(&e).expect("a JSON map always serialises"))
        })?;
        let row = RequestRow {
            id,
            msgid: msgid.clone(),
            infno: infno.to_string(),
            mode: "sync".into(),
            priority: 0,
            state: state::SENDING.into(),
            envelope: env.clone(),
            attempts: 1,
            mi_code: None,
            result: None,
            last_error: None,
            reversal_of: None,
            reversed_by: None,
            created_at: now.clone(),
            updated_at: now,
        };
        log::debug!("send {infno} request={id} msgid={msgid} attempt=1");
        Ok(self.run(&row, Mode::Inline, &opter, sign_no, Some((1, env)), None).unwrap_or_else(|e| self.failed(id, e)))
    }

    /// Runs a claimed request: to the end (`Inline`) or one attempt (`Worker`).
    pub fn execute(&self, id: i64, mode: Mode) -> Outcome {
        self.try_execute(id, mode).unwrap_or_else(|e| self.failed(id, e))
    }

    /// The outcome of a request the journal could not follow through.
    fn failed(&self, id: i64, e: Error) -> Outcome {
        log::error!("request {id}: {e}");
        self.stats.failure(e.message.clone());
        Outcome { request_id: id, code: e.code, output: sdk_output(e.code, &e.message, "") }
    }

    /// Puts back a request whose claim was committed but could not be flushed to
    /// disk: it is not sent, since its claim and attempt may not be kept. Its begun
    /// attempt is closed as never sent and it waits a second to be claimed again.
    /// When even that cannot be written, the next start recovers it (conservatively:
    /// a state-changing request with an open attempt becomes uncertain).
    pub fn put_back(&self, c: &Claimed, why: &Error) {
        let id = c.row.id;
        let msg = format!("not sent: the journal could not be flushed ({})", why.message);
        let r = match &c.begun {
            Some(((n, _), _, _)) => {
                let a = AttemptRecord { outcome: "never_sent", err_msg: Some(msg.clone()), ..Default::default() };
                let next_at = crate::transport::gateway::unix_ms() as i64 + 1000;
                self.journal.retry_later(id, (*n, &a), &msg, next_at, None)
            }
            None => self.journal.abandon(id, &self.owner, |_| journal::Recovery::Requeue).map(drop),
        };
        match r {
            Ok(()) => log::warn!("request {id} ({}) {msg}; it will be sent later", c.row.infno),
            Err(e) => log::error!(
                "request {id} ({}) {msg}, and cannot be put back ({e}); the next start recovers it",
                c.row.infno
            ),
        }
    }

    /// Claims the next request for a worker. When the operator's sign_no is at hand
    /// the attempt is begun in the same commit (the envelope refreshed, a fresh msgid
    /// for a resent query); otherwise `execute_claimed` signs in first.
    pub fn claim_in(&self, b: &Batch<'_>) -> Result<Option<Claimed>> {
        let date = signin::today();
        let inf_time = envelope::format_inf_time(crate::protocol::now_local());
        let now_ms = crate::transport::gateway::unix_ms() as i64;
        let mut ready: Option<(String, String)> = None;
        let claimed =
            b.claim_and_begin(&self.owner, now_ms, (&self.cfg.institution.fixmedins_code, self.cfg.node_id), |row| {
                let opter = envelope::opter_of(&row.envelope).unwrap_or_else(|| self.cfg.institution.opter.clone());
                let sign_no = if transactions::needs_sign_no(&row.infno) {
                    self.signins.get(&opter, &date)?
                } else {
                    String::new()
                };
                ready = Some((opter, sign_no.clone()));
                let fresh = row.attempts > 0 && self.retry_safe(row);
                let journaled = row.envelope.clone();
                Some((fresh, move |m: &str| envelope::refresh(&journaled, m, &inf_time, &sign_no)))
            })?;
        Ok(claimed.map(|(row, begun)| match (begun, ready) {
            (Some(begun), Some((opter, sign_no))) => Claimed { row, begun: Some((begun, opter, sign_no)) },
            _ => Claimed { row, begun: None },
        }))
    }

    /// Claims the next request for a worker, through the writer's group commit.
    pub fn claim_next(&self) -> Result<Option<Claimed>> {
        self.through_writer(Writer::claim, || self.journal.batch_synced(|b| self.claim_in(b)))
    }

    /// An operation through the group-commit writer, or done directly when there is
    /// none or it has stopped (a worker finishing after shutdown's deadline).
    fn through_writer<T>(
        &self,
        shared: impl FnOnce(&Writer) -> Result<T>,
        direct: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        match self.writer.get().map(shared) {
            Some(Err(e)) if e.code == Code::Shutdown => direct(),
            Some(r) => r,
            None => direct(),
        }
    }

    /// Commits a new async request (group commit) and returns its id, or
    /// `MI_E_BUSY` past `queue_capacity`.
    pub fn submit(&self, infno: &str, call: CallInput, priority: i32, source: Option<&str>) -> Result<i64> {
        let cap = self.cfg.queue_capacity as i64;
        if self.queued.load(std::sync::atomic::Ordering::Acquire) >= cap {
            return Err(Error::new(Code::Busy, format!("the async queue is full ({cap} requests waiting); try later")));
        }
        // The msgid is filled in when the envelope is sent.
        let envelope = self.envelope_text(infno, "", &call)?;
        let writer = self.writer.get().ok_or_else(|| Error::new(Code::Shutdown, "the SDK is not started"))?;
        writer.submit(Submission {
            infno: infno.to_string(),
            call,
            priority,
            envelope,
            source: source.map(str::to_owned),
        })
    }

    /// Records an outcome: a worker's through the writer (shared commits), a sync
    /// call's directly (no hand-over on the cashier's path).
    /// With `next`, the worker's next request is claimed in the same commit.
    fn record_finish(
        &self,
        mode: Mode,
        id: i64,
        attempt: Option<(i64, &AttemptRecord)>,
        fin: &Final,
        next: Next<'_>,
    ) -> Result<()> {
        let direct = || self.journal.finish(id, attempt, fin);
        match mode {
            Mode::Worker => self.through_writer(|w| put_next(w.finish(id, attempt, fin, next.is_some()), next), direct),
            Mode::Inline => direct(),
        }
    }

    /// Records a failed attempt of a worker's request that will be resent later.
    /// With `next`, the worker's next request is claimed in the same commit.
    fn record_retry(
        &self,
        id: i64,
        attempt: (i64, &AttemptRecord),
        err: &str,
        next_at: i64,
        next: Next<'_>,
    ) -> Result<()> {
        self.through_writer(
            |w| put_next(w.retry_later(id, attempt, err, next_at, next.is_some()), next),
            || self.journal.retry_later(id, attempt, err, next_at, None),
        )
    }

    /// Sends a claimed request once (a worker's turn). With `next`, the worker's next
    /// request is claimed in the commit that records this one's outcome.
    pub fn execute_claimed(&self, c: Claimed, next: Next<'_>) -> Outcome {
        let id = c.row.id;
        let done = match c.begun {
            Some(((n, env), opter, sign_no)) => {
                log::debug!("send {} request={id} msgid={} attempt={n}", c.row.infno, c.row.msgid);
                self.run(&c.row, Mode::Worker, &opter, sign_no, Some((n, env)), next)
            }
            None => self.execute_row(c.row, Mode::Worker, next),
        };
        done.unwrap_or_else(|e| self.failed(id, e))
    }

    fn try_execute(&self, id: i64, mode: Mode) -> Result<Outcome> {
        let row = self.journal.request(id)?.ok_or_else(|| Error::new(Code::NotFound, format!("no request {id}")))?;
        self.execute_row(row, mode, None)
    }

    /// Signs in if needed, then runs the attempts of a journaled request.
    fn execute_row(&self, row: RequestRow, mode: Mode, next: Next<'_>) -> Result<Outcome> {
        let opter = envelope::opter_of(&row.envelope).unwrap_or_else(|| self.cfg.institution.opter.clone());
        let sign_no = if transactions::needs_sign_no(&row.infno) {
            match self.sign_no_for(&opter) {
                Ok(s) => s,
                Err(e) => return self.finish_unsent(&row, e),
            }
        } else {
            String::new()
        };
        self.run(&row, mode, &opter, sign_no, None, next)
    }

    /// The attempts of a request: to the end (`Inline`) or one (`Worker`).
    /// `begun` is a first attempt already committed with the row: (number, envelope).
    fn run(
        &self,
        row: &RequestRow,
        mode: Mode,
        opter: &str,
        mut sign_no: String,
        mut begun: Option<(i64, String)>,
        next: Next<'_>,
    ) -> Result<Outcome> {
        let id = row.id;
        let opter = opter.to_string();
        let safe = self.retry_safe(row);
        let mut msgid = row.msgid.clone();
        let mut sent_before = row.attempts > 0 && begun.is_none();
        let mut renewed_sign_in = false;
        loop {
            // A resent query gets a fresh msgid; a state-changing request is resent
            // only when it never left, under the msgid it already has.
            if sent_before && safe {
                msgid = self.journal.reassign_msgid(id, &self.cfg.institution.fixmedins_code, self.cfg.node_id)?;
            }
            let (n, env) = match begun.take() {
                Some(b) => b,
                None => self.begin(row, &msgid, &sign_no)?,
            };
            let (attempt, why, fin) = self.send(row, &msgid, &env, safe);
            sent_before = true;
            // The platform refusing the sign_no (it restarted, or another terminal
            // signed the operator in again) proves the request was not processed:
            // sign in anew and resend once, under a fresh msgid.
            if !renewed_sign_in
                && fin.code == Code::Business
                && is_sign_no_refusal(&row.infno, fin.last_error.as_deref())
            {
                renewed_sign_in = true;
                log::warn!("request {id}: the platform refused the sign_no of {opter}; signing in again and resending");
                self.journal.retry_later(
                    id,
                    (n, &attempt),
                    fin.last_error.as_deref().unwrap_or(""),
                    0,
                    Some(&self.owner),
                )?;
                let date = signin::today();
                self.journal.signin_forget(&self.cfg.institution.fixmedins_code, &opter, &date)?;
                self.signins.forget(&opter);
                sign_no = match self.sign_no_for(&opter) {
                    Ok(s) => s,
                    Err(e) => return self.finish_unsent(row, e),
                };
                msgid = self.journal.reassign_msgid(id, &self.cfg.institution.fixmedins_code, self.cfg.node_id)?;
                sent_before = false;
                continue;
            }
            match retry::decide(why, safe, n as u32, &self.cfg.retry) {
                Verdict::Retry(delay) => {
                    let next_at = crate::transport::gateway::unix_ms() as i64 + delay.as_millis() as i64;
                    let err = fin.last_error.clone().unwrap_or_default();
                    log::info!(
                        "request {id} ({}) attempt {n} failed, resending in {} ms: {err}",
                        row.infno,
                        delay.as_millis()
                    );
                    match mode {
                        Mode::Inline => {
                            self.journal.retry_later(id, (n, &attempt), &err, next_at, Some(&self.owner))?;
                            std::thread::sleep(delay);
                            self.journal.reclaim(id, &self.owner)?;
                        }
                        Mode::Worker => {
                            self.record_retry(id, (n, &attempt), &err, next_at, next)?;
                            return Ok(Outcome {
                                request_id: id,
                                code: Code::Pending,
                                output: pending_output(&msgid, state::RETRY_WAIT),
                            });
                        }
                    }
                }
                Verdict::Final | Verdict::Uncertain => {
                    if let Err(e) = self.record_finish(mode, id, Some((n, &attempt)), &fin, next) {
                        // The request left and the platform answered: that answer is
                        // the truth the cashier must see, never "not sent". The row
                        // stays `sending` with this attempt open, which the next start
                        // marks uncertain (a query: resent), so it is never lost.
                        log::error!(
                            "request {id} ({}) ended {} but the journal could not record it: {e}",
                            row.infno,
                            fin.code.name()
                        );
                        self.stats.failure(e.message.clone());
                    }
                    // One line per call for the operators: what, which msgid, how it ended.
                    log::info!(
                        "call infno={} msgid={} request={} attempt={} outcome={} latency_ms={}",
                        row.infno,
                        msgid,
                        id,
                        n,
                        fin.code.name(),
                        attempt.latency_ms
                    );
                    self.after(row, &opter, &fin);
                    return Ok(Outcome { request_id: id, code: fin.code, output: fin.result });
                }
            }
        }
    }

    /// Commits the start of an attempt: the envelope refreshed for this send.
    fn begin(&self, row: &RequestRow, msgid: &str, sign_no: &str) -> Result<(i64, String)> {
        let inf_time = envelope::format_inf_time(crate::protocol::now_local());
        let env = envelope::refresh(&row.envelope, msgid, &inf_time, sign_no)?;
        let n = self.journal.begin_attempt(row.id, msgid, &env)?;
        log::debug!("send {} request={} msgid={} attempt={}", row.infno, row.id, msgid, n);
        Ok((n, env))
    }

    /// One send of a begun attempt, its outcome classified (not yet recorded).
    fn send(&self, row: &RequestRow, msgid: &str, env: &str, safe: bool) -> (AttemptRecord, Why, Final) {
        if log::log_enabled!(log::Level::Debug) {
            log::debug!("request {} envelope: {}", row.id, logging::for_log(env, self.cfg.log.mask_pii));
        }
        let t0 = Instant::now();
        let sent = self.channels.exchange(&self.transport, &row.infno, env);
        let latency_ms = t0.elapsed().as_millis() as u64;
        self.classify(&row.infno, msgid, sent, latency_ms, safe)
    }

    /// Ends a request that was never sent (its sign-in failed).
    fn finish_unsent(&self, row: &RequestRow, e: Error) -> Result<Outcome> {
        let result = sdk_output(e.code, &e.message, &row.msgid);
        let fin =
            Final { state: state::FAILED, code: e.code, result: result.clone(), last_error: Some(e.message.clone()) };
        self.journal.finish(row.id, None, &fin)?;
        log::warn!("request {} ({}) not sent: {}", row.id, row.infno, e.message);
        self.stats.failure(e.message);
        Ok(Outcome { request_id: row.id, code: e.code, output: result })
    }

    /// Turns what the transport returned into the attempt record, the kind of
    /// failure, and the final state should it not be resent.
    fn classify(
        &self,
        infno: &str,
        msgid: &str,
        sent: Exchange,
        latency_ms: u64,
        safe: bool,
    ) -> (AttemptRecord, Why, Final) {
        let mut a = AttemptRecord { latency_ms: latency_ms as i64, ..Default::default() };
        let failed = |code: Code, msg: String| Final {
            state: state::FAILED,
            code,
            result: sdk_output(code, &msg, msgid),
            last_error: Some(msg),
        };
        let sent = match sent {
            Exchange::Answer(r) => Ok(r),
            Exchange::Failed(f) => Err(f),
            Exchange::Refused { status, body, why } => {
                self.not_taken(&mut a, "refused", status, body, &why);
                // Sending again would bring the same answer back.
                return (a, Why::GatewayRefused, failed(Code::Protocol, format!("the answer was refused: {why}")));
            }
            Exchange::Unverified { status, body, why } => {
                self.not_taken(&mut a, "unverified", status, body, &why);
                let msg = format!("the platform's answer failed verification, so it cannot be trusted: {why}");
                let fin = if safe {
                    failed(Code::Protocol, msg)
                } else {
                    // Not resent, and reversible if it may have moved money; the code
                    // says what happened (ABI.md: bad signature is MI_E_PROTOCOL).
                    let mut f = uncertain_final(infno, msgid, &why);
                    f.code = Code::Protocol;
                    f.result = sdk_output(Code::Protocol, &msg, msgid);
                    f.last_error = Some(msg);
                    f
                };
                return (a, Why::Unverified, fin);
            }
        };
        match sent {
            Ok(reply) => {
                self.stats.answered(latency_ms);
                a.http_status = Some(reply.status);
                a.response = Some(reply.body.clone());
                let snippet: String = reply.body.chars().take(200).collect();
                if (400..500).contains(&reply.status) {
                    a.outcome = "gateway_refused";
                    return (
                        a,
                        Why::GatewayRefused,
                        failed(
                            Code::Protocol,
                            format!("gateway refused the request with HTTP {}: {snippet}", reply.status),
                        ),
                    );
                }
                let parsed = if (200..300).contains(&reply.status) {
                    crate::protocol::response::parse(&reply.body)
                } else {
                    Err(format!("gateway answered HTTP {}: {snippet}", reply.status))
                };
                match parsed {
                    Ok((_, verdict)) => {
                        a.infcode = Some(verdict.infcode);
                        a.err_msg = Some(verdict.err_msg.clone()).filter(|s| !s.is_empty());
                        let ok = verdict.infcode == 0;
                        a.outcome = if ok { "ok" } else { "business_error" };
                        let fin = Final {
                            state: if ok { state::SUCCEEDED } else { state::BUSINESS_ERROR },
                            code: if ok { Code::Ok } else { Code::Business },
                            result: reply.body,
                            last_error: (!ok).then_some(verdict.err_msg),
                        };
                        (a, Why::Answered, fin)
                    }
                    Err(why) => {
                        a.outcome = "gateway_fault";
                        a.err_msg = Some(why.clone());
                        let fin = if safe {
                            failed(Code::Protocol, format!("gateway answered, but not as the platform: {why}"))
                        } else {
                            uncertain_final(infno, msgid, &why)
                        };
                        (a, Why::GatewayFault, fin)
                    }
                }
            }
            Err(Failure::NeverSent(why)) => {
                a.outcome = "never_sent";
                a.err_msg = Some(why.clone());
                (a, Why::NeverSent, failed(Code::Network, format!("gateway not reached, request not sent: {why}")))
            }
            Err(Failure::MaybeProcessed(why)) => {
                a.outcome = "maybe_processed";
                a.err_msg = Some(why.clone());
                let fin = if safe {
                    failed(Code::Timeout, format!("no answer from the gateway: {why}"))
                } else {
                    uncertain_final(infno, msgid, &why)
                };
                (a, Why::MaybeProcessed, fin)
            }
        }
    }

    /// Records an answer that came but is not taken as the platform's (it failed
    /// verification, or this side refuses it).
    fn not_taken(&self, a: &mut AttemptRecord, outcome: &'static str, status: u16, body: String, why: &str) {
        self.stats.answered(a.latency_ms as u64);
        a.http_status = Some(status);
        a.response = Some(body);
        a.outcome = outcome;
        a.err_msg = Some(why.to_string());
    }

    /// Logging, statistics and the state a finished call changes: sign-ins,
    /// reversal links, and the automatic reversal of `uncertain_policy: "reverse"`.
    fn after(&self, row: &RequestRow, opter: &str, fin: &Final) {
        let (infno, id) = (row.infno.as_str(), row.id);
        match fin.code {
            Code::Ok => {
                log::debug!("done {infno} request={id} -> MI_OK");
                self.stats.success(journal::now_text());
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
        let code = &self.cfg.institution.fixmedins_code;
        let date = signin::today();
        if fin.code == Code::Ok && infno == transactions::SIGN_IN {
            if let Ok(v) = serde_json::from_str::<Value>(&fin.result) {
                if let Some(sign_no) = signin::sign_no_of(&v) {
                    if let Err(e) = self.journal.signin_put(code, opter, &date, &sign_no, id) {
                        log::error!("sign-in of {opter} not kept in the journal: {e}");
                    }
                    self.signins.put(opter, &date, &sign_no);
                }
            }
        }
        if fin.code == Code::Ok && infno == transactions::SIGN_OUT {
            let _ = self.journal.signin_forget(code, opter, &date);
            self.signins.forget(opter);
        }
        if let (Code::Ok, Some(original)) = (fin.code, row.reversal_of) {
            if infno == transactions::REVERSAL {
                if let Err(e) = self.journal.mark_reversed(original) {
                    log::error!("request {original} was reversed by {id}, but the journal could not say so: {e}");
                }
            }
        }
        if fin.state == state::UNCERTAIN {
            self.reverse_if_policy(row);
        }
    }

    /// With `uncertain_policy: "reverse"`, queues the 2601 for an uncertain
    /// reversible request; the workers send it (and retry it) like any request.
    pub fn reverse_if_policy(&self, row: &RequestRow) {
        if self.cfg.retry.uncertain_policy != "reverse"
            || !transactions::matches_any(&row.infno, &self.cfg.retry.reversible_infnos)
        {
            return;
        }
        let queued = self.reversal_input(row).and_then(|call| {
            let req = self.new_request(transactions::REVERSAL, &call, "async", i32::MAX, Some(row.id));
            let (rid, _, _) = self
                .journal
                .insert_request(&req, state::QUEUED, None, |m| self.envelope_text(transactions::REVERSAL, m, &call))?;
            self.journal.link_reversal(row.id, rid)?;
            Ok(rid)
        });
        match queued {
            Ok(rid) => {
                log::warn!("request {} ({}) is uncertain: reversal queued as request {rid}", row.id, row.infno);
                self.wake.notify();
            }
            Err(e) => log::error!("request {} is uncertain and its reversal could not be queued: {e}", row.id),
        }
    }

    /// `mi_reverse`: sends 2601 for an uncertain or succeeded reversible request.
    pub fn reverse(&self, id: i64) -> Result<Outcome> {
        let row =
            self.journal.request(id)?.ok_or_else(|| Error::new(Code::NotFound, format!("no request with id {id}")))?;
        if !transactions::matches_any(&row.infno, &self.cfg.retry.reversible_infnos) {
            return Err(Error::invalid(format!(
                "request {id} is a {}, which 2601 does not reverse (retry.reversible_infnos); undo it with its counter-transaction",
                row.infno
            )));
        }
        if row.state != state::UNCERTAIN && row.state != state::SUCCEEDED {
            return Err(Error::invalid(format!(
                "request {id} is {}: only an uncertain or succeeded request can be reversed",
                row.state
            )));
        }
        if let Some(prev) = row.reversed_by {
            if let Some(p) = self.journal.request(prev)? {
                if !matches!(p.state.as_str(), "failed" | "business_error") {
                    return Err(Error::invalid(format!(
                        "request {id} is already being reversed by request {prev} ({})",
                        p.state
                    )));
                }
            }
        }
        let call = self.reversal_input(&row)?;
        let (rid, _) = self.journal_sync(transactions::REVERSAL, &call, Some(id))?;
        self.journal.link_reversal(id, rid)?;
        Ok(self.execute(rid, Mode::Inline))
    }

    /// The 2601 input for a request: its msgid and infno, the person it named, and
    /// the envelope fields it was sent with.
    fn reversal_input(&self, row: &RequestRow) -> Result<CallInput> {
        let env: Value = serde_json::from_str(&row.envelope)
            .map_err(|e| Error::journal(format!("journaled envelope is damaged: {e}")))?;
        let psn_no = find_str(&env["input"], "psn_no").unwrap_or_default();
        let mut overrides = Map::new();
        for k in ["insuplc_admdvs", "mdtrtarea_admvs", "opter", "opter_name", "opter_type"] {
            if let Some(v) = env.get(k).and_then(Value::as_str) {
                overrides.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
        Ok(CallInput {
            business: json!({"data": {"psn_no": psn_no, "omsgid": row.msgid, "oinfno": row.infno}}),
            overrides,
        })
    }

    /// Today's sign_no for an operator: from memory, the journal, or a new 9001.
    fn sign_no_for(&self, opter: &str) -> Result<String> {
        let date = signin::today();
        if let Some(s) = self.signins.get(opter, &date) {
            return Ok(s);
        }
        let _one_at_a_time = self.signin_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = self.signins.get(opter, &date) {
            return Ok(s);
        }
        let code = &self.cfg.institution.fixmedins_code;
        if let Some(s) = self.journal.signin_get(code, opter, &date)? {
            self.signins.put(opter, &date, &s);
            return Ok(s);
        }
        if !self.cfg.sign_in.auto {
            return Err(Error::invalid(format!(
                "operator {opter} has not signed in today (9001) and sign_in.auto is false"
            )));
        }
        let mut call =
            CallInput { business: signin::input(&self.cfg.institution, opter), overrides: Default::default() };
        call.overrides.insert("opter".into(), Value::String(opter.into()));
        let (id, _) = self.journal_sync(transactions::SIGN_IN, &call, None)?;
        log::info!("signing in operator {opter} for {date} (request {id})");
        let out = self.execute(id, Mode::Inline);
        if out.code == Code::Ok {
            if let Some(s) = self.signins.get(opter, &date) {
                return Ok(s);
            }
        }
        let why = serde_json::from_str::<Value>(&out.output)
            .ok()
            .and_then(|v| v.get("err_msg").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        // The business request itself never left: a failed sign-in is never uncertain for it.
        let code = match out.code {
            Code::Business | Code::Protocol | Code::Journal | Code::InvalidArgument => out.code,
            Code::Ok => Code::Protocol,
            _ => Code::Network,
        };
        Err(Error::new(code, format!("automatic sign-in (9001) failed, request not sent: {why}")))
    }

    /// The code and output a finished or pending request gives.
    pub fn result_of(&self, id: i64) -> Result<Outcome> {
        let row =
            self.journal.request(id)?.ok_or_else(|| Error::new(Code::NotFound, format!("no request with id {id}")))?;
        match (row.mi_code, row.result) {
            (Some(code), Some(result)) => Ok(Outcome { request_id: id, code: Code::from_i32(code), output: result }),
            _ => Ok(Outcome { request_id: id, code: Code::Pending, output: pending_output(&row.msgid, &row.state) }),
        }
    }

    /// The journal record of a request as JSON (ABI.md `mi_get_request`).
    pub fn record_of(&self, id: i64) -> Result<String> {
        let r =
            self.journal.request(id)?.ok_or_else(|| Error::new(Code::NotFound, format!("no request with id {id}")))?;
        Ok(json!({
            "request_id": r.id,
            "msgid": r.msgid,
            "infno": r.infno,
            "state": r.state,
            "priority": r.priority,
            "attempts": r.attempts,
            "mode": r.mode,
            "mi_code": r.mi_code,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "last_error": r.last_error,
            "reversal_of": r.reversal_of,
            "reversed_by": r.reversed_by,
        })
        .to_string())
    }
}

/// The first string value of `key` anywhere in a JSON value.
fn find_str(v: &Value, key: &str) -> Option<String> {
    match v {
        Value::Object(m) => {
            m.get(key).and_then(Value::as_str).map(str::to_owned).or_else(|| m.values().find_map(|v| find_str(v, key)))
        }
        Value::Array(a) => a.iter().find_map(|v| find_str(v, key)),
        _ => None,
    }
}
