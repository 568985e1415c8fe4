//! What a journal kept of settlements, for the day's books (reconciliation): the
//! settlement-class requests that succeeded, were reversed or are uncertain, each
//! with every msgid it was sent under, its envelope and its answer. Read from the
//! SDK's own journal, or from another workstation's journal (or a copy of one)
//! opened read-only.

use super::{Journal, State};
use crate::error::{Code, Error, Result};
use rusqlite::{params_from_iter, Connection, OpenFlags};
use serde_json::Value;
use std::path::Path;

/// One request as the books read it.
#[derive(Debug, Clone)]
pub struct Kept {
    pub request_id: i64,
    pub infno: String,
    pub state: State,
    /// The msgid it was last sent under first; then every other it was sent under.
    pub msgids: Vec<String>,
    /// The envelope as last sent (or built).
    pub envelope: Value,
    /// What its caller was given (the platform's answer, for a success).
    pub result: Value,
    /// Journal time, `yyyy-MM-dd HH:MM:SS.mmm`.
    pub created_at: String,
}

/// Opens another workstation's journal without writing to it: the file is read as
/// it is and never migrated, so a copy made by an older or newer mi_sdk is read by
/// the columns every version has.
pub fn open_read_only(path: &Path) -> Result<Connection> {
    let named = |e: rusqlite::Error| Error::journal(format!("journal {}: {e}", path.display()));
    if !path.is_file() {
        return Err(Error::new(Code::NotFound, format!("no journal at {}", path.display())));
    }
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(named)?;
    let tables: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('mi_request', 'mi_attempt')",
            [],
            |r| r.get(0),
        )
        .map_err(named)?;
    if tables != 2 {
        return Err(Error::invalid(format!("{} is not an mi_sdk journal", path.display())));
    }
    Ok(c)
}

/// The requests of `infnos` created on or after `since` (`yyyy-MM-dd`) that
/// succeeded, were reversed or are uncertain, oldest first.
pub fn kept(c: &Connection, infnos: &[&str], since: &str) -> Result<Vec<Kept>> {
    let marks = vec!["?"; infnos.len()].join(", ");
    let sql = format!(
        "SELECT id, infno, state, msgid, envelope, result, created_at FROM mi_request
          WHERE created_at >= ? AND state IN ('succeeded', 'reversed', 'uncertain') AND infno IN ({marks})
          ORDER BY id"
    );
    let args = std::iter::once(since).chain(infnos.iter().copied());
    let mut st = c.prepare(&sql)?;
    let rows = st
        .query_map(params_from_iter(args), |r| {
            let json = |i| r.get::<_, Option<String>>(i).map(|t| t.and_then(|t| serde_json::from_str(&t).ok()));
            Ok(Kept {
                request_id: r.get(0)?,
                infno: r.get(1)?,
                state: r.get(2)?,
                msgids: vec![r.get(3)?],
                envelope: json(4)?.unwrap_or(Value::Null),
                result: json(5)?.unwrap_or(Value::Null),
                created_at: r.get(6)?,
            })
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut sent = c.prepare("SELECT DISTINCT msgid FROM mi_attempt WHERE request_id = ?1 ORDER BY id")?;
    rows.into_iter()
        .map(|mut k| {
            for m in sent.query_map([k.request_id], |r| r.get::<_, String>(0))? {
                let m = m?;
                if !k.msgids.contains(&m) {
                    k.msgids.push(m);
                }
            }
            Ok(k)
        })
        .collect()
}

impl Journal {
    /// [`kept`] of this journal.
    pub fn kept(&self, infnos: &[&str], since: &str) -> Result<Vec<Kept>> {
        kept(&self.lock(), infnos, since)
    }
}
