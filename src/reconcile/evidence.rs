//! What the platform's detail proves about a settlement left uncertain. Found
//! there under one of its msgids: it was processed, and the platform's row gives
//! its setl_id and amounts. Absent from a complete detail of its day: it was not
//! processed, and the cashier may settle again. Anything less decides nothing:
//! absence alone never reverses anything.
//!
//! A day's detail is complete for a settlement when it covers the day it was sent
//! on (and the next day too when it was sent in the last minutes of a day: the
//! platform may book it after midnight) and the settlement was sent long enough
//! before that nothing of it can still be on its way.

use super::books::{yuan, Pending};
use super::detail::{Difference, Side};
use crate::call::sdk_output;
use crate::error::Code;
use crate::journal::{Final, State};
use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::json;

/// How long after it was sent a settlement's absence from the platform's books
/// means anything, and how close to midnight a settlement may be booked the next day.
const SETTLED_WITHIN_MINUTES: i64 = 10;

/// The verdict on one uncertain settlement.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The platform has it: it succeeded.
    Succeeded {
        setl_id: String,
        medfee_sumamt: String,
        fund_pay_sumamt: String,
        acct_pay: String,
        /// Where the platform books it (from the detail it was found in).
        clr_type: String,
        setl_optins: String,
        /// The day it is booked on, when the detail was of one day.
        #[serde(skip_serializing_if = "Option::is_none")]
        day: Option<String>,
        by: String,
    },
    /// The platform's complete detail of its day lacks it.
    NotProcessed { by: String },
}

impl Verdict {
    pub fn describe(&self) -> String {
        match self {
            Verdict::Succeeded { setl_id, medfee_sumamt, by, .. } => {
                format!("SUCCEEDED as setl_id {setl_id} ({medfee_sumamt} yuan), confirmed by {by}")
            }
            Verdict::NotProcessed { by } => format!("NOT PROCESSED ({by}): safe to settle again"),
        }
    }
}

fn time(stamp: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(stamp.get(..19)?, "%Y-%m-%d %H:%M:%S").ok()
}

/// A differing row with where the platform books it.
pub struct Row<'a> {
    pub row: &'a Difference,
    pub clr_type: &'a str,
    pub setl_optins: &'a str,
}

/// The verdict on `p`, given every differing row the platform's details of
/// `from`..`to` listed, and whether a detail was fetched for `p`'s own group, at
/// `now` (journal time).
///
/// Found under one of its msgids, with the platform's amounts: succeeded. Absent:
/// not processed only if its group's detail was fetched, nothing the platform holds
/// alone is of the same visit (one visit settles once: a settlement booked under
/// another clearing agency or type than guessed would show there), every attempt
/// lies in the range with the time it may take to be booked, and the last one began
/// long enough ago that nothing of it can still be on its way. Else undecided.
pub fn judge(p: &Pending, rows: &[Row<'_>], detailed: bool, from: &str, to: &str, now: &str) -> Option<Verdict> {
    let by = if from == to { format!("reconciliation of {from}") } else { format!("reconciliation of {from} to {to}") };
    let found = rows
        .iter()
        .find(|d| d.row.side != Side::InstitutionOnly && !d.row.msgid.is_empty() && p.msgids.contains(&d.row.msgid));
    if let Some(d) = found {
        // Without the platform's amounts it proves the settlement, not what it was.
        let (m, f, a) = d.row.fen?;
        return Some(Verdict::Succeeded {
            setl_id: d.row.setl_id.clone(),
            medfee_sumamt: yuan(m),
            fund_pay_sumamt: yuan(f),
            acct_pay: yuan(a),
            clr_type: d.clr_type.to_string(),
            setl_optins: d.setl_optins.to_string(),
            day: (from == to).then(|| from.to_string()),
            by,
        });
    }
    let same_visit = rows
        .iter()
        .any(|d| d.row.side != Side::InstitutionOnly && !p.mdtrt_id.is_empty() && d.row.mdtrt_id == p.mdtrt_id);
    if !detailed || same_visit {
        return None;
    }
    let (first, last, now) = (time(&p.sent_at)?, time(&p.last_sent_at)?, time(now)?);
    let window = chrono::Duration::minutes(SETTLED_WITHIN_MINUTES);
    let complete = covered(first, from, to) && covered(last + window, from, to) && now - last >= window;
    complete.then_some(Verdict::NotProcessed { by: format!("absent from the {by}") })
}

fn covered(t: NaiveDateTime, from: &str, to: &str) -> bool {
    let day = t.format("%Y-%m-%d").to_string();
    day.as_str() >= from && day.as_str() <= to
}

/// Whether the platform may have booked `p` on a day of `from`..`to`: sent on one
/// of them, or just before the first.
pub fn concerns(p: &Pending, from: &str, to: &str) -> bool {
    let window = chrono::Duration::minutes(SETTLED_WITHIN_MINUTES);
    let sent = [time(&p.sent_at), time(&p.last_sent_at)];
    sent.into_iter().flatten().any(|t| covered(t, from, to) || covered(t + window, from, to))
}

/// The journal's final state for a verdict. `setlinfo`: the platform's own record
/// of the settlement (5203), when it could be fetched; else the detail's figures,
/// the cash part derived from them.
pub fn final_of(v: &Verdict, p: &Pending, setlinfo: Option<&serde_json::Value>) -> Final {
    let msgid = &p.msgids[0];
    match v {
        Verdict::Succeeded { setl_id, medfee_sumamt, fund_pay_sumamt, acct_pay, clr_type, setl_optins, day, by } => {
            let sent = p.sent_at.get(..19).unwrap_or(&p.sent_at);
            // Booked on the detail's day: at the time it was sent when that is the
            // day, else at the day's start (the platform booked it after midnight).
            let setl_time = match day {
                Some(d) if !sent.starts_with(d.as_str()) => format!("{d} 00:00:00"),
                _ => sent.to_string(),
            };
            let fen = |t: &String| super::books::fen(&serde_json::Value::String(t.clone())).unwrap_or(0);
            let mut info = json!({"setl_id": setl_id, "mdtrt_id": p.mdtrt_id, "psn_no": p.psn_no,
                "medfee_sumamt": medfee_sumamt, "fund_pay_sumamt": fund_pay_sumamt, "acct_pay": acct_pay,
                "psn_cash_pay": yuan(fen(medfee_sumamt) - fen(fund_pay_sumamt) - fen(acct_pay)),
                "insutype": p.group.insutype, "clr_type": clr_type, "clr_optins": setl_optins, "setl_time": setl_time});
            if let (Some(obj), Some(theirs)) = (info.as_object_mut(), setlinfo.and_then(|s| s.as_object())) {
                for (k, v) in theirs {
                    obj.insert(k.clone(), v.clone());
                }
            }
            let result = json!({"infcode": 0, "err_msg": "", "msgid": msgid, "confirmed_by": by,
                "output": {"setlinfo": info}});
            Final { state: State::Succeeded, code: Code::Ok, result: result.to_string(), last_error: None }
        }
        Verdict::NotProcessed { by } => {
            let msg = format!("{} was not processed: {by}; it is safe to settle again", p.infno);
            Final {
                state: State::Failed,
                code: Code::Network,
                result: sdk_output(Code::Network, &msg, msgid),
                last_error: Some(msg),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::books::Group;

    fn pending(sent_at: &str) -> Pending {
        Pending {
            group: Group { insutype: "310".into(), clr_type: "11".into(), setl_optins: "440300".into() },
            infno: "2207".into(),
            msgids: vec!["A".into(), "B".into()],
            mdtrt_id: "M".into(),
            psn_no: "P".into(),
            insuplc_admdvs: "440300".into(),
            sent_at: sent_at.into(),
            last_sent_at: sent_at.into(),
            journal: 0,
            request_id: 1,
        }
    }

    fn diff(side: Side, msgid: &str, mdtrt_id: &str) -> Difference {
        Difference {
            side,
            setl_id: "S9".into(),
            mdtrt_id: mdtrt_id.into(),
            psn_no: "P".into(),
            msgid: msgid.into(),
            memo: String::new(),
            fen: Some((100, 60, 40)),
        }
    }

    fn rows(d: &[Difference]) -> Vec<Row<'_>> {
        d.iter().map(|row| Row { row, clr_type: "11", setl_optins: "440100" }).collect()
    }

    #[test]
    fn found_under_any_msgid_it_succeeded_and_absence_decides_only_a_complete_day() {
        let d = "2026-11-30";
        let p = pending("2026-11-30 10:00:00.000");
        let theirs = [diff(Side::PlatformOnly, "B", "M")];
        match judge(&p, &rows(&theirs), true, d, d, "2026-11-30 10:01:00.000") {
            Some(Verdict::Succeeded { setl_id, medfee_sumamt, setl_optins, day, .. }) => {
                assert_eq!((setl_id.as_str(), medfee_sumamt.as_str(), setl_optins.as_str()), ("S9", "1.00", "440100"));
                assert_eq!(day.as_deref(), Some(d));
            }
            v => panic!("{v:?}"),
        }
        let mut no_amounts = diff(Side::PlatformOnly, "B", "M");
        no_amounts.fen = None;
        assert!(judge(&p, &rows(&[no_amounts]), true, d, d, "2026-11-30 12:00:00.000").is_none());
        let other = [diff(Side::PlatformOnly, "C", "M2")];
        // No detail of its group, or sent too recently: undecided.
        assert!(judge(&p, &rows(&other), false, d, d, "2026-11-30 12:00:00.000").is_none());
        assert!(judge(&p, &rows(&other), true, d, d, "2026-11-30 10:05:00.000").is_none());
        assert!(matches!(
            judge(&p, &rows(&other), true, d, d, "2026-11-30 12:00:00.000"),
            Some(Verdict::NotProcessed { .. })
        ));
        // The platform holds a settlement of the same visit under another msgid (or
        // group): never "not processed".
        let same_visit = [diff(Side::PlatformOnly, "C", "M")];
        assert!(judge(&p, &rows(&same_visit), true, d, d, "2026-11-30 12:00:00.000").is_none());
        // Sent before midnight: the next day must be in the detail too.
        let late = pending("2026-11-30 23:55:00.000");
        assert!(judge(&late, &[], true, d, d, "2026-12-01 09:00:00.000").is_none());
        assert!(judge(&late, &[], true, d, "2026-12-01", "2026-12-01 09:00:00.000").is_some());
        // Sent again the next morning (a retry, or taken over): that day too.
        let mut resent = pending("2026-11-30 17:00:00.000");
        resent.last_sent_at = "2026-12-01 08:00:00.000".into();
        assert!(judge(&resent, &[], true, d, d, "2026-12-01 09:00:00.000").is_none());
        assert!(concerns(&resent, "2026-12-01", "2026-12-01"));
        // Outside the range: nothing, and no concern of that range.
        assert!(judge(&p, &[], true, "2026-11-29", "2026-11-29", "2026-12-01 09:00:00.000").is_none());
        assert!(!concerns(&p, "2026-11-29", "2026-11-29") && concerns(&p, d, d));
        assert!(concerns(&late, "2026-12-01", "2026-12-01"), "booked after midnight, perhaps");
        let f = final_of(&Verdict::NotProcessed { by: "x".into() }, &p, None);
        assert_eq!((f.state, f.code), (State::Failed, Code::Network));
    }

    #[test]
    fn a_confirmed_settlement_is_booked_where_and_when_the_platform_booked_it() {
        let late = pending("2026-11-30 23:58:00.000");
        let v = Verdict::Succeeded {
            setl_id: "S9".into(),
            medfee_sumamt: "1.00".into(),
            fund_pay_sumamt: "0.60".into(),
            acct_pay: "0.30".into(),
            clr_type: "11".into(),
            setl_optins: "440100".into(),
            day: Some("2026-12-01".into()),
            by: "reconciliation of 2026-12-01".into(),
        };
        let f = final_of(&v, &late, None);
        let r: serde_json::Value = serde_json::from_str(&f.result).unwrap();
        let info = &r["output"]["setlinfo"];
        assert_eq!(
            (info["setl_time"].as_str(), info["clr_optins"].as_str()),
            (Some("2026-12-01 00:00:00"), Some("440100"))
        );
        assert_eq!(info["psn_cash_pay"], "0.10", "derived: total less fund less account");
        // The platform's own record, where fetched, wins.
        let f = final_of(&v, &late, Some(&json!({"psn_cash_pay": "0.05", "balc": "9.00"})));
        let r: serde_json::Value = serde_json::from_str(&f.result).unwrap();
        assert_eq!(
            (r["output"]["setlinfo"]["psn_cash_pay"].as_str(), r["output"]["setlinfo"]["balc"].as_str()),
            (Some("0.05"), Some("9.00"))
        );
    }
}
