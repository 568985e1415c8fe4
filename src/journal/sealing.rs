//! Which values of the journal are sealed, and with what: the envelope, the result
//! and the last error of a request, and the response and error text of each
//! attempt: everything that may carry a patient's name, ID number, phone or
//! diagnosis. Each is sealed with the journal's key (SM4-GCM, [`crate::crypto::seal`])
//! for its place, the column and the request (and attempt) it belongs to, so a value
//! moved to another row does not open. Ids, msgids, states, codes, times and the
//! settlement facts the books sum stay in clear and indexed.
//!
//! A journal sealed once keeps in `mi_meta`:
//! - `key_check`: a known text sealed with its key. Opening it with another key, or
//!   with none, is refused at once, before anything is sent, naming the key file.
//! - `clear_below` (itself sealed, so it cannot be raised by editing the file):
//!   requests below this id may still hold values written in clear (before sealing
//!   was turned on); [`Journal::seal_older`] seals them a batch at a time and lowers
//!   it to 0 when done. A clear value anywhere else is refused as changed outside
//!   mi_sdk: the value `mi1.` began with had a byte flipped, or a clear text was put
//!   in place of a sealed one.
//! - `vacuum_owed`: the file still has to be rewritten once after sealing in place.
//!
//! A journal sealed once stays sealed: `journal.seal: false` applies only to a
//! journal that never had a key. A process that opened a journal in clear, when
//! another (whose config says `journal.seal: true`) seals it meanwhile, seals too
//! from its next write transaction on ([`Sealing::follow`]), and opens the other's
//! sealed values with the key file the journal names.

use super::{exec, key, owners, row, Journal, Tx};
use crate::crypto::seal::{self, SealKey};
use crate::error::{Code, Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::OnceLock;

/// What `key_check` holds, sealed.
const CHECK_TEXT: &[u8] = b"mi_sdk journal key check";
const CHECK_PLACE: &[u8] = b"mi_meta.key_check";
/// An attempt's response that is its request's result, kept once (in the result):
/// what `mi_attempt.response` holds, sealed for its own place, instead of a second
/// sealed copy of the answer.
pub(super) const SAME_AS_RESULT: &str = "=result";
/// `clear_below` when values may be clear anywhere (a journal without a key).
const ANYWHERE: i64 = i64::MAX;
const CLEAR_BELOW_PLACE: &[u8] = b"mi_meta.clear_below";

/// Where a sealed value belongs: its column and its request (and attempt).
#[derive(Debug, Clone, Copy)]
pub(super) enum Place {
    Envelope(i64),
    Result(i64),
    LastError(i64),
    Response(i64, i64),
    ErrMsg(i64, i64),
}

impl Place {
    fn column(self) -> &'static str {
        match self {
            Place::Envelope(_) => "mi_request.envelope",
            Place::Result(_) => "mi_request.result",
            Place::LastError(_) => "mi_request.last_error",
            Place::Response(..) => "mi_attempt.response",
            Place::ErrMsg(..) => "mi_attempt.err_msg",
        }
    }

    fn request(self) -> i64 {
        match self {
            Place::Envelope(id) | Place::Result(id) | Place::LastError(id) => id,
            Place::Response(id, _) | Place::ErrMsg(id, _) => id,
        }
    }

    /// The associated data: the column, the request id and the attempt number.
    fn aad(self) -> String {
        match self {
            Place::Response(id, no) | Place::ErrMsg(id, no) => format!("{}:{id}/{no}", self.column()),
            _ => format!("{}:{}", self.column(), self.request()),
        }
    }
}

/// The journal's sealing: its key (if it has one), whether new values are sealed,
/// and below which request values may be clear.
#[derive(Debug)]
pub(super) struct Sealing {
    /// Set once: at the open, or when another process is seen to have sealed the
    /// journal (then before `on`).
    key: OnceLock<SealKey>,
    on: AtomicBool,
    /// The journal was in clear when this process opened it: each write transaction
    /// looks whether another process has sealed it since.
    watch: bool,
    key_path: PathBuf,
    clear_below: AtomicI64,
    vacuum_owed: AtomicBool,
}

impl Sealing {
    /// Nothing sealed, no key: the state before [`Sealing::start`].
    pub(super) fn none(key_path: PathBuf) -> Sealing {
        Sealing {
            key: OnceLock::new(),
            on: AtomicBool::new(false),
            watch: false,
            key_path,
            clear_below: AtomicI64::new(ANYWHERE),
            vacuum_owed: Default::default(),
        }
    }

    /// Reads (or, sealing a journal for the first time, makes) the journal's key
    /// and checks that it is this journal's, in the transaction that opens it.
    pub(super) fn start(tx: &Connection, on: bool, key_path: &Path) -> Result<Sealing> {
        let check: Option<String> = meta(tx, "key_check")?;
        if check.is_some() && !on {
            log::warn!("journal: journal.seal is false, but this journal is sealed already: it stays sealed");
        }
        let key = match check {
            None if !on => return Ok(Sealing { watch: true, ..Sealing::none(key_path.to_path_buf()) }),
            None => {
                let key = key::load_or_create(key_path)?;
                exec(
                    tx,
                    "INSERT INTO mi_meta(key, value) VALUES ('key_check', ?1) ON CONFLICT(key) DO NOTHING",
                    [key.seal(CHECK_PLACE, CHECK_TEXT)?],
                )?;
                let check = meta(tx, "key_check")?.unwrap_or_default();
                checked(key, &check, key_path)?
            }
            Some(check) => journal_key(key_path, &check)?,
        };
        let clear_below = match get_clear_below(tx, &key)? {
            Some(n) => n,
            // Sealing begins here: what is already in the journal is clear.
            None => {
                let next: i64 = row(tx, "SELECT coalesce(max(id), 0) + 1 FROM mi_request", [], |r| r.get(0))?;
                let n = if next > 1 { next } else { 0 };
                set_clear_below(tx, &key, n)?;
                n
            }
        };
        let vacuum_owed = meta(tx, "vacuum_owed")?.is_some();
        Ok(Sealing {
            key: key.into(),
            on: true.into(),
            watch: false,
            key_path: key_path.to_path_buf(),
            clear_below: AtomicI64::new(clear_below),
            vacuum_owed: vacuum_owed.into(),
        })
    }

    /// In a write transaction of a process that opened the journal in clear: if
    /// another process has sealed it since (their configs' `journal.seal` differ),
    /// its key is read and checked as at an open, and this process seals what it
    /// writes from here on, so neither finds the other's new values unreadable.
    /// Write transactions are serial, so no value is written in clear after the
    /// transaction that began sealing.
    pub(super) fn follow(&self, tx: &Connection) -> Result<()> {
        if !self.watch || self.on.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(check) = meta(tx, "key_check")? else { return Ok(()) };
        let key = journal_key(&self.key_path, &check)?;
        let below = get_clear_below(tx, &key)?.unwrap_or(0);
        // Set already only by `opened`, with a key a value opened with: the same key,
        // since a rotation waits for every program to stop. Were it not, values
        // sealed with it from here on would be lost with the old key file.
        if self.key.get().is_some_and(|k| k.bytes() != key.bytes()) {
            return Err(Error::journal(format!(
                "the key in {} changed while this program was running: restart it",
                self.key_path.display()
            )));
        }
        let _ = self.key.set(key);
        self.clear_below.store(below, Ordering::Release);
        // A sealer that stopped before rewriting the file leaves that to whoever follows.
        if meta(tx, "vacuum_owed")?.is_some() {
            self.vacuum_owed.store(true, Ordering::Release);
        }
        self.on.store(true, Ordering::Release);
        log::warn!(
            "journal: another program sealed this journal after this one opened it (journal.seal differs between \
             their configs): this one seals too from now on, with the key in {}",
            self.key_path.display()
        );
        Ok(())
    }

    /// The key, once sealing is on (before, values are written in clear).
    fn sealing_key(&self) -> Option<&SealKey> {
        self.on.load(Ordering::Acquire).then(|| self.key.get()).flatten()
    }

    /// `text` as it is to be kept at `place`: sealed, unless sealing is off.
    pub(super) fn seal(&self, place: Place, text: &str) -> Result<String> {
        match self.sealing_key() {
            Some(k) => k.seal(place.aad().as_bytes(), text.as_bytes()),
            None => Ok(text.to_string()),
        }
    }

    pub(super) fn seal_opt(&self, place: Place, text: Option<&str>) -> Result<Option<String>> {
        text.map(|t| self.seal(place, t)).transpose()
    }

    /// The text a value kept at `place` holds: opened, or as it is where values may
    /// still be clear; never a value changed or moved outside mi_sdk.
    pub(super) fn open(&self, place: Place, kept: String) -> Result<String> {
        if seal::is_sealed(&kept) {
            let plain = self.opened(place, &kept)?;
            return String::from_utf8(plain)
                .map_err(|_| Error::journal(format!("request {}'s {} is not text", place.request(), place.column())));
        }
        if place.request() < self.clear_below.load(Ordering::Acquire)
            && !(self.key.get().is_some() && damaged_seal(&kept))
        {
            return Ok(kept);
        }
        Err(Error::journal(format!(
            "request {}'s {} should be sealed and is not: it was changed outside mi_sdk",
            place.request(),
            place.column()
        )))
    }

    /// A sealed value opened. A process that opened the journal in clear meets
    /// another's sealed values before its own next write (which would
    /// [`follow`](Sealing::follow)): it reads the key file, and keeps the key once
    /// a value has opened with it, which proves it the journal's.
    fn opened(&self, place: Place, kept: &str) -> Result<Vec<u8>> {
        let aad = place.aad();
        if let Some(k) = self.key.get() {
            return k.open(aad.as_bytes(), kept).map_err(|_| {
                Error::journal(format!(
                    "request {}'s {} does not open with this journal's key: it was changed or moved \
                     outside mi_sdk",
                    place.request(),
                    place.column()
                ))
            });
        }
        let unread = |why: String| {
            Error::journal(format!(
                "request {} holds sealed values and this program has no key for them: {why}. Every program \
                 using one journal must name the same journal.key_file",
                place.request()
            ))
        };
        let k = key::load(&self.key_path).map_err(|e| unread(e.message))?;
        let plain = k.open(aad.as_bytes(), kept).map_err(|_| {
            unread(format!(
                "{}'s {} does not open with the key in {}",
                place.request(),
                place.column(),
                self.key_path.display()
            ))
        })?;
        let _ = self.key.set(k);
        Ok(plain)
    }

    pub(super) fn open_opt(&self, place: Place, kept: Option<String>) -> Result<Option<String>> {
        kept.map(|t| self.open(place, t)).transpose()
    }

    /// Whether requests below some id may still hold clear values to seal.
    fn older_to_seal(&self) -> Option<i64> {
        // `on` first: a process that follows stores `clear_below` before it.
        let on = self.on.load(Ordering::Acquire);
        let n = self.clear_below.load(Ordering::Acquire);
        (on && n > 1).then_some(n)
    }

    /// Whether an attempt's answer that is its request's result is kept once.
    pub(super) fn keeps_answers_once(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }
}

/// The key of a journal sealed before: the key file's, or the key a rotation had
/// sealed the journal with when it stopped before putting its file in place.
fn journal_key(path: &Path, check: &str) -> Result<SealKey> {
    let pending = key::pending(path);
    if pending.is_file() {
        if let Ok(k) = key::load(&pending).and_then(|k| checked(k, check, path)) {
            key::promote(path)?;
            log::warn!("journal: the key rotation that stopped half-way is finished: {} is in place", path.display());
            return Ok(k);
        }
    }
    let k = key::load(path).map_err(|e| {
        Error::new(
            Code::Journal,
            format!(
                "{}. The journal is sealed with the key in that file: restore it (or name where it is kept in \
                 journal.key_file); without it no request can be read or sent",
                e.message
            ),
        )
    })?;
    checked(k, check, path)
}

/// `key`, if it opens the journal's key check.
fn checked(key: SealKey, check: &str, path: &Path) -> Result<SealKey> {
    if key.open(CHECK_PLACE, check).ok().as_deref() == Some(CHECK_TEXT) {
        return Ok(key);
    }
    Err(Error::journal(format!(
        "the key in {} is not this journal's key: its requests cannot be read or sent. Restore the key file \
         that was kept with this journal (journal.key_file names where it is)",
        path.display()
    )))
}

/// Whether a text that is not a sealed value looks like one whose prefix was
/// changed: base64 only, a `.` among its first characters, and long enough.
fn damaged_seal(t: &str) -> bool {
    t.len() >= 40
        && t.find('.').is_some_and(|i| i <= 4)
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// `MI_E_BUSY` while another program holds its owner lock on the journal at `path`.
fn unused(path: &Path) -> Result<()> {
    let users = owners::alive(path);
    if users.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Code::Busy,
        format!(
            "{} other program(s) use this journal now (processes {}): stop the HIS programs and services using it, \
             then rotate the key",
            users.len(),
            users.join(", ")
        ),
    ))
}

/// `clear_below` as the journal keeps it (sealed), if it has one.
fn get_clear_below(c: &Connection, key: &SealKey) -> Result<Option<i64>> {
    meta(c, "clear_below")?
        .map(|kept| {
            key.open(CLEAR_BELOW_PLACE, &kept)
                .ok()
                .and_then(|b| String::from_utf8(b).ok()?.parse::<i64>().ok())
                .ok_or_else(|| Error::journal("its sealing progress (mi_meta clear_below) is damaged"))
        })
        .transpose()
}

/// Keeps `clear_below`, sealed (raising it by hand would let clear text through).
fn set_clear_below(c: &Connection, key: &SealKey, n: i64) -> Result<()> {
    set_meta(c, "clear_below", &key.seal(CLEAR_BELOW_PLACE, n.to_string().as_bytes())?)
}

fn meta(c: &Connection, key: &str) -> Result<Option<String>> {
    Ok(row(c, "SELECT value FROM mi_meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

fn set_meta(c: &Connection, key: &str, value: &str) -> Result<()> {
    exec(
        c,
        "INSERT INTO mi_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// What a batch of sealing in place did.
enum Batch {
    Sealed(usize),
    /// This batch found nothing left: sealing in place is over.
    Finished,
    /// Another process had finished it.
    AlreadyDone,
}

impl Journal {
    /// Seals the clear values of up to `batch` requests written before sealing was
    /// turned on, in one transaction; how many requests it looked at (0: none are
    /// left). Resumable: a crash leaves each value sealed or clear, and the next
    /// batch goes on from the last request done (`mi_meta` `seal_cursor`). The
    /// settlement facts of those requests are kept in clear first, for the books.
    /// Freed space is zeroed as it goes (`secure_delete`); at the end the file is
    /// rewritten (VACUUM) and the WAL emptied, so no clear copy is left behind.
    pub fn seal_older(&self, batch: usize) -> Result<usize> {
        if self.sealing.older_to_seal().is_none() {
            return Ok(0);
        }
        let c = self.lock();
        c.execute_batch("PRAGMA secure_delete = ON")?;
        let done = Tx::immediate(&c, self).and_then(|tx| {
            let n = tx.seal_batch(batch)?;
            tx.commit()?;
            Ok(n)
        });
        let _ = c.execute_batch("PRAGMA secure_delete = OFF");
        drop(c);
        match done? {
            Batch::Sealed(n) => Ok(n),
            Batch::Finished => {
                log::info!("journal: every request is sealed");
                self.vacuum_if_owed();
                Ok(0)
            }
            Batch::AlreadyDone => Ok(0),
        }
    }

    /// After sealing in place, space freed while the journal was kept in clear
    /// still holds old text: the file is rewritten once (VACUUM) and the WAL, which
    /// then holds the rewrite, emptied. Owed until it has worked (`mi_meta`
    /// `vacuum_owed`): tried when sealing ends and again at each hourly retention.
    pub fn vacuum_if_owed(&self) {
        if !self.sealing.vacuum_owed.load(Ordering::Acquire) {
            return;
        }
        let c = self.lock();
        let rewritten = c.execute_batch("VACUUM").and_then(|_| {
            let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            Ok(busy == 0)
        });
        match rewritten {
            Ok(true) => match exec(&c, "DELETE FROM mi_meta WHERE key = 'vacuum_owed'", []) {
                Ok(_) => {
                    self.sealing.vacuum_owed.store(false, Ordering::Release);
                    log::info!("journal: the file is rewritten without clear text");
                }
                Err(e) => log::warn!("journal: rewritten, but that could not be noted (will rewrite again): {e}"),
            },
            Ok(false) => log::warn!("journal: rewritten, but its WAL is still read by another program: will try again"),
            Err(e) => log::warn!("journal: every request is sealed, but the file was not rewritten yet: {e}"),
        }
    }

    /// Rotates the key (`mi-sdk journal rekey`): a new key is written beside the key
    /// file (`.new`), every sealed value is opened and sealed again with it in one
    /// transaction, and the new file then replaces the old. A stop before the commit
    /// leaves the journal on the old key; a stop after it is finished by the next
    /// open. Refused while another process uses the journal (it holds the old key).
    /// How many requests were re-sealed.
    pub fn rekey(self) -> Result<usize> {
        let Some(old) = self.sealing.sealing_key().cloned() else {
            return Err(Error::invalid(
                "this journal has no key: it was never sealed (journal.seal), so there is nothing to rotate",
            ));
        };
        let path = self.sealing.key_path.clone();
        let new = key::create_pending(&path)?;
        let with = |k: SealKey| Sealing { key: k.into(), on: true.into(), ..Sealing::none(path.clone()) };
        let (from, to) = (with(old), with(new.clone()));
        let clear_below = self.sealing.clear_below.load(Ordering::Acquire);
        let n = self
            .write(|tx| {
                // Inside the write lock: a process opens the journal (and reads its key)
                // in a write transaction of its own, after taking its owner lock. One that
                // has the old key is seen here; one that has not waits, then reads the new.
                unused(&self.path)?;
                let n = tx.reseal(&from, &to)?;
                set_meta(tx, "key_check", &new.seal(CHECK_PLACE, CHECK_TEXT)?)?;
                set_clear_below(tx, &new, clear_below)?;
                Ok(n)
            })
            .inspect_err(|_| {
                let _ = std::fs::remove_file(key::pending(&path));
            })?;
        // On disk before the new key file takes the old one's place, whatever
        // journal.synchronous says: a journal sealed with a key that is gone is lost.
        self.flush()?;
        if let Err(e) = key::promote(&path) {
            // A process that opened the journal meanwhile may have put it in place.
            let done = !key::pending(&path).exists() && key::load(&path).is_ok_and(|k| k.bytes() == new.bytes());
            if !done {
                return Err(e);
            }
        }
        Ok(n)
    }

    /// Whether sealing is on for new values.
    pub fn sealed(&self) -> bool {
        self.sealing.on.load(Ordering::Acquire)
    }
}

impl Tx<'_> {
    /// Every sealed value opened with `from` and sealed with `to`, request by
    /// request; clear ones are left to [`Journal::seal_older`].
    fn reseal(&self, from: &Sealing, to: &Sealing) -> Result<usize> {
        let (mut after, mut n) = (0i64, 0usize);
        loop {
            let ids = self.request_ids(after, i64::MAX, 500)?;
            let Some(&last) = ids.last() else { return Ok(n) };
            self.rewrite(&ids, |place, v| match v {
                Some(t) if seal::is_sealed(&t) => Ok(Some(to.seal(place, &from.open(place, t)?)?)),
                other => Ok(other),
            })?;
            n += ids.len();
            after = last;
        }
    }

    fn seal_batch(&self, batch: usize) -> Result<Batch> {
        let s = &self.journal.sealing;
        let key = s.sealing_key().expect("sealing on: the key was read");
        // Another process may have finished meanwhile: the journal's own word counts.
        let below = get_clear_below(self, key)?.unwrap_or(0);
        if below <= 1 {
            s.clear_below.store(0, Ordering::Release);
            return Ok(Batch::AlreadyDone);
        }
        let cursor: i64 = meta(self, "seal_cursor")?.and_then(|v| v.parse().ok()).unwrap_or(0);
        let ids = self.request_ids(cursor, below, batch)?;
        let Some(&last) = ids.last() else {
            set_clear_below(self, key, 0)?;
            set_meta(self, "vacuum_owed", "1")?;
            exec(self, "DELETE FROM mi_meta WHERE key = 'seal_cursor'", [])?;
            s.clear_below.store(0, Ordering::Release);
            s.vacuum_owed.store(true, Ordering::Release);
            return Ok(Batch::Finished);
        };
        // The books' clear copy of a settlement, from its clear values, first.
        for id in &ids {
            let (infno, envelope, result): (String, String, Option<String>) =
                row(self, "SELECT infno, envelope, result FROM mi_request WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            if !seal::is_sealed(&envelope) {
                self.keep_books(*id, &infno, Some(&envelope), result.as_deref().filter(|t| !seal::is_sealed(t)))?;
            }
        }
        self.rewrite(&ids, |place, v| match v {
            Some(t) if !seal::is_sealed(&t) => Ok(Some(s.seal(place, &t)?)),
            other => Ok(other),
        })?;
        set_meta(self, "seal_cursor", &last.to_string())?;
        Ok(Batch::Sealed(ids.len()))
    }

    /// Up to `limit` request ids after `after` and below `below`, in order.
    fn request_ids(&self, after: i64, below: i64, limit: usize) -> Result<Vec<i64>> {
        Ok(self
            .prepare_cached("SELECT id FROM mi_request WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT ?3")?
            .query_map(params![after, below, limit as i64], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Every value that may be sealed, of the requests `ids` and their attempts,
    /// replaced by what `f` makes of it.
    fn rewrite(&self, ids: &[i64], f: impl Fn(Place, Option<String>) -> Result<Option<String>>) -> Result<()> {
        for &id in ids {
            let (envelope, result, last_error): (Option<String>, Option<String>, Option<String>) =
                row(self, "SELECT envelope, result, last_error FROM mi_request WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            exec(
                self,
                "UPDATE mi_request SET envelope = ?2, result = ?3, last_error = ?4 WHERE id = ?1",
                params![
                    id,
                    f(Place::Envelope(id), envelope)?,
                    f(Place::Result(id), result)?,
                    f(Place::LastError(id), last_error)?
                ],
            )?;
            let attempts: Vec<(i64, Option<String>, Option<String>)> = self
                .prepare_cached("SELECT attempt_no, response, err_msg FROM mi_attempt WHERE request_id = ?1")?
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<std::result::Result<_, _>>()?;
            for (no, response, err_msg) in attempts {
                exec(
                    self,
                    "UPDATE mi_attempt SET response = ?3, err_msg = ?4 WHERE request_id = ?1 AND attempt_no = ?2",
                    params![id, no, f(Place::Response(id, no), response)?, f(Place::ErrMsg(id, no), err_msg)?],
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::tests::new_req;
    use super::super::tests::opts;
    use super::super::{Attempt, Final, Next, Options, Start, State};
    use super::*;
    use crate::config::Synchronous;
    use crate::protocol::retry::AttemptOutcome;

    const NAME: &str = "张三";
    const CERTNO: &str = "440301199001011234";

    fn found(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn open_with(p: &Path, seal: bool) -> Result<Journal> {
        Journal::open(p, Options { seal, ..opts(Synchronous::Normal) })
    }

    /// A finished request whose envelope, result, error and attempt carry a name
    /// and an ID number; returns its id.
    fn finished(j: &Journal, infno: &str, envelope: &str, result: &str) -> i64 {
        let mut req = new_req(None);
        req.infno = infno.into();
        let id = j.write(|tx| tx.insert(&req, Start::Sending("me"), |_| Ok(envelope.to_string()))).unwrap().id;
        let a = Attempt {
            no: 1,
            outcome: Some(AttemptOutcome::Ok),
            err_msg: Some(format!("{NAME} ok")),
            // As a wrapping gateway answers: not the result itself.
            response: Some(format!("{{\"data\":{result}}}")),
            ..Default::default()
        };
        let fin = Final {
            state: State::Succeeded,
            code: crate::error::Code::Ok,
            result: result.to_string(),
            last_error: Some(format!("{CERTNO} checked")),
        };
        j.write(|tx| tx.advance(id, "me", Some(&a), &Next::Final(fin))).unwrap();
        id
    }

    fn person() -> (String, String) {
        (
            format!(r#"{{"input":{{"data":{{"certno":"{CERTNO}","psn_name":"{NAME}"}}}}}}"#),
            format!(r#"{{"infcode":0,"output":{{"baseinfo":{{"certno":"{CERTNO}","psn_name":"{NAME}"}}}}}}"#),
        )
    }

    fn raw(j: &Journal, sql: &str) -> Vec<String> {
        let c = j.lock();
        let mut st = c.prepare(sql).unwrap();
        st.query_map([], |r| r.get::<_, Option<String>>(0)).unwrap().filter_map(|r| r.unwrap()).collect()
    }

    /// Two programs on one journal whose configs' `journal.seal` differ: the one
    /// that opened it in clear follows the other's sealing from its next write, and
    /// each reads what the other wrote, before and after.
    #[test]
    fn a_program_that_opened_in_clear_follows_another_that_seals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        let clear = open_with(&p, false).unwrap();
        let (envelope, result) = person();
        let before = finished(&clear, "1101", &envelope, &result);
        assert!(!clear.sealed() && !p.with_file_name("j.db.key").exists());
        let sealing = open_with(&p, true).unwrap();
        assert!(sealing.sealed());
        // The sealer's value, read by the other before its own next write.
        let theirs = finished(&sealing, "1101", &envelope, &result);
        assert_eq!(clear.request(theirs).unwrap().unwrap().envelope, envelope);
        assert_eq!(clear.attempts(theirs).unwrap()[0].err_msg.as_deref(), Some("张三 ok"));
        assert!(!clear.sealed(), "reading alone does not turn sealing on");
        // Its next write seals, and the sealer reads it.
        let mine = finished(&clear, "1101", &envelope, &result);
        assert!(clear.sealed());
        for sql in
            ["SELECT envelope FROM mi_request", "SELECT result FROM mi_request", "SELECT err_msg FROM mi_attempt"]
        {
            let v = raw(
                &clear,
                &format!("{sql} WHERE {} = {mine}", if sql.contains("attempt") { "request_id" } else { "id" }),
            );
            assert!(seal::is_sealed(&v[0]), "{sql}: {}", v[0]);
        }
        for (j, id) in [(&sealing, mine), (&sealing, before), (&clear, before), (&clear, theirs)] {
            let r = j.request(id).unwrap().unwrap();
            assert_eq!((r.envelope.as_str(), r.result.as_deref()), (envelope.as_str(), Some(result.as_str())), "{id}");
        }
        // The clear request from before is sealed in place by either of them.
        assert_eq!(clear.seal_older(10).unwrap(), 1);
        assert!(seal::is_sealed(&raw(&sealing, &format!("SELECT envelope FROM mi_request WHERE id = {before}"))[0]));
        assert_eq!(sealing.request(before).unwrap().unwrap().envelope, envelope);
        // Without the key file, the program in clear says which file it needs, and
        // writes nothing in clear meanwhile.
        let other = tempfile::tempdir().unwrap();
        let q = other.path().join("j.db");
        let clear = open_with(&q, false).unwrap();
        let sealing = open_with(&q, true).unwrap();
        let theirs = finished(&sealing, "1101", &envelope, &result);
        drop(sealing);
        std::fs::remove_file(q.with_file_name("j.db.key")).unwrap();
        let e = clear.request(theirs).unwrap_err();
        assert!(e.code == Code::Journal && e.message.contains("journal.key_file"), "{e:?}");
        let e =
            clear.write(|tx| tx.insert(&new_req(None), Start::Sending("me"), |_| Ok(envelope.clone()))).unwrap_err();
        assert!(e.code == Code::Journal && e.message.contains("j.db.key"), "{e:?}");
        assert_eq!(raw(&clear, "SELECT CAST(count(*) AS TEXT) FROM mi_request"), ["1"]);
        let wal = std::fs::read(q.with_file_name("j.db-wal")).unwrap();
        assert!(wal.len() > 4096, "the WAL holds the writes");
        for bytes in [std::fs::read(&q).unwrap(), wal] {
            assert!(!found(&bytes, NAME.as_bytes()) && !found(&bytes, CERTNO.as_bytes()));
        }
    }

    #[test]
    fn values_are_sealed_in_the_file_and_read_back_clear() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        let j = open_with(&p, true).unwrap();
        assert!(j.sealed());
        let (envelope, result) = person();
        let id = finished(&j, "1101", &envelope, &result);
        for sql in [
            "SELECT envelope FROM mi_request",
            "SELECT result FROM mi_request",
            "SELECT last_error FROM mi_request",
            "SELECT response FROM mi_attempt",
            "SELECT err_msg FROM mi_attempt",
        ] {
            let v = raw(&j, sql);
            assert_eq!(v.len(), 1, "{sql}");
            assert!(seal::is_sealed(&v[0]) && !v[0].contains(CERTNO), "{sql}: {}", v[0]);
        }
        let r = j.request(id).unwrap().unwrap();
        assert_eq!((r.envelope.as_str(), r.result.as_deref()), (envelope.as_str(), Some(result.as_str())));
        assert_eq!(r.last_error.as_deref(), Some(format!("{CERTNO} checked").as_str()));
        let a = &j.attempts(id).unwrap()[0];
        let wrapped = format!("{{\"data\":{result}}}");
        assert_eq!((a.response.as_deref(), a.err_msg.as_deref()), (Some(wrapped.as_str()), Some("张三 ok")));
        // An answer that is the result itself is kept once, in the result.
        let same = j.write(|tx| tx.insert(&new_req(None), Start::Sending("me"), |_| Ok(envelope.clone()))).unwrap().id;
        let a = Attempt { no: 1, response: Some(result.clone()), ..Default::default() };
        let fin = Final { state: State::Succeeded, code: Code::Ok, result: result.clone(), last_error: None };
        j.write(|tx| tx.advance(same, "me", Some(&a), &Next::Final(fin))).unwrap();
        let kept = raw(&j, &format!("SELECT response FROM mi_attempt WHERE request_id = {same}")).remove(0);
        assert!(seal::is_sealed(&kept) && kept.len() < 100, "a short sealed marker: {kept}");
        assert_eq!(j.attempts(same).unwrap()[0].response.as_deref(), Some(result.as_str()));
        // The view shows what is clear, and nothing sealed.
        let view: (Option<String>, Option<String>, i64) = j
            .lock()
            .query_row("SELECT response, last_error, attempts FROM v_mi_result WHERE request_id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(view, (None, None, 1));
        drop(j);
        let bytes = std::fs::read(&p).unwrap();
        for needle in [CERTNO.as_bytes(), NAME.as_bytes(), &crate::charset::Charset::Gbk.encode(NAME)] {
            assert!(!found(&bytes, needle), "{needle:?} in the file");
        }
    }

    #[test]
    fn a_moved_or_changed_value_is_refused_never_returned() {
        let dir = tempfile::tempdir().unwrap();
        let j = open_with(&dir.path().join("j.db"), true).unwrap();
        let (envelope, result) = person();
        let a = finished(&j, "1101", &envelope, &result);
        let b = finished(&j, "1101", "{}", "{}");
        // Row a's envelope put in row b.
        j.lock()
            .execute(
                "UPDATE mi_request SET envelope = (SELECT envelope FROM mi_request WHERE id = ?1) WHERE id = ?2",
                [a, b],
            )
            .unwrap();
        let e = j.request(b).unwrap_err();
        assert_eq!(e.code, Code::Journal);
        assert!(e.message.contains("mi_request.envelope") && !e.message.contains(CERTNO), "{}", e.message);
        // The result moved to the envelope's column of its own row.
        j.lock().execute("UPDATE mi_request SET envelope = result WHERE id = ?1", [a]).unwrap();
        assert_eq!(j.request(a).unwrap_err().code, Code::Journal);
        // Every flipped character of a sealed value, the prefix included, is refused.
        let c = finished(&j, "1101", &envelope, &result);
        let kept = raw(&j, &format!("SELECT result FROM mi_request WHERE id = {c}")).remove(0);
        for i in 0..kept.len() {
            let mut b = kept.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(b).unwrap();
            if changed == kept {
                continue;
            }
            j.lock().execute("UPDATE mi_request SET result = ?2 WHERE id = ?1", params![c, changed]).unwrap();
            let e = j.request(c).unwrap_err();
            assert_eq!(e.code, Code::Journal, "byte {i}");
        }
        // A clear text put in place of a sealed one is refused too.
        j.lock().execute("UPDATE mi_request SET result = '{}' WHERE id = ?1", [c]).unwrap();
        assert!(j.request(c).unwrap_err().message.contains("should be sealed"));
    }

    #[test]
    fn a_journal_without_its_key_or_with_another_is_refused_naming_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        let key = dir.path().join("j.db.key");
        let (envelope, result) = person();
        finished(&open_with(&p, true).unwrap(), "1101", &envelope, &result);
        assert!(key.is_file());
        let kept = std::fs::read(&key).unwrap();
        std::fs::remove_file(&key).unwrap();
        for seal in [true, false] {
            let e = open_with(&p, seal).err().unwrap();
            assert_eq!(e.code, Code::Journal);
            assert!(e.message.contains(&key.display().to_string()) && e.message.contains("restore"), "{}", e.message);
            assert!(!key.exists(), "no new key is made for a sealed journal");
        }
        // Another journal's key.
        open_with(&dir.path().join("other.db"), true).unwrap();
        std::fs::copy(dir.path().join("other.db.key"), &key).unwrap();
        let e = open_with(&p, true).err().unwrap();
        assert!(e.message.contains("is not this journal's key"), "{}", e.message);
        std::fs::write(&key, kept).unwrap();
        let j = open_with(&p, true).unwrap();
        assert_eq!(j.request(1).unwrap().unwrap().envelope, envelope);
    }

    #[test]
    fn a_clear_journal_is_sealed_in_place_in_batches_and_its_books_still_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        let (envelope, result) = person();
        let settle_in =
            r#"{"insuplc_admdvs":"440300","input":{"data":{"mdtrt_id":"M1","psn_no":"P1","psn_name":"张三"}}}"#;
        let settle_out =
            r#"{"output":{"setlinfo":{"setl_id":"S1","psn_name":"张三","medfee_sumamt":25.5,"clr_type":"11"}}}"#;
        {
            let j = open_with(&p, false).unwrap();
            assert!(!j.sealed());
            for _ in 0..7 {
                finished(&j, "1101", &envelope, &result);
            }
            finished(&j, "2207", settle_in, settle_out);
            assert!(raw(&j, "SELECT envelope FROM mi_request").iter().all(|e| !seal::is_sealed(e)));
            assert_eq!(j.seal_older(3).unwrap(), 0, "nothing is sealed with sealing off");
        }
        let j = open_with(&p, true).unwrap();
        // New values are sealed at once; the old ones are read as they are meanwhile.
        let new = finished(&j, "1101", &envelope, &result);
        assert!(seal::is_sealed(&raw(&j, &format!("SELECT envelope FROM mi_request WHERE id = {new}"))[0]));
        assert_eq!(j.request(1).unwrap().unwrap().envelope, envelope);
        assert_eq!(j.seal_older(3).unwrap(), 3);
        drop(j);
        // Resumed after a stop.
        let j = open_with(&p, true).unwrap();
        let mut batches = 0;
        while j.seal_older(3).unwrap() > 0 {
            batches += 1;
        }
        assert_eq!(batches, 2, "rows 4-6 and 7-8 after rows 1-3");
        for col in ["envelope FROM mi_request", "result FROM mi_request", "response FROM mi_attempt"] {
            assert!(raw(&j, &format!("SELECT {col}")).iter().all(|v| seal::is_sealed(v)), "{col}");
        }
        for id in 1..=9 {
            assert!(j.request(id).unwrap().is_some());
        }
        // The books read the settlement's facts without the key, and nothing personal.
        let k = &crate::journal::books::kept(&j.lock(), &["2207"], "2000-01-01").unwrap()[0];
        assert_eq!(k.result.pointer("/output/setlinfo/medfee_sumamt"), Some(&serde_json::json!(25.5)));
        assert_eq!(k.envelope.pointer("/input/data/mdtrt_id"), Some(&serde_json::json!("M1")));
        assert!(k.envelope.pointer("/input/data/psn_name").is_none() && k.result.to_string().find(NAME).is_none());
        // A clear value in a row sealed by now is refused.
        j.lock().execute("UPDATE mi_request SET last_error = 'x' WHERE id = 2", []).unwrap();
        assert_eq!(j.request(2).unwrap_err().code, Code::Journal);
        j.lock().execute("UPDATE mi_request SET last_error = NULL WHERE id = 2", []).unwrap();
        drop(j);
        // What the file and its WAL hold: no clear copy left behind.
        for f in [p.clone(), dir.path().join("j.db-wal")] {
            let bytes = std::fs::read(&f).unwrap_or_default();
            assert!(!found(&bytes, CERTNO.as_bytes()), "{} holds the ID number", f.display());
        }
    }

    #[test]
    fn the_key_is_rotated_and_a_rotation_stopped_after_its_commit_is_finished_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        let key = dir.path().join("j.db.key");
        let (envelope, result) = person();
        let j = open_with(&p, true).unwrap();
        let id = finished(&j, "1101", &envelope, &result);
        let before = raw(&j, "SELECT envelope FROM mi_request").remove(0);
        let old_key = std::fs::read(&key).unwrap();
        // Not while another process uses the journal.
        let other = crate::journal::owners::OwnerLock::take(&p, "99-other").unwrap();
        let e = j.rekey().unwrap_err();
        assert!(e.code == Code::Busy && e.message.contains("99-other"), "{e}");
        drop(other);
        let j = open_with(&p, true).unwrap();
        assert_eq!(j.rekey().unwrap(), 1);
        assert_ne!(std::fs::read(&key).unwrap(), old_key, "a new key file");
        assert!(!key::pending(&key).exists());
        let j = open_with(&p, true).unwrap();
        assert_ne!(raw(&j, "SELECT envelope FROM mi_request").remove(0), before, "sealed again");
        assert_eq!(j.request(id).unwrap().unwrap().envelope, envelope);
        assert_eq!(j.attempts(id).unwrap()[0].response, Some(format!("{{\"data\":{result}}}")));
        drop(j);
        // The old key no longer opens it.
        let new_key = std::fs::read(&key).unwrap();
        std::fs::write(&key, &old_key).unwrap();
        assert!(open_with(&p, true).err().unwrap().message.contains("is not this journal's key"));
        // Stopped after the commit, before the new file took the old one's place:
        // the next open finishes it.
        std::fs::write(key::pending(&key), &new_key).unwrap();
        let j = open_with(&p, true).unwrap();
        assert_eq!(j.request(id).unwrap().unwrap().envelope, envelope);
        assert_eq!(std::fs::read(&key).unwrap(), new_key);
        assert!(!key::pending(&key).exists());
        // A journal never sealed has no key to rotate.
        let clear = open_with(&dir.path().join("clear.db"), false).unwrap();
        assert_eq!(clear.rekey().unwrap_err().code, Code::InvalidArgument);
    }

    #[test]
    fn a_sealed_journal_stays_sealed_and_its_progress_cannot_be_raised_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        let (envelope, result) = person();
        finished(&open_with(&p, true).unwrap(), "1101", &envelope, &result);
        // journal.seal false on a journal sealed once: it stays sealed.
        let j = open_with(&p, false).unwrap();
        assert!(j.sealed());
        let id = finished(&j, "1101", &envelope, &result);
        assert!(seal::is_sealed(&raw(&j, &format!("SELECT envelope FROM mi_request WHERE id = {id}")).remove(0)));
        // Raising the progress of sealing in place by hand, to let clear text in.
        j.lock().execute("UPDATE mi_meta SET value = '999999' WHERE key = 'clear_below'", []).unwrap();
        drop(j);
        let e = open_with(&p, true).err().unwrap();
        assert!(e.code == Code::Journal && e.message.contains("clear_below"), "{e}");
    }

    #[test]
    fn a_request_that_does_not_open_is_ended_and_never_stops_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let j = open_with(&dir.path().join("j.db"), true).unwrap();
        let damaged = crate::journal::records::tests::queued(&j, 5);
        let next = crate::journal::records::tests::queued(&j, 0);
        j.lock()
            .execute(
                "UPDATE mi_request SET envelope = (SELECT envelope FROM mi_request WHERE id = ?1) WHERE id = ?2",
                [next, damaged],
            )
            .unwrap();
        // The damaged one (claimed first: higher priority) is ended; the next is claimed.
        let claimed = j.write(|tx| tx.claim("W", 0)).unwrap().expect("the next request");
        assert_eq!(claimed.id, next);
        let r = j.request(damaged);
        assert!(r.is_err(), "its envelope still does not open");
        let row: (String, i64, Option<String>) = j
            .lock()
            .query_row("SELECT state, mi_code, owner FROM mi_request WHERE id = ?1", [damaged], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(row, ("failed".to_string(), Code::Journal.as_i32() as i64, None));
        // Lists show it, with why, instead of failing as a whole.
        let all = j.find(&crate::journal::Filter { limit: 10, ..Default::default() }).unwrap();
        let listed = all.iter().find(|r| r.id == damaged).expect("listed");
        assert!(listed.last_error.as_deref().unwrap_or("").contains("does not open"), "{listed:?}");
        // The status reads its error text: it is sealed and opens.
        let h = j.health().unwrap();
        assert!(h.last_error.unwrap().message.contains("does not open"));
    }
}
