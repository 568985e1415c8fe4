//! The drop-box service, for HIS that cannot call a DLL: a request file
//! `<name>.req.json` (`{"infno":..,"input":..,"priority":..}`, UTF-8) that appears in
//! the folder is submitted; its result appears as `<name>.res.json` when final.
//!
//! The file is renamed to `<name>.accepted.json` only after the journal commit, and the
//! journal remembers the file's name (`source`), so a crash at any point neither loses
//! a request nor submits one twice. A finished request's file becomes
//! `<name>.done.json`; one that cannot be submitted, `<name>.rejected.json` (with a
//! `.res.json` saying why).

use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::sdk::Sdk;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const REQ: &str = ".req.json";
const ACCEPTED: &str = ".accepted.json";

/// `mi-sdk serve --watch DIR`: starts the SDK and runs the service until Ctrl-C or
/// SIGTERM (`started` is told once it runs); what is still running then is finished
/// by the next start.
pub fn serve(cfg: Config, dir: &Path, started: impl FnOnce()) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::Release))
        .map_err(|e| Error::config(format!("cannot watch for Ctrl-C / SIGTERM: {e}")))?;
    let sdk = Sdk::start(cfg)?;
    started();
    let r = run(&sdk, dir, &stop);
    sdk.shutdown(Duration::from_secs(10));
    r
}

/// Watches `dir` until `stop` is set.
pub fn run(sdk: &Sdk, dir: &Path, stop: &AtomicBool) -> Result<()> {
    let dir =
        std::fs::canonicalize(dir).map_err(|e| Error::config(format!("drop-box folder {}: {e}", dir.display())))?;
    let mut pending: BTreeMap<String, i64> = BTreeMap::new();
    log::info!("drop-box service watching {}", dir.display());
    while !stop.load(Ordering::Acquire) {
        if let Err(e) = scan(sdk, &dir, &mut pending) {
            log::error!("drop-box: {e}");
        }
        deliver(sdk, &dir, &mut pending);
        std::thread::sleep(Duration::from_millis(100));
    }
    log::info!("drop-box service stopped; {} requests still running are finished by the next start", pending.len());
    Ok(())
}

fn source(dir: &Path, stem: &str) -> String {
    format!("dropbox:{}/{stem}", dir.display())
}

fn scan(sdk: &Sdk, dir: &Path, pending: &mut BTreeMap<String, i64>) -> Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::config(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        if let Some(stem) = name.strip_suffix(ACCEPTED) {
            // Accepted before a restart: follow it to its result.
            if !pending.contains_key(stem) {
                if let Some(id) = sdk.by_source(&source(dir, stem))? {
                    pending.insert(stem.to_string(), id);
                }
            }
        } else if let Some(stem) = name.strip_suffix(REQ) {
            pick_up(sdk, dir, stem, pending)?;
        }
    }
    Ok(())
}

fn pick_up(sdk: &Sdk, dir: &Path, stem: &str, pending: &mut BTreeMap<String, i64>) -> Result<()> {
    let path = dir.join(format!("{stem}{REQ}"));
    let key = source(dir, stem);
    // Committed before a crash that came ahead of the rename: do not submit it again.
    let id = match sdk.by_source(&key)? {
        Some(id) => id,
        None => {
            let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
            let parsed: std::result::Result<(String, String, i32), String> = (|| {
                let v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
                let infno = v.get("infno").and_then(Value::as_str).ok_or("\"infno\" is missing")?.to_string();
                let input = v.get("input").ok_or("\"input\" is missing")?.to_string();
                let priority = v.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32;
                Ok((infno, input, priority))
            })();
            let submitted = parsed
                .map_err(|why| Error::invalid(format!("{stem}{REQ}: {why}")))
                .and_then(|(infno, input, priority)| sdk.call_async_from(&infno, &input, priority, Some(&key)));
            match submitted {
                Ok(id) => id,
                Err(e) if e.code == Code::InvalidArgument => {
                    write_result(
                        dir,
                        stem,
                        &json!({"request_id": 0, "mi_code": e.code.as_i32(),
                        "result": {"infcode": -1, "err_msg": e.message, "mi_code": e.code.as_i32()}}),
                    );
                    let _ = std::fs::rename(&path, dir.join(format!("{stem}.rejected.json")));
                    return Ok(());
                }
                // Busy, shutting down, the journal: try again on the next round.
                Err(e) => {
                    log::warn!("drop-box: {stem}{REQ} not submitted yet: {e}");
                    return Ok(());
                }
            }
        }
    };
    std::fs::rename(&path, dir.join(format!("{stem}{ACCEPTED}")))
        .map_err(|e| Error::config(format!("cannot rename {}: {e}", path.display())))?;
    pending.insert(stem.to_string(), id);
    Ok(())
}

fn deliver(sdk: &Sdk, dir: &Path, pending: &mut BTreeMap<String, i64>) {
    let mut done = Vec::new();
    for (stem, id) in pending.iter() {
        match sdk.get_result(*id) {
            Ok(o) if o.code == Code::Pending => {}
            Ok(o) => {
                let result: Value = serde_json::from_str(&o.output).unwrap_or(Value::String(o.output.clone()));
                write_result(dir, stem, &json!({"request_id": id, "mi_code": o.code.as_i32(), "result": result}));
                let _ = std::fs::rename(dir.join(format!("{stem}{ACCEPTED}")), dir.join(format!("{stem}.done.json")));
                done.push(stem.clone());
            }
            Err(e) => log::error!("drop-box: result of {stem} (request {id}): {e}"),
        }
    }
    for stem in done {
        pending.remove(&stem);
    }
}

/// Writes `<stem>.res.json` whole or not at all (a temp file, then a rename).
fn write_result(dir: &Path, stem: &str, doc: &Value) {
    let tmp: PathBuf = dir.join(format!("{stem}.res.json.tmp"));
    let ok =
        std::fs::write(&tmp, doc.to_string()).and_then(|_| std::fs::rename(&tmp, dir.join(format!("{stem}.res.json"))));
    if let Err(e) = ok {
        log::error!("drop-box: cannot write the result of {stem}: {e}");
    }
}
