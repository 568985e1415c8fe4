//! `Sdk`: the one object behind the C ABI, and the Rust API it adapts. Its answers
//! are typed: an [`Outcome`] per call, a [`RequestRecord`] per request, a
//! [`Status`]; the C ABI and the operators' tools serialise the same structs.

pub mod record;
pub mod status;

use crate::call::{sdk_output, Core, Outcome};
use crate::clock::Clock;
use crate::config::{Config, UncertainPolicy};
use crate::engine::Engine;
use crate::error::{Code, Error, Result};
use crate::journal::books::Kept;
use crate::journal::owners::OwnerLock;
use crate::journal::writer::Writer;
use crate::journal::{Final, Journal, Options};
use crate::protocol::envelope::CallInput;
use crate::reconcile;
pub use record::RequestRecord;
pub use status::Status;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The library version, as `mi_version()` returns it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// How long shutdown waits, after breaking them off, for calls on the HIS's threads
/// to record how they ended (journal writes only: no network any more).
const CALLS_END_WITHIN: Duration = Duration::from_secs(2);

/// How long a service (the drop-box, a bridge node) gives the SDK to finish what it
/// is sending when it stops (the Windows service reports its progress meanwhile, and
/// asks Windows for 30 s at shutdown).
pub const SERVICE_SHUTDOWN: Duration = Duration::from_secs(10);

/// The C ABI version, as `mi_abi_version()` returns it.
pub const ABI_VERSION: i32 = 1;

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
        Sdk::start_with_clock(cfg, Clock::system())
    }

    /// [`Sdk::start`] on a clock of the caller's (a test's, which it drives).
    pub fn start_with_clock(cfg: Config, clock: Clock) -> Result<Sdk> {
        crate::logging::init(&cfg)?;
        log::info!("config {}", cfg.read_as);
        let owner = format!("{}-{}", std::process::id(), &crate::crypto::nonce()[..8]);
        // The owner lock before the journal (and its key) is opened: a key rotation
        // (`mi-sdk journal rekey`) either sees this process or finishes before it reads
        // the key. When the lock cannot be had, the journal's own error says more.
        let path = cfg.journal_path();
        let alive = match OwnerLock::take(&path, &owner) {
            Ok(l) => l,
            Err(e) => {
                Journal::open(&path, Options::of(&cfg, clock.clone()))?;
                return Err(e);
            }
        };
        let journal = Journal::open(&path, Options::of(&cfg, clock))?;
        journal.start_checkpointer()?;
        let (workers, capacity) = (cfg.workers, cfg.queue_capacity);
        let core = Arc::new(Core::holding(cfg, journal, owner, alive)?);
        // A new core: the cell is empty, so this always takes.
        let _ = core.writer.set(Writer::start(core.clone(), capacity));
        let engine = Engine::start(core.clone(), workers);
        log::info!(
            "mi_sdk {} started as {}: journal {}, {} workers, {} requests waiting",
            VERSION,
            core.owner,
            core.journal.path().display(),
            workers,
            core.journal.waiting().unwrap_or(0)
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
        let out = self.core.call_sync(infno, &call)?;
        Ok(self.confirm_if_uncertain(infno, out))
    }

    /// `call_sync` for a request that comes from outside the ABI under a unique name
    /// (`source`, a database bridge row): the journal refuses the same source twice
    /// ([`Sdk::by_source`] then finds the request).
    pub fn call_sync_from(&self, infno: &str, input: &str, source: &str) -> Result<Outcome> {
        let _in = self.enter()?;
        let call = self.core.parse(infno, input)?;
        let out = self.core.call_sync_from(infno, &call, Some(source))?;
        Ok(self.confirm_if_uncertain(infno, out))
    }

    /// Under `uncertain_policy: "query"`, a settlement left uncertain is looked up
    /// in the platform's books at once.
    fn confirm_if_uncertain(&self, infno: &str, out: Outcome) -> Outcome {
        if out.code == Code::Uncertain
            && self.core.cfg.retry.uncertain_policy == UncertainPolicy::Query
            && reconcile::books::SETTLING.iter().any(|(settles, _, _)| *settles == infno)
        {
            return reconcile::confirm_now(self, out);
        }
        out
    }

    /// Whether a failed send of `infno` may be sent again (a query, a reversal).
    pub fn resendable(&self, infno: &str) -> bool {
        self.core.resendable(infno)
    }

    /// The journal's own name (`mi_meta` `journal_id`).
    pub fn journal_identity(&self) -> Option<String> {
        self.core.journal.identity()
    }

    /// 9101: sends the file at `path` to the upload URL; the platform's answer names
    /// the `file_qury_no` it is kept under.
    pub fn upload_file(&self, path: &std::path::Path) -> Result<Outcome> {
        let _in = self.enter()?;
        let input = crate::files::upload_input(&self.core.cfg, path)?;
        self.core.call_sync(crate::protocol::transactions::FILE_UPLOAD, &CallInput::of(input))
    }

    /// 9102: downloads a file (a zip stream) into `dest_dir` and unpacks it; the
    /// output lists the files written.
    pub fn download_file(&self, file_qury_no: &str, filename: &str, dest_dir: &std::path::Path) -> Result<Outcome> {
        self.download_file_of(file_qury_no, filename, dest_dir, None)
    }

    /// `download_file` naming whose file it is (`fsDownloadIn.fixmedins_code`);
    /// `None`: decided by the `file_qury_no` (`files::download_owner`).
    pub fn download_file_of(
        &self,
        file_qury_no: &str,
        filename: &str,
        dest_dir: &std::path::Path,
        owner: Option<&str>,
    ) -> Result<Outcome> {
        let _in = self.enter()?;
        let input = crate::files::download_input(&self.core.cfg, file_qury_no, filename, dest_dir, owner)?;
        self.core.call_sync(crate::protocol::transactions::FILE_DOWNLOAD, &CallInput::of(input))
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

    /// The journal record of a request.
    pub fn get_request(&self, id: i64) -> Result<RequestRecord> {
        Ok(RequestRecord::of(&self.core.request(id)?))
    }

    /// Sends 2601 for an uncertain or succeeded reversible request.
    pub fn reverse(&self, id: i64) -> Result<Outcome> {
        let _in = self.enter()?;
        self.core.reverse(id)
    }

    /// The status of `mi_get_status`: the journal's, with this process's workers,
    /// latencies and last success and failure.
    pub fn status(&self) -> Result<Status> {
        let mut st = Status::read(&self.core.cfg, &self.core.journal)?;
        let engine = self.engine();
        let (p50, p99, samples) = self.core.stats.percentiles();
        st.workers = Some(engine.workers());
        st.workers_busy = Some(engine.busy());
        st.last_success_at = self.core.stats.last_success_at();
        let mask = self.core.cfg.log.mask_pii;
        st.last_error = self.core.stats.last_error().map(|e| crate::logging::safe_line(&e, mask));
        st.latency_ms = status::Latency { p50, p99, samples: Some(samples) };
        st.shutting_down = Some(self.closing.load(Ordering::Acquire));
        Ok(st)
    }

    /// Stops taking calls, waits up to `wait` for calls in flight, commits what was
    /// handed in, stops the workers and leaves queued requests for the next start.
    pub fn shutdown(&self, wait: Duration) {
        self.closing.store(true, Ordering::Release);
        let deadline = Instant::now() + wait;
        while self.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Calls on the HIS's threads still waiting for the gateway or sleeping
            // through a backoff: break them off as well (the cashier's program is
            // closing), and let them record how they ended before this returns, so
            // that no HIS thread is still inside the library when it is unloaded.
            self.core.interrupt_sends();
            let after = Instant::now() + CALLS_END_WITHIN;
            while self.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < after {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Workers first: their last outcomes go through the writer. Every thread
        // of the library is joined before this returns (the HIS may unload it).
        self.engine().stop(deadline);
        if let Some(w) = self.core.writer.get() {
            w.stop();
        }
        self.core.journal.stop_checkpointer();
        log::info!("mi_sdk shut down");
    }

    /// The output for an error that left nothing in the journal.
    pub fn error_output(e: &Error) -> String {
        sdk_output(e.code, &e.message, "")
    }
}

/// What reconciliation needs of the SDK (`mi_reconcile`, `mi-sdk reconcile`, and
/// `uncertain_policy: "query"`).
impl reconcile::Platform for Sdk {
    fn config(&self) -> &Config {
        &self.core.cfg
    }

    fn call_sync(&self, infno: &str, input: &str) -> Result<Outcome> {
        Sdk::call_sync(self, infno, input)
    }

    fn upload_file(&self, path: &Path) -> Result<Outcome> {
        Sdk::upload_file(self, path)
    }

    fn download_file(&self, file_qury_no: &str, filename: &str, dest_dir: &Path) -> Result<Outcome> {
        Sdk::download_file(self, file_qury_no, filename, dest_dir)
    }

    fn journal_path(&self) -> PathBuf {
        self.core.journal.path().to_path_buf()
    }

    fn journal_identity(&self) -> Option<String> {
        self.core.journal.identity()
    }

    fn now(&self) -> String {
        self.core.journal.clock().stamp()
    }

    fn kept(&self, infnos: &[&str], since: &str) -> Result<Vec<Kept>> {
        let _in = self.enter()?;
        self.core.journal.kept(infnos, since)
    }

    fn resolve_uncertain(&self, id: i64, fin: &Final) -> Result<bool> {
        let _in = self.enter()?;
        let done = self.core.journal.write(|tx| tx.resolve_uncertain(id, fin))?;
        if done {
            log::warn!("request {id}: uncertain, now {} by the platform's books", fin.state);
        }
        Ok(done)
    }
}
