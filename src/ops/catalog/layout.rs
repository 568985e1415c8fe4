//! Which catalogues exist and how their rows are laid out.
//!
//! The file catalogues (1301–1303, 1305–1311, 1313–1315) come as tab-separated rows
//! without a header; their column codes, in file order, ship in
//! `data/catalogues/<infno>.columns` (sources in `data/catalogues/README.md`). A
//! folder named by `files.catalog_layouts` may add layouts (1320, 1321) or replace
//! one the platform has changed, without a new SDK. The paged catalogues (1304,
//! 1312, 1316–1319) are JSON queries answered page by page.

use crate::config::Config;

/// The catalogues answered page by page as JSON, not as a file.
pub const PAGED: [&str; 6] = ["1304", "1312", "1316", "1317", "1318", "1319"];

/// The layouts shipped with the SDK.
fn built_in(infno: &str) -> Option<&'static str> {
    Some(match infno {
        "1301" => include_str!("../../../data/catalogues/1301.columns"),
        "1302" => include_str!("../../../data/catalogues/1302.columns"),
        "1303" => include_str!("../../../data/catalogues/1303.columns"),
        "1305" => include_str!("../../../data/catalogues/1305.columns"),
        "1306" => include_str!("../../../data/catalogues/1306.columns"),
        "1307" => include_str!("../../../data/catalogues/1307.columns"),
        "1308" => include_str!("../../../data/catalogues/1308.columns"),
        "1309" => include_str!("../../../data/catalogues/1309.columns"),
        "1310" => include_str!("../../../data/catalogues/1310.columns"),
        "1311" => include_str!("../../../data/catalogues/1311.columns"),
        "1313" => include_str!("../../../data/catalogues/1313.columns"),
        "1314" => include_str!("../../../data/catalogues/1314.columns"),
        "1315" => include_str!("../../../data/catalogues/1315.columns"),
        // The 1312 answer's record fields, in the order of the interface tables.
        "1312" => include_str!("../../../data/catalogues/1312.columns"),
        _ => return None,
    })
}

/// The column codes of catalogue `infno` in file order: from `files.catalog_layouts`
/// when that folder has `<infno>.columns`, else built in, else none (unknown).
pub fn columns(cfg: &Config, infno: &str) -> std::io::Result<Vec<String>> {
    if let Some(dir) = cfg.catalog_layouts_dir() {
        let file = dir.join(format!("{infno}.columns"));
        if file.is_file() {
            return Ok(parse(&std::fs::read_to_string(&file)?));
        }
    }
    Ok(built_in(infno).map(parse).unwrap_or_default())
}

fn parse(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// Orders catalogue versions: digits by number (so `9` < `10`), else as text.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if numeric(a) && numeric(b) {
        let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        let inst = r#"{"fixmedins_code":"H44030000001","fixmedins_name":"h","mdtrtarea_admvs":"440300","opter":"1","opter_name":"o"}"#;
        Config::from_json(&format!(r#"{{"institution":{inst}}}"#), std::path::Path::new(".")).unwrap()
    }

    #[test]
    fn every_shipped_layout_has_its_version_column_once() {
        let cfg = cfg();
        for infno in
            ["1301", "1302", "1303", "1305", "1306", "1307", "1308", "1309", "1310", "1311", "1313", "1314", "1315"]
        {
            let cols = columns(&cfg, infno).unwrap();
            assert_eq!(cols.iter().filter(|c| *c == "ver").count(), 1, "{infno}");
            let mut seen = std::collections::HashSet::new();
            assert!(cols.iter().all(|c| seen.insert(c)), "{infno}: a column named twice");
        }
        assert_eq!(columns(&cfg, "1301").unwrap().len(), 92);
        assert_eq!(columns(&cfg, "1301").unwrap().iter().position(|c| c == "ver"), Some(82));
        assert!(columns(&cfg, "1320").unwrap().is_empty());
    }

    #[test]
    fn a_layouts_folder_adds_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1320.columns"), "# 1320, from the region's tables\na\nver\n\nb\n").unwrap();
        std::fs::write(dir.path().join("1301.columns"), "x\nver\n").unwrap();
        let mut cfg = cfg();
        cfg.files.catalog_layouts = dir.path().to_string_lossy().into_owned();
        assert_eq!(columns(&cfg, "1320").unwrap(), ["a", "ver", "b"]);
        assert_eq!(columns(&cfg, "1301").unwrap(), ["x", "ver"]);
        assert_eq!(columns(&cfg, "1302").unwrap().len(), 29);
    }

    #[test]
    fn versions_order_by_number() {
        use std::cmp::Ordering::*;
        assert_eq!(version_order("9", "10"), Less);
        assert_eq!(version_order("20261101001", "20261115002"), Less);
        assert_eq!(version_order("007", "7"), Equal);
        assert_eq!(version_order("b", "a"), Greater);
    }
}
