//! The journal writer: group commit for what many threads write at once. Async
//! callers hand in their requests, workers their claims and outcomes; one writer
//! thread commits whatever has arrived in a single transaction (each operation in
//! its own savepoint, so one failure spoils nothing else), and a flusher thread
//! flushes the WAL once for every batch committed meanwhile, answering each
//! thread only after that flush. The writer commits the next batch while the disk
//! flushes the last, so neither waits for the other.
//!
//! A worker's claim begins its attempt in the same commit, and the attempt is on
//! disk before the worker sends; its outcome is on disk before it claims again.

use crate::call::{Claimed, Core};
use crate::error::{Code, Error, Result};
use crate::journal::{AttemptRecord, Final, NewRequest};
use crate::protocol::envelope::CallInput;
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The most operations one commit takes; more wait for the next.
const MAX_BATCH: usize = 1024;

/// A new async request, its envelope built by the caller's thread.
pub struct Submission {
    pub infno: String,
    pub call: CallInput,
    pub priority: i32,
    pub envelope: String,
    /// Where it came from outside the ABI (a drop-box file), unique in the journal.
    pub source: Option<String>,
}

enum Op {
    Submit(Submission, Sender<Result<i64>>),
    /// An outcome, and (`then_claim`) the worker's next request in the same commit.
    Finish {
        id: i64,
        attempt: Option<(i64, AttemptRecord)>,
        fin: Final,
        then_claim: bool,
        reply: Sender<Claimed2>,
    },
    Retry {
        id: i64,
        attempt: (i64, AttemptRecord),
        last_error: String,
        next_at: i64,
        then_claim: bool,
        reply: Sender<Claimed2>,
    },
    Claim(Sender<Result<Option<Claimed>>>),
}

impl Op {
    /// Tells the waiting thread its operation failed.
    fn refuse(self, e: Error) {
        match self {
            Op::Submit(_, reply) => {
                let _ = reply.send(Err(e));
            }
            Op::Finish { reply, .. } | Op::Retry { reply, .. } | Op::Claim(reply) => {
                let _ = reply.send(Err(e));
            }
        }
    }
}

/// How a recorded outcome ended, with the next request claimed along with it.
type Claimed2 = Result<Option<Claimed>>;

/// Tells one thread how its operation ended, given how the flush ended.
type Answer = Box<dyn FnOnce(Result<()>) + Send>;

pub struct Writer {
    tx: Mutex<Option<Sender<Op>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Writer {
    pub fn start(core: Arc<Core>) -> Writer {
        let (tx, rx) = crossbeam_channel::unbounded::<Op>();
        let (flush_tx, flush_rx) = crossbeam_channel::unbounded::<Vec<Answer>>();
        let c = core.clone();
        let writer = std::thread::Builder::new()
            .name("mi-journal-writer".into())
            .spawn(move || write(&c, rx, flush_tx))
            .expect("the OS refused the journal writer thread");
        let flusher = std::thread::Builder::new()
            .name("mi-journal-flush".into())
            .spawn(move || flush(&core, flush_rx))
            .expect("the OS refused the journal flush thread");
        Writer { tx: Mutex::new(Some(tx)), threads: Mutex::new(vec![writer, flusher]) }
    }

    /// Hands an operation to the writer and waits for its answer; `MI_E_SHUTDOWN`
    /// once the writer is stopped (the caller may then write directly).
    fn run<T>(&self, op: impl FnOnce(Sender<Result<T>>) -> Op) -> Result<T> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let sent = match &*self.tx.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(tx) => tx.send(op(reply)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(Error::new(Code::Shutdown, "the SDK is shutting down"));
        }
        answer.recv().unwrap_or_else(|_| Err(Error::new(Code::Internal, "the journal writer stopped")))
    }

    /// Commits a new `queued` request and returns its id.
    pub fn submit(&self, s: Submission) -> Result<i64> {
        self.run(|reply| Op::Submit(s, reply))
    }

    /// Records a request's outcome; with `then_claim`, claims the worker's next
    /// request in the same commit.
    pub fn finish(
        &self,
        id: i64,
        attempt: Option<(i64, &AttemptRecord)>,
        fin: &Final,
        then_claim: bool,
    ) -> Result<Option<Claimed>> {
        let attempt = attempt.map(|(n, a)| (n, a.clone()));
        self.run(|reply| Op::Finish { id, attempt, fin: fin.clone(), then_claim, reply })
    }

    /// Records a failed attempt to be resent at `next_at`; with `then_claim`, claims
    /// the worker's next request in the same commit.
    pub fn retry_later(
        &self,
        id: i64,
        attempt: (i64, &AttemptRecord),
        last_error: &str,
        next_at: i64,
        then_claim: bool,
    ) -> Result<Option<Claimed>> {
        let attempt = (attempt.0, attempt.1.clone());
        self.run(|reply| Op::Retry { id, attempt, last_error: last_error.to_string(), next_at, then_claim, reply })
    }

    /// Claims the next request for a worker (see `Core::claim_in`).
    pub fn claim(&self) -> Result<Option<Claimed>> {
        self.run(Op::Claim)
    }

    /// Commits and flushes what was handed in already, then stops both threads.
    pub fn stop(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        for t in std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner())) {
            let _ = t.join();
        }
    }
}

fn reply_with<T: Send + 'static>(reply: Sender<Result<T>>, r: Result<T>) -> Answer {
    Box::new(move |flushed: Result<()>| {
        let _ = reply.send(flushed.and(r));
    })
}

/// `reply_with` for an operation that claimed a request: when the flush fails, the
/// worker is told so and the claimed request is put back unsent.
fn reply_claimed(core: &Arc<Core>, reply: Sender<Claimed2>, r: Claimed2) -> Answer {
    let core = core.clone();
    Box::new(move |flushed: Result<()>| {
        if let (Err(e), Ok(Some(c))) = (&flushed, &r) {
            core.put_back(c, e);
        }
        let _ = reply.send(flushed.and(r));
    })
}

fn write(core: &Arc<Core>, rx: Receiver<Op>, flusher: Sender<Vec<Answer>>) {
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        ops.extend(rx.try_iter().take(MAX_BATCH - 1));
        let count = ops.len();
        // Each operation's answer, given once the batch's fate is known: a failed
        // commit turns every one of them into that failure.
        let mut answers: Vec<Answer> = Vec::with_capacity(count + 1);
        // A batch of submissions alone needs no savepoint (its page copies were a
        // tenth of the writer's time): if the insert fails, the batch fails whole.
        let only_submits = ops.iter().all(|op| matches!(op, Op::Submit(..)));
        // Still here afterwards only if the transaction never began.
        let mut pending = Some(ops);
        let committed = core.journal.batch(|b| {
            let mut submits = Vec::new();
            for op in pending.take().into_iter().flatten() {
                match op {
                    Op::Submit(s, reply) => submits.push((s, reply)),
                    Op::Finish { id, attempt, fin, then_claim, reply } => {
                        let r = b.finish(id, attempt.as_ref().map(|(n, a)| (*n, a)), &fin);
                        let r = r.map(|()| then_claim.then(|| claim_along(core, b)).flatten());
                        answers.push(reply_claimed(core, reply, r));
                    }
                    Op::Retry { id, attempt, last_error, next_at, then_claim, reply } => {
                        let r = b.retry_later(id, (attempt.0, &attempt.1), &last_error, next_at, None);
                        let r = r.map(|()| then_claim.then(|| claim_along(core, b)).flatten());
                        answers.push(reply_claimed(core, reply, r));
                    }
                    Op::Claim(reply) => {
                        let r = core.claim_in(b);
                        answers.push(reply_claimed(core, reply, r));
                    }
                }
            }
            if submits.is_empty() {
                return Ok(());
            }
            let rows: Vec<(NewRequest<'_>, String)> = submits
                .iter_mut()
                .map(|(s, _)| {
                    let mut req = core.new_request(&s.infno, &s.call, "async", s.priority, None);
                    req.source = s.source.as_deref();
                    (req, std::mem::take(&mut s.envelope))
                })
                .collect();
            let inserted = if only_submits { b.insert_whole(&rows) } else { b.insert(&rows) };
            drop(rows);
            let mut accepted = 0i64;
            match inserted {
                Ok(results) => {
                    for ((_, reply), r) in submits.into_iter().zip(results) {
                        accepted += i64::from(r.is_ok());
                        answers.push(reply_with(reply, r.map(|(id, _)| id)));
                    }
                }
                Err(e) => {
                    for (_, reply) in submits {
                        answers.push(reply_with(reply, Err(e.clone())));
                    }
                    if only_submits {
                        // Nothing else is in the batch: roll back what the insert left.
                        return Err(e);
                    }
                }
            }
            if accepted > 0 {
                // Counted and the workers woken only once the requests are kept.
                let core = core.clone();
                answers.push(Box::new(move |flushed: Result<()>| {
                    if flushed.is_ok() {
                        core.queued.fetch_add(accepted, Ordering::AcqRel);
                        core.wake.notify();
                    }
                }));
            }
            Ok(())
        });
        match committed {
            Ok(((), true)) => {
                let _ = flusher.send(answers);
            }
            Ok(((), false)) => answers.into_iter().for_each(|a| a(Ok(()))),
            Err(e) => {
                log::error!("journal commit of {count} operations failed: {e}");
                answers.into_iter().for_each(|a| a(Err(e.clone())));
                pending.into_iter().flatten().for_each(|op| op.refuse(e.clone()));
            }
        }
    }
}

/// A claim made along with an outcome: when it fails, the outcome still stands and
/// the worker claims on its own next time.
fn claim_along(core: &Core, b: &crate::journal::Batch<'_>) -> Option<Claimed> {
    if core.stopping.load(Ordering::Acquire) {
        return None;
    }
    core.claim_in(b).unwrap_or_else(|e| {
        log::error!("claiming the next request failed: {e}");
        None
    })
}

/// Flushes the WAL once for every batch committed since the last flush, then
/// answers their threads.
fn flush(core: &Core, rx: Receiver<Vec<Answer>>) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        let flushed = core.journal.sync_wal();
        if let Err(e) = &flushed {
            log::error!("{e}");
        }
        batches.into_iter().flatten().for_each(|a| a(flushed.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::journal::Journal;
    use serde_json::{json, Value};

    /// A core on a real journal file, talking to a real simulator on loopback.
    fn core_with_writer(sim: &mi_sim::Sim, dir: &std::path::Path) -> Arc<Core> {
        let cfg = json!({
            "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "t", "mdtrtarea_admvs": "440300",
                            "opter": "0001", "opter_name": "t"},
            "gateway": {"url": sim.service_url()},
            "journal": {"path": "j.db"},
            "log": {"dir": "logs"}
        });
        let cfg = Config::from_json(&cfg.to_string(), dir).unwrap();
        let journal = Journal::open(&cfg.journal_path(), "full").unwrap();
        let core = Arc::new(Core::new(cfg, journal, "writer-test".into()).unwrap());
        let _ = core.writer.set(Writer::start(core.clone()));
        core
    }

    fn record(core: &Core, id: i64) -> Value {
        serde_json::from_str(&core.record_of(id).unwrap()).unwrap()
    }

    #[test]
    fn a_claim_whose_flush_fails_is_put_back_and_never_sent() {
        let sim = mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let core = core_with_writer(&sim, dir.path());
        let w = core.writer.get().unwrap();
        let input = json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234",
                                    "psn_cert_type": "01", "certno": "440301199001011234"}});
        let submit = || core.submit("1101", CallInput::parse(&input.to_string()).unwrap(), 0, None).unwrap();

        // Not signed in yet: the claim begins no attempt.
        let first = submit();
        core.journal.fail_flushes.store(1, Ordering::Release);
        let e = w.claim().err().expect("the worker is told the flush failed");
        assert_eq!(e.code, Code::Journal);
        assert_eq!(record(&core, first)["state"], "queued", "put back: {}", record(&core, first));

        // Signed in: the claim begins the attempt in the same commit.
        let c = w.claim().unwrap().unwrap();
        assert_eq!(core.execute_claimed(c, None).code, Code::Ok, "sends after signing in");
        let second = submit();
        core.journal.fail_flushes.store(1, Ordering::Release);
        assert_eq!(w.claim().err().map(|e| e.code), Some(Code::Journal));
        let r = record(&core, second);
        assert_eq!(r["state"], "retry_wait", "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
        let db = rusqlite::Connection::open(core.journal.path()).unwrap();
        let (outcome, finished): (String, Option<String>) = db
            .query_row("SELECT outcome, finished_at FROM mi_attempt WHERE request_id = ?1", [second], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(outcome, "never_sent");
        assert!(finished.is_some(), "the attempt is closed");

        // Neither left for the platform while the disk refused; the second goes a
        // second later.
        let ledger = sim.ledger();
        assert_eq!((ledger["by_infno"]["1101"].as_u64(), ledger["rejected"].as_u64()), (Some(1), Some(0)));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let c = w.claim().unwrap().unwrap();
        assert_eq!(c.id(), second);
        assert_eq!(core.execute_claimed(c, None).code, Code::Ok);
        assert_eq!(record(&core, second)["state"], "succeeded");
        assert_eq!(sim.ledger()["by_infno"]["1101"], 2);
        w.stop();
    }
}
