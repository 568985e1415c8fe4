//! The journal: one SQLite file (WAL) holding every request, every attempt, the
//! day's sign-ins and the msgid counter. It is the single truth of what was asked,
//! sent and answered, and it is the queue the workers take from.
//!
//! - this file: opening, schema migrations, transactions, flushing, and the types
//!   of what the journal holds;
//! - [`records`]: requests and attempts as rows, msgids, sign-ins;
//! - [`queue`]: claims, ownership (heartbeats, taking over from dead processes),
//!   and how a request moves on after an attempt;
//! - [`reads`]: what operators ask of it;
//! - [`books`]: the settlements a journal kept, for reconciliation;
//! - [`writer`]: group commit, the write path of async submissions and workers;
//! - [`owners`]: each process's lock file, which says whether it is alive;
//! - `checkpoint`: WAL checkpoints on a thread of their own.
//!
//! Every write is a method of [`Tx`], a write transaction: a caller picks the
//! transaction (one of its own, [`Journal::write`], or a share of a group commit,
//! [`Journal::batch`]) and calls the verb inside it.

pub mod books;
mod checkpoint;
pub mod key;
pub mod owners;
pub mod queue;
pub mod reads;
pub mod records;
mod sealing;
pub mod writer;

use crate::clock::Clock;
use crate::config::{Config, Synchronous};
use crate::error::{Code, Error, Result};
use crate::protocol::retry::AttemptOutcome;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Params};
use std::path::{Path, PathBuf};
#[cfg(test)]
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

pub use queue::{Beat, Next, Recovery, Whose};
pub use reads::{Filter, LastFailure};
pub use records::{CallMode, Inserted, NewRequest, Node, NodeSource, Start};

/// Schema versions, in order; entry N brings the file to `user_version` N+1.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_source.sql"),
    include_str!("migrations/0003_flat_lookups.sql"),
    include_str!("migrations/0004_signin_set_null.sql"),
    include_str!("migrations/0005_meta.sql"),
    include_str!("migrations/0006_ownership.sql"),
    include_str!("migrations/0007_sealing.sql"),
];

/// The states of a request (docs/api_reference.md, `mi_get_request`), stored as
/// their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Queued,
    Sending,
    RetryWait,
    Succeeded,
    BusinessError,
    Failed,
    Uncertain,
    Reversed,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Queued,
        State::Sending,
        State::RetryWait,
        State::Succeeded,
        State::BusinessError,
        State::Failed,
        State::Uncertain,
        State::Reversed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Sending => "sending",
            State::RetryWait => "retry_wait",
            State::Succeeded => "succeeded",
            State::BusinessError => "business_error",
            State::Failed => "failed",
            State::Uncertain => "uncertain",
            State::Reversed => "reversed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether nothing more will be sent for it (the HIS has its final answer).
    pub fn is_finished(self) -> bool {
        !matches!(self, State::Queued | State::Sending | State::RetryWait)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The journal stores these enums as their names (`as_str`), and reads back only a
/// name it knows (`parse`): a damaged value is an error, never a guess.
macro_rules! stored_by_name {
    ($($t:ty: $what:literal),* $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<$t> {
                let s = v.as_str()?;
                <$t>::parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown {} \"{s}\"", $what).into()))
            }
        }
    )*};
}

stored_by_name!(State: "request state", AttemptOutcome: "attempt outcome", CallMode: "call mode");

/// The final state of a request and what its caller is given.
#[derive(Debug, Clone)]
pub struct Final {
    pub state: State,
    pub code: Code,
    pub result: String,
    pub last_error: Option<String>,
}

/// A request row as the journal holds it.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub id: i64,
    pub msgid: String,
    pub infno: String,
    pub mode: CallMode,
    pub priority: i32,
    pub state: State,
    pub envelope: String,
    pub attempts: i64,
    pub mi_code: Option<i32>,
    pub result: Option<String>,
    pub last_error: Option<String>,
    pub reversal_of: Option<i64>,
    pub reversed_by: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

/// One attempt to send a request: begun with its msgid, ended with an outcome.
/// The attempt loop fills in how it ended; operators read all of it.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// 1 for the first send of the request.
    pub no: i64,
    pub msgid: String,
    pub started_at: String,
    /// `None` while it is in flight.
    pub outcome: Option<AttemptOutcome>,
    pub http_status: Option<u16>,
    pub infcode: Option<i64>,
    pub err_msg: Option<String>,
    pub response: Option<String>,
    pub latency_ms: Option<i64>,
}

/// How the journal is opened: durability, patience with other programs' locks,
/// whose msgids it hands out, and the clock of its timestamps.
#[derive(Debug, Clone)]
pub struct Options {
    pub synchronous: Synchronous,
    /// How long a write waits for another program holding the lock.
    pub busy_timeout_ms: u32,
    pub fixmedins_code: String,
    /// The config's node; `None`: the journal's own ([`Journal::node`]).
    pub node_id: Option<u32>,
    pub clock: Clock,
    /// Whether new envelopes, answers and error texts are sealed (`journal.seal`).
    pub seal: bool,
    /// The key file; `None`: beside the journal, its name and `.key`.
    pub key_file: Option<PathBuf>,
}

impl Options {
    pub fn of(cfg: &Config, clock: Clock) -> Options {
        Options {
            synchronous: cfg.journal.synchronous,
            busy_timeout_ms: cfg.journal.busy_timeout_ms,
            fixmedins_code: cfg.institution.fixmedins_code.clone(),
            node_id: cfg.node_id,
            clock,
            seal: cfg.journal.seal,
            key_file: Some(cfg.journal_key_path()),
        }
    }

    /// For a program that reads an SDK's journal without its config (the bench, the
    /// tests): sealed values opened with the key file beside the journal.
    pub fn beside_key(fixmedins_code: &str) -> Options {
        Options {
            synchronous: Synchronous::Normal,
            busy_timeout_ms: 10_000,
            fixmedins_code: fixmedins_code.into(),
            node_id: Some(0),
            clock: Clock::system(),
            seal: true,
            key_file: None,
        }
    }

    /// The key file of the journal at `journal`.
    fn key_path(&self, journal: &Path) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| crate::config::key_beside(journal))
    }
}

pub struct Journal {
    conn: Mutex<Connection>,
    path: PathBuf,
    opts: Options,
    /// The msgid node in use, and where it came from.
    node: Node,
    /// The key and the rules of what is sealed.
    sealing: sealing::Sealing,
    checkpointer: Mutex<Option<checkpoint::Checkpointer>>,
    /// The `PRAGMA synchronous` statement that restores the configured setting.
    restore_sync: String,
    /// The WAL, opened to flush it after commits made without a sync (group commit).
    wal: Mutex<Option<std::fs::File>>,
    /// Flushes still to fail on purpose: the unit tests of what follows a disk that
    /// refuses to flush (an EIO cannot be had on demand).
    #[cfg(test)]
    pub fail_flushes: std::sync::atomic::AtomicU32,
}

/// A write transaction on the journal. Every write verb is a method of it (in
/// [`records`] and [`queue`]); its BEGIN, COMMIT and ROLLBACK are prepared once per
/// connection: rusqlite's `Transaction` parses them anew every time, which showed
/// up as a tenth of a sync call's CPU time. Dropped without `commit`, it rolls back.
pub struct Tx<'j> {
    conn: &'j Connection,
    journal: &'j Journal,
    open: bool,
}

impl<'j> Tx<'j> {
    /// `BEGIN IMMEDIATE`: the write lock now, so a busy journal waits here (busy
    /// timeout) rather than failing halfway through.
    fn immediate(conn: &'j Connection, journal: &'j Journal) -> Result<Tx<'j>> {
        exec(conn, "BEGIN IMMEDIATE", [])?;
        let tx = Tx { conn, journal, open: true };
        journal.sealing.follow(conn)?;
        Ok(tx)
    }

    fn commit(mut self) -> Result<()> {
        exec(self.conn, "COMMIT", [])?;
        self.open = false;
        Ok(())
    }

    /// Runs `f` in a savepoint: what it changed is undone when it fails, and the
    /// rest of the transaction stands. The outer `Err` is the savepoint itself
    /// failing; the inner one is `f`'s.
    pub fn isolated<T>(&self, f: impl FnOnce(&Tx<'j>) -> Result<T>) -> Result<Result<T>> {
        exec(self.conn, "SAVEPOINT op", [])?;
        let r = f(self);
        if r.is_err() {
            exec(self.conn, "ROLLBACK TO op", [])?;
        }
        exec(self.conn, "RELEASE op", [])?;
        Ok(r)
    }

    /// A journal timestamp of now.
    fn now(&self) -> String {
        self.journal.opts.clock.stamp()
    }

    fn opts(&self) -> &Options {
        &self.journal.opts
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = exec(self.conn, "ROLLBACK", []);
        }
    }
}

/// Runs a statement from the connection's statement cache (parsed once).
fn exec(c: &Connection, sql: &str, p: impl Params) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(p)
}

/// Reads one row with a statement from the connection's statement cache.
fn row<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    c.prepare_cached(sql)?.query_row(p, f)
}

/// The WAL beside a journal file (SQLite names it `<file>-wal`).
pub(super) fn wal_of(journal: &Path) -> PathBuf {
    crate::paths::appended(journal, "-wal")
}

impl Journal {
    /// Opens (creating if missing) and migrates the journal file. The file is named
    /// in every error here: it is what the operator must find.
    pub fn open(path: &Path, opts: Options) -> Result<Journal> {
        Journal::open_unnamed(path, opts).map_err(|e| {
            let named = format!("journal {}:", path.display());
            let message = if e.message.starts_with(&named) {
                e.message
            } else {
                format!("{named} {}", e.message.strip_prefix("journal:").unwrap_or(&e.message).trim_start())
            };
            Error::new(e.code, message)
        })
    }

    fn open_unnamed(path: &Path, opts: Options) -> Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::journal(format!("cannot create its folder {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(Error::from)?;
        restrict_to_owner(path);
        conn.busy_timeout(std::time::Duration::from_millis(opts.busy_timeout_ms.into()))?;
        // Every statement the journal runs stays prepared.
        conn.set_prepared_statement_cache_capacity(128);
        // Savepoints (each operation of a shared commit has one) keep the pages they
        // change in a statement journal, which otherwise spills to a temporary file:
        // a file created and deleted per operation.
        conn.execute_batch("PRAGMA temp_store = MEMORY;")?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::journal(format!("cannot use WAL (got {mode})")));
        }
        let sync = opts.synchronous.as_str();
        conn.execute_batch(&format!("PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON;"))?;
        // Checkpoints are the background checkpointer's work (see `checkpoint`); the
        // connection itself checkpoints only if the WAL grows past ~40 MB, in case
        // that thread cannot keep up.
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = {};", checkpoint::BACKSTOP_PAGES))?;
        let key_path = opts.key_path(path);
        let mut j = Journal {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            restore_sync: format!("PRAGMA synchronous = {sync}"),
            opts,
            node: Node { id: 0, source: NodeSource::Config },
            sealing: sealing::Sealing::none(key_path.clone()),
            checkpointer: Mutex::new(None),
            wal: Mutex::new(None),
            #[cfg(test)]
            fail_flushes: Default::default(),
        };
        j.migrate()?;
        let (node, sealing) =
            j.write(|tx| Ok((tx.node(j.opts.node_id)?, sealing::Sealing::start(tx, j.opts.seal, &key_path)?)))?;
        j.node = node;
        j.sealing = sealing;
        Ok(j)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn clock(&self) -> &Clock {
        &self.opts.clock
    }

    /// The msgid node this journal's msgids carry, and where it came from.
    pub fn node(&self) -> Node {
        self.node
    }

    /// Moves WAL checkpoints (copying pages into the file and their fsyncs) off
    /// the callers' commits onto a thread of their own. For a process that writes
    /// much (the SDK); a short-lived reader needs none.
    pub fn start_checkpointer(&self) -> Result<()> {
        let mut slot = self.checkpointer.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(checkpoint::Checkpointer::start(&self.path)?);
        }
        Ok(())
    }

    /// Stops the checkpoint thread and waits for it (shutdown); dropping the
    /// journal does the same.
    pub fn stop_checkpointer(&self) {
        if let Some(c) = self.checkpointer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            c.stop();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll
        // back on drop), so the connection stays usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        self.write(|tx| {
            let v: i64 = row(tx, "PRAGMA user_version", [], |r| r.get(0))?;
            if v as usize > MIGRATIONS.len() {
                return Err(Error::journal(format!(
                    "journal schema version {v} is newer than this mi_sdk knows ({}); use a newer mi_sdk",
                    MIGRATIONS.len()
                )));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(v as usize) {
                tx.execute_batch(sql)?;
                tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            }
            Ok(())
        })
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.lock().query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Runs `f` in a write transaction of its own and commits it, as durable as
    /// `journal.synchronous` says. `Err` means nothing of it was kept.
    pub fn write<R>(&self, f: impl FnOnce(&Tx<'_>) -> Result<R>) -> Result<R> {
        let c = self.lock();
        let tx = Tx::immediate(&c, self)?;
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    }

    /// Runs the operations of many threads in one write transaction (group
    /// commit); `f` runs each in [`Tx::isolated`] so that one failing spoils
    /// nothing else. With a durable setting (FULL) the commit does not wait for the
    /// disk and `.1` is true: [`Journal::flush`] is owed before anyone is told the
    /// work is kept, and the caller can commit the next batch while the disk
    /// flushes this one. `Err` means nothing of the batch was kept: the commit
    /// failed, or `f` failed and the transaction was rolled back.
    pub fn batch<R>(&self, f: impl FnOnce(&Tx<'_>) -> Result<R>) -> Result<(R, bool)> {
        let c = self.lock();
        let unsynced = self.opts.synchronous.is_durable();
        if unsynced {
            exec(&c, "PRAGMA synchronous = NORMAL", [])?;
        }
        let out = Tx::immediate(&c, self).and_then(|tx| {
            let r = f(&tx)?;
            tx.commit()?;
            Ok(r)
        });
        if unsynced {
            // The batch's fate is already sealed: failing here would tell callers
            // that committed work was lost.
            if let Err(e) = exec(&c, &self.restore_sync, []) {
                log::error!("journal: cannot restore `{}` after a group commit: {e}", self.restore_sync);
            }
        }
        Ok((out?, unsynced))
    }

    /// Flushes the WAL to disk: every commit made before this call is then as
    /// durable as a FULL commit (the WAL is what recovery replays).
    pub fn flush(&self) -> Result<()> {
        #[cfg(test)]
        if self.fail_flushes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok() {
            return Err(Error::journal("the journal could not be flushed to disk: Input/output error (injected)"));
        }
        let mut wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        if wal.is_none() {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(wal_of(&self.path))
                .map_err(|e| Error::journal(format!("cannot open the journal's WAL to flush it: {e}")))?;
            *wal = Some(f);
        }
        let f = wal.as_ref().expect("opened above");
        f.sync_data().map_err(|e| {
            Error::journal(format!("the journal could not be flushed to disk (the requests may not be kept): {e}"))
        })
    }

    /// Whether a write transaction can be taken now (not locked, not read-only).
    pub fn check_writable(&self) -> Result<()> {
        let c = self.lock();
        // Dropped uncommitted: rolled back.
        let _tx = Tx::immediate(&c, self)?;
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop_checkpointer();
    }
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // The journal is the audit record with patients' data in it: owner-only.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Options for a test journal: institution H44030000001, node 3.
    pub(crate) fn opts(synchronous: Synchronous) -> Options {
        Options {
            synchronous,
            busy_timeout_ms: 10_000,
            fixmedins_code: "H44030000001".into(),
            node_id: Some(3),
            clock: Clock::system(),
            seal: true,
            key_file: None,
        }
    }

    pub(crate) fn open(dir: &Path) -> Journal {
        Journal::open(&dir.join("j.db"), opts(Synchronous::Normal)).unwrap()
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        Connection::open(&p).unwrap().execute_batch("PRAGMA user_version = 99").unwrap();
        let e = Journal::open(&p, opts(Synchronous::Full)).err().unwrap();
        assert_eq!(e.code, Code::Journal);
        assert!(e.message.starts_with(&format!("journal {}:", p.display())), "{}", e.message);
    }

    #[test]
    fn states_and_outcomes_are_stored_by_name() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path());
        let c = j.lock();
        let st: State = c.query_row("SELECT 'retry_wait'", [], |r| r.get(0)).unwrap();
        assert_eq!(st, State::RetryWait);
        assert!(c.query_row("SELECT 'lost'", [], |r| r.get::<_, State>(0)).is_err());
        let o: AttemptOutcome = c.query_row("SELECT ?1", [AttemptOutcome::MaybeProcessed], |r| r.get(0)).unwrap();
        assert_eq!(o, AttemptOutcome::MaybeProcessed);
    }

    #[cfg(unix)]
    #[test]
    fn file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        let _j = Journal::open(&p, opts(Synchronous::Full)).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
