//! The journal: one SQLite file (WAL) holding every request, every attempt, the
//! day's sign-ins and the msgid counter. Schema changes are embedded SQL files
//! applied in order and recorded in `PRAGMA user_version`.

use crate::error::{Code, Error, Result};
use crate::protocol::msgid::{self, SeqState};
use rusqlite::{params, Connection, OptionalExtension, Params};
use std::path::{Path, PathBuf};
#[cfg(test)]
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

mod checkpoint;

/// Schema versions, in order; entry N brings the file to `user_version` N+1.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_source.sql"),
    include_str!("migrations/0003_flat_lookups.sql"),
];

/// Claims the next request: two index probes, each a LIMIT 1: the head of the
/// queue (mi_request_ready) and the most urgent retry that is due (mi_request_due).
/// Finished rows and retries not yet due are never visited, however many there are.
const CLAIM: &str = "UPDATE mi_request SET state = 'sending', owner = ?1, updated_at = ?3
             WHERE id = (SELECT id FROM (
                           SELECT id, priority FROM (SELECT id, priority FROM mi_request
                                                      WHERE state = 'queued' AND owner IS NULL
                                                      ORDER BY priority DESC, id LIMIT 1)
                           UNION ALL
                           SELECT id, priority FROM (SELECT id, priority FROM mi_request
                                                      WHERE state = 'retry_wait' AND next_at <= ?2 AND owner IS NULL
                                                      ORDER BY priority DESC, id LIMIT 1))
                         ORDER BY priority DESC, id LIMIT 1)
             RETURNING id";

/// Claimed requests with whether an attempt is in flight, for recovery (through
/// the partial index on owner: claimed rows only, however many are waiting).
const ORPHANS: &str = "SELECT r.id, r.state,
        EXISTS (SELECT 1 FROM mi_attempt a WHERE a.request_id = r.id AND a.finished_at IS NULL)
   FROM mi_request r
  WHERE r.state IN ('sending', 'retry_wait')";

/// The creation time of the oldest unfinished request (mi_request_unfinished).
const OLDEST_UNFINISHED: &str =
    "SELECT created_at FROM mi_request WHERE state IN ('queued', 'sending', 'retry_wait') ORDER BY id LIMIT 1";

/// When, which transaction and why the latest request failed (mi_state_count).
const LAST_FAILURE: &str = "SELECT s.last_at, coalesce(r.infno, ''), coalesce(r.last_error, '')
               FROM mi_state_count s LEFT JOIN mi_request r ON r.id = s.last_id
              WHERE s.state IN ('failed', 'business_error', 'uncertain') AND s.last_at IS NOT NULL
              ORDER BY s.last_at DESC LIMIT 1";

/// The states of ABI.md §3.
pub mod state {
    pub const QUEUED: &str = "queued";
    pub const SENDING: &str = "sending";
    pub const RETRY_WAIT: &str = "retry_wait";
    pub const SUCCEEDED: &str = "succeeded";
    pub const BUSINESS_ERROR: &str = "business_error";
    pub const FAILED: &str = "failed";
    pub const UNCERTAIN: &str = "uncertain";
    pub const REVERSED: &str = "reversed";
    pub const ALL: [&str; 8] = [QUEUED, SENDING, RETRY_WAIT, SUCCEEDED, BUSINESS_ERROR, FAILED, UNCERTAIN, REVERSED];
}

/// What a new request row needs besides its envelope.
pub struct NewRequest<'a> {
    pub infno: &'a str,
    pub mode: &'a str,
    pub priority: i32,
    pub caller_msgid: Option<&'a str>,
    pub fixmedins_code: &'a str,
    pub node_id: u32,
    /// The request this one reverses (a 2601).
    pub reversal_of: Option<i64>,
    /// A unique name of where it came from outside the ABI (a drop-box file).
    pub source: Option<&'a str>,
}

/// One finished attempt, as recorded.
#[derive(Debug, Clone, Default)]
pub struct AttemptRecord {
    pub outcome: &'static str,
    pub http_status: Option<u16>,
    pub infcode: Option<i64>,
    pub err_msg: Option<String>,
    pub response: Option<String>,
    pub latency_ms: i64,
}

/// The final state of a request and what its caller is given.
#[derive(Debug, Clone)]
pub struct Final {
    pub state: &'static str,
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
    pub mode: String,
    pub priority: i32,
    pub state: String,
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

pub struct Journal {
    conn: Mutex<Connection>,
    path: PathBuf,
    checkpointer: Mutex<Option<checkpoint::Checkpointer>>,
    /// Whether every commit must be on disk before it returns (FULL or EXTRA).
    durable_commits: bool,
    /// The `PRAGMA synchronous` statement that restores the configured setting.
    restore_sync: String,
    /// The WAL, opened to flush it after commits made without a sync (group commit).
    wal: Mutex<Option<std::fs::File>>,
    /// Flushes still to fail on purpose: the unit tests of what follows a disk that
    /// refuses to flush (an EIO cannot be had on demand).
    #[cfg(test)]
    pub fail_flushes: std::sync::atomic::AtomicU32,
}

/// A write transaction whose BEGIN, COMMIT and ROLLBACK are prepared once per
/// connection: rusqlite's `Transaction` parses them anew every time, which showed
/// up as a tenth of a sync call's CPU time. Dropped without `commit`, it rolls back.
struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    /// `BEGIN IMMEDIATE`: the write lock now, so a busy journal waits here (busy
    /// timeout) rather than failing halfway through.
    fn immediate(conn: &'c Connection) -> Result<Tx<'c>> {
        exec(conn, "BEGIN IMMEDIATE", [])?;
        Ok(Tx { conn, open: true })
    }

    fn commit(mut self) -> Result<()> {
        exec(self.conn, "COMMIT", [])?;
        self.open = false;
        Ok(())
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

/// Local time with milliseconds, the journal's timestamp format.
pub fn now_text() -> String {
    crate::protocol::now_local().format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

impl Journal {
    /// Opens (creating if missing) and migrates the journal file.
    pub fn open(path: &Path, synchronous: &str) -> Result<Journal> {
        Journal::open_waiting(path, synchronous, 10_000)
    }

    /// `open`, waiting up to `busy_ms` for a lock another program holds, then and on
    /// every later write (`journal.busy_timeout_ms`).
    pub fn open_waiting(path: &Path, synchronous: &str, busy_ms: u32) -> Result<Journal> {
        // The file is named in every error here: it is what the operator must find.
        Journal::open_unnamed(path, synchronous, busy_ms).map_err(|e| {
            let named = format!("journal {}:", path.display());
            let message = if e.message.starts_with(&named) {
                e.message
            } else {
                format!("{named} {}", e.message.strip_prefix("journal:").unwrap_or(&e.message).trim_start())
            };
            Error::new(e.code, message)
        })
    }

    fn open_unnamed(path: &Path, synchronous: &str, busy_ms: u32) -> Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::journal(format!("cannot create its folder {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(Error::from)?;
        restrict_to_owner(path);
        conn.busy_timeout(std::time::Duration::from_millis(busy_ms.into()))?;
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
        conn.execute_batch(&format!("PRAGMA synchronous={synchronous}; PRAGMA foreign_keys=ON;"))?;
        // Checkpoints are the background checkpointer's work (see `checkpoint`); the
        // connection itself checkpoints only if the WAL grows past ~40 MB, in case
        // that thread cannot keep up.
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = {};", checkpoint::BACKSTOP_PAGES))?;
        let j = Journal {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            checkpointer: Mutex::new(None),
            durable_commits: matches!(synchronous.to_ascii_lowercase().as_str(), "full" | "extra"),
            restore_sync: format!("PRAGMA synchronous = {synchronous}"),
            wal: Mutex::new(None),
            #[cfg(test)]
            fail_flushes: Default::default(),
        };
        j.migrate()?;
        Ok(j)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The WAL beside the journal file (SQLite names it `<file>-wal`).
    fn wal_path(&self) -> PathBuf {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        PathBuf::from(wal)
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

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll
        // back on drop), so the connection stays usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        let c = self.lock();
        let tx = Tx::immediate(&c)?;
        let v: i64 = row(&tx, "PRAGMA user_version", [], |r| r.get(0))?;
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
        tx.commit()?;
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.lock().query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Allocates a msgid (unless the caller gave one) and commits a new request in one
    /// transaction, so the counter and the row can never disagree, even across
    /// processes sharing the file. `build` makes the envelope for the msgid. A request
    /// inserted with an `owner` is claimed by it from the start (sync calls).
    pub fn insert_request(
        &self,
        req: &NewRequest<'_>,
        state: &str,
        owner: Option<&str>,
        build: impl FnOnce(&str) -> Result<String>,
    ) -> Result<(i64, String, String)> {
        let c = self.lock();
        let tx = Tx::immediate(&c)?;
        let (id, msgid, envelope) = insert_one(&tx, req, Start { state, owner, attempts: 0 }, &now_text(), build)?;
        tx.commit()?;
        Ok((id, msgid, envelope))
    }

    /// Commits a new request claimed by `owner` together with the start of its
    /// first attempt (a sync call about to send): one commit instead of two.
    /// `build` makes the envelope, as it will be sent, for the msgid. Returns the
    /// id, msgid, envelope and the row's timestamp.
    pub fn insert_sending(
        &self,
        req: &NewRequest<'_>,
        owner: &str,
        build: impl FnOnce(&str) -> Result<String>,
    ) -> Result<(i64, String, String, String)> {
        let c = self.lock();
        let tx = Tx::immediate(&c)?;
        let now = now_text();
        let start = Start { state: state::SENDING, owner: Some(owner), attempts: 1 };
        let (id, msgid, envelope) = insert_one(&tx, req, start, &now, build)?;
        exec(
            &tx,
            "INSERT INTO mi_attempt(request_id, attempt_no, msgid, started_at) VALUES (?1, 1, ?2, ?3)",
            params![id, msgid, now],
        )?;
        tx.commit()?;
        Ok((id, msgid, envelope, now))
    }

    /// Runs the operations of many threads in one write transaction (group
    /// commit). With a durable setting (FULL) the commit does not wait for the disk
    /// and `.1` is true: `sync_wal` is owed before anyone is told the work is kept,
    /// and the caller can commit the next batch while the disk flushes this one.
    /// `Err` means nothing of the batch was kept: the commit failed, or `f` failed
    /// and the transaction was rolled back.
    pub fn batch<R>(&self, f: impl FnOnce(&Batch<'_>) -> Result<R>) -> Result<(R, bool)> {
        let c = self.lock();
        let unsynced = self.durable_commits;
        if unsynced {
            exec(&c, "PRAGMA synchronous = NORMAL", [])?;
        }
        let out = Tx::immediate(&c).and_then(|tx| {
            let b = Batch { tx };
            let r = f(&b)?;
            b.tx.commit()?;
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

    /// `batch`, flushed before it returns.
    pub fn batch_synced<R>(&self, f: impl FnOnce(&Batch<'_>) -> Result<R>) -> Result<R> {
        let (r, owed) = self.batch(f)?;
        if owed {
            self.sync_wal()?;
        }
        Ok(r)
    }

    /// Flushes the WAL to disk: every commit made before this call is then as
    /// durable as a FULL commit (the WAL is what recovery replays).
    pub fn sync_wal(&self) -> Result<()> {
        #[cfg(test)]
        if self.fail_flushes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok() {
            return Err(Error::journal("the journal could not be flushed to disk: Input/output error (injected)"));
        }
        let mut wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        if wal.is_none() {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(self.wal_path())
                .map_err(|e| Error::journal(format!("cannot open the journal's WAL to flush it: {e}")))?;
            *wal = Some(f);
        }
        let f = wal.as_ref().expect("opened above");
        f.sync_data().map_err(|e| {
            Error::journal(format!("the journal could not be flushed to disk (the requests may not be kept): {e}"))
        })
    }

    /// Gives a request a fresh msgid for a resend the platform proved it never
    /// processed (it refused the first one); the old msgid stays on its attempt row.
    pub fn reassign_msgid(&self, id: i64, fixmedins_code: &str, node_id: u32) -> Result<String> {
        let c = self.lock();
        let tx = Tx::immediate(&c)?;
        let msgid = allocate_msgid(&tx, fixmedins_code, node_id)?;
        exec(&tx, "UPDATE mi_request SET msgid = ?2, updated_at = ?3 WHERE id = ?1", params![id, msgid, now_text()])?;
        tx.commit()?;
        Ok(msgid)
    }

    /// Records the start of an attempt: state `sending`, the envelope as it goes out.
    pub fn begin_attempt(&self, id: i64, msgid: &str, envelope: &str) -> Result<i64> {
        let c = self.lock();
        let tx = Tx::immediate(&c)?;
        let n = begin_in(&tx, id, msgid, envelope)?;
        tx.commit()?;
        Ok(n)
    }

    /// Records how an attempt ended and the request's final state, in one commit.
    pub fn finish(&self, id: i64, attempt: Option<(i64, &AttemptRecord)>, fin: &Final) -> Result<()> {
        let c = self.lock();
        let tx = Tx::immediate(&c)?;
        finish_in(&tx, id, attempt, fin)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a failed attempt that will be resent: state `retry_wait` until
    /// `next_at_ms`. With `keep_owner` the caller (a sync call sleeping through its
    /// backoff) keeps the claim; otherwise any worker may take it when due.
    pub fn retry_later(
        &self,
        id: i64,
        attempt: (i64, &AttemptRecord),
        last_error: &str,
        next_at_ms: i64,
        keep_owner: Option<&str>,
    ) -> Result<()> {
        let c = self.lock();
        let tx = Tx::immediate(&c)?;
        retry_in(&tx, id, attempt, last_error, next_at_ms, keep_owner)?;
        tx.commit()?;
        Ok(())
    }

    /// Takes back a request this owner left in `retry_wait` while it slept through
    /// the backoff (sync calls).
    pub fn reclaim(&self, id: i64, owner: &str) -> Result<()> {
        let c = self.lock();
        exec(
            &c,
            "UPDATE mi_request SET state = 'sending', updated_at = ?3 WHERE id = ?1 AND owner = ?2",
            params![id, owner, now_text()],
        )?;
        Ok(())
    }

    /// Claims the next request to send (highest priority, then oldest; `retry_wait`
    /// ones once due) for `owner`, in one atomic statement: two processes sharing the
    /// file never claim the same request.
    /// (Workers claim through [`Batch::claim_and_begin`]; this is for the tests.)
    #[cfg(test)]
    pub fn claim(&self, owner: &str, now_ms: i64) -> Result<Option<i64>> {
        let c = self.lock();
        Ok(row(&c, CLAIM, params![owner, now_ms, now_text()], |r| r.get(0)).optional()?)
    }

    /// Requests waiting to be sent (queued or waiting to retry).
    pub fn waiting(&self) -> Result<u64> {
        let c = self.lock();
        Ok(row(&c, "SELECT sum(n) FROM mi_state_count WHERE state IN ('queued', 'retry_wait')", [], |r| r.get(0))?)
    }

    /// Registers or refreshes this process's heartbeat.
    pub fn heartbeat(&self, owner: &str, now_ms: i64) -> Result<()> {
        let c = self.lock();
        exec(
            &c,
            "INSERT INTO mi_owner(owner, pid, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            params![owner, std::process::id(), now_text(), now_ms],
        )?;
        Ok(())
    }

    /// Takes over what dead processes (no heartbeat since `cutoff_ms`) left claimed.
    /// `decide` says what becomes of a request that may have been sent; requests
    /// claimed but provably not sent go back to the queue. One transaction, so two
    /// recovering processes never both take the same request.
    pub fn recover(
        &self,
        me: &str,
        cutoff_ms: i64,
        decide: impl Fn(&RequestRow) -> Recovery,
    ) -> Result<Vec<(i64, Recovery)>> {
        self.take_over_where(
            "r.owner IS NOT NULL AND r.owner != ?1
             AND NOT EXISTS (SELECT 1 FROM mi_owner o WHERE o.owner = r.owner AND o.heartbeat_at >= ?2)",
            params![me, cutoff_ms],
            &decide,
        )
    }

    /// Gives up a request this process claimed but can no longer drive (its worker
    /// failed mid-send): the same rules as for a dead process's requests.
    pub fn abandon(
        &self,
        id: i64,
        owner: &str,
        decide: impl Fn(&RequestRow) -> Recovery,
    ) -> Result<Vec<(i64, Recovery)>> {
        self.take_over_where("r.id = ?1 AND r.owner = ?2", params![id, owner], &decide)
    }

    /// Applies the recovery rules to the claimed requests matching `condition`, in one
    /// transaction.
    fn take_over_where(
        &self,
        condition: &str,
        args: impl rusqlite::Params,
        decide: &dyn Fn(&RequestRow) -> Recovery,
    ) -> Result<Vec<(i64, Recovery)>> {
        let c = self.lock();
        let tx = Tx::immediate(&c)?;
        let orphans: Vec<(i64, String, bool)> = {
            let mut st = tx.prepare(&format!("{ORPHANS} AND {condition}"))?;
            let rows = st.query_map(args, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        let done = take_over(&tx, orphans, decide)?;
        tx.commit()?;
        Ok(done)
    }

    /// Deletes finished requests created before `before` (journal time text),
    /// never unfinished or uncertain ones, and owners silent for a day.
    pub fn purge(&self, before: &str, owners_before_ms: i64) -> Result<usize> {
        let c = self.lock();
        let tx = Tx::immediate(&c)?;
        let n = exec(
            &tx,
            "DELETE FROM mi_request
              WHERE state IN ('succeeded', 'business_error', 'failed', 'reversed') AND created_at < ?1",
            [before],
        )?;
        exec(&tx, "DELETE FROM mi_owner WHERE heartbeat_at < ?1", [owners_before_ms])?;
        tx.commit()?;
        Ok(n)
    }

    /// Links a reversal to its original, both ways.
    pub fn link_reversal(&self, original: i64, reversal: i64) -> Result<()> {
        let c = self.lock();
        exec(
            &c,
            "UPDATE mi_request SET reversed_by = ?2, updated_at = ?3 WHERE id = ?1",
            params![original, reversal, now_text()],
        )?;
        exec(&c, "UPDATE mi_request SET reversal_of = ?1 WHERE id = ?2", params![original, reversal])?;
        Ok(())
    }

    /// The platform confirmed a reversal: the original is `reversed`, its result kept.
    pub fn mark_reversed(&self, original: i64) -> Result<()> {
        let c = self.lock();
        exec(
            &c,
            "UPDATE mi_request SET state = 'reversed', updated_at = ?2 WHERE id = ?1",
            params![original, now_text()],
        )?;
        Ok(())
    }

    pub fn request(&self, id: i64) -> Result<Option<RequestRow>> {
        read_row(&self.lock(), id)
    }

    /// Ids of requests in a state, oldest first.
    pub fn ids_in_state(&self, state: &str) -> Result<Vec<i64>> {
        let c = self.lock();
        let mut st = c.prepare("SELECT id FROM mi_request WHERE state = ?1 ORDER BY id")?;
        let ids = st.query_map([state], |r| r.get(0))?.collect::<std::result::Result<Vec<i64>, _>>()?;
        Ok(ids)
    }

    /// What an operator asks first, read from the journal alone (any process's work):
    /// the oldest unfinished request, the last success and failure. Index lookups
    /// only: as fast with a million requests as with a thousand.
    pub fn health(&self) -> Result<Health> {
        let c = self.lock();
        let oldest_unfinished: Option<String> = row(&c, OLDEST_UNFINISHED, [], |r| r.get(0)).optional()?;
        let last_success_at: Option<String> =
            row(&c, "SELECT last_at FROM mi_state_count WHERE state = 'succeeded'", [], |r| r.get(0))
                .optional()?
                .flatten();
        let last_error: Option<(String, String, String)> =
            row(&c, LAST_FAILURE, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        Ok(Health { oldest_unfinished, last_success_at, last_error, bytes: size(&self.path) + size(&self.wal_path()) })
    }

    /// (p50, p99) in ms of the last 1,000 answered attempts of any process. It reads
    /// those attempt rows, so it is for operators' tools, not for `mi_get_status`
    /// (which has the process's own figures in memory).
    pub fn recent_latency(&self) -> Result<(Option<i64>, Option<i64>)> {
        let c = self.lock();
        let mut lat: Vec<i64> = c
            .prepare("SELECT latency_ms FROM mi_attempt WHERE latency_ms IS NOT NULL ORDER BY id DESC LIMIT 1000")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        lat.sort_unstable();
        Ok((crate::stats::nearest_rank(&lat, 0.5), crate::stats::nearest_rank(&lat, 0.99)))
    }

    /// Whether a write transaction can be taken now (not locked, not read-only).
    pub fn check_writable(&self) -> Result<()> {
        let c = self.lock();
        // Dropped uncommitted: rolled back.
        let _tx = Tx::immediate(&c)?;
        Ok(())
    }

    /// The request submitted from a source (a drop-box file), if any.
    pub fn by_source(&self, source: &str) -> Result<Option<i64>> {
        let c = self.lock();
        Ok(row(&c, "SELECT id FROM mi_request WHERE source = ?1", [source], |r| r.get(0)).optional()?)
    }

    /// Requests matching an operator's filter, newest first.
    pub fn find(&self, f: &Filter) -> Result<Vec<RequestRow>> {
        let c = self.lock();
        let mut st = c.prepare(
            "SELECT id FROM mi_request
              WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR infno = ?2)
                AND (?3 IS NULL OR (created_at >= ?3 AND created_at < date(?3, '+1 day'))) AND (?4 IS NULL OR msgid = ?4)
              ORDER BY id DESC LIMIT ?5",
        )?;
        let ids: Vec<i64> = st
            .query_map(params![f.state, f.infno, f.date, f.msgid, f.limit], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        ids.into_iter().filter_map(|id| read_row(&c, id).transpose()).collect()
    }

    /// Requests created on the days `from` to `to` (`yyyy-MM-dd`, inclusive), oldest first.
    pub fn between(&self, from: &str, to: &str) -> Result<Vec<RequestRow>> {
        let c = self.lock();
        let ids: Vec<i64> = c
            .prepare(
                "SELECT id FROM mi_request WHERE created_at >= ?1 AND created_at < date(?2, '+1 day') ORDER BY id",
            )?
            .query_map(params![from, to], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        ids.into_iter().filter_map(|id| read_row(&c, id).transpose()).collect()
    }

    /// The attempts of a request, oldest first: (no, msgid, started, outcome, http, infcode, err_msg, latency).
    pub fn attempts(&self, id: i64) -> Result<Vec<AttemptRow>> {
        let c = self.lock();
        let mut st = c.prepare(
            "SELECT attempt_no, msgid, started_at, coalesce(outcome, 'in flight'), http_status, infcode,
                    coalesce(err_msg, ''), latency_ms
               FROM mi_attempt WHERE request_id = ?1 ORDER BY attempt_no",
        )?;
        let rows = st
            .query_map([id], |r| {
                Ok(AttemptRow {
                    attempt_no: r.get(0)?,
                    msgid: r.get(1)?,
                    started_at: r.get(2)?,
                    outcome: r.get(3)?,
                    http_status: r.get(4)?,
                    infcode: r.get(5)?,
                    err_msg: r.get(6)?,
                    latency_ms: r.get(7)?,
                })
            })?
            .collect::<std::result::Result<_, _>>()?;
        Ok(rows)
    }

    pub fn counts_by_state(&self) -> Result<Vec<(String, i64)>> {
        let c = self.lock();
        // Kept by triggers (migration 0003): no scan of the requests.
        let mut st = c.prepare_cached("SELECT state, n FROM mi_state_count WHERE n > 0 ORDER BY state")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    }

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

    pub fn signin_put(&self, code: &str, opter: &str, date: &str, sign_no: &str, request_id: i64) -> Result<()> {
        let c = self.lock();
        exec(
            &c,
            "INSERT INTO mi_signin(fixmedins_code, opter, sign_date, sign_no, sign_time, request_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(fixmedins_code, opter, sign_date) DO UPDATE
               SET sign_no = excluded.sign_no, sign_time = excluded.sign_time, request_id = excluded.request_id",
            params![code, opter, date, sign_no, now_text(), request_id],
        )?;
        Ok(())
    }

    /// Forgets an operator's sign-in of a day (after 9002 or a rejected sign_no).
    pub fn signin_forget(&self, code: &str, opter: &str, date: &str) -> Result<()> {
        let c = self.lock();
        exec(
            &c,
            "DELETE FROM mi_signin WHERE fixmedins_code = ?1 AND opter = ?2 AND sign_date = ?3",
            params![code, opter, date],
        )?;
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(c) = self.checkpointer.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            c.stop();
        }
    }
}

/// One write transaction shared by the operations of many threads (see
/// [`Journal::batch`]). Each operation runs in a savepoint: one that fails is
/// undone alone and the others are kept.
pub struct Batch<'c> {
    tx: Tx<'c>,
}

impl Batch<'_> {
    fn isolated<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        savepoint(&self.tx, "op", f)?
    }

    /// New `queued` requests for built envelopes (their msgid is set at send
    /// time), msgids allocated together. Each item with a caller-given msgid
    /// succeeds or fails on its own (a duplicate fails only its item).
    pub fn insert(&self, items: &[(NewRequest<'_>, String)]) -> Result<Vec<Result<(i64, String)>>> {
        self.isolated(|c| insert_rows(c, items))
    }

    /// `insert` without a savepoint of its own, for a batch of nothing else: when
    /// it fails, the caller must fail the whole batch (return its error).
    pub fn insert_whole(&self, items: &[(NewRequest<'_>, String)]) -> Result<Vec<Result<(i64, String)>>> {
        insert_rows(&self.tx, items)
    }

    /// As [`Journal::finish`].
    pub fn finish(&self, id: i64, attempt: Option<(i64, &AttemptRecord)>, fin: &Final) -> Result<()> {
        self.isolated(|c| finish_in(c, id, attempt, fin))
    }

    /// As [`Journal::retry_later`].
    pub fn retry_later(
        &self,
        id: i64,
        attempt: (i64, &AttemptRecord),
        last_error: &str,
        next_at_ms: i64,
        keep_owner: Option<&str>,
    ) -> Result<()> {
        self.isolated(|c| retry_in(c, id, attempt, last_error, next_at_ms, keep_owner))
    }

    /// Claims the next request (as [`Journal::claim`]) and, when `prepare` gives what its
    /// attempt needs, begins that attempt in the same commit: a worker's claim and
    /// the record of its send cost one commit, not two. `prepare` says whether the
    /// resend needs a fresh msgid and makes the envelope for the msgid; when it
    /// gives nothing (the operator's sign-in is not at hand) or its envelope fails,
    /// the request is only claimed. Returns the row as it now is, and the begun
    /// attempt's number and envelope.
    pub fn claim_and_begin<F>(
        &self,
        owner: &str,
        now_ms: i64,
        ids: (&str, u32),
        prepare: impl FnOnce(&RequestRow) -> Option<(bool, F)>,
    ) -> Result<Option<Claim>>
    where
        F: FnOnce(&str) -> Result<String>,
    {
        self.isolated(|c| claim_begin_in(c, owner, now_ms, ids, prepare))
    }
}

/// A claimed request as it now is, and the attempt begun with the claim: its number
/// and envelope.
pub type Claim = (RequestRow, Option<(i64, String)>);

/// The journal's answer to "is it healthy?" (see [`Journal::health`]).
#[derive(Debug, Clone)]
pub struct Health {
    pub oldest_unfinished: Option<String>,
    pub last_success_at: Option<String>,
    /// (when, infno, message) of the latest failure.
    pub last_error: Option<(String, String, String)>,
    /// The journal file and its WAL, in bytes.
    pub bytes: u64,
}

/// An operator's filter over requests.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<String>,
    pub infno: Option<String>,
    /// `yyyy-MM-dd` of creation.
    pub date: Option<String>,
    pub msgid: Option<String>,
    pub limit: i64,
}

/// One attempt as the journal holds it.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub attempt_no: i64,
    pub msgid: String,
    pub started_at: String,
    pub outcome: String,
    pub http_status: Option<i64>,
    pub infcode: Option<i64>,
    pub err_msg: String,
    pub latency_ms: Option<i64>,
}

/// What recovery does with a request a dead process may have sent.
#[derive(Debug, Clone)]
pub enum Recovery {
    /// Send it (again): it was not sent, or it is safe to resend.
    Requeue,
    /// It may have been processed and must not be resent.
    Uncertain(Final),
}

/// Applies the recovery rules to requests whose sender is gone: (id, state, whether
/// an attempt was begun and not finished).
fn take_over(
    tx: &rusqlite::Connection,
    orphans: Vec<(i64, String, bool)>,
    decide: &dyn Fn(&RequestRow) -> Recovery,
) -> Result<Vec<(i64, Recovery)>> {
    let now = now_text();
    let mut done = Vec::new();
    for (id, st, in_flight) in orphans {
        // Waiting to retry, or claimed but no attempt begun: provably not in flight.
        let what = if st == state::RETRY_WAIT || !in_flight {
            Recovery::Requeue
        } else {
            let row = read_row(tx, id)?.ok_or_else(|| Error::journal(format!("request {id} vanished")))?;
            decide(&row)
        };
        exec(
            tx,
            "UPDATE mi_attempt SET finished_at = ?2, outcome = 'interrupted',
                    err_msg = 'the process sending it stopped before an answer came'
              WHERE request_id = ?1 AND finished_at IS NULL",
            params![id, now],
        )?;
        match &what {
            Recovery::Requeue => exec(
                tx,
                "UPDATE mi_request SET owner = NULL, updated_at = ?2,
                        state = CASE WHEN state = 'retry_wait' OR attempts > 0 THEN 'retry_wait' ELSE 'queued' END,
                        next_at = CASE WHEN state = 'retry_wait' THEN next_at WHEN attempts > 0 THEN 0 ELSE NULL END
                  WHERE id = ?1",
                params![id, now],
            )?,
            Recovery::Uncertain(fin) => exec(
                tx,
                "UPDATE mi_request SET state = ?2, mi_code = ?3, result = ?4, last_error = ?5, owner = NULL,
                        next_at = NULL, updated_at = ?6
                  WHERE id = ?1",
                params![id, fin.state, fin.code.as_i32(), fin.result, fin.last_error, now],
            )?,
        };
        done.push((id, what));
    }
    Ok(done)
}

/// Runs `f` in a savepoint named `name`: what it changed is undone when it fails.
/// The outer `Err` is the savepoint itself failing; the inner one is `f`'s.
fn savepoint<T>(c: &Connection, name: &str, f: impl FnOnce(&Connection) -> Result<T>) -> Result<Result<T>> {
    exec(c, &format!("SAVEPOINT {name}"), [])?;
    let r = f(c);
    if r.is_err() {
        exec(c, &format!("ROLLBACK TO {name}"), [])?;
    }
    exec(c, &format!("RELEASE {name}"), [])?;
    Ok(r)
}

/// New `queued` rows for built envelopes, their msgids allocated together.
fn insert_rows(tx: &Connection, items: &[(NewRequest<'_>, String)]) -> Result<Vec<Result<(i64, String)>>> {
    let mut fresh = Vec::new();
    if let Some((first, _)) = items.iter().find(|(r, _)| r.caller_msgid.is_none()) {
        let need = items.iter().filter(|(r, _)| r.caller_msgid.is_none()).count();
        fresh = allocate_msgids(tx, first.fixmedins_code, first.node_id, need)?;
    }
    let mut fresh = fresh.into_iter();
    let now = now_text();
    let mut out = Vec::with_capacity(items.len());
    for (req, envelope) in items {
        match req.caller_msgid {
            None => {
                let msgid = fresh.next().expect("one msgid allocated per item without one");
                let id = insert_row(tx, req, Start::QUEUED, &msgid, envelope, &now)?;
                out.push(Ok((id, msgid)));
            }
            Some(m) => {
                // A caller's msgid may repeat one already used: keep that failure to its item.
                let id = savepoint(tx, "item", |c| insert_row(c, req, Start::QUEUED, m, envelope, &now))?;
                out.push(id.map(|id| (id, m.to_string())));
            }
        }
    }
    Ok(out)
}

/// Ends an attempt (if one was begun) and gives the request its final state.
fn finish_in(tx: &Connection, id: i64, attempt: Option<(i64, &AttemptRecord)>, fin: &Final) -> Result<()> {
    let now = now_text();
    if let Some((n, a)) = attempt {
        end_attempt(tx, id, n, a, &now)?;
    }
    exec(
        tx,
        "UPDATE mi_request SET state = ?2, mi_code = ?3, result = ?4, last_error = ?5, updated_at = ?6,
                owner = NULL, next_at = NULL
         WHERE id = ?1",
        params![id, fin.state, fin.code.as_i32(), fin.result, fin.last_error, now],
    )?;
    Ok(())
}

/// Ends an attempt and leaves the request waiting to be resent at `next_at_ms`.
fn retry_in(
    tx: &Connection,
    id: i64,
    attempt: (i64, &AttemptRecord),
    last_error: &str,
    next_at_ms: i64,
    keep_owner: Option<&str>,
) -> Result<()> {
    let now = now_text();
    end_attempt(tx, id, attempt.0, attempt.1, &now)?;
    exec(
        tx,
        "UPDATE mi_request SET state = 'retry_wait', last_error = ?2, next_at = ?3, owner = ?4, updated_at = ?5
         WHERE id = ?1",
        params![id, last_error, next_at_ms, keep_owner, now],
    )?;
    Ok(())
}

/// The body of [`Journal::claim_and_begin`], inside the caller's transaction.
fn claim_begin_in<F>(
    tx: &Connection,
    owner: &str,
    now_ms: i64,
    ids: (&str, u32),
    prepare: impl FnOnce(&RequestRow) -> Option<(bool, F)>,
) -> Result<Option<Claim>>
where
    F: FnOnce(&str) -> Result<String>,
{
    // Nothing claimed: the transaction wrote nothing and is rolled back on drop.
    let Some(id) = row(tx, CLAIM, params![owner, now_ms, now_text()], |r| r.get::<_, i64>(0)).optional()? else {
        return Ok(None);
    };
    let mut r = read_row(tx, id)?.ok_or_else(|| Error::journal(format!("request {id} vanished")))?;
    let mut begun = None;
    if let Some((fresh, make)) = prepare(&r) {
        let msgid = if fresh { allocate_msgid(tx, ids.0, ids.1)? } else { r.msgid.clone() };
        if let Ok(envelope) = make(&msgid) {
            let n = begin_in(tx, id, &msgid, &envelope)?;
            r.msgid = msgid;
            r.attempts = n;
            r.envelope = envelope.clone();
            begun = Some((n, envelope));
        }
    }
    Ok(Some((r, begun)))
}

/// A new row under the caller's msgid or a freshly allocated one; `build` makes
/// the envelope for the msgid.
fn insert_one(
    tx: &rusqlite::Connection,
    req: &NewRequest<'_>,
    start: Start<'_>,
    now: &str,
    build: impl FnOnce(&str) -> Result<String>,
) -> Result<(i64, String, String)> {
    let msgid = match req.caller_msgid {
        Some(m) => m.to_string(),
        None => allocate_msgid(tx, req.fixmedins_code, req.node_id)?,
    };
    let envelope = build(&msgid)?;
    let id = insert_row(tx, req, start, &msgid, &envelope, now)?;
    Ok((id, msgid, envelope))
}

/// How a new row starts: its state, who claimed it, how many attempts are begun.
struct Start<'a> {
    state: &'a str,
    owner: Option<&'a str>,
    attempts: i64,
}

impl Start<'_> {
    const QUEUED: Start<'static> = Start { state: state::QUEUED, owner: None, attempts: 0 };
}

fn insert_row(
    tx: &rusqlite::Connection,
    req: &NewRequest<'_>,
    start: Start<'_>,
    msgid: &str,
    envelope: &str,
    now: &str,
) -> Result<i64> {
    let mut st = tx.prepare_cached(
        "INSERT INTO mi_request(msgid, infno, mode, priority, state, envelope, owner, reversal_of, source,
                                created_at, updated_at, attempts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
    )?;
    let inserted = st.execute(params![
        msgid,
        req.infno,
        req.mode,
        req.priority,
        start.state,
        envelope,
        start.owner,
        req.reversal_of,
        req.source,
        now,
        start.attempts
    ]);
    if let Err(rusqlite::Error::SqliteFailure(f, msg)) = &inserted {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            if msg.as_deref().is_some_and(|m| m.contains("source")) {
                return Err(Error::invalid(format!("{} was already submitted", req.source.unwrap_or(""))));
            }
            return Err(Error::invalid(format!("msgid {msgid} was already used: a msgid must never repeat")));
        }
    }
    inserted?;
    Ok(tx.last_insert_rowid())
}

/// Marks a request `sending` under `msgid` with `envelope` as it goes out, and adds
/// its attempt row; returns the attempt's number.
fn begin_in(tx: &Connection, id: i64, msgid: &str, envelope: &str) -> Result<i64> {
    let now = now_text();
    // msgid is set only when it changes: setting it rewrites its index entry.
    let n: i64 = row(
        tx,
        "UPDATE mi_request SET state = 'sending', attempts = attempts + 1, envelope = ?3, updated_at = ?4, next_at = NULL
         WHERE id = ?1 AND msgid = ?2 RETURNING attempts",
        params![id, msgid, envelope, now],
        |r| r.get(0),
    )
    .optional()?
    .map_or_else(
        || {
            row(
                tx,
                "UPDATE mi_request SET state = 'sending', attempts = attempts + 1, msgid = ?2, envelope = ?3,
                        updated_at = ?4, next_at = NULL
                 WHERE id = ?1 RETURNING attempts",
                params![id, msgid, envelope, now],
                |r| r.get(0),
            )
        },
        Ok,
    )?;
    exec(
        tx,
        "INSERT INTO mi_attempt(request_id, attempt_no, msgid, started_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, n, msgid, now],
    )?;
    Ok(n)
}

fn end_attempt(tx: &rusqlite::Connection, id: i64, n: i64, a: &AttemptRecord, now: &str) -> Result<()> {
    exec(
        tx,
        "UPDATE mi_attempt SET finished_at = ?3, outcome = ?4, http_status = ?5, infcode = ?6,
                err_msg = ?7, response = ?8, latency_ms = ?9
         WHERE request_id = ?1 AND attempt_no = ?2",
        params![id, n, now, a.outcome, a.http_status, a.infcode, a.err_msg, a.response, a.latency_ms],
    )?;
    Ok(())
}

fn read_row(c: &rusqlite::Connection, id: i64) -> Result<Option<RequestRow>> {
    Ok(row(
        c,
        "SELECT id, msgid, infno, mode, priority, state, envelope, attempts, mi_code, result, last_error,
                reversal_of, reversed_by, created_at, updated_at
         FROM mi_request WHERE id = ?1",
        [id],
        |r| {
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
        },
    )
    .optional()?)
}

/// The next msgid of an institution code + node, inside the caller's write
/// transaction, so two processes sharing the file never hand out the same one.
fn allocate_msgid(tx: &rusqlite::Connection, fixmedins_code: &str, node_id: u32) -> Result<String> {
    Ok(allocate_msgids(tx, fixmedins_code, node_id, 1)?.remove(0))
}

/// `n` consecutive msgids, with one read and one write of the counter.
fn allocate_msgids(tx: &rusqlite::Connection, fixmedins_code: &str, node_id: u32, n: usize) -> Result<Vec<String>> {
    let prefix = format!("{fixmedins_code}{node_id:02}");
    let prev: Option<(String, u32)> = tx
        .prepare_cached("SELECT second, counter FROM mi_msgid_seq WHERE prefix = ?1")?
        .query_row([&prefix], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let mut state = prev.and_then(|(s, counter)| msgid::parse_second(&s).map(|second| SeqState { second, counter }));
    let now = crate::protocol::now_local();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let next = msgid::next(state, now);
        out.push(msgid::format(fixmedins_code, node_id, next));
        state = Some(next);
    }
    if let Some(last) = state {
        tx.prepare_cached(
            "INSERT INTO mi_msgid_seq(prefix, second, counter) VALUES (?1, ?2, ?3)
             ON CONFLICT(prefix) DO UPDATE SET second = excluded.second, counter = excluded.counter",
        )?
        .execute(params![prefix, msgid::format_second(last.second), last.counter])?;
    }
    Ok(out)
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
mod tests {
    use super::*;

    fn new_req<'a>(msgid: Option<&'a str>) -> NewRequest<'a> {
        NewRequest {
            infno: "1101",
            mode: "sync",
            priority: 0,
            caller_msgid: msgid,
            fixmedins_code: "H44030000001",
            node_id: 3,
            reversal_of: None,
            source: None,
        }
    }

    #[test]
    fn msgids_never_repeat_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/j.db");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2 {
            let j = Journal::open(&p, "full").unwrap();
            assert_eq!(j.schema_version().unwrap(), MIGRATIONS.len() as i64);
            for _ in 0..150 {
                let (_, m, env) = j
                    .insert_request(&new_req(None), state::QUEUED, None, |m| Ok(format!("{{\"msgid\":\"{m}\"}}")))
                    .unwrap();
                assert_eq!(m.len(), 30);
                assert_eq!(&m[26..28], "03");
                assert!(env.contains(&m));
                assert!(seen.insert(m));
            }
        }
    }

    #[test]
    fn duplicate_caller_msgid_is_invalid_argument() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db"), "full").unwrap();
        let m = "H44030000001202611271015309999";
        j.insert_request(&new_req(Some(m)), state::QUEUED, None, |_| Ok("{}".into())).unwrap();
        let e = j.insert_request(&new_req(Some(m)), state::QUEUED, None, |_| Ok("{}".into())).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    }

    #[test]
    fn attempts_and_final_state_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db"), "normal").unwrap();
        let (id, m, env) = j.insert_request(&new_req(None), state::QUEUED, None, |_| Ok("{}".into())).unwrap();
        assert_eq!(j.begin_attempt(id, &m, &env).unwrap(), 1);
        assert_eq!(j.request(id).unwrap().unwrap().state, "sending");
        let a = AttemptRecord {
            outcome: "ok",
            http_status: Some(200),
            infcode: Some(0),
            latency_ms: 5,
            ..Default::default()
        };
        let fin = Final { state: state::SUCCEEDED, code: Code::Ok, result: "{\"infcode\":0}".into(), last_error: None };
        j.finish(id, Some((1, &a)), &fin).unwrap();
        let r = j.request(id).unwrap().unwrap();
        assert_eq!((r.state.as_str(), r.attempts, r.mi_code), ("succeeded", 1, Some(0)));
        assert_eq!(j.counts_by_state().unwrap(), vec![("succeeded".to_string(), 1)]);
        let c = j.lock();
        let (infcode, lat): (i64, i64) = c
            .query_row("SELECT infcode, latency_ms FROM v_mi_result WHERE request_id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((infcode, lat), (0, 5));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        Connection::open(&p).unwrap().execute_batch("PRAGMA user_version = 99").unwrap();
        assert_eq!(Journal::open(&p, "full").err().unwrap().code, Code::Journal);
    }

    #[test]
    fn claims_follow_priority_and_dead_owners_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db"), "normal").unwrap();
        let mut ids = Vec::new();
        for prio in [0, 5, 5, 1] {
            let mut r = new_req(None);
            r.priority = prio;
            ids.push(j.insert_request(&r, state::QUEUED, None, |_| Ok("{}".into())).unwrap().0);
        }
        let order: Vec<i64> = (0..4).map(|_| j.claim("A", 0).unwrap().unwrap()).collect();
        assert_eq!(order, vec![ids[1], ids[2], ids[3], ids[0]]);
        assert_eq!(j.claim("B", 0).unwrap(), None, "nothing claimed twice");
        // A's heartbeat is old: B takes over. One was sent (an attempt begun), three not.
        j.heartbeat("A", 1000).unwrap();
        j.heartbeat("B", 10_000).unwrap();
        let row = j.request(ids[1]).unwrap().unwrap();
        j.begin_attempt(ids[1], &row.msgid, "{}").unwrap();
        let uncertain = Final { state: state::UNCERTAIN, code: Code::Uncertain, result: "{}".into(), last_error: None };
        let done = j.recover("B", 5000, |_| Recovery::Uncertain(uncertain.clone())).unwrap();
        assert_eq!(done.len(), 4);
        assert_eq!(j.request(ids[1]).unwrap().unwrap().state, "uncertain");
        for id in [ids[0], ids[2], ids[3]] {
            assert_eq!(j.request(id).unwrap().unwrap().state, "queued");
        }
        assert!(j.recover("B", 5000, |_| Recovery::Requeue).unwrap().is_empty(), "taken over once");
    }

    #[test]
    fn retention_purges_only_old_finished_requests() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db"), "normal").unwrap();
        let mut ids = Vec::new();
        for st in [state::SUCCEEDED, state::FAILED, state::UNCERTAIN, state::QUEUED, state::SUCCEEDED] {
            ids.push(j.insert_request(&new_req(None), st, None, |_| Ok("{}".into())).unwrap().0);
        }
        // The first four are old; the last is new.
        j.lock()
            .execute("UPDATE mi_request SET created_at = '2020-01-01 00:00:00.000' WHERE id <= ?1", [ids[3]])
            .unwrap();
        assert_eq!(j.purge("2021-01-01 00:00:00.000", 0).unwrap(), 2);
        let left: Vec<String> = ids.iter().filter_map(|id| j.request(*id).unwrap()).map(|r| r.state).collect();
        assert_eq!(left, vec!["uncertain", "queued", "succeeded"]);
    }

    /// The counts the triggers keep equal a full count after every kind of change:
    /// inserts, claims, retries, finishes, recovery and purge.
    #[test]
    fn state_counts_follow_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db"), "normal").unwrap();
        let scan = |j: &Journal| -> Vec<(String, i64)> {
            let c = j.lock();
            let mut st = c.prepare("SELECT state, count(*) FROM mi_request GROUP BY state ORDER BY state").unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(|r| r.unwrap()).collect()
        };
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.push(j.insert_request(&new_req(None), state::QUEUED, None, |_| Ok("{}".into())).unwrap().0);
        }
        let (sid, _, _, _) = j.insert_sending(&new_req(None), "A", |_| Ok("{}".into())).unwrap();
        assert_eq!(j.counts_by_state().unwrap(), scan(&j));
        let a = j.claim("A", 0).unwrap().unwrap();
        let b = j.claim("A", 0).unwrap().unwrap();
        j.begin_attempt(a, &j.request(a).unwrap().unwrap().msgid, "{}").unwrap();
        let rec = AttemptRecord { outcome: "never_sent", ..Default::default() };
        j.retry_later(a, (1, &rec), "down", i64::MAX, None).unwrap();
        let ok = Final { state: state::SUCCEEDED, code: Code::Ok, result: "{}".into(), last_error: None };
        j.finish(sid, Some((1, &rec)), &ok).unwrap();
        let bad =
            Final { state: state::FAILED, code: Code::Network, result: "{}".into(), last_error: Some("x".into()) };
        j.finish(b, None, &bad).unwrap();
        assert_eq!(j.counts_by_state().unwrap(), scan(&j));
        assert_eq!(j.waiting().unwrap(), 5, "four queued and one waiting to retry");
        let h = j.health().unwrap();
        assert!(h.last_success_at.is_some());
        assert_eq!(h.last_error.map(|e| e.2), Some("x".to_string()));
        j.heartbeat("A", 0).unwrap();
        j.recover("B", 10, |_| Recovery::Requeue).unwrap();
        j.lock().execute("UPDATE mi_request SET created_at = '2020-01-01 00:00:00.000'", []).unwrap();
        assert_eq!(j.purge("2021-01-01 00:00:00.000", 0).unwrap(), 2);
        assert_eq!(j.counts_by_state().unwrap(), scan(&j));
        assert_eq!(j.waiting().unwrap(), 5);
    }

    /// The statements a status, a claim and a retention pass run never scan the
    /// requests table: they stay as fast with a million rows as with a thousand.
    #[test]
    fn lookups_use_indexes_not_scans() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db"), "normal").unwrap();
        let c = j.lock();
        for sql in &[
            CLAIM,
            &format!("{ORPHANS} AND r.owner IS NOT NULL AND r.owner != ?1"),
            OLDEST_UNFINISHED,
            LAST_FAILURE,
            "SELECT sum(n) FROM mi_state_count WHERE state IN ('queued', 'retry_wait')",
            "DELETE FROM mi_request WHERE state IN ('succeeded', 'business_error', 'failed', 'reversed') AND created_at < ?1",
            "SELECT id, msgid, result FROM mi_request WHERE id = ?1",
        ] {
            let n = sql.matches('?').count();
            let args: Vec<i64> = vec![0; n.min(3)];
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            for line in &plan {
                assert!(
                    !(line.contains("mi_request") && line.starts_with("SCAN") && !line.contains("USING")),
                    "{sql}\nscans the table: {plan:?}"
                );
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        let _j = Journal::open(&p, "full").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
