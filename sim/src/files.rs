//! Files (docs/protocol.md, "Files"): 9101 stores an upload under a new `file_qury_no`, 9102
//! answers with a zip stream: an upload, or a catalogue file ([`crate::catalogues`]).

use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Where the platform takes uploads and serves downloads.
pub const UPLOAD_PATH: &str = "/fsi/api/fileupload/upload";
pub const DOWNLOAD_PATH: &str = "/fsi/api/fileupload/download";

#[derive(Default)]
pub struct Files {
    /// file_qury_no -> (filename, bytes)
    stored: HashMap<String, (String, Arc<Vec<u8>>)>,
    serial: u64,
    pub catalogues: crate::catalogues::Catalogues,
}

impl Files {
    /// 9101: `fsUploadIn.in` is the file's bytes in Base64.
    pub fn upload(&mut self, input: &Value, fixmedins_code: &str, now: &str) -> Result<Value, String> {
        let up = input.get("fsUploadIn").ok_or("入参 fsUploadIn 不能为空")?;
        let filename = up.get("filename").and_then(Value::as_str).unwrap_or_default();
        if filename.is_empty() {
            return Err("fsUploadIn.filename 不能为空".into());
        }
        if up.get("fixmedins_code").and_then(Value::as_str) != Some(fixmedins_code) {
            return Err("fsUploadIn.fixmedins_code 与报文不一致".into());
        }
        let b64 = up.get("in").and_then(Value::as_str).ok_or("fsUploadIn.in 应为文件内容的 Base64 文本")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("fsUploadIn.in 不是有效的 Base64: {e}"))?;
        self.serial += 1;
        let no = format!("F{}{:08}", now, self.serial);
        self.stored.insert(no.clone(), (filename.to_string(), Arc::new(bytes)));
        Ok(json!({"file_qury_no": no, "filename": filename, "dld_endtime": "2099-12-31 23:59:59"}))
    }

    /// A file the platform makes for the institution (3202's answer): kept like an
    /// upload; returns its (file_qury_no, filename).
    pub fn store(&mut self, filename: &str, bytes: Vec<u8>, now: &str) -> (String, String) {
        self.serial += 1;
        let no = format!("F{}{:08}", now, self.serial);
        self.stored.insert(no.clone(), (filename.to_string(), Arc::new(bytes)));
        (no, filename.to_string())
    }

    /// The text of an uploaded file: its first entry when it is a zip.
    pub fn stored_text(&self, no: &str) -> Option<String> {
        let (_, bytes) = self.stored.get(no)?;
        if !bytes.starts_with(b"PK\x03\x04") {
            return String::from_utf8(bytes.to_vec()).ok();
        }
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.as_slice())).ok()?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut z.by_index(0).ok()?, &mut text).ok()?;
        Some(text)
    }

    /// 9102: the zip to stream: the stored file itself when it is a zip, or the
    /// stored file zipped under its name. Catalogue files are the platform's
    /// (`fixmedins_code: "plc"`); uploads are the institution's that sent them.
    pub fn download(&mut self, input: &Value, fixmedins_code: &str) -> Result<Arc<Vec<u8>>, String> {
        let down = input.get("fsDownloadIn").ok_or("入参 fsDownloadIn 不能为空")?;
        let no = down.get("file_qury_no").and_then(Value::as_str).unwrap_or_default();
        let filename = down.get("filename").and_then(Value::as_str).unwrap_or_default();
        let owner = down.get("fixmedins_code").and_then(Value::as_str).unwrap_or_default();
        let missing = || format!("文件查询号[{no}]在机构[{owner}]下不存在");
        if let Some(key) = self.catalogues.file(no) {
            if owner != crate::catalogues::CATALOGUE_OWNER {
                return Err(missing());
            }
            return Ok(crate::catalogues::zip(key));
        }
        if owner != fixmedins_code {
            return Err(missing());
        }
        let (name, bytes) = self.stored.get(no).ok_or_else(missing)?;
        if name != filename {
            return Err(format!("文件名[{filename}]与文件查询号不符"));
        }
        if bytes.starts_with(b"PK\x03\x04") {
            return Ok(bytes.clone());
        }
        Ok(Arc::new(crate::zipped::zip_of(name, bytes)))
    }
}
