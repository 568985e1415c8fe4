//! Getting an envelope to the gateway and an answer back: the HTTP agent, the
//! gateway profiles, and the classification of failures that the delivery
//! guarantees depend on.

pub mod channel;
pub mod gateway;
pub mod http;
mod resolve;

pub use http::{Failure, Reply, Transport};
