//! What a catalogue cell holds as the platform writes it, turned into what a
//! HIS loads: the literal `null` is an empty cell, and a Java `Date.toString()`
//! (`Thu Nov 30 00:00:00 CST 2006`) is ISO (`2006-11-30 00:00:00`). Both appear in
//! real catalogue files and both real clients we know of convert them.

/// The cell as the HIS should see it.
pub fn clean(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell == "null" {
        return "".into();
    }
    match java_date(cell) {
        Some(iso) => iso.into(),
        None => cell.into(),
    }
}

/// `EEE MMM dd HH:mm:ss zzz yyyy` → `yyyy-MM-dd HH:mm:ss`, the wall time kept as
/// written (the zone is the platform's, China time); anything else is `None`.
fn java_date(cell: &str) -> Option<String> {
    // Most cells are not dates: a cheap look before splitting (`Thu Nov 30 00:00:00 CST 2006`).
    if !(24..=40).contains(&cell.len()) || cell.as_bytes()[3] != b' ' {
        return None;
    }
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let parts: Vec<&str> = cell.split(' ').collect();
    let [day, month, dd, time, zone, year] = parts.as_slice() else {
        return None;
    };
    let digits =
        |s: &str, n: std::ops::RangeInclusive<usize>| n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !DAYS.contains(day) || !digits(dd, 1..=2) || !digits(year, 4..=4) {
        return None;
    }
    if zone.is_empty() || !zone.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-:".contains(&b)) {
        return None;
    }
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let t: Vec<&str> = time.split(':').collect();
    if t.len() != 3 || !t.iter().all(|p| digits(p, 2..=2)) {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year.parse().ok()?, month as u32, dd.parse().ok()?)?;
    chrono::NaiveTime::parse_from_str(time, "%H:%M:%S").ok()?;
    Some(format!("{} {time}", date.format("%Y-%m-%d")))
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn nulls_empty_and_java_dates_become_iso() {
        assert_eq!(clean("null"), "");
        assert_eq!(clean("Thu Nov 30 00:00:00 CST 2006"), "2006-11-30 00:00:00");
        assert_eq!(clean("Mon Jan 5 13:04:59 GMT+08:00 2026"), "2026-01-05 13:04:59");
        // Anything that only looks like one stays as it is.
        for kept in [
            "NULL",
            "",
            "2006-11-30",
            "Thu Nov 31 00:00:00 CST 2006",
            "Thu Nov 30 24:00:00 CST 2006",
            "Xyz Nov 30 00:00:00 CST 2006",
            "Thu Nov 30 00:00:00 CST 06",
            "Thu Nov 30 00:00:00  2006",
            "阿莫西林 Nov 30 00:00:00 CST 2006",
        ] {
            assert_eq!(clean(kept), kept, "{kept}");
        }
    }
}
