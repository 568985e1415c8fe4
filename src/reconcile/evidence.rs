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
    Succeeded { setl_id: String, medfee_sumamt: String, fund_pay_sumamt: String, acct_pay: String, by: String },
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

/// The verdict on `p`, given the platform's differing rows of its clearing type
/// and agency for `from`..`to` (None: no detail was fetched for it), at `now`
/// (journal time).
pub fn judge(p: &Pending, rows: Option<&[&Difference]>, from: &str, to: &str, now: &str) -> Option<Verdict> {
    let rows = rows?;
    let by = if from == to { format!("reconciliation of {from}") } else { format!("reconciliation of {from} to {to}") };
    let found =
        rows.iter().find(|d| d.side != Side::InstitutionOnly && !d.msgid.is_empty() && p.msgids.contains(&d.msgid));
    if let Some(d) = found {
        let (m, f, a) = d.fen.unwrap_or_default();
        return Some(Verdict::Succeeded {
            setl_id: d.setl_id.clone(),
            medfee_sumamt: yuan(m),
            fund_pay_sumamt: yuan(f),
            acct_pay: yuan(a),
            by,
        });
    }
    let (sent, now) = (time(&p.sent_at)?, time(now)?);
    let window = chrono::Duration::minutes(SETTLED_WITHIN_MINUTES);
    let day = |t: NaiveDateTime| t.format("%Y-%m-%d").to_string();
    let covered = |t: NaiveDateTime| day(t).as_str() >= from && day(t).as_str() <= to;
    let complete = covered(sent) && covered(sent + window) && now - sent >= window;
    complete.then_some(Verdict::NotProcessed { by: format!("absent from the {by}") })
}

/// The journal's final state for a verdict.
pub fn final_of(v: &Verdict, p: &Pending) -> Final {
    let msgid = &p.msgids[0];
    match v {
        Verdict::Succeeded { setl_id, medfee_sumamt, fund_pay_sumamt, acct_pay, by } => {
            let result = json!({"infcode": 0, "err_msg": "", "msgid": msgid, "confirmed_by": by,
                "output": {"setlinfo": {"setl_id": setl_id, "mdtrt_id": p.mdtrt_id, "psn_no": p.psn_no,
                    "medfee_sumamt": medfee_sumamt, "fund_pay_sumamt": fund_pay_sumamt, "acct_pay": acct_pay,
                    "insutype": p.group.insutype, "clr_type": p.group.clr_type, "clr_optins": p.group.setl_optins,
                    "setl_time": p.sent_at.get(..19).unwrap_or(&p.sent_at)}}});
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
            sent_at: sent_at.into(),
            journal: 0,
            request_id: 1,
        }
    }

    fn row(side: Side, msgid: &str) -> Difference {
        Difference {
            side,
            setl_id: "S9".into(),
            mdtrt_id: "M".into(),
            psn_no: "P".into(),
            msgid: msgid.into(),
            memo: String::new(),
            fen: Some((100, 60, 40)),
        }
    }

    #[test]
    fn found_under_any_msgid_it_succeeded_and_absence_decides_only_a_complete_day() {
        let d = "2026-11-30";
        let p = pending("2026-11-30 10:00:00.000");
        let theirs = row(Side::PlatformOnly, "B");
        match judge(&p, Some(&[&theirs]), d, d, "2026-11-30 10:01:00.000") {
            Some(Verdict::Succeeded { setl_id, medfee_sumamt, .. }) => {
                assert_eq!((setl_id.as_str(), medfee_sumamt.as_str()), ("S9", "1.00"))
            }
            v => panic!("{v:?}"),
        }
        let other = row(Side::PlatformOnly, "C");
        // No detail fetched, or sent too recently: undecided.
        assert!(judge(&p, None, d, d, "2026-11-30 12:00:00.000").is_none());
        assert!(judge(&p, Some(&[&other]), d, d, "2026-11-30 10:05:00.000").is_none());
        assert!(matches!(
            judge(&p, Some(&[&other]), d, d, "2026-11-30 12:00:00.000"),
            Some(Verdict::NotProcessed { .. })
        ));
        // Sent before midnight: the next day must be in the detail too.
        let late = pending("2026-11-30 23:55:00.000");
        assert!(judge(&late, Some(&[]), d, d, "2026-12-01 09:00:00.000").is_none());
        assert!(judge(&late, Some(&[]), d, "2026-12-01", "2026-12-01 09:00:00.000").is_some());
        // Outside the range: nothing.
        assert!(judge(&p, Some(&[]), "2026-11-29", "2026-11-29", "2026-12-01 09:00:00.000").is_none());
        let f = final_of(&Verdict::NotProcessed { by: "x".into() }, &p);
        assert_eq!((f.state, f.code), (State::Failed, Code::Network));
    }
}
