//! The background chores of a process using the journal: its heartbeat (on a
//! thread of its own, so that no slow chore delays it), taking over what processes
//! that are gone left claimed, sealing what an existing journal held in clear, and
//! retention.
//!
//! Another process is gone when two things agree: its heartbeat has stood still for
//! [`DEAD_AFTER`], timed on this process's monotonic clock (wall clocks of different
//! processes are never compared), and its lock file ([`crate::journal::owners`]) is
//! not held. A held lock is a live process, however long its heartbeat is late (a
//! paused VM, a stalled thread); a heartbeat that keeps moving is a live process,
//! even where file locks are not enforced (some network file systems).

use crate::call::{failed_final, uncertain_final, Core};
use crate::clock::{Mono, STAMP_FORMAT};
use crate::error::Code;
use crate::journal::owners::{self, Liveness};
use crate::journal::{Beat, CallMode, Recovery, RequestRow, State, Whose};
use crate::protocol::retry::{self, Decision};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often this process says it is alive, and looks for what others left.
pub const HEARTBEAT: Duration = Duration::from_millis(1000);
/// After how long a heartbeat that stood still may mean its process is gone (if its
/// lock is not held).
pub const DEAD_AFTER: Duration = Duration::from_millis(5000);
/// Requests sealed per transaction, and transactions per heartbeat, while an
/// existing journal is being sealed (about 5,000 requests a second).
const SEAL_BATCH: usize = 500;
const SEAL_BATCHES: usize = 10;
/// How often finished requests past `retain_days` are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

pub struct Maintenance {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Maintenance {
    /// Registers this process, recovers what processes that are gone left, and
    /// starts the heartbeat and the chores.
    pub fn start(core: Arc<Core>) -> Maintenance {
        beat(&core);
        let mut watch = Watch::default();
        recover(&core, &mut watch);
        let stop = Arc::new(AtomicBool::new(false));
        let heart = {
            let (core, stop) = (core.clone(), stop.clone());
            std::thread::Builder::new()
                .name("mi-heartbeat".into())
                .spawn(move || {
                    while pause(&stop, HEARTBEAT) {
                        beat(&core);
                    }
                })
                .expect("the OS refused the heartbeat thread")
        };
        let s = stop.clone();
        let chores = std::thread::Builder::new()
            .name("mi-maintenance".into())
            .spawn(move || {
                let mut last_purge: Option<Mono> = None;
                while pause(&s, HEARTBEAT) {
                    recover(&core, &mut watch);
                    seal_older(&core);
                    let now = core.clock.mono();
                    if last_purge.is_none_or(|t| now.since(t) >= PURGE_EVERY) {
                        purge(&core);
                        last_purge = Some(now);
                    }
                }
            })
            .expect("the OS refused the maintenance thread");
        Maintenance { stop, threads: vec![heart, chores] }
    }

    /// Stops both threads and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Waits `d` in short steps, so that a stop is noticed at once; false once stopped.
fn pause(stop: &AtomicBool, d: Duration) -> bool {
    for _ in 0..d.as_millis() / 20 {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !stop.load(Ordering::Acquire)
}

fn beat(core: &Core) {
    if let Err(e) = core.journal.write(|tx| tx.heartbeat(&core.owner, core.clock.unix_ms())) {
        log::error!("heartbeat not written: {e}");
    }
}

/// Other owners' heartbeats as this process last saw them change: the heartbeat,
/// and when (monotonic) it was first seen as it is.
#[derive(Default)]
pub struct Watch {
    seen: HashMap<String, (Beat, Mono)>,
}

impl Watch {
    /// How long `owner`'s heartbeat has stood at `beat`, as far as this process saw.
    fn still_for(&mut self, owner: &str, beat: Beat, now: Mono) -> Duration {
        match self.seen.get(owner) {
            Some((b, since)) if *b == beat => now.since(*since),
            _ => {
                self.seen.insert(owner.to_string(), (beat, now));
                Duration::ZERO
            }
        }
    }
}

/// What becomes of a request whose sender is gone (the retry rule's
/// [`retry::after_interruption`]).
fn decide(core: &Core, row: &RequestRow, in_flight: bool) -> Recovery {
    let sync = row.mode == CallMode::Sync;
    match retry::after_interruption(core.resendable(&row.infno), in_flight, sync) {
        Decision::Uncertain => {
            Recovery::End(uncertain_final(&row.infno, &row.msgid, "the sender stopped before an answer came"))
        }
        Decision::Final => {
            let why = "its calling program stopped before it was sent; never sent";
            Recovery::End(failed_final(Code::Shutdown, why.into(), &row.msgid))
        }
        Decision::Retry(_) => Recovery::Requeue,
    }
}

/// Takes over what processes that are gone left claimed.
pub fn recover(core: &Core, watch: &mut Watch) {
    let claimants = match core.journal.claimants(&core.owner) {
        Ok(c) => c,
        Err(e) => return log::error!("recovery cannot read the journal: {e}"),
    };
    let now = core.clock.mono();
    watch.seen.retain(|o, _| claimants.iter().any(|(c, _)| c == o));
    for (owner, beat) in claimants {
        if watch.still_for(&owner, beat, now) < DEAD_AFTER {
            continue;
        }
        // Held until the takeover is committed, so no other process acts on it too.
        let _gone = match owners::liveness(core.journal.path(), &owner) {
            Liveness::Alive => continue,
            Liveness::Gone(lock) => Some(lock),
            // No lock file: an older library's process, judged by its heartbeat.
            Liveness::Unknown => None,
        };
        log::warn!("process {owner} is gone; taking over the requests it had claimed");
        let whose = Whose::Dead { owner: &owner };
        report(core, core.journal.write(|tx| tx.take_over(whose, |row, f| decide(core, row, f))));
    }
}

/// Gives up a request this process claimed but can no longer drive (its worker
/// failed mid-send): the same rules as for a dead process's requests.
pub fn give_up(core: &Core, id: i64) {
    let whose = Whose::Mine { id, owner: &core.owner };
    report(core, core.journal.write(|tx| tx.take_over(whose, |row, f| decide(core, row, f))));
}

/// Logs what recovery did, queues automatic reversals, and wakes the workers.
fn report(core: &Core, done: crate::error::Result<Vec<(i64, Recovery)>>) {
    match done {
        Ok(done) if !done.is_empty() => {
            for (id, what) in &done {
                match what {
                    Recovery::Requeue => log::warn!("request {id}: its sender stopped; queued to be sent again"),
                    Recovery::End(fin) if fin.state == State::Uncertain => {
                        log::warn!("request {id}: its sender stopped mid-send; it is uncertain and was not resent");
                        if let Ok(Some(row)) = core.journal.request(*id) {
                            core.reverse_if_policy(&row);
                        }
                    }
                    Recovery::End(fin) => {
                        log::warn!("request {id}: {}", fin.last_error.as_deref().unwrap_or("ended"))
                    }
                }
            }
            core.wake.notify();
        }
        Ok(_) => {}
        Err(e) => log::error!("recovery failed: {e}"),
    }
}

/// Seals what an existing journal held in clear before sealing was turned on, a
/// few short batches a second, so calls in between wait at most one batch.
fn seal_older(core: &Core) {
    for _ in 0..SEAL_BATCHES {
        match core.journal.seal_older(SEAL_BATCH) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                log::error!("sealing the journal's older requests failed (will try again): {e}");
                return;
            }
        }
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
    owners::sweep(core.journal.path(), &core.owner);
    core.journal.vacuum_if_owed();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::journal::owners::OwnerLock;
    use crate::journal::records::tests::new_req;
    use crate::journal::{Journal, Options, Start};
    use std::path::PathBuf;

    fn core(dir: &std::path::Path, clock: Clock) -> Core {
        let cfg = serde_json::json!({
            "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "t", "mdtrtarea_admvs": "440300",
                            "opter": "0001", "opter_name": "t"},
            "gateway": {"url": "http://127.0.0.1:9/fsi"},
            "journal": {"path": "j.db"},
            "log": {"dir": "logs"}
        });
        let cfg = Config::from_json(&cfg.to_string(), dir).unwrap();
        let journal = Journal::open(&cfg.journal_path(), Options::of(&cfg, clock)).unwrap();
        Core::new(cfg, journal, "9-me".into()).unwrap()
    }

    /// A request claimed by `owner`, no attempt begun.
    fn claimed_by(core: &Core, owner: &str, mode: CallMode) -> i64 {
        let req = crate::journal::NewRequest { mode, ..new_req(None) };
        core.journal.write(|tx| tx.insert(&req, Start::Claimed(owner), |_| Ok("{}".into()))).unwrap().id
    }

    fn state(core: &Core, id: i64) -> State {
        core.journal.request(id).unwrap().unwrap().state
    }

    /// An owner is gone when its heartbeat stood still for `DEAD_AFTER` of this
    /// process's monotonic time and its lock is not held. Wall-clock steps change
    /// nothing; a moving heartbeat (also an older library's, which writes only the
    /// time) or a held lock keeps it alive.
    #[test]
    fn a_held_lock_or_a_moving_heartbeat_is_alive_and_silence_is_timed_on_the_monotonic_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(1_764_460_800_000);
        let core = core(dir.path(), clock.clone());
        let _alive = OwnerLock::take(core.journal.path(), "1-live").unwrap();
        let live = claimed_by(&core, "1-live", CallMode::Async);
        let legacy = claimed_by(&core, "2-legacy", CallMode::Async);
        let legacy_sync = claimed_by(&core, "2-legacy", CallMode::Sync);
        // An older library: no lock file, and its heartbeat moves only its time.
        let old_beat = |ms: i64| {
            core.journal
                .write(|tx| {
                    tx.heartbeat("2-legacy", ms)?;
                    tx.execute("UPDATE mi_owner SET beat = 0 WHERE owner = '2-legacy'", [])?;
                    Ok(())
                })
                .unwrap()
        };
        old_beat(0);
        let mut watch = Watch::default();
        recover(&core, &mut watch);
        // A wall clock stepped an hour ahead: nobody looks gone.
        clock.step_wall(3_600_000);
        recover(&core, &mut watch);
        // Its heartbeat moved 4 s in: the silence starts again.
        clock.advance(Duration::from_secs(4));
        old_beat(1);
        recover(&core, &mut watch);
        clock.advance(Duration::from_secs(4));
        recover(&core, &mut watch);
        assert_eq!((state(&core, legacy), state(&core, legacy_sync)), (State::Sending, State::Sending));
        // 5 s of silence: gone. Its async request is queued again; its sync one,
        // never sent and with nobody waiting, ends failed.
        clock.advance(Duration::from_secs(1));
        recover(&core, &mut watch);
        assert_eq!(state(&core, legacy), State::Queued);
        let r = core.journal.request(legacy_sync).unwrap().unwrap();
        assert_eq!((r.state, r.mi_code), (State::Failed, Some(Code::Shutdown.as_i32())));
        assert!(r.last_error.unwrap().contains("never sent"));
        // The live owner's request, however long its heartbeat is silent: untouched.
        clock.advance(Duration::from_secs(3600));
        recover(&core, &mut watch);
        recover(&core, &mut watch);
        assert_eq!(state(&core, live), State::Sending);
    }

    /// An owner whose lock is free (its process died) is taken over once its
    /// heartbeat has stood still, and its lock file is removed; while its heartbeat
    /// moves (a file system that does not enforce locks) it is not.
    #[test]
    fn a_released_lock_is_taken_over_once_the_heartbeat_stops() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(1_764_460_800_000);
        let core = core(dir.path(), clock.clone());
        let id = claimed_by(&core, "3-gone", CallMode::Async);
        // What a killed process leaves: its file, no lock on it.
        let path = PathBuf::from(format!("{}-owners", core.journal.path().display())).join("3-gone.lock");
        std::fs::write(&path, b"").unwrap();
        let mut watch = Watch::default();
        for ms in 0..8 {
            core.journal.write(|tx| tx.heartbeat("3-gone", ms)).unwrap();
            recover(&core, &mut watch);
            clock.advance(Duration::from_secs(1));
        }
        assert_eq!(state(&core, id), State::Sending, "its heartbeat moves");
        clock.advance(DEAD_AFTER);
        recover(&core, &mut watch);
        assert_eq!(state(&core, id), State::Queued);
        assert!(!path.exists(), "its lock file is removed");
    }
}
