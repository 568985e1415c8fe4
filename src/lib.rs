//! mi_sdk: a client for China's national medical-insurance platform
//! (医疗保障信息平台) with a stable C ABI for hospital information systems.
//!
//! The C ABI ([`ffi`], `include/mi_sdk.h`, docs/api_reference.md) is an adapter over
//! the Rust API: [`Sdk`], configured by a [`Config`], answering each call with an
//! [`Outcome`] and each question with a [`RequestRecord`] or a [`Status`]. The
//! operators' command `mi-sdk` is an adapter over [`ops`]. docs/architecture.md
//! walks through the modules below.

pub mod bridge;
mod call;
pub mod charset;
mod clock;
pub mod config;
pub mod crypto;
mod engine;
mod error;
pub mod ffi;
mod files;
mod handle;
mod infno;
mod journal;
mod logging;
pub mod ops;
mod paths;
mod protocol;
pub mod readers;
mod reconcile;
mod region;
mod sdk;
mod stats;
mod transport;
pub mod variant;

pub use call::Outcome;
pub use charset::Charset;
pub use clock::{parse_day, Clock};
pub use config::Config;
pub use error::{Code, Error, Result};
pub use journal::{Filter, State};
pub use sdk::record::AttemptRecord;
pub use sdk::status;
pub use sdk::{RequestRecord, Sdk, Status, ABI_VERSION, VERSION};

/// What the fuzz targets, the benchmarks and the tests reach inside the crate.
/// Not an API: it changes whenever the inside does.
#[doc(hidden)]
pub mod internals {
    pub use crate::files::unpack::{safe_relative, unpack, Limits};
    pub use crate::journal::{CallMode, Journal, NewRequest, Options};
    pub use crate::logging::{for_log, safe_line};
    pub use crate::protocol::envelope::{build as build_envelope, CallInput};
    pub use crate::protocol::response::parse as parse_response;
    pub use crate::transport::sealed::open_answer;
}
