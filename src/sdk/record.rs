//! The record of one request, as `mi_get_request` returns it and `mi-sdk requests`
//! and `mi-sdk show` print it: one struct for all three.

use crate::journal::{Attempt, CallMode, RequestRow, State};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub request_id: i64,
    pub msgid: String,
    pub infno: String,
    pub state: State,
    pub priority: i32,
    pub attempts: i64,
    pub mode: CallMode,
    pub mi_code: Option<i32>,
    pub created_at: String,
    pub updated_at: String,
    pub last_error: Option<String>,
    pub reversal_of: Option<i64>,
    pub reversed_by: Option<i64>,
    /// The envelope as last sent, or as built before it was (`mi-sdk show`): in the
    /// journal it is sealed, so this is where an operator reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Value>,
    /// The output the HIS is given, once finished (`mi-sdk show`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Every attempt, oldest first (`mi-sdk show`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_rows: Option<Vec<AttemptRecord>>,
}

/// One attempt as an operator reads it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub attempt_no: i64,
    pub msgid: String,
    pub started_at: String,
    /// How it ended, or `in flight`.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub infcode: Option<i64>,
    pub err_msg: String,
    pub latency_ms: Option<i64>,
}

impl RequestRecord {
    /// The record of a row, without its result and attempts.
    pub fn of(r: &RequestRow) -> RequestRecord {
        RequestRecord {
            request_id: r.id,
            msgid: r.msgid.clone(),
            infno: r.infno.clone(),
            state: r.state,
            priority: r.priority,
            attempts: r.attempts,
            mode: r.mode,
            mi_code: r.mi_code,
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            last_error: r.last_error.clone(),
            reversal_of: r.reversal_of,
            reversed_by: r.reversed_by,
            envelope: None,
            result: None,
            attempt_rows: None,
        }
    }

    /// The whole record: its envelope and result (as JSON) and its attempts.
    pub fn with_details(mut self, row: &RequestRow, attempts: &[Attempt]) -> RequestRecord {
        let json = |t: Option<&str>| Some(t.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null));
        self.envelope = json(Some(&row.envelope));
        self.result = json(row.result.as_deref());
        self.attempt_rows = Some(attempts.iter().map(AttemptRecord::of).collect());
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a record always serialises")
    }
}

impl AttemptRecord {
    fn of(a: &Attempt) -> AttemptRecord {
        AttemptRecord {
            attempt_no: a.no,
            msgid: a.msgid.clone(),
            started_at: a.started_at.clone(),
            outcome: a.outcome.map_or("in flight", |o| o.as_str()).to_string(),
            http_status: a.http_status,
            infcode: a.infcode,
            err_msg: a.err_msg.clone().unwrap_or_default(),
            latency_ms: a.latency_ms,
        }
    }
}
