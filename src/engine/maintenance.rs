//! The background chores of a process using the journal: its heartbeat, taking
//! over what dead processes left claimed, the queue-depth count, and retention.

use crate::call::{uncertain_final, Core};
use crate::journal::{self, Recovery};
use crate::protocol::transactions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often this process says it is alive.
pub const HEARTBEAT: Duration = Duration::from_millis(1000);
/// After how long without a heartbeat a process counts as dead.
pub const DEAD_AFTER: Duration = Duration::from_millis(5000);
/// How often finished requests past `retain_days` are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

pub struct Maintenance {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Maintenance {
    /// Registers this process, recovers what dead ones left, and starts the chores.
    pub fn start(core: Arc<Core>) -> Maintenance {
        beat(&core);
        recover(&core);
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mi-maintenance".into())
            .spawn(move || {
                let mut last_purge: Option<Instant> = None;
                while !s.load(Ordering::Acquire) {
                    beat(&core);
                    recover(&core);
                    if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                        purge(&core);
                        last_purge = Some(Instant::now());
                    }
                    let until = Instant::now() + HEARTBEAT;
                    while !s.load(Ordering::Acquire) && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
            .expect("the OS refused the maintenance thread");
        Maintenance { stop, thread }
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

fn beat(core: &Core) {
    if let Err(e) = core.journal.heartbeat(&core.owner, crate::transport::gateway::unix_ms() as i64) {
        log::error!("heartbeat not written: {e}");
    }
    if let Ok(n) = core.journal.waiting() {
        core.queued.store(n as i64, Ordering::Release);
    }
}

/// Requests a dead process claimed: sent again if that is safe, `uncertain` if
/// they may have been processed, back to the queue if they were never sent.
pub fn recover(core: &Core) {
    let cutoff = crate::transport::gateway::unix_ms() as i64 - DEAD_AFTER.as_millis() as i64;
    report(core, core.journal.recover(&core.owner, cutoff, |row| decide(core, row)));
}

/// What becomes of a request whose sender stopped mid-send: a query (or a
/// reversal) is sent again; anything else may have been processed and is uncertain.
pub fn decide(core: &Core, row: &journal::RequestRow) -> Recovery {
    if transactions::matches_any(&row.infno, &core.cfg.retry.safe_infnos) || row.infno == transactions::REVERSAL {
        Recovery::Requeue
    } else {
        Recovery::Uncertain(uncertain_final(&row.infno, &row.msgid, "the sender stopped before an answer came"))
    }
}

/// Logs what recovery did, queues automatic reversals, and wakes the workers.
pub fn report(core: &Core, done: crate::error::Result<Vec<(i64, Recovery)>>) {
    match done {
        Ok(done) if !done.is_empty() => {
            for (id, what) in &done {
                match what {
                    Recovery::Requeue => log::warn!("request {id}: its sender stopped; queued to be sent again"),
                    Recovery::Uncertain(_) => {
                        log::warn!("request {id}: its sender stopped mid-send; it is uncertain and was not resent");
                        if let Ok(Some(row)) = core.journal.request(*id) {
                            core.reverse_if_policy(&row);
                        }
                    }
                }
            }
            core.wake.notify();
        }
        Ok(_) => {}
        Err(e) => log::error!("recovery failed: {e}"),
    }
}

fn purge(core: &Core) {
    let days = i64::from(core.cfg.journal.retain_days);
    let before =
        (crate::protocol::now_local() - chrono::Duration::days(days)).format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    let owners_before = crate::transport::gateway::unix_ms() as i64 - 86_400_000;
    match core.journal.purge(&before, owners_before) {
        Ok(0) => {}
        Ok(n) => log::info!("retention: purged {n} finished requests older than {days} days"),
        Err(e) => log::error!("retention purge failed: {e}"),
    }
}
