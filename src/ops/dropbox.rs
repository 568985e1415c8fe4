//! The drop-box service, for HIS that cannot call a DLL: a request file
//! `<name>.req.json` (`{"infno":..,"input":..,"priority":..}`, in the config's
//! `charset`, or UTF-8 after a BOM) that appears in the folder is submitted; its
//! result appears as `<name>.res.json` (in the same charset) when final.
//!
//! A file is taken by renaming it to `<name>@<token>.accepted.json` (the token is
//! random, new for every file), and the journal remembers that taken name
//! (`source`), so a name the HIS uses again is a new request, never the earlier
//! one's answer, and a crash at any point neither loses a request nor submits one
//! twice. A finished request's file becomes `<name>@<token>.done.json`; one that
//! cannot be read or submitted, `<name>@<token>.rejected.json` (with a `.res.json`
//! saying why). One service per folder: it holds a lock on `.mi-sdk-serve.lock`
//! there, which the OS releases when the process ends however it ends.

use crate::charset::Charset;
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::sdk::Sdk;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const REQ: &str = ".req.json";
const ACCEPTED: &str = ".accepted.json";
const RES: &str = ".res.json";
/// The lock file, in the watched folder itself so that every path to the folder
/// (a share, a symlink) meets the same lock.
pub const LOCK_FILE: &str = ".mi-sdk-serve.lock";

/// `mi-sdk serve --watch DIR`: checks and locks the folder, starts the SDK and runs
/// the service until Ctrl-C or SIGTERM (`started` is told once it runs); what is
/// still running then is finished by the next start.
pub fn serve(cfg: Config, dir: &Path, started: impl FnOnce()) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::Release))
        .map_err(|e| Error::config(format!("cannot watch for Ctrl-C / SIGTERM: {e}")))?;
    // Before the SDK starts and before anyone is told it watches: a folder that is
    // missing or already served is a mistake to report, not a service to run.
    let folder = Folder::open(dir)?;
    serve_until(cfg, folder, &stop, started)
}

/// How long the SDK is given to finish what it is sending once the service stops.
pub const SHUTDOWN: Duration = crate::sdk::SERVICE_SHUTDOWN;

/// The service itself on a folder already opened, until `stop` is set (by Ctrl-C,
/// or by Windows' Service Control Manager for `mi-sdk service`).
pub fn serve_until(cfg: Config, folder: Folder, stop: &AtomicBool, started: impl FnOnce()) -> Result<()> {
    let charset = cfg.charset;
    let sdk = Sdk::start(cfg)?;
    started();
    let r = run(&sdk, &folder, charset, stop);
    sdk.shutdown(SHUTDOWN);
    r
}

/// A watch folder that exists, held by this process alone while this lives.
pub struct Folder {
    dir: PathBuf,
    _lock: File,
}

impl Folder {
    /// Refuses a folder that does not exist (it is not created: a mistyped path
    /// would be watched while the HIS writes elsewhere) and one that another
    /// service holds.
    pub fn open(dir: &Path) -> Result<Folder> {
        let dir = match std::fs::canonicalize(dir) {
            Ok(d) if d.is_dir() => d,
            Ok(_) => {
                return Err(Error::config(format!("the drop-box folder {} is a file, not a folder", dir.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::config(format!(
                    "the drop-box folder {} does not exist: create it (the folder the HIS writes its requests to) \
                     or correct --watch",
                    dir.display()
                )))
            }
            Err(e) => return Err(Error::config(format!("the drop-box folder {}: {e}", dir.display()))),
        };
        let path = dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::config(format!("cannot open the lock file {}: {e}", path.display())))?;
        // fs4's lock, named in full: std's inherent `File::try_lock` is newer than
        // the crate's minimum Rust.
        match fs4::FileExt::try_lock(&lock) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                // Windows does not let a locked file be read: then the pid is unknown.
                let pid = std::fs::read_to_string(&path).ok().map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
                return Err(Error::config(format!(
                    "another mi-sdk serve ({}) is already watching {}: two services on one folder would take each \
                     other's files; stop it first, or give this one another folder",
                    pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "pid unknown".into()),
                    dir.display()
                )));
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(Error::config(format!("cannot lock {}: {e}", path.display())))
            }
        }
        // Who holds it, for the next one's message; the lock itself is what counts.
        let _ = lock.set_len(0).and_then(|()| (&lock).write_all(std::process::id().to_string().as_bytes()));
        Ok(Folder { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// Watches the folder until `stop` is set; request files are read, and results
/// written, in `charset`.
pub fn run(sdk: &Sdk, folder: &Folder, charset: Charset, stop: &AtomicBool) -> Result<()> {
    let mut w = Watch { sdk, dir: &folder.dir, charset, pending: BTreeMap::new(), stuck: HashSet::new() };
    log::info!("drop-box service watching {} (request files in {})", w.dir.display(), charset.name());
    while !stop.load(Ordering::Acquire) {
        if let Err(e) = w.scan() {
            log::error!("drop-box: {e}");
        }
        w.deliver();
        std::thread::sleep(Duration::from_millis(100));
    }
    log::info!("drop-box service stopped; {} requests still running are finished by the next start", w.pending.len());
    Ok(())
}

struct Watch<'a> {
    sdk: &'a Sdk,
    dir: &'a Path,
    charset: Charset,
    /// Taken name (`<name>@<token>`) -> request id, until its result is written.
    pending: BTreeMap<String, i64>,
    /// Request files that could not be taken, said once each.
    stuck: HashSet<String>,
}

/// The journal's name for a taken file: unique, as the token is.
fn source(dir: &Path, taken: &str) -> String {
    format!("dropbox:{}/{taken}", dir.display())
}

/// The HIS's name of a taken file (`<name>` of `<name>@<token>`). A name without a
/// token was taken by an older version, which renamed `<name>.req.json` to
/// `<name>.accepted.json`.
fn his_name(taken: &str) -> &str {
    match taken.rsplit_once('@') {
        Some((name, token)) if token.len() == 16 && token.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => taken,
    }
}

fn token() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Still unique enough for one folder: the time to the nanosecond.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        b = (t.as_nanos() as u64).to_le_bytes();
    }
    hex::encode(b)
}

/// A request file's text: UTF-8 after a BOM (whatever the charset says: the BOM
/// says which), else the configured charset; never a guess between them, since a
/// name decoded in the wrong one would reach the platform mangled.
fn decode(bytes: &[u8], charset: Charset, what: &str) -> Result<String> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return Charset::Utf8.decode(rest, what);
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(Error::invalid(format!(
            "{what} is UTF-16 (\"Unicode\"); write it in {} or as UTF-8",
            charset.name()
        )));
    }
    charset.decode(bytes, what)
}

/// `(infno, input, priority)` of a request file's text.
fn parse(text: &str) -> std::result::Result<(String, String, i32), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let infno = v.get("infno").and_then(Value::as_str).ok_or("\"infno\" is missing")?.to_string();
    let input = v.get("input").ok_or("\"input\" is missing")?.to_string();
    let priority = v.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32;
    Ok((infno, input, priority))
}

impl Watch<'_> {
    fn scan(&mut self) -> Result<()> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir)
            .map_err(|e| Error::config(format!("{}: {e}", self.dir.display())))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        // Taken files first: one taken before a crash, or whose submission found the
        // queue full, is submitted (or followed) before a new file of its name is
        // taken, so a name has one request running at a time.
        let mut running = HashSet::new();
        for name in &names {
            if let Some(taken) = name.strip_suffix(ACCEPTED) {
                running.insert(his_name(taken));
                if !self.pending.contains_key(taken) {
                    self.submit(taken);
                }
            }
        }
        for name in &names {
            if let Some(stem) = name.strip_suffix(REQ) {
                // The earlier request of this name is still running: it answers
                // first (under its own name, see `answer_name`), then this one is taken.
                if !running.contains(stem) {
                    self.take(stem);
                }
            }
        }
        Ok(())
    }

    /// Takes `<stem>.req.json` under a name of its own, then submits it.
    fn take(&mut self, stem: &str) {
        let req = self.dir.join(format!("{stem}{REQ}"));
        // A result still here is an earlier request's: never this one's answer.
        let stale = self.dir.join(format!("{stem}{RES}"));
        match std::fs::remove_file(&stale) {
            Ok(()) => log::warn!(
                "drop-box: {} is a new request under a name used before; the earlier {stem}{RES} is removed \
                 (its outcome stays in the journal)",
                req.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Still open in the HIS (Windows): the new request waits until the old
            // answer can be taken away, or its HIS would read that one as its own.
            Err(e) => {
                if self.stuck.insert(stem.to_string()) {
                    log::warn!(
                        "drop-box: cannot take {} yet: the earlier {stem}{RES} cannot be removed: {e}",
                        req.display()
                    );
                }
                return;
            }
        }
        let taken = format!("{stem}@{}", token());
        match std::fs::rename(&req, self.dir.join(format!("{taken}{ACCEPTED}"))) {
            Ok(()) => {
                self.stuck.remove(stem);
                self.submit(&taken);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Still open in the HIS (Windows), or no right to rename: tried again
            // every round, said once.
            Err(e) => {
                if self.stuck.insert(stem.to_string()) {
                    log::warn!("drop-box: cannot take {} yet: {e}", req.display());
                }
            }
        }
    }

    /// Submits a taken file under its taken name. The journal refuses a name it
    /// already has: then the request it has (committed before a crash, or by
    /// another process) is followed to its outcome.
    fn submit(&mut self, taken: &str) {
        let key = source(self.dir, taken);
        let path = self.dir.join(format!("{taken}{ACCEPTED}"));
        let what = format!("{}{REQ}", his_name(taken));
        let submitted = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes, self.charset, &what)
                .and_then(|text| parse(&text).map_err(|why| Error::invalid(format!("{what}: {why}"))))
                .and_then(|(infno, input, priority)| self.sdk.call_async_from(&infno, &input, priority, Some(&key))),
            // Gone meanwhile: nothing to answer.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => Err(Error::invalid(format!("{what} cannot be read: {e}"))),
        };
        match submitted {
            Ok(id) => {
                self.pending.insert(taken.to_string(), id);
            }
            Err(e) if e.code == Code::InvalidArgument => match self.sdk.by_source(&key) {
                Ok(Some(id)) => {
                    log::info!("drop-box: {} is request {id}, submitted before; following it", path.display());
                    self.pending.insert(taken.to_string(), id);
                }
                Ok(None) => self.reject(taken, &e),
                Err(je) => log::error!("drop-box: {}: {je}; tried again", path.display()),
            },
            // Busy, shutting down, the journal: tried again on the next round.
            Err(e) => log::warn!("drop-box: {} not submitted yet: {e}", path.display()),
        }
    }

    fn reject(&mut self, taken: &str, e: &Error) {
        log::warn!("drop-box: {} refused: {}", self.dir.join(format!("{}{REQ}", his_name(taken))).display(), e.message);
        let code = e.code.as_i32();
        let doc =
            json!({"request_id": 0, "mi_code": code, "result": {"infcode": -1, "err_msg": e.message, "mi_code": code}});
        // Not written: the file stays taken and is judged again on the next round.
        if !self.write_result(taken, &doc) {
            return;
        }
        let _ = std::fs::rename(
            self.dir.join(format!("{taken}{ACCEPTED}")),
            self.dir.join(format!("{taken}.rejected.json")),
        );
    }

    fn deliver(&mut self) {
        let mut done = Vec::new();
        for (taken, id) in self.pending.iter() {
            match self.sdk.get_result(*id) {
                Ok(o) if o.code == Code::Pending => {}
                Ok(o) => {
                    let result: Value = serde_json::from_str(&o.output).unwrap_or(Value::String(o.output.clone()));
                    // Not written (the HIS holds the old result open): tried again
                    // on the next round, the request kept as pending.
                    if !self
                        .write_result(taken, &json!({"request_id": id, "mi_code": o.code.as_i32(), "result": result}))
                    {
                        continue;
                    }
                    let _ = std::fs::rename(
                        self.dir.join(format!("{taken}{ACCEPTED}")),
                        self.dir.join(format!("{taken}.done.json")),
                    );
                    done.push(taken.clone());
                }
                Err(e) => log::error!("drop-box: result of {taken} (request {id}): {e}"),
            }
        }
        for taken in done {
            self.pending.remove(&taken);
        }
    }

    /// The name a taken file's result is written under: `<name>`, unless a new
    /// `<name>.req.json` already waits, whose HIS would read this answer as its
    /// own; then `<name>@<token>`.
    fn answer_name<'t>(&self, taken: &'t str) -> &'t str {
        let name = his_name(taken);
        if name != taken && self.dir.join(format!("{name}{REQ}")).exists() {
            log::warn!(
                "drop-box: a new {name}{REQ} came before the result of the earlier one: that result is {taken}{RES}"
            );
            return taken;
        }
        name
    }

    /// Writes the result whole or not at all (a temp file, then a rename), in the
    /// configured charset.
    /// Writes a result file (whole, by rename); whether it was written.
    fn write_result(&self, taken: &str, doc: &Value) -> bool {
        let name = self.answer_name(taken);
        let tmp = self.dir.join(format!("{name}{RES}.tmp"));
        let ok = std::fs::write(&tmp, self.charset.encode(&doc.to_string()))
            .and_then(|_| std::fs::rename(&tmp, self.dir.join(format!("{name}{RES}"))));
        if let Err(e) = &ok {
            log::error!("drop-box: cannot write the result of {taken}: {e}; tried again");
        }
        ok.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_name_gives_back_the_his_name() {
        let t = format!("visit.1@{}", token());
        assert_eq!(his_name(&t), "visit.1");
        assert_eq!(his_name("a@b"), "a@b");
        assert_eq!(his_name("legacy"), "legacy");
        assert_ne!(token(), token());
    }

    #[test]
    fn a_bom_means_utf8_whatever_the_charset() {
        let text = "{\"n\":\"张三\"}";
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        assert_eq!(decode(&bom, Charset::Gbk, "f").unwrap(), text);
        assert_eq!(decode(&bom, Charset::Utf8, "f").unwrap(), text);
        assert_eq!(decode(&Charset::Gbk.encode(text), Charset::Gbk, "f").unwrap(), text);
        assert!(decode(&Charset::Gbk.encode(text), Charset::Utf8, "f").unwrap_err().message.contains("gbk"));
        assert!(decode(b"\xFF\xFE{\x00", Charset::Utf8, "f").unwrap_err().message.contains("UTF-16"));
    }
}
