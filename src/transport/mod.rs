//! Getting an envelope to the gateway and an answer back: the HTTP agent, the
//! gateway profiles, the channels (the 两定 gateway, mobile payment, files), and the
//! classification of failures that the delivery guarantees depend on.

pub mod channel;
pub mod files;
pub mod gateway;
pub mod http;
mod resolve;
pub mod sealed;

pub use http::Transport;

/// An HTTP answer: any status, with its body as text.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Why no HTTP answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Provably not sent: refused, DNS, connect timeout, TLS handshake. Safe to resend.
    NeverSent(String),
    /// The request may have reached the platform (timeout or reset after sending).
    MaybeProcessed(String),
}

/// The outcome of one exchange over a channel, before anyone judges it.
#[derive(Debug, Clone)]
pub enum Exchange {
    /// An HTTP answer; for encrypted channels, already verified and decrypted.
    Answer(Reply),
    /// No answer.
    Failed(Failure),
    /// An answer that failed verification or decryption.
    Unverified { status: u16, body: String, why: String },
    /// An answer this side refuses to take whatever is sent (a zip that would
    /// escape its folder or explode): final, never resent.
    Refused { status: u16, body: String, why: String },
}

impl From<Result<Reply, Failure>> for Exchange {
    fn from(r: Result<Reply, Failure>) -> Exchange {
        match r {
            Ok(reply) => Exchange::Answer(reply),
            Err(f) => Exchange::Failed(f),
        }
    }
}
