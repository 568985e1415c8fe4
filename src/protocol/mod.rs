//! The platform's protocol as mi_sdk speaks it (PROTOCOL.md): envelopes, msgids,
//! transaction rules, responses and sign-in.

pub mod envelope;
pub mod msgid;
pub mod response;
pub mod signin;
pub mod transactions;

/// Local wall-clock time, as the platform's `inf_time` and msgids use it.
pub fn now_local() -> chrono::NaiveDateTime {
    chrono::Local::now().naive_local()
}
