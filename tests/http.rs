//! The local HTTP API (`mi-sdk serve --http`) through real sockets: the program
//! started as an IT desk starts it, against the simulator on loopback, every route
//! called as a browser HIS calls it, and every refusal: no token, a wrong one, a
//! body too large, a wrong method, an unknown route, an origin not allowed, more
//! requests at once than allowed, an address that is not loopback.

mod common;

use common::served::*;
use common::*;
use serde_json::{json, Value};

#[test]
fn every_route_answers_as_the_abi_does() {
    let env = Env::plain();
    let s = serve(&env, json!({"token": TOKEN, "allowed_origins": [ORIGIN]}));
    let b = &s.base;
    let q = q1101(ZHANG_CERTNO).to_string();
    let (st, v, _) = ask("POST", &format!("{b}/v1/call/1101"), Some(TOKEN), None, Some(&q));
    assert_eq!((st, v["mi_code"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(v["output"]["output"]["baseinfo"]["psn_name"], "张三");
    let first = v["request_id"].as_i64().unwrap();
    assert!(first > 0);
    // A platform's refusal is the ABI's MI_E_BUSINESS with its output, in a 200.
    let (st, v, _) = ask("POST", &format!("{b}/v1/call/1101"), Some(TOKEN), None, Some(&q1101("0").to_string()));
    assert_eq!((st, v["mi_code_name"].as_str()), (200, Some("MI_E_BUSINESS")), "{v}");
    assert!(v["output"]["err_msg"].as_str().unwrap().contains("未查询到"), "{v}");
    // The caller's mistakes: a 400 with the ABI's MI_E_INVALID_ARGUMENT.
    let (st, v, _) = ask("POST", &format!("{b}/v1/call/11a1"), Some(TOKEN), None, Some(&q));
    assert_eq!((st, v["mi_code"].as_i64()), (400, Some(-1)), "{v}");
    let (st, v, _) = ask("POST", &format!("{b}/v1/call/1101"), Some(TOKEN), None, Some("[1]"));
    assert_eq!((st, v["mi_code"].as_i64()), (400, Some(-1)), "{v}");
    // Async: submitted, then its result and its record.
    let (st, v, _) = ask("POST", &format!("{b}/v1/submit/1101?priority=2"), Some(TOKEN), None, Some(&q));
    assert_eq!((st, v["mi_code"].as_i64()), (200, Some(0)), "{v}");
    let id = v["request_id"].as_i64().unwrap();
    assert!(wait_until(|| ask("GET", &format!("{b}/v1/result/{id}"), Some(TOKEN), None, None).1["mi_code"] == 0));
    let (_, v, _) = ask("GET", &format!("{b}/v1/request/{id}"), Some(TOKEN), None, None);
    assert_eq!(v["output"]["state"], "succeeded", "{v}");
    let (st, v, _) = ask("GET", &format!("{b}/v1/request/987654321"), Some(TOKEN), None, None);
    assert_eq!((st, v["mi_code_name"].as_str()), (404, Some("MI_E_NOT_FOUND")), "{v}");
    // A settlement reversed (2601 sent for the 2207).
    let psn = "44030000000000100001";
    let per = |input: Value| json!({"input": input, "insuplc_admdvs": "440300"}).to_string();
    let post =
        |infno: &str, body: String| ask("POST", &format!("{b}/v1/call/{infno}"), Some(TOKEN), None, Some(&body)).1;
    let reg = post("2201", per(json!({"data": {"psn_no": psn, "insutype": "310", "ipt_otp_no": "HTTP-1"}})));
    let mdtrt = reg["output"]["output"]["data"]["mdtrt_id"].as_str().unwrap().to_string();
    let fee = json!({"feedetail": [{"feedetl_sn": "1", "mdtrt_id": mdtrt, "psn_no": psn, "chrg_bchno": "B",
                     "med_list_codg": "X1", "det_item_fee_sumamt": 12.5, "cnt": 1, "pric": 12.5}]});
    assert_eq!(post("2204", per(fee))["mi_code"], 0);
    let setl = post(
        "2207",
        per(json!({"data": {"psn_no": psn, "mdtrt_id": mdtrt, "medfee_sumamt": 12.5,
                                                 "acct_used_flag": "1", "med_type": "11"}})),
    );
    assert_eq!(setl["mi_code"], 0, "{setl}");
    let setl_id = setl["request_id"].as_i64().unwrap();
    let (st, v, _) = ask("POST", &format!("{b}/v1/reverse/{setl_id}"), Some(TOKEN), None, None);
    assert_eq!((st, v["mi_code"].as_i64()), (200, Some(0)), "{v}");
    let ledger = env.ledger();
    assert_eq!(ledger["by_infno"]["2601"], 1, "the platform saw no 2601: {ledger}");
    // The journal's requests by filter, as `mi-sdk requests --json`.
    let today = mi_sdk::Clock::system().today();
    let (st, v, _) = ask("GET", &format!("{b}/v1/requests?infno=2207&date={today}"), Some(TOKEN), None, None);
    assert_eq!(st, 200, "{v}");
    let rows = v["output"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!((rows[0]["infno"].as_str(), rows[0]["request_id"].as_i64()), (Some("2207"), Some(setl_id)), "{v}");
    for bad in ["state=nope", "limit=0", "date=2026-13-01"] {
        let (st, v, _) = ask("GET", &format!("{b}/v1/requests?{bad}"), Some(TOKEN), None, None);
        assert_eq!((st, v["mi_code"].as_i64()), (400, Some(-1)), "{bad}: {v}");
    }
    // Today's books with the platform, as mi_reconcile.
    let spec = json!({"from": today}).to_string();
    let (st, v, _) = ask("POST", &format!("{b}/v1/reconcile"), Some(TOKEN), None, Some(&spec));
    assert_eq!((st, v["mi_code"].as_i64()), (200, Some(0)), "{v}");
    assert!(v["output"]["balanced"].is_boolean() && v["output"]["groups"].is_array(), "{v}");
    let (st, _, _) = ask("POST", &format!("{b}/v1/reconcile"), Some(TOKEN), None, Some(r#"{"from":"2026-13-01"}"#));
    assert_eq!(st, 400);
    assert!(env.ledger()["requests"].as_i64().unwrap() >= 5);
    // The status, as mi_get_status.
    let (st, v, _) = ask("GET", &format!("{b}/v1/status"), Some(TOKEN), None, None);
    assert_eq!(st, 200);
    assert_eq!(v["output"]["fixmedins_code"], "H44030000001", "{v}");
    assert!(!v.to_string().contains(TOKEN), "the status shows the token");
    // A browser page from the allowed origin gets CORS headers; a preflight is
    // answered without a token; another origin is refused.
    let (st, _, cors) = ask("GET", &format!("{b}/v1/status"), Some(TOKEN), Some(ORIGIN), None);
    assert_eq!((st, cors.as_str()), (200, ORIGIN));
    let (st, _, cors) = ask("OPTIONS", &format!("{b}/v1/call/1101"), None, Some(ORIGIN), None);
    assert_eq!((st, cors.as_str()), (204, ORIGIN));
    // The service's own origin (a page it serves) is let in without being listed.
    let (st, _, cors) = ask("GET", &format!("{b}/v1/status"), Some(TOKEN), Some(b), None);
    assert_eq!((st, cors.as_str()), (200, b.as_str()));
    let (st, v, cors) = ask("GET", &format!("{b}/v1/status"), Some(TOKEN), Some("http://evil.example"), None);
    assert_eq!((st, cors.as_str()), (403, ""));
    assert!(v["error"].as_str().unwrap().contains("allowed_origins"), "{v}");
    // The journal holds every call made through the API, the first one included.
    let (_, v, _) = ask("GET", &format!("{b}/v1/request/{first}"), Some(TOKEN), None, None);
    assert_eq!(
        (v["output"]["infno"].as_str(), v["output"]["state"].as_str()),
        (Some("1101"), Some("succeeded")),
        "{v}"
    );
}

#[test]
fn refusals_are_json_errors_and_nothing_is_sent() {
    let env = Env::plain();
    let s = serve(&env, json!({"token": TOKEN, "max_body_kb": 4}));
    let b = &s.base;
    let q = q1101(ZHANG_CERTNO).to_string();
    for token in [None, Some("http-TOKEN-012345678X"), Some("short")] {
        let (st, v, _) = ask("POST", &format!("{b}/v1/call/1101"), token, None, Some(&q));
        assert_eq!(st, 401, "{token:?}");
        assert!(v["error"].as_str().unwrap().contains("token"), "{v}");
    }
    let big = json!({"data": {"psn_name": "x".repeat(5000)}}).to_string();
    let (st, v, _) = ask("POST", &format!("{b}/v1/call/1101"), Some(TOKEN), None, Some(&big));
    assert_eq!(st, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("max_body_kb"), "{v}");
    let (st, v, _) = ask("GET", &format!("{b}/v1/call/1101"), Some(TOKEN), None, None);
    assert_eq!(st, 405, "{v}");
    let (st, v, _) = ask("DELETE", &format!("{b}/v1/status"), Some(TOKEN), None, None);
    assert_eq!(st, 405, "{v}");
    let (st, v, _) = ask("GET", &format!("{b}/v2/anything"), Some(TOKEN), None, None);
    assert_eq!((st, v["mi_code_name"].as_str()), (404, Some("MI_E_NOT_FOUND")), "{v}");
    let (st, v, _) = ask("GET", &format!("{b}/v1/result/abc"), Some(TOKEN), None, None);
    assert_eq!(st, 400, "{v}");
    // None of it reached the platform.
    assert_eq!(env.ledger()["requests"], 0);
}

#[test]
fn more_requests_at_once_than_allowed_are_refused_with_429() {
    let env = Env::plain();
    let s = serve(&env, json!({"token": TOKEN, "max_concurrent": 2}));
    let b = s.base.clone();
    let held =
        json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": ZHANG_CERTNO}, "_sim": {"gate": "http"}}).to_string();
    std::thread::scope(|sc| {
        let calls: Vec<_> = (0..2)
            .map(|_| sc.spawn(|| ask("POST", &format!("{b}/v1/call/1101"), Some(TOKEN), None, Some(&held))))
            .collect();
        assert!(env.sim.wait_at_gate("http", 2, std::time::Duration::from_secs(20)), "two calls at the gate");
        let (st, v, _) = ask("GET", &format!("{b}/v1/status"), Some(TOKEN), None, None);
        assert_eq!((st, v["mi_code_name"].as_str()), (429, Some("MI_E_BUSY")), "{v}");
        env.sim.open_gate("http");
        for c in calls {
            assert_eq!(c.join().unwrap().1["mi_code"], 0);
        }
    });
    let (st, _, _) = ask("GET", &format!("{b}/v1/status"), Some(TOKEN), None, None);
    assert_eq!(st, 200, "free again once the calls are answered");
}

#[test]
fn the_api_starts_only_with_a_token_and_on_loopback() {
    let env = Env::plain();
    let config = env.dir.path().join("mi_sdk.json");
    for (http, addr, says) in [
        (json!({}), "127.0.0.1:0", "http.token"),
        (json!({"token": "short"}), "127.0.0.1:0", "http.token"),
        (json!({"token": TOKEN}), "0.0.0.0:0", "loopback"),
    ] {
        std::fs::write(&config, env.config(json!({"http": http})).to_string()).unwrap();
        let (code, _, err) = cli(&config, &["serve", "--http", addr]);
        assert_ne!(code, 0, "{addr}");
        assert!(err.contains(says), "{says}: {err}");
        assert!(!err.contains(TOKEN), "the token in an error");
    }
}

/// docs/openapi.json describes the routes the service has, no more and no fewer:
/// each one it lists is answered by a running service (not "no such route"), and
/// a path it does not list is.
#[test]
fn the_openapi_document_lists_every_route() {
    let text =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let env = Env::plain();
    let s = serve(&env, json!({"token": TOKEN}));
    let mut listed = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            // Every route's refusals are described where the service can refuse it.
            for status in ["200", "401", "405", "429"] {
                assert!(op["responses"][status].is_object(), "{status} missing in {op}");
            }
            let url = format!("{}{}", s.base, path.replace("{infno}", "1101").replace("{id}", "1"));
            let (st, v, _) = ask(&method.to_uppercase(), &url, Some(TOKEN), None, Some("{}"));
            let unknown = v["error"].as_str().is_some_and(|e| e.starts_with("no such route"));
            assert!(!unknown && st != 405, "{method} {path}: {st} {v}");
            listed.push((method.to_uppercase(), path.clone()));
        }
    }
    // The service's own list of its routes: the same, no more and no fewer.
    let mut routes: Vec<(String, String)> =
        mi_sdk::ops::http::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    listed.sort();
    routes.sort();
    assert_eq!(listed, routes);
    for (method, path) in [("GET", "/v1/nothing"), ("POST", "/v2/call/1101"), ("GET", "/v1")] {
        let (st, v, _) = ask(method, &format!("{}{path}", s.base), Some(TOKEN), None, None);
        assert_eq!((st, v["mi_code_name"].as_str()), (404, Some("MI_E_NOT_FOUND")), "{path}: {v}");
    }
}

/// The monitor page's files: served without the token (they carry no data),
/// kept to their own origin; the data they show needs the token.
#[test]
fn the_monitor_page_is_served_and_its_data_needs_the_token() {
    let env = Env::plain();
    let s = serve(&env, json!({"token": TOKEN}));
    for (path, kind, has) in [
        ("/", "text/html", "/monitor.js"),
        ("/monitor.js", "text/javascript", "/v1/status"),
        ("/monitor.css", "text/css", "1366"),
    ] {
        let mut r = agent().get(format!("{}{path}", s.base)).call().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let h = |k: &str| r.headers().get(k).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(h("Content-Type").starts_with(kind), "{path}: {}", h("Content-Type"));
        assert!(h("Content-Security-Policy").contains("default-src 'self'"), "{path}");
        assert!(h("Content-Security-Policy").contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h("X-Frame-Options"), "DENY");
        let body = r.body_mut().read_to_string().unwrap();
        assert!(body.contains(has), "{path} has no {has}");
        // Nothing fetched from elsewhere: no CDN, no outside font.
        assert!(!body.contains("https://") && !body.contains("//cdn"), "{path} reaches outside");
    }
    let b = &s.base;
    assert_eq!(ask("GET", &format!("{b}/v1/report"), None, None, None).0, 401);
    assert_eq!(ask("POST", &format!("{b}/"), None, None, None).0, 401, "only GET serves the page");
    // The day's report: today's counts, failures masked, latency by hour.
    let q = json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301197001019999", "certno": "440301197001019999"}});
    assert_eq!(ask("POST", &format!("{b}/v1/call/1101"), Some(TOKEN), None, Some(&q.to_string())).1["mi_code"], -8);
    assert_eq!(
        ask("POST", &format!("{b}/v1/call/1101"), Some(TOKEN), None, Some(&q1101(ZHANG_CERTNO).to_string())).0,
        200
    );
    let (st, v, _) = ask("GET", &format!("{b}/v1/report"), Some(TOKEN), None, None);
    assert_eq!(st, 200, "{v}");
    let rep = &v["output"];
    assert_eq!(rep["date"], mi_sdk::Clock::system().today().as_str());
    let count = |state: &str| {
        rep["by_transaction"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["state"] == state)
            .map(|b| b["count"].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(count("business_error"), 1, "{rep}");
    assert!(count("succeeded") >= 2, "the sign-in and the 1101: {rep}");
    let hours = rep["latency_by_hour"].as_array().unwrap();
    assert!(
        !hours.is_empty()
            && hours.iter().all(|h| h["count"].as_u64().unwrap() > 0 && h["p99_ms"].as_i64() >= h["p50_ms"].as_i64())
    );
    let failures = rep["failures"].to_string();
    assert!(!failures.contains("440301197001019999"), "a full ID number in the report: {failures}");
    let (st, _, _) = ask("GET", &format!("{b}/v1/report?date=2026-02-30"), Some(TOKEN), None, None);
    assert_eq!(st, 400);
    let (st, v, _) = ask("GET", &format!("{b}/v1/report?date=2020-01-01"), Some(TOKEN), None, None);
    assert_eq!((st, v["output"]["requests"].as_i64()), (200, Some(0)), "{v}");
}

/// What a hostile or broken caller sends at the socket: a body it claims but never
/// sends, a huge declared length, no HTTP at all, a chunked body. Each gets a JSON
/// refusal or is dropped after a deadline; none holds the service, and the next
/// caller is answered at once.
#[test]
fn hostile_callers_get_json_refusals_and_hold_nothing() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let env = Env::plain();
    let s = serve(&env, json!({"token": TOKEN, "max_concurrent": 2}));
    let addr = s.base.strip_prefix("http://").unwrap().to_string();
    let raw = |text: &str| {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        c.write_all(text.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out
    };
    let status_and_json = |out: &str| {
        let status: u16 = out.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, serde_json::from_str::<Value>(body).unwrap_or(Value::Null))
    };
    // A terabyte declared, without a token: refused unread, at once.
    let started = std::time::Instant::now();
    let out = raw("POST /v1/call/1101 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n");
    let (st, v) = status_and_json(&out);
    assert_eq!((st, v["mi_code_name"].as_str()), (413, Some("MI_E_INVALID_ARGUMENT")), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    for (text, want) in [
        ("NOT HTTP AT ALL\r\n\r\n", 400),
        ("POST /v1/call/1101 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        ("POST /v1/call/1101 HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n", 400),
        // Two lengths: the body could be read two ways, and a request smuggled after it.
        ("POST /v1/call/1101 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nGET /", 400),
        ("POST /v1/call/1101 HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nabcde", 400),
    ] {
        let out = raw(text);
        let (st, v) = status_and_json(&out);
        assert_eq!(st, want, "{text:?}: {out}");
        assert!(v["error"].is_string(), "a JSON refusal: {out}");
    }
    // More callers than max_concurrent that declare a body and never send it: the
    // service still answers the next one at once, and drops them after its deadline.
    let stalled: Vec<_> = (0..4)
        .map(|_| {
            let mut c = TcpStream::connect(&addr).unwrap();
            let head = format!("POST /v1/call/1101 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n");
            c.write_all(head.as_bytes()).unwrap();
            c
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let at_once = std::time::Instant::now();
    let (st, v, _) = ask("GET", &format!("{}/v1/status", s.base), Some(TOKEN), None, None);
    assert_eq!(st, 200, "{v}");
    let (st, v, _) =
        ask("POST", &format!("{}/v1/call/1101", s.base), Some(TOKEN), None, Some(&q1101(ZHANG_CERTNO).to_string()));
    assert_eq!((st, v["mi_code"].as_i64()), (200, Some(0)), "{v}");
    assert!(at_once.elapsed() < std::time::Duration::from_secs(2), "not held up by the stalled callers");
    for mut c in stalled {
        c.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    }
    assert_eq!(env.ledger()["by_infno"]["1101"], 1, "only the whole request reached the platform");

    // Two requests in one write, kept alive: two answers, in order.
    let two = "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\n\r\n\
               GET /v1/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKEN\r\nConnection: close\r\n\r\n"
        .replace("TOKEN", TOKEN);
    let out = raw(&two);
    let statuses: Vec<&str> = out.match_indices("HTTP/1.1 ").map(|(i, _)| &out[i + 9..i + 12]).collect();
    assert_eq!(statuses, ["200", "404"], "{out}");

    // More connections than the service keeps open: the next is told so, in JSON.
    let held: Vec<TcpStream> = (0..128).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = raw("GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n");
    let (st, v) = status_and_json(&out);
    assert_eq!((st, v["mi_code_name"].as_str()), (503, Some("MI_E_BUSY")), "{out}");
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let (st, _, _) = ask("GET", &format!("{}/v1/status", s.base), Some(TOKEN), None, None);
    assert_eq!(st, 200, "connections given back once closed");
}

/// Stopping the service (SIGTERM, as a service manager stops it) while a call
/// waits on the platform: the call is answered, in JSON, and the service ends on
/// its own, within the SDK's shutdown time, not when the platform gets round to it.
#[test]
fn stopping_answers_the_call_in_flight_and_ends() {
    let env = Env::plain();
    let mut s = serve(&env, json!({"token": TOKEN}));
    let b = s.base.clone();
    let held =
        json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": ZHANG_CERTNO}, "_sim": {"gate": "stop"}}).to_string();
    let call = std::thread::spawn(move || ask("POST", &format!("{b}/v1/call/1101"), Some(TOKEN), None, Some(&held)));
    assert!(env.sim.wait_at_gate("stop", 1, std::time::Duration::from_secs(20)), "the call is at the platform");
    let asked = std::time::Instant::now();
    let ended = s.terminate(30);
    env.sim.open_gate("stop");
    let status = ended.expect("the service ended");
    assert!(status.success(), "{status:?}");
    assert!(asked.elapsed() < std::time::Duration::from_secs(20), "ended in {:?}", asked.elapsed());
    let (st, v, _) = call.join().unwrap();
    // Broken off by the shutdown, as mi_shutdown breaks a call off: journaled, not
    // resent, and said so.
    assert_eq!((st, v["mi_code_name"].as_str()), (503, Some("MI_E_SHUTDOWN")), "{v}");
    assert!(v["request_id"].as_i64().is_some_and(|id| id > 0), "{v}");
}
