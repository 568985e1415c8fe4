//! The async engine: a fixed pool of workers that send journaled requests.
//!
//! This is the basic engine: first in, first out, one send per request. Priority
//! order, retries with backoff, multi-process claims and crash recovery are the
//! engine issue's work and are not pretended here.

use crate::call::Core;
use crate::error::{Code, Error, Result};
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Engine {
    tx: Option<Sender<i64>>,
    depth: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    busy_workers: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
    capacity: u64,
}

impl Engine {
    pub fn start(core: Arc<Core>, workers: u32, capacity: u64) -> Engine {
        let (tx, rx) = crossbeam_channel::unbounded::<i64>();
        let depth = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicUsize::new(0));
        let workers = (0..workers)
            .map(|n| {
                let (core, rx, depth, stop, busy) = (
                    core.clone(),
                    rx.clone(),
                    depth.clone(),
                    stop.clone(),
                    busy.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("mi-worker-{n}"))
                    .spawn(move || work(core, rx, depth, stop, busy))
                    .expect("the OS refused a worker thread")
            })
            .collect();
        Engine {
            tx: Some(tx),
            depth,
            stop,
            busy_workers: busy,
            workers,
            capacity,
        }
    }

    /// Takes a queue slot, or `MI_E_BUSY`. Taken before journaling so a refused
    /// request is never half-accepted; give it back with [`Engine::release`].
    pub fn reserve(&self) -> Result<()> {
        let cap = self.capacity;
        self.depth
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                (d < cap).then_some(d + 1)
            })
            .map(|_| ())
            .map_err(|_| {
                Error::new(
                    Code::Busy,
                    format!("the async queue is full ({cap} requests); try later"),
                )
            })
    }

    pub fn release(&self) {
        self.depth.fetch_sub(1, Ordering::AcqRel);
    }

    /// Queues a journaled request whose slot was reserved.
    pub fn submit(&self, id: i64) -> Result<()> {
        match &self.tx {
            Some(tx) if tx.send(id).is_ok() => Ok(()),
            _ => {
                self.release();
                Err(Error::new(
                    Code::Shutdown,
                    "the SDK is shutting down; the request stays queued in the journal",
                ))
            }
        }
    }

    /// Queues a request found in the journal at start-up, past the capacity check:
    /// it was accepted before and must not be refused now.
    pub fn resubmit(&self, id: i64) {
        self.depth.fetch_add(1, Ordering::AcqRel);
        let _ = self.submit(id);
    }

    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Acquire)
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Whether a worker is sending right now.
    pub fn busy(&self) -> bool {
        self.busy_workers.load(Ordering::Acquire) > 0
    }

    /// Stops taking work, waits until `deadline` for workers to finish their send,
    /// and leaves whatever is still queued in the journal.
    pub fn stop(&mut self, deadline: Instant) {
        self.stop.store(true, Ordering::Release);
        self.tx = None;
        for w in std::mem::take(&mut self.workers) {
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if w.is_finished() {
                let _ = w.join();
            }
            // A worker still inside a send finishes it and records the outcome on its
            // own; it holds its own reference to the journal.
        }
    }
}

fn work(
    core: Arc<Core>,
    rx: Receiver<i64>,
    depth: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    busy: Arc<AtomicUsize>,
) {
    while let Ok(id) = rx.recv() {
        depth.fetch_sub(1, Ordering::AcqRel);
        if stop.load(Ordering::Acquire) {
            break;
        }
        busy.fetch_add(1, Ordering::AcqRel);
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.execute(id)));
        busy.fetch_sub(1, Ordering::AcqRel);
        if done.is_err() {
            log::error!("worker panicked while sending request {id}");
        }
    }
}
