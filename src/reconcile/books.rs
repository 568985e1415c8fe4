//! The institution's side of the books: the settlements its journals kept, grouped
//! and summed as the platform sums them for 3201 (per insurance type, clearing
//! type and clearing agency), and the settlements left uncertain.
//!
//! A settlement counts on the day of its `setl_time` (the platform's), unless it
//! was reversed (2601) or cancelled (2208, 2305, 2103) since: the platform's
//! totals are of the settlements that stand. A journal read twice (a copy beside
//! the original) counts once: a msgid names one message of one workstation.

use crate::journal::books::Kept;
pub use crate::journal::books::{infnos, SETTLING};
use crate::journal::State;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

/// The 3201 grouping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Group {
    pub insutype: String,
    pub clr_type: String,
    pub setl_optins: String,
}

/// Money in fen, summed exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub medfee: i64,
    pub fund: i64,
    pub acct: i64,
    pub cash: i64,
    pub count: usize,
}

impl Sums {
    pub fn add(&mut self, s: &Settled) {
        self.medfee += s.medfee;
        self.fund += s.fund;
        self.acct += s.acct;
        self.cash += s.cash;
        self.count += 1;
    }
}

/// A settlement that stands.
#[derive(Debug, Clone)]
pub struct Settled {
    pub group: Group,
    pub day: String,
    pub setl_id: String,
    pub mdtrt_id: String,
    pub psn_no: String,
    pub medfee: i64,
    pub fund: i64,
    pub acct: i64,
    pub cash: i64,
    pub journal: usize,
    pub request_id: i64,
}

/// A settlement sent with no answer that says whether it was processed.
#[derive(Debug, Clone)]
pub struct Pending {
    pub group: Group,
    pub infno: String,
    pub msgids: Vec<String>,
    pub mdtrt_id: String,
    pub psn_no: String,
    /// When its first attempt began (journal time, `yyyy-MM-dd HH:MM:SS.mmm`).
    pub sent_at: String,
    /// When its last attempt began.
    pub last_sent_at: String,
    /// The insured place its envelope named (5203 wants it with a person).
    pub insuplc_admdvs: String,
    pub journal: usize,
    pub request_id: i64,
}

/// A journal read for the books.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub path: PathBuf,
    /// The SDK's own journal (evidence is written there); the others are read only.
    pub own: bool,
    /// Its settlements of the range that stand (set by the run).
    pub settlements: usize,
    /// Its uncertain settlements the range concerns (set by the run).
    pub uncertain: usize,
    /// Requests already read from another journal (a copy).
    pub duplicates: usize,
}

#[derive(Debug, Default)]
pub struct Books {
    pub sources: Vec<Source>,
    pub settled: Vec<Settled>,
    pub pending: Vec<Pending>,
    /// Every request read once: the row, and the journal it was taken from.
    rows: Vec<Kept>,
    row_journal: Vec<usize>,
    /// Request key -> (index in rows, journal).
    seen: HashMap<String, (usize, usize)>,
    cancelled: HashSet<String>,
}

/// Fen of a JSON amount (a number or a numeric string, in yuan).
pub fn fen(v: &Value) -> Option<i64> {
    let y = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    Some((y * 100.0).round() as i64)
}

/// Yuan with two decimals, as the platform writes amounts.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

/// The text at JSON pointer `path`: a string as it is, a number as written.
pub fn text(v: &Value, path: &str) -> String {
    match v.pointer(path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl Books {
    /// Adds what one journal kept. `identity` is the journal's own name: a copy of
    /// a journal has its name, and a request read twice under one name (the same
    /// request id) counts once, as it stands in the copy changed last. Journals
    /// too old to have a name are told apart by msgid.
    pub fn read(&mut self, path: PathBuf, own: bool, identity: Option<String>, kept: Vec<Kept>) {
        let journal = self.sources.len();
        self.sources.push(Source { path, own, settlements: 0, uncertain: 0, duplicates: 0 });
        for k in kept {
            let key = match &identity {
                Some(id) => format!("{id}/{}", k.request_id),
                None => format!("msgid/{}", k.msgids[0]),
            };
            match self.seen.get(&key) {
                Some(&(j, _)) if self.rows[j].updated_at >= k.updated_at => {
                    self.sources[journal].duplicates += 1;
                }
                Some(&(j, was)) => {
                    self.sources[was].duplicates += 1;
                    self.rows[j] = k;
                    self.row_journal[j] = journal;
                    self.seen.insert(key, (j, journal));
                }
                None => {
                    self.seen.insert(key, (self.rows.len(), journal));
                    self.rows.push(k);
                    self.row_journal.push(journal);
                }
            }
        }
        self.sort();
    }

    /// The rows read so far, as settlements that stand, cancellations and
    /// uncertain settlements.
    fn sort(&mut self) {
        self.settled.clear();
        self.pending.clear();
        self.cancelled.clear();
        for (k, &journal) in self.rows.iter().zip(&self.row_journal) {
            let Some(&(_, clr_type, _)) = SETTLING.iter().find(|(s, _, _)| *s == k.infno) else {
                // A cancellation: the settlement it names no longer stands.
                if k.state == State::Succeeded {
                    self.cancelled.insert(text(&k.envelope, "/input/data/setl_id"));
                }
                continue;
            };
            let input = |f: &str| text(&k.envelope, &format!("/input/data/{f}"));
            let out = |f: &str| text(&k.result, &format!("/output/setlinfo/{f}"));
            let or = |a: String, b: String| if a.is_empty() { b } else { a };
            let group = Group {
                insutype: or(out("insutype"), input("insutype")),
                clr_type: or(out("clr_type"), clr_type.to_string()),
                setl_optins: or(out("clr_optins"), text(&k.envelope, "/insuplc_admdvs")),
            };
            match k.state {
                State::Succeeded => {
                    let amount =
                        |f: &str| k.result.pointer(&format!("/output/setlinfo/{f}")).and_then(fen).unwrap_or(0);
                    let day = or(out("setl_time"), k.created_at.clone()).chars().take(10).collect();
                    self.settled.push(Settled {
                        group,
                        day,
                        setl_id: out("setl_id"),
                        mdtrt_id: or(out("mdtrt_id"), input("mdtrt_id")),
                        psn_no: or(out("psn_no"), input("psn_no")),
                        medfee: amount("medfee_sumamt"),
                        fund: amount("fund_pay_sumamt"),
                        acct: amount("acct_pay"),
                        cash: amount("psn_cash_pay"),
                        journal,
                        request_id: k.request_id,
                    });
                }
                State::Uncertain => {
                    let first = k.first_sent_at.clone().unwrap_or_else(|| k.created_at.clone());
                    self.pending.push(Pending {
                        group,
                        infno: k.infno.clone(),
                        msgids: k.msgids.clone(),
                        mdtrt_id: input("mdtrt_id"),
                        psn_no: input("psn_no"),
                        insuplc_admdvs: text(&k.envelope, "/insuplc_admdvs"),
                        last_sent_at: k.last_sent_at.clone().unwrap_or_else(|| first.clone()),
                        sent_at: first,
                        journal,
                        request_id: k.request_id,
                    });
                }
                _ => {}
            }
        }
    }

    /// The settlements that stand, settled on the days `from` to `to`.
    pub fn standing<'a>(&'a self, from: &'a str, to: &'a str) -> impl Iterator<Item = &'a Settled> + 'a {
        self.settled
            .iter()
            .filter(move |s| !self.cancelled.contains(&s.setl_id) && s.day.as_str() >= from && s.day.as_str() <= to)
    }

    /// The 3201 totals per group: every group with a settlement in the range, and
    /// the groups of the uncertain settlements (the platform may hold one there
    /// although the institution holds none) whose insurance type their input named.
    pub fn totals(&self, from: &str, to: &str) -> BTreeMap<Group, Sums> {
        let mut out: BTreeMap<Group, Sums> = BTreeMap::new();
        for s in self.standing(from, to) {
            out.entry(s.group.clone()).or_default().add(s);
        }
        for p in self.pending.iter().filter(|p| !p.group.insutype.is_empty()) {
            out.entry(p.group.clone()).or_default();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kept(id: i64, infno: &str, state: State, envelope: Value, result: Value) -> Kept {
        Kept {
            request_id: id,
            infno: infno.into(),
            state,
            msgids: vec![format!("M{id}")],
            envelope,
            result,
            created_at: "2026-11-30 10:00:00.000".into(),
            updated_at: "2026-11-30 10:00:00.000".into(),
            first_sent_at: Some("2026-11-30 10:00:00.000".into()),
            last_sent_at: Some("2026-11-30 10:00:00.000".into()),
        }
    }

    fn settled(id: i64, setl_id: &str, medfee: f64, day: &str) -> Kept {
        kept(
            id,
            "2207",
            State::Succeeded,
            json!({"insuplc_admdvs": "440300", "input": {"data": {"insutype": "310"}}}),
            json!({"output": {"setlinfo": {"setl_id": setl_id, "medfee_sumamt": medfee, "fund_pay_sumamt": "10.10",
                   "acct_pay": 0.1, "psn_cash_pay": 0.2, "setl_time": format!("{day} 09:00:00"), "clr_type": "11",
                   "clr_optins": "440300", "insutype": "310"}}}),
        )
    }

    #[test]
    fn totals_count_what_stands_once_per_msgid_on_the_platforms_day() {
        let mut b = Books::default();
        let cancel = kept(4, "2208", State::Succeeded, json!({"input": {"data": {"setl_id": "S3"}}}), json!({}));
        let open = kept(
            5,
            "2207",
            State::Uncertain,
            json!({"insuplc_admdvs": "440300", "input": {"data": {"insutype": "390"}}}),
            json!({}),
        );
        b.read(
            "a".into(),
            true,
            Some("A".into()),
            vec![
                settled(1, "S1", 70.01, "2026-11-30"),
                settled(2, "S2", 0.29, "2026-11-29"),
                settled(3, "S3", 5.0, "2026-11-30"),
                cancel,
                open,
            ],
        );
        // A copy of the same journal adds nothing; another journal with the same
        // request id is another request.
        b.read("b".into(), false, Some("A".into()), vec![settled(1, "S1", 70.01, "2026-11-30")]);
        assert_eq!(b.sources[1].duplicates, 1);
        let mut newer = settled(2, "S2", 0.29, "2026-11-29");
        newer.state = State::Reversed;
        newer.updated_at = "2026-11-30 11:00:00.000".into();
        b.read("c".into(), false, Some("A".into()), vec![newer]);
        assert_eq!((b.sources[0].duplicates, b.settled.len()), (1, 2), "the copy changed last wins");
        b.read("d".into(), false, Some("D".into()), vec![settled(1, "S9", 1.0, "2026-11-28")]);
        assert_eq!(b.settled.len(), 3);
        let t = b.totals("2026-11-30", "2026-11-30");
        let g = |ins: &str| Group { insutype: ins.into(), clr_type: "11".into(), setl_optins: "440300".into() };
        assert_eq!(t[&g("310")], Sums { medfee: 7001, fund: 1010, acct: 10, cash: 20, count: 1 });
        assert_eq!(t[&g("390")], Sums::default(), "the uncertain one's group is asked too");
        assert_eq!(b.pending.len(), 1);
        assert_eq!(yuan(-7001), "-70.01");
        assert_eq!(yuan(5), "0.05");
    }
}
