//! File transfer (docs/protocol.md, "Files"): what a 9101 or 9102 request holds, and
//! unpacking a downloaded zip safely ([`unpack`]). 9101 sends a file's bytes (Base64
//! in `fsUploadIn.in`) and is answered in JSON; 9102 is answered with a **zip
//! stream**. Each is a journaled request like any other: 9102 is resent when a
//! download breaks off, 9101 never after it may have left. Sending them is the file
//! channel's work (`transport::files`).
//!
//! The journaled input carries what only this machine needs under `_mi_file` (the
//! upload's path, size and SHA-256; the download's folder); it is taken out before
//! sending, and the upload's bytes are read at send time, so the journal never
//! holds a file.

pub mod unpack;

use crate::config::Config;
use crate::error::{Error, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The key of the input's SDK-only part.
pub const PRIVATE: &str = "_mi_file";

/// The input of a 9101 request for a file, checked and measured now.
pub fn upload_input(cfg: &Config, path: &Path) -> Result<Value> {
    let bad = |why: String| Error::invalid(format!("file {}: {why}", path.display()));
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

/// Whose file a 9102 asks for (`fsDownloadIn.fixmedins_code`): the platform files
/// the catalogues (1301–1319) under `files.catalog_fixmedins_code` ("plc"), and
/// their `file_qury_no` names that folder (`fsi/plc/…`); everything else (3202,
/// 5204, the institution's own uploads) under the institution's code.
pub fn download_owner<'a>(cfg: &'a Config, file_qury_no: &str) -> &'a str {
    let catalogue = &cfg.files.catalog_fixmedins_code;
    if file_qury_no.split(['/', '\\']).any(|part| part == catalogue) {
        catalogue
    } else {
        &cfg.institution.fixmedins_code
    }
}

/// The input of a 9102 request, unpacking into `dest_dir` (created if missing).
/// `owner` is the `fixmedins_code` to send; `None`: [`download_owner`] decides.
pub fn download_input(
    cfg: &Config,
    file_qury_no: &str,
    filename: &str,
    dest_dir: &Path,
    owner: Option<&str>,
) -> Result<Value> {
    if file_qury_no.trim().is_empty() || filename.trim().is_empty() {
        return Err(Error::invalid("file_qury_no and filename must not be empty"));
    }
    std::fs::create_dir_all(dest_dir)
        .map_err(|e| Error::invalid(format!("dest_dir {} cannot be created: {e}", dest_dir.display())))?;
    let abs = std::path::absolute(dest_dir).unwrap_or_else(|_| dest_dir.to_path_buf());
    Ok(json!({
        "fsDownloadIn": {"file_qury_no": file_qury_no, "filename": filename,
                         "fixmedins_code": owner.unwrap_or_else(|| download_owner(cfg, file_qury_no))},
        PRIVATE: {"dest_dir": abs.to_string_lossy()}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_files_are_asked_for_as_the_platform_files_them() {
        let inst = r#"{"fixmedins_code":"H44030000001","fixmedins_name":"h","mdtrtarea_admvs":"440300","opter":"1","opter_name":"o"}"#;
        let cfg = Config::from_json(&format!(r#"{{"institution":{inst}}}"#), Path::new(".")).unwrap();
        assert_eq!(download_owner(&cfg, "fsi/plc/0f3a9c"), "plc");
        for own in ["F20261130000001", "fsi/H44030000001/ab", "fsi/plcx/ab", "plc-1"] {
            assert_eq!(download_owner(&cfg, own), "H44030000001", "{own}");
        }
        let dir = tempfile::tempdir().unwrap();
        let v = download_input(&cfg, "fsi/plc/1", "a.zip", dir.path(), Some("X1")).unwrap();
        assert_eq!(v["fsDownloadIn"]["fixmedins_code"], "X1");
    }
}
