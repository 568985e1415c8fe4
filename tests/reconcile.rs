//! The day's books: settlements made on two workstations (two processes, two
//! journals) reconciled with the simulator's books by `mi-sdk reconcile` and by
//! `mi_reconcile`, with the classic mismatches: an answer dropped after the platform
//! settled, a manual reversal, a settlement the platform reversed on its own, one it
//! booked on another day, and one lost before it arrived.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::ffi::{c_char, CString};
use std::path::Path;
use std::process::Command;

const PSN: &str = "44030000000000100001";

/// The child side: `MI_CHILD_DAY` is a workstation's day, a list of
/// `[outpatient number, amount, fault]`: each visit registered and settled (2207)
/// with the fault given to the simulator; prints `SETTLED <request id> <code>`.
#[test]
#[ignore = "a child process of the reconciliation tests"]
fn child_process() {
    let Ok(day) = std::env::var("MI_CHILD_DAY") else {
        return;
    };
    assert_eq!(init_text(&std::env::var("MI_CHILD_CONFIG").unwrap()), MI_OK, "{}", last_error());
    let day: Vec<(String, f64, Value)> = serde_json::from_str(&day).unwrap();
    for (otp, amount, fault) in day {
        let mut input = visit(PSN, &otp, amount);
        input["data"]["insutype"] = json!("310");
        if !fault.is_null() {
            input["_sim"] = fault;
        }
        let (rc, _) = call("2207", json!({"input": input, "insuplc_admdvs": "440300"}));
        println!("SETTLED {} {rc}", mi_last_request_id());
    }
    mi_shutdown(5000);
}

/// A workstation's config file (its own journal and msgid node) in `dir`.
fn workstation(env: &Env, dir: &Path, node: u32) -> std::path::PathBuf {
    let cfg = env.config(json!({"node_id": node, "journal": {"path": dir.join("mi_journal.db").to_string_lossy()},
        "gateway": {"timeout_ms": 2000}, "log": {"dir": dir.join("logs").to_string_lossy()}}));
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("mi_sdk.json");
    std::fs::write(&file, cfg.to_string()).unwrap();
    file
}

/// Runs a workstation's day in a process of its own: (request id, code) per visit.
fn run_day(config: &Path, day: Value) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_process", "--nocapture", "--test-threads=1"])
        .env("MI_CHILD_CONFIG", std::fs::read_to_string(config).unwrap())
        .env("MI_CHILD_DAY", day.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn settled(child: std::process::Child) -> Vec<(i64, i32)> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the workstation's day failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("SETTLED ").nth(1))
        .map(|l| {
            let mut w = l.split_whitespace().map(|x| x.parse::<i64>().unwrap());
            (w.next().unwrap(), w.next().unwrap() as i32)
        })
        .collect()
}

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

fn show(config: &Path, id: i64) -> Value {
    let (code, out, err) = cli(config, &["show", &id.to_string(), "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The platform's settlement made under `msgid`.
fn platform_settlement(env: &Env, msgid: &str) -> Value {
    env.ledger()["settlements"].as_array().unwrap().iter().find(|s| s["msgid"] == msgid).cloned().unwrap_or(Value::Null)
}

#[test]
fn a_day_on_two_workstations_balances_once_the_dropped_answer_is_confirmed_by_the_platforms_books() {
    let _g = serial();
    let env = Env::plain();
    let (a, b) = (workstation(&env, &env.dir.path().join("a"), 1), workstation(&env, &env.dir.path().join("b"), 2));
    let day_a = run_day(&a, json!([["RA1", 10.0, null], ["RA2", 20.0, {"drop": true}], ["RA3", 5.5, null]]));
    let day_b = run_day(&b, json!([["RB1", 30.0, null], ["RB2", 40.0, null]]));
    let (day_a, day_b) = (settled(day_a), settled(day_b));
    assert_eq!(day_a.iter().map(|r| r.1).collect::<Vec<_>>(), [MI_OK, MI_E_UNCERTAIN, MI_OK]);
    assert_eq!(day_b.iter().map(|r| r.1).collect::<Vec<_>>(), [MI_OK, MI_OK]);
    let dropped = day_a[1].0;
    // The cashier at B reverses a settlement by hand: both books drop it.
    let (code, out, err) = cli(&b, &["reverse", &day_b[1].0.to_string()]);
    assert_eq!(code, 0, "{out}{err}");

    // A's journal and B's (read only, and a copy of it in a folder: counted once).
    let copies = env.dir.path().join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    let b_journal = env.dir.path().join("b/mi_journal.db");
    std::fs::copy(&b_journal, copies.join("b-copy.db")).unwrap();
    let b_before = std::fs::read(&b_journal).unwrap();
    let d = today();
    let args =
        ["reconcile", "--date", &d, "--journal", b_journal.to_str().unwrap(), "--journal", copies.to_str().unwrap()];
    let b_files = |dir: &Path| {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let b_listed = b_files(&env.dir.path().join("b"));
    let (code, out, err) = cli(&a, &[&args[..], &["--json"]].concat());
    assert_eq!(code, 3, "the books differ: {out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["balanced"], false, "{report:#}");
    let journals = report["journals"].as_array().unwrap();
    assert_eq!(journals.len(), 3, "{report:#}");
    assert_eq!(
        (journals[0]["own"].as_bool(), journals[0]["settlements"].as_i64(), journals[0]["uncertain"].as_i64()),
        (Some(true), Some(2), Some(1))
    );
    assert_eq!(journals[1]["settlements"], 1, "B's two, one reversed since: {report:#}");
    assert_eq!(
        (journals[2]["settlements"].as_i64(), journals[2]["duplicates"].as_i64()),
        (Some(0), Some(2)),
        "the copy adds nothing: {report:#}"
    );
    let group = &report["groups"][0];
    assert_eq!(report["groups"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(
        (group["ours"]["fixmedins_setl_cnt"].as_i64(), group["platform"]["fixmedins_setl_cnt"].as_i64()),
        (Some(3), Some(4))
    );
    assert_eq!(group["ours"]["medfee_sumamt"], "45.50");
    // The 3202 chain names the settlement only the platform has: the dropped one.
    let msgid = show(&a, dropped)["msgid"].as_str().unwrap().to_string();
    let theirs = platform_settlement(&env, &msgid);
    let diffs = report["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{report:#}");
    assert_eq!((diffs[0]["side"].as_str(), diffs[0]["msgid"].as_str()), (Some("platform_only"), Some(msgid.as_str())));
    assert_eq!(diffs[0]["setl_id"], theirs["setl_id"]);
    // ... and the uncertain row ends succeeded with the platform's setl_id.
    let resolved = &report["resolved"][0];
    assert_eq!(
        (resolved["request_id"].as_i64(), resolved["verdict"].as_str(), resolved["applied"].as_bool()),
        (Some(dropped), Some("succeeded"), Some(true))
    );
    assert_eq!(resolved["setl_id"], theirs["setl_id"]);
    assert_eq!(report["uncertain_left"], 0);
    let row = show(&a, dropped);
    assert_eq!(row["state"], "succeeded", "{row:#}");
    let result = &row["result"];
    assert_eq!(result["output"]["setlinfo"]["setl_id"], theirs["setl_id"], "{row:#}");
    assert_eq!(result["confirmed_by"], format!("reconciliation of {d}"));
    assert_eq!(std::fs::read(&b_journal).unwrap(), b_before, "another workstation's journal is only read");
    assert_eq!(b_files(&env.dir.path().join("b")), b_listed, "and nothing is made beside it (no -wal, no -shm)");

    // The second run: balanced, nothing left to resolve.
    let (code, out, err) = cli(&a, &args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("BALANCED") && out.contains("balanced") && !out.contains("DIFFERENT"), "{out}");
    let (code, out, _) = cli(&a, &[&args[..], &["--json"]].concat());
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((code, report["balanced"].as_bool()), (0, Some(true)), "{report:#}");
    assert_eq!(report["groups"][0]["ours"]["fixmedins_setl_cnt"], 4);
    assert!(report["differences"].as_array().unwrap().is_empty() && report["resolved"].as_array().unwrap().is_empty());

    // Wrong usage and bad journals are said, not guessed.
    for wrong in [
        &["reconcile"][..],
        &["reconcile", "--date", "2026-13-01"],
        &["reconcile", "--date", &d, "--journal"],
        &["reconcile", "--date", &d, "--jornal", "x.db"],
        &["reconcile", "--date", &d, "--journal", "--to", &d],
    ] {
        assert_eq!(cli(&a, wrong).0, 2, "{wrong:?}");
    }
    let empty = env.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = cli(&a, &["reconcile", "--date", &d, "--journal", empty.to_str().unwrap()]);
    assert!(code == 1 && err.contains("no journal"), "{err}");
    let not_journal = env.dir.path().join("a/mi_sdk.json");
    let (code, _, err) = cli(&a, &["reconcile", "--date", &d, "--journal", not_journal.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("mi_sdk.json"), "{err}");
}

/// `mi_reconcile` with its buffer rules.
fn reconcile(request: Option<&str>, cap: i32) -> (i32, String, i32) {
    let request = request.map(|r| CString::new(r).unwrap());
    let mut buf = vec![0u8; cap.max(1) as usize];
    let mut len = cap;
    let ptr = if cap == 0 { std::ptr::null_mut() } else { buf.as_mut_ptr() as *mut c_char };
    // SAFETY: a valid string or NULL; buf has `cap` bytes.
    let rc = unsafe { mi_reconcile(request.as_ref().map_or(std::ptr::null(), |r| r.as_ptr()), ptr, &mut len) };
    let text = if rc == MI_OK { String::from_utf8(buf[..len as usize].to_vec()).unwrap() } else { String::new() };
    (rc, text, len)
}

#[test]
fn mismatches_the_platform_made_are_named_and_change_nothing_and_a_lost_settlement_is_declared_not_processed() {
    let _g = serial();
    let env = Env::plain();
    let d = today();
    assert_eq!(reconcile(Some(&json!({"from": d}).to_string()), 4096).0, MI_E_NOT_INITIALIZED);
    assert_eq!(env.init(json!({"gateway": {"timeout_ms": 2000}})), MI_OK, "{}", last_error());
    let mut ids = Vec::new();
    for (otp, amount) in [("RC1", 11.0), ("RC2", 12.0), ("RC3", 13.0)] {
        let (rc, out) = call("2207", json!({"input": visit(PSN, otp, amount), "insuplc_admdvs": "440300"}));
        assert_eq!(rc, MI_OK, "{out}");
        ids.push((mi_last_request_id(), out["output"]["setlinfo"]["setl_id"].as_str().unwrap().to_string()));
    }
    let mut lost = visit(PSN, "RC4", 14.0);
    lost["_sim"] = json!({"lost": true});
    assert_eq!(call("2207", json!({"input": lost, "insuplc_admdvs": "440300"})).0, MI_E_UNCERTAIN);
    let lost_id = mi_last_request_id();

    // The platform reverses RC1 on its own and books RC2 the day before.
    let yesterday = (chrono::Local::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let fault = |f: Value| {
        ureq::post(&format!("{}/sim/faults", env.sim.base_url()))
            .send(f.to_string())
            .map(|r| r.status().as_u16())
            .unwrap_or(400)
    };
    assert_eq!(fault(json!({"platform_reverse": ids[0].1})), 200);
    assert_eq!(fault(json!({"settlement_day": {"setl_id": ids[1].1, "day": yesterday}})), 200);
    assert_eq!(fault(json!({"platform_reverse": "NO-SUCH"})), 400);

    let (rc, out, _) = reconcile(Some(&json!({"from": d}).to_string()), 1 << 20);
    assert_eq!(rc, MI_OK, "{}", last_error());
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["balanced"], false);
    let mut only_ours: Vec<&str> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["side"] == "institution_only")
        .map(|r| r["setl_id"].as_str().unwrap())
        .collect();
    only_ours.sort();
    let mut expected = vec![ids[0].1.as_str(), ids[1].1.as_str()];
    expected.sort();
    assert_eq!(only_ours, expected, "{report:#}");
    assert!(report["differences"][0]["request_id"].as_i64().is_some(), "{report:#}");
    // Sent a moment ago: its absence proves nothing yet.
    assert_eq!(report["uncertain_left"], 1, "{report:#}");
    assert!(report["resolved"].as_array().unwrap().is_empty());
    for (id, _) in &ids {
        let (rc, row) = get_request(*id);
        assert_eq!(
            (rc, row["state"].as_str()),
            (MI_OK, Some("succeeded")),
            "nothing is reversed on the platform's word: {row}"
        );
    }
    // The two days together: RC2 is in both books now; RC1 still only in ours.
    let (_, out, _) = reconcile(Some(&json!({"from": yesterday, "to": d}).to_string()), 1 << 20);
    let report: Value = serde_json::from_str(&out).unwrap();
    let sides: Vec<(&str, &str)> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["setl_id"].as_str().unwrap(), r["side"].as_str().unwrap()))
        .collect();
    assert_eq!(sides, [(ids[0].1.as_str(), "institution_only")], "{report:#}");

    // Twenty minutes on (the journal's clock, moved back instead), the lost one's
    // absence from its day's detail means it was not processed.
    mi_shutdown(2000);
    let c = rusqlite::Connection::open(env.journal_path()).unwrap();
    for sql in [
        "UPDATE mi_request SET created_at = strftime('%Y-%m-%d %H:%M:%f', created_at, '-20 minutes') WHERE id = ?1",
        "UPDATE mi_attempt SET started_at = strftime('%Y-%m-%d %H:%M:%f', started_at, '-20 minutes') WHERE request_id = ?1",
    ] {
        assert_eq!(c.execute(sql, [lost_id]).unwrap(), 1);
    }
    let sent: String =
        c.query_row("SELECT started_at FROM mi_attempt WHERE request_id = ?1", [lost_id], |r| r.get(0)).unwrap();
    drop(c);
    assert_eq!(env.init(json!({"gateway": {"timeout_ms": 2000}})), MI_OK);
    // A buffer too small: the report is kept and handed over when asked again, so
    // what the run resolved (written once) reaches the HIS.
    let request = json!({"from": &sent[..10], "to": d}).to_string();
    let (rc, _, needed) = reconcile(Some(&request), 16);
    assert_eq!(rc, MI_E_BUFFER_TOO_SMALL);
    let (rc, out, _) = reconcile(Some(&request), needed + 1);
    assert_eq!(rc, MI_OK, "{}", last_error());
    let report: Value = serde_json::from_str(&out).unwrap();
    let r = &report["resolved"][0];
    assert_eq!(
        (r["request_id"].as_i64(), r["verdict"].as_str(), r["applied"].as_bool()),
        (Some(lost_id), Some("not_processed"), Some(true)),
        "{report:#}"
    );
    let (_, row) = get_request(lost_id);
    assert_eq!(row["state"], "failed", "{row}");
    assert!(row["last_error"].as_str().unwrap().contains("safe to settle again"), "{row}");

    // Asked again, it runs again: nothing is resolved twice.
    let (rc, out, _) = reconcile(Some(&request), 1 << 20);
    assert_eq!(rc, MI_OK, "{}", last_error());
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((again["resolved"].as_array().map(Vec::len), again["uncertain_left"].as_i64()), (Some(0), Some(0)));
    for bad in [
        None,
        Some("{"),
        Some(r#"{"from":"2026-11-31"}"#),
        Some(r#"{"from":"2026-11-01","to":"2026-12-30"}"#),
        Some(r#"{"from":"2026-11-01","cashier":1}"#),
    ] {
        assert_eq!(reconcile(bad, 4096).0, MI_E_INVALID_ARGUMENT, "{bad:?}");
        assert!(!last_error().is_empty());
    }
    mi_shutdown(2000);
}

/// `uncertain_policy: "query"`: a settlement whose answer was lost is looked for at
/// once in the platform's detail of the day; found, the cashier gets the platform's
/// settlement; not found (it never arrived), it is held, never declared either way.
#[test]
fn the_query_policy_confirms_a_dropped_settlement_at_once_and_holds_a_lost_one() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"retry": {"uncertain_policy": "query"}, "gateway": {"timeout_ms": 2000}})), MI_OK);
    let (rc, out) = call("2207", json!({"input": visit(PSN, "RQ1", 21.0), "insuplc_admdvs": "440300"}));
    assert_eq!(rc, MI_OK, "{out}");
    let mut dropped = visit(PSN, "RQ2", 22.0);
    dropped["_sim"] = json!({"drop": true});
    let (rc, out) = call("2207", json!({"input": dropped, "insuplc_admdvs": "440300"}));
    assert_eq!(rc, MI_OK, "the platform's detail has it: {out}");
    let id = mi_last_request_id();
    let (_, row) = get_request(id);
    let theirs = platform_settlement(&env, row["msgid"].as_str().unwrap());
    assert_eq!(out["output"]["setlinfo"]["setl_id"], theirs["setl_id"], "{out}");
    // The platform's own record (5203, by the setl_id the detail gave): what the
    // cashier collects and the account's balance, which the detail lacks.
    let info = &out["output"]["setlinfo"];
    assert_eq!(
        (info["medfee_sumamt"].as_f64(), info["setl_id"].as_str()),
        (Some(22.0), theirs["setl_id"].as_str()),
        "{out}"
    );
    assert!(info["psn_cash_pay"].is_number() && info["balc"].is_number(), "{out}");
    assert_eq!(out["confirmed_by"], format!("reconciliation of {}", today()));
    assert_eq!(row["state"], "succeeded");
    assert_eq!(env.ledger()["by_infno"]["3202"], 1, "asked through the 3202 chain");

    let mut lost = visit(PSN, "RQ3", 23.0);
    lost["_sim"] = json!({"lost": true});
    let (rc, out) = call("2207", json!({"input": lost, "insuplc_admdvs": "440300"}));
    assert_eq!(rc, MI_E_UNCERTAIN, "{out}");
    let (_, row) = get_request(mi_last_request_id());
    assert_eq!(row["state"], "uncertain", "held: {row}");
    assert_eq!(env.ledger()["by_infno"]["3202"], 2);
    mi_shutdown(2000);
}
