//! Async calls through the C ABI: durable submit, results read from the journal,
//! backpressure, and shutdown that leaves queued work for the next start. Also the
//! promise that no secret reaches a log, the status, an error text or the journal.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::{json, Value};

#[test]
fn async_batch_completes_and_reads_back_from_the_journal() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"workers": 3})), MI_OK);
    let ids: Vec<i64> = (0..40)
        .map(|i| {
            let (rc, id) = call_async("1101", q1101(ZHANG_CERTNO), i % 3);
            assert_eq!(rc, MI_OK, "{}", last_error());
            assert_eq!(mi_last_request_id(), id);
            id
        })
        .collect();
    for id in &ids {
        let (rc, out) = wait_result(*id, 20);
        assert_eq!(rc, MI_OK, "{out}");
        assert_eq!(out["output"]["baseinfo"]["psn_no"], "44030000000000100001");
        let (rc, rec) = get_request(*id);
        assert_eq!(rc, MI_OK);
        for key in [
            "request_id",
            "msgid",
            "infno",
            "state",
            "priority",
            "attempts",
            "created_at",
            "updated_at",
            "last_error",
            "reversal_of",
            "reversed_by",
        ] {
            assert!(rec.get(key).is_some(), "{key} missing in {rec}");
        }
        assert_eq!(
            (rec["state"].as_str(), rec["infno"].as_str(), rec["attempts"].as_i64()),
            (Some("succeeded"), Some("1101"), Some(1))
        );
    }
    let ledger = env.ledger();
    assert_eq!((ledger["by_infno"]["1101"].as_u64(), ledger["rejected"].as_u64()), (Some(40), Some(0)));
    let (_, st) = status();
    assert_eq!(
        (st["workers"].as_u64(), st["queue_depth"].as_u64(), st["counts"]["succeeded"].as_u64()),
        (Some(3), Some(0), Some(41))
    );
    assert!(st["latency_ms"]["p50"].as_u64().is_some() && st["latency_ms"]["p99"].as_u64().is_some());
    // A business error comes back the same way the sync call would give it.
    let (_, id) = call_async("1101", q1101("000"), 0);
    let (rc, out) = wait_result(id, 10);
    assert_eq!(rc, MI_E_BUSINESS);
    assert!(out["err_msg"].as_str().unwrap().contains("未查询到"));
    mi_shutdown(2000);
}

/// An acknowledged async request whose automatic sign-in (9001) `mi_shutdown` breaks
/// off never left: it waits in the queue, and the next start signs in and sends it.
#[test]
fn shutdown_during_the_automatic_sign_in_leaves_the_request_for_the_next_start() {
    let _g = serial();
    let env = Env::plain();
    // The platform unreachable: the sign-in the request needs waits to be resent.
    env.sim.refuse();
    let retry = json!({"max_attempts": 10, "base_delay_ms": 30000, "max_delay_ms": 30000});
    assert_eq!(env.init(json!({"workers": 1, "retry": retry})), MI_OK);
    let (rc, id) = call_async("1101", q1101(ZHANG_CERTNO), 0);
    assert_eq!(rc, MI_OK, "{}", last_error());
    let refused = "SELECT count(*) FROM mi_attempt a JOIN mi_request r ON r.id = a.request_id
                    WHERE r.infno = '9001' AND a.finished_at IS NOT NULL";
    assert!(wait_until(|| journal_count(&env, refused) >= 1), "the sign-in was refused once");
    assert_eq!(mi_shutdown(2000), MI_OK);
    let state = "SELECT count(*) FROM mi_request WHERE infno = '1101' AND state = 'retry_wait' AND mi_code IS NULL";
    assert_eq!(journal_count(&env, state), 1, "the request waits for the next start");
    env.sim.accept_again();
    assert_eq!(env.init(json!({"workers": 1})), MI_OK);
    let (rc, out) = wait_result(id, 10);
    assert_eq!(rc, MI_OK, "{out}");
    assert_eq!(out["output"]["baseinfo"]["psn_no"], "44030000000000100001");
    assert_eq!(env.ledger()["by_infno"]["1101"], 1);
    mi_shutdown(1000);
}

#[test]
fn pending_busy_and_shutdown_leave_queued_requests_for_the_next_start() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"workers": 1, "queue_capacity": 3})), MI_OK);
    // Sign in first so the held request below is the only thing in flight.
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    let mut held = q1101(ZHANG_CERTNO);
    held["_sim"] = json!({"gate": "first"});
    let (rc, first) = call_async("1101", held, 0);
    assert_eq!(rc, MI_OK);
    let in_flight = std::time::Duration::from_secs(10);
    assert!(env.sim.wait_at_gate("first", 1, in_flight), "the one worker is sending the first request");
    let (rc, out) = get_result(first);
    assert_eq!(rc, MI_PENDING, "{out}");
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((out["err_msg"].as_str(), out["mi_code"].as_i64()), (Some("pending"), Some(1)));
    let queued: Vec<i64> = (0..3)
        .map(|_| call_async("1101", q1101(ZHANG_CERTNO), 0))
        .map(|(rc, id)| {
            assert_eq!(rc, MI_OK);
            id
        })
        .collect();
    assert_eq!(call_async("1101", q1101(ZHANG_CERTNO), 0).0, MI_E_BUSY);
    assert!(last_error().contains("full"));
    // Shut down while the first is in flight, past shutdown's deadline: the send is
    // broken off and recorded by its worker before mi_shutdown returns (a query:
    // back to wait for a resend), and the queued ones stay queued.
    assert_eq!(mi_shutdown(200), MI_OK);
    let db = rusqlite::Connection::open(env.journal_path()).unwrap();
    let state =
        |id: i64| -> String { db.query_row("SELECT state FROM mi_request WHERE id = ?1", [id], |r| r.get(0)).unwrap() };
    assert_eq!(state(first), "retry_wait");
    let left: Vec<String> = queued.iter().map(|id| state(*id)).collect();
    assert!(left.iter().all(|s| s == "queued"), "{left:?}");
    // The platform answers the broken-off send to nobody.
    env.sim.open_gate("first");
    assert!(env.sim.wait_idle(in_flight));
    // The next start sends them all; results are read across the restart.
    assert_eq!(env.init(json!({"workers": 2})), MI_OK);
    for id in queued.iter().copied().chain([first]) {
        let (rc, out) = wait_result(id, 10);
        assert_eq!(rc, MI_OK, "{out}");
    }
    let (_, first_row) = get_request(first);
    assert_eq!(first_row["attempts"], 2, "resent once: {first_row}");
    // The sign-in's 1101, the broken-off one, its resend and the three queued.
    assert_eq!(env.ledger()["by_infno"]["1101"], 6);
    mi_shutdown(1000);
}
