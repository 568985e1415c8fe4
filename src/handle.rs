//! The process-wide SDK behind the C ABI: `mi_init` creates it, calls share it,
//! `mi_shutdown` retires it. Init and shutdown are serialised against each other.

use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::sdk::Sdk;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

static CURRENT: RwLock<Option<Arc<Sdk>>> = RwLock::new(None);
static LIFECYCLE: Mutex<()> = Mutex::new(());

/// The folder of the library file (the DLL / .so), where `mi_sdk.json` may sit.
pub fn library_dir() -> PathBuf {
    process_path::get_dylib_path()
        .or_else(process_path::get_executable_path)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `mi_init`: validates the config and starts the SDK, or confirms it is already
/// running with the same config.
/// `source`: `mi_init`'s argument as the HIS passed it (JSON or a path), or None.
pub fn init(source: Option<&[u8]>) -> Result<()> {
    let _serial = LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
    let cfg = Config::load_arg(source, &library_dir())?;
    if let Some(sdk) = current() {
        return if *sdk.config() == cfg {
            Ok(())
        } else {
            Err(Error::config("mi_sdk is already initialised with a different config; call mi_shutdown first"))
        };
    }
    let sdk = Sdk::start(cfg)?;
    *CURRENT.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(sdk));
    Ok(())
}

/// The running SDK, or `MI_E_NOT_INITIALIZED`.
pub fn get() -> Result<Arc<Sdk>> {
    current().ok_or_else(|| Error::new(Code::NotInitialized, "mi_sdk is not initialised: call mi_init first"))
}

pub fn current() -> Option<Arc<Sdk>> {
    CURRENT.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// `mi_shutdown`: idempotent.
pub fn shutdown(wait: Duration) {
    let _serial = LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
    let taken = CURRENT.write().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(sdk) = taken {
        sdk.shutdown(wait);
    }
}
