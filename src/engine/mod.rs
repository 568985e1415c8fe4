//! The delivery engine: workers that take requests from the journal's queue in
//! priority order and send them, and the maintenance thread (heartbeat, recovery
//! of what dead processes left, retention). The journal is the queue: whatever a
//! crash leaves behind is found again by the same claim.

pub mod maintenance;

use crate::call::queue::Claimed;
use crate::call::Core;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker waits before looking at the journal again, for retries
/// coming due and work queued by other processes.
const IDLE_POLL: Duration = Duration::from_millis(100);

pub struct Engine {
    core: Arc<Core>,
    busy: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
    maintenance: Option<maintenance::Maintenance>,
}

impl Engine {
    pub fn start(core: Arc<Core>, workers: u32) -> Engine {
        let busy = Arc::new(AtomicUsize::new(0));
        let maintenance = maintenance::Maintenance::start(core.clone());
        let workers = (0..workers)
            .map(|n| {
                let (core, busy) = (core.clone(), busy.clone());
                std::thread::Builder::new()
                    .name(format!("mi-worker-{n}"))
                    .spawn(move || work(&core, &busy))
                    .expect("the OS refused a worker thread")
            })
            .collect();
        Engine { core, busy, workers, maintenance: Some(maintenance) }
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Workers sending right now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Acquire)
    }

    /// Stops claiming, waits until `deadline` for sends in flight, then breaks off
    /// those still waiting for the gateway (their workers record them as they would
    /// a connection that broke off: a settlement becomes uncertain, never resent),
    /// and joins every thread: when this returns, no thread of the engine runs, so
    /// the library may be unloaded. Queued requests stay in the journal.
    pub fn stop(&mut self, deadline: Instant) {
        self.core.stopping.store(true, Ordering::Release);
        self.core.wake.notify();
        while self.workers.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if self.workers.iter().any(|w| !w.is_finished()) {
            log::warn!("shutdown: the deadline passed with sends in flight; breaking them off");
            self.core.interrupt_sends();
        }
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
        if let Some(m) = self.maintenance.take() {
            m.stop();
        }
    }
}

fn work(core: &Core, busy: &AtomicUsize) {
    let stop = &core.stopping;
    let mut seen = core.wake.current();
    // The request claimed in the commit that recorded the last one's outcome.
    let mut next: Option<Claimed> = None;
    loop {
        let claimed = match next.take() {
            // A claimed request is sent even when shutdown has begun: its attempt may
            // already be recorded, and shutdown waits for sends in flight.
            Some(c) => c,
            None if stop.load(Ordering::Acquire) => break,
            None => match core.claim_next() {
                Ok(Some(c)) => c,
                Ok(None) => {
                    seen = core.wake.wait(seen, IDLE_POLL);
                    continue;
                }
                Err(e) => {
                    log::error!("worker cannot read the journal: {e}");
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            },
        };
        let id = claimed.id();
        let want_next = !stop.load(Ordering::Acquire);
        busy.fetch_add(1, Ordering::AcqRel);
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            core.execute_claimed(claimed, want_next.then_some(&mut next))
        }));
        busy.fetch_sub(1, Ordering::AcqRel);
        if done.is_err() {
            log::error!("worker panicked while sending request {id}; applying the recovery rules to it");
            maintenance::give_up(core, id);
        }
    }
}
