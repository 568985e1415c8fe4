//! Broken storage (issue 8): the journal on a full disk, read-only, damaged, and
//! locked by another program. Each gives `MI_E_JOURNAL` with a message that says
//! which, nothing reaches the platform without being journaled first, and nothing
//! acknowledged is lost once the disk is fixed.
//!
//! The full disk and the read-only file are real: a child process runs with a file
//! size limit (`prlimit --fsize`, with SIGXFSZ ignored, so a write past it fails as
//! it does on a full disk), or as an unprivileged user when the tests run as root
//! (root writes through file modes).

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The child side, run only by the tests below: `MI_STORAGE_ROLE=calls` starts the
/// SDK and alternates sync calls and async submissions, printing each outcome,
/// until `MI_STORAGE_CALLS` calls or 40 failures in a row.
#[test]
#[ignore = "a child process of the storage tests"]
fn storage_child() {
    let Ok(role) = std::env::var("MI_STORAGE_ROLE") else {
        return;
    };
    assert_eq!(role, "calls");
    let rc = init_text(&std::env::var("MI_STORAGE_CONFIG").unwrap());
    println!("INIT {rc} {}", if rc == MI_OK { String::new() } else { last_error() });
    if rc != MI_OK {
        return;
    }
    let calls: usize = std::env::var("MI_STORAGE_CALLS").unwrap().parse().unwrap();
    let mut failures_in_a_row = 0;
    for i in 0..calls {
        let (kind, rc, id) = if i % 2 == 0 {
            let (rc, _, _) = call_bytes(b"1101", q1101(ZHANG_CERTNO).to_string().as_bytes(), 8192);
            ("SYNC", rc, mi_last_request_id())
        } else {
            let (rc, id) = call_async("1101", q1101(ZHANG_CERTNO), 0);
            ("ASYNC", rc, id)
        };
        println!("{kind} {rc} {id}");
        if rc == MI_OK {
            failures_in_a_row = 0;
        } else {
            println!("ERR {}", last_error());
            failures_in_a_row += 1;
            if failures_in_a_row == 40 {
                break;
            }
        }
    }
    println!("SHUTDOWN {}", mi_shutdown(3000));
}

/// What a child reported.
#[derive(Default, Debug)]
struct Report {
    init: Option<(i32, String)>,
    /// (sync?, rc, request id)
    calls: Vec<(bool, i32, i64)>,
    errors: Vec<String>,
    shut_down: bool,
}

fn run_child(wrapper: &[&str], config: &Value, calls: usize) -> Report {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(wrapper.first().copied().unwrap_or(exe.to_str().unwrap()));
    if !wrapper.is_empty() {
        cmd.args(&wrapper[1..]).arg(&exe);
    }
    let out = cmd
        .args(["--ignored", "--exact", "storage_child", "--nocapture", "--test-threads=1"])
        .env("MI_STORAGE_ROLE", "calls")
        .env("MI_STORAGE_CONFIG", config.to_string())
        .env("MI_STORAGE_CALLS", calls.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the child crashed or failed ({}):\n{stdout}", out.status);
    let mut r = Report::default();
    for line in stdout.lines() {
        // The test harness prints its own "test storage_child ... " before the first line.
        let line = line.rsplit(" ... ").next().unwrap();
        let mut w = line.splitn(3, ' ');
        match w.next() {
            Some("INIT") => r.init = Some((w.next().unwrap().parse().unwrap(), w.next().unwrap_or("").to_string())),
            Some(kind @ ("SYNC" | "ASYNC")) => {
                r.calls.push((kind == "SYNC", w.next().unwrap().parse().unwrap(), w.next().unwrap().parse().unwrap()))
            }
            Some("ERR") => r.errors.push(line[4..].to_string()),
            Some("SHUTDOWN") => r.shut_down = true,
            _ => {}
        }
    }
    r
}

/// Every msgid the journal holds an attempt for.
fn journaled_msgids(journal: &Path) -> HashSet<String> {
    let db = rusqlite::Connection::open(journal).unwrap();
    let mut st = db.prepare("SELECT msgid FROM mi_attempt").unwrap();
    st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// Nothing reached the platform that the journal does not hold.
fn nothing_sent_unjournaled(env: &Env) {
    let journaled = journaled_msgids(&env.journal_path());
    let ledger = env.ledger();
    for m in ledger["processed_msgids"].as_array().unwrap() {
        assert!(journaled.contains(m.as_str().unwrap()), "msgid {m} reached the platform but is not in the journal");
    }
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
}

#[test]
fn full_disk_refuses_calls_with_journal_errors_and_loses_nothing_acknowledged() {
    if !require_tool("prlimit", &["--version"]) {
        return;
    }
    let _g = serial();
    let env = Env::plain();
    // Logs stay small, so that the journal is what meets the limit.
    let config = env.config(json!({"log": {"level": "error"}, "workers": 2}));
    // Created here, so that the child starts on a journal of a known size.
    assert_eq!(init_text(&config.to_string()), MI_OK);
    mi_shutdown(1000);
    let limit = std::fs::metadata(env.journal_path()).unwrap().len() + (2 << 20);
    // `trap '' XFSZ`: the signal is ignored across exec, so a write past the limit
    // fails with an error (as on a full disk) instead of killing the process.
    let script = format!("trap '' XFSZ; exec prlimit --fsize={limit} -- \"$@\"");
    let r = run_child(&["bash", "-c", &script, "child"], &config, 6000);
    assert_eq!(r.init.as_ref().map(|i| i.0), Some(MI_OK), "{r:?}");
    assert!(r.shut_down, "the child shut down cleanly");
    let ok = r.calls.iter().filter(|c| c.1 == MI_OK).count();
    let failed: Vec<_> = r.calls.iter().filter(|c| c.1 != MI_OK).collect();
    eprintln!(
        "{} calls: {ok} MI_OK before the disk filled, {} refused; first error: {:?}",
        r.calls.len(),
        failed.len(),
        r.errors.first()
    );
    assert!(ok > 10 && !failed.is_empty(), "the disk filled after some calls: {ok} ok, {} failed", failed.len());
    for (_, rc, _) in &failed {
        assert_eq!(*rc, MI_E_JOURNAL, "{:?}", r.errors);
    }
    for e in &r.errors {
        assert!(e.contains("journal") && e.contains("disk"), "a message that names the disk: {e}");
    }
    // Nothing sent that is not journaled, even as the disk filled.
    nothing_sent_unjournaled(&env);
    // With the disk fixed (no limit), every acknowledged request ends MI_OK: the
    // async ones are sent, and a sync call whose outcome could not be recorded is
    // recovered (a query: resent).
    assert_eq!(init_text(&config.to_string()), MI_OK, "{}", last_error());
    for (sync, _, id) in r.calls.iter().filter(|c| c.1 == MI_OK) {
        let (rc, out) = wait_result(*id, 30);
        assert_eq!(rc, MI_OK, "request {id} (sync: {sync}): {out}");
    }
    nothing_sent_unjournaled(&env);
    mi_shutdown(1000);
}

/// `id -u` is 0: file modes do not stop writes, so the child runs as `nobody`.
fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn read_only_journal_is_a_journal_error_at_init() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    mi_shutdown(1000);
    let before = std::fs::read(env.journal_path()).unwrap();
    // The folders readable by all, the journal and its folder read-only.
    chmod(env.dir.path(), 0o755);
    let folder = env.journal_path().parent().unwrap().to_path_buf();
    for f in std::fs::read_dir(&folder).unwrap() {
        chmod(&f.unwrap().path(), 0o444);
    }
    chmod(&folder, 0o555);
    let wrapper: &[&str] = if running_as_root() {
        if !require_tool("setpriv", &["--version"]) {
            return;
        }
        &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    } else {
        &[]
    };
    // The child's logs go where it may write: the journal is what is read-only.
    let logs = env.dir.path().join("child-logs");
    std::fs::create_dir_all(&logs).unwrap();
    chmod(&logs, 0o777);
    let config = env.config(json!({"log": {"dir": logs.to_string_lossy()}}));
    let r = run_child(wrapper, &config, 4);
    chmod(&folder, 0o755);
    let (rc, msg) = r.init.clone().unwrap();
    assert_eq!(rc, MI_E_JOURNAL, "{r:?}");
    assert!(msg.contains("read-only") || msg.contains("cannot be opened"), "{msg}");
    assert!(r.calls.is_empty());
    assert_eq!(std::fs::read(env.journal_path()).unwrap(), before, "the journal is untouched");
    assert_eq!(env.ledger()["by_infno"]["1101"], 1, "nothing more was sent");
}

#[test]
fn a_damaged_journal_is_refused_and_left_as_it_was() {
    let _g = serial();
    let env = Env::plain();
    // Not a journal at all: bytes where the journal should be.
    std::fs::create_dir_all(env.journal_path().parent().unwrap()).unwrap();
    let junk: Vec<u8> = (0..65536u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(env.journal_path(), &junk).unwrap();
    assert_eq!(env.init(json!({})), MI_E_JOURNAL);
    let msg = last_error();
    assert!(msg.contains("damaged") && msg.contains(&env.journal_path().display().to_string()), "{msg}");
    assert_eq!(std::fs::read(env.journal_path()).unwrap(), junk, "the file is evidence: left as it was");
    assert_eq!(call_async("1101", q1101(ZHANG_CERTNO), 0).0, MI_E_NOT_INITIALIZED);

    // A real journal with its inside overwritten: whatever each call finds, it is a
    // code, never a crash, and nothing unjournaled is sent.
    std::fs::remove_file(env.journal_path()).unwrap();
    assert_eq!(env.init(json!({})), MI_OK);
    let mut ids = Vec::new();
    for _ in 0..200 {
        let (rc, id) = call_async("1101", q1101(ZHANG_CERTNO), 0);
        assert_eq!(rc, MI_OK);
        ids.push(id);
    }
    for id in &ids {
        assert_eq!(wait_result(*id, 30).0, MI_OK);
    }
    mi_shutdown(1000);
    let mut bytes = std::fs::read(env.journal_path()).unwrap();
    let pages = bytes.len() / 4096;
    assert!(pages > 8, "{pages} pages");
    for p in (2..pages).step_by(3) {
        bytes[p * 4096 + 100..p * 4096 + 600].fill(0xA5);
    }
    std::fs::write(env.journal_path(), &bytes).unwrap();
    let allowed = [MI_OK, MI_E_JOURNAL, MI_E_NOT_INITIALIZED, MI_E_NOT_FOUND, MI_E_PROTOCOL, MI_E_INTERNAL];
    let rc = env.init(json!({}));
    assert!(rc == MI_OK || rc == MI_E_JOURNAL, "init: {rc} {}", last_error());
    if rc == MI_E_JOURNAL {
        assert!(last_error().contains("damaged"), "{}", last_error());
    }
    for id in &ids {
        let (rc, _) = get_result(*id);
        assert!(allowed.contains(&rc), "mi_get_result({id}): {rc} {}", last_error());
    }
    for _ in 0..20 {
        let (rc, _, _) = call_bytes(b"1101", q1101(ZHANG_CERTNO).to_string().as_bytes(), 8192);
        assert!(allowed.contains(&rc), "call: {rc} {}", last_error());
        if rc == MI_E_JOURNAL {
            assert!(last_error().contains("damaged"), "{}", last_error());
        }
    }
    assert!(allowed.contains(&status().0));
    mi_shutdown(1000);
}

/// Another program holds the journal's write lock (a Python `sqlite3` shell in
/// `BEGIN EXCLUSIVE`) until its stdin closes.
struct Locker(std::process::Child);

impl Locker {
    fn hold(journal: &Path) -> Locker {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                 c.execute('BEGIN EXCLUSIVE')\n\
                 print('locked', flush=True)\n\
                 sys.stdin.read()\n",
            ])
            .arg(journal)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "locked");
        Locker(child)
    }

    /// Closes its stdin: it ends, and its lock with it.
    fn release(mut self) {
        drop(self.0.stdin.take());
        self.0.wait().unwrap();
    }
}

#[test]
fn a_journal_locked_by_another_program_fails_calls_after_the_busy_timeout() {
    if !require_tool("python3", &["--version"]) {
        return;
    }
    let _g = serial();
    let env = Env::plain();
    let patch = json!({"journal": {"busy_timeout_ms": 300}, "workers": 2});
    assert_eq!(env.init(patch.clone()), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    let earlier = mi_last_request_id();
    mi_shutdown(1000);

    // Locked at start: init fails after the busy timeout, saying why.
    let lock = Locker::hold(&env.journal_path());
    let t0 = Instant::now();
    assert_eq!(env.init(patch.clone()), MI_E_JOURNAL);
    assert!(last_error().contains("locked by another program"), "{}", last_error());
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    lock.release();

    // Locked while running: writes fail, reads go on, nothing is sent meanwhile.
    assert_eq!(env.init(patch.clone()), MI_OK);
    let sent = env.ledger()["requests"].as_u64().unwrap();
    let lock = Locker::hold(&env.journal_path());
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_E_JOURNAL, "{out}");
    assert!(last_error().contains("locked by another program"), "{}", last_error());
    assert_eq!(call_async("1101", q1101(ZHANG_CERTNO), 0).0, MI_E_JOURNAL);
    assert_eq!(get_result(earlier).0, MI_OK, "reads go on under another program's write lock");
    assert_eq!(status().0, MI_OK);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.ledger()["requests"].as_u64().unwrap(), sent, "nothing sent while the journal is locked");
    lock.release();

    // Released: everything works again, workers included.
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    let (rc, id) = call_async("1101", q1101(ZHANG_CERTNO), 0);
    assert_eq!(rc, MI_OK);
    assert_eq!(wait_result(id, 10).0, MI_OK);
    nothing_sent_unjournaled(&env);
    mi_shutdown(1000);
}
