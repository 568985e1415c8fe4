//! The transactions the SDK treats specially: sign-in and sign-out, reversal,
//! files, mobile payment (docs/protocol.md). Which may be resent is the retry
//! rule's ([`super::retry`]); what a transaction code looks like is `crate::infno`'s.

/// Sign-in is the one transaction sent without a `sign_no`.
pub const SIGN_IN: &str = "9001";
pub const SIGN_OUT: &str = "9002";
/// Reversal (冲正) of a state-changing transaction by its msgid.
pub const REVERSAL: &str = "2601";
/// File upload and download: they travel on the file channel, with their own URLs.
pub use crate::infno::{FILE_DOWNLOAD, FILE_UPLOAD};

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
