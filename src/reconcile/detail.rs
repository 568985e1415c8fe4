//! The 3202 files. The institution's detail is a zipped text file, one settlement
//! per line, tab-separated, no header: `setl_id, mdtrt_id, psn_no, medfee_sumamt,
//! fund_pay_sumamt, acct_pay, refd_setl_flag`. The platform answers with a file of
//! the rows that differ: `psn_no, mdtrt_id, setl_id, msgid, stmt_rslt,
//! refd_setl_flag, memo, medfee_sumamt, fund_pay_sumamt, acct_pay` (the order
//! public HIS code reads it in); `stmt_rslt` 1: only the institution has it, 2:
//! only the platform, 3: the amounts differ.

use super::books::{fen, yuan, Settled};
use crate::error::{Code, Error, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The detail file's text.
pub fn text<'a>(rows: impl Iterator<Item = &'a Settled>) -> String {
    rows.map(|s| {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t0\n",
            s.setl_id,
            s.mdtrt_id,
            s.psn_no,
            yuan(s.medfee),
            yuan(s.fund),
            yuan(s.acct)
        )
    })
    .collect()
}

/// Writes `text` as `<name>.txt` zipped into `<dir>/<name>.zip`.
pub fn zipped(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{name}.zip"));
    let failed = |e: &dyn std::fmt::Display| Error::invalid(format!("cannot write {}: {e}", path.display()));
    let file = std::fs::File::create(&path).map_err(|e| failed(&e))?;
    let mut z = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    z.start_file(format!("{name}.txt"), opts).map_err(|e| failed(&e))?;
    z.write_all(text.as_bytes()).map_err(|e| failed(&e))?;
    z.finish().map_err(|e| failed(&e))?;
    Ok(path)
}

/// Which side has a settlement the other lacks, or that both have differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    InstitutionOnly,
    PlatformOnly,
    AmountsDiffer,
}

/// A row of the platform's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub side: Side,
    pub setl_id: String,
    pub mdtrt_id: String,
    pub psn_no: String,
    /// The platform's msgid of the message that settled.
    pub msgid: String,
    pub memo: String,
    /// The platform's amounts (yuan), where it has the settlement.
    #[serde(skip)]
    pub fen: Option<(i64, i64, i64)>,
}

/// Reads the platform's answer file. A line that does not have the layout is an
/// error naming it: a report built on a misread file would be wrong.
pub fn differences(text: &str) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.trim_end_matches('\r').split('\t').map(str::trim).collect();
        // The line itself is not quoted: it names a patient.
        let bad = || {
            Error::new(
                Code::Protocol,
                format!("line {} of the platform's 3202 answer is not in its layout ({} fields)", i + 1, f.len()),
            )
        };
        if f.len() < 7 {
            return Err(bad());
        }
        let side = match f[4] {
            "1" => Side::InstitutionOnly,
            "2" => Side::PlatformOnly,
            "3" => Side::AmountsDiffer,
            _ => return Err(bad()),
        };
        let amount = |k: usize| f.get(k).and_then(|v| fen(&serde_json::Value::String(v.to_string())));
        let fen = match (amount(7), amount(8), amount(9)) {
            (Some(m), Some(f), Some(a)) => Some((m, f, a)),
            _ => None,
        };
        out.push(Difference {
            side,
            setl_id: f[2].into(),
            mdtrt_id: f[1].into(),
            psn_no: f[0].into(),
            msgid: f[3].into(),
            memo: f[6].into(),
            fen,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_file_is_read_by_its_layout_and_a_strange_line_is_refused() {
        let t =
            "P1\tM1\tS1\tH0001\t2\t0\t中心有, 医药机构无\t81.00\t56.70\t24.30\r\nP2\tM2\tS2\t\t1\t0\tmemo\t1\t0\t0\n\n";
        let d = differences(t).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].side, d[0].setl_id.as_str(), d[0].msgid.as_str()), (Side::PlatformOnly, "S1", "H0001"));
        assert_eq!(d[0].fen, Some((8100, 5670, 2430)));
        assert_eq!(d[1].side, Side::InstitutionOnly);
        let e = differences("P1\tM1\tS1\tH\t7\t0\tx\n").unwrap_err();
        assert!(e.message.contains("line 1"), "{}", e.message);
        assert!(differences("just text").is_err());
    }
}
