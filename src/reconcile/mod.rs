//! The day's books (docs/operations.md, "Day end"): the institution's settlements,
//! read from the journals of every workstation, reconciled with the platform's —
//! totals per group (3201), and, where they differ or a settlement is uncertain,
//! the detail (zip, 9101, 3202, 9102) — and the uncertain settlements resolved by
//! what the platform's detail shows.
//!
//! - [`books`]: the institution's side, summed;
//! - [`detail`]: the 3202 files;
//! - [`evidence`]: what the detail proves about an uncertain settlement;
//! - this file: the run and its report.

pub mod books;
pub mod detail;
pub mod evidence;

use crate::call::Outcome;
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::journal::books::Kept;
use crate::journal::Final;
use books::{yuan, Books, Group, Pending, Sums};
use detail::{Difference, Side};
use evidence::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What reconciliation needs of a running SDK: its calls and its journal. (The SDK
/// implements it; reconciliation knows nothing else of it, so that a call can ask
/// for reconciliation without a circle between the two.)
pub trait Platform {
    fn config(&self) -> &Config;
    fn call_sync(&self, infno: &str, input: &str) -> Result<Outcome>;
    fn upload_file(&self, path: &Path) -> Result<Outcome>;
    fn download_file(&self, file_qury_no: &str, filename: &str, dest_dir: &Path) -> Result<Outcome>;
    fn journal_path(&self) -> PathBuf;
    /// The journal's own name (`mi_meta` `journal_id`).
    fn journal_identity(&self) -> Option<String>;
    /// The journal's time now (`yyyy-MM-dd HH:MM:SS.mmm`, local).
    fn now(&self) -> String;
    /// The requests of `infnos` since `since` that the books read.
    fn kept(&self, infnos: &[&str], since: &str) -> Result<Vec<Kept>>;
    /// Ends an uncertain request by evidence; false when it is no longer uncertain.
    fn resolve_uncertain(&self, id: i64, fin: &Final) -> Result<bool>;
}

/// At most this many days in one run: a month's books.
const MAX_DAYS: i64 = 31;

/// What to reconcile: the days `from` to `to` (`yyyy-MM-dd`, inclusive), with the
/// journals of other workstations (or copies, or folders of copies) beside the
/// SDK's own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub from: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub journals: Vec<PathBuf>,
}

impl Spec {
    /// The JSON form of `mi_reconcile`: `{"from":"…","to":"…","journals":[…]}`.
    pub fn parse(text: &str) -> Result<Spec> {
        let spec: Spec = serde_json::from_str(text).map_err(|e| {
            Error::invalid(format!("the reconciliation request is not {{\"from\",\"to\",\"journals\"}}: {e}"))
        })?;
        spec.check()?;
        Ok(spec)
    }

    fn to(&self) -> &str {
        self.to.as_deref().unwrap_or(&self.from)
    }

    pub fn check(&self) -> Result<()> {
        let day = crate::clock::parse_day;
        let (from, to) = (day(&self.from, "from")?, day(self.to(), "to")?);
        let days = (to - from).num_days() + 1;
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(Error::invalid(format!("from {from} to {to}: give 1 to {MAX_DAYS} days, from before to")));
        }
        Ok(())
    }

    /// The journal files named: a folder stands for the journals in it (`*.db`).
    fn journal_files(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for p in &self.journals {
            if p.is_dir() {
                let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(|e| Error::invalid(format!("cannot read the folder {}: {e}", p.display())))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.is_file() && f.extension().is_some_and(|x| x.eq_ignore_ascii_case("db")))
                    .collect();
                if found.is_empty() {
                    return Err(Error::invalid(format!("no journal (*.db) in the folder {}", p.display())));
                }
                found.sort();
                out.extend(found);
            } else {
                out.push(p.clone());
            }
        }
        Ok(out)
    }
}

/// One group's totals on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    #[serde(flatten)]
    pub group: Group,
    pub ours: Value,
    pub platform: Value,
    pub balanced: bool,
}

/// A difference the detail found, with the institution's record of it.
#[derive(Debug, Clone, Serialize)]
pub struct DifferenceReport {
    #[serde(flatten)]
    pub row: Difference,
    pub clr_type: String,
    pub setl_optins: String,
    /// The journal and request of the institution's record, where it has one.
    pub journal: Option<PathBuf>,
    pub request_id: Option<i64>,
}

/// What the run did to an uncertain settlement.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub journal: PathBuf,
    pub request_id: i64,
    pub msgid: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Written into the journal (only the SDK's own journal is written).
    pub applied: bool,
}

/// The run's report (`mi_reconcile`'s output, `mi-sdk reconcile --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    /// Every group's totals agreed with the platform's.
    pub balanced: bool,
    pub journals: Vec<books::Source>,
    pub groups: Vec<GroupReport>,
    pub differences: Vec<DifferenceReport>,
    pub resolved: Vec<Resolution>,
    /// Uncertain settlements the run could not decide.
    pub uncertain_left: usize,
}

fn sums_json(s: &Sums) -> Value {
    json!({"medfee_sumamt": yuan(s.medfee), "fund_pay_sumamt": yuan(s.fund), "acct_pay": yuan(s.acct),
           "cash_payamt": yuan(s.cash), "fixmedins_setl_cnt": s.count})
}

/// The `output` of a call that must have succeeded, or why it did not.
fn answered(what: &str, r: Result<Outcome>) -> Result<Value> {
    let out = r?;
    let v: Value = serde_json::from_str(&out.output).unwrap_or(Value::Null);
    if out.code != Code::Ok {
        let why = v.get("err_msg").and_then(Value::as_str).unwrap_or(&out.output).to_string();
        return Err(Error::new(out.code, format!("{what} (request {}): {why}", out.request_id)));
    }
    Ok(v.get("output").cloned().unwrap_or(Value::Null))
}

/// Runs the reconciliation of `spec` on a running SDK.
pub fn run(sdk: &impl Platform, spec: &Spec) -> Result<Report> {
    spec.check()?;
    let (from, to) = (spec.from.as_str(), spec.to());
    // Settlements are read from the day before: one sent before midnight may be
    // the platform's next day.
    let since = (chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d").expect("checked") - chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    let work = Work::new()?;
    let mut books = Books::default();
    let own = sdk.journal_path();
    books.read(own.clone(), true, sdk.journal_identity(), sdk.kept(&books::infnos(), &since)?);
    let own_canon = std::fs::canonicalize(&own).ok();
    for path in spec.journal_files()? {
        if std::fs::canonicalize(&path).ok() == own_canon {
            continue;
        }
        let c = crate::journal::books::open_copy(&path, &work.0)?;
        let kept = crate::journal::books::kept(&c, &books::infnos(), &since)?;
        books.read(path, false, crate::journal::books::identity(&c), kept);
    }

    let mut groups = Vec::new();
    for (group, sums) in books.totals(from, to) {
        let input = json!({"data": {"insutype": group.insutype, "clr_type": group.clr_type, "setl_optins": group.setl_optins,
            "stmt_begndate": from, "stmt_enddate": to, "medfee_sumamt": yuan(sums.medfee),
            "fund_pay_sumamt": yuan(sums.fund), "acct_pay": yuan(sums.acct), "fixmedins_setl_cnt": sums.count}});
        let out = answered("3201", sdk.call_sync("3201", &input.to_string()))?;
        let info = out.get("stmtinfo").cloned().unwrap_or(Value::Null);
        // "0" agrees; some gateways answer codes as numbers.
        let balanced = matches!(info.get("stmt_rslt"), Some(Value::String(r)) if r == "0")
            || info.get("stmt_rslt").and_then(Value::as_i64) == Some(0);
        groups.push(GroupReport { group, ours: sums_json(&sums), platform: info, balanced });
    }

    // The detail, per clearing type and agency (3202 has no insurance type), where
    // a group differs or holds an uncertain settlement.
    let mut details: BTreeSet<(String, String)> = BTreeSet::new();
    let differing = groups.iter().filter(|g| !g.balanced).map(|g| &g.group);
    let pending = books.pending.iter().filter(|p| evidence::concerns(p, from, to));
    for g in differing.chain(pending.map(|p| &p.group)) {
        details.insert((g.clr_type.clone(), g.setl_optins.clone()));
    }
    let mut differences = Vec::new();
    let mut detailed = Vec::new();
    for (clr_type, optins) in details {
        let rows = detail_chain(sdk, &books, from, to, &clr_type, &optins)?;
        for row in rows {
            let ours = books.settled.iter().find(|s| !row.setl_id.is_empty() && s.setl_id == row.setl_id);
            differences.push(DifferenceReport {
                journal: ours.map(|s| books.sources[s.journal].path.clone()),
                request_id: ours.map(|s| s.request_id),
                clr_type: clr_type.clone(),
                setl_optins: optins.clone(),
                row,
            });
        }
        detailed.push((clr_type, optins));
    }

    let mut resolved = Vec::new();
    let mut left = 0;
    let now = sdk.now();
    let rows: Vec<evidence::Row<'_>> = differences
        .iter()
        .map(|d| evidence::Row { row: &d.row, clr_type: &d.clr_type, setl_optins: &d.setl_optins })
        .collect();
    for p in &books.pending {
        let detailed = detailed.iter().any(|(c, o)| *c == p.group.clr_type && *o == p.group.setl_optins);
        match evidence::judge(p, &rows, detailed, from, to, &now) {
            Some(verdict) => {
                let src = &books.sources[p.journal];
                let applied = src.own && {
                    let theirs = platform_record(sdk, p, &verdict);
                    sdk.resolve_uncertain(p.request_id, &evidence::final_of(&verdict, p, theirs.as_ref()))?
                };
                resolved.push(Resolution {
                    journal: src.path.clone(),
                    request_id: p.request_id,
                    msgid: p.msgids[0].clone(),
                    verdict,
                    applied,
                });
            }
            None if evidence::concerns(p, from, to) => left += 1,
            None => {}
        }
    }
    // What each journal holds of the range: its settlements that stand, and its
    // uncertain ones the range concerns.
    let standing: Vec<usize> =
        (0..books.sources.len()).map(|i| books.standing(from, to).filter(|s| s.journal == i).count()).collect();
    for (i, src) in books.sources.iter_mut().enumerate() {
        src.settlements = standing[i];
        src.uncertain = books.pending.iter().filter(|p| p.journal == i && evidence::concerns(p, from, to)).count();
    }
    let balanced = groups.iter().all(|g| g.balanced);
    Ok(Report {
        from: from.into(),
        to: to.into(),
        balanced,
        journals: books.sources,
        groups,
        differences,
        resolved,
        uncertain_left: left,
    })
}

/// `uncertain_policy: "query"`: a settlement call that just ended uncertain is
/// looked for at once in the platform's detail of the day. Found under its msgid,
/// its request ends succeeded and the caller gets the platform's settlement;
/// otherwise (not there yet, or the platform unreachable: the likely reason it is
/// uncertain) the outcome stays as it was, held. Absence decides nothing here.
pub fn confirm_now(sdk: &impl Platform, out: Outcome) -> Outcome {
    let tried = (|| -> Result<Option<Outcome>> {
        let today = sdk.now().chars().take(10).collect::<String>();
        let mut b = Books::default();
        b.read(sdk.journal_path(), true, sdk.journal_identity(), sdk.kept(&books::infnos(), &today)?);
        let Some(p) = b.pending.iter().find(|p| p.request_id == out.request_id) else { return Ok(None) };
        let (clr_type, optins) = (&p.group.clr_type, &p.group.setl_optins);
        let found = detail_chain(sdk, &b, &today, &today, clr_type, optins)?;
        let rows: Vec<evidence::Row<'_>> =
            found.iter().map(|row| evidence::Row { row, clr_type, setl_optins: optins }).collect();
        let Some(v @ Verdict::Succeeded { .. }) = evidence::judge(p, &rows, true, &today, &today, &sdk.now()) else {
            return Ok(None);
        };
        let fin = evidence::final_of(&v, p, platform_record(sdk, p, &v).as_ref());
        let done = sdk.resolve_uncertain(p.request_id, &fin)?;
        Ok(done.then_some(Outcome { request_id: out.request_id, code: Code::Ok, output: fin.result }))
    })();
    match tried {
        Ok(Some(found)) => found,
        Ok(None) => out,
        Err(e) => {
            log::warn!(
                "request {}: uncertain, and the platform's detail could not be asked: {}",
                out.request_id,
                e.message
            );
            out
        }
    }
}

/// The platform's own record of a settlement found in its detail (5203, which
/// needs the `setl_id` that only the detail gave): the cash part, the balance and
/// the rest the detail lacks. None when it cannot be had; the detail's figures
/// stand then.
fn platform_record(sdk: &impl Platform, p: &Pending, v: &Verdict) -> Option<Value> {
    let Verdict::Succeeded { setl_id, .. } = v else { return None };
    let mut input = json!({"input": {"data": {"psn_no": p.psn_no, "setl_id": setl_id, "mdtrt_id": p.mdtrt_id}}});
    if !p.insuplc_admdvs.is_empty() {
        input["insuplc_admdvs"] = json!(p.insuplc_admdvs);
    }
    match answered("5203", sdk.call_sync("5203", &input.to_string())) {
        Ok(out) => out.get("setlinfo").filter(|s| s.get("setl_id").and_then(Value::as_str) == Some(setl_id)).cloned(),
        Err(e) => {
            log::warn!("request {}: confirmed by the platform's detail; its 5203 record: {}", p.request_id, e.message);
            None
        }
    }
}

/// Zip, 9101, 3202, 9102: the platform's differing rows for one clearing type
/// and agency.
fn detail_chain(
    sdk: &impl Platform,
    books: &Books,
    from: &str,
    to: &str,
    clr_type: &str,
    optins: &str,
) -> Result<Vec<Difference>> {
    let mine: Vec<_> =
        books.standing(from, to).filter(|s| s.group.clr_type == clr_type && s.group.setl_optins == optins).collect();
    let mut sums = Sums::default();
    mine.iter().for_each(|s| sums.add(s));
    let work = Work::new()?;
    let code = &sdk.config().institution.fixmedins_code;
    // The file's name carries codes the HIS sent: only letters and digits of them.
    let safe = |t: &str| t.chars().filter(char::is_ascii_alphanumeric).collect::<String>();
    let name = format!("{}_3202_{}_{}_{}", safe(code), from.replace('-', ""), safe(clr_type), safe(optins));
    let zip = detail::zipped(&work.0, &name, &detail::text(mine.iter().copied()))?;
    let up = answered("9101 of the 3202 detail", sdk.upload_file(&zip))?;
    let file_qury_no = up.get("file_qury_no").and_then(Value::as_str).unwrap_or_default();
    let input = json!({"data": {"setl_optins": optins, "file_qury_no": file_qury_no, "stmt_begndate": from,
        "stmt_enddate": to, "medfee_sumamt": yuan(sums.medfee), "fund_pay_sumamt": yuan(sums.fund),
        "cash_payamt": yuan(sums.cash), "fixmedins_setl_cnt": sums.count, "refd_setl_flag": "0", "clr_type": clr_type}});
    let out = answered("3202", sdk.call_sync("3202", &input.to_string()))?;
    let info = out.get("fileinfo").cloned().unwrap_or(Value::Null);
    let field = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let dest = work.0.join("answer");
    let down =
        answered("9102 of the 3202 answer", sdk.download_file(&field("file_qury_no"), &field("filename"), &dest))?;
    let files = down.get("files").and_then(Value::as_array).cloned().unwrap_or_default();
    if files.is_empty() {
        // An empty answer would read as "nothing differs": proof of absence.
        return Err(Error::new(Code::Protocol, "the platform's 3202 answer (9102) held no file"));
    }
    let mut rows = Vec::new();
    for f in &files {
        let path = Path::new(f.get("path").and_then(Value::as_str).unwrap_or_default());
        let bytes = std::fs::read(path).map_err(|e| Error::invalid(format!("cannot read {}: {e}", path.display())))?;
        rows.extend(detail::differences(&crate::charset::utf8_or_gbk(&bytes, "the 3202 answer")?)?);
    }
    Ok(rows)
}

/// A folder of the run's files, removed when it ends.
struct Work(PathBuf);

impl Work {
    fn new() -> Result<Work> {
        let dir = std::env::temp_dir().join(format!(
            "mi_sdk-reconcile-{}-{}",
            std::process::id(),
            &crate::crypto::nonce()[..8]
        ));
        std::fs::create_dir_all(&dir).map_err(|e| Error::invalid(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Work(dir))
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Report {
    /// For a person: the table of groups, the differences, what was resolved.
    pub fn to_text(&self) -> String {
        let mut out = vec![format!(
            "reconciliation {} to {}: {}",
            self.from,
            self.to,
            if self.balanced { "BALANCED" } else { "DIFFERENT" }
        )];
        for j in &self.journals {
            out.push(format!(
                "journal  {}{}: {} settlement(s), {} uncertain{}",
                j.path.display(),
                if j.own { " (own)" } else { "" },
                j.settlements,
                j.uncertain,
                if j.duplicates > 0 { format!(", {} already read elsewhere", j.duplicates) } else { String::new() }
            ));
        }
        out.push(format!(
            "{:<8} {:<4} {:<8} {:>12} {:>12} {:>10} {:>5}   {:>12} {:>5}  result",
            "insutype", "clr", "optins", "medfee", "fund", "acct", "count", "platform", "count"
        ));
        for g in &self.groups {
            // Amounts as yuan with two decimals on both sides (the platform may answer numbers).
            let money = |v: &Value, k: &str| v.get(k).and_then(books::fen).map(yuan).unwrap_or_default();
            let count =
                |v: &Value| v.get("fixmedins_setl_cnt").map(|c| c.to_string().replace('"', "")).unwrap_or_default();
            let o = |k: &str| money(&g.ours, k);
            out.push(format!(
                "{:<8} {:<4} {:<8} {:>12} {:>12} {:>10} {:>5}   {:>12} {:>5}  {}",
                g.group.insutype,
                g.group.clr_type,
                g.group.setl_optins,
                o("medfee_sumamt"),
                o("fund_pay_sumamt"),
                o("acct_pay"),
                count(&g.ours),
                money(&g.platform, "medfee_sumamt"),
                count(&g.platform),
                if g.balanced {
                    "balanced".to_string()
                } else {
                    format!("DIFFERENT: {}", g.platform.get("stmt_rslt_dscr").and_then(Value::as_str).unwrap_or("-"))
                }
            ));
        }
        for d in &self.differences {
            let side = match d.row.side {
                Side::InstitutionOnly => "only in our books",
                Side::PlatformOnly => "only at the platform",
                Side::AmountsDiffer => "amounts differ",
            };
            let ours = match (&d.journal, d.request_id) {
                (Some(j), Some(id)) => format!(" (request {id} in {})", j.display()),
                _ => String::new(),
            };
            out.push(format!("  setl_id {} msgid {}: {side}{ours}", d.row.setl_id, d.row.msgid));
        }
        for r in &self.resolved {
            out.push(format!(
                "  uncertain request {} ({}): {}{}",
                r.request_id,
                r.journal.display(),
                r.verdict.describe(),
                if r.applied { "" } else { " - not written: run mi-sdk reconcile on that workstation" }
            ));
        }
        if self.uncertain_left > 0 {
            out.push(format!(
                "ACTION: {} uncertain settlement(s) still undecided: reconcile again once the day has ended",
                self.uncertain_left
            ));
        }
        out.join("\n")
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
