//! One bridge node: worker threads that claim rows and run them through the SDK,
//! and a keeper thread that renews the leases of the rows the workers hold, takes
//! over rows whose node stopped, and brings `uncertain` rows up to date when this
//! node's journal learns how they ended. Each thread holds its own connection; a
//! database that goes away is waited out (the outcome in hand is kept and written
//! when it is back), and an outcome the database refuses to store is written in a
//! plainer form rather than retried for ever.

use super::{dialect::ERR_MSG_CHARS, Connect, Database, Param, Sql};
use crate::error::{Code, Error, Result};
use crate::journal::State;
use crate::sdk::Sdk;
use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a node runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub sql: Sql,
    /// This node's name in the rows it claims (`node`): unique per process.
    pub node: String,
    pub workers: usize,
    /// How long an idle worker waits before it looks for new rows again.
    pub poll: Duration,
}

/// A row to run: claimed new, or taken over (`follow`: the journal's request for
/// it, already sent or sending, whose outcome is awaited instead of a new call).
struct Job {
    id: i64,
    infno: String,
    input: String,
    follow: Option<i64>,
}

/// What becomes of a row.
#[derive(Clone)]
enum Write {
    Finish(Finish),
    /// Never journaled, so never sent: back to `new` for any node.
    Release,
    /// The outcome is not known here now (stopping, the journal unreadable): the row
    /// stays `sending`, its lease lapses, and the node that takes it over finds it
    /// in the journal.
    Leave,
}

#[derive(Clone)]
struct Finish {
    state: String,
    mi_code: i32,
    output: Option<String>,
    err_msg: Option<String>,
    journal_request_id: Option<i64>,
    msgid: Option<String>,
    /// How plain the text already is: 0 as given, 1 non-ASCII escaped, 2 no output.
    plainness: u8,
}

impl Finish {
    /// The same outcome in a form more databases store, or `None` when there is
    /// none plainer: first every non-ASCII character escaped (`\uXXXX`: the output
    /// is still the same JSON; a GBK column cannot hold every character the platform
    /// may answer with), then without the output (the journal keeps it).
    fn plainer(&self, node: &str, why: &Error) -> Option<Finish> {
        let mut f = self.clone();
        match self.plainness {
            0 => {
                f.output = f.output.as_deref().map(ascii_json);
                // Escaped, a Chinese message grows six-fold: kept within its column.
                f.err_msg = f.err_msg.as_deref().map(|m| capped(&ascii_json(m), 1900));
            }
            1 => {
                f.output = None;
                let said: String = why.message.chars().take(300).collect();
                f.err_msg = Some(ascii_json(&format!(
                    "the outcome could not be stored in this database ({said}); `mi-sdk show {}` on node {node} has it",
                    self.journal_request_id.unwrap_or(0)
                )));
            }
            _ => return None,
        }
        f.plainness += 1;
        Some(f)
    }
}

/// `text` with every non-ASCII character written as a JSON `\uXXXX` escape: valid
/// JSON stays the same JSON, and plain text stays readable to a JSON parser.
fn ascii_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// `text` cut to at most `max` characters, never inside a `\uXXXX` escape.
fn capped(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    // An escape is six characters from its backslash; `text` is ASCII here.
    if let Some(b) = text[..end].rfind('\\') {
        if end - b < 6 {
            end = b;
        }
    }
    text[..end].to_string()
}

struct Ctx<'a> {
    sdk: &'a Sdk,
    connect: &'a Connect,
    opts: &'a Options,
    stop: &'a AtomicBool,
    database_id: String,
    journal_id: String,
    finished: AtomicU64,
    /// Whether the database was last seen failing (said once per outage).
    down: AtomicBool,
    /// The rows this node's workers hold: the only ones it renews, and never
    /// taken over by itself. A row claimed by a commit whose outcome was lost is
    /// not here: its lease lapses and it is taken over as any other.
    held: Mutex<BTreeSet<i64>>,
    /// Workers still running: the keeper renews until the last one has stopped.
    live: AtomicUsize,
    /// When the keeper last reached the database: workers claim nothing new once
    /// that is half a lease ago (their claims could lapse unseen).
    reached: Mutex<Instant>,
    /// Where the next look at `uncertain` rows starts (an id).
    refresh_after: AtomicI64,
}

/// A row a worker holds, let go however its work ends.
struct Held<'c, 'a>(&'c Ctx<'a>, i64);

impl Drop for Held<'_, '_> {
    fn drop(&mut self) {
        self.0.let_go(self.1);
    }
}

/// Counts a worker while it runs.
struct Live<'a>(&'a AtomicUsize);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs a node until `stop` is set; returns how many rows it finished.
pub fn run(sdk: &Sdk, connect: &Connect, opts: &Options, stop: &AtomicBool) -> Result<u64> {
    let journal_id = sdk.journal_identity().ok_or_else(|| {
        Error::new(Code::Journal, "the journal has no name (mi_meta journal_id): open it with this version first")
    })?;
    let mut db = connect()?;
    let database_id = match db.query(&opts.sql.probe(), &[], 1) {
        Ok(rows) => rows.into_iter().next().and_then(|r| r.into_iter().next().flatten()),
        Err(e) => {
            return Err(Error::config(format!(
                "the bridge is not installed in this database ({} cannot be read: {}): run `mi-sdk bridge install`",
                opts.sql.names.meta(),
                e.message
            )))
        }
    }
    .ok_or_else(|| Error::config(format!("{} has no database_id: reinstall the bridge", opts.sql.names.meta())))?;
    db.rollback();
    drop(db);
    let workers = opts.workers.max(1);
    let ctx = Ctx {
        sdk,
        connect,
        opts,
        stop,
        database_id,
        journal_id,
        finished: AtomicU64::new(0),
        down: AtomicBool::new(false),
        held: Mutex::new(BTreeSet::new()),
        live: AtomicUsize::new(workers),
        reached: Mutex::new(Instant::now()),
        refresh_after: AtomicI64::new(0),
    };
    log::info!(
        "bridge node {} on {} ({} workers, prefix {}, lease {} s), journal {}",
        opts.node,
        opts.sql.dialect.name(),
        workers,
        opts.sql.names.prefix(),
        opts.sql.lease_s,
        ctx.journal_id
    );
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let rx = rx.clone();
            let ctx = &ctx;
            s.spawn(move || {
                let _live = Live(&ctx.live);
                ctx.worker(&rx)
            });
        }
        ctx.keeper(&tx);
    });
    let n = ctx.finished.load(Ordering::Relaxed);
    log::info!("bridge node {} stopped; {n} rows finished", opts.node);
    Ok(n)
}

/// Runs one statement as a transaction of its own: the rows it changed once
/// committed; rolled back when the statement or the commit fails.
fn change(db: &mut dyn Database, sql: &str, params: &[Param]) -> Result<u64> {
    let r = db.execute(sql, params).and_then(|n| db.commit().map(|()| n));
    if r.is_err() {
        db.rollback();
    }
    r
}

fn int(rows: &[super::Row], row: usize, col: usize) -> Option<i64> {
    rows.get(row)?.get(col)?.as_deref()?.trim().parse().ok()
}

fn text(rows: &[super::Row], row: usize, col: usize) -> String {
    rows.get(row).and_then(|r| r.get(col)).cloned().flatten().unwrap_or_default()
}

impl Ctx<'_> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.opts.sql.lease_s.into())
    }

    /// The connection a thread holds, opened when first needed after a failure,
    /// with statements bounded well inside a lease.
    fn db<'c>(&self, conn: &'c mut Option<Box<dyn Database>>) -> Result<&'c mut Box<dyn Database>> {
        if conn.is_none() {
            let mut db = (self.connect)()?;
            db.set_timeout((self.opts.sql.lease_s / 3).max(3));
            *conn = Some(db);
        }
        Ok(conn.as_mut().expect("just opened"))
    }

    /// Sleeps up to `d`, waking early when the node stops.
    fn nap(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopping() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
    }

    fn source(&self, id: i64) -> String {
        format!("bridge:{}:{}:{id}", self.database_id, self.opts.sql.names.table())
    }

    fn hold(&self, id: i64) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
    }

    fn let_go(&self, id: i64) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    fn holds(&self, id: i64) -> bool {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).contains(&id)
    }

    /// Says a database failure once per outage, drops the connection, and waits.
    fn trouble(&self, conn: &mut Option<Box<dyn Database>>, e: &Error, backoff: &mut Duration) {
        if !self.down.swap(true, Ordering::AcqRel) {
            log::error!("bridge: the database failed: {}; waiting for it (nothing is lost)", e.message);
        } else {
            log::debug!("bridge: the database still fails: {}", e.message);
        }
        *conn = None;
        // Not cut short by a stop: the keeper goes on renewing while workers finish.
        std::thread::sleep(*backoff);
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
    }

    fn fine(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            log::warn!("bridge: the database answers again");
        }
    }

    /// Workers claim nothing new while the keeper cannot renew.
    fn fenced(&self) -> bool {
        self.reached.lock().unwrap_or_else(|p| p.into_inner()).elapsed() > self.lease() / 2
    }

    fn worker(&self, adopted: &Receiver<Job>) {
        let mut conn = None;
        let mut backoff = Duration::from_millis(200);
        while !self.stopping() {
            let job = match adopted.try_recv() {
                Ok(j) => j,
                Err(_) if self.fenced() => {
                    self.nap(self.opts.poll);
                    continue;
                }
                Err(_) => match self.claim(&mut conn) {
                    Ok(Some(j)) => j,
                    Ok(None) => {
                        self.nap(self.opts.poll);
                        continue;
                    }
                    Err(e) => {
                        self.trouble(&mut conn, &e, &mut backoff);
                        continue;
                    }
                },
            };
            backoff = Duration::from_millis(200);
            let _held = Held(self, job.id);
            // Told to stop while claiming: nothing is sent any more.
            let w = if self.stopping() && job.follow.is_none() { Write::Release } else { self.process(&job) };
            let released = matches!(w, Write::Release);
            self.settle(&mut conn, job.id, w, &mut backoff);
            if released {
                // The SDK was busy or its journal failing: not straight back to it.
                self.nap(self.opts.poll.max(Duration::from_millis(500)));
            }
        }
    }

    /// Writes what became of a row: kept until the database takes it, written
    /// plainer when the database refuses it.
    fn settle(&self, conn: &mut Option<Box<dyn Database>>, id: i64, w: Write, backoff: &mut Duration) {
        if matches!(w, Write::Leave) {
            return;
        }
        loop {
            let e = match self.store(conn, id, w.clone()) {
                Ok(()) => return,
                Err(e) => e,
            };
            if e.code == super::REFUSED {
                log::error!(
                    "bridge: row {id}: the database refuses to record it ({}); it is left to its lease and the \
                     journal",
                    e.message
                );
                return;
            }
            if self.stopping() {
                log::warn!(
                    "bridge: row {id} not written before stopping ({}): the journal keeps its outcome for the node \
                     that takes it over",
                    e.message
                );
                return;
            }
            self.trouble(conn, &e, backoff);
        }
    }

    /// One try at writing a row: plainer and plainer while the database refuses
    /// the values (never for a database that fails otherwise: a deadlock or a lost
    /// connection is tried again as it was).
    fn store(&self, conn: &mut Option<Box<dyn Database>>, id: i64, mut w: Write) -> Result<()> {
        loop {
            let e = match self.write(conn, id, &w) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let plainer = match &w {
                Write::Finish(f) if e.code == super::REFUSED => f.plainer(&self.opts.node, &e),
                _ => None,
            };
            match plainer {
                Some(p) => {
                    log::error!(
                        "bridge: row {id}: the database refused its outcome ({}); writing it plainer",
                        e.message
                    );
                    w = Write::Finish(p);
                }
                None => return Err(e),
            }
        }
    }

    /// Claims the next new row for this node.
    fn claim(&self, conn: &mut Option<Box<dyn Database>>) -> Result<Option<Job>> {
        let db = self.db(conn)?;
        let sql = &self.opts.sql;
        let rows = match db.query(&sql.claim(1), &[], 1) {
            Ok(r) => r,
            Err(e) => {
                db.rollback();
                return Err(e);
            }
        };
        let Some(id) = int(&rows, 0, 0) else {
            db.rollback();
            self.fine();
            return Ok(None);
        };
        let params = [Param::Text(Some(self.opts.node.clone())), Param::Text(Some(self.journal_id.clone()))];
        // A commit whose outcome is lost (an error here) may have claimed the row:
        // not held, its lease lapses and it is taken over like any other.
        if change(db.as_mut(), &sql.take(&[id]), &params)? != 1 {
            return Ok(None);
        }
        self.fine();
        self.hold(id);
        Ok(Some(Job { id, infno: text(&rows, 0, 1), input: text(&rows, 0, 2), follow: None }))
    }

    /// Runs a row through the SDK (or follows its journaled request).
    fn process(&self, job: &Job) -> Write {
        let source = self.source(job.id);
        let jid = match job.follow {
            Some(jid) => jid,
            None => match self.sdk.call_sync_from(&job.infno, &job.input, &source) {
                Ok(out) => out.request_id,
                Err(e) if e.code == Code::InvalidArgument => match self.sdk.by_source(&source) {
                    // Journaled before (this journal sent it): its outcome is the row's.
                    Ok(Some(jid)) => jid,
                    Ok(None) => return self.refused(job, &e),
                    // Whether it was journaled is unknown: never called refused.
                    Err(je) => {
                        log::error!("bridge: row {}: the journal cannot be read ({je}); left to its lease", job.id);
                        return Write::Leave;
                    }
                },
                // Busy, stopping, a journal failure: nothing was journaled, so nothing sent.
                Err(e) if matches!(e.code, Code::Busy | Code::Shutdown | Code::Journal) => {
                    log::warn!("bridge: row {} put back unsent: {}", job.id, e.message);
                    return Write::Release;
                }
                Err(e) => return self.refused(job, &e),
            },
        };
        match self.final_of(jid, true) {
            Some(f) => Write::Finish(f),
            None => Write::Leave,
        }
    }

    /// A row the SDK refused before journaling it (unknown infno, not JSON, too big).
    fn refused(&self, job: &Job, e: &Error) -> Write {
        log::warn!(
            "bridge: row {} ({}) refused: {}",
            job.id,
            job.infno.chars().take(16).collect::<String>(),
            e.message
        );
        Write::Finish(Finish {
            state: State::Failed.as_str().into(),
            mi_code: e.code.as_i32(),
            output: Some(Sdk::error_output(e)),
            err_msg: Some(e.message.chars().take(ERR_MSG_CHARS).collect()),
            journal_request_id: None,
            msgid: None,
            plainness: 0,
        })
    }

    /// The row's outcome from the journal's request `jid`, once final (`wait`: until
    /// then, or until the node stops).
    fn final_of(&self, jid: i64, wait: bool) -> Option<Finish> {
        loop {
            match (self.sdk.get_request(jid), self.sdk.get_result(jid)) {
                (Ok(rec), Ok(out)) if out.code != Code::Pending => {
                    let err_msg = (rec.state != State::Succeeded).then(|| {
                        let v: Value = serde_json::from_str(&out.output).unwrap_or(Value::Null);
                        let m = v["err_msg"].as_str().map(str::to_owned).unwrap_or_else(|| out.output.clone());
                        m.chars().take(ERR_MSG_CHARS).collect()
                    });
                    return Some(Finish {
                        state: rec.state.as_str().into(),
                        mi_code: out.code.as_i32(),
                        output: Some(out.output),
                        err_msg,
                        journal_request_id: Some(jid),
                        msgid: Some(rec.msgid),
                        plainness: 0,
                    });
                }
                (Err(e), _) | (_, Err(e)) => log::error!("bridge: journal request {jid}: {e}"),
                _ => {}
            }
            if !wait || self.stopping() {
                return None;
            }
            self.nap(Duration::from_millis(100));
        }
    }

    fn write(&self, conn: &mut Option<Box<dyn Database>>, id: i64, w: &Write) -> Result<()> {
        let sql = &self.opts.sql;
        let db = self.db(conn)?;
        let n = match w {
            Write::Leave => return Ok(()),
            Write::Release => {
                change(db.as_mut(), &sql.release(), &[Param::Int(Some(id)), Param::Text(Some(self.opts.node.clone()))])?
            }
            Write::Finish(f) => change(db.as_mut(), &sql.finish(), &self.finish_params(id, f))?,
        };
        self.fine();
        if n == 0 {
            log::warn!(
                "bridge: row {id}: nothing written: another node holds it now (a query it sends again), or this \
                 outcome was written before"
            );
        } else if matches!(w, Write::Finish(_)) {
            self.finished.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn finish_params(&self, id: i64, f: &Finish) -> Vec<Param> {
        vec![
            Param::Text(Some(f.state.clone())),
            Param::Int(Some(f.mi_code.into())),
            Param::Text(f.output.clone()),
            Param::Text(f.err_msg.clone()),
            Param::Int(f.journal_request_id),
            Param::Text(f.msgid.clone()),
            Param::Int(Some(id)),
            Param::Text(Some(self.opts.node.clone())),
            Param::Text(Some(self.journal_id.clone())),
        ]
    }

    /// Leases, take-overs and uncertain rows, until the node stops and its last
    /// worker has finished (its rows renewed to the end).
    fn keeper(&self, adopted: &Sender<Job>) {
        let lease = self.lease();
        let (renew_every, scan_every, refresh_every) = (lease / 3, lease / 2, Duration::from_secs(10));
        let mut conn = None;
        let mut backoff = Duration::from_millis(200);
        let start = Instant::now();
        // (Never an instant before `start`: Windows' clock starts at boot.)
        let (mut renewed, mut scanned, mut refreshed): (Option<Instant>, _, _) = (None, start, start);
        // Since when this node has reached the database without a break.
        let mut connected: Option<Instant> = None;
        loop {
            let stopping = self.stopping();
            if stopping && self.live.load(Ordering::Acquire) == 0 {
                break;
            }
            let now = Instant::now();
            let mut r = Ok(());
            if renewed.is_none_or(|at| now >= at + renew_every) {
                r = self.renew(&mut conn).map(|()| {
                    renewed = Some(now);
                    *self.reached.lock().unwrap_or_else(|p| p.into_inner()) = now;
                    connected.get_or_insert(now);
                });
            }
            // Rows of other nodes only after a whole lease of reaching the database:
            // after an outage every node's leases have lapsed, and each needs that
            // long to renew its own.
            let settled = connected.is_some_and(|c| now.duration_since(c) >= lease);
            if !stopping && r.is_ok() && settled && now >= scanned + scan_every {
                r = self.take_over(&mut conn, adopted).map(|()| scanned = now);
            }
            if !stopping && r.is_ok() && now >= refreshed + refresh_every {
                r = self.refresh(&mut conn).map(|()| refreshed = now);
            }
            match r {
                Ok(()) => {
                    backoff = Duration::from_millis(200);
                    std::thread::sleep(Duration::from_millis(if stopping { 50 } else { 250 }));
                }
                Err(e) => {
                    connected = None;
                    self.trouble(&mut conn, &e, &mut backoff);
                }
            }
        }
    }

    /// Renews the rows the workers hold (or, holding none, makes sure the
    /// database answers).
    fn renew(&self, conn: &mut Option<Box<dyn Database>>) -> Result<()> {
        let ids: Vec<i64> = self.held.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
        let db = self.db(conn)?;
        if !ids.is_empty() {
            return change(db.as_mut(), &self.opts.sql.renew(&ids), &[Param::Text(Some(self.opts.node.clone()))])
                .map(|_| ());
        }
        let r = db.query(&self.opts.sql.probe(), &[], 1).map(|_| ());
        db.rollback();
        r
    }

    /// Rows whose node stopped renewing: followed or sent again when that is safe,
    /// else `uncertain`.
    fn take_over(&self, conn: &mut Option<Box<dyn Database>>, adopted: &Sender<Job>) -> Result<()> {
        let sql = &self.opts.sql;
        let db = self.db(conn)?;
        // A few at a time: renewals come between rounds.
        let rows = db.query(&sql.expired(), &[], 20);
        db.rollback();
        let rows = rows?;
        for i in 0..rows.len() {
            let (Some(id), infno, input, node, journal) =
                (int(&rows, i, 0), text(&rows, i, 1), text(&rows, i, 2), text(&rows, i, 3), text(&rows, i, 4))
            else {
                continue;
            };
            if self.holds(id) {
                continue;
            }
            // This journal knows whether it was sent: follow it, or send it (never
            // sent); when it cannot be asked now, the row waits for the next round.
            let same = journal == self.journal_id;
            let follow = if same {
                match self.sdk.by_source(&self.source(id)) {
                    Ok(f) => f,
                    Err(e) => {
                        log::error!("bridge: row {id}: the journal cannot be read ({e}); taken over later");
                        continue;
                    }
                }
            } else {
                None
            };
            if same || self.sdk.resendable(&infno) {
                let params = [
                    Param::Text(Some(self.opts.node.clone())),
                    Param::Text(Some(self.journal_id.clone())),
                    Param::Int(Some(id)),
                    Param::Text(Some(node.clone())),
                ];
                if change(db.as_mut(), &sql.adopt(), &params)? == 1 {
                    log::warn!(
                        "bridge: row {id} ({infno}) taken over from node {node}, which stopped renewing its claim: {}",
                        match follow {
                            Some(jid) => format!("following journal request {jid}"),
                            None if same => "never sent, sending it".into(),
                            None => "a query, sending it again".into(),
                        }
                    );
                    self.hold(id);
                    let _ = adopted.send(Job { id, infno, input, follow });
                }
            } else {
                let msg = format!(
                    "node {node} stopped renewing its claim while this {infno} may have been sent (journal {journal}); \
                     it is not sent again: a bridge node on that workstation's journal writes its true outcome here \
                     once the journal knows it (mi-sdk reconcile there finds it in the platform's books)"
                );
                let params = [
                    Param::Int(Some(Code::Uncertain.as_i32().into())),
                    Param::Text(Some(msg.clone())),
                    Param::Int(Some(id)),
                    Param::Text(Some(node.clone())),
                ];
                if change(db.as_mut(), &sql.abandon(), &params)? == 1 {
                    log::warn!("bridge: row {id}: {msg}");
                }
            }
        }
        self.fine();
        Ok(())
    }

    /// `uncertain` rows this node's journal sent, written again once the journal
    /// knows better (reconciliation, a reversal, a node that was only slow); a page
    /// at a time, round and round.
    fn refresh(&self, conn: &mut Option<Box<dyn Database>>) -> Result<()> {
        const PAGE: usize = 100;
        let after = self.refresh_after.load(Ordering::Relaxed);
        let rows = {
            let db = self.db(conn)?;
            let params = [Param::Text(Some(self.journal_id.clone())), Param::Int(Some(after))];
            let rows = db.query(&self.opts.sql.uncertain(), &params, PAGE);
            db.rollback();
            rows?
        };
        let last = (0..rows.len()).filter_map(|i| int(&rows, i, 0)).max().unwrap_or(0);
        self.refresh_after.store(if rows.len() < PAGE { 0 } else { last }, Ordering::Relaxed);
        for i in 0..rows.len() {
            let Some(id) = int(&rows, i, 0) else { continue };
            let Ok(Some(jid)) = self.sdk.by_source(&self.source(id)) else { continue };
            if let Some(f) = self.final_of(jid, false).filter(|f| f.state != State::Uncertain.as_str()) {
                log::warn!("bridge: row {id} was uncertain; its journal request {jid} is now {}", f.state);
                match self.store(conn, id, Write::Finish(f)) {
                    Ok(()) => {}
                    // This row's values, not the database: the others go on.
                    Err(e) if e.code == super::REFUSED => {
                        log::error!("bridge: row {id}: the database refuses its outcome ({})", e.message)
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// What `mi-sdk bridge run` says over the config's `bridge` section.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub dsn: Option<String>,
    pub dialect: Option<String>,
    pub prefix: Option<String>,
    pub workers: Option<u32>,
    pub lease_s: Option<u32>,
    pub poll_ms: Option<u64>,
    pub node: Option<String>,
}

/// The connection string: given, else the config's.
pub fn dsn_of(cfg: &crate::config::Bridge, over: &Overrides) -> Result<String> {
    over.dsn.clone().or_else(|| Some(cfg.dsn.clone()).filter(|d| !d.trim().is_empty())).ok_or_else(|| {
        Error::config("no connection string: give --dsn (or MI_BRIDGE_DSN), or set bridge.dsn in the config")
    })
}

/// How a node runs, from the config's `bridge` section and the overrides; the
/// dialect, when neither names it, as the database says.
pub fn options(cfg: &crate::config::Bridge, over: &Overrides, db: &mut dyn Database) -> Result<Options> {
    let named = over.dialect.clone().or_else(|| Some(cfg.dialect.clone()).filter(|d| !d.is_empty()));
    let dialect = super::dialect_of(db, named.as_deref().map(super::Dialect::parse).transpose()?)?;
    db.rollback();
    let prefix = over.prefix.as_deref().unwrap_or(&cfg.prefix);
    let node = over.node.clone().or_else(|| Some(cfg.node.clone()).filter(|n| !n.is_empty()));
    Ok(Options {
        sql: Sql { dialect, names: super::Names::new(prefix)?, lease_s: over.lease_s.unwrap_or(cfg.lease_s) },
        node: node_name(node.as_deref()),
        workers: over.workers.unwrap_or(cfg.workers) as usize,
        poll: Duration::from_millis(over.poll_ms.unwrap_or(cfg.poll_ms)),
    })
}

/// A bridge node on the config (and the overrides) until `stop` is set: connects,
/// starts the SDK, tells `started`, runs, shuts the SDK down; returns how many rows
/// it finished. With `wait_for_database` (a service starting with Windows, maybe
/// before its database) a database that cannot be reached yet is waited for.
pub fn serve_until(
    cfg: crate::config::Config,
    open: super::Opener,
    over: &Overrides,
    stop: &AtomicBool,
    wait_for_database: bool,
    started: impl FnOnce(&Options),
) -> Result<u64> {
    let dsn = dsn_of(&cfg.bridge, over)?;
    let connect = move || open(&dsn);
    let mut said = false;
    let opts = loop {
        let ready = connect().and_then(|mut db| {
            let o = options(&cfg.bridge, over, db.as_mut())?;
            super::installed(db.as_mut(), &o.sql)?;
            Ok(o)
        });
        match ready {
            Ok(o) => break o,
            Err(e) if wait_for_database && e.code == Code::Network => {
                if !std::mem::replace(&mut said, true) {
                    log::warn!("bridge: waiting for the database: {}", e.message);
                }
                let until = Instant::now() + Duration::from_secs(5);
                while Instant::now() < until {
                    if stop.load(Ordering::Acquire) {
                        return Ok(0);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Err(e) => return Err(e),
        }
    };
    let sdk = Sdk::start(cfg)?;
    started(&opts);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let node = s.spawn(|| {
            let r = run(&sdk, &connect, &opts, stop);
            done.store(true, Ordering::Release);
            r
        });
        while !stop.load(Ordering::Acquire) && !done.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Told to stop: calls in flight get the services' grace, then are broken
        // off as the SDK's shutdown does (a settlement left uncertain, never resent),
        // so that the workers write their rows and the node ends in bounded time.
        sdk.shutdown(crate::sdk::SERVICE_SHUTDOWN);
        node.join().unwrap_or_else(|_| Err(Error::new(Code::Internal, "the bridge node failed")))
    })
}

/// `mi-sdk bridge run`: [`serve_until`] Ctrl-C or SIGTERM.
pub fn serve(
    cfg: crate::config::Config,
    open: super::Opener,
    over: &Overrides,
    started: impl FnOnce(&Options),
) -> Result<u64> {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::Release))
        .map_err(|e| Error::config(format!("cannot watch for Ctrl-C / SIGTERM: {e}")))?;
    serve_until(cfg, open, over, &stop, false, started)
}

/// This process's node name: `NAME#pid.xxxx` (NAME given, else the computer's),
/// so that a restarted node is a new claimant and never mistaken for its old self.
pub fn node_name(given: Option<&str>) -> String {
    let host = given.map(str::to_owned).unwrap_or_else(|| {
        std::env::var("COMPUTERNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into())
    });
    let host: String = host.chars().filter(|c| !c.is_control()).take(60).collect();
    format!("{host}#{}.{}", std::process::id(), &crate::crypto::nonce()[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_text_is_the_same_json_and_cut_between_escapes() {
        let json = r#"{"err_msg":"查无此人𠀀","n":1}"#;
        let ascii = ascii_json(json);
        assert!(ascii.is_ascii());
        assert!(ascii.contains(r"\ud840\udc00"), "{ascii}");
        let back: Value = serde_json::from_str(&ascii).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(json).unwrap());
        let long = ascii_json(&"张".repeat(1000));
        let cut = capped(&long, 1900);
        assert!(cut.len() <= 1900 && cut.len() % 6 == 0, "{}", cut.len());
        assert_eq!(capped("short", 1900), "short");
    }

    #[test]
    fn an_outcome_gets_plainer_twice_then_no_more() {
        let f = Finish {
            state: "business_error".into(),
            mi_code: -8,
            output: Some(r#"{"err_msg":"查无此人𠀀"}"#.into()),
            err_msg: Some("查无此人𠀀".into()),
            journal_request_id: Some(42),
            msgid: Some("M1".into()),
            plainness: 0,
        };
        let why = Error::new(crate::bridge::REFUSED, "database: Incorrect string value");
        let p1 = f.plainer("ws-1#9.abcd", &why).unwrap();
        assert!(p1.output.as_deref().unwrap().is_ascii() && p1.err_msg.as_deref().unwrap().is_ascii());
        assert_eq!(p1.msgid.as_deref(), Some("M1"));
        let p2 = p1.plainer("ws-1#9.abcd", &why).unwrap();
        assert_eq!(p2.output, None);
        let said = p2.err_msg.unwrap();
        assert!(said.contains("mi-sdk show 42") && said.contains("ws-1#9.abcd"), "{said}");
        assert!(p2.plainness == 2 && Finish { plainness: 2, ..f }.plainer("n", &why).is_none());
    }
}
