//! The platform's protocol as mi_sdk speaks it (docs/protocol.md): envelopes,
//! msgids, transaction classes and the retry rule, responses and sign-in.

pub mod envelope;
pub mod msgid;
pub mod response;
pub mod retry;
pub mod signin;
pub mod transactions;
pub mod wire;
