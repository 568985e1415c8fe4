//! mi_sdk: a client for China's national medical-insurance platform
//! (医疗保障信息平台) with a stable C ABI for hospital information systems.
//!
//! The C ABI (`ffi`, `include/mi_sdk.h`) is an adapter over the Rust API in
//! [`sdk::Sdk`]; see `docs/api_reference.md` for the contract.

pub mod call;
pub mod catalog;
pub mod charset;
pub mod config;
pub mod crypto;
pub mod dropbox;
pub mod engine;
pub mod error;
pub mod ffi;
pub mod files;
pub mod handle;
pub mod journal;
pub mod logging;
pub mod protocol;
pub mod sdk;
pub mod stats;
pub mod transport;

pub use call::Outcome;
pub use config::Config;
pub use error::{Code, Error, Result};
pub use sdk::Sdk;

/// The library version, as `mi_version()` returns it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The C ABI version, as `mi_abi_version()` returns it.
pub const ABI_VERSION: i32 = 1;
