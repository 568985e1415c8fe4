//! Who may move a request on (docs/delivery.md, "Ownership"): a live sender is
//! never taken over, whatever clocks say; shutdown breaks off its sends, records
//! them and joins its threads; a sync call whose program died is never sent on its
//! own. Real processes, the simulator over loopback, one journal file.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

const PSN: &str = "44030000000000100001";

fn settle_input(otp_no: &str, fault: Value) -> Value {
    let mut input = visit(PSN, otp_no, 10.0);
    if !fault.is_null() {
        input["_sim"] = fault;
    }
    json!({"input": input, "insuplc_admdvs": "440300"})
}

/// The child side. `MI_CHILD_ROLE=watch`: an SDK on the config's journal whose
/// wall clock is `MI_CHILD_WALL_MS` off, running until killed (the drop-box service
/// on a machine whose clock is ahead). `sync`: one sync call of `MI_CHILD_INFNO`
/// with `MI_CHILD_INPUT`, which is expected to sleep in its backoff until killed.
#[test]
#[ignore = "a child process of the ownership tests"]
fn child_process() {
    let Ok(role) = std::env::var("MI_CHILD_ROLE") else {
        return;
    };
    let config = std::env::var("MI_CHILD_CONFIG").unwrap();
    match role.as_str() {
        "watch" => {
            let off: i64 = std::env::var("MI_CHILD_WALL_MS").unwrap().parse().unwrap();
            let cfg = mi_sdk::Config::from_json(&config, std::path::Path::new(".")).unwrap();
            let _sdk = mi_sdk::Sdk::start_with_clock(cfg, mi_sdk::Clock::system_off_by(off)).unwrap();
            println!("STARTED");
        }
        _ => {
            assert_eq!(init_text(&config), MI_OK, "{}", last_error());
            println!("CALLING");
            let input: Value = serde_json::from_str(&std::env::var("MI_CHILD_INPUT").unwrap()).unwrap();
            let (rc, out) = call(&std::env::var("MI_CHILD_INFNO").unwrap(), input);
            println!("RETURNED {rc} {out}");
        }
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Starts a child and waits for its first line.
fn spawn_child(role: &str, config: &Value, env: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", "child_process", "--nocapture", "--test-threads=1"])
        .env("MI_CHILD_ROLE", role)
        .env("MI_CHILD_CONFIG", config.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest writes the test's name on the same line first.
    let first = lines.find(|l| l.as_ref().is_ok_and(|l| l.ends_with("STARTED") || l.ends_with("CALLING")));
    assert!(first.is_some(), "the child started");
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn row(env: &Env, id: i64) -> (String, Option<i32>, i64) {
    let db = rusqlite::Connection::open(env.journal_path()).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.query_row("SELECT state, mi_code, attempts FROM mi_request WHERE id = ?1", [id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
}

/// The library's threads in this process (they are all named `mi-…`; the
/// simulator's are `mi-sim-…`).
fn library_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.starts_with("mi-") && !c.starts_with("mi-sim"))
        })
        .count()
}

/// A cashier's 2207 answered late, while a second process on the same journal runs
/// with its wall clock 10 s ahead and `uncertain_policy: "reverse"`. That process
/// used to count the cashier's process as dead (its heartbeats looked 10 s old),
/// mark the settlement uncertain and reverse it on the platform, while the cashier
/// was told MI_OK.
#[test]
fn a_live_sender_is_never_taken_over_by_a_process_whose_clock_is_ahead() {
    let _g = serial();
    let env = Env::plain();
    let config = env.config(json!({"workers": 1, "retry": {"uncertain_policy": "reverse"}}));
    assert_eq!(init_text(&config.to_string()), MI_OK);
    let input = settle_input("OWN1", json!({"gate": "late"}));
    // mi_last_request_id is per thread: the cashier's thread reads its own.
    let cashier = std::thread::spawn(move || (call("2207", input), mi_last_request_id()));
    assert!(env.sim.wait_at_gate("late", 1, Duration::from_secs(20)), "the 2207 is at the platform");
    let mut other = spawn_child("watch", &config, &[("MI_CHILD_WALL_MS", "10000".into())]);
    // The other process recovers at its start and then every second: let it look
    // three times while the settlement is in flight.
    let db = rusqlite::Connection::open(env.journal_path()).unwrap();
    let rounds = || {
        db.query_row("SELECT max(beat) FROM mi_owner WHERE pid = ?1", [other.id()], |r| r.get::<_, Option<i64>>(0))
            .ok()
            .flatten()
            .unwrap_or(0)
    };
    assert!(wait_until(|| rounds() >= 4), "the other process runs");
    env.sim.open_gate("late");
    let ((rc, out), id) = cashier.join().unwrap();
    assert_eq!(rc, MI_OK, "{out}");
    assert_eq!(journal_count(&env, &format!("SELECT count(*) FROM mi_request WHERE id = {id} AND infno = '2207'")), 1);
    assert_eq!(row(&env, id), ("succeeded".to_string(), Some(0), 1));
    other.kill().unwrap();
    other.wait().unwrap();
    let ledger = env.ledger();
    assert_eq!(ledger["by_infno"]["2207"], 1, "{ledger}");
    assert!(ledger["by_infno"]["2601"].is_null(), "nothing reversed: {ledger}");
    assert_eq!(journal_count(&env, "SELECT count(*) FROM mi_request WHERE infno = '2601'"), 0);
    mi_shutdown(2000);
}

/// `mi_shutdown(500)` with an async 2207 in flight, then `mi_init` in the same
/// process. The send is broken off at the deadline and recorded by its own worker
/// (uncertain: it may have been processed), every library thread is joined before
/// shutdown returns, and the new start takes nothing over: the result stays
/// uncertain when the platform's answer would have come, never OK after uncertain.
#[test]
fn shutdown_breaks_off_sends_records_them_and_joins_every_thread() {
    let _g = serial();
    let env = Env::plain();
    let config = env.config(json!({"workers": 2, "retry": {"uncertain_policy": "reverse"}}));
    assert_eq!(init_text(&config.to_string()), MI_OK);
    let input = settle_input("OWN2", json!({"gate": "slow"}));
    let (rc, id) = call_async("2207", input, 0);
    assert_eq!(rc, MI_OK);
    assert!(env.sim.wait_at_gate("slow", 1, Duration::from_secs(20)));
    assert!(library_threads() >= 5, "workers, writer, flusher, checkpoint, heartbeat, maintenance");
    assert_eq!(mi_shutdown(500), MI_OK);
    assert_eq!(library_threads(), 0, "no library thread runs after mi_shutdown");
    let (state, code, _) = row(&env, id);
    assert_eq!((state.as_str(), code), ("uncertain", Some(MI_E_UNCERTAIN)), "recorded before shutdown returned");
    // The platform processes it all the same (the answer finds nobody).
    env.sim.open_gate("slow");
    assert!(env.sim.wait_idle(Duration::from_secs(10)));
    assert_eq!(init_text(&config.to_string()), MI_OK);
    // The policy reverses the uncertain settlement; nothing writes OK over it.
    let (rc, out) = wait_result(id, 10);
    assert_eq!(rc, MI_E_UNCERTAIN, "{out}");
    assert!(wait_until(|| row(&env, id).0 == "reversed"), "{:?}", row(&env, id));
    assert_eq!(get_result(id).0, MI_E_UNCERTAIN);
    mi_shutdown(2000);
}

/// A sync 2207 sleeping in its backoff (its first attempt refused before it left)
/// when its program is killed: nobody waits for it any more (the cashier may have
/// taken cash), so the next start ends it failed, never sent, instead of settling
/// it behind the cashier's back.
#[test]
fn a_sync_settlement_whose_program_died_is_never_sent_later() {
    let _g = serial();
    let env = Env::plain();
    // Signed in today, so the child's 2207 goes straight out.
    assert_eq!(env.init(json!({})), MI_OK);
    let input = settle_input("OWN3", Value::Null);
    mi_shutdown(2000);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/fsi/api/rsfComIfsService/callService", dead.local_addr().unwrap().port());
    drop(dead);
    let down = env.config(json!({"gateway": {"url": url, "connect_timeout_ms": 500},
                                  "retry": {"max_attempts": 5, "base_delay_ms": 60000, "max_delay_ms": 60000}}));
    let mut child =
        spawn_child("sync", &down, &[("MI_CHILD_INFNO", "2207".into()), ("MI_CHILD_INPUT", input.to_string())]);
    let sql = "SELECT count(*) FROM mi_request WHERE infno = '2207' AND state = 'retry_wait' AND attempts = 1";
    assert!(wait_until(|| journal_count(&env, sql) == 1), "the call sleeps in its backoff");
    let id = journal_count(&env, "SELECT max(id) FROM mi_request WHERE infno = '2207'");
    child.kill().unwrap();
    child.wait().unwrap();
    // The next start, with the gateway up again.
    assert_eq!(env.init(json!({})), MI_OK);
    assert!(wait_until(|| row(&env, id).0 != "retry_wait"), "{:?}", row(&env, id));
    assert_eq!(row(&env, id), ("failed".to_string(), Some(MI_E_SHUTDOWN), 1));
    let (_, req) = get_request(id);
    assert!(req["last_error"].as_str().unwrap().contains("never sent"), "{req}");
    assert!(env.ledger()["by_infno"]["2207"].is_null(), "never settled: {}", env.ledger());
    mi_shutdown(2000);
}
