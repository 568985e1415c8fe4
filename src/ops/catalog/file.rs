//! File catalogues: the 13xx query names a file (`file_qury_no`, `filename`,
//! `data_cnt`; no version), 9102 fetches it as a zip of tab-separated rows without
//! a header (under `files.catalog_fixmedins_code`, "plc"), and the version reached
//! is the highest `ver` among the rows, asked for next time.

use super::{check, count, csv_line, layout, record_version, Fetched};
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::sdk::Sdk;
use serde_json::{json, Value};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where a full download starts.
const FROM_THE_START: &str = "0";

pub fn fetch(sdk: &Sdk, cfg: &Config, infno: &str, since: Option<String>, out: &Path) -> Result<Vec<Fetched>> {
    let mut version = since.unwrap_or_else(|| FROM_THE_START.into());
    let columns = layout::columns(cfg, infno)
        .map_err(|e| Error::config(format!("files.catalog_layouts: the layout of {infno} cannot be read: {e}")))?;
    let mut fetched = Vec::new();
    loop {
        let q = sdk.call_sync(infno, &json!({"data": {"ver": version}}).to_string())?;
        let answer = check(q.code, &q.output, infno)?;
        let o = &answer["output"];
        let no = o["file_qury_no"].as_str().unwrap_or_default();
        if no.is_empty() || count(&o["data_cnt"]) == Some(0) {
            return Ok(fetched);
        }
        let filename = o["filename"].as_str().unwrap_or_default();
        let staging = out.join(format!(".download-{infno}"));
        let part = out.join(format!(".{infno}.csv.part"));
        let written = download(sdk, cfg, infno, no, filename, &staging, &columns, &part);
        let _ = std::fs::remove_dir_all(&staging);
        let written = match written {
            Ok(w) if w.rows > 0 => w,
            other => {
                let _ = std::fs::remove_file(&part);
                other?;
                return Ok(fetched); // an empty file: nothing newer
            }
        };
        // An older answer shape names the version beside the file.
        let reached = written.highest_ver.or_else(|| o["ver"].as_str().filter(|v| !v.is_empty()).map(str::to_owned));
        let Some(reached) = reached else {
            // No version to resume from: the file is kept under the time it came.
            let stamp = crate::clock::Clock::system().local().format("%Y%m%d%H%M%S");
            let csv = out.join(format!("{infno}_{stamp}.csv"));
            std::fs::rename(&part, &csv).map_err(super::cannot_write(&csv))?;
            let why = "no version could be read from the rows, so none was recorded for this file";
            let note = match written.note {
                Some(n) => format!("{n}; {why}"),
                None => why.to_string(),
            };
            fetched.push(Fetched { version: String::new(), csv, rows: written.rows, note: Some(note) });
            return Ok(fetched);
        };
        if !is_plain_version(&reached) {
            let _ = std::fs::remove_file(&part);
            // The version names the files written: `../` or a drive would put them
            // anywhere (Windows resolves `..` in `1301_a\..\..\x` without `1301_a`).
            return Err(Error::new(
                Code::Protocol,
                format!(
                    "{infno}: the catalogue names version {}, which cannot name a file (only A-Z, a-z, 0-9, _ and - \
                     are allowed); nothing was written",
                    Value::String(reached)
                ),
            ));
        }
        if !layout::version_order(&reached, &version).is_gt() {
            // Nothing newer than asked (a platform whose filter takes the version asked
            // for too): keeping it would overwrite that version's whole file with a
            // part of it, and asking again would loop.
            let _ = std::fs::remove_file(&part);
            return Ok(fetched);
        }
        let csv = out.join(format!("{infno}_{reached}.csv"));
        std::fs::rename(&part, &csv).map_err(super::cannot_write(&csv))?;
        record_version(out, infno, &reached)?;
        fetched.push(Fetched { version: reached.clone(), csv, rows: written.rows, note: written.note });
        version = reached;
    }
}

/// What one downloaded file became.
#[derive(Debug, Default)]
struct Written {
    rows: u64,
    highest_ver: Option<String>,
    note: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn download(
    sdk: &Sdk,
    cfg: &Config,
    infno: &str,
    no: &str,
    filename: &str,
    staging: &Path,
    columns: &[String],
    part: &Path,
) -> Result<Written> {
    let d = sdk.download_file_of(no, filename, staging, Some(&cfg.files.catalog_fixmedins_code))?;
    let downloaded = check(d.code, &d.output, "9102")?;
    let mut w = BufWriter::new(std::fs::File::create(part).map_err(super::cannot_write(part))?);
    let mut rows = Rows::new(infno, columns);
    for f in downloaded["output"]["files"].as_array().into_iter().flatten() {
        let path = PathBuf::from(f["path"].as_str().unwrap_or_default());
        rows.convert(&path, &mut w)?;
    }
    w.flush().map_err(super::cannot_write(part))?;
    Ok(rows.written)
}

/// Whether a catalogue version can be part of a file name as it is: `[A-Za-z0-9_-]+`.
fn is_plain_version(ver: &str) -> bool {
    !ver.is_empty() && ver.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Tab-separated rows (UTF-8, or GBK) becoming CSV with one header.
struct Rows<'a> {
    infno: &'a str,
    known: &'a [String],
    /// The number of columns of the first row: every row must have it.
    width: Option<usize>,
    ver_at: Option<usize>,
    written: Written,
}

impl<'a> Rows<'a> {
    fn new(infno: &'a str, known: &'a [String]) -> Self {
        Rows { infno, known, width: None, ver_at: None, written: Written::default() }
    }

    /// Appends the rows of one file, the header first if it is not written yet.
    fn convert(&mut self, path: &Path, w: &mut impl Write) -> Result<()> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let infno = self.infno;
        let bad = |line: u64, why: String| Error::new(Code::Protocol, format!("{infno}: {name} line {line}: {why}"));
        let io = |e: std::io::Error| Error::new(Code::Protocol, format!("{infno}: {name}: {e}"));
        let mut r = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
        let mut raw = Vec::new();
        let mut line_no = 0u64;
        loop {
            raw.clear();
            if r.read_until(b'\n', &mut raw).map_err(io)? == 0 {
                return Ok(());
            }
            line_no += 1;
            while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                raw.pop();
            }
            if raw.is_empty() {
                continue;
            }
            let line = crate::charset::utf8_or_gbk(&raw, "a catalogue row")
                .map_err(|e| bad(line_no, format!("neither UTF-8 nor GBK: {e}")))?;
            let fields: Vec<&str> = line.split('\t').collect();
            match self.width {
                None => self.header(fields.len(), w).map_err(io)?,
                Some(width) if width != fields.len() => {
                    return Err(bad(
                        line_no,
                        format!(
                            "{} columns where the rows before have {width}: the catalogue changed layout mid-stream; \
                             nothing was recorded",
                            fields.len()
                        ),
                    ))
                }
                Some(_) => {}
            }
            if let Some(v) = self.ver_at.map(|i| super::cells::clean(fields[i])) {
                let higher = match &self.written.highest_ver {
                    Some(h) => layout::version_order(&v, h).is_gt(),
                    None => !v.is_empty(),
                };
                if higher {
                    self.written.highest_ver = Some(v.into_owned());
                }
            }
            csv_line(w, fields.iter().copied()).map_err(io)?;
            self.written.rows += 1;
        }
    }

    /// The header: the layout's codes when the rows fit it, else `col1…colN`.
    fn header(&mut self, width: usize, w: &mut impl Write) -> std::io::Result<()> {
        self.width = Some(width);
        let named: Vec<String> = if self.known.len() == width {
            self.ver_at = self.known.iter().position(|c| c == "ver");
            self.known.to_vec()
        } else {
            self.written.note = Some(if self.known.is_empty() {
                format!("the layout of {} is not known: columns named col1…col{width}", self.infno)
            } else {
                format!(
                    "the rows have {width} columns where the known layout of {} has {}: columns named col1…col{width} \
                     (files.catalog_layouts can name them)",
                    self.infno,
                    self.known.len()
                )
            });
            (1..=width).map(|i| format!("col{i}")).collect()
        };
        csv_line(w, named.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(infno: &str, known: &[&str], files: &[&[u8]]) -> (Result<()>, String, Written) {
        let dir = tempfile::tempdir().unwrap();
        let known: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        let mut rows = Rows::new(infno, &known);
        let mut out = Vec::new();
        let mut r = Ok(());
        for (i, bytes) in files.iter().enumerate() {
            let p = dir.path().join(format!("{i}.txt"));
            std::fs::write(&p, bytes).unwrap();
            r = rows.convert(&p, &mut out);
            if r.is_err() {
                break;
            }
        }
        (r, String::from_utf8(out).unwrap(), rows.written)
    }

    #[test]
    fn rows_become_csv_named_by_the_layout_with_the_highest_version() {
        let mut gbk = crate::charset::Charset::Gbk.encode("张三\tnull\t20261101009\n");
        gbk.extend(b"\n");
        let (r, csv, w) = convert(
            "1399",
            &["name", "note", "ver"],
            &[b"a\tb,c\t20261101010\r\nd\"e\tThu Nov 30 00:00:00 CST 2006\t9\n", &gbk],
        );
        r.unwrap();
        assert_eq!(csv, "name,note,ver\na,\"b,c\",20261101010\n\"d\"\"e\",2006-11-30 00:00:00,9\n张三,,20261101009\n");
        assert_eq!((w.rows, w.highest_ver.as_deref(), w.note), (3, Some("20261101010"), None));
    }

    #[test]
    fn rows_that_do_not_fit_the_layout_are_numbered() {
        let (r, csv, w) = convert("1301", &["a", "ver"], &[b"x\ty\tz\n"]);
        r.unwrap();
        assert_eq!(csv, "col1,col2,col3\nx,y,z\n");
        assert_eq!(w.highest_ver, None);
        assert!(w.note.unwrap().contains("known layout of 1301 has 2"));
    }

    #[test]
    fn a_layout_changing_mid_stream_names_the_line() {
        let (r, _, _) = convert("1302", &[], &[b"a\tb\n", b"c\td\n\ne\tf\tg\n"]);
        let e = r.unwrap_err();
        assert_eq!(e.code, Code::Protocol);
        assert!(e.message.contains("1302: 1.txt line 3: 3 columns where the rows before have 2"), "{}", e.message);
    }

    #[test]
    fn only_plain_versions_name_files() {
        assert!(is_plain_version("20261101001") && is_plain_version("v2_a-b"));
        for bad in ["", "..", "../x", "a/b", "a\\b", "C:x", "a b", "版本", "a.b"] {
            assert!(!is_plain_version(bad), "{bad}");
        }
    }
}
