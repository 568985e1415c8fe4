//! `mi-sdk requests` and `mi-sdk show`: requests from the journal by filter, and
//! one request with its attempts, as a table or as the records of `mi_get_request`.

use super::journal;
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::journal::{Filter, Journal};
use crate::sdk::RequestRecord;

/// Requests matching `f` in `j`, newest first. The HTTP API passes one of its
/// reading connections, so a monitor page refreshing every few seconds opens none.
pub fn list(cfg: &Config, j: &Journal, f: &Filter, as_json: bool) -> Result<String> {
    let rows = j.find(f)?;
    // The platform's words reach operators' screens (and the monitor page): masked
    // and on one line, as in the status and the log.
    let records: Vec<RequestRecord> = rows
        .iter()
        .map(RequestRecord::of)
        .map(|mut r| {
            r.last_error = r.last_error.map(|e| crate::logging::safe_line(&e, cfg.log.mask_pii));
            r
        })
        .collect();
    if as_json {
        let mut out = serde_json::to_value(&records).expect("records always serialise");
        for (v, row) in out.as_array_mut().into_iter().flatten().zip(&rows) {
            if let Some(s) = settlement(row, cfg.log.mask_pii) {
                v["settlement"] = s;
            }
        }
        return Ok(out.to_string());
    }
    let mut out = vec![format!(
        "{:>8}  {:<5}  {:<14}  {:>3}  {:<23}  {:<30}  last error",
        "id", "infno", "state", "try", "created", "msgid"
    )];
    for r in &records {
        let err: String = r.last_error.as_deref().unwrap_or("").chars().take(60).collect();
        out.push(format!(
            "{:>8}  {:<5}  {:<14}  {:>3}  {:<23}  {:<30}  {err}",
            r.request_id,
            r.infno,
            r.state.as_str(),
            r.attempts,
            r.created_at,
            r.msgid
        ));
    }
    out.push(format!("{} request(s)", records.len()));
    Ok(out.join("\n"))
}

/// What a person deciding about a settlement needs to recognise it: the visit,
/// the insured person (masked as in the log) and the amount, from what was sent.
fn settlement(row: &crate::journal::RequestRow, mask: bool) -> Option<serde_json::Value> {
    use crate::reconcile::books::{text as at, SETTLING};
    if !SETTLING.iter().any(|(s, _, _)| *s == row.infno) {
        return None;
    }
    let envelope: serde_json::Value = serde_json::from_str(&row.envelope).ok()?;
    let text = |k: &str| at(&envelope, &format!("/input/data/{k}"));
    let psn_no = text("psn_no");
    let psn_no = if mask { crate::logging::mask_id(&psn_no) } else { psn_no };
    Some(serde_json::json!({"mdtrt_id": text("mdtrt_id"), "psn_no": psn_no, "medfee_sumamt": text("medfee_sumamt")}))
}

/// One request with its result and attempts.
pub fn show(cfg: &Config, id: i64, as_json: bool) -> Result<String> {
    let j = journal(cfg)?;
    let row = j.request(id)?.ok_or_else(|| Error::new(Code::NotFound, format!("no request {id}")))?;
    let r = RequestRecord::of(&row).with_details(&row, &j.attempts(id)?);
    if as_json {
        return Ok(r.to_json());
    }
    let mut out = vec![
        format!("request {}  {}  {}  priority {}", r.request_id, r.infno, r.state.as_str(), r.priority),
        format!("msgid   {}", r.msgid),
        format!("created {}  updated {}", r.created_at, r.updated_at),
    ];
    if let Some(code) = r.mi_code {
        out.push(format!("code    {}", Code::from_i32(code).name()));
    }
    if let Some(e) = &r.last_error {
        out.push(format!("error   {e}"));
    }
    if let Some(o) = r.reversal_of {
        out.push(format!("reverses request {o}"));
    }
    if let Some(b) = r.reversed_by {
        out.push(format!("reversed by request {b}"));
    }
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for a in r.attempt_rows.iter().flatten() {
        out.push(format!(
            "  attempt {} {} {} {} http {} infcode {} {} ms {}",
            a.attempt_no,
            a.started_at,
            a.msgid,
            a.outcome,
            dash(a.http_status.map(|s| s.to_string())),
            dash(a.infcode.map(|s| s.to_string())),
            dash(a.latency_ms.map(|s| s.to_string())),
            a.err_msg
        ));
    }
    Ok(out.join("\n"))
}
