//! The delivery guarantees (docs/delivery.md) through the C ABI against the simulator:
//! the fault matrix, priority order, reversal, and what the journal records.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::time::Duration;

const PSN: &str = "44030000000000100001";

/// A visit of the registry's first person, worth 10 yuan.
fn visit(otp_no: &str) -> Value {
    common::visit(PSN, otp_no, 10.0)
}

fn with_fault(mut input: Value, fault: &Value) -> Value {
    if !fault.is_null() {
        input["_sim"] = fault.clone();
    }
    json!({"input": input, "insuplc_admdvs": "440300"})
}

fn attempts(id: i64) -> i64 {
    get_request(id).1["attempts"].as_i64().unwrap()
}

/// Attempts the journal records as refused before they left.
fn never_sent(env: &Env) -> i64 {
    journal_count(env, "SELECT count(*) FROM mi_attempt WHERE outcome = 'never_sent'")
}

fn settled(env: &Env, mdtrt: &str) -> usize {
    env.ledger()["settlements"].as_array().unwrap().iter().filter(|s| s["mdtrt_id"] == mdtrt).count()
}

/// (fault, query code + attempts, settlement code + attempts, settlement booked?)
type Case = (&'static str, Value, (i32, i64), (i32, i64), bool);

#[test]
fn fault_matrix_query_and_settlement() {
    let _g = serial();
    let env = Env::plain();
    let policy = json!({"gateway": {"timeout_ms": 600, "connect_timeout_ms": 300},
                        "retry": {"max_attempts": 3, "base_delay_ms": 100, "max_delay_ms": 400}});
    assert_eq!(env.init(policy), MI_OK);
    let q = q1101(ZHANG_CERTNO);
    let cases: Vec<Case> = vec![
        ("late answer", json!({"delay_ms": 1200}), (MI_E_TIMEOUT, 3), (MI_E_UNCERTAIN, 1), true),
        ("HTTP 500", json!({"http_status": 500}), (MI_E_PROTOCOL, 3), (MI_E_UNCERTAIN, 1), true),
        ("not JSON", json!({"garbage": true}), (MI_E_PROTOCOL, 3), (MI_E_UNCERTAIN, 1), true),
        ("processed, then dropped", json!({"drop": true}), (MI_E_TIMEOUT, 3), (MI_E_UNCERTAIN, 1), true),
    ];
    for (i, (name, fault, (qc, qa), (sc, sa), booked)) in cases.into_iter().enumerate() {
        let before = env.ledger()["by_infno"]["1101"].as_u64().unwrap_or(0);
        let (rc, out) = call("1101", with_fault(q.clone(), &fault));
        assert_eq!(rc, qc, "{name}: query {out}");
        let id = mi_last_request_id();
        assert_eq!(attempts(id), qa, "{name}: query attempts");
        assert!(env.sim.wait_idle(Duration::from_secs(10)), "{name}: the late answers are done");
        assert_eq!(
            env.ledger()["by_infno"]["1101"].as_u64().unwrap(),
            before + qa as u64,
            "{name}: each attempt reached the platform"
        );
        let settle = visit(&format!("MX{i}"));
        let mdtrt = settle["data"]["mdtrt_id"].as_str().unwrap().to_string();
        let (rc, out) = call("2207", with_fault(settle, &fault));
        assert_eq!(rc, sc, "{name}: settlement {out}");
        let id = mi_last_request_id();
        assert_eq!(attempts(id), sa, "{name}: settlement attempts");
        assert_eq!(get_request(id).1["state"], "uncertain");
        assert!(env.sim.wait_idle(Duration::from_secs(10)), "{name}: the late answer is done");
        assert_eq!(settled(&env, &mdtrt), usize::from(booked), "{name}: booked once, never twice");
    }
    // Resent queries carry fresh msgids, each on its attempt row.
    mi_shutdown(1000);
    let db = rusqlite::Connection::open(env.journal_path()).unwrap();
    let (n, distinct): (i64, i64) = db
        .query_row("SELECT count(*), count(DISTINCT a.msgid) FROM mi_attempt a JOIN mi_request r ON r.id = a.request_id WHERE r.infno = '1101'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((n, distinct), (12, 12));
    assert_eq!(env.ledger()["double_settle_attempts"], 0);
    assert_eq!(env.ledger()["rejected"], 0, "{}", env.ledger()["rejections"]);
}

#[test]
fn refused_connections_are_resent_for_every_class_and_a_refused_sign_no_once() {
    let _g = serial();
    let env = Env::plain();
    let policy = json!({"gateway": {"timeout_ms": 2000, "connect_timeout_ms": 300},
                        "retry": {"max_attempts": 4, "base_delay_ms": 200, "max_delay_ms": 400}});
    assert_eq!(env.init(policy), MI_OK);
    let settle = visit("MR1");
    let mdtrt = settle["data"]["mdtrt_id"].as_str().unwrap().to_string();
    // Down for a moment: both classes are resent (the failure proves they never left)
    // and succeed. The network comes back once the journal shows a refused attempt.
    for (infno, input) in
        [("1101", json!({"input": q1101(ZHANG_CERTNO)})), ("2207", with_fault(settle.clone(), &Value::Null))]
    {
        let refused_before = never_sent(&env);
        env.sim.refuse();
        let ((rc, out), id) = std::thread::scope(|s| {
            let sent = s.spawn(|| (call(infno, input), mi_last_request_id()));
            assert!(wait_until(|| never_sent(&env) > refused_before), "{infno}: no refused attempt recorded");
            env.sim.accept_again();
            sent.join().unwrap()
        });
        assert_eq!(rc, MI_OK, "{infno}: {out}");
        assert!(attempts(id) >= 2, "{infno} was refused first");
    }
    assert_eq!(settled(&env, &mdtrt), 1);
    // Down for longer than all attempts: MI_E_NETWORK after max_attempts, nothing booked.
    let settle = visit("MR2");
    let mdtrt = settle["data"]["mdtrt_id"].as_str().unwrap().to_string();
    env.sim.refuse();
    let (rc, out) = call("2207", with_fault(settle, &Value::Null));
    env.sim.accept_again();
    assert_eq!(rc, MI_E_NETWORK, "{out}");
    assert_eq!(attempts(mi_last_request_id()), 4);
    assert_eq!(get_request(mi_last_request_id()).1["state"], "failed");
    assert_eq!(settled(&env, &mdtrt), 0);
    // The platform refuses the sign_no once: a new sign-in, one resend, one booking.
    let settle = visit("MR3");
    let mdtrt = settle["data"]["mdtrt_id"].as_str().unwrap().to_string();
    let signins = env.ledger()["signins"].as_array().unwrap().len();
    env.sim.reject_sign_no_once();
    let (rc, out) = call("2207", with_fault(settle, &Value::Null));
    assert_eq!(rc, MI_OK, "{out}");
    assert_eq!(attempts(mi_last_request_id()), 2);
    assert_eq!(env.ledger()["signins"].as_array().unwrap().len(), signins + 1);
    assert_eq!(settled(&env, &mdtrt), 1);
    mi_shutdown(1000);
}

#[test]
fn reversal_by_hand_and_by_policy() {
    let _g = serial();
    let env = Env::plain();
    let policy =
        json!({"gateway": {"timeout_ms": 800}, "retry": {"max_attempts": 3, "base_delay_ms": 50, "max_delay_ms": 200}});
    assert_eq!(env.init(policy.clone()), MI_OK);
    let balance = || env.ledger()["balances"][PSN].as_f64().unwrap();
    let start = balance();
    // A 2207 processed and then dropped: uncertain, the account already charged.
    let (rc, _) = call("2207", with_fault(visit("RV1"), &json!({"drop": true})));
    assert_eq!(rc, MI_E_UNCERTAIN);
    let id = mi_last_request_id();
    assert!(balance() < start);
    let mut buf = vec![0u8; 65536];
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    let rc = unsafe { mi_reverse(id, buf.as_mut_ptr().cast(), &mut len) };
    assert_eq!(rc, MI_OK, "{}", String::from_utf8_lossy(&buf[..len.max(0) as usize]));
    let rev = mi_last_request_id();
    assert_ne!(rev, id);
    let (_, orig) = get_request(id);
    let (_, r) = get_request(rev);
    assert_eq!((orig["state"].as_str(), orig["reversed_by"].as_i64()), (Some("reversed"), Some(rev)));
    assert_eq!(
        (r["infno"].as_str(), r["reversal_of"].as_i64(), r["state"].as_str()),
        (Some("2601"), Some(id), Some("succeeded"))
    );
    assert_eq!(balance(), start, "the account got its money back");
    let l = env.ledger();
    let last = l["reversals"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["omsgid"].as_str(), last["effect"].as_str()), (orig["msgid"].as_str(), Some("reversed")));
    // A reversal that cannot reach the platform stays visible and can be tried again.
    let (rc, _) = call("2207", with_fault(visit("RV3"), &json!({"drop": true})));
    assert_eq!(rc, MI_E_UNCERTAIN);
    let id3 = mi_last_request_id();
    env.sim.refuse();
    let mut len = buf.len() as i32;
    // SAFETY: as above.
    assert_eq!(unsafe { mi_reverse(id3, buf.as_mut_ptr().cast(), &mut len) }, MI_E_NETWORK);
    env.sim.accept_again();
    let failed_rev = mi_last_request_id();
    let (_, orig3) = get_request(id3);
    assert_eq!((orig3["state"].as_str(), orig3["reversed_by"].as_i64()), (Some("uncertain"), Some(failed_rev)));
    assert_eq!(get_request(failed_rev).1["state"], "failed");
    let mut len = buf.len() as i32;
    // SAFETY: as above.
    assert_eq!(unsafe { mi_reverse(id3, buf.as_mut_ptr().cast(), &mut len) }, MI_OK);
    assert_eq!(get_request(id3).1["state"], "reversed");
    // What cannot be reversed says why.
    let mut len = buf.len() as i32;
    // SAFETY: as above.
    assert_eq!(unsafe { mi_reverse(id, buf.as_mut_ptr().cast(), &mut len) }, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("reversed"), "{}", last_error());
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    let mut len = buf.len() as i32;
    // SAFETY: as above.
    assert_eq!(unsafe { mi_reverse(mi_last_request_id(), buf.as_mut_ptr().cast(), &mut len) }, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("does not reverse"), "{}", last_error());
    let mut len = buf.len() as i32;
    // SAFETY: as above.
    assert_eq!(unsafe { mi_reverse(424242, buf.as_mut_ptr().cast(), &mut len) }, MI_E_NOT_FOUND);
    mi_shutdown(1000);

    // uncertain_policy "reverse": the engine sends the 2601 by itself.
    let mut p = policy;
    p["retry"]["uncertain_policy"] = json!("reverse");
    assert_eq!(env.init(p), MI_OK);
    let before = balance();
    let (rc, _) = call("2207", with_fault(visit("RV2"), &json!({"drop": true})));
    assert_eq!(rc, MI_E_UNCERTAIN);
    let id = mi_last_request_id();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get_request(id).1["state"] != "reversed" && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, orig) = get_request(id);
    assert_eq!(orig["state"], "reversed", "{orig}");
    let rev = orig["reversed_by"].as_i64().unwrap();
    assert_eq!(get_request(rev).1["reversal_of"], id);
    assert_eq!(balance(), before);
    // The caller still sees what happened to its call: uncertain, then reversed.
    assert_eq!(get_result(id).0, MI_E_UNCERTAIN);
    mi_shutdown(1000);
}

#[test]
fn higher_priority_goes_first_fifo_within_a_priority() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"workers": 1})), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    // Hold the one worker at a gate while the queue fills.
    let mut held = q1101(ZHANG_CERTNO);
    held["_sim"] = json!({"gate": "blocker"});
    let (_, blocker) = call_async("1101", held, 0);
    assert!(env.sim.wait_at_gate("blocker", 1, Duration::from_secs(10)), "the worker is sending the blocker");
    let mut ids = Vec::new();
    for (i, prio) in [0, 5, 0, 9, 5, 0, 9].into_iter().enumerate() {
        let (rc, id) = call_async("1101", q1101(ZHANG_CERTNO), prio);
        assert_eq!(rc, MI_OK);
        ids.push((prio, i, id));
    }
    env.sim.open_gate("blocker");
    for (_, _, id) in &ids {
        assert_eq!(wait_result(*id, 10).0, MI_OK);
    }
    assert_eq!(wait_result(blocker, 10).0, MI_OK);
    mi_shutdown(1000);
    let db = rusqlite::Connection::open(env.journal_path()).unwrap();
    let order: Vec<i64> = db
        .prepare("SELECT request_id FROM mi_attempt ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let sent: Vec<i64> = order.into_iter().filter(|r| ids.iter().any(|(_, _, id)| id == r)).collect();
    let mut expected = ids.clone();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(sent, expected.iter().map(|e| e.2).collect::<Vec<_>>());
}

#[test]
fn async_retries_happen_in_the_workers() {
    let _g = serial();
    let env = Env::plain();
    let policy =
        json!({"gateway": {"timeout_ms": 500}, "retry": {"max_attempts": 3, "base_delay_ms": 50, "max_delay_ms": 100}});
    assert_eq!(env.init(policy), MI_OK);
    let mut slow = q1101(ZHANG_CERTNO);
    slow["_sim"] = json!({"delay_ms": 900});
    let (_, id) = call_async("1101", slow, 0);
    let (rc, out) = wait_result(id, 20);
    assert_eq!(rc, MI_E_TIMEOUT, "{out}");
    assert_eq!(attempts(id), 3);
    let (_, settle_id) = call_async("2207", with_fault(visit("AS1"), &json!({"delay_ms": 900})), 0);
    assert_eq!(wait_result(settle_id, 20).0, MI_E_UNCERTAIN);
    assert_eq!(attempts(settle_id), 1);
    mi_shutdown(1000);
}
