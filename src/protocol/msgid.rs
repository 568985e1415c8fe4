//! Message ids: institution code (12) + local time `yyyyMMddHHmmss` (14) + sequence (4).
//!
//! The sequence is the two-digit `node_id` (so workstations sharing an institution code
//! never collide) followed by a two-digit per-second counter. When a workstation sends
//! more than 100 messages in one second the counter borrows the next second, so ids stay
//! unique and increasing; the state lives in the journal so a restart never repeats one.

use chrono::{Duration, NaiveDateTime};

pub const MSGID_LEN: usize = 30;
const TIME_FMT: &str = "%Y%m%d%H%M%S";
const PER_SECOND: u32 = 100;
/// The largest node: two digits.
pub const MAX_NODE: u32 = 99;

/// The last allocated (second, counter) of one institution code + node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqState {
    pub second: NaiveDateTime,
    pub counter: u32,
}

/// The next state after `prev` at wall-clock `now`.
pub fn next(prev: Option<SeqState>, now: NaiveDateTime) -> SeqState {
    let now = now.with_nanosecond_zero();
    match prev {
        Some(p) if p.second >= now => {
            if p.counter + 1 < PER_SECOND {
                SeqState { second: p.second, counter: p.counter + 1 }
            } else {
                SeqState { second: p.second + Duration::seconds(1), counter: 0 }
            }
        }
        _ => SeqState { second: now, counter: 0 },
    }
}

pub fn format(fixmedins_code: &str, node_id: u32, s: SeqState) -> String {
    format!("{}{}{:02}{:02}", fixmedins_code, s.second.format(TIME_FMT), node_id, s.counter)
}

pub fn format_second(t: NaiveDateTime) -> String {
    t.format(TIME_FMT).to_string()
}

pub fn parse_second(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, TIME_FMT).ok()
}

/// A caller-given msgid must at least look like one: 30 letters and digits.
pub fn is_well_formed(m: &str) -> bool {
    m.len() == MSGID_LEN && m.bytes().all(|b| b.is_ascii_alphanumeric())
}

trait ZeroNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl ZeroNanos for NaiveDateTime {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        parse_second(s).unwrap()
    }

    #[test]
    fn format_is_thirty_chars_with_node_prefix() {
        let s = next(None, t("20261127101530"));
        let m = format("H44030000001", 7, s);
        assert_eq!(m, "H44030000001202611271015300700");
        assert_eq!(m.len(), MSGID_LEN);
        assert!(is_well_formed(&m));
    }

    #[test]
    fn counter_increases_then_borrows_next_second() {
        let now = t("20261127101530");
        let mut s = next(None, now);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..250 {
            assert!(seen.insert(format("H44030000001", 1, s)));
            s = next(Some(s), now);
        }
        assert_eq!(s.second, t("20261127101532"));
        assert_eq!(s.counter, 50);
        // The clock catching up does not go back; a later clock restarts the counter.
        assert_eq!(next(Some(s), t("20261127101531")).second, t("20261127101532"));
        assert_eq!(next(Some(s), t("20261127101600")).counter, 0);
    }

    #[test]
    fn clock_going_backwards_never_repeats() {
        let s = next(None, t("20261127101530"));
        let back = next(Some(s), t("20261127090000"));
        assert!(format("X", 0, back) > format("X", 0, s));
    }
}
