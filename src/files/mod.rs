//! File transfer (PROTOCOL.md §5). 9101 sends a file's bytes (Base64 in
//! `fsUploadIn.in`) to the upload URL and is answered in JSON; 9102 asks the
//! download URL for a file and is answered with a **zip stream**, which is written
//! to disk as it arrives (never whole in memory) and unpacked safely
//! ([`unpack`]). Each is a journaled request like any other: 9102 is resent when a
//! download breaks off, 9101 never after it may have left.
//!
//! The journaled input carries what only this machine needs under `_mi_file` (the
//! upload's path, size and SHA-256; the download's folder); it is taken out before
//! sending, and the upload's bytes are read at send time, so the journal never
//! holds a file.

pub mod unpack;

use crate::config::Config;
use crate::transport::channel::Exchange;
use crate::transport::{gateway, Failure, Reply, Transport};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const UPLOAD: &str = "9101";
pub const DOWNLOAD: &str = "9102";
/// The key of the input's SDK-only part.
pub const PRIVATE: &str = "_mi_file";

/// The input of a 9101 request for a file, checked and measured now.
pub fn upload_input(cfg: &Config, path: &Path) -> crate::Result<Value> {
    let bad = |why: String| crate::Error::invalid(format!("file {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(bad("is not a file".into()));
    }
    let limit = u64::from(cfg.files.max_upload_mb) << 20;
    if meta.len() > limit {
        return Err(bad(format!(
            "is {} bytes, more than files.max_upload_mb ({} MB)",
            meta.len(),
            cfg.files.max_upload_mb
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let filename =
        path.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| bad("has no file name".into()))?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(json!({
        "fsUploadIn": {"in": "", "filename": filename, "fixmedins_code": cfg.institution.fixmedins_code},
        PRIVATE: {"path": abs.to_string_lossy(), "bytes": bytes.len(), "sha256": hex::encode(Sha256::digest(&bytes))}
    }))
}

/// The input of a 9102 request, unpacking into `dest_dir` (created if missing).
pub fn download_input(cfg: &Config, file_qury_no: &str, filename: &str, dest_dir: &Path) -> crate::Result<Value> {
    if file_qury_no.trim().is_empty() || filename.trim().is_empty() {
        return Err(crate::Error::invalid("file_qury_no and filename must not be empty"));
    }
    std::fs::create_dir_all(dest_dir)
        .map_err(|e| crate::Error::invalid(format!("dest_dir {} cannot be created: {e}", dest_dir.display())))?;
    let abs = std::path::absolute(dest_dir).unwrap_or_else(|_| dest_dir.to_path_buf());
    Ok(json!({
        "fsDownloadIn": {"file_qury_no": file_qury_no, "filename": filename,
                         "fixmedins_code": cfg.institution.fixmedins_code},
        PRIVATE: {"dest_dir": abs.to_string_lossy()}
    }))
}

/// Sends file requests: the URLs and limits of `files` in the config.
pub struct FileChannel {
    upload_url: String,
    download_url: String,
    max_download: u64,
    limits: unpack::Limits,
    timeout: Duration,
}

impl FileChannel {
    pub fn new(cfg: &Config) -> FileChannel {
        FileChannel {
            upload_url: cfg.upload_url(),
            download_url: cfg.download_url(),
            max_download: u64::from(cfg.files.max_download_mb) << 20,
            limits: unpack::Limits {
                max_bytes: u64::from(cfg.files.max_unpacked_mb) << 20,
                max_entries: u64::from(cfg.files.max_entries),
            },
            timeout: Duration::from_millis(cfg.files.timeout_ms),
        }
    }

    /// One send of a journaled file request.
    pub fn exchange(&self, transport: &Transport, infno: &str, envelope: &str) -> Exchange {
        let Ok(Value::Object(mut env)) = serde_json::from_str::<Value>(envelope) else {
            return Exchange::Failed(Failure::NeverSent("the journaled envelope is not JSON".into()));
        };
        let private = env.get_mut("input").and_then(Value::as_object_mut).and_then(|i| i.remove(PRIVATE));
        let Some(Value::Object(private)) = private else {
            return Exchange::Failed(Failure::NeverSent(format!("{infno} needs mi_upload_file / mi_download_file")));
        };
        let headers = gateway::headers(transport.gateway(), gateway::unix_ms());
        if infno == UPLOAD {
            match with_file_bytes(&mut env, &private) {
                Ok(()) => {}
                Err(why) => return Exchange::Failed(Failure::NeverSent(why)),
            }
            let body = Value::Object(env).to_string();
            return match transport.post_with_timeout(&self.upload_url, &headers, &body, self.timeout) {
                Ok(r) => Exchange::Answer(r),
                Err(f) => Exchange::Failed(f),
            };
        }
        let dest = PathBuf::from(private.get("dest_dir").and_then(Value::as_str).unwrap_or("."));
        let input = env.get("input").cloned().unwrap_or(Value::Null);
        let part = dest.join(format!(".mi_download_{}.zip.part", gateway::nonce()));
        let body = Value::Object(env).to_string();
        let got = transport.post_to_file(&self.download_url, &headers, &body, self.timeout, &part, self.max_download);
        let answer = match got {
            Err(f) => Exchange::Failed(f),
            Ok(d) if d.status != 200 || !d.is_zip => {
                // An answer in JSON (a refusal) or an error page: read as any answer.
                let text = std::fs::read(&part).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                Exchange::Answer(Reply { status: d.status, body: text })
            }
            Ok(d) => match unpack::unpack(&part, &dest, &self.limits) {
                Ok(files) => Exchange::Answer(Reply { status: 200, body: downloaded(&input, d.bytes, &files) }),
                Err(why) => Exchange::Refused { status: 200, body: json!({"refused": why}).to_string(), why },
            },
        };
        let _ = std::fs::remove_file(&part);
        answer
    }
}

/// Puts the file's bytes (Base64) into `fsUploadIn.in`, checking it is the file
/// that was journaled.
fn with_file_bytes(env: &mut Map<String, Value>, private: &Map<String, Value>) -> Result<(), String> {
    let path = private.get("path").and_then(Value::as_str).unwrap_or_default();
    let bytes = std::fs::read(path).map_err(|e| format!("the file {path} cannot be read: {e}"))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    if Some(sha.as_str()) != private.get("sha256").and_then(Value::as_str) {
        return Err(format!("the file {path} changed after it was submitted; not sent"));
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    match env.get_mut("input").and_then(|i| i.get_mut("fsUploadIn")).and_then(Value::as_object_mut) {
        Some(up) => {
            up.insert("in".into(), Value::String(b64));
            Ok(())
        }
        None => Err("the journaled input has no fsUploadIn".into()),
    }
}

/// The answer of a download, as the HIS and the journal get it: the platform's
/// envelope shape, with the files written.
fn downloaded(input: &Value, zip_bytes: u64, files: &[unpack::Unpacked]) -> String {
    let d = &input["fsDownloadIn"];
    json!({
        "infcode": 0,
        "err_msg": null,
        "output": {
            "file_qury_no": d["file_qury_no"],
            "filename": d["filename"],
            "zip_bytes": zip_bytes,
            "files": files.iter().map(|f| json!({"name": f.name, "path": f.path.to_string_lossy(), "bytes": f.bytes})).collect::<Vec<_>>(),
        }
    })
    .to_string()
}
