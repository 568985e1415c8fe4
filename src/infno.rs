//! Transaction codes (`infno`): what one looks like, and the patterns the config's
//! lists (`retry.safe_infnos`, `retry.reversible_infnos`) match them with. At the
//! bottom of the crate because both the config and the protocol need it, and so are
//! the transactions never resent, which `retry.safe_infnos` may not cover.

/// File upload (9101) and download (9102): the config gives them URLs of their own.
pub const FILE_UPLOAD: &str = "9101";
pub const FILE_DOWNLOAD: &str = "9102";

/// `1101`, `2207`, `2203A`: four digits and an optional capital letter.
pub fn is_valid(infno: &str) -> bool {
    let b = infno.as_bytes();
    (b.len() == 4 || b.len() == 5)
        && b[..4].iter().all(u8::is_ascii_digit)
        && b.get(4).is_none_or(u8::is_ascii_uppercase)
}

/// A list entry of `retry.*_infnos`: a code, or a digit prefix ending in `*`.
pub fn is_valid_pattern(p: &str) -> bool {
    match p.strip_suffix('*') {
        Some(prefix) => prefix.len() < 4 && prefix.bytes().all(|b| b.is_ascii_digit()),
        None => is_valid(p),
    }
}

/// Whether `infno` (or its four-digit base, for province variants like `2203A`)
/// matches one of the patterns.
pub fn matches_any(infno: &str, patterns: &[String]) -> bool {
    let base = infno.get(..4).unwrap_or(infno);
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => infno.starts_with(prefix),
        None => p == infno || p == base,
    })
}

/// Transactions that move money or change state at the platform, which must never
/// be sent again once they may have left (docs/delivery.md): settlements and their
/// cancellations, registrations, fee uploads, admissions and discharges, the
/// pharmacy sales, reconciliation adjustments, inventory and settlement-list uploads,
/// e-prescriptions, mobile payments and file uploads.
/// `retry.safe_infnos` may not cover any of them.
pub const NEVER_RESENT: &[&str] = &[
    "2102", "2103", "2201", "2202", "2203", "2204", "2205", "2207", "2208", "2301", "2302", "2304", "2305", "2401",
    "2402", "2404", "2403", "2405", "3203", "3204", "3501", "3502", "3503", "3504", "3505", "3506", "3507", "4101",
    "4102", "6201", "6202", "6203", "6401", "7101", "7102", "7103", "7104", // 9101, the file upload
    "9101",
];

/// The first money-moving transaction a `retry.safe_infnos` entry would make
/// resendable, if any: `*`, `2*` or `2207` (or a province variant like `2207A`)
/// would let a timeout send a settlement twice.
pub fn never_resent_covered_by(pattern: &str) -> Option<&'static str> {
    NEVER_RESENT.iter().copied().find(|infno| match pattern.strip_suffix('*') {
        Some(prefix) => infno.starts_with(prefix),
        None => pattern.get(..4) == Some(*infno),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infno_shapes() {
        for ok in ["1101", "2207", "2203A", "9001"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", "110", "11011", "2203a", "22O7", "2203AB", " 1101"] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn patterns_match_codes_prefixes_and_variants() {
        let p: Vec<String> = ["1101", "13*", "52*"].iter().map(|s| s.to_string()).collect();
        assert!(matches_any("1101", &p));
        assert!(matches_any("1301", &p));
        assert!(matches_any("5203", &p));
        assert!(!matches_any("2207", &p));
        let r = vec!["2203".to_string()];
        assert!(matches_any("2203A", &r));
        assert!(is_valid_pattern("13*") && is_valid_pattern("*") && !is_valid_pattern("1a*"));
    }
}
