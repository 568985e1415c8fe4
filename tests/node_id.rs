//! The msgid node of workstations sharing one config: each journal chooses its own
//! and keeps it, the config's wins, status and check tell which is in use; and a
//! "duplicate msgid" answer to a msgid's first send (another workstation used it) is
//! resent under a fresh msgid, also after sends of that msgid that provably never left.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::path::Path;

fn journal_at(env: &Env, name: &str) -> Value {
    json!({"journal": {"path": env.dir.path().join(name).to_string_lossy()}})
}

/// The node and its source as `mi_get_status` tells them.
fn node_in_status() -> (u64, String) {
    let (rc, st) = status();
    assert_eq!(rc, MI_OK);
    (st["node_id"].as_u64().unwrap(), st["node_id_source"].as_str().unwrap().to_string())
}

/// Sets the msgid counter of `node` in journal `path`, so that its next msgid is
/// `second` + node + `counter + 1`: how two workstations on one node end up with
/// the same msgid in the same second, made certain.
fn set_counter(path: &Path, node: u32, second: &str, counter: u32) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute(
        "INSERT INTO mi_msgid_seq(prefix, second, counter) VALUES (?1, ?2, ?3)
         ON CONFLICT(prefix) DO UPDATE SET second = excluded.second, counter = excluded.counter",
        rusqlite::params![format!("H44030000001{node:02}"), second, counter],
    )
    .unwrap();
}

#[test]
fn each_journal_chooses_its_node_keeps_it_and_the_config_wins() {
    let _g = serial();
    let env = Env::plain();
    // Four workstations with one config that names no node.
    let mut nodes = Vec::new();
    for i in 0..4 {
        let mut patch = journal_at(&env, &format!("ws{i}/mi_journal.db"));
        patch["node_id"] = Value::Null;
        assert_eq!(env.init(patch), MI_OK);
        let (node, source) = node_in_status();
        assert_eq!(source, "journal");
        assert!(node <= 99);
        let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
        assert_eq!(rc, MI_OK, "{out}");
        let msgid = get_request(mi_last_request_id()).1["msgid"].as_str().unwrap().to_string();
        assert_eq!(msgid[26..28], format!("{node:02}"), "the msgid carries the node");
        nodes.push(node);
        mi_shutdown(2000);
    }
    // Chosen at random, two of four workstations may share a node (that is what the
    // duplicate-msgid resend below is for); all four alike is one chance in a million.
    assert!(nodes.iter().any(|n| *n != nodes[0]), "every journal chose the same node: {nodes:?}");

    // A restart keeps the journal's node.
    let mut patch = journal_at(&env, "ws0/mi_journal.db");
    patch["node_id"] = Value::Null;
    assert_eq!(env.init(patch.clone()), MI_OK);
    assert_eq!(node_in_status(), (nodes[0], "journal".to_string()));
    mi_shutdown(2000);

    // The config's node wins; without it again, the journal's is back.
    let mut named = patch.clone();
    named["node_id"] = json!(42);
    assert_eq!(env.init(named.clone()), MI_OK);
    assert_eq!(node_in_status(), (42, "config".to_string()));
    mi_shutdown(2000);
    assert_eq!(env.init(patch.clone()), MI_OK);
    assert_eq!(node_in_status().0, nodes[0]);
    mi_shutdown(2000);

    // The operators' tools say the same.
    let file = env.dir.path().join("ws0.json");
    std::fs::write(&file, env.config(patch).to_string()).unwrap();
    let (code, out, err) = cli(&file, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let st: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((st["node_id"].as_u64(), st["node_id_source"].as_str()), (Some(nodes[0]), Some("journal")));
    let (_, out, _) = cli(&file, &["check"]);
    assert!(out.contains(&format!("OK   node     msgid node {:02} (from the journal)", nodes[0])), "{out}");
    std::fs::write(&file, env.config(named).to_string()).unwrap();
    let (_, out, _) = cli(&file, &["check"]);
    assert!(out.contains("OK   node     msgid node 42 (from the config)"), "{out}");
}

#[test]
fn a_msgid_another_workstation_used_is_resent_under_a_fresh_one() {
    let _g = serial();
    let env = Env::plain();
    // Two workstations forced onto one node; their counters meet at one second.
    let second = "20991231235900";
    let (a, b) = (env.dir.path().join("a/mi_journal.db"), env.dir.path().join("b/mi_journal.db"));
    let policy = json!({"node_id": 5, "retry": {"max_attempts": 5, "base_delay_ms": 20, "max_delay_ms": 50}});
    let mut cfg_a = journal_at(&env, "a/mi_journal.db");
    merge(&mut cfg_a, policy.clone());
    let mut cfg_b = journal_at(&env, "b/mi_journal.db");
    merge(&mut cfg_b, policy);

    // Workstation A sends msgid …0511.
    assert_eq!(env.init(cfg_a), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK, "A signs in");
    set_counter(&a, 5, second, 10);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    let taken = format!("H44030000001{second}0511");
    assert_eq!(get_request(mi_last_request_id()).1["msgid"], taken);
    // And …0520, for the second case below.
    set_counter(&a, 5, second, 19);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    let taken2 = format!("H44030000001{second}0520");
    assert_eq!(get_request(mi_last_request_id()).1["msgid"], taken2);
    mi_shutdown(2000);

    // Workstation B's settlement gets the same msgid on its first send: the platform
    // answers "duplicate msgid", which proves it was not processed; B resends it under
    // a fresh msgid and it is settled, once.
    assert_eq!(env.init(cfg_b), MI_OK);
    let settle = visit("44030000000000100001", "DUP1", 10.0);
    let mdtrt = settle["data"]["mdtrt_id"].as_str().unwrap().to_string();
    set_counter(&b, 5, second, 10);
    let (rc, out) = call("2207", json!({"input": settle, "insuplc_admdvs": "440300"}));
    assert_eq!(rc, MI_OK, "{out}");
    let id = mi_last_request_id();
    let attempts: Vec<(String, Option<i64>, Option<String>)> =
        open_journal(&b).attempts(id).unwrap().into_iter().map(|a| (a.msgid, a.infcode, a.err_msg)).collect();
    let db = rusqlite::Connection::open(&b).unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!((attempts[0].0.as_str(), attempts[0].1), (taken.as_str(), Some(-1)));
    assert!(attempts[0].2.as_deref().unwrap_or("").contains("重复"), "{attempts:?}");
    let fresh = format!("H44030000001{second}0512");
    assert_eq!((attempts[1].0.as_str(), attempts[1].1), (fresh.as_str(), Some(0)));
    assert_eq!(get_request(id).1["msgid"], fresh);
    let settled = env.ledger()["settlements"].as_array().unwrap().iter().filter(|s| s["mdtrt_id"] == mdtrt).count();
    assert_eq!(settled, 1);

    // Its first send never left (the port was closed), so a "duplicate msgid" to the
    // resend under that msgid still means another workstation has it: resent once
    // more under a fresh msgid, and settled once.
    let again = visit("44030000000000100001", "DUP2", 10.0);
    let mdtrt = again["data"]["mdtrt_id"].as_str().unwrap().to_string();
    set_counter(&b, 5, second, 19);
    env.sim.refuse();
    let caller = std::thread::spawn(move || call("2207", json!({"input": again, "insuplc_admdvs": "440300"})));
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert!(wait_until(|| count("SELECT count(*) FROM mi_attempt WHERE outcome = 'never_sent'") > 0));
    env.sim.accept_again();
    let (rc, out) = caller.join().unwrap();
    assert_eq!(rc, MI_OK, "{out}");
    let id = db
        .query_row(
            "SELECT request_id FROM mi_attempt WHERE msgid = ?1 ORDER BY request_id DESC LIMIT 1",
            [&taken2],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    let msgids: Vec<String> = db
        .prepare("SELECT msgid FROM mi_attempt WHERE request_id = ?1 ORDER BY attempt_no")
        .unwrap()
        .query_map([id], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(msgids.len() >= 3 && msgids[..msgids.len() - 1].iter().all(|m| *m == taken2), "{msgids:?}");
    assert_ne!(msgids.last(), Some(&taken2), "the last send under a fresh msgid: {msgids:?}");
    let settled = env.ledger()["settlements"].as_array().unwrap().iter().filter(|s| s["mdtrt_id"] == mdtrt).count();
    assert_eq!(settled, 1);
    mi_shutdown(2000);
}
