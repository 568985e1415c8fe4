//! The call's side of the journal's queue: async submissions, the workers' claims
//! (each beginning its attempt in the claiming commit when it can), and a worker's
//! record of how a request moved on, all through the journal's group-commit writer.
//! (A sync call writes directly: no hand-over on the cashier's path.)

use super::Core;
use crate::error::{Code, Error, Result};
use crate::journal::writer::{Claims, Submission};
use crate::journal::{Attempt, CallMode, Journal, Next, Recovery, RequestRow, Tx, Whose};
use crate::protocol::envelope::{self, CallInput, SendTime};
use crate::protocol::retry::AttemptOutcome;
use crate::protocol::transactions;
use std::sync::atomic::Ordering;

/// An attempt whose start is on disk: its number, and the msgid and envelope
/// exactly as they go out.
#[derive(Debug, Clone)]
pub struct Begun {
    pub no: i64,
    pub msgid: String,
    pub envelope: String,
}

/// A request a worker claimed, with its attempt, operator and sign_no when that
/// attempt was begun in the claiming commit.
pub struct Claimed {
    pub row: RequestRow,
    pub(super) begun: Option<(Begun, String, String)>,
}

impl Claimed {
    pub fn id(&self) -> i64 {
        self.row.id
    }
}

/// Where a worker wants its next request, claimed in the commit that records the
/// outcome of the current one (`None`: no claim, e.g. while shutting down).
pub type NextClaim<'a> = Option<&'a mut Option<Claimed>>;

impl Claims for Core {
    type Claimed = Claimed;

    fn journal(&self) -> &Journal {
        &self.journal
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    /// Claims the next request. When the operator's sign_no is at hand the attempt
    /// is begun in the same commit (the envelope refreshed, a fresh msgid for a
    /// resent query); otherwise [`Core::execute_claimed`] signs in first.
    fn claim(&self, tx: &Tx<'_>) -> Result<Option<Claimed>> {
        if self.stopping.load(Ordering::Acquire) {
            return Ok(None);
        }
        let Some(mut row) = tx.claim(&self.owner, self.clock.unix_ms())? else { return Ok(None) };
        let opter = self.opter_of(&row);
        let sign_no = if transactions::needs_sign_no(&row.infno) {
            match self.signins.get(&opter, &self.clock.today()) {
                Some(s) => s,
                None => return Ok(Some(Claimed { row, begun: None })),
            }
        } else {
            String::new()
        };
        let fresh = row.attempts > 0 && self.resendable(&row.infno);
        // An envelope that cannot be refreshed leaves the request only claimed: the
        // worker's own attempt then fails it with the journal's error.
        let Some(b) = self.begin_in(tx, &row, fresh, &row.msgid, &sign_no)? else {
            return Ok(Some(Claimed { row, begun: None }));
        };
        row.msgid.clone_from(&b.msgid);
        row.attempts = b.no;
        row.envelope.clone_from(&b.envelope);
        Ok(Some(Claimed { row, begun: Some((b, opter, sign_no)) }))
    }

    /// Puts back a request whose claim was committed but could not be flushed to
    /// disk: it is not sent, since its claim and attempt may not be kept. Its begun
    /// attempt is closed as never sent and it waits a second to be claimed again.
    /// When even that cannot be written, the next start recovers it (conservatively:
    /// a state-changing request with an open attempt becomes uncertain).
    fn put_back(&self, c: &Claimed, why: &Error) {
        let id = c.row.id;
        let msg = format!("not sent: the journal could not be flushed ({})", why.message);
        let r = self.journal.write(|tx| match &c.begun {
            Some((b, _, _)) => {
                let a = Attempt {
                    no: b.no,
                    outcome: Some(AttemptOutcome::NeverSent),
                    err_msg: Some(msg.clone()),
                    ..Default::default()
                };
                let at_ms = self.clock.unix_ms() + 1000;
                tx.advance(id, &self.owner, Some(&a), &Next::Retry { at_ms, last_error: msg.clone(), keep_owner: None })
            }
            None => tx.take_over(Whose::Mine { id, owner: &self.owner }, |_, _| Recovery::Requeue).map(drop),
        });
        match r {
            Ok(()) => log::warn!("request {id} ({}) {msg}; it will be sent later", c.row.infno),
            Err(e) => log::error!(
                "request {id} ({}) {msg}, and cannot be put back ({e}); the next start recovers it",
                c.row.infno
            ),
        }
    }

    fn queued(&self, _n: usize) {
        self.wake.notify();
    }
}

impl Core {
    /// Begins an attempt of `row` inside `tx`: its envelope with the send-time
    /// fields set now, under `msgid` or (`fresh`, a resent query) a new one.
    /// `None` when the journaled envelope cannot be read back (damaged).
    pub(super) fn begin_in(
        &self,
        tx: &Tx<'_>,
        row: &RequestRow,
        fresh: bool,
        msgid: &str,
        sign_no: &str,
    ) -> Result<Option<Begun>> {
        let msgid = if fresh { tx.next_msgid()? } else { msgid.to_string() };
        let inf_time = envelope::format_inf_time(self.clock.local());
        let at = SendTime { msgid: &msgid, inf_time: &inf_time, sign_no };
        let Ok(envelope) = envelope::refresh(&row.envelope, &at) else { return Ok(None) };
        let no = tx.begin_attempt(row.id, &self.owner, &msgid, &envelope)?;
        Ok(Some(Begun { no, msgid, envelope }))
    }

    /// Commits a new async request (group commit) and returns its id, or
    /// `MI_E_BUSY` past `queue_capacity`.
    pub fn submit(&self, infno: &str, call: CallInput, priority: i32, source: Option<&str>) -> Result<i64> {
        // The msgid is filled in when the envelope is sent.
        let envelope = self.envelope_text(infno, "", &call)?;
        let writer = self.writer.get().ok_or_else(|| Error::new(Code::Shutdown, "the SDK is not started"))?;
        let mut request = Core::new_request(infno, &call, CallMode::Async, priority);
        request.source = source.map(str::to_owned);
        writer.submit(Submission { request, envelope })
    }

    /// Claims the next request for a worker, through the writer's group commit.
    pub fn claim_next(&self) -> Result<Option<Claimed>> {
        self.through_writer(|w| w.claim(), || self.journal.write(|tx| self.claim(tx)))
    }

    /// Records how a worker's request moved on, through the writer's shared
    /// commit; with `claim`, the worker's next request is claimed along with it.
    pub(super) fn record_shared(
        &self,
        id: i64,
        attempt: Option<&Attempt>,
        next: &Next,
        claim: NextClaim<'_>,
    ) -> Result<()> {
        self.through_writer(
            |w| {
                let claimed = w.advance(id, attempt, next, claim.is_some())?;
                if let Some(slot) = claim {
                    *slot = claimed;
                }
                Ok(())
            },
            || self.journal.write(|tx| tx.advance(id, &self.owner, attempt, next)),
        )
    }

    /// An operation through the group-commit writer, or done directly when there is
    /// none or it has stopped (a worker finishing after shutdown's deadline).
    fn through_writer<T>(
        &self,
        shared: impl FnOnce(&crate::journal::writer::Writer<Core>) -> Result<T>,
        direct: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        match self.writer.get().map(shared) {
            Some(Err(e)) if e.code == Code::Shutdown => direct(),
            Some(r) => r,
            None => direct(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::journal::writer::Writer;
    use crate::journal::{Options, State};
    use serde_json::json;
    use std::sync::Arc;

    /// A core on a real journal file, talking to a real simulator on loopback.
    pub(crate) fn core_with_writer(sim: &mi_sim::Sim, dir: &std::path::Path, capacity: u64) -> Arc<Core> {
        let cfg = json!({
            "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "t", "mdtrtarea_admvs": "440300",
                            "opter": "0001", "opter_name": "t"},
            "gateway": {"url": sim.service_url()},
            "journal": {"path": "j.db"},
            "log": {"dir": "logs"}
        });
        let cfg = Config::from_json(&cfg.to_string(), dir).unwrap();
        let journal = Journal::open(&cfg.journal_path(), Options::of(&cfg, Clock::system())).unwrap();
        let core = Arc::new(Core::new(cfg, journal, "writer-test".into()).unwrap());
        let _ = core.writer.set(Writer::start(core.clone(), capacity));
        core
    }

    fn state(core: &Core, id: i64) -> (State, i64) {
        let r = core.journal.request(id).unwrap().unwrap();
        (r.state, r.attempts)
    }

    fn q1101() -> CallInput {
        let input = json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234",
                                    "psn_cert_type": "01", "certno": "440301199001011234"}});
        CallInput::parse(&input.to_string()).unwrap()
    }

    #[test]
    fn a_claim_whose_flush_fails_is_put_back_and_never_sent() {
        let sim = mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let core = core_with_writer(&sim, dir.path(), 100);
        let w = core.writer.get().unwrap();
        let submit = || core.submit("1101", q1101(), 0, None).unwrap();

        // Not signed in yet: the claim begins no attempt.
        let first = submit();
        core.journal.fail_flushes.store(1, Ordering::Release);
        let e = w.claim().err().expect("the worker is told the flush failed");
        assert_eq!(e.code, Code::Journal);
        assert_eq!(state(&core, first), (State::Queued, 0), "put back");

        // Signed in: the claim begins the attempt in the same commit.
        let c = w.claim().unwrap().unwrap();
        assert_eq!(core.execute_claimed(c, None).code, Code::Ok, "sends after signing in");
        let second = submit();
        core.journal.fail_flushes.store(1, Ordering::Release);
        assert_eq!(w.claim().err().map(|e| e.code), Some(Code::Journal));
        assert_eq!(state(&core, second), (State::RetryWait, 1));
        let a = &core.journal.attempts(second).unwrap()[0];
        assert_eq!(a.outcome, Some(AttemptOutcome::NeverSent), "the attempt is closed");

        // Neither left for the platform while the disk refused; the second goes a
        // second later.
        let ledger = sim.ledger();
        assert_eq!((ledger["by_infno"]["1101"].as_u64(), ledger["rejected"].as_u64()), (Some(1), Some(0)));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let c = w.claim().unwrap().unwrap();
        assert_eq!(c.id(), second);
        assert_eq!(core.execute_claimed(c, None).code, Code::Ok);
        assert_eq!(state(&core, second).0, State::Succeeded);
        assert_eq!(sim.ledger()["by_infno"]["1101"], 2);
        w.stop();
    }

    #[test]
    fn the_queue_capacity_is_counted_by_the_journal() {
        let sim = mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let core = core_with_writer(&sim, dir.path(), 3);
        let ids: Vec<i64> = (0..3).map(|_| core.submit("1101", q1101(), 0, None).unwrap()).collect();
        let e = core.submit("1101", q1101(), 0, None).unwrap_err();
        assert_eq!(e.code, Code::Busy);
        assert!(e.message.contains("full"), "{}", e.message);
        // Claimed requests no longer wait: there is room again.
        let c = core.claim_next().unwrap().unwrap();
        assert_eq!(c.id(), ids[0]);
        assert!(core.submit("1101", q1101(), 0, None).is_ok());
        assert_eq!(core.journal.waiting().unwrap(), 3);
        core.writer.get().unwrap().stop();
    }
}
