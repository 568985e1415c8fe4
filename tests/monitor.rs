//! The monitor page and the browser HIS example in a real browser (Debian's
//! headless Chromium at 1366x768) against `mi-sdk serve --http` and the simulator:
//! an uncertain settlement shown, a reversal dismissed (nothing sent) and then
//! confirmed (the 2601 reaches the platform), both languages, the day's
//! reconciliation; and an outpatient visit run from a page of another origin, as a
//! browser HIS runs it. Screenshots go to target/screenshots/.

mod common;

use common::browser::{chromium, screenshot_dir, Browser, HEIGHT, WIDTH};
use common::served::*;
use common::*;
use serde_json::{json, Value};

/// POST /v1/call/{infno} with the token; the answer's JSON.
fn call_http(base: &str, infno: &str, input: Value) -> Value {
    let body = json!({"input": input, "insuplc_admdvs": "440300"}).to_string();
    ask("POST", &format!("{base}/v1/call/{infno}"), Some(TOKEN), None, Some(&body)).1
}

/// A registered visit with one fee line, through the API; its 2207 input.
fn visit_http(base: &str, otp_no: &str, amount: f64) -> Value {
    let psn = "44030000000000100001";
    let reg = call_http(base, "2201", json!({"data": {"psn_no": psn, "insutype": "310", "ipt_otp_no": otp_no}}));
    let mdtrt = reg["output"]["output"]["data"]["mdtrt_id"].as_str().unwrap_or_else(|| panic!("{reg}")).to_string();
    let fee = json!({"feedetail": [{"feedetl_sn": "1", "mdtrt_id": mdtrt, "psn_no": psn, "chrg_bchno": "B",
                     "med_list_codg": "X1", "det_item_fee_sumamt": amount, "cnt": 1, "pric": amount}]});
    assert_eq!(call_http(base, "2204", fee)["mi_code"], 0);
    json!({"data": {"psn_no": psn, "mdtrt_id": mdtrt, "medfee_sumamt": amount, "acct_used_flag": "1", "med_type": "11"}})
}

fn reversals(env: &Env) -> usize {
    env.ledger()["reversals"].as_array().map_or(0, Vec::len)
}

#[test]
fn the_monitor_page_shows_an_uncertain_settlement_and_reverses_it_when_confirmed() {
    let Some(exe) = chromium() else { return };
    let env = Env::plain();
    let s = serve_with(
        &env,
        json!({"http": {"token": TOKEN}, "gateway": {"timeout_ms": 800},
               "retry": {"max_attempts": 2, "base_delay_ms": 20, "max_delay_ms": 50}}),
    );
    let b = &s.base;
    assert_eq!(call_http(b, "1101", q1101(ZHANG_CERTNO))["mi_code"], 0);
    assert_eq!(call_http(b, "1101", q1101("000"))["mi_code_name"], "MI_E_BUSINESS");
    let paid = visit_http(b, "MON1", 12.5);
    assert_eq!(call_http(b, "2207", paid)["mi_code"], 0);
    // The platform settles this one but its answer never comes back.
    let mut lost = visit_http(b, "MON2", 30.0);
    lost["_sim"] = json!({"drop": true});
    let v = call_http(b, "2207", lost);
    assert_eq!(v["mi_code_name"], "MI_E_UNCERTAIN", "{v}");
    let uncertain = v["request_id"].as_i64().unwrap();
    let msgid = ask("GET", &format!("{b}/v1/request/{uncertain}"), Some(TOKEN), None, None).1["output"]["msgid"]
        .as_str()
        .unwrap()
        .to_string();

    let mut web = Browser::start(&exe, "zh-CN");
    // Without the token the page shows only its login form, and no data.
    web.goto(&format!("{b}/"));
    assert!(web.wait_for("document.readyState === 'complete' && !document.getElementById('login').hidden", 30));
    assert_eq!(web.eval("document.getElementById('board').hidden"), json!(true));
    web.fill("#token", "not-the-token-at-all");
    web.click("#login button");
    assert!(web.wait_for("document.getElementById('login_error').textContent.length > 0", 20), "a wrong token refused");

    web.goto(&format!("{b}/#token={TOKEN}"));
    let row = format!("document.querySelector('[data-uncertain=\"{uncertain}\"]')");
    let shown = web.wait_for(&format!("document.body.dataset.loaded === 'yes' && {row} !== null"), 30);
    let state = web.eval("JSON.stringify({text: document.body.innerText, stored: sessionStorage.getItem('mi_token'), href: location.href})");
    assert!(shown, "{:?} {state}", web.errors);
    assert_eq!(web.eval("location.href.includes('token')"), json!(false), "the token is taken out of the address bar");
    assert_eq!(web.eval(&format!("document.documentElement.outerHTML.includes('{TOKEN}')")), json!(false));
    assert_eq!(web.eval("document.querySelector('h1').textContent"), json!("医保接口监控"));
    let text = web.eval(&format!("{row}.textContent")).as_str().unwrap().to_string();
    assert!(text.contains(&msgid) && text.contains("2207 门诊结算"), "{text}");
    // Its details: the visit, the person (masked) and the amount, as sent.
    assert!(text.contains(" · 30") && !text.contains("44030000000000100001"), "{text}");
    let tile = |state: &str| format!("document.querySelector('[data-state=\"{state}\"] b').textContent");
    assert_eq!(web.eval(&tile("uncertain")), json!("1"));
    assert_eq!(web.eval(&tile("business_error")), json!("1"));
    assert_eq!(web.eval("document.getElementById('signin').className"), json!("pill good"));
    assert_eq!(web.eval("document.querySelectorAll('#chart rect').length > 0"), json!(true), "latency drawn");
    assert!(web.eval("document.getElementById('errors').textContent").as_str().unwrap().contains("未查询到"));
    // One screen of a cashier's PC: nothing runs off to the side.
    assert_eq!(web.eval("document.documentElement.scrollWidth"), json!(WIDTH));
    let shot = screenshot_dir().join("monitor-zh.png");
    assert_eq!(web.screenshot(&shot), (WIDTH, HEIGHT));

    // Dismissed: nothing is sent, the row stays.
    let before = reversals(&env);
    web.accept_dialogs = false;
    web.click(&format!("[data-reverse=\"{uncertain}\"]"));
    assert_eq!(web.dialogs.len(), 1, "a confirmation is asked for");
    assert!(web.dialogs[0].contains(&uncertain.to_string()) && web.dialogs[0].contains("2601"), "{:?}", web.dialogs);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(reversals(&env), before, "a dismissed confirmation sends nothing");
    assert_eq!(web.eval(&format!("{row} !== null")), json!(true));

    // Confirmed: the 2601 reaches the platform and the row goes.
    web.accept_dialogs = true;
    web.click(&format!("[data-reverse=\"{uncertain}\"]"));
    assert!(web.wait_for(&format!("{row} === null"), 30), "{:?}", web.errors);
    let notice = web.eval("document.getElementById('notice').textContent").as_str().unwrap().to_string();
    assert!(notice.contains(&format!("请求 {uncertain} 已冲正")), "{notice}");
    let ledger = env.ledger();
    let last = ledger["reversals"].as_array().unwrap().last().unwrap();
    assert_eq!((last["omsgid"].as_str(), last["oinfno"].as_str()), (Some(msgid.as_str()), Some("2207")), "{ledger}");
    assert_eq!(last["effect"], "reversed");
    assert_eq!(ledger["by_infno"]["2601"], 1);
    assert!(web.wait_for(&format!("{} === '1'", tile("reversed")), 20));
    assert_eq!(web.screenshot(&screenshot_dir().join("monitor-reversed.png")), (WIDTH, HEIGHT));

    // English labels, and the day's books with the platform.
    web.click("#lang");
    assert!(web.wait_for("document.querySelector('h1').textContent === 'Medical insurance monitor'", 10));
    web.click("#reconcile_go");
    assert!(
        web.wait_for("document.getElementById('reconcile_state').textContent.includes('every group balanced')", 30),
        "{}",
        web.eval("document.getElementById('reconcile_state').textContent")
    );
    assert_eq!(web.eval("document.querySelectorAll('#reconcile tr').length > 0"), json!(true));
    assert_eq!(web.eval("document.documentElement.scrollWidth"), json!(WIDTH));
    assert_eq!(web.screenshot(&screenshot_dir().join("monitor-en.png")), (WIDTH, HEIGHT));
    assert!(web.errors.is_empty(), "the page's errors: {:?}", web.errors);
}

/// examples/browser_his/ served by a web server of its own, as a browser HIS's
/// pages are: the API must let that origin in.
#[test]
fn the_browser_his_example_settles_an_outpatient_visit() {
    let Some(exe) = chromium() else { return };
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/browser_his/index.html")).unwrap();
    let web_server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", web_server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        for req in web_server.incoming_requests() {
            let h = tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8").unwrap();
            let _ = req.respond(tiny_http::Response::from_string(page.clone()).with_header(h));
        }
    });
    let env = Env::plain();
    let s = serve(&env, json!({"token": TOKEN, "allowed_origins": [origin]}));
    let mut web = Browser::start(&exe, "zh-CN");
    web.goto(&format!("{origin}/index.html#api={}&token={TOKEN}", s.base));
    assert!(web.wait_for("document.readyState === 'complete'", 30));
    web.click("#visit");
    assert!(web.wait_for("document.getElementById('paid').dataset.setlId !== undefined", 60), "{}", {
        web.eval("document.getElementById('paid').textContent + ' ' + document.getElementById('steps').textContent")
    });
    let steps = web.eval(
        "[...document.querySelectorAll('#steps tr')].map(r => r.cells[0].textContent + ' ' + r.cells[1].textContent)",
    );
    for infno in ["1101", "2201", "2203", "2204", "2206", "2207"] {
        assert!(steps.as_array().unwrap().iter().any(|s| s == &json!(format!("{infno} MI_OK"))), "{infno}: {steps}");
    }
    let setl_id = web.eval("document.getElementById('paid').dataset.setlId");
    let ledger = env.ledger();
    let settled = ledger["settlements"].as_array().unwrap();
    assert!(settled.iter().any(|x| x["setl_id"] == setl_id && x["status"] == "settled"), "{setl_id} in {ledger}");
    assert_eq!(web.screenshot(&screenshot_dir().join("browser-his.png")), (WIDTH, HEIGHT));
    // A page of an origin the config does not name is refused by the browser itself.
    let env2 = Env::plain();
    let s2 = serve(&env2, json!({"token": TOKEN}));
    web.goto(&format!("{origin}/index.html#api={}&token={TOKEN}", s2.base));
    assert!(web.wait_for("document.readyState === 'complete'", 30));
    web.click("#visit");
    assert!(web.wait_for("document.getElementById('paid').className === 'bad'", 30));
    let said = web.eval("document.getElementById('paid').textContent");
    assert!(said.as_str().unwrap().contains("Failed to fetch"), "{said}");
    // The service itself refused that origin; nothing reached the platform.
    let (st, v, _) = ask("POST", &format!("{}/v1/call/1101", s2.base), Some(TOKEN), Some(&origin), Some("{}"));
    assert_eq!(st, 403, "{v}");
    assert_eq!(env2.ledger()["requests"], 0);
}
