//! The transactions the SDK treats specially: sign-in and sign-out, reversal,
//! files, mobile payment (docs/protocol.md). Which may be resent is the retry
//! rule's ([`super::retry`]); what a transaction code looks like is `crate::infno`'s.

/// Sign-in is the one transaction sent without a `sign_no`.
pub const SIGN_IN: &str = "9001";
pub const SIGN_OUT: &str = "9002";
/// Reversal (冲正) of a state-changing transaction by its msgid.
pub const REVERSAL: &str = "2601";
/// File upload and download: they travel on the file channel, with their own URLs.
pub const FILE_UPLOAD: &str = "9101";
pub const FILE_DOWNLOAD: &str = "9102";

/// Transactions that move money or change state at the platform, which must never
/// be sent again once they may have left (docs/delivery.md): settlements and their
/// cancellations, registrations, fee uploads, admissions and discharges, the
/// pharmacy sales, reconciliation adjustments, inventory and settlement-list uploads,
/// e-prescriptions, mobile payments and file uploads.
/// `retry.safe_infnos` may not cover any of them.
pub const NEVER_RESENT: &[&str] = &[
    "2102",
    "2103",
    "2201",
    "2202",
    "2203",
    "2204",
    "2205",
    "2207",
    "2208",
    "2301",
    "2302",
    "2304",
    "2305",
    "2401",
    "2402",
    "2404",
    "2403",
    "2405",
    "3203",
    "3204",
    "3501",
    "3502",
    "3503",
    "3504",
    "3505",
    "3506",
    "3507",
    "4101",
    "4102",
    "6201",
    "6202",
    "6203",
    "6401",
    "7101",
    "7102",
    "7103",
    "7104",
    FILE_UPLOAD,
];

pub fn is_file_transfer(infno: &str) -> bool {
    infno == FILE_UPLOAD || infno == FILE_DOWNLOAD
}

pub fn needs_sign_no(infno: &str) -> bool {
    infno != SIGN_IN && mobile_pay_path(infno).is_none()
}

/// The path of a mobile-payment transaction on `mobile_pay.url` (docs/protocol.md,
/// "Mobile payment"); these go to their own platform, encrypted and signed, without
/// a sign-in.
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
    fn which_transactions_need_a_sign_no_and_where_mobile_payment_goes() {
        assert!(needs_sign_no("2207") && needs_sign_no("9002") && needs_sign_no("9101"));
        assert!(!needs_sign_no(SIGN_IN) && !needs_sign_no("6202"));
        assert_eq!(mobile_pay_path("6301"), Some("/org/local/api/hos/query_order_info"));
        assert!(is_file_transfer("9102") && !is_file_transfer("9001"));
    }
}
