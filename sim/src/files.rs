//! Files (docs/protocol.md, "Files"): 9101 stores an upload under a new `file_qury_no`, 9102
//! answers with a zip stream, and the catalogue queries (1301–1319) point at a zip
//! of a realistic catalogue file: tab-separated rows, no header, as the platform
//! publishes them.

use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

/// Where the platform takes uploads and serves downloads.
pub const UPLOAD_PATH: &str = "/fsi/api/fileupload/upload";
pub const DOWNLOAD_PATH: &str = "/fsi/api/fileupload/download";

/// Rows of the catalogue file the 13xx queries point at.
pub const CATALOGUE_ROWS: usize = 100_000;

/// The columns of the 1301 (western and Chinese patent medicines) catalogue, in
/// the platform's order, one per line; the file itself has no header.
pub const CATALOGUE_COLUMNS: &str = include_str!("../../data/catalogues/1301.columns");

#[derive(Default)]
pub struct Files {
    /// file_qury_no -> (filename, bytes)
    stored: HashMap<String, (String, Arc<Vec<u8>>)>,
    serial: u64,
    /// The version the catalogue query answers with instead of the real one, set
    /// by `{"catalogue_ver": ..}` to `/sim/faults`: a hostile platform's `ver`.
    pub catalogue_ver: Option<String>,
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

    /// 9102: the zip to stream: the stored file itself when it is a zip, or the
    /// stored file zipped under its name.
    pub fn download(&mut self, input: &Value) -> Result<Arc<Vec<u8>>, String> {
        let down = input.get("fsDownloadIn").ok_or("入参 fsDownloadIn 不能为空")?;
        let no = down.get("file_qury_no").and_then(Value::as_str).unwrap_or_default();
        let filename = down.get("filename").and_then(Value::as_str).unwrap_or_default();
        if let Some(ver) = no.strip_prefix("CAT1301-") {
            return Ok(catalogue_zip(ver));
        }
        let (name, bytes) = self.stored.get(no).ok_or_else(|| format!("文件查询号[{no}]不存在"))?;
        if name != filename {
            return Err(format!("文件名[{filename}]与文件查询号不符"));
        }
        if bytes.starts_with(b"PK\x03\x04") {
            return Ok(bytes.clone());
        }
        Ok(Arc::new(zip_of(name, bytes)))
    }
}

/// 1301: the newest catalogue version after `data.ver` as a file to download;
/// `ver`, when given, is answered whatever `data.ver` is.
pub fn catalogue_query(input: &Value, ver: Option<&str>) -> Result<Value, String> {
    let since = input.pointer("/data/ver").and_then(Value::as_str).unwrap_or("");
    let (ver, forced) = match ver {
        Some(v) => (v, true),
        None => ("20261101001", false),
    };
    if since >= ver && !forced {
        // Up to date: nothing newer to download.
        return Ok(json!({"file_qury_no": "", "filename": "", "ver": since, "data_cnt": 0}));
    }
    Ok(json!({"file_qury_no": format!("CAT1301-{ver}"), "filename": format!("1301_{ver}.zip"), "ver": ver,
              "data_cnt": CATALOGUE_ROWS, "dld_endtime": "2099-12-31 23:59:59"}))
}

fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file(name, opts).expect("a zip in memory");
    w.write_all(bytes).expect("a zip in memory");
    w.finish().expect("a zip in memory").into_inner()
}

/// The catalogue file: CATALOGUE_ROWS tab-separated rows of CATALOGUE_COLUMNS,
/// made once per process.
pub fn catalogue_zip(ver: &str) -> Arc<Vec<u8>> {
    static ZIP: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    ZIP.get_or_init(|| {
        let mut text = String::with_capacity(CATALOGUE_ROWS * 160);
        let forms = ["片剂", "胶囊剂", "注射剂", "颗粒剂", "口服溶液剂"];
        for i in 0..CATALOGUE_ROWS {
            let row = [
                format!("XA{:02}{:03}{:010}", i % 23, i % 997, i),
                format!("通用名{i}"),
                format!("商品名{}", i % 5000),
                forms[i % forms.len()].to_string(),
                format!("{}mg*{}片", 5 * (1 + i % 40), 6 * (1 + i % 5)),
                "盒".to_string(),
                format!("示例制药有限公司{}", i % 300),
                format!("国药准字H{:08}", 20000000 + i),
                ["甲类", "乙类", "丙类"][i % 3].to_string(),
                "1".to_string(),
                format!("{:020}", i),
                ver.to_string(),
            ];
            debug_assert_eq!(row.len(), CATALOGUE_COLUMNS.lines().count(), "one field per column");
            text.push_str(&row.join("\t"));
            text.push('\n');
        }
        Arc::new(zip_of(&format!("1301_{ver}.txt"), text.as_bytes()))
    })
    .clone()
}
