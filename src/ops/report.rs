//! `mi-sdk report` and `mi-sdk export`: a day's summary from the journal (counts
//! by transaction and state, failures, what is uncertain, the settled amounts), and
//! a CSV of the requests of a date range.

use super::journal;
use crate::config::Config;
use crate::error::Result;
use crate::journal::{Journal, State};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The settled amounts a report adds up, from `output.setlinfo` of 2207 and 2304.
const AMOUNTS: [&str; 4] = ["medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay"];

/// The summary of day `day` (`yyyy-MM-dd`) in `j` (one of the HTTP service's
/// reading connections when its API asks).
pub fn day(cfg: &Config, j: &Journal, day: &str, as_json: bool) -> Result<String> {
    let rows = j.between(day, day)?;
    let hours = j.latency_by_hour(day)?;
    let mut by: BTreeMap<(String, State), i64> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut uncertain = Vec::new();
    let mut settled = [0f64; 4];
    let mut settlements = 0;
    for r in &rows {
        *by.entry((r.infno.clone(), r.state)).or_default() += 1;
        match r.state {
            State::Failed | State::BusinessError => {
                {
                    // The platform's words reach operators' screens: masked and on one
                    // line, as in the status and the log.
                    let err = r.last_error.as_deref().map(|e| crate::logging::safe_line(e, cfg.log.mask_pii));
                    failures.push(json!({"request_id": r.id, "infno": r.infno, "msgid": r.msgid, "err_msg": err}))
                }
            }
            State::Uncertain => {
                uncertain.push(json!({"request_id": r.id, "infno": r.infno, "msgid": r.msgid, "since": r.updated_at}))
            }
            _ => {}
        }
        if r.state == State::Succeeded && (r.infno == "2207" || r.infno == "2304") {
            if let Some(s) = r.result.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()) {
                let si = &s["output"]["setlinfo"];
                for (total, k) in settled.iter_mut().zip(AMOUNTS) {
                    *total += si[k].as_f64().or_else(|| si[k].as_str().and_then(|v| v.parse().ok())).unwrap_or(0.0);
                }
                settlements += 1;
            }
        }
    }
    let round = |v: f64| (v * 100.0).round() / 100.0;
    if as_json {
        let doc = json!({
            "date": day,
            "requests": rows.len(),
            "by_transaction": by.iter().map(|((i, s), n)| json!({"infno": i, "state": s, "count": n})).collect::<Vec<_>>(),
            "failures": failures,
            "uncertain": uncertain,
            "latency_by_hour": hours.iter().map(|(h, n, p50, p99)| json!({"hour": h, "count": n, "p50_ms": p50, "p99_ms": p99}))
                .collect::<Vec<_>>(),
            "settled": {"count": settlements, "medfee_sumamt": round(settled[0]), "fund_pay_sumamt": round(settled[1]),
                        "acct_pay": round(settled[2]), "psn_cash_pay": round(settled[3])},
        });
        return Ok(doc.to_string());
    }
    let mut out = vec![format!("report for {day}: {} requests", rows.len())];
    for ((infno, state), n) in &by {
        out.push(format!("  {infno:<5} {:<14} {n:>6}", state.as_str()));
    }
    out.push(format!(
        "settled: {settlements} settlements, total {:.2}, fund {:.2}, account {:.2}, cash {:.2}",
        settled[0], settled[1], settled[2], settled[3]
    ));
    if !hours.is_empty() {
        out.push("latency by hour (answered attempts, p50 / p99 ms):".into());
        for (h, n, p50, p99) in &hours {
            out.push(format!("  {h:02}:00 {n:>6}  {p50:>6} / {p99}"));
        }
    }
    if !failures.is_empty() {
        out.push("failures:".into());
        for f in &failures {
            out.push(format!(
                "  {} {} {}",
                f["request_id"],
                f["infno"].as_str().unwrap_or(""),
                f["err_msg"].as_str().unwrap_or("")
            ));
        }
    }
    if !uncertain.is_empty() {
        out.push(format!("ACTION: {} uncertain request(s) to reverse or query:", uncertain.len()));
        for u in &uncertain {
            out.push(format!(
                "  {} {} msgid {}",
                u["request_id"],
                u["infno"].as_str().unwrap_or(""),
                u["msgid"].as_str().unwrap_or("")
            ));
        }
    }
    Ok(out.join("\n"))
}

/// The requests created on the days `from` to `to`, as CSV with a header row.
pub fn export(cfg: &Config, from: &str, to: &str) -> Result<String> {
    let rows = journal(cfg)?.between(from, to)?;
    let mut out =
        vec!["request_id,msgid,infno,state,mi_code,attempts,created_at,updated_at,infcode,err_msg".to_string()];
    for r in &rows {
        let result: Value = r.result.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
        let infcode = match &result["infcode"] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        out.push(format!(
            "{},{},{},{},{},{},{},{},{},{}",
            r.id,
            r.msgid,
            r.infno,
            r.state.as_str(),
            r.mi_code.map(|c| c.to_string()).unwrap_or_default(),
            r.attempts,
            r.created_at,
            r.updated_at,
            csv_field(&infcode),
            csv_field(r.last_error.as_deref().unwrap_or_default())
        ));
    }
    Ok(out.join("\n"))
}

/// A CSV field (RFC 4180), quoted when it must be.
pub fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(super::csv_field("a"), "a");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
