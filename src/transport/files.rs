//! The file channel: 9101 uploads to the upload URL, answered in JSON; 9102 asks the
//! download URL for a file and is answered with a zip stream, written to disk as it
//! arrives (never whole in memory) and unpacked safely ([`crate::files::unpack`]).

use crate::config::Config;
use crate::crypto::nonce;
use crate::crypto::sealed_output::SealedOutput;
use crate::files::{unpack, PRIVATE};
use crate::protocol::transactions::FILE_UPLOAD;
use crate::transport::sealed::opened;
use crate::transport::{Exchange, Failure, Reply, Transport};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;

/// Sends file requests: the URLs and limits of `files` in the config.
pub struct FileChannel {
    upload_url: String,
    download_url: String,
    max_download: u64,
    limits: unpack::Limits,
    timeout: Duration,
    /// `envelope.cainfo` is `sm3_of_input`: computed over the input as sent, once
    /// the file is in (9101) and the SDK's own notes are out.
    sm3_cainfo: bool,
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
            sm3_cainfo: cfg.envelope.cainfo == crate::variant::Cainfo::Sm3OfInput,
        }
    }

    /// One send of a journaled file request. The platform's own answers (the
    /// upload's, a download's refusal) are opened if it seals them; a download's
    /// answer made here from the zip is not the platform's, and is not.
    pub fn exchange(
        &self,
        transport: &Transport,
        infno: &str,
        envelope: &str,
        sealed: Option<&SealedOutput>,
    ) -> Exchange {
        let Ok(Value::Object(mut env)) = serde_json::from_str::<Value>(envelope) else {
            return Exchange::Failed(Failure::NeverSent("the journaled envelope is not JSON".into()));
        };
        let private = env.get_mut("input").and_then(Value::as_object_mut).and_then(|i| i.remove(PRIVATE));
        let Some(Value::Object(private)) = private else {
            return Exchange::Failed(Failure::NeverSent(format!("{infno} needs mi_upload_file / mi_download_file")));
        };
        let url = if infno == FILE_UPLOAD { &self.upload_url } else { &self.download_url };
        let headers = transport.headers(url);
        if infno == FILE_UPLOAD {
            if let Err(why) = with_file_bytes(&mut env, &private) {
                return Exchange::Failed(Failure::NeverSent(why));
            }
        }
        if self.sm3_cainfo {
            crate::protocol::wire::sign_input(&mut env);
        }
        if infno == FILE_UPLOAD {
            let body = Value::Object(env).to_string();
            return match transport.post_with_timeout(&self.upload_url, &headers, &body, self.timeout) {
                Ok(r) => opened(sealed, r),
                Err(f) => Exchange::Failed(f),
            };
        }
        let dest = PathBuf::from(private.get("dest_dir").and_then(Value::as_str).unwrap_or("."));
        let input = env.get("input").cloned().unwrap_or(Value::Null);
        let part = dest.join(format!(".mi_download_{}.zip.part", nonce()));
        let body = Value::Object(env).to_string();
        let got = transport.post_to_file(&self.download_url, &headers, &body, self.timeout, &part, self.max_download);
        let answer = match got {
            Err(f) => Exchange::Failed(f),
            Ok(d) if d.status != 200 || !d.is_zip => {
                // An answer in JSON (a refusal) or an error page: read as any answer.
                let text = std::fs::read(&part).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                opened(sealed, Reply { status: d.status, body: text })
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
