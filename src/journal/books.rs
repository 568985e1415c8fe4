//! What a journal kept of settlements, for the day's books (reconciliation): the
//! settlement-class requests that succeeded, were reversed or are uncertain, each
//! with every msgid it was sent under, its envelope and its answer. Read from the
//! SDK's own journal, or from another workstation's journal (or a copy of one)
//! opened read-only.

use super::{exec, Journal, State, Tx};
use crate::error::{Code, Error, Result};
use rusqlite::{params, params_from_iter, Connection, OpenFlags};
use serde_json::{Map, Value};
use std::path::Path;

/// The settlement transactions, their clearing type and their cancellation.
pub const SETTLING: [(&str, &str, &str); 3] = [("2207", "11", "2208"), ("2304", "21", "2305"), ("2102", "41", "2103")];

/// Every transaction the books read.
pub fn infnos() -> Vec<&'static str> {
    SETTLING.iter().flat_map(|(s, _, c)| [*s, *c]).collect()
}

/// What the books read of a settlement's envelope and answer: kept in clear beside
/// the sealed values (`books_envelope`, `books_result`), in the same places, so the
/// day's totals are summed without the key (another workstation's journal too).
/// Keys and amounts only: no name, ID number or diagnosis.
const ENVELOPE_FACTS: [&str; 5] =
    ["/insuplc_admdvs", "/input/data/setl_id", "/input/data/mdtrt_id", "/input/data/psn_no", "/input/data/insutype"];
const RESULT_FACTS: [&str; 11] = [
    "/output/setlinfo/setl_id",
    "/output/setlinfo/mdtrt_id",
    "/output/setlinfo/psn_no",
    "/output/setlinfo/insutype",
    "/output/setlinfo/clr_type",
    "/output/setlinfo/clr_optins",
    "/output/setlinfo/setl_time",
    "/output/setlinfo/medfee_sumamt",
    "/output/setlinfo/fund_pay_sumamt",
    "/output/setlinfo/acct_pay",
    "/output/setlinfo/psn_cash_pay",
];

/// The values of `json` at `pointers`, each in its place in an object of the same
/// shape; `None` when `json` is not JSON.
fn facts(json: &str, pointers: &[&str]) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    let mut out = Value::Object(Map::new());
    for p in pointers {
        if let Some(found) = v.pointer(p) {
            let mut at = &mut out;
            let mut names = p.split('/').skip(1).peekable();
            while let Some(name) = names.next() {
                let Value::Object(m) = at else { break };
                at = if names.peek().is_some() {
                    m.entry(name).or_insert_with(|| Value::Object(Map::new()))
                } else {
                    m.insert(name.to_string(), found.clone());
                    break;
                };
            }
        }
    }
    Some(out.to_string())
}

impl Tx<'_> {
    /// Keeps in clear what the books read of a settlement-class request (nothing
    /// for any other): of its envelope and of its final result, each when given.
    pub(super) fn keep_books(&self, id: i64, infno: &str, envelope: Option<&str>, result: Option<&str>) -> Result<()> {
        if !SETTLING.iter().any(|(s, _, c)| *s == infno || *c == infno) {
            return Ok(());
        }
        if let Some(e) = envelope {
            exec(
                self,
                "UPDATE mi_request SET books_envelope = ?2 WHERE id = ?1",
                params![id, facts(e, &ENVELOPE_FACTS)],
            )?;
        }
        if let Some(r) = result {
            exec(self, "UPDATE mi_request SET books_result = ?2 WHERE id = ?1", params![id, facts(r, &RESULT_FACTS)])?;
        }
        Ok(())
    }
}

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
    pub updated_at: String,
    /// When its first and its last attempt began (None: never sent).
    pub first_sent_at: Option<String>,
    pub last_sent_at: Option<String>,
}

/// The name a journal chose for itself (`mi_meta` `journal_id`); None for a journal
/// of a version before it had one.
pub fn identity(c: &Connection) -> Option<String> {
    c.query_row("SELECT value FROM mi_meta WHERE key = 'journal_id'", [], |r| r.get(0)).ok()
}

/// Opens another workstation's journal without touching it: the file and its WAL
/// (what was written since the last checkpoint) are copied into `dir` and the copy
/// is read. SQLite opening even a read-only WAL database creates its `-wal` and
/// `-shm` beside it, and the shared memory of a WAL cannot be shared across
/// machines (a journal on another cashier's PC). The copy is never migrated, so a
/// journal of an older or newer mi_sdk is read by the columns every version has.
pub fn open_copy(path: &Path, dir: &Path) -> Result<Connection> {
    if !path.is_file() {
        return Err(Error::new(Code::NotFound, format!("no journal at {}", path.display())));
    }
    let copy = dir.join(format!("journal-{}.db", crate::crypto::nonce()));
    let cannot = |e: std::io::Error| Error::journal(format!("cannot copy the journal {}: {e}", path.display()));
    std::fs::copy(path, &copy).map_err(cannot)?;
    if super::wal_of(path).is_file() {
        std::fs::copy(super::wal_of(path), super::wal_of(&copy)).map_err(cannot)?;
    }
    let named = |e: rusqlite::Error| Error::journal(format!("journal {}: {e}", path.display()));
    let c = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
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

/// The requests of `infnos` created or sent on or after `since` (`yyyy-MM-dd`)
/// that succeeded, were reversed or are uncertain, oldest first. (An async request
/// may wait in the queue, or be taken over, and leave days after it was created.)
pub fn kept(c: &Connection, infnos: &[&str], since: &str) -> Result<Vec<Kept>> {
    // A journal of a version before sealing has no clear copies: its values are clear.
    let copies: i64 = c.query_row(
        "SELECT count(*) FROM pragma_table_info('mi_request') WHERE name IN ('books_envelope', 'books_result')",
        [],
        |r| r.get(0),
    )?;
    let (envelope, result) = if copies == 2 {
        (
            "CASE WHEN envelope LIKE 'mi1.%' THEN books_envelope ELSE envelope END",
            "CASE WHEN result LIKE 'mi1.%' THEN books_result ELSE result END",
        )
    } else {
        ("envelope", "result")
    };
    let marks = vec!["?"; infnos.len()].join(", ");
    let sql = format!(
        "SELECT id, infno, state, msgid, {envelope}, {result}, created_at, updated_at,
                (SELECT min(started_at) FROM mi_attempt a WHERE a.request_id = r.id),
                (SELECT max(started_at) FROM mi_attempt a WHERE a.request_id = r.id)
           FROM mi_request r
          WHERE (created_at >= ?1 OR updated_at >= ?1) AND state IN ('succeeded', 'reversed', 'uncertain')
            AND infno IN ({marks})
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
                updated_at: r.get(7)?,
                first_sent_at: r.get(8)?,
                last_sent_at: r.get(9)?,
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
    /// [`identity`] of this journal.
    pub fn identity(&self) -> Option<String> {
        identity(&self.lock())
    }

    /// [`kept`] of this journal.
    pub fn kept(&self, infnos: &[&str], since: &str) -> Result<Vec<Kept>> {
        kept(&self.lock(), infnos, since)
    }
}
