//! The background chores of a process using the journal: its heartbeat, taking
//! over what dead processes left claimed, and retention.

use crate::call::{uncertain_final, Core};
use crate::clock::STAMP_FORMAT;
use crate::journal::{Recovery, RequestRow, Whose};
use crate::protocol::retry::{self, Decision};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

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
                let mut last_purge = None;
                while !s.load(Ordering::Acquire) {
                    beat(&core);
                    recover(&core);
                    let now = core.clock.mono();
                    if last_purge.is_none_or(|t| now.since(t) >= PURGE_EVERY) {
                        purge(&core);
                        last_purge = Some(now);
                    }
                    // Sleeps in short steps, so that a stop is noticed at once.
                    for _ in 0..HEARTBEAT.as_millis() / 20 {
                        if s.load(Ordering::Acquire) {
                            break;
                        }
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
    if let Err(e) = core.journal.write(|tx| tx.heartbeat(&core.owner, core.clock.unix_ms())) {
        log::error!("heartbeat not written: {e}");
    }
}

/// What becomes of a request whose sender stopped mid-send (the retry rule's
/// [`retry::after_interruption`]): sent again if that is safe, else uncertain.
fn decide(core: &Core, row: &RequestRow) -> Recovery {
    match retry::after_interruption(core.resendable(&row.infno)) {
        Decision::Uncertain => {
            Recovery::Uncertain(uncertain_final(&row.infno, &row.msgid, "the sender stopped before an answer came"))
        }
        _ => Recovery::Requeue,
    }
}

/// Takes over what dead processes claimed.
pub fn recover(core: &Core) {
    let cutoff_ms = core.clock.unix_ms() - DEAD_AFTER.as_millis() as i64;
    let whose = Whose::Dead { me: &core.owner, cutoff_ms };
    report(core, core.journal.write(|tx| tx.take_over(whose, |row| decide(core, row))));
}

/// Gives up a request this process claimed but can no longer drive (its worker
/// failed mid-send): the same rules as for a dead process's requests.
pub fn give_up(core: &Core, id: i64) {
    let whose = Whose::Mine { id, owner: &core.owner };
    report(core, core.journal.write(|tx| tx.take_over(whose, |row| decide(core, row))));
}

/// Logs what recovery did, queues automatic reversals, and wakes the workers.
fn report(core: &Core, done: crate::error::Result<Vec<(i64, Recovery)>>) {
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
    let before = (core.clock.local() - chrono::Duration::days(days)).format(STAMP_FORMAT).to_string();
    let owners_before = core.clock.unix_ms() - 86_400_000;
    match core.journal.write(|tx| tx.purge(&before, owners_before)) {
        Ok(0) => {}
        Ok(n) => log::info!("retention: purged {n} finished requests older than {days} days"),
        Err(e) => log::error!("retention purge failed: {e}"),
    }
}
