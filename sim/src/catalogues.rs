//! The catalogues as the platform serves them (docs/protocol.md, "Catalogues").
//!
//! - File catalogues (1301–1303, 1305–1311, 1313–1315): the query takes
//!   `data.ver` and answers `file_qury_no` (`fsi/plc/<hex>`), `filename`,
//!   `dld_end_time` and `data_cnt`, with no version; the rows (those whose `ver`
//!   is newer than the one asked) are tab-separated, without a header, in the
//!   layouts of `data/catalogues/`, with `ver` as a column, the literal `null` in
//!   empty cells and Java `Date.toString()` dates. 9102 gives them only to
//!   `fixmedins_code: "plc"`.
//! - Paged catalogues (1304, 1312, 1316–1319): `updt_time`, `page_num`,
//!   `page_size` in, `{pageNum, pageSize, size, startRow, pages, recordCounts,
//!   firstPage, lastPage, data[]}` out.

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The owner the platform files catalogue files under.
pub const CATALOGUE_OWNER: &str = "plc";

/// The two versions the catalogues hold: most rows are of the first, every tenth
/// row was changed in the second.
pub const VERSIONS: [&str; 2] = ["20261101001", "20261115002"];

/// Rows of the 1301 file (a real one has hundreds of thousands); the others are small.
pub const ROWS_1301: usize = 100_000;
const ROWS_OTHER: usize = 300;
/// Records of each paged catalogue.
pub const PAGED_RECORDS: usize = 2_345;

/// Column codes in file order, shared with the SDK.
pub fn layout(infno: &str) -> Option<&'static str> {
    Some(match infno {
        "1301" => include_str!("../../data/catalogues/1301.columns"),
        "1302" => include_str!("../../data/catalogues/1302.columns"),
        "1303" => include_str!("../../data/catalogues/1303.columns"),
        "1305" => include_str!("../../data/catalogues/1305.columns"),
        "1306" => include_str!("../../data/catalogues/1306.columns"),
        "1307" => include_str!("../../data/catalogues/1307.columns"),
        "1308" => include_str!("../../data/catalogues/1308.columns"),
        "1309" => include_str!("../../data/catalogues/1309.columns"),
        "1310" => include_str!("../../data/catalogues/1310.columns"),
        "1311" => include_str!("../../data/catalogues/1311.columns"),
        "1313" => include_str!("../../data/catalogues/1313.columns"),
        "1314" => include_str!("../../data/catalogues/1314.columns"),
        "1315" => include_str!("../../data/catalogues/1315.columns"),
        _ => return None,
    })
}

/// Whether `infno` is a paged catalogue.
pub fn is_paged(infno: &str) -> bool {
    ["1304", "1312", "1316", "1317", "1318", "1319"].contains(&infno)
}

/// One file a catalogue query pointed at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub infno: String,
    /// The version asked for: rows newer than it.
    pub since: String,
    /// Every row's `ver`, when a fault set it.
    pub forced_ver: Option<String>,
    /// A row (1-based) given one column too many, when a fault asked for it.
    pub break_at: Option<usize>,
}

/// The catalogues' state: the files pointed at, and the faults.
#[derive(Default)]
pub struct Catalogues {
    files: HashMap<String, FileKey>,
    serial: u64,
    /// `{"catalogue_ver": v}`: every row's `ver` is `v` (a hostile platform).
    pub forced_ver: Option<String>,
    /// `{"catalogue_break_layout_at": n}`: row/record n changes layout.
    pub break_at: Option<usize>,
}

fn version_newer(a: &str, b: &str) -> bool {
    let n = |s: &str| s.trim_start_matches('0').to_string();
    let (a, b) = (n(a), n(b));
    (a.len(), &a) > (b.len(), &b)
}

fn row_ver(i: usize) -> &'static str {
    if i % 10 == 9 {
        VERSIONS[1]
    } else {
        VERSIONS[0]
    }
}

impl Catalogues {
    /// A file catalogue query (`data.ver`).
    pub fn query(&mut self, infno: &str, input: &Value) -> Result<Value, String> {
        let since = input.pointer("/data/ver").and_then(Value::as_str).ok_or("入参 data.ver 不能为空")?;
        let rows = if infno == "1301" { ROWS_1301 } else { ROWS_OTHER };
        let count = match &self.forced_ver {
            Some(_) => rows,
            None => (0..rows).filter(|i| version_newer(row_ver(*i), since)).count(),
        };
        if count == 0 {
            return Ok(json!({"file_qury_no": "", "filename": "", "dld_end_time": "2099-12-31", "data_cnt": 0}));
        }
        self.serial += 1;
        let no = format!("fsi/{CATALOGUE_OWNER}/{:032x}", 0x5a17_0000_u128 * 1_000_003 + u128::from(self.serial));
        let key = FileKey {
            infno: infno.to_string(),
            since: since.to_string(),
            forced_ver: self.forced_ver.clone(),
            break_at: self.break_at,
        };
        self.files.insert(no.clone(), key);
        let filename = format!("{}{:06}.txt.zip", crate::checks::now_local().format("%Y%m%d%H%M%S"), self.serial);
        Ok(json!({"file_qury_no": no, "filename": filename, "dld_end_time": "2099-12-31", "data_cnt": count}))
    }

    /// The file behind a `file_qury_no`, if it is a catalogue file.
    pub fn file(&self, no: &str) -> Option<&FileKey> {
        self.files.get(no)
    }

    /// A paged catalogue query.
    pub fn page(&self, infno: &str, input: &Value) -> Result<Value, String> {
        let d = input.get("data").ok_or("入参 data 不能为空")?;
        let field = |k: &str| -> Result<String, String> {
            match d.get(k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(format!("入参 data.{k} 不能为空")),
            }
        };
        let updt_time = field("updt_time")?;
        let num: usize = field("page_num")?.parse().map_err(|_| "page_num 应为正整数".to_string())?;
        let size: usize = field("page_size")?.parse().map_err(|_| "page_size 应为正整数".to_string())?;
        if num == 0 || size == 0 || size > 10_000 {
            return Err("page_num/page_size 超出范围".into());
        }
        let matching: Vec<usize> = (0..PAGED_RECORDS).filter(|j| paged_updt_time(*j) >= updt_time).collect();
        let pages = matching.len().div_ceil(size);
        let start = (num - 1) * size;
        let data: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(size)
            .enumerate()
            .map(|(k, j)| paged_record(infno, *j, self.break_at.is_some_and(|b| b == start + k + 1)))
            .collect();
        Ok(json!({"pageNum": num, "pageSize": size, "size": data.len(), "startRow": start + 1, "pages": pages,
                  "recordCounts": matching.len(), "firstPage": 1, "lastPage": pages.max(1), "data": data}))
    }
}

/// When paged record `j` was last updated: most long ago, every seventh lately.
fn paged_updt_time(j: usize) -> String {
    if j % 7 == 3 {
        format!("2026-11-{:02} 08:{:02}:00", 10 + j % 15, j % 60)
    } else {
        format!("2024-{:02}-{:02} 10:00:00", 1 + j % 12, 1 + j % 28)
    }
}

/// A paged record; `extra` adds a field the pages before did not have.
fn paged_record(infno: &str, j: usize, extra: bool) -> Value {
    let mut r = Map::new();
    let code = format!("{}{j:08}", if infno == "1312" { "XA" } else { "C" });
    let fields: &[(&str, Value)] = &[
        ("hilist_code", json!(code)),
        ("hilist_name", json!(format!("医保目录{j}"))),
        ("insu_admdvs", json!("440300")),
        ("begndate", json!("2020-01-01 00:00:00")),
        ("enddate", Value::Null),
        ("med_chrgitm_type", json!(["09", "11", "13"][j % 3])),
        ("chrgitm_lv", json!(["01", "02", "03"][j % 3])),
        ("vali_flag", json!("1")),
        ("rid", json!(format!("{infno}{j:016}"))),
        ("updt_time", json!(paged_updt_time(j))),
        ("memo", json!(if j.is_multiple_of(11) { "含逗号,与\"引号\"" } else { "" })),
    ];
    for (k, v) in fields {
        r.insert(k.to_string(), v.clone());
    }
    if extra {
        r.insert("new_field".into(), json!("x"));
    }
    Value::Object(r)
}

/// The zip of a catalogue file, made once per distinct file.
pub fn zip(key: &FileKey) -> Arc<Vec<u8>> {
    static MADE: OnceLock<Mutex<HashMap<FileKey, Arc<Vec<u8>>>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    if let Some(z) = made.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
        return z.clone();
    }
    let text = file_text(key);
    let z = Arc::new(crate::zipped::zip_of(&format!("{}_{}.txt", key.infno, key.since), text.as_bytes()));
    made.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), z.clone());
    z
}

fn file_text(key: &FileKey) -> String {
    let columns: Vec<&str> =
        layout(&key.infno).unwrap_or("code\nname\nver").lines().filter(|l| !l.is_empty()).collect();
    let rows = if key.infno == "1301" { ROWS_1301 } else { ROWS_OTHER };
    let mut text = String::with_capacity(rows * columns.len() * 4);
    let forms = ["片剂", "胶囊剂", "注射剂", "颗粒剂", "口服溶液剂"];
    let mut written = 0;
    for i in 0..rows {
        let ver = key.forced_ver.as_deref().unwrap_or(row_ver(i));
        if key.forced_ver.is_none() && !version_newer(ver, &key.since) {
            continue;
        }
        written += 1;
        for (c, col) in columns.iter().enumerate() {
            if c > 0 {
                text.push('\t');
            }
            let cell = match *col {
                "ver" => ver.to_string(),
                "ver_name" => format!("{ver}版"),
                "rid" => format!("{:020}", i),
                "vali_flag" => "1".into(),
                "med_list_codg" => format!("XA{:02}{:03}{:010}", i % 23, i % 997, i),
                "drug_genname" => format!("通用名{i}"),
                "drug_prodname" => format!("商品名{}", i % 5000),
                "drug_dosform" => forms[i % forms.len()].into(),
                "prodentp_name" => format!("示例制药有限公司{}", i % 300),
                "aprvno" => format!("国药准字H{:08}", 20_000_000 + i),
                _ if c == 0 => format!("{}{i:08}", key.infno),
                _ if col.ends_with("time") || col.ends_with("date") => match i % 3 {
                    0 => java_date(i),
                    1 => "null".into(),
                    _ => format!("2021-{:02}-{:02} 00:00:00", 1 + i % 12, 1 + i % 28),
                },
                _ if i.is_multiple_of(4) => "null".into(),
                _ => format!("{}", i % 97),
            };
            text.push_str(&cell);
        }
        if key.break_at == Some(written) {
            text.push_str("\textra");
        }
        text.push('\n');
    }
    text
}

/// A date as Java's `Date.toString()` writes it, as real catalogue files hold them.
fn java_date(i: usize) -> String {
    let d = chrono::NaiveDate::from_ymd_opt(2000 + (i % 25) as i32, 1 + (i % 12) as u32, 1 + (i % 28) as u32)
        .expect("a valid day");
    format!("{} 00:00:00 CST {}", d.format("%a %b %d"), d.format("%Y"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_query_answers_without_a_version_and_only_newer_rows() {
        let mut c = Catalogues::default();
        let all = c.query("1305", &json!({"data": {"ver": "0"}})).unwrap();
        assert!(all.get("ver").is_none());
        assert_eq!(all["data_cnt"], ROWS_OTHER);
        let no = all["file_qury_no"].as_str().unwrap();
        assert!(no.starts_with("fsi/plc/"), "{no}");
        let newer = c.query("1305", &json!({"data": {"ver": VERSIONS[0]}})).unwrap();
        assert_eq!(newer["data_cnt"], ROWS_OTHER / 10);
        let none = c.query("1305", &json!({"data": {"ver": VERSIONS[1]}})).unwrap();
        assert_eq!(none["data_cnt"], 0);
        assert!(c.query("1305", &json!({"data": {}})).is_err());

        let text = file_text(c.file(no).unwrap());
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), ROWS_OTHER);
        assert!(rows.iter().all(|r| r.split('\t').count() == 16));
        assert!(text.contains("\tnull\t") && text.contains(" CST 20"), "nulls and Java dates");
    }

    #[test]
    fn pages_cover_the_records_once() {
        let c = Catalogues::default();
        let mut seen = 0;
        for num in 1..=3 {
            let p = c
                .page(
                    "1312",
                    &json!({"data": {"updt_time": "2000-01-01 00:00:00", "page_num": num, "page_size": "1000"}}),
                )
                .unwrap();
            assert_eq!(p["pages"], 3);
            seen += p["data"].as_array().unwrap().len();
        }
        assert_eq!(seen, PAGED_RECORDS);
        let recent = c
            .page("1312", &json!({"data": {"updt_time": "2026-01-01 00:00:00", "page_num": 1, "page_size": 5000}}))
            .unwrap();
        assert_eq!(recent["recordCounts"], PAGED_RECORDS.div_ceil(7));
        assert!(c.page("1312", &json!({"data": {"page_num": 1, "page_size": 10}})).is_err());
    }
}
