//! Sync calls through the C ABI against the simulator: the outpatient visit, the
//! gateway profiles, outcomes for every failure class, and the journal behind them.

mod common;

use common::*;
use mi_sdk::ffi::*;
use mi_sim::Profile;
use serde_json::{json, Value};

#[test]
fn outpatient_visit_end_to_end_plain() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    let r = outpatient_visit("MZ0001");
    let s = &r["output"]["setlinfo"];
    assert_eq!(s["medfee_sumamt"], 81.0);
    assert_eq!(s["fund_pay_sumamt"], 56.7);
    assert_eq!(s["acct_pay"], 24.3);
    assert_eq!(s["psn_cash_pay"], 0.0);
    let ledger = env.ledger();
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
    assert_eq!(ledger["signins"].as_array().unwrap().len(), 1, "one automatic sign-in");
    assert_eq!(ledger["settlements"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["balances"]["44030000000000100001"], 1176.2);
    // The journal remembers the sign-in: a restart does not sign in again.
    mi_shutdown(2000);
    assert_eq!(env.init(json!({})), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    assert_eq!(env.ledger()["signins"].as_array().unwrap().len(), 1);
    let (_, st) = status();
    assert_eq!(st["sign_in"]["signed_in"], true);
    assert_eq!(st["counts"]["succeeded"], 8, "9001, six visit steps and one 1101: {st}");
    mi_shutdown(2000);
}

#[test]
fn tif_and_csb_profiles_are_accepted_and_wrong_secrets_rejected() {
    let _g = serial();
    for profile in [Profile::Tif, Profile::Csb] {
        let env = Env::new(profile);
        assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
        let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
        assert_eq!(rc, MI_OK, "{profile:?}: {out}");
        assert_eq!(out["output"]["baseinfo"]["psn_name"], "张三");
        assert_eq!(env.ledger()["rejected"], 0);
        mi_shutdown(1000);
        let wrong = match profile {
            Profile::Tif => json!({"gateway": {"paas_token": "wrong"}}),
            _ => json!({"gateway": {"secret_key": "wrong"}}),
        };
        assert_eq!(env.init(wrong), MI_OK);
        let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
        // Refused by the platform's own gateway (MI_E_BUSINESS), or, behind a gateway
        // that wraps answers, by that gateway before the platform (MI_E_NETWORK).
        assert!(rc == MI_E_BUSINESS || rc == MI_E_NETWORK, "{out}");
        assert!(out["err_msg"].as_str().unwrap().contains("签名"), "{out}");
        assert!(last_error().contains("签名"));
        mi_shutdown(1000);
    }
}

/// A csb gateway with replay protection, behind a URL with a query parameter: the
/// SDK sends a fresh `_api_nonce` with every request and signs it with the query
/// parameter, decoded, as the CSB client does, and the gateway (which refuses a
/// nonce it has seen) takes the sign-in and every call.
#[test]
fn csb_with_a_nonce_and_a_query_parameter_is_accepted() {
    let _g = serial();
    let env = Env::new(Profile::Csb);
    let url = format!("{}?region=%E5%90%89%E6%9E%97&x=a+b", env.gateway_url());
    assert_eq!(env.init(json!({"gateway": {"csb_nonce": true, "url": url}})), MI_OK, "{}", last_error());
    for _ in 0..3 {
        let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
        assert_eq!(rc, MI_OK, "{out}");
    }
    let ledger = env.ledger();
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
    assert_eq!((ledger["signins"].as_array().unwrap().len(), ledger["by_infno"]["1101"].as_u64()), (1, Some(3)));
    mi_shutdown(1000);
}

/// A tif gateway that wraps every answer in `{"code","type","message","data"}` (no
/// `infcode`): the sign-in and a whole visit go through it, the HIS gets the
/// platform's own envelope, and with `uncertain_policy: "reverse"` nothing is
/// reversed. The gateway's own refusal (`code` 401: a wrong token) is a clean
/// failure: `MI_E_NETWORK`, sent once, never uncertain, nothing processed.
#[test]
fn a_wrapping_tif_gateway_is_opened_and_its_refusals_are_clean() {
    let _g = serial();
    for as_string in [false, true] {
        let env = Env::variant(Profile::Tif, |c| {
            c.wrap_answers = true;
            c.wrap_data_as_string = as_string;
        });
        let policy = json!({"retry": {"uncertain_policy": "reverse", "base_delay_ms": 20, "max_delay_ms": 50}});
        assert_eq!(env.init(policy.clone()), MI_OK, "{}", last_error());
        let r = outpatient_visit(if as_string { "WRAP2" } else { "WRAP1" });
        assert!(r.get("code").is_none() && r["infcode"] == 0, "the platform's envelope, unwrapped: {r}");
        assert!(r["output"]["setlinfo"]["setl_id"].is_string(), "{r}");
        let ledger = env.ledger();
        assert_eq!(ledger["settlements"].as_array().unwrap().len(), 1, "{ledger}");
        assert!(ledger["by_infno"]["2601"].is_null(), "nothing reversed: {ledger}");
        assert_eq!(journal_count(&env, "SELECT count(*) FROM mi_request WHERE state = 'uncertain'"), 0);
        mi_shutdown(1000);

        let mut wrong = policy;
        merge(&mut wrong, json!({"gateway": {"paas_token": "wrong"}}));
        assert_eq!(env.init(wrong), MI_OK);
        for (infno, input) in [
            ("1101", q1101(ZHANG_CERTNO)),
            ("2207", json!({"input": {"data": {"psn_no": "x", "mdtrt_id": "y"}}, "insuplc_admdvs": "440300"})),
        ] {
            let (rc, out) = call(infno, input);
            assert_eq!(rc, MI_E_NETWORK, "{infno}: {out}");
            let msg = out["err_msg"].as_str().unwrap();
            assert!(msg.contains("gateway refused") && msg.contains("paas_token"), "{msg}");
            let (_, req) = get_request(mi_last_request_id());
            assert_eq!((req["state"].as_str(), req["attempts"].as_i64()), (Some("failed"), Some(1)), "{req}");
        }
        assert_eq!(env.ledger()["settlements"].as_array().unwrap().len(), 1, "nothing more processed");
        mi_shutdown(1000);
    }
}

#[test]
fn outcome_codes_for_each_failure_class() {
    let _g = serial();
    let env = Env::plain();
    let fast_retries = json!({"max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 100});
    let fast_retries = &fast_retries;
    assert_eq!(env.init(json!({"gateway": {"timeout_ms": 700}, "retry": fast_retries})), MI_OK);
    // A business error is shown as the platform said it.
    let (rc, out) = call("1101", q1101("000000000000000000"));
    assert_eq!(rc, MI_E_BUSINESS);
    assert_eq!(out["infcode"], -1);
    assert!(out["err_msg"].as_str().unwrap().contains("未查询到"));
    // infcode sent as a string still reads as success.
    let mut q = q1101(ZHANG_CERTNO);
    q["_sim"] = json!({"infcode_as_string": true});
    let (rc, out) = call("1101", q);
    assert_eq!((rc, out["infcode"].clone()), (MI_OK, json!("0")));
    // HTTP error and non-JSON answers are protocol errors, after the query's retries.
    for fault in [json!({"http_status": 502}), json!({"garbage": true})] {
        let mut q = q1101(ZHANG_CERTNO);
        q["_sim"] = fault;
        let (rc, out) = call("1101", q);
        assert_eq!(rc, MI_E_PROTOCOL, "{out}");
        assert_eq!(out["mi_code"], MI_E_PROTOCOL);
        assert_eq!(out["msgid"].as_str().unwrap().len(), 30);
        assert_eq!(get_request(mi_last_request_id()).1["attempts"], 3);
    }
    // No answer in time: a query is a timeout...
    let mut q = q1101(ZHANG_CERTNO);
    q["_sim"] = json!({"delay_ms": 1500});
    let (rc, out) = call("1101", q);
    assert_eq!(rc, MI_E_TIMEOUT, "{out}");
    let (_, rec) = get_request(mi_last_request_id());
    assert_eq!((rec["state"].as_str(), rec["attempts"].as_i64()), (Some("failed"), Some(3)));
    // ...and a settlement is uncertain, sent exactly once.
    let before = env.ledger()["by_infno"]["2207"].as_u64().unwrap_or(0);
    let (rc, out) = call(
        "2207",
        json!({"input": {"data": {"psn_no": "44030000000000100001", "mdtrt_id": "nope", "medfee_sumamt": 1},
        "_sim": {"delay_ms": 1500}}, "insuplc_admdvs": "440300"}),
    );
    assert_eq!(rc, MI_E_UNCERTAIN, "{out}");
    assert_eq!(out["mi_code"], MI_E_UNCERTAIN);
    let id = mi_last_request_id();
    let (_, rec) = get_request(id);
    assert_eq!((rec["state"].as_str(), rec["attempts"].as_i64()), (Some("uncertain"), Some(1)));
    let (rc2, again) = get_result(id);
    assert_eq!(rc2, MI_E_UNCERTAIN);
    assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), out);
    assert!(env.sim.wait_idle(std::time::Duration::from_secs(10)), "the late answer is done");
    assert_eq!(env.ledger()["by_infno"]["2207"].as_u64().unwrap(), before + 1, "never resent");
    mi_shutdown(1000);
    // A dead gateway: the request never left. (A fresh journal, so no sign-in of today is known.)
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let fresh = env.dir.path().join("fresh.db");
    assert_eq!(
        env.init(json!({"gateway": {"url": format!("http://127.0.0.1:{port}/fsi/api/rsfComIfsService/callService")},
        "journal": {"path": fresh.to_string_lossy()}, "retry": fast_retries})),
        MI_OK
    );
    let (rc, out) = call("9001", json!({"signIn": {"opter_no": "0001", "mac": "", "ip": ""}}));
    assert_eq!(rc, MI_E_NETWORK, "{out}");
    assert_eq!(get_request(mi_last_request_id()).1["attempts"], 3, "never sent, so resent up to max_attempts");
    let (rc, out) = call("2207", json!({"input": {"data": {"psn_no": "x"}}, "insuplc_admdvs": "440300"}));
    assert_eq!(rc, MI_E_NETWORK, "a failed automatic sign-in means the request was not sent: {out}");
    let (_, rec) = get_request(mi_last_request_id());
    assert_eq!((rec["state"].as_str(), rec["attempts"].as_i64()), (Some("failed"), Some(0)));
    mi_shutdown(1000);
}

#[test]
fn sixteen_threads_at_once_sign_in_once_and_never_repeat_a_msgid() {
    let _g = serial();
    let env = Env::new(Profile::Tif);
    assert_eq!(env.init(json!({})), MI_OK);
    let handles: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(|| {
                let mut ids = Vec::new();
                for _ in 0..10 {
                    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
                    assert_eq!(rc, MI_OK, "{out}");
                    ids.push(mi_last_request_id());
                }
                ids
            })
        })
        .collect();
    let mut ids: Vec<i64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 160, "every thread sees its own request ids");
    let ledger = env.ledger();
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
    assert_eq!(ledger["signins"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["by_infno"]["1101"], 160);
    mi_shutdown(1000);
}

#[test]
fn msgids_stay_unique_across_restarts_and_caller_msgids_are_checked() {
    let _g = serial();
    let env = Env::plain();
    let mut msgids = std::collections::HashSet::new();
    for _ in 0..3 {
        assert_eq!(env.init(json!({})), MI_OK);
        for _ in 0..5 {
            assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
            let (_, rec) = get_request(mi_last_request_id());
            let m = rec["msgid"].as_str().unwrap().to_string();
            assert!(m.starts_with("H44030000001") && &m[26..28] == "07", "{m}");
            assert!(msgids.insert(m));
        }
        mi_shutdown(1000);
    }
    assert_eq!(env.ledger()["rejected"], 0);
    assert_eq!(env.init(json!({})), MI_OK);
    let mine = format!("H44030000001{}9999", chrono_now());
    let (rc, out) = call("1101", json!({"input": q1101(ZHANG_CERTNO), "msgid": mine}));
    assert_eq!(rc, MI_OK, "{out}");
    let (_, rec) = get_request(mi_last_request_id());
    assert_eq!(rec["msgid"], mine.as_str());
    let (rc, _) = call("1101", json!({"input": q1101(ZHANG_CERTNO), "msgid": mine}));
    assert_eq!(rc, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("already used"), "{}", last_error());
    mi_shutdown(1000);
}

fn chrono_now() -> String {
    let out = std::process::Command::new("date").arg("+%Y%m%d%H%M%S").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn journal_keeps_every_request_attempt_and_the_result_view() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    assert_eq!(call("1101", q1101("000")).0, MI_E_BUSINESS);
    mi_shutdown(1000);
    let db = rusqlite::Connection::open(env.journal_path()).unwrap();
    let mode: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let rows: Vec<(String, String, i64)> = db
        .prepare("SELECT infno, state, infcode FROM v_mi_result ORDER BY request_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // The sign-in the first 1101 needs comes first; the 1101 is then committed with
    // its first attempt, envelope and sign_no as sent, before it is sent.
    assert_eq!(
        rows,
        vec![
            ("9001".into(), "succeeded".into(), 0),
            ("1101".into(), "succeeded".into(), 0),
            ("1101".into(), "business_error".into(), -1)
        ]
    );
    let attempts: i64 = db
        .query_row(
            "SELECT count(*) FROM mi_attempt WHERE http_status = 200 AND latency_ms >= 0 AND response IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(attempts, 3);
    // The envelope is sealed in the journal (issue 22); the operator's command reads it.
    let (id, kept): (i64, String) = db
        .query_row("SELECT id, envelope FROM mi_request WHERE infno = '1101' LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(kept.starts_with("mi1.") && !kept.contains("sign_no"), "{kept}");
    let config = env.dir.path().join("cli.json");
    std::fs::write(&config, env.config(json!({})).to_string()).unwrap();
    let shown = std::process::Command::new(target_dir().join("mi-sdk"))
        .arg("--config")
        .arg(&config)
        .args(["show", &id.to_string(), "--json"])
        .output()
        .unwrap();
    let e = serde_json::from_slice::<Value>(&shown.stdout).unwrap()["envelope"].clone();
    assert_eq!(e["sign_no"].as_str().unwrap().len(), 30, "the envelope as sent carries the sign_no");
    assert_eq!(e["inf_time"].as_str().unwrap().len(), 19);
}

#[test]
fn a_refused_sign_no_means_a_new_sign_in_and_one_resend_under_a_fresh_msgid() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    mi_shutdown(1000);
    // The platform restarts: today's sign_no in the journal means nothing to it now.
    let fresh = Env::plain();
    let patch =
        json!({"gateway": {"url": fresh.gateway_url()}, "journal": {"path": env.journal_path().to_string_lossy()}});
    assert_eq!(fresh.init(patch), MI_OK);
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_OK, "{out}");
    let ledger = fresh.ledger();
    assert_eq!(ledger["rejected"], 1);
    assert!(ledger["rejections"][0].as_str().unwrap().contains("sign_no"));
    assert_eq!(ledger["signins"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["by_infno"]["1101"], 1, "processed once");
    let id = mi_last_request_id();
    let (_, rec) = get_request(id);
    assert_eq!(rec["attempts"], 2);
    mi_shutdown(1000);
    let db = rusqlite::Connection::open(env.journal_path()).unwrap();
    let msgids: Vec<String> = db
        .prepare("SELECT msgid FROM mi_attempt WHERE request_id = ?1 ORDER BY attempt_no")
        .unwrap()
        .query_map([id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(msgids.len(), 2);
    assert_ne!(msgids[0], msgids[1]);
    assert_eq!(rec["msgid"].as_str().unwrap(), msgids[1], "the request names the msgid the platform processed");
}
