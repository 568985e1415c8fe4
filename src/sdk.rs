//! `Sdk`: the one object behind the C ABI, and the Rust API it adapts.

use crate::call::{sdk_output, Core, Outcome};
use crate::config::Config;
use crate::engine::writer::Writer;
use crate::engine::Engine;
use crate::error::{Code, Error, Result};
use crate::journal::{state, Journal};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Sdk {
    core: Arc<Core>,
    engine: Mutex<Engine>,
    closing: AtomicBool,
    in_flight: AtomicUsize,
}

/// Counts a call in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sdk {
    /// Opens the journal, starts logging, takes over what dead processes left, and
    /// starts the journal writer and the workers (which drive whatever is queued).
    pub fn start(cfg: Config) -> Result<Sdk> {
        crate::logging::init(&cfg)?;
        let journal =
            Journal::open_waiting(&cfg.journal_path(), &cfg.journal.synchronous, cfg.journal.busy_timeout_ms)?;
        journal.start_checkpointer()?;
        let owner = format!("{}-{}", std::process::id(), &crate::transport::gateway::nonce()[..8]);
        let workers = cfg.workers;
        let core = Arc::new(Core::new(cfg, journal, owner)?);
        // A new core: the cell is empty, so this always takes.
        let _ = core.writer.set(Writer::start(core.clone()));
        let engine = Engine::start(core.clone(), workers);
        log::info!(
            "mi_sdk {} started as {}: journal {}, {} workers, {} requests waiting",
            crate::VERSION,
            core.owner,
            core.journal.path().display(),
            workers,
            core.queued.load(Ordering::Acquire)
        );
        Ok(Sdk { core, engine: Mutex::new(engine), closing: AtomicBool::new(false), in_flight: AtomicUsize::new(0) })
    }

    pub fn config(&self) -> &Config {
        &self.core.cfg
    }

    fn enter(&self) -> Result<InFlight<'_>> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(&self.in_flight);
        if self.closing.load(Ordering::Acquire) {
            return Err(Error::new(Code::Shutdown, "the SDK is shutting down"));
        }
        Ok(guard)
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A synchronous call. `Err` means nothing was journaled (bad input, journal
    /// failure); every journaled call ends in an `Outcome`.
    pub fn call_sync(&self, infno: &str, input: &str) -> Result<Outcome> {
        let _in = self.enter()?;
        let call = self.core.parse(infno, input)?;
        self.core.call_sync(infno, &call)
    }

    /// 9101: sends the file at `path` to the upload URL; the platform's answer names
    /// the `file_qury_no` it is kept under.
    pub fn upload_file(&self, path: &std::path::Path) -> Result<Outcome> {
        let _in = self.enter()?;
        let input = crate::files::upload_input(&self.core.cfg, path)?;
        self.core.call_sync(crate::files::UPLOAD, &crate::protocol::envelope::CallInput::of(input))
    }

    /// 9102: downloads a file (a zip stream) into `dest_dir` and unpacks it; the
    /// output lists the files written.
    pub fn download_file(&self, file_qury_no: &str, filename: &str, dest_dir: &std::path::Path) -> Result<Outcome> {
        let _in = self.enter()?;
        let input = crate::files::download_input(&self.core.cfg, file_qury_no, filename, dest_dir)?;
        self.core.call_sync(crate::files::DOWNLOAD, &crate::protocol::envelope::CallInput::of(input))
    }

    /// Commits a request (group commit) and queues it; returns its id.
    pub fn call_async(&self, infno: &str, input: &str, priority: i32) -> Result<i64> {
        self.call_async_from(infno, input, priority, None)
    }

    /// `call_async` for a request that comes from outside the ABI under a unique name
    /// (`source`, e.g. a drop-box file): the journal refuses the same source twice.
    pub fn call_async_from(&self, infno: &str, input: &str, priority: i32, source: Option<&str>) -> Result<i64> {
        let _in = self.enter()?;
        let call = self.core.parse(infno, input)?;
        self.core.submit(infno, call, priority, source)
    }

    /// The request submitted from `source`, if any.
    pub fn by_source(&self, source: &str) -> Result<Option<i64>> {
        self.core.journal.by_source(source)
    }

    pub fn get_result(&self, id: i64) -> Result<Outcome> {
        self.core.result_of(id)
    }

    pub fn get_request(&self, id: i64) -> Result<String> {
        self.core.record_of(id)
    }

    /// Sends 2601 for an uncertain or succeeded reversible request.
    pub fn reverse(&self, id: i64) -> Result<Outcome> {
        let _in = self.enter()?;
        self.core.reverse(id)
    }

    /// The status document of `mi_get_status`. It names no secret.
    pub fn status(&self) -> Result<String> {
        let cfg = &self.core.cfg;
        let mut counts = Map::new();
        for s in state::ALL {
            counts.insert(s.to_string(), json!(0));
        }
        for (s, n) in self.core.journal.counts_by_state()? {
            counts.insert(s, json!(n));
        }
        let (p50, p99, samples) = self.core.stats.percentiles();
        let opter = &cfg.institution.opter;
        let date = crate::protocol::signin::today();
        let signed_in = self.core.journal.signin_get(&cfg.institution.fixmedins_code, opter, &date)?.is_some();
        let engine = self.engine();
        let health = self.core.journal.health()?;
        let oldest_age_s = health.oldest_unfinished.as_deref().and_then(age_seconds);
        Ok(json!({
            "version": crate::VERSION,
            "abi_version": crate::ABI_VERSION,
            "fixmedins_code": cfg.institution.fixmedins_code,
            "node_id": cfg.node_id,
            "charset": cfg.charset,
            "gateway": {"url": strip_userinfo(&cfg.gateway.url), "profile": cfg.gateway.profile},
            "journal": cfg.journal_path().display().to_string(),
            "journal_bytes": health.bytes,
            "oldest_unfinished_at": health.oldest_unfinished,
            "oldest_unfinished_age_s": oldest_age_s,
            "last_error_at": health.last_error.as_ref().map(|e| e.0.clone()),
            "workers": engine.workers(),
            "workers_busy": engine.busy(),
            "queue_depth": self.core.queued.load(Ordering::Acquire).max(0),
            "queue_capacity": cfg.queue_capacity,
            "counts": Value::Object(counts),
            "last_success_at": self.core.stats.last_success_at(),
            "last_error": self.core.stats.last_error(),
            "sign_in": {"opter": opter, "opter_name": cfg.institution.opter_name, "sign_date": date, "signed_in": signed_in},
            "latency_ms": {"p50": p50, "p99": p99, "samples": samples},
            "uncertain_policy": cfg.retry.uncertain_policy,
            "shutting_down": self.closing.load(Ordering::Acquire),
        })
        .to_string())
    }

    /// Stops taking calls, waits up to `wait` for calls in flight, commits what was
    /// handed in, stops the workers and leaves queued requests for the next start.
    pub fn shutdown(&self, wait: Duration) {
        self.closing.store(true, Ordering::Release);
        let deadline = Instant::now() + wait;
        while self.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        // Workers first: their last outcomes go through the writer.
        self.engine().stop(deadline);
        if let Some(w) = self.core.writer.get() {
            w.stop();
        }
        log::info!("mi_sdk shut down");
    }

    /// The output for an error that left nothing in the journal.
    pub fn error_output(e: &Error) -> String {
        sdk_output(e.code, &e.message, "")
    }
}

/// Seconds since a journal timestamp (local time).
pub fn age_seconds(ts: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%.3f").ok()?;
    Some((crate::protocol::now_local() - t).num_seconds().max(0))
}

/// `http://user:pw@host/x` -> `http://host/x`: a URL may carry credentials.
pub fn strip_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
            let path = path.split('?').next().unwrap_or("");
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn userinfo_and_query_are_stripped() {
        assert_eq!(super::strip_userinfo("https://u:p@gw:8443/fsi/api?token=x"), "https://gw:8443/fsi/api");
        assert_eq!(super::strip_userinfo("http://gw/x"), "http://gw/x");
    }
}
