//! One bridge node: worker threads that claim rows and run them through the SDK,
//! and a keeper thread that renews this node's leases, takes over rows whose node
//! stopped, and brings `uncertain` rows up to date when this node's journal learns
//! how they ended. Each thread holds its own connection; a database that goes away
//! is waited out (the outcome in hand is kept and written when it is back).

use super::{dialect::ERR_MSG_CHARS, Connect, Database, Param, Sql};
use crate::error::{Code, Error, Result};
use crate::journal::State;
use crate::sdk::Sdk;
use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
enum Write {
    Finish(Finish),
    /// Never journaled, so never sent: back to `new` for any node.
    Release,
    /// Stopping before the outcome is known: the row stays `sending`, and whichever
    /// node takes it over finds it in the journal.
    Leave,
}

struct Finish {
    state: String,
    mi_code: i32,
    output: String,
    err_msg: Option<String>,
    journal_request_id: Option<i64>,
    msgid: Option<String>,
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
    let ctx = Ctx {
        sdk,
        connect,
        opts,
        stop,
        database_id,
        journal_id,
        finished: AtomicU64::new(0),
        down: AtomicBool::new(false),
    };
    log::info!(
        "bridge node {} on {} ({} workers, prefix {}, lease {} s), journal {}",
        opts.node,
        opts.sql.dialect.name(),
        opts.workers,
        opts.sql.names.prefix(),
        opts.sql.lease_s,
        ctx.journal_id
    );
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::scope(|s| {
        for _ in 0..opts.workers.max(1) {
            let rx = rx.clone();
            let ctx = &ctx;
            s.spawn(move || ctx.worker(&rx));
        }
        ctx.keeper(&tx);
    });
    let n = ctx.finished.load(Ordering::Relaxed);
    log::info!("bridge node {} stopped; {n} rows finished", opts.node);
    Ok(n)
}

/// The connection a thread holds, opened when first needed after a failure.
fn db<'c>(conn: &'c mut Option<Box<dyn Database>>, connect: &Connect) -> Result<&'c mut Box<dyn Database>> {
    if conn.is_none() {
        *conn = Some(connect()?);
    }
    Ok(conn.as_mut().expect("just opened"))
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

    /// Says a database failure once per outage, drops the connection, and waits.
    fn trouble(&self, conn: &mut Option<Box<dyn Database>>, e: &Error, backoff: &mut Duration) {
        if !self.down.swap(true, Ordering::AcqRel) {
            log::error!("bridge: the database failed: {}; waiting for it (nothing is lost)", e.message);
        } else {
            log::debug!("bridge: the database still fails: {}", e.message);
        }
        *conn = None;
        self.nap(*backoff);
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
    }

    fn fine(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            log::warn!("bridge: the database answers again");
        }
    }

    fn worker(&self, adopted: &Receiver<Job>) {
        let mut conn = None;
        let mut backoff = Duration::from_millis(200);
        while !self.stopping() {
            let job = match adopted.try_recv() {
                Ok(j) => j,
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
            let w = self.process(&job);
            // The outcome is kept until the database takes it.
            loop {
                match self.write(&mut conn, job.id, &w) {
                    Ok(()) => break,
                    Err(e) if self.stopping() => {
                        log::warn!(
                            "bridge: row {} not written before stopping ({}): the journal keeps its outcome for the \
                             next start",
                            job.id,
                            e.message
                        );
                        break;
                    }
                    Err(e) => self.trouble(&mut conn, &e, &mut backoff),
                }
            }
        }
    }

    /// Claims the next new row for this node.
    fn claim(&self, conn: &mut Option<Box<dyn Database>>) -> Result<Option<Job>> {
        let db = db(conn, self.connect)?;
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
        let taken = db.execute(
            &sql.take(&[id]),
            &[Param::Text(Some(self.opts.node.clone())), Param::Text(Some(self.journal_id.clone()))],
        );
        match taken.and_then(|n| db.commit().map(|()| n)) {
            Ok(1) => {
                self.fine();
                Ok(Some(Job { id, infno: text(&rows, 0, 1), input: text(&rows, 0, 2), follow: None }))
            }
            Ok(_) => {
                db.rollback();
                Ok(None)
            }
            Err(e) => {
                db.rollback();
                Err(e)
            }
        }
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
                    _ => return self.refused(job, &e),
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
            output: Sdk::error_output(e),
            err_msg: Some(e.message.chars().take(ERR_MSG_CHARS).collect()),
            journal_request_id: None,
            msgid: None,
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
                        output: out.output,
                        err_msg,
                        journal_request_id: Some(jid),
                        msgid: Some(rec.msgid),
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
        let db = db(conn, self.connect)?;
        let n = match w {
            Write::Leave => return Ok(()),
            Write::Release => {
                db.execute(&sql.release(), &[Param::Int(Some(id)), Param::Text(Some(self.opts.node.clone()))])
            }
            Write::Finish(f) => db.execute(&sql.finish(), &self.finish_params(id, f)),
        };
        match n.and_then(|n| db.commit().map(|()| n)) {
            Ok(n) => {
                self.fine();
                if n == 0 {
                    // Another node took it over meanwhile (a query it sent again).
                    log::warn!("bridge: row {id} was taken over by another node; its outcome there stands");
                } else if matches!(w, Write::Finish(_)) {
                    self.finished.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                db.rollback();
                Err(e)
            }
        }
    }

    fn finish_params(&self, id: i64, f: &Finish) -> Vec<Param> {
        vec![
            Param::Text(Some(f.state.clone())),
            Param::Int(Some(f.mi_code.into())),
            Param::Text(Some(f.output.clone())),
            Param::Text(f.err_msg.clone()),
            Param::Int(f.journal_request_id),
            Param::Text(f.msgid.clone()),
            Param::Int(Some(id)),
            Param::Text(Some(self.opts.node.clone())),
            Param::Text(Some(self.journal_id.clone())),
        ]
    }

    /// Leases, take-overs and uncertain rows, until the node stops.
    fn keeper(&self, adopted: &Sender<Job>) {
        let lease = Duration::from_secs(self.opts.sql.lease_s.max(3).into());
        let (renew_every, scan_every, refresh_every) = (lease / 3, lease / 2, Duration::from_secs(10));
        let mut conn = None;
        let mut backoff = Duration::from_millis(200);
        let start = Instant::now();
        // The first scan at once: rows a stopped node left wait no longer than needed.
        let (mut renewed, mut scanned, mut refreshed) = (start, start - scan_every, start - refresh_every);
        while !self.stopping() {
            let now = Instant::now();
            let mut r = Ok(());
            if now >= renewed + renew_every {
                r = self.renew(&mut conn).map(|()| renewed = now);
            }
            if r.is_ok() && now >= scanned + scan_every {
                r = self.take_over(&mut conn, adopted).map(|()| scanned = now);
            }
            if r.is_ok() && now >= refreshed + refresh_every {
                r = self.refresh(&mut conn).map(|()| refreshed = now);
            }
            match r {
                Ok(()) => {
                    backoff = Duration::from_millis(200);
                    self.nap(Duration::from_millis(250));
                }
                Err(e) => self.trouble(&mut conn, &e, &mut backoff),
            }
        }
    }

    fn renew(&self, conn: &mut Option<Box<dyn Database>>) -> Result<()> {
        let db = db(conn, self.connect)?;
        let r =
            db.execute(&self.opts.sql.renew(), &[Param::Text(Some(self.opts.node.clone()))]).and_then(|_| db.commit());
        if r.is_err() {
            db.rollback();
        }
        r
    }

    /// Rows whose node stopped renewing: followed or sent again when that is safe,
    /// else `uncertain`.
    fn take_over(&self, conn: &mut Option<Box<dyn Database>>, adopted: &Sender<Job>) -> Result<()> {
        let sql = &self.opts.sql;
        let db = db(conn, self.connect)?;
        let rows = db.query(&sql.expired(), &[], 200);
        db.rollback();
        let rows = rows?;
        for i in 0..rows.len() {
            let (Some(id), infno, input, node, journal) =
                (int(&rows, i, 0), text(&rows, i, 1), text(&rows, i, 2), text(&rows, i, 3), text(&rows, i, 4))
            else {
                continue;
            };
            // This journal knows whether it was sent: follow it, or send it (never sent).
            let follow =
                if journal == self.journal_id { self.sdk.by_source(&self.source(id)).ok().flatten() } else { None };
            if journal == self.journal_id || self.sdk.resendable(&infno) {
                let n = db.execute(
                    &sql.adopt(),
                    &[
                        Param::Text(Some(self.opts.node.clone())),
                        Param::Text(Some(self.journal_id.clone())),
                        Param::Int(Some(id)),
                        Param::Text(Some(node.clone())),
                    ],
                );
                match n.and_then(|n| db.commit().map(|()| n)) {
                    Ok(1) => {
                        log::warn!(
                            "bridge: row {id} ({infno}) taken over from node {node}, which stopped renewing its claim: {}",
                            match follow {
                                Some(jid) => format!("following journal request {jid}"),
                                None if journal == self.journal_id => "never sent, sending it".into(),
                                None => "a query, sending it again".into(),
                            }
                        );
                        let _ = adopted.send(Job { id, infno, input, follow });
                    }
                    Ok(_) => db.rollback(),
                    Err(e) => {
                        db.rollback();
                        return Err(e);
                    }
                }
            } else {
                let msg = format!(
                    "node {node} stopped renewing its claim while this {infno} may have been sent (journal {journal}); \
                     it is not sent again: reconciliation on that node's workstation (mi-sdk reconcile) tells \
                     whether the platform processed it"
                );
                let n = db.execute(
                    &sql.abandon(),
                    &[
                        Param::Int(Some(Code::Uncertain.as_i32().into())),
                        Param::Text(Some(msg.clone())),
                        Param::Int(Some(id)),
                        Param::Text(Some(node.clone())),
                    ],
                );
                match n.and_then(|n| db.commit().map(|()| n)) {
                    Ok(1) => log::warn!("bridge: row {id}: {msg}"),
                    Ok(_) => db.rollback(),
                    Err(e) => {
                        db.rollback();
                        return Err(e);
                    }
                }
            }
        }
        self.fine();
        Ok(())
    }

    /// `uncertain` rows this node's journal sent, written again once the journal
    /// knows better (reconciliation, a reversal, a node that was only slow).
    fn refresh(&self, conn: &mut Option<Box<dyn Database>>) -> Result<()> {
        let rows = {
            let db = db(conn, self.connect)?;
            let rows = db.query(&self.opts.sql.uncertain(), &[Param::Text(Some(self.journal_id.clone()))], 500);
            db.rollback();
            rows?
        };
        for i in 0..rows.len() {
            let Some(id) = int(&rows, i, 0) else { continue };
            let Ok(Some(jid)) = self.sdk.by_source(&self.source(id)) else { continue };
            if let Some(f) = self.final_of(jid, false).filter(|f| f.state != State::Uncertain.as_str()) {
                log::warn!("bridge: row {id} was uncertain; its journal request {jid} is now {}", f.state);
                self.write(conn, id, &Write::Finish(f))?;
            }
        }
        Ok(())
    }
}

/// `mi-sdk bridge run`: starts the SDK and runs a node until Ctrl-C or SIGTERM
/// (`started` is told once it runs); returns how many rows it finished.
pub fn serve(cfg: crate::config::Config, connect: &Connect, opts: &Options, started: impl FnOnce()) -> Result<u64> {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::Release))
        .map_err(|e| Error::config(format!("cannot watch for Ctrl-C / SIGTERM: {e}")))?;
    let sdk = Sdk::start(cfg)?;
    started();
    let r = run(&sdk, connect, opts, &stop);
    sdk.shutdown(crate::ops::dropbox::SHUTDOWN);
    r
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
