//! Reversal (2601, 冲正) of a state-changing transaction by its msgid: by hand
//! (`mi_reverse`, `mi-sdk reverse`), or queued by the SDK itself for an uncertain
//! one under `uncertain_policy: "reverse"`. Both records are linked both ways.

use super::{Core, Outcome};
use crate::config::UncertainPolicy;
use crate::error::{Code, Error, Result};
use crate::journal::{CallMode, Final, NewRequest, RequestRow, Start, State};
use crate::protocol::envelope::CallInput;
use crate::protocol::transactions;
use serde_json::{json, Map, Value};

impl Core {
    /// `mi_reverse`: sends 2601 for an uncertain or succeeded reversible request.
    pub fn reverse(&self, id: i64) -> Result<Outcome> {
        let row = self.request(id)?;
        if !crate::infno::matches_any(&row.infno, &self.cfg.retry.reversible_infnos) {
            return Err(Error::invalid(format!(
                "request {id} is a {}, which 2601 does not reverse (retry.reversible_infnos); undo it with its counter-transaction",
                row.infno
            )));
        }
        if row.state != State::Uncertain && row.state != State::Succeeded {
            return Err(Error::invalid(format!(
                "request {id} is {}: only an uncertain or succeeded request can be reversed",
                row.state
            )));
        }
        if let Some(prev) = row.reversed_by {
            if let Some(p) = self.journal.request(prev)? {
                if !matches!(p.state, State::Failed | State::BusinessError) {
                    return Err(Error::invalid(format!(
                        "request {id} is already being reversed by request {prev} ({})",
                        p.state
                    )));
                }
            }
        }
        let call = reversal_input(&row)?;
        let reversal = self.journal_claimed(transactions::REVERSAL, &call, Some(id))?;
        Ok(self.execute(reversal))
    }

    /// What a finished request changes about reversals: a successful 2601 marks its
    /// original reversed; an uncertain request may be reversed at once by policy.
    pub(super) fn after_reversal(&self, row: &RequestRow, fin: &Final) {
        if let (Code::Ok, Some(original)) = (fin.code, row.reversal_of) {
            if row.infno == transactions::REVERSAL {
                if let Err(e) = self.journal.write(|tx| tx.mark_reversed(original)) {
                    log::error!("request {original} was reversed by {}, but the journal could not say so: {e}", row.id);
                }
            }
        }
        if fin.state == State::Uncertain {
            self.reverse_if_policy(row);
        }
    }

    /// With `uncertain_policy: "reverse"`, queues the 2601 for an uncertain
    /// reversible request; the workers send it (and retry it) like any request.
    pub fn reverse_if_policy(&self, row: &RequestRow) {
        if self.cfg.retry.uncertain_policy != UncertainPolicy::Reverse
            || !crate::infno::matches_any(&row.infno, &self.cfg.retry.reversible_infnos)
        {
            return;
        }
        let queued = reversal_input(row).and_then(|call| {
            let req = NewRequest {
                reversal_of: Some(row.id),
                ..Core::new_request(transactions::REVERSAL, &call, CallMode::Async, i32::MAX)
            };
            self.journal.write(|tx| {
                let ins = tx.insert(&req, Start::Queued, |m| self.envelope_text(transactions::REVERSAL, m, &call))?;
                tx.link_reversal(row.id, ins.id)?;
                Ok(ins.id)
            })
        });
        match queued {
            Ok(rid) => {
                log::warn!("request {} ({}) is uncertain: reversal queued as request {rid}", row.id, row.infno);
                self.wake.notify();
            }
            Err(e) => log::error!("request {} is uncertain and its reversal could not be queued: {e}", row.id),
        }
    }
}

/// The 2601 input for a request: its msgid and infno, the person it named, and
/// the envelope fields it was sent with.
fn reversal_input(row: &RequestRow) -> Result<CallInput> {
    let env: Value = serde_json::from_str(&row.envelope)
        .map_err(|e| Error::journal(format!("journaled envelope is damaged: {e}")))?;
    let psn_no = find_str(&env["input"], "psn_no").unwrap_or_default();
    let mut overrides = Map::new();
    for k in ["insuplc_admdvs", "mdtrtarea_admvs", "opter", "opter_name", "opter_type"] {
        if let Some(v) = env.get(k).and_then(Value::as_str) {
            overrides.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    Ok(CallInput { business: json!({"data": {"psn_no": psn_no, "omsgid": row.msgid, "oinfno": row.infno}}), overrides })
}

/// The first string value of `key` anywhere in a JSON value.
fn find_str(v: &Value, key: &str) -> Option<String> {
    match v {
        Value::Object(m) => {
            m.get(key).and_then(Value::as_str).map(str::to_owned).or_else(|| m.values().find_map(|v| find_str(v, key)))
        }
        Value::Array(a) => a.iter().find_map(|v| find_str(v, key)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reversal_names_the_original_and_its_person() {
        let row = RequestRow {
            id: 7,
            msgid: "H44030000001202611301015300700".into(),
            infno: "2207".into(),
            mode: CallMode::Sync,
            priority: 0,
            state: State::Uncertain,
            envelope: json!({"infno": "2207", "insuplc_admdvs": "440100", "opter": "0009", "sign_no": "S",
                             "input": {"data": {"mdtrt_id": "M1", "list": [{"psn_no": "P1"}]}}})
            .to_string(),
            attempts: 1,
            mi_code: None,
            result: None,
            last_error: None,
            reversal_of: None,
            reversed_by: None,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let c = reversal_input(&row).unwrap();
        assert_eq!(c.business["data"], json!({"psn_no": "P1", "omsgid": row.msgid, "oinfno": "2207"}));
        assert_eq!(
            (c.overrides["insuplc_admdvs"].as_str(), c.overrides["opter"].as_str()),
            (Some("440100"), Some("0009"))
        );
        assert!(!c.overrides.contains_key("sign_no"), "only fields a caller may override");
    }
}
