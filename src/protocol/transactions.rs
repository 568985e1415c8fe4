//! Transaction codes: what a valid `infno` is and which class each belongs to
//! (docs/protocol.md, "Transaction classes"). The class decides whether a failed
//! send may be repeated (see [`super::retry`]).

/// `1101`, `2207`, `2203A`: four digits and an optional capital letter.
pub fn is_valid_infno(infno: &str) -> bool {
    let b = infno.as_bytes();
    (b.len() == 4 || b.len() == 5)
        && b[..4].iter().all(u8::is_ascii_digit)
        && b.get(4).is_none_or(u8::is_ascii_uppercase)
}

/// A list entry of `retry.*_infnos`: a code, or a digit prefix ending in `*`.
pub fn is_valid_pattern(p: &str) -> bool {
    match p.strip_suffix('*') {
        Some(prefix) => prefix.len() < 4 && prefix.bytes().all(|b| b.is_ascii_digit()),
        None => is_valid_infno(p),
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

/// Sign-in is the one transaction sent without a `sign_no`.
pub const SIGN_IN: &str = "9001";
pub const SIGN_OUT: &str = "9002";
/// Reversal (冲正) of a state-changing transaction by its msgid.
pub const REVERSAL: &str = "2601";
/// File upload and download: they travel on the file channel, with their own URLs.
pub const FILE_UPLOAD: &str = "9101";
pub const FILE_DOWNLOAD: &str = "9102";

pub fn is_file_transfer(infno: &str) -> bool {
    infno == FILE_UPLOAD || infno == FILE_DOWNLOAD
}

pub fn needs_sign_no(infno: &str) -> bool {
    infno != SIGN_IN && mobile_pay_path(infno).is_none()
}

/// The path of a mobile-payment transaction on `mobile_pay.url` (docs/protocol.md,
/// "Mobile payment");
/// these go to their own platform, encrypted and signed, without a sign-in.
pub fn mobile_pay_path(infno: &str) -> Option<&'static str> {
    Some(match infno {
        "6201" => "/org/local/api/hos/uldFeeInfo",
        "6202" => "/org/local/api/hos/pay_order",
        "6203" => "/org/local/api/hos/refund_Order",
        "6301" => "/org/local/api/hos/query_order_info",
        "6401" => "/org/local/api/hos/revoke_order",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infno_shapes() {
        for ok in ["1101", "2207", "2203A", "9001"] {
            assert!(is_valid_infno(ok), "{ok}");
        }
        for bad in ["", "110", "11011", "2203a", "22O7", "2203AB", " 1101"] {
            assert!(!is_valid_infno(bad), "{bad}");
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
