//! Paged catalogues (1304, 1312, 1316–1319): JSON queries taking `updt_time`,
//! `page_num` and `page_size`, answering `output.data[]` with `pages` and
//! `recordCounts`. Each page is appended to the CSV and the page reached is kept in
//! `.<infno>.paging`, so a run cut short goes on from the next page; when the last
//! page is in, the time the run started is the update time asked for next.

use super::{check, count, csv_line, layout, record_version, write_whole, Fetched};
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::sdk::Sdk;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

/// Where a full download starts: before the platform held any catalogue.
const FROM_THE_START: &str = "2000-01-01 00:00:00";

/// How far before the run's start the next run asks from: this machine's clock
/// may be ahead of the platform's, and a record updated while the pages went by
/// may have moved between them. Records read twice are harmless (load by `rid`);
/// records missed are not.
const CLOCK_MARGIN_MIN: i64 = 60;

/// The most pages one run reads when the platform gives neither `pages` nor
/// `recordCounts`: a platform that ignored `page_num` would otherwise be read forever.
const MAX_PAGES_UNCOUNTED: u64 = 100_000;

/// A run in progress, kept after every page written.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Progress {
    /// The update time asked for.
    updt_time: String,
    /// When the run began (`yyyy-MM-dd HH:mm:ss`): the update time of the next run.
    started: String,
    next_page: u64,
    /// The page size the pages were counted in: a resume must ask in the same.
    page_size: u32,
    /// The CSV's length after the last page written: a page cut short is cut off.
    bytes: u64,
    rows: u64,
    columns: Vec<String>,
}

fn progress_file(out: &Path, infno: &str) -> PathBuf {
    out.join(format!(".{infno}.paging"))
}

fn part_file(out: &Path, infno: &str) -> PathBuf {
    out.join(format!(".{infno}.csv.part"))
}

pub fn fetch(sdk: &Sdk, cfg: &Config, infno: &str, since: Option<String>, out: &Path) -> Result<Vec<Fetched>> {
    let since = since.unwrap_or_else(|| FROM_THE_START.into());
    let (part, state) = (part_file(out, infno), progress_file(out, infno));
    let resumed = std::fs::read(&state)
        .ok()
        .and_then(|b| serde_json::from_slice::<Progress>(&b).ok())
        .filter(|p| p.updt_time == since && p.page_size == cfg.files.catalog_page_size)
        .filter(|p| std::fs::metadata(&part).is_ok_and(|m| m.len() >= p.bytes));
    let mut p = match resumed {
        Some(p) => p,
        None => Progress {
            updt_time: since.clone(),
            started: (crate::clock::Clock::system().local() - chrono::Duration::minutes(CLOCK_MARGIN_MIN))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            next_page: 1,
            page_size: cfg.files.catalog_page_size,
            bytes: 0,
            rows: 0,
            columns: layout::columns(cfg, infno).map_err(|e| {
                Error::config(format!("files.catalog_layouts: the layout of {infno} cannot be read: {e}"))
            })?,
        },
    };
    let mut csv = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .map_err(super::cannot_write(&part))?;
    // What a run cut short wrote after its last recorded page goes.
    csv.set_len(p.bytes).and_then(|_| csv.seek(std::io::SeekFrom::End(0))).map_err(super::cannot_write(&part))?;
    let size = cfg.files.catalog_page_size;
    loop {
        let input = json!({"data": {"updt_time": p.updt_time, "page_num": p.next_page, "page_size": size}});
        let q = sdk.call_sync(infno, &input.to_string())?;
        let answer = check(q.code, &q.output, infno)?;
        let o = &answer["output"];
        let records = o["data"].as_array().map(Vec::as_slice).unwrap_or_default();
        let mut page = Vec::new();
        if p.next_page == 1 {
            extend_columns(&mut p.columns, records.first());
            csv_line(&mut page, p.columns.iter().map(String::as_str)).map_err(super::cannot_write(&part))?;
        }
        for (i, r) in records.iter().enumerate() {
            let cells = cells_of(r, &p.columns).map_err(|why| {
                Error::new(
                    Code::Protocol,
                    format!("{infno}: page {} record {}: {why}; nothing was recorded", p.next_page, i + 1),
                )
            })?;
            csv_line(&mut page, cells.iter().map(String::as_str)).map_err(super::cannot_write(&part))?;
        }
        csv.write_all(&page).and_then(|_| csv.sync_data()).map_err(super::cannot_write(&part))?;
        p.bytes += page.len() as u64;
        p.rows += records.len() as u64;
        let last = match (count(&o["pages"]), count(&o["recordCounts"])) {
            (Some(pages), _) => p.next_page >= pages,
            (None, Some(total)) => p.rows >= total,
            (None, None) if p.next_page >= MAX_PAGES_UNCOUNTED => {
                return Err(Error::new(
                    Code::Protocol,
                    format!("{infno}: {MAX_PAGES_UNCOUNTED} full pages and no end in sight (the answer has neither pages nor recordCounts)"),
                ))
            }
            (None, None) => records.len() < size as usize,
        };
        p.next_page += 1;
        if last || records.is_empty() {
            break;
        }
        write_whole(&state, &serde_json::to_vec(&p).unwrap_or_default())?;
    }
    drop(csv);
    let _ = std::fs::remove_file(&state);
    let mut fetched = Vec::new();
    if p.rows == 0 {
        let _ = std::fs::remove_file(&part);
    } else {
        let stamp: String = p.started.chars().filter(char::is_ascii_digit).collect();
        let done = out.join(format!("{infno}_{stamp}.csv"));
        std::fs::rename(&part, &done).map_err(super::cannot_write(&done))?;
        fetched.push(Fetched { version: p.started.clone(), csv: done, rows: p.rows, note: None });
    }
    record_version(out, infno, &p.started)?;
    Ok(fetched)
}

/// The columns: the known layout, then any field of the first record it lacks.
fn extend_columns(columns: &mut Vec<String>, first: Option<&Value>) {
    for key in first.and_then(Value::as_object).into_iter().flat_map(|o| o.keys()) {
        if !columns.contains(key) {
            columns.push(key.clone());
        }
    }
}

/// A record's cells in column order; a field outside the columns is a layout
/// change, refused rather than dropped.
fn cells_of(record: &Value, columns: &[String]) -> std::result::Result<Vec<String>, String> {
    let o = record.as_object().ok_or("not a JSON object")?;
    if let Some(extra) = o.keys().find(|k| !columns.contains(k)) {
        return Err(format!(
            "field {extra:?} is not among the columns of the pages before: the catalogue changed layout mid-stream"
        ));
    }
    Ok(columns
        .iter()
        .map(|c| match o.get(c) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_fill_the_columns_and_new_fields_are_refused() {
        let mut cols = vec!["a".to_string(), "b".to_string()];
        extend_columns(&mut cols, Some(&json!({"b": 1, "c": "x"})));
        assert_eq!(cols, ["a", "b", "c"]);
        assert_eq!(cells_of(&json!({"c": "x", "a": null, "b": 2.5}), &cols).unwrap(), ["", "2.5", "x"]);
        assert!(cells_of(&json!({"d": 1}), &cols).unwrap_err().contains("\"d\""));
        assert!(cells_of(&json!([1]), &cols).is_err());
    }
}
