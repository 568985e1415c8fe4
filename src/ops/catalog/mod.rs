//! Catalogue downloads (docs/operations.md, `catalog`). Two kinds, one result: UTF-8
//! CSV files with a header row in the output folder, and the point reached kept
//! beside them (`<infno>.version`) so the next run fetches only what changed.
//!
//! - **File catalogues** ([`file`]: 1301–1303, 1305–1311, 1313–1315, and any other
//!   query answered with a `file_qury_no`): the query takes the version after which
//!   to look; the rows come through 9102 as a zip of tab-separated text; the
//!   version reached is the highest `ver` in the rows.
//! - **Paged catalogues** ([`paged`]: 1304, 1312, 1316–1319): JSON queries by
//!   `updt_time`, fetched page by page; the point reached is the time the run
//!   started, and a run cut short resumes at the page after the last one written.

mod cells;
mod file;
mod layout;
mod paged;

use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::sdk::Sdk;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// One download written.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// The version (file catalogues) or update time (paged ones) reached; empty
    /// when it could not be told, which [`Fetched::note`] explains.
    pub version: String,
    pub csv: PathBuf,
    pub rows: u64,
    /// What the operator should know about this download.
    pub note: Option<String>,
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
            .map(|f| json!({"version": f.version, "csv": f.csv.to_string_lossy(), "rows": f.rows, "note": f.note}))
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
        .map(|f| {
            let mut line = format!("{infno} version {}: {} rows -> {}", f.version, f.rows, f.csv.display());
            if let Some(note) = &f.note {
                line.push_str(&format!(" ({note})"));
            }
            line
        })
        .collect();
    Ok(lines.join("\n"))
}

/// The file holding the version reached for `infno` in `out`.
pub fn version_file(out: &Path, infno: &str) -> PathBuf {
    out.join(format!("{infno}.version"))
}

/// Fetches what changed in catalogue `infno` since `since` (else since the point
/// recorded in `out`, else everything) into `out` as CSV files.
pub fn fetch(sdk: &Sdk, infno: &str, since: Option<&str>, out: &Path) -> Result<Vec<Fetched>> {
    std::fs::create_dir_all(out)
        .map_err(|e| Error::invalid(format!("the output folder {} cannot be created: {e}", out.display())))?;
    let recorded = std::fs::read_to_string(version_file(out, infno)).ok().map(|v| v.trim().to_string());
    let since = since.map(str::to_owned).or(recorded.filter(|v| !v.is_empty()));
    let cfg = sdk.config();
    if layout::PAGED.contains(&infno) {
        paged::fetch(sdk, cfg, infno, since, out)
    } else {
        file::fetch(sdk, cfg, infno, since, out)
    }
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

/// A count the platform writes as a number or as text (`data_cnt`, `pages`).
fn count(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Writes `path` whole or not at all (a temporary beside it, then a rename).
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = crate::paths::appended(path, ".part");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::journal(format!("cannot write {}: {e}", path.display())))
}

fn cannot_write(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::journal(format!("cannot write {}: {e}", path.display()))
}

/// Records the point reached: only after the CSV is whole, so a run cut short
/// fetches that part again.
fn record_version(out: &Path, infno: &str, version: &str) -> Result<()> {
    write_whole(&version_file(out, infno), version.as_bytes())
}

/// Writes one CSV line of `cells`, each cleaned ([`cells::clean`]) and quoted as CSV needs.
fn csv_line<'a>(w: &mut impl std::io::Write, cells: impl Iterator<Item = &'a str>) -> std::io::Result<()> {
    let mut first = true;
    for c in cells {
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        let c = cells::clean(c);
        if c.contains([',', '"', '\n', '\r']) {
            w.write_all(super::report::csv_field(&c).as_bytes())?;
        } else {
            w.write_all(c.as_bytes())?;
        }
    }
    w.write_all(b"\n")
}
