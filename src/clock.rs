//! Time, read in one place. Wall time names things (msgids, `inf_time`, the gateway
//! signatures' timestamps, the journal's timestamps, the day a sign-in is good for);
//! monotonic time measures them (latencies, how old a cached answer is, backoffs).
//! The two are kept apart because a wall clock can jump (NTP, w32time, an operator,
//! a paused VM) while a duration must not.
//!
//! Everything reads time through a [`Clock`]. The SDK runs on [`Clock::system`]; a
//! test builds [`Clock::manual`] and drives it: lets time pass without sleeping, or
//! steps only the wall clock, as a clock correction does.

use chrono::{Local, NaiveDateTime, TimeZone};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The journal's timestamp format: local time with milliseconds.
pub const STAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3f";

/// A day as operators give it (`yyyy-MM-dd`), checked; `what` names it in the error.
pub fn parse_day(s: &str, what: &str) -> crate::error::Result<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| crate::error::Error::invalid(format!("{what} \"{s}\" is not a date (yyyy-MM-dd)")))
}

/// A source of wall and monotonic time: the system's, or one a test drives.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<Manual>>>,
    /// Added to the system's wall time: a machine whose clock is wrong.
    wall_offset_ms: i64,
}

struct Manual {
    unix_ms: i64,
    mono: Duration,
}

/// A point in monotonic time: how long after the clock's origin. Subtracting never
/// underflows, however early the origin (a machine booted a minute ago).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Mono(Duration);

impl Mono {
    /// How long after `earlier` this is; zero if it is not after it.
    pub fn since(self, earlier: Mono) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// The system clock's monotonic origin: the first time anything asked.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Clock {
    /// The machine's clocks.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The machine's clocks with the wall clock `ms` off (ahead when positive), as
    /// on a machine whose clock is wrong; monotonic time is the system's.
    pub fn system_off_by(ms: i64) -> Clock {
        Clock { manual: None, wall_offset_ms: ms }
    }

    /// A clock that stands still at Unix time `unix_ms` until a test moves it.
    pub fn manual(unix_ms: i64) -> Clock {
        Clock { manual: Some(Arc::new(Mutex::new(Manual { unix_ms, mono: Duration::ZERO }))), wall_offset_ms: 0 }
    }

    fn with_manual<T>(&self, f: impl FnOnce(&mut Manual) -> T) -> Option<T> {
        self.manual.as_ref().map(|m| f(&mut m.lock().unwrap_or_else(|p| p.into_inner())))
    }

    /// Wall time: milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> i64 {
        self.with_manual(|m| m.unix_ms).unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64 + self.wall_offset_ms
        })
    }

    /// Wall time in the machine's time zone, as the platform's times are written.
    pub fn local(&self) -> NaiveDateTime {
        match self.with_manual(|m| m.unix_ms) {
            None if self.wall_offset_ms == 0 => Local::now().naive_local(),
            _ => Local.timestamp_millis_opt(self.unix_ms()).single().map(|t| t.naive_local()).unwrap_or_default(),
        }
    }

    /// Monotonic time: for durations only, never for names or records.
    pub fn mono(&self) -> Mono {
        Mono(self.with_manual(|m| m.mono).unwrap_or_else(|| origin().elapsed()))
    }

    /// A journal timestamp of now (local time, milliseconds).
    pub fn stamp(&self) -> String {
        self.local().format(STAMP_FORMAT).to_string()
    }

    /// Today's local date, `yyyy-MM-dd`: the day a sign-in is good for.
    pub fn today(&self) -> String {
        self.local().format("%Y-%m-%d").to_string()
    }

    /// Lets `d` pass on both clocks (a manual clock; the system's cannot be moved).
    pub fn advance(&self, d: Duration) {
        self.with_manual(|m| {
            m.unix_ms += d.as_millis() as i64;
            m.mono += d;
        });
    }

    /// Steps the wall clock alone by `ms` (either way), as a clock correction does;
    /// monotonic time is untouched.
    pub fn step_wall(&self, ms: i64) {
        self.with_manual(|m| m.unix_ms += ms);
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.manual, self.wall_offset_ms) {
            (Some(_), _) => f.write_str("Clock(manual)"),
            (None, 0) => f.write_str("Clock(system)"),
            (None, ms) => write!(f, "Clock(system, wall {ms:+} ms)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = Clock::manual(1_764_460_800_000);
        let (w, m) = (c.unix_ms(), c.mono());
        assert_eq!((c.unix_ms(), c.mono()), (w, m));
        c.advance(Duration::from_secs(90));
        assert_eq!(c.unix_ms(), w + 90_000);
        assert_eq!(c.mono().since(m), Duration::from_secs(90));
        // A wall step backwards (NTP) leaves durations alone.
        c.step_wall(-3_600_000);
        assert_eq!(c.unix_ms(), w + 90_000 - 3_600_000);
        assert_eq!(c.mono().since(m), Duration::from_secs(90));
        assert_eq!(m.since(c.mono()), Duration::ZERO, "an earlier point is never negative");
    }

    #[test]
    fn the_system_clock_agrees_with_chrono_and_never_underflows() {
        let c = Clock::system();
        let ms = c.unix_ms();
        assert!((Local::now().timestamp_millis() - ms).abs() < 5_000);
        let (a, b) = (c.mono(), c.mono());
        assert!(b >= a);
        assert_eq!(Mono::default().since(b), Duration::ZERO);
        assert_eq!(c.stamp().len(), 23);
        assert_eq!(c.today().len(), 10);
        let ahead = Clock::system_off_by(10_000);
        assert!((ahead.unix_ms() - c.unix_ms() - 10_000).abs() < 5_000);
        assert!(ahead.local() > c.local());
    }
}
