//! Durable async submission with group commit: callers hand their request to one
//! writer thread and wait; the writer commits whatever has arrived in a single
//! transaction and passes the batch to a flusher thread, which flushes the WAL
//! (one fsync for every batch committed meanwhile) and only then answers each
//! caller with its id. The writer commits the next batch while the disk flushes
//! the last, so neither waits for the other.

use crate::call::Core;
use crate::error::{Code, Error, Result};
use crate::protocol::envelope::CallInput;
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The most requests one commit takes; more wait for the next.
const MAX_BATCH: usize = 1024;

struct Item {
    infno: String,
    call: CallInput,
    priority: i32,
    /// Built by the caller's thread, so the single writer only writes.
    envelope: String,
    /// Where it came from outside the ABI (a drop-box file), unique in the journal.
    source: Option<String>,
    reply: Sender<Result<i64>>,
}

/// A committed batch waiting for the WAL flush: each caller with its answer.
type Committed = Vec<(Sender<Result<i64>>, Result<i64>)>;

pub struct Submitter {
    core: Arc<Core>,
    tx: Mutex<Option<Sender<Item>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Submitter {
    pub fn start(core: Arc<Core>) -> Submitter {
        let (tx, rx) = crossbeam_channel::unbounded::<Item>();
        let (flush_tx, flush_rx) = crossbeam_channel::unbounded::<Committed>();
        let c = core.clone();
        let writer = std::thread::Builder::new()
            .name("mi-journal-writer".into())
            .spawn(move || write(&c, rx, flush_tx))
            .expect("the OS refused the journal writer thread");
        let c = core.clone();
        let flusher = std::thread::Builder::new()
            .name("mi-journal-flush".into())
            .spawn(move || flush(&c, flush_rx))
            .expect("the OS refused the journal flush thread");
        Submitter { core, tx: Mutex::new(Some(tx)), threads: Mutex::new(vec![writer, flusher]) }
    }

    /// Commits a request and returns its id, or `MI_E_BUSY` past `queue_capacity`.
    pub fn submit(&self, infno: &str, call: CallInput, priority: i32, source: Option<&str>) -> Result<i64> {
        let cap = self.core.cfg.queue_capacity as i64;
        if self.core.queued.load(Ordering::Acquire) >= cap {
            return Err(Error::new(Code::Busy, format!("the async queue is full ({cap} requests waiting); try later")));
        }
        // The msgid is filled in when the envelope is sent.
        let envelope = self.core.envelope_text(infno, "", &call)?;
        let (reply, answer) = crossbeam_channel::bounded(1);
        let item =
            Item { infno: infno.to_string(), call, priority, envelope, source: source.map(str::to_owned), reply };
        let sent = match &*self.tx.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(tx) => tx.send(item).is_ok(),
            None => false,
        };
        if !sent {
            return Err(Error::new(Code::Shutdown, "the SDK is shutting down"));
        }
        answer.recv().unwrap_or_else(|_| Err(Error::new(Code::Internal, "the journal writer stopped")))
    }

    /// Commits and flushes what was handed in already, then stops both threads.
    pub fn stop(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        for t in std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner())) {
            let _ = t.join();
        }
    }
}

fn write(core: &Core, rx: Receiver<Item>, flusher: Sender<Committed>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(MAX_BATCH - 1));
        let rows: Vec<_> = batch
            .iter_mut()
            .map(|Item { infno, call, priority, envelope, source, .. }| {
                let mut req = core.new_request(infno, call, "async", *priority, None);
                req.source = source.as_deref();
                (req, std::mem::take(envelope))
            })
            .collect();
        let results = core.journal.insert_many_unsynced(&rows);
        drop(rows);
        match results {
            Ok((results, needs_flush)) => {
                let answers: Committed =
                    batch.into_iter().zip(results).map(|(it, r)| (it.reply, r.map(|(id, _)| id))).collect();
                if needs_flush {
                    let _ = flusher.send(answers);
                } else {
                    answer(core, answers);
                }
            }
            Err(e) => {
                log::error!("journal commit of {} async requests failed: {e}", batch.len());
                for it in batch {
                    let _ = it.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Flushes the WAL once for every batch committed since the last flush, then
/// answers their callers.
fn flush(core: &Core, rx: Receiver<Committed>) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        match core.journal.sync_wal() {
            Ok(()) => batches.into_iter().for_each(|b| answer(core, b)),
            Err(e) => {
                log::error!("{e}");
                for (reply, r) in batches.into_iter().flatten() {
                    let id = r.map(|id| format!(" (request {id})")).unwrap_or_default();
                    let _ = reply.send(Err(Error::journal(format!("{}{id}", e.message))));
                }
            }
        }
    }
}

/// Answers the callers of a kept batch and wakes the workers.
fn answer(core: &Core, answers: Committed) {
    let accepted = answers.iter().filter(|(_, r)| r.is_ok()).count() as i64;
    core.queued.fetch_add(accepted, Ordering::AcqRel);
    for (reply, r) in answers {
        let _ = reply.send(r);
    }
    if accepted > 0 {
        core.wake.notify();
    }
}
