//! `Sdk`: the one object behind the C ABI, and the Rust API it adapts.

use crate::call::{sdk_output, Core, Outcome};
use crate::config::Config;
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

/// Counts a sync call in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sdk {
    /// Opens the journal, starts logging and the workers, and re-queues what an
    /// earlier `shutdown` left queued.
    pub fn start(cfg: Config) -> Result<Sdk> {
        crate::logging::init(&cfg)?;
        let journal = Journal::open(&cfg.journal_path(), &cfg.journal.synchronous)?;
        let (workers, capacity) = (cfg.workers, cfg.queue_capacity);
        let core = Arc::new(Core::new(cfg, journal));
        let engine = Engine::start(core.clone(), workers, capacity);
        let queued = core.journal.ids_in_state(state::QUEUED)?;
        for id in &queued {
            engine.resubmit(*id);
        }
        log::info!(
            "mi_sdk {} started: journal {}, {} workers, {} queued requests re-driven",
            crate::VERSION,
            core.journal.path().display(),
            workers,
            queued.len()
        );
        Ok(Sdk {
            core,
            engine: Mutex::new(engine),
            closing: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        })
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
        let (id, _) = self.core.journal_new(infno, &call, "sync", 0)?;
        Ok(self.core.execute(id))
    }

    /// Commits a request and queues it; returns its id.
    pub fn call_async(&self, infno: &str, input: &str, priority: i32) -> Result<i64> {
        let _in = self.enter()?;
        let call = self.core.parse(infno, input)?;
        let engine = self.engine();
        engine.reserve()?;
        match self.core.journal_new(infno, &call, "async", priority) {
            Ok((id, _)) => engine.submit(id).map(|_| id),
            Err(e) => {
                engine.release();
                Err(e)
            }
        }
    }

    pub fn get_result(&self, id: i64) -> Result<Outcome> {
        self.core.result_of(id)
    }

    pub fn get_request(&self, id: i64) -> Result<String> {
        self.core.record_of(id)
    }

    /// Reversal (2601) arrives with the delivery engine; until then it says so.
    pub fn reverse(&self, id: i64) -> Result<Outcome> {
        self.core
            .journal
            .request(id)?
            .ok_or_else(|| Error::new(Code::NotFound, format!("no request with id {id}")))?;
        Err(Error::invalid("mi_reverse is not yet supported by this version of mi_sdk; reverse with mi_call_sync(\"2601\", ...)"))
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
        let signed_in = self
            .core
            .journal
            .signin_get(&cfg.institution.fixmedins_code, opter, &date)?
            .is_some();
        let engine = self.engine();
        Ok(json!({
            "version": crate::VERSION,
            "abi_version": crate::ABI_VERSION,
            "fixmedins_code": cfg.institution.fixmedins_code,
            "node_id": cfg.node_id,
            "charset": cfg.charset,
            "gateway": {"url": strip_userinfo(&cfg.gateway.url), "profile": cfg.gateway.profile},
            "journal": cfg.journal_path().display().to_string(),
            "workers": engine.workers(),
            "queue_depth": engine.depth(),
            "queue_capacity": cfg.queue_capacity,
            "counts": Value::Object(counts),
            "last_success_at": self.core.stats.last_success_at(),
            "last_error": self.core.stats.last_error(),
            "sign_in": {"opter": opter, "opter_name": cfg.institution.opter_name, "sign_date": date, "signed_in": signed_in},
            "latency_ms": {"p50": p50, "p99": p99, "samples": samples},
            "shutting_down": self.closing.load(Ordering::Acquire),
        })
        .to_string())
    }

    /// Stops taking calls, waits up to `wait` for calls in flight, stops the workers
    /// and leaves queued requests for the next start.
    pub fn shutdown(&self, wait: Duration) {
        self.closing.store(true, Ordering::Release);
        let deadline = Instant::now() + wait;
        while self.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.engine().stop(deadline);
        log::info!("mi_sdk shut down");
    }

    /// The output for an error that left nothing in the journal.
    pub fn error_output(e: &Error) -> String {
        sdk_output(e.code, &e.message, "")
    }
}

/// `http://user:pw@host/x` -> `http://host/x`: a URL may carry credentials.
fn strip_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map(|(_, h)| h)
                .unwrap_or(authority);
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
        assert_eq!(
            super::strip_userinfo("https://u:p@gw:8443/fsi/api?token=x"),
            "https://gw:8443/fsi/api"
        );
        assert_eq!(super::strip_userinfo("http://gw/x"), "http://gw/x");
    }
}
