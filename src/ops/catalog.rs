//! Catalogue downloads (1301–1319, and any query answered with a file the same
//! way): the query names the newest version after the one given and the file to
//! fetch; the file comes through 9102 as a zip of tab-separated text without a
//! header; it is turned into UTF-8 CSV with a header row, and the version reached
//! is written beside it, so the next run starts from there (resumable by version).

use super::report::csv_field;
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::sdk::Sdk;
use serde_json::{json, Value};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The platform's column names of the catalogues whose layout is known here, in
/// file order (`data/catalogues/<infno>.columns`, one per line, shared with the
/// simulator). Others get `col1`, `col2`, ….
fn columns(infno: &str) -> Vec<&'static str> {
    let text = match infno {
        "1301" => include_str!("../../data/catalogues/1301.columns"),
        _ => "",
    };
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// One version fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub version: String,
    pub csv: PathBuf,
    pub rows: u64,
}

/// `mi-sdk catalog`: starts the SDK, fetches, and says what was written.
pub fn run(cfg: Config, infno: &str, since: Option<&str>, out: &Path, as_json: bool) -> Result<String> {
    let sdk = Sdk::start(cfg)?;
    let r = fetch(&sdk, infno, since, out);
    sdk.shutdown(std::time::Duration::from_secs(10));
    let fetched = r?;
    if as_json {
        let list: Vec<Value> = fetched
            .iter()
            .map(|f| json!({"version": f.version, "csv": f.csv.to_string_lossy(), "rows": f.rows}))
            .collect();
        return Ok(Value::Array(list).to_string());
    }
    if fetched.is_empty() {
        let at = std::fs::read_to_string(version_file(out, infno)).unwrap_or_default();
        let version = since.map(str::to_owned).unwrap_or_else(|| at.trim().to_string());
        return Ok(format!("{infno}: up to date (version {version})"));
    }
    let lines: Vec<String> = fetched
        .iter()
        .map(|f| format!("{infno} version {}: {} rows -> {}", f.version, f.rows, f.csv.display()))
        .collect();
    Ok(lines.join("\n"))
}

/// The file holding the version reached for `infno` in `out`.
pub fn version_file(out: &Path, infno: &str) -> PathBuf {
    out.join(format!("{infno}.version"))
}

/// Fetches every version of catalogue `infno` after `since` (else after the one
/// recorded in `out`, else from the start) into `out` as CSV files.
pub fn fetch(sdk: &Sdk, infno: &str, since: Option<&str>, out: &Path) -> Result<Vec<Fetched>> {
    std::fs::create_dir_all(out)
        .map_err(|e| Error::invalid(format!("the output folder {} cannot be created: {e}", out.display())))?;
    let recorded = std::fs::read_to_string(version_file(out, infno)).ok().map(|v| v.trim().to_string());
    let mut version = since.map(str::to_owned).or(recorded).unwrap_or_else(|| "0".into());
    let mut fetched = Vec::new();
    loop {
        let q = sdk.call_sync(infno, &json!({"data": {"ver": version}}).to_string())?;
        let answer = check(q.code, &q.output, infno)?;
        let o = &answer["output"];
        let no = o["file_qury_no"].as_str().unwrap_or_default();
        let next = o["ver"].as_str().unwrap_or_default().to_string();
        if !no.is_empty() && !next.is_empty() && !is_plain_version(&next) {
            // The version names the files written: `../` or a drive would put them
            // anywhere (Windows resolves `..` in `1301_a\..\..\x` without `1301_a`).
            return Err(Error::new(
                Code::Protocol,
                format!(
                    "{infno}: the platform answered \"ver\": {}, which cannot name a file (only A-Z, a-z, 0-9, \
                     _ and - are allowed); nothing was downloaded or written",
                    Value::String(next)
                ),
            ));
        }
        if no.is_empty() || next.is_empty() || next <= version {
            return Ok(fetched);
        }
        let filename = o["filename"].as_str().unwrap_or_default();
        let staging = out.join(format!(".download-{infno}"));
        let d = sdk.download_file(no, filename, &staging)?;
        let downloaded = check(d.code, &d.output, "9102")?;
        let csv = out.join(format!("{infno}_{next}.csv"));
        let mut rows = 0;
        let part = out.join(format!(".{infno}_{next}.csv.part"));
        {
            let mut w = BufWriter::new(
                std::fs::File::create(&part)
                    .map_err(|e| Error::journal(format!("cannot write {}: {e}", part.display())))?,
            );
            let mut header_written = false;
            for f in downloaded["output"]["files"].as_array().into_iter().flatten() {
                let path = PathBuf::from(f["path"].as_str().unwrap_or_default());
                rows += to_csv(&path, infno, &mut w, &mut header_written)
                    .map_err(|e| Error::new(Code::Protocol, format!("{}: {e}", path.display())))?;
            }
            w.flush().map_err(|e| Error::journal(format!("cannot write {}: {e}", part.display())))?;
        }
        std::fs::rename(&part, &csv).map_err(|e| Error::journal(format!("cannot write {}: {e}", csv.display())))?;
        let _ = std::fs::remove_dir_all(&staging);
        // Only now is the version reached: a run cut short starts this one again.
        let vf = version_file(out, infno);
        std::fs::write(vf.with_extension("version.part"), &next)
            .and_then(|_| std::fs::rename(vf.with_extension("version.part"), &vf))
            .map_err(|e| Error::journal(format!("cannot write {}: {e}", vf.display())))?;
        fetched.push(Fetched { version: next.clone(), csv, rows });
        version = next;
    }
}

/// Whether a catalogue version can be part of a file name as it is: `[A-Za-z0-9_-]+`.
fn is_plain_version(ver: &str) -> bool {
    !ver.is_empty() && ver.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The answer of a call that must have succeeded.
fn check(code: Code, output: &str, what: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(output).unwrap_or(Value::Null);
    if code != Code::Ok {
        let msg = v["err_msg"].as_str().unwrap_or(output);
        return Err(Error::new(code, format!("{what}: {msg}")));
    }
    Ok(v)
}

/// Appends the rows of one tab-separated file (UTF-8, or GBK) as CSV, the header
/// first if it is not written yet. Returns the rows written.
fn to_csv(path: &Path, infno: &str, w: &mut impl Write, header_written: &mut bool) -> std::io::Result<u64> {
    let mut r = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut raw = Vec::new();
    let mut rows = 0;
    loop {
        raw.clear();
        if r.read_until(b'\n', &mut raw)? == 0 {
            return Ok(rows);
        }
        while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            raw.pop();
        }
        if raw.is_empty() {
            continue;
        }
        let line = match std::str::from_utf8(&raw) {
            Ok(s) => s.to_string(),
            Err(_) => crate::charset::Charset::Gbk.decode(&raw, "a catalogue row").map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("row {} is neither UTF-8 nor GBK: {e}", rows + 1),
                )
            })?,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        if !*header_written {
            let known = columns(infno);
            let header: Vec<String> = if known.len() == fields.len() {
                known.iter().map(|c| c.to_string()).collect()
            } else {
                (1..=fields.len()).map(|i| format!("col{i}")).collect()
            };
            writeln!(w, "{}", header.join(","))?;
            *header_written = true;
        }
        let cells: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        writeln!(w, "{}", cells.join(","))?;
        rows += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_csv_with_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("1399.txt");
        // A GBK row among UTF-8 ones, a comma and a quote inside fields, CRLF.
        let mut bytes = "a\tb,c\td\"e\r\n".as_bytes().to_vec();
        bytes.extend(crate::charset::Charset::Gbk.encode("张三\tx\ty\n"));
        bytes.extend(b"\n");
        std::fs::write(&txt, bytes).unwrap();
        let mut out = Vec::new();
        let mut header = false;
        assert_eq!(to_csv(&txt, "1399", &mut out, &mut header).unwrap(), 2);
        assert_eq!(String::from_utf8(out).unwrap(), "col1,col2,col3\na,\"b,c\",\"d\"\"e\"\n张三,x,y\n");
    }

    #[test]
    fn only_plain_versions_name_files() {
        assert!(is_plain_version("20261101001") && is_plain_version("v2_a-b"));
        for bad in ["", "..", "../x", "a/b", "a\\b", "C:x", "a b", "版本", "a.b"] {
            assert!(!is_plain_version(bad), "{bad}");
        }
    }
}
