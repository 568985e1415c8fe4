//! Requests and attempts as rows: a new request (its msgid allocated in the same
//! transaction), the start of an attempt, reversal links, reading a row back, the
//! msgid counter, and the day's sign-ins.

use super::sealing::{Place, Sealing};
use super::{exec, row, Final, Journal, RequestRow, State, Tx};
use crate::error::{Error, Result};
use crate::protocol::msgid::{self, SeqState};
use rusqlite::{params, Connection, OptionalExtension};

/// How a request came in: a sync call waits for it, an async one is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMode {
    Sync,
    Async,
}

impl CallMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CallMode::Sync => "sync",
            CallMode::Async => "async",
        }
    }

    pub fn parse(s: &str) -> Option<CallMode> {
        [CallMode::Sync, CallMode::Async].into_iter().find(|m| m.as_str() == s)
    }
}

/// The msgid node of a journal's msgids (docs/configuration.md, `node_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub id: u32,
    pub source: NodeSource,
}

/// Where the node in use came from: the config names it, or the journal chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeSource {
    Config,
    Journal,
}

impl NodeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeSource::Config => "config",
            NodeSource::Journal => "journal",
        }
    }
}

/// What a new request row needs besides its envelope.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub infno: String,
    pub mode: CallMode,
    pub priority: i32,
    /// A msgid the caller chose; otherwise the journal allocates one.
    pub caller_msgid: Option<String>,
    /// The request this one reverses (a 2601).
    pub reversal_of: Option<i64>,
    /// A unique name of where it came from outside the ABI (a drop-box file).
    pub source: Option<String>,
}

/// How a new row starts.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// Waiting for a worker.
    Queued,
    /// Claimed by `owner` from the start (a sync call), no attempt begun yet.
    Claimed(&'a str),
    /// Claimed by `owner` with its first attempt begun in the same commit (a sync
    /// call about to send): one commit instead of two.
    Sending(&'a str),
}

/// A row just inserted.
#[derive(Debug, Clone)]
pub struct Inserted {
    pub id: i64,
    pub msgid: String,
    pub envelope: String,
    pub created_at: String,
}

/// The columns of a request row, in [`read_row`]'s order.
const ROW: &str = "SELECT id, msgid, infno, mode, priority, state, envelope, attempts, mi_code, result, last_error,
                          reversal_of, reversed_by, created_at, updated_at
                     FROM mi_request WHERE id = ?1";

/// Reads a request row, its sealed values opened.
pub(super) fn read_row(c: &Connection, s: &Sealing, id: i64) -> Result<Option<RequestRow>> {
    read_kept(c, id)?.map(|r| open_row(s, r)).transpose()
}

/// A request row as the file holds it: its sealed values still sealed.
pub(super) fn read_kept(c: &Connection, id: i64) -> Result<Option<RequestRow>> {
    Ok(row(c, ROW, [id], |r| {
        Ok(RequestRow {
            id: r.get(0)?,
            msgid: r.get(1)?,
            infno: r.get(2)?,
            mode: r.get(3)?,
            priority: r.get(4)?,
            state: r.get(5)?,
            envelope: r.get(6)?,
            attempts: r.get(7)?,
            mi_code: r.get(8)?,
            result: r.get(9)?,
            last_error: r.get(10)?,
            reversal_of: r.get(11)?,
            reversed_by: r.get(12)?,
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
        })
    })
    .optional()?)
}

/// A kept row with its sealed values opened.
pub(super) fn open_row(s: &Sealing, mut r: RequestRow) -> Result<RequestRow> {
    let id = r.id;
    r.envelope = s.open(Place::Envelope(id), std::mem::take(&mut r.envelope))?;
    r.result = s.open_opt(Place::Result(id), r.result.take())?;
    r.last_error = s.open_opt(Place::LastError(id), r.last_error.take())?;
    Ok(r)
}

/// A row for an operator's list: opened, or, when its sealed values do not open,
/// its clear columns with why in place of its error text (one damaged row does not
/// hide the others).
pub(super) fn listed_row(c: &Connection, s: &Sealing, id: i64) -> Result<Option<RequestRow>> {
    let Some(kept) = read_kept(c, id)? else { return Ok(None) };
    let clear = RequestRow { envelope: String::new(), result: None, ..kept.clone() };
    Ok(Some(open_row(s, kept).unwrap_or_else(|e| RequestRow { last_error: Some(e.message), ..clear })))
}

/// A request row that must exist (it was just claimed or written).
pub(super) fn existing_row(tx: &Tx<'_>, id: i64) -> Result<RequestRow> {
    read_row(tx, &tx.journal.sealing, id)?.ok_or_else(|| Error::journal(format!("request {id} vanished")))
}

impl Journal {
    pub fn request(&self, id: i64) -> Result<Option<RequestRow>> {
        read_row(&self.lock(), &self.sealing, id)
    }

    /// Whether attempt `no` of request `id` is the first send of `msgid` that can
    /// have reached the platform (earlier ones, if any, provably never left) and the
    /// msgid is of this journal's making (its institution code and node): then a
    /// "duplicate msgid" answer can only mean another workstation used it. A msgid
    /// the caller chose in this journal's own shape cannot be told apart.
    pub fn first_send_of_own_msgid(&self, id: i64, msgid: &str, no: i64) -> Result<bool> {
        let ours = msgid.len() == msgid::MSGID_LEN
            && msgid.starts_with(self.opts.fixmedins_code.as_str())
            && msgid.get(26..28) == Some(format!("{:02}", self.node.id).as_str());
        if !ours {
            return Ok(false);
        }
        let sent_before: bool = row(
            &self.lock(),
            "SELECT EXISTS (SELECT 1 FROM mi_attempt WHERE request_id = ?1 AND msgid = ?2 AND attempt_no < ?3
                              AND outcome IS NOT 'never_sent' AND outcome IS NOT 'gateway_refused')",
            params![id, msgid, no],
            |r| r.get(0),
        )?;
        Ok(!sent_before)
    }

    /// Today's sign_no of an operator, if the journal knows one.
    pub fn signin_get(&self, code: &str, opter: &str, date: &str) -> Result<Option<String>> {
        let c = self.lock();
        Ok(row(
            &c,
            "SELECT sign_no FROM mi_signin WHERE fixmedins_code = ?1 AND opter = ?2 AND sign_date = ?3",
            params![code, opter, date],
            |r| r.get(0),
        )
        .optional()?)
    }
}

impl Tx<'_> {
    /// A new request under the caller's msgid or a freshly allocated one, so the
    /// counter and the row can never disagree, even across processes sharing the
    /// file. `build` makes the envelope for the msgid.
    pub fn insert(
        &self,
        req: &NewRequest,
        start: Start<'_>,
        build: impl FnOnce(&str) -> Result<String>,
    ) -> Result<Inserted> {
        let msgid = match &req.caller_msgid {
            Some(m) => m.clone(),
            None => self.next_msgid()?,
        };
        let envelope = build(&msgid)?;
        let now = self.now();
        let id = insert_row(self, req, start, &msgid, &envelope, &now)?;
        if let Start::Sending(_) = start {
            exec(
                self,
                "INSERT INTO mi_attempt(request_id, attempt_no, msgid, started_at) VALUES (?1, 1, ?2, ?3)",
                params![id, msgid, now],
            )?;
        }
        Ok(Inserted { id, msgid, envelope, created_at: now })
    }

    /// New `queued` requests for built envelopes (their msgid is set at send time),
    /// msgids allocated together with one read and one write of the counter. Each
    /// item with a caller-given msgid succeeds or fails on its own (a duplicate
    /// fails only its item).
    pub fn insert_queued(&self, items: &[(NewRequest, String)]) -> Result<Vec<Result<(i64, String)>>> {
        let need = items.iter().filter(|(r, _)| r.caller_msgid.is_none()).count();
        let mut fresh = self.next_msgids(need)?.into_iter();
        let now = self.now();
        let mut out = Vec::with_capacity(items.len());
        for (req, envelope) in items {
            match &req.caller_msgid {
                None => {
                    let msgid = fresh.next().expect("one msgid allocated per item without one");
                    let id = insert_row(self, req, Start::Queued, &msgid, envelope, &now)?;
                    out.push(Ok((id, msgid)));
                }
                Some(m) => {
                    // A caller's msgid may repeat one already used: keep that failure to its item.
                    let id = self.isolated(|tx| insert_row(tx, req, Start::Queued, m, envelope, &now))?;
                    out.push(id.map(|id| (id, m.clone())));
                }
            }
        }
        Ok(out)
    }

    /// Marks a request `sending` under `msgid` with `envelope` as it goes out, and
    /// adds its attempt row; returns the attempt's number. A msgid other than the
    /// row's (a resend that needs a fresh one) becomes the row's. Only `owner`,
    /// who claimed it, may: otherwise nothing changes, nothing may be sent, and this
    /// fails with [`Error::lost_claim`].
    pub fn begin_attempt(&self, id: i64, owner: &str, msgid: &str, envelope: &str) -> Result<i64> {
        let now = self.now();
        let sealed = self.journal.sealing.seal(Place::Envelope(id), envelope)?;
        // With the attempt's number: the transaction, and whether the books have a
        // clear copy of its keys yet (a settlement queued before its journal was
        // sealed has none, and its envelope is about to be sealed).
        let read =
            |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, String, bool)> { Ok((r.get(0)?, r.get(1)?, r.get(2)?)) };
        // msgid is set only when it changes: setting it rewrites its index entry.
        let (n, infno, uncopied) = row(
            self,
            "UPDATE mi_request SET state = 'sending', attempts = attempts + 1, envelope = ?3, updated_at = ?4,
                    next_at = NULL
              WHERE id = ?1 AND msgid = ?2 AND owner = ?5 RETURNING attempts, infno, books_envelope IS NULL",
            params![id, msgid, sealed, now, owner],
            read,
        )
        .optional()?
        .map_or_else(
            || {
                row(
                    self,
                    "UPDATE mi_request SET state = 'sending', attempts = attempts + 1, msgid = ?2, envelope = ?3,
                            updated_at = ?4, next_at = NULL
                      WHERE id = ?1 AND owner = ?5 RETURNING attempts, infno, books_envelope IS NULL",
                    params![id, msgid, sealed, now, owner],
                    read,
                )
                .optional()
            },
            |n| Ok(Some(n)),
        )?
        .ok_or_else(|| Error::lost_claim(id))?;
        exec(
            self,
            "INSERT INTO mi_attempt(request_id, attempt_no, msgid, started_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, n, msgid, now],
        )?;
        if uncopied {
            self.keep_books(id, &infno, Some(envelope), None)?;
        }
        Ok(n)
    }

    /// The node of this journal's msgids: the config's, or else the journal's own,
    /// chosen at random the first time (in this transaction, so two processes
    /// opening a new journal together agree on it) and kept.
    pub(super) fn node(&self, configured: Option<u32>) -> Result<Node> {
        // The journal's own name, chosen once: reconciliation tells a copy of this
        // journal (same name) from another workstation's (whose msgids may repeat
        // these, when two chose the same node).
        exec(
            self,
            "INSERT INTO mi_meta(key, value) VALUES ('journal_id', ?1) ON CONFLICT(key) DO NOTHING",
            [crate::crypto::nonce()],
        )?;
        if let Some(id) = configured {
            return Ok(Node { id, source: NodeSource::Config });
        }
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).map_err(|e| Error::journal(format!("cannot choose a msgid node: {e}")))?;
        let chosen = u32::from_le_bytes(b) % (msgid::MAX_NODE + 1);
        exec(
            self,
            "INSERT INTO mi_meta(key, value) VALUES ('node_id', ?1) ON CONFLICT(key) DO NOTHING",
            [chosen.to_string()],
        )?;
        let kept: String = row(self, "SELECT value FROM mi_meta WHERE key = 'node_id'", [], |r| r.get(0))?;
        match kept.parse::<u32>() {
            Ok(id) if id <= msgid::MAX_NODE => Ok(Node { id, source: NodeSource::Journal }),
            _ => Err(Error::journal(format!("its msgid node (mi_meta node_id) is damaged: \"{kept}\""))),
        }
    }

    /// The next msgid of this journal's institution code and node. Inside the
    /// transaction, so two processes sharing the file never hand out the same one.
    pub fn next_msgid(&self) -> Result<String> {
        Ok(self.next_msgids(1)?.remove(0))
    }

    /// `n` consecutive msgids, with one read and one write of the counter.
    fn next_msgids(&self, n: usize) -> Result<Vec<String>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let (code, node) = (&self.opts().fixmedins_code, self.journal.node.id);
        let prefix = format!("{code}{node:02}");
        let prev: Option<(String, u32)> =
            row(self, "SELECT second, counter FROM mi_msgid_seq WHERE prefix = ?1", [&prefix], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let mut state =
            prev.and_then(|(s, counter)| msgid::parse_second(&s).map(|second| SeqState { second, counter }));
        let now = self.opts().clock.local();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let next = msgid::next(state, now);
            out.push(msgid::format(code, node, next));
            state = Some(next);
        }
        if let Some(last) = state {
            exec(
                self,
                "INSERT INTO mi_msgid_seq(prefix, second, counter) VALUES (?1, ?2, ?3)
                 ON CONFLICT(prefix) DO UPDATE SET second = excluded.second, counter = excluded.counter",
                params![prefix, msgid::format_second(last.second), last.counter],
            )?;
        }
        Ok(out)
    }

    /// Links a reversal to its original, both ways.
    pub fn link_reversal(&self, original: i64, reversal: i64) -> Result<()> {
        exec(
            self,
            "UPDATE mi_request SET reversed_by = ?2, updated_at = ?3 WHERE id = ?1",
            params![original, reversal, self.now()],
        )?;
        exec(self, "UPDATE mi_request SET reversal_of = ?1 WHERE id = ?2", params![original, reversal])?;
        Ok(())
    }

    /// The platform confirmed a reversal: the original is `reversed`, its result kept.
    pub fn mark_reversed(&self, original: i64) -> Result<()> {
        exec(
            self,
            "UPDATE mi_request SET state = ?2, updated_at = ?3
              WHERE id = ?1 AND owner IS NULL AND state IN ('uncertain', 'succeeded')",
            params![original, State::Reversed, self.now()],
        )?;
        Ok(())
    }

    /// Evidence from the platform's books ends an uncertain request: `fin` says
    /// whether it was processed. False when the request is no longer uncertain
    /// (someone reversed or resolved it meanwhile): nothing is changed then.
    pub fn resolve_uncertain(&self, id: i64, fin: &Final) -> Result<bool> {
        self.end(id, None, fin, &self.now())
    }

    /// Writes `fin` as request `id`'s final state at `now`, if `owner` holds it
    /// (`None`: an uncertain request nobody holds), its result and error text sealed
    /// and a settlement's answer copied in clear for the books; whether it did.
    pub(super) fn end(&self, id: i64, owner: Option<&str>, fin: &Final, now: &str) -> Result<bool> {
        let s = &self.journal.sealing;
        let result = s.seal(Place::Result(id), &fin.result)?;
        let last_error = s.seal_opt(Place::LastError(id), fin.last_error.as_deref())?;
        let infno: Option<String> = row(
            self,
            "UPDATE mi_request SET state = ?2, mi_code = ?3, result = ?4, last_error = ?5, updated_at = ?6,
                    owner = NULL, next_at = NULL
              WHERE id = ?1 AND owner IS ?7 AND (?7 IS NOT NULL OR state = 'uncertain') RETURNING infno",
            params![id, fin.state, fin.code.as_i32(), result, last_error, now, owner],
            |r| r.get(0),
        )
        .optional()?;
        match infno {
            Some(infno) => self.keep_books(id, &infno, None, Some(&fin.result)).map(|_| true),
            None => Ok(false),
        }
    }

    /// Keeps an operator's sign_no of a day.
    pub fn signin_put(&self, code: &str, opter: &str, date: &str, sign_no: &str, request_id: i64) -> Result<()> {
        exec(
            self,
            "INSERT INTO mi_signin(fixmedins_code, opter, sign_date, sign_no, sign_time, request_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(fixmedins_code, opter, sign_date) DO UPDATE
               SET sign_no = excluded.sign_no, sign_time = excluded.sign_time, request_id = excluded.request_id",
            params![code, opter, date, sign_no, self.now(), request_id],
        )?;
        Ok(())
    }

    /// Forgets an operator's sign-in of a day (after 9002 or a rejected sign_no).
    pub fn signin_forget(&self, code: &str, opter: &str, date: &str) -> Result<()> {
        exec(
            self,
            "DELETE FROM mi_signin WHERE fixmedins_code = ?1 AND opter = ?2 AND sign_date = ?3",
            params![code, opter, date],
        )?;
        Ok(())
    }
}

/// Inserts a request row under the id it will have, so that its envelope is sealed
/// for that row before it is written (one write, not an insert and an update).
fn insert_row(tx: &Tx<'_>, req: &NewRequest, start: Start<'_>, msgid: &str, envelope: &str, now: &str) -> Result<i64> {
    let (state, owner, attempts) = match start {
        Start::Queued => (State::Queued, None, 0),
        Start::Claimed(owner) => (State::Sending, Some(owner), 0),
        Start::Sending(owner) => (State::Sending, Some(owner), 1),
    };
    // AUTOINCREMENT's next id, as SQLite would choose it (in the write transaction:
    // nobody else can take it meanwhile).
    let id: i64 = row(
        tx,
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'mi_request'), 0),
                    coalesce((SELECT max(id) FROM mi_request), 0)) + 1",
        [],
        |r| r.get(0),
    )?;
    let kept = tx.journal.sealing.seal(Place::Envelope(id), envelope)?;
    let mut st = tx.prepare_cached(
        "INSERT INTO mi_request(id, msgid, infno, mode, priority, state, envelope, owner, reversal_of, source,
                                created_at, updated_at, attempts)
         VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
    )?;
    let inserted = st.execute(params![
        msgid,
        req.infno,
        req.mode,
        req.priority,
        state,
        kept,
        owner,
        req.reversal_of,
        req.source,
        now,
        attempts,
        id
    ]);
    if let Err(rusqlite::Error::SqliteFailure(f, msg)) = &inserted {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            if msg.as_deref().is_some_and(|m| m.contains("source")) {
                return Err(Error::invalid(format!("{} was already submitted", req.source.as_deref().unwrap_or(""))));
            }
            return Err(Error::invalid(format!("msgid {msgid} was already used: a msgid must never repeat")));
        }
    }
    inserted?;
    tx.keep_books(id, &req.infno, Some(envelope), None)?;
    Ok(id)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::tests::{open, opts};
    use super::*;
    use crate::config::Synchronous;
    use crate::error::Code;

    pub(crate) fn new_req(msgid: Option<&str>) -> NewRequest {
        NewRequest {
            infno: "1101".into(),
            mode: CallMode::Sync,
            priority: 0,
            caller_msgid: msgid.map(str::to_owned),
            reversal_of: None,
            source: None,
        }
    }

    /// A queued (async: only those are queued) request with envelope `{}`.
    pub(crate) fn queued(j: &Journal, priority: i32) -> i64 {
        let mut r = new_req(None);
        r.priority = priority;
        r.mode = CallMode::Async;
        j.write(|tx| tx.insert(&r, Start::Queued, |_| Ok("{}".into()))).unwrap().id
    }

    #[test]
    fn msgids_never_repeat_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/j.db");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2 {
            let j = Journal::open(&p, opts(Synchronous::Full)).unwrap();
            assert_eq!(j.schema_version().unwrap(), super::super::MIGRATIONS.len() as i64);
            for _ in 0..150 {
                let ins = j
                    .write(|tx| tx.insert(&new_req(None), Start::Queued, |m| Ok(format!("{{\"msgid\":\"{m}\"}}"))))
                    .unwrap();
                let m = ins.msgid;
                assert_eq!(m.len(), 30);
                assert_eq!(&m[26..28], "03");
                assert!(ins.envelope.contains(&m));
                assert!(seen.insert(m));
            }
            let many: Vec<(NewRequest, String)> = (0..50).map(|_| (new_req(None), "{}".to_string())).collect();
            for r in j.write(|tx| tx.insert_queued(&many)).unwrap() {
                assert!(seen.insert(r.unwrap().1));
            }
        }
    }

    #[test]
    fn duplicate_caller_msgid_is_invalid_argument_and_fails_only_its_item() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db"), opts(Synchronous::Full)).unwrap();
        let m = "H44030000001202611271015309999";
        j.write(|tx| tx.insert(&new_req(Some(m)), Start::Queued, |_| Ok("{}".into()))).unwrap();
        let e = j.write(|tx| tx.insert(&new_req(Some(m)), Start::Queued, |_| Ok("{}".into()))).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        let items = vec![(new_req(None), "{}".to_string()), (new_req(Some(m)), "{}".to_string())];
        let r = j.write(|tx| tx.insert_queued(&items)).unwrap();
        assert!(r[0].is_ok());
        assert_eq!(r[1].as_ref().unwrap_err().code, Code::InvalidArgument);
    }

    #[test]
    fn a_sending_insert_begins_its_first_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path());
        let ins = j.write(|tx| tx.insert(&new_req(None), Start::Sending("me"), |_| Ok("{}".into()))).unwrap();
        let r = j.request(ins.id).unwrap().unwrap();
        assert_eq!((r.state, r.attempts, r.created_at), (State::Sending, 1, ins.created_at));
        let a = j.attempts(ins.id).unwrap();
        assert_eq!((a.len(), a[0].no, a[0].outcome), (1, 1, None));
        // A second attempt under a fresh msgid makes it the row's.
        let fresh = j.write(|tx| tx.next_msgid()).unwrap();
        assert_eq!(j.write(|tx| tx.begin_attempt(ins.id, "me", &fresh, "{\"x\":1}")).unwrap(), 2);
        let r = j.request(ins.id).unwrap().unwrap();
        assert_eq!((r.msgid.as_str(), r.envelope.as_str()), (fresh.as_str(), "{\"x\":1}"));
        assert_eq!(j.attempts(ins.id).unwrap()[0].msgid, ins.msgid, "the first attempt keeps its msgid");
    }
}

#[cfg(test)]
mod retention_tests {
    use super::super::tests::{open, opts};
    use super::super::MIGRATIONS;
    use super::tests::new_req;
    use super::*;
    use crate::config::Synchronous;

    /// A finished 9001 whose sign-in is kept for `date`; returns the request id.
    fn signed_in(j: &Journal, opter: &str, date: &str, sign_no: &str) -> i64 {
        let mut req = new_req(None);
        req.infno = "9001".into();
        let id = j.write(|tx| tx.insert(&req, Start::Queued, |_| Ok("{}".into()))).unwrap().id;
        j.write(|tx| tx.signin_put("H44030000001", opter, date, sign_no, id)).unwrap();
        j.lock().execute("UPDATE mi_request SET state = 'succeeded' WHERE id = ?1", [id]).unwrap();
        id
    }

    /// Retention deletes a sign-in's old 9001 request (it used to fail: the
    /// sign-in referred to it), keeps the sign-in of a day still current even
    /// when its request is purged, and forgets sign-ins of days before the cutoff.
    #[test]
    fn retention_purges_sign_in_requests_and_keeps_the_current_sign_in() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path());
        let old = signed_in(&j, "001", "2020-01-01", "OLD");
        let current = signed_in(&j, "002", "2026-11-27", "TODAY");
        j.lock().execute("UPDATE mi_request SET created_at = '2020-01-01 08:00:00.000'", []).unwrap();
        assert_eq!(j.write(|tx| tx.purge("2021-01-01 00:00:00.000", 0)).unwrap(), 2);
        assert!(j.request(old).unwrap().is_none() && j.request(current).unwrap().is_none());
        assert_eq!(j.signin_get("H44030000001", "001", "2020-01-01").unwrap(), None);
        assert_eq!(j.signin_get("H44030000001", "002", "2026-11-27").unwrap().as_deref(), Some("TODAY"));
    }

    /// A journal written by the schema before the sign-in fix is upgraded in place:
    /// its rows are kept, and retention works on it afterwards.
    #[test]
    fn an_old_journal_is_upgraded_in_place_and_keeps_its_sign_ins() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        {
            let c = Connection::open(&p).unwrap();
            for (i, sql) in MIGRATIONS.iter().take(3).enumerate() {
                c.execute_batch(sql).unwrap();
                c.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).unwrap();
            }
            c.execute_batch(
                "INSERT INTO mi_request(msgid, infno, mode, state, envelope, created_at, updated_at)
                 VALUES ('M1', '9001', 'sync', 'succeeded', '{}', '2020-01-01 08:00:00.000', '2020-01-01 08:00:00.000');
                 INSERT INTO mi_signin(fixmedins_code, opter, sign_date, sign_no, sign_time, request_id)
                 VALUES ('H44030000001', '001', '2026-11-27', 'KEPT', '2020-01-01 08:00:00.000', 1);",
            )
            .unwrap();
        }
        let j = Journal::open(&p, opts(Synchronous::Full)).unwrap();
        assert_eq!(j.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(j.signin_get("H44030000001", "001", "2026-11-27").unwrap().as_deref(), Some("KEPT"));
        assert_eq!(j.request(1).unwrap().unwrap().msgid, "M1");
        assert_eq!(j.write(|tx| tx.purge("2021-01-01 00:00:00.000", 0)).unwrap(), 1);
        assert_eq!(j.signin_get("H44030000001", "001", "2026-11-27").unwrap().as_deref(), Some("KEPT"));
        let fk: i64 = j.lock().query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 0);
    }
}

#[cfg(test)]
mod node_tests {
    use super::super::tests::opts;
    use super::tests::new_req;
    use super::*;
    use crate::config::Synchronous;
    use crate::journal::{Attempt, Next};
    use crate::protocol::retry::AttemptOutcome;

    fn unnamed() -> super::super::Options {
        super::super::Options { node_id: None, ..opts(Synchronous::Normal) }
    }

    #[test]
    fn a_journal_keeps_the_node_it_chose_and_the_config_wins() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        let chosen = Journal::open(&p, unnamed()).unwrap().node();
        assert_eq!(chosen.source, NodeSource::Journal);
        assert!(chosen.id <= msgid::MAX_NODE);
        assert_eq!(Journal::open(&p, unnamed()).unwrap().node(), chosen, "kept across a reopen");
        assert_eq!(
            Journal::open(&p, opts(Synchronous::Normal)).unwrap().node(),
            Node { id: 3, source: NodeSource::Config }
        );
        let j = Journal::open(&p, unnamed()).unwrap();
        assert_eq!(j.node(), chosen);
        let m = j.write(|tx| tx.next_msgid()).unwrap();
        assert_eq!(m[26..28], format!("{:02}", chosen.id));
    }

    #[test]
    fn only_the_first_send_of_an_own_msgid_counts_as_taken_by_another() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db"), opts(Synchronous::Normal)).unwrap();
        let ins = j.write(|tx| tx.insert(&new_req(None), Start::Sending("me"), |_| Ok("{}".into()))).unwrap();
        assert!(j.first_send_of_own_msgid(ins.id, &ins.msgid, 1).unwrap());
        // The first send provably never left: the resend under its msgid is still
        // the first that can reach the platform.
        let ended = |outcome| {
            let a = Attempt {
                no: j.request(ins.id).unwrap().unwrap().attempts,
                outcome: Some(outcome),
                ..Default::default()
            };
            let wait = Next::Retry { at_ms: 0, last_error: "x".into(), keep_owner: Some("me".into()) };
            j.write(|tx| tx.advance(ins.id, "me", Some(&a), &wait)).unwrap();
        };
        ended(AttemptOutcome::NeverSent);
        assert_eq!(j.write(|tx| tx.begin_attempt(ins.id, "me", &ins.msgid, "{}")).unwrap(), 2);
        assert!(j.first_send_of_own_msgid(ins.id, &ins.msgid, 2).unwrap());
        // Once a send of it may have reached the platform, a resend is not a first send.
        ended(AttemptOutcome::MaybeProcessed);
        assert_eq!(j.write(|tx| tx.begin_attempt(ins.id, "me", &ins.msgid, "{}")).unwrap(), 3);
        assert!(!j.first_send_of_own_msgid(ins.id, &ins.msgid, 3).unwrap());
        // A fresh msgid for the fourth send is a first send again.
        let fresh = j.write(|tx| tx.next_msgid()).unwrap();
        assert!(j.first_send_of_own_msgid(ins.id, &fresh, 4).unwrap());
        // Another node's (or institution's) msgid is a caller's: never.
        assert!(!j.first_send_of_own_msgid(ins.id, "H44030000001202611271015309999", 1).unwrap());
        assert!(!j.first_send_of_own_msgid(ins.id, "H44030000002202611271015300300", 1).unwrap());
    }
}
