//! Crash and multi-process tests: real child processes killed with SIGKILL mid-batch,
//! and two processes draining one journal, against the simulator.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PSN: &str = "44030000000000300003";

/// The child side: `MI_CHILD_ROLE=submit` submits the plan in `MI_CHILD_PLAN` and
/// keeps running (its workers sending) until killed; `drain` sends what the journal
/// holds and exits when nothing is left. Run only as a child of the tests below.
#[test]
#[ignore = "a child process of the crash tests"]
fn child_process() {
    let Ok(role) = std::env::var("MI_CHILD_ROLE") else {
        return;
    };
    let config = std::env::var("MI_CHILD_CONFIG").unwrap();
    assert_eq!(init_text(&config), MI_OK, "{}", last_error());
    if role == "submit" {
        let plan: Vec<(String, Value)> =
            serde_json::from_str(&std::fs::read_to_string(std::env::var("MI_CHILD_PLAN").unwrap()).unwrap()).unwrap();
        for (infno, input) in plan {
            let (rc, id) = call_async(&infno, input, 0);
            assert_eq!(rc, MI_OK, "{}", last_error());
            println!("ACCEPTED {id} {infno}");
        }
        println!("ALL SUBMITTED");
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    // drain
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let (_, st) = status();
        let c = &st["counts"];
        if c["queued"] == 0 && c["sending"] == 0 && c["retry_wait"] == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    mi_shutdown(5000);
}

/// The (request id, infno) pairs a child reported accepted, as they arrive.
type Accepted = Arc<Mutex<Vec<(i64, String)>>>;

fn spawn_child(role: &str, config: &Value, plan: Option<&std::path::Path>) -> (std::process::Child, Accepted) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", "child_process", "--nocapture", "--test-threads=1"])
        .env("MI_CHILD_ROLE", role)
        .env("MI_CHILD_CONFIG", config.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(p) = plan {
        cmd.env("MI_CHILD_PLAN", p);
    }
    let mut child = cmd.spawn().unwrap();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let acc = accepted.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let mut w = line.split_whitespace();
            if w.next() == Some("ACCEPTED") {
                let id = w.next().unwrap().parse().unwrap();
                acc.lock().unwrap().push((id, w.next().unwrap().to_string()));
            }
        }
    });
    (child, accepted)
}

#[test]
fn killed_mid_batch_then_drained_by_another_process() {
    let _g = serial();
    let env = Env::plain();
    let config = env.config(json!({"gateway": {"timeout_ms": 3000}, "workers": 4,
                                   "retry": {"max_attempts": 3, "base_delay_ms": 50, "max_delay_ms": 200}}));
    assert_eq!(init_text(&config.to_string()), MI_OK);
    let kill_points = [150u64, 500, 1200];
    let all_visits: Vec<Value> = (0..100 * kill_points.len()).map(|i| visit(PSN, &format!("CR{i}"), 1.0)).collect();
    mi_shutdown(2000);
    for (round, kill_after) in kill_points.into_iter().enumerate() {
        // 500 requests: every fifth a settlement of its own visit, the rest queries;
        // each answer a little late so some are in flight when the kill comes.
        let mut settle = all_visits[round * 100..(round + 1) * 100].iter();
        let plan: Vec<(String, Value)> = (0..500)
            .map(|i| {
                if i % 5 == 0 {
                    let mut s = settle.next().unwrap().clone();
                    s["_sim"] = json!({"delay_ms": 15});
                    ("2207".to_string(), json!({"input": s, "insuplc_admdvs": "440300"}))
                } else {
                    let mut q = q1101("44030519500315002X");
                    q["_sim"] = json!({"delay_ms": 5});
                    ("1101".to_string(), q)
                }
            })
            .collect();
        let plan_file = env.dir.path().join(format!("plan{round}.json"));
        std::fs::write(&plan_file, serde_json::to_string(&plan).unwrap()).unwrap();
        let (mut child, accepted) = spawn_child("submit", &config, Some(&plan_file));
        // The kill comes `kill_after` ms into the batch, counted from the child's first
        // acceptance: a loaded machine may take longer than that just to start it.
        let started = Instant::now();
        while accepted.lock().unwrap().is_empty() && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(kill_after));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let accepted = accepted.lock().unwrap().clone();
        let db = rusqlite::Connection::open(env.journal_path()).unwrap();
        let at_kill: Vec<(String, i64)> = db
            .prepare("SELECT state, count(*) FROM mi_request GROUP BY state")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Another process opens the same journal and finishes everything.
        assert_eq!(init_text(&config.to_string()), MI_OK);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, st) = status();
            let c = &st["counts"];
            if c["queued"] == 0 && c["sending"] == 0 && c["retry_wait"] == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "journal not drained: {st}");
            std::thread::sleep(Duration::from_millis(50));
        }
        mi_shutdown(2000);
        for (id, infno) in &accepted {
            let st: String = db.query_row("SELECT state FROM mi_request WHERE id = ?1", [id], |r| r.get(0)).unwrap();
            let ok = if infno == "2207" {
                ["succeeded", "uncertain"].contains(&st.as_str())
            } else {
                ["succeeded", "failed"].contains(&st.as_str())
            };
            assert!(ok, "round {round}: accepted request {id} ({infno}) ended {st}");
        }
        let unfinished: i64 = db
            .query_row("SELECT count(*) FROM mi_request WHERE state IN ('queued', 'sending', 'retry_wait')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(unfinished, 0);
        let ledger = env.ledger();
        assert_eq!(ledger["double_settle_attempts"], 0, "round {round}: a settlement was sent twice");
        assert_eq!(ledger["rejected"], 0, "round {round}: {}", ledger["rejections"]);
        let processed = ledger["processed_msgids"].as_array().unwrap();
        let distinct: std::collections::HashSet<_> = processed.iter().collect();
        assert_eq!(distinct.len(), processed.len(), "round {round}: a msgid was processed twice");
        let settlements = ledger["settlements"].as_array().unwrap();
        let mut per_visit = std::collections::HashMap::new();
        for s in settlements {
            *per_visit.entry(s["mdtrt_id"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
        assert!(per_visit.values().all(|n| *n == 1), "a visit settled twice");
        let finals: Vec<(String, i64)> = db
            .prepare("SELECT state, count(*) FROM mi_request WHERE infno = '2207' GROUP BY state")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        println!("round {round}: killed after {kill_after} ms with {} accepted; at the kill {at_kill:?}; settlements now {finals:?}", accepted.len());
        assert!(!accepted.is_empty(), "round {round}: the child accepted nothing before the kill");
    }
}

#[test]
fn two_processes_drain_one_journal_and_never_send_a_request_twice() {
    let _g = serial();
    let env = Env::plain();
    let config = env.config(json!({"workers": 3}));
    // Sign in once, then fill the journal with 300 registrations without sending them.
    assert_eq!(init_text(&config.to_string()), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    mi_shutdown(1000);
    use mi_sdk::internals::{build_envelope, CallInput, CallMode, Journal, NewRequest, Options};
    let cfg = mi_sdk::Config::from_json(&config.to_string(), env.dir.path()).unwrap();
    let journal = Journal::open(&cfg.journal_path(), Options::of(&cfg, mi_sdk::Clock::system())).unwrap();
    let rows: Vec<(NewRequest, String)> = (0..300)
        .map(|i| {
            let input = json!({"input": {"data": {"psn_no": PSN, "insutype": "310", "ipt_otp_no": format!("TP{i}")}}, "insuplc_admdvs": "440300"});
            let call = CallInput::parse(&input.to_string()).unwrap();
            let req = NewRequest {
                infno: "2201".into(),
                mode: CallMode::Async,
                priority: 0,
                caller_msgid: None,
                reversal_of: None,
                source: None,
            };
            (req, serde_json::to_string(&build_envelope(&cfg, "2201", &call, &Default::default()).unwrap()).unwrap())
        })
        .collect();
    let results = journal.write(|tx| tx.insert_queued(&rows)).unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    drop(journal);
    let (mut a, _) = spawn_child("drain", &config, None);
    let (mut b, _) = spawn_child("drain", &config, None);
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let ledger = env.ledger();
    assert_eq!(ledger["by_infno"]["2201"], 300, "each registration reached the platform exactly once");
    assert_eq!(ledger["visits"].as_array().unwrap().len(), 300);
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
    let db = rusqlite::Connection::open(env.journal_path()).unwrap();
    let (ok, attempts): (i64, i64) = db
        .query_row(
            "SELECT count(*), sum(attempts) FROM mi_request WHERE infno = '2201' AND state = 'succeeded'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((ok, attempts), (300, 300));
    let owners: i64 = db.query_row("SELECT count(*) FROM mi_owner", [], |r| r.get(0)).unwrap();
    assert!(owners >= 3, "both drainers registered ({owners} owners)");
}
