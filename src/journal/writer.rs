//! The journal writer: group commit for what many threads write at once. Async
//! callers hand in their requests, workers their outcomes and claims; one writer
//! thread commits whatever has arrived in a single transaction (each operation in
//! its own savepoint, so one failure spoils nothing else), and a flusher thread
//! flushes the WAL once for every batch committed meanwhile, answering each
//! thread only after that flush. The writer commits the next batch while the disk
//! flushes the last, so neither waits for the other.
//!
//! A worker's claim begins its attempt in the same commit, and the attempt is on
//! disk before the worker sends; its outcome is on disk before it claims again.
//! How a claim is made is the business of those the writer serves ([`Claims`]);
//! the writer only runs it inside its transaction.

use super::{Attempt, Journal, NewRequest, Next, Tx};
use crate::error::{Code, Error, Result};
use crossbeam_channel::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The most operations one commit takes; more wait for the next.
const MAX_BATCH: usize = 1024;

/// What the writer needs from the workers it serves.
pub trait Claims: Send + Sync + 'static {
    /// A claimed request, as the workers need it.
    type Claimed: Send + 'static;
    /// The journal written to.
    fn journal(&self) -> &Journal;
    /// The owner whose claims the outcomes handed in move on.
    fn owner(&self) -> &str;
    /// Claims the next request inside the writer's transaction (in a savepoint of
    /// its own); `None` when nothing is due or the workers are stopping.
    fn claim(&self, tx: &Tx<'_>) -> Result<Option<Self::Claimed>>;
    /// A claim was committed but the commit could not be flushed to disk: put the
    /// request back unsent. Called on the flusher thread (never for a claim whose
    /// batch was rolled back: that claim never happened).
    fn put_back(&self, claimed: &Self::Claimed, why: &Error);
    /// `n` requests were queued and are on disk: wake the workers.
    fn queued(&self, n: usize);
}

/// A new async request, its envelope built by the caller's thread (its msgid is
/// set when it is sent).
pub struct Submission {
    pub request: NewRequest,
    pub envelope: String,
}

enum Op<C> {
    Submit(Submission, Sender<Result<i64>>),
    /// An outcome, and (`then_claim`) the worker's next request in the same commit.
    Advance {
        id: i64,
        attempt: Option<Attempt>,
        next: Next,
        then_claim: bool,
        reply: Sender<Result<Option<C>>>,
    },
    Claim(Sender<Result<Option<C>>>),
}

/// How a batch ended, as each of its operations is told.
#[derive(Clone)]
enum Fate {
    /// Committed and on disk.
    Kept,
    /// Committed, but the flush failed: it may not survive a power cut.
    NotFlushed(Error),
    /// Rolled back: nothing of it was written.
    RolledBack(Error),
}

impl Fate {
    fn result(self) -> Result<()> {
        match self {
            Fate::Kept => Ok(()),
            Fate::NotFlushed(e) | Fate::RolledBack(e) => Err(e),
        }
    }
}

/// Tells one thread how its operation ended, given how its batch ended.
type Answer = Box<dyn FnOnce(Fate) + Send>;

pub struct Writer<W: Claims> {
    tx: Mutex<Option<Sender<Op<W::Claimed>>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl<W: Claims> Writer<W> {
    /// Starts the writer and flusher threads. At most `capacity` requests may wait
    /// in the journal: past it a submission is `MI_E_BUSY`.
    pub fn start(served: Arc<W>, capacity: u64) -> Writer<W> {
        let (tx, rx) = crossbeam_channel::unbounded::<Op<W::Claimed>>();
        let (flush_tx, flush_rx) = crossbeam_channel::unbounded::<Vec<Answer>>();
        let s = served.clone();
        let writer = std::thread::Builder::new()
            .name("mi-journal-writer".into())
            .spawn(move || write(&s, capacity, rx, flush_tx))
            .expect("the OS refused the journal writer thread");
        let flusher = std::thread::Builder::new()
            .name("mi-journal-flush".into())
            .spawn(move || flush(served.journal(), flush_rx))
            .expect("the OS refused the journal flush thread");
        Writer { tx: Mutex::new(Some(tx)), threads: Mutex::new(vec![writer, flusher]) }
    }

    /// Hands an operation to the writer and waits for its answer; `MI_E_SHUTDOWN`
    /// once the writer is stopped (the caller may then write directly).
    fn run<T>(&self, op: impl FnOnce(Sender<Result<T>>) -> Op<W::Claimed>) -> Result<T> {
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

    /// Moves a request on after an attempt (see [`Tx::advance`]); with
    /// `then_claim`, claims the worker's next request in the same commit.
    pub fn advance(
        &self,
        id: i64,
        attempt: Option<&Attempt>,
        next: &Next,
        then_claim: bool,
    ) -> Result<Option<W::Claimed>> {
        let (attempt, next) = (attempt.cloned(), next.clone());
        self.run(|reply| Op::Advance { id, attempt, next, then_claim, reply })
    }

    /// Claims the next request for a worker.
    pub fn claim(&self) -> Result<Option<W::Claimed>> {
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
    Box::new(move |fate: Fate| {
        let _ = reply.send(fate.result().and(r));
    })
}

/// `reply_with` for an operation that claimed a request: when its commit could not
/// be flushed, the worker is told so and the claimed request is put back unsent.
/// (A claim rolled back with its batch never happened: there is nothing to put
/// back, and the row may meanwhile be another process's.)
fn reply_claimed<W: Claims>(
    served: &Arc<W>,
    reply: Sender<Result<Option<W::Claimed>>>,
    r: Result<Option<W::Claimed>>,
) -> Answer {
    let served = served.clone();
    Box::new(move |fate: Fate| {
        if let (Fate::NotFlushed(e), Ok(Some(c))) = (&fate, &r) {
            served.put_back(c, e);
        }
        let _ = reply.send(fate.result().and(r));
    })
}

fn write<W: Claims>(served: &Arc<W>, capacity: u64, rx: Receiver<Op<W::Claimed>>, flusher: Sender<Vec<Answer>>) {
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
        let committed = served.journal().batch(|tx| {
            let mut submits = Vec::new();
            for op in pending.take().into_iter().flatten() {
                match op {
                    Op::Submit(s, reply) => submits.push((s, reply)),
                    Op::Advance { id, attempt, next, then_claim, reply } => {
                        let r =
                            tx.isolated(|tx| tx.advance(id, served.owner(), attempt.as_ref(), &next)).and_then(|r| r);
                        let r = r.map(|()| then_claim.then(|| claim_along(served.as_ref(), tx)).flatten());
                        answers.push(reply_claimed(served, reply, r));
                    }
                    Op::Claim(reply) => {
                        let r = tx.isolated(|tx| served.claim(tx)).and_then(|r| r);
                        answers.push(reply_claimed(served, reply, r));
                    }
                }
            }
            if submits.is_empty() {
                return Ok(());
            }
            // The queue's capacity, counted by the journal itself: exact whatever
            // other processes sharing it have queued. A count that cannot be read
            // fails the submissions, not the outcomes and claims beside them.
            let room = match tx.waiting() {
                Ok(waiting) => capacity.saturating_sub(waiting) as usize,
                Err(e) => {
                    for (_, reply) in submits {
                        answers.push(reply_with(reply, Err(e.clone())));
                    }
                    return Ok(());
                }
            };
            if submits.len() > room {
                let full =
                    Error::new(Code::Busy, format!("the async queue is full ({capacity} requests waiting); try later"));
                for (_, reply) in submits.drain(room..) {
                    answers.push(reply_with(reply, Err(full.clone())));
                }
            }
            let rows: Vec<(NewRequest, String)> =
                submits.iter_mut().map(|(s, _)| (s.request.clone(), std::mem::take(&mut s.envelope))).collect();
            let inserted = if only_submits {
                tx.insert_queued(&rows)
            } else {
                tx.isolated(|tx| tx.insert_queued(&rows)).and_then(|r| r)
            };
            drop(rows);
            let mut accepted = 0usize;
            match inserted {
                Ok(results) => {
                    for ((_, reply), r) in submits.into_iter().zip(results) {
                        accepted += usize::from(r.is_ok());
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
                // The workers are woken only once the requests are kept.
                let served = served.clone();
                answers.push(Box::new(move |fate: Fate| {
                    if let Fate::Kept = fate {
                        served.queued(accepted);
                    }
                }));
            }
            Ok(())
        });
        match committed {
            Ok(((), true)) => {
                let _ = flusher.send(answers);
            }
            Ok(((), false)) => answers.into_iter().for_each(|a| a(Fate::Kept)),
            Err(e) => {
                log::error!("journal commit of {count} operations failed: {e}");
                answers.into_iter().for_each(|a| a(Fate::RolledBack(e.clone())));
                pending.into_iter().flatten().for_each(|op| refuse(op, e.clone()));
            }
        }
    }
}

/// Tells the waiting thread its operation failed (its batch never began).
fn refuse<C>(op: Op<C>, e: Error) {
    match op {
        Op::Submit(_, reply) => {
            let _ = reply.send(Err(e));
        }
        Op::Advance { reply, .. } | Op::Claim(reply) => {
            let _ = reply.send(Err(e));
        }
    }
}

/// A claim made along with an outcome: when it fails, the outcome still stands and
/// the worker claims on its own next time.
fn claim_along<W: Claims>(served: &W, tx: &Tx<'_>) -> Option<W::Claimed> {
    match tx.isolated(|tx| served.claim(tx)).and_then(|r| r) {
        Ok(c) => c,
        Err(e) => {
            log::error!("claiming the next request failed: {e}");
            None
        }
    }
}

/// Flushes the WAL once for every batch committed since the last flush, then
/// answers their threads.
fn flush(journal: &Journal, rx: Receiver<Vec<Answer>>) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        let fate = match journal.flush() {
            Ok(()) => Fate::Kept,
            Err(e) => {
                log::error!("{e}");
                Fate::NotFlushed(e)
            }
        };
        batches.into_iter().flatten().for_each(|a| a(fate.clone()));
    }
}
