#![recursion_limit = "256"]

//! mi-sim: a simulator of the national medical-insurance platform for tests and
//! demos. It listens on loopback HTTP, checks every envelope as strictly as the real
//! platform (gateway signature and clock window, required fields, msgid format and
//! uniqueness, `inf_time`, institution code, today's `sign_no` for business calls)
//! and answers with `infcode` -1 and a reason when something is wrong.
//!
//! Faults for tests are chosen per request by an `_sim` object in the business input:
//! `{"_sim": {"delay_ms": 3000}}` (process, then answer late), `{"http_status": 502}`,
//! `{"garbage": true}` (a non-JSON body), `{"drop": true}` (process, then close the
//! connection without answering), `{"lost": true}` (close the connection without
//! processing: lost on the way), `{"infcode_as_string": true}`, `{"garble_output": true}`
//! (process an `enc_type: "SM4"` request, then answer an `output` that cannot be
//! decrypted), `{"err_msg": "..."}` (refuse with `infcode` -1 and exactly that message,
//! unprocessed).
//!
//! `POST /sim/faults` (or [`Sim::refuse_for`], [`Sim::reject_sign_no_once`]) closes
//! the port for a while or refuses the next sign_no once.
//!
//! `{"_sim": {"gate": "g"}}` holds a request, before the platform looks at it, until
//! the test opens gate `g` ([`Sim::open_gate`], or `{"open_gate": "g"}` to
//! `/sim/faults`); [`Sim::wait_at_gate`] waits until requests stand there and
//! [`Sim::wait_idle`] until nothing is being handled (`GET /sim/gates` tells both),
//! so that no test has to guess with a sleep.
//!
//! Variants of a real deployment, chosen by [`SimConfig`]: `wrap_answers` answers as
//! a tif gateway that wraps the platform's envelope in `{"code","type","message",
//! "data"}` (`data` an object, or with `wrap_data_as_string` a JSON string), and
//! refuses a bad gateway signature or clock with `code` 401 and nothing processed;
//! `encrypt_answers` answers as Jilin does, `output` Base64 SM4 and signed in
//! `cainfo` (SM2, [`sealed`]; faults `{"bad_cainfo": true}`, a signature over other
//! text, and `garble_output`, a signed ciphertext no key opens).
//!
//! Beside the outpatient visit it runs the inpatient, pharmacy, inventory,
//! settlement-list, query and reconciliation classes (`classes.rs`) and serves the
//! catalogues as the platform does ([`catalogues`]).
//!
//! `GET /sim/ledger` returns the books (sign-ins, visits, settlements, reversals,
//! balances, rejections) so tests can check what really happened.

pub mod catalogues;
pub mod checks;
mod classes;
pub mod files;
pub mod gates;
pub mod http;
mod inpatient;
pub mod ledger;
pub mod mobile;
mod pharmacy;
mod queries;
mod reconcile;
pub mod registry;
pub mod sealed;
pub mod variants;
mod zipped;

use http::Reply;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use variants::Route;

pub const SERVICE_PATH: &str = "/fsi/api/rsfComIfsService/callService";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Plain,
    Tif,
    Csb,
}

impl Profile {
    pub fn parse(s: &str) -> Option<Profile> {
        match s {
            "plain" => Some(Profile::Plain),
            "tif" => Some(Profile::Tif),
            "csb" => Some(Profile::Csb),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub profile: Profile,
    pub paas_id: String,
    pub paas_token: String,
    pub api_name: String,
    pub access_key: String,
    pub secret_key: String,
    /// Institutions the platform knows.
    pub fixmedins_codes: Vec<String>,
    /// Allowed difference between the caller's clock and ours, in seconds.
    pub time_window_s: i64,
    /// The division the platform answers from (`inf_refmsgid`).
    pub admdvs: String,
    /// Answer `infcode` as a string, as some gateways do.
    pub infcode_as_string: bool,
    /// Answer as a wrapping tif gateway: `{"code","type","message","data"}`.
    pub wrap_answers: bool,
    /// With `wrap_answers`, `data` as a JSON string rather than an object.
    pub wrap_data_as_string: bool,
    /// Answer as Jilin does: `output` Base64 SM4 under the app's data key, signed
    /// in `cainfo` (SM2) with `answer_private_key` (see [`sealed`]).
    pub encrypt_answers: bool,
    pub answer_private_key: [u8; 32],
    /// The mobile-payment app the platform knows (also the key of `enc_type: SM4`).
    pub mp_app_id: String,
    pub mp_app_secret: String,
    /// The app's SM2 public key (Base64, uncompressed point).
    pub mp_app_public_key: String,
    /// The platform's own SM2 private scalar, to sign its answers.
    pub mp_platform_private_key: [u8; 32],
    /// Serve HTTPS with this PEM certificate chain and PEM private key; both empty
    /// (the default) serve plain HTTP.
    pub tls_cert_pem: Vec<u8>,
    pub tls_key_pem: Vec<u8>,
    /// A province's variant: URLs served, 9001 shape, required fields, SM3 cainfo.
    pub variant: variants::Variant,
}

impl SimConfig {
    /// The platform's public key, as a hospital's config names it.
    pub fn mp_platform_public_key(&self) -> String {
        mobile::public_key_b64(&self.mp_platform_private_key, &self.mp_app_secret)
    }

    /// The public key that checks `encrypt_answers`' signatures, as a config names it.
    pub fn answer_public_key(&self) -> String {
        sealed::public_key_b64(&self.answer_private_key)
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            profile: Profile::Plain,
            paas_id: "mi_sdk_test".into(),
            paas_token: "tif-token-for-tests".into(),
            api_name: "fsi.callService".into(),
            access_key: "csb-access-key".into(),
            secret_key: "csb-secret-for-tests".into(),
            fixmedins_codes: vec!["H44030000001".into(), "H44030000002".into()],
            time_window_s: 300,
            admdvs: "440300".into(),
            infcode_as_string: false,
            wrap_answers: false,
            wrap_data_as_string: false,
            encrypt_answers: false,
            answer_private_key: sealed::TEST_ANSWER_PRIVATE_KEY,
            mp_app_id: mobile::TEST_APP_ID.into(),
            mp_app_secret: mobile::TEST_APP_SECRET.into(),
            mp_app_public_key: mobile::public_key_b64(&mobile::TEST_APP_PRIVATE_KEY, mobile::TEST_APP_SECRET),
            mp_platform_private_key: mobile::TEST_PLATFORM_PRIVATE_KEY,
            tls_cert_pem: Vec::new(),
            tls_key_pem: Vec::new(),
            variant: Default::default(),
        }
    }
}

struct Shared {
    cfg: SimConfig,
    ledger: Mutex<ledger::Ledger>,
    control: Arc<http::Control>,
    addr: Mutex<Option<SocketAddr>>,
    orders: Mutex<mobile::Orders>,
    /// Refuse the next business call's sign_no (and revoke it), once.
    reject_sign_no_once: std::sync::atomic::AtomicBool,
    /// Cut the next 9102 zip stream after this many bytes (0: no), once.
    cut_download_once: std::sync::atomic::AtomicU64,
    gates: gates::Gates,
    /// The csb `_api_nonce`s seen: each is good once.
    nonces: Mutex<std::collections::HashSet<String>>,
}

/// A running simulator. Dropping it stops it.
pub struct Sim {
    server: http::Server,
    shared: Arc<Shared>,
}

impl Sim {
    /// Starts on `addr` (e.g. `127.0.0.1:0` for a free port).
    pub fn start(cfg: SimConfig, addr: &str) -> std::io::Result<Sim> {
        let control = Arc::new(http::Control::default());
        let tls = if cfg.tls_cert_pem.is_empty() && cfg.tls_key_pem.is_empty() {
            None
        } else {
            Some(http::tls_config(&cfg.tls_cert_pem, &cfg.tls_key_pem)?)
        };
        let shared = Arc::new(Shared {
            cfg,
            ledger: Mutex::new(ledger::Ledger::new()),
            control: control.clone(),
            addr: Mutex::new(None),
            reject_sign_no_once: Default::default(),
            cut_download_once: Default::default(),
            orders: Mutex::new(mobile::Orders::default()),
            gates: Default::default(),
            nonces: Default::default(),
        });
        let sh = shared.clone();
        let server =
            http::Server::start(std::net::TcpListener::bind(addr)?, control, Arc::new(move |rq| handle(&sh, rq)), tls)?;
        *shared.addr.lock().unwrap_or_else(|p| p.into_inner()) = Some(server.addr());
        Ok(Sim { server, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:port`, or `https://` when serving TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.shared.cfg.tls_cert_pem.is_empty() { "http" } else { "https" };
        format!("{scheme}://{}", self.addr())
    }

    /// Where 9101 uploads go (docs/protocol.md, "Files").
    pub fn upload_url(&self) -> String {
        format!("{}{}", self.base_url(), files::UPLOAD_PATH)
    }

    /// Where 9102 downloads come from.
    pub fn download_url(&self) -> String {
        format!("{}{}", self.base_url(), files::DOWNLOAD_PATH)
    }

    /// The platform's service URL, as a HIS config names it.
    pub fn service_url(&self) -> String {
        format!("{}{SERVICE_PATH}", self.base_url())
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// The books, as `GET /sim/ledger` gives them.
    pub fn ledger(&self) -> Value {
        books(&self.shared)
    }

    /// Closes the port for `d`: connections are refused, as when the network is down.
    pub fn refuse_for(&self, d: Duration) {
        self.shared.control.refuse_for(self.addr(), d);
    }

    /// Closes the port until [`Sim::accept_again`]: for a test that decides when the
    /// network comes back by what it has seen, not by a guess of time. Returns once
    /// connections are refused.
    pub fn refuse(&self) {
        self.refuse_for(Duration::MAX);
    }

    /// Opens the port again (after [`Sim::refuse`] or during [`Sim::refuse_for`]).
    pub fn accept_again(&self) {
        self.shared.control.accept_again();
    }

    /// The next business call is refused for its sign_no, which is revoked.
    pub fn reject_sign_no_once(&self) {
        self.shared.reject_sign_no_once.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Lets the requests held at gate `name` (and later ones) through.
    pub fn open_gate(&self, name: &str) {
        self.shared.gates.open(name);
    }

    /// Holds later requests at gate `name` again.
    pub fn close_gate(&self, name: &str) {
        self.shared.gates.close(name);
    }

    /// Waits until at least `n` requests stand at gate `name`; false on timeout.
    pub fn wait_at_gate(&self, name: &str, n: usize, timeout: Duration) -> bool {
        self.shared.gates.wait_waiting(name, n, timeout)
    }

    /// Waits until no request is being handled (late answers and gates included);
    /// false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.shared.gates.wait_idle(timeout)
    }

    pub fn stop(mut self) {
        self.shared.gates.open_all();
        self.server.stop();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Nothing stays held once the test is done with the simulator.
        self.shared.gates.open_all();
        self.server.stop();
    }
}

const JSON: &str = "application/json;charset=utf-8";

/// The 两定 ledger with the mobile-payment orders under `mobile_pay`.
fn books(sh: &Shared) -> Value {
    let mut v = sh.ledger.lock().unwrap_or_else(|p| p.into_inner()).to_json();
    v["mobile_pay"] = sh.orders.lock().unwrap_or_else(|p| p.into_inner()).to_json();
    v
}

/// Where the mobile-payment services live.
pub const MOBILE_PAY_PREFIX: &str = "/org/local/api/hos/";

/// Marks a refusal by the wrapping gateway itself (see [`wrapped`]).
const GATEWAY_REFUSAL: &str = "\u{0}gateway:";

/// A platform answer as a wrapping tif gateway sends it; the gateway's own refusal
/// with `code` 401.
fn wrapped(cfg: &SimConfig, body: &str) -> String {
    if let Some(why) = body.strip_prefix(GATEWAY_REFUSAL) {
        return json!({"code": 401, "type": "error", "message": why, "data": null}).to_string();
    }
    let data = match serde_json::from_str::<Value>(body) {
        Ok(v) if !cfg.wrap_data_as_string => v,
        _ => Value::String(body.to_string()),
    };
    json!({"code": 0, "type": "success", "message": "成功", "data": data}).to_string()
}

fn answer(status: u16, body: String) -> Reply {
    Reply::Answer { status, content_type: JSON, body }
}

fn handle(sh: &Shared, mut rq: http::Request) -> Reply {
    // Routes are paths; the query string is only for the csb signature.
    let query = match rq.path.split_once('?') {
        Some((path, query)) => {
            let query = query.to_string();
            rq.path = path.to_string();
            query
        }
        None => String::new(),
    };
    let query = query.as_str();
    if rq.method == "GET" && rq.path == "/sim/ledger" {
        return answer(200, books(sh).to_string());
    }
    if rq.method == "GET" && rq.path == "/sim/gates" {
        let (waiting, busy) = sh.gates.snapshot();
        return answer(200, json!({"waiting": waiting, "busy": busy}).to_string());
    }
    let _busy = sh.gates.enter();
    if let Some(gate) = gates::of(&rq.body) {
        sh.gates.pass(&gate);
    }
    if let Some(service) = rq.path.strip_prefix(MOBILE_PAY_PREFIX) {
        let c = &sh.cfg;
        let app = mobile::App {
            app_id: c.mp_app_id.clone(),
            app_secret: c.mp_app_secret.clone(),
            app_public_key_b64: c.mp_app_public_key.clone(),
            platform_private_key: c.mp_platform_private_key,
        };
        let mut orders = sh.orders.lock().unwrap_or_else(|p| p.into_inner());
        return answer(200, mobile::handle(&app, &mut orders, service, &rq.body).to_string());
    }
    if rq.method == "POST" && rq.path == "/sim/faults" {
        return faults(sh, &rq.body);
    }
    // Only the URLs of the configured style exist; the single style's service takes
    // every transaction but the files, which have URLs of their own.
    let Some(route) = variants::route(&sh.cfg.variant.urls, &rq.path) else {
        return answer(404, json!({"infcode": -1, "err_msg": format!("no such service: {}", rq.path)}).to_string());
    };
    if rq.method != "POST" {
        return answer(405, json!({"infcode": -1, "err_msg": "only POST"}).to_string());
    }
    let (status, body, fault) = process(sh, &rq.headers, query, &rq.body, &route);
    let body = if sh.cfg.wrap_answers { wrapped(&sh.cfg, &body) } else { body };
    if route == Route::Only("9102".into()) {
        if let Some(zip) = take_zip(sh, &rq.body) {
            let cut = sh.cut_download_once.swap(0, std::sync::atomic::Ordering::AcqRel);
            let cut_after = (cut > 0).then_some(cut as usize);
            return Reply::Binary { status: 200, content_type: "application/octet-stream", body: zip, cut_after };
        }
    }
    if let Some(ms) = fault.get("delay_ms").and_then(Value::as_u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if fault.get("drop").and_then(Value::as_bool) == Some(true) {
        return Reply::Drop;
    }
    if let Some(code) = fault.get("http_status").and_then(Value::as_u64) {
        return Reply::Answer {
            status: code as u16,
            content_type: "text/html",
            body: "<html><body>502 Bad Gateway</body></html>".into(),
        };
    }
    if fault.get("garbage").and_then(Value::as_bool) == Some(true) {
        return Reply::Answer {
            status: 200,
            content_type: "text/html",
            body: "<html>gateway maintenance</html>".into(),
        };
    }
    answer(status, body)
}

/// The zip a 9102 request was answered with, if it was processed.
fn take_zip(sh: &Shared, body: &[u8]) -> Option<std::sync::Arc<Vec<u8>>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let msgid = v.get("msgid")?.as_str()?;
    sh.ledger.lock().unwrap_or_else(|p| p.into_inner()).zips.remove(msgid)
}

/// `POST /sim/faults`: `{"refuse_ms": 3000}` closes the port for that long;
/// `{"reject_sign_no_once": true}` refuses the next business call's sign_no;
/// `{"cut_download_once_after": N}` drops the next 9102 zip stream after N bytes;
/// `{"open_gate": "g"}` lets the requests held at gate `g` through;
/// `{"platform_reverse": "setl_id"}` reverses a settlement on the platform alone and
/// `{"settlement_day": {"setl_id": "…", "day": "yyyy-MM-dd"}}` books it on another
/// day (the mismatches reconciliation finds; answered 400 when the settlement is
/// unknown);
/// `{"catalogue_ver": "v"}` puts version `v` in every catalogue row, and
/// `{"catalogue_break_layout_at": n}` gives row (or paged record) n one column too many.
fn faults(sh: &Shared, body: &[u8]) -> Reply {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return answer(400, json!({"error": "body must be JSON"}).to_string());
    };
    if let Some(g) = v.get("open_gate").and_then(Value::as_str) {
        sh.gates.open(g);
    }
    if let Some(ver) = v.get("catalogue_ver").and_then(Value::as_str) {
        sh.ledger.lock().unwrap_or_else(|p| p.into_inner()).files.catalogues.forced_ver = Some(ver.to_string());
    }
    if let Some(n) = v.get("catalogue_break_layout_at").and_then(Value::as_u64) {
        sh.ledger.lock().unwrap_or_else(|p| p.into_inner()).files.catalogues.break_at = Some(n as usize);
    }
    let books = {
        let mut ledger = sh.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let reversed = v.get("platform_reverse").and_then(Value::as_str).map(|id| ledger.reverse_on_platform(id));
        let moved = v.get("settlement_day").map(|m| {
            let field = |k| m.get(k).and_then(Value::as_str).unwrap_or_default();
            ledger.move_settlement(field("setl_id"), field("day"))
        });
        reversed.into_iter().chain(moved).collect::<Result<Vec<()>, String>>()
    };
    if let Err(why) = books {
        return answer(400, json!({"error": why}).to_string());
    }
    if let Some(n) = v.get("cut_download_once_after").and_then(Value::as_u64) {
        sh.cut_download_once.store(n, std::sync::atomic::Ordering::Release);
    }
    if v.get("reject_sign_no_once").and_then(Value::as_bool) == Some(true) {
        sh.reject_sign_no_once.store(true, std::sync::atomic::Ordering::Release);
    }
    if let Some(ms) = v.get("refuse_ms").and_then(Value::as_u64) {
        if let Some(addr) = *sh.addr.lock().unwrap_or_else(|p| p.into_inner()) {
            let control = sh.control.clone();
            // Answer first, then close the port.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                control.refuse_for(addr, Duration::from_millis(ms));
            });
        }
    }
    answer(200, json!({"ok": true}).to_string())
}

/// Checks and runs one request; returns HTTP status, body and the fault asked for.
fn process(
    sh: &Shared,
    headers: &[(String, String)],
    query: &str,
    body: &[u8],
    route: &Route,
) -> (u16, String, Map<String, Value>) {
    let now = checks::now_local();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut ledger = sh.ledger.lock().unwrap_or_else(|p| p.into_inner());
    ledger.requests += 1;
    let env: Result<Map<String, Value>, String> = (|| {
        let ct = checks::header(headers, "Content-Type").unwrap_or_default();
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return Err(format!("Content-Type 应为 application/json, 收到 [{ct}]"));
        }
        let gateway = checks::gateway(&sh.cfg, headers, query, now_ms).and_then(|nonce| match nonce {
            // A nonce is good once: a gateway with replay protection refuses it again.
            Some(n) if !sh.nonces.lock().unwrap_or_else(|p| p.into_inner()).insert(n.clone()) => {
                Err(format!("CSB校验失败: _api_nonce [{n}] 已使用过, 疑似重放请求"))
            }
            _ => Ok(()),
        });
        if let Err(why) = gateway {
            // A wrapping gateway refuses in its own words, before the platform.
            return Err(if sh.cfg.wrap_answers { format!("{GATEWAY_REFUSAL}{why}") } else { why });
        }
        let text = std::str::from_utf8(body).map_err(|_| "报文不是有效的 UTF-8".to_string())?;
        let v: Value = serde_json::from_str(text).map_err(|e| format!("报文不是有效的 JSON: {e}"))?;
        let Value::Object(mut env) = v else {
            return Err("报文应为 JSON 对象".into());
        };
        open_sm4_input(&sh.cfg, &mut env)?;
        checks::envelope(&sh.cfg, &env, now)?;
        variants::check_envelope(&sh.cfg.variant, &env)?;
        Ok(env)
    })();
    let mut env = match env {
        Ok(e) => e,
        Err(why) if why.starts_with(GATEWAY_REFUSAL) => {
            ledger.reject(&why);
            return (200, why, Map::new());
        }
        Err(why) => {
            ledger.reject(&why);
            let r = reply(&mut ledger, &sh.cfg, -1, &why, Value::Null, None, false);
            return (200, r, Map::new());
        }
    };
    let fault = env
        .get_mut("input")
        .and_then(Value::as_object_mut)
        .and_then(|i| i.remove("_sim"))
        .and_then(|f| f.as_object().cloned())
        .unwrap_or_default();
    if fault.get("lost").and_then(Value::as_bool) == Some(true) {
        // Lost on the way (a proxy that cut the connection): never processed.
        return (200, String::new(), Map::from_iter([("drop".to_string(), Value::Bool(true))]));
    }
    let as_string = sh.cfg.infcode_as_string || fault.get("infcode_as_string").and_then(Value::as_bool) == Some(true);
    let infno = env["infno"].as_str().unwrap_or_default().to_string();
    let msgid = env["msgid"].as_str().unwrap_or_default().to_string();
    let opter = env["opter"].as_str().unwrap_or_default().to_string();
    let sign_no = env["sign_no"].as_str().unwrap_or_default().to_string();
    let refused = match route {
        Route::Only(only) if *only != infno => Some(if only == "9101" || only == "9102" {
            format!("文件服务地址只受理 {only}, 收到 infno[{infno}]")
        } else {
            format!("URL 中的交易编号[{only}]与报文 infno[{infno}]不一致")
        }),
        Route::Service if infno == "9101" || infno == "9102" => Some(format!(
            "{infno} 应发往文件服务地址 {}",
            if infno == "9101" { files::UPLOAD_PATH } else { files::DOWNLOAD_PATH }
        )),
        _ => None,
    };
    let refused = if refused.is_some() {
        refused
    } else if ledger.seen_msgids.contains(&msgid) {
        Some(format!("报文ID[{msgid}]重复"))
    } else if infno != "9001"
        && infno != "9002"
        && sh.reject_sign_no_once.swap(false, std::sync::atomic::Ordering::AcqRel)
    {
        ledger.sign_nos.remove(&sign_no);
        Some("签到编号[sign_no]无效或已过期, 请重新签到".to_string())
    } else if infno != "9001" && !ledger.sign_no_valid(&sign_no, &opter) {
        Some("签到编号[sign_no]无效或已过期, 请重新签到".to_string())
    } else {
        // A refusal with the message the test chose, as a platform might word one.
        fault.get("err_msg").and_then(Value::as_str).map(str::to_owned)
    };
    if let Some(why) = refused {
        ledger.reject(&why);
        return (200, reply(&mut ledger, &sh.cfg, -1, &why, Value::Null, None, as_string), fault);
    }
    ledger.seen_msgids.insert(msgid.clone());
    ledger.processed_msgids.push(msgid);
    if infno == "9001" {
        let input = env.get("input").cloned().unwrap_or(Value::Null);
        match variants::sign_in_input(&sh.cfg.variant, &input, now, sh.cfg.time_window_s) {
            Ok(national) => env.insert("input".into(), national),
            Err(why) => {
                ledger.reject(&why);
                return (200, reply(&mut ledger, &sh.cfg, -1, &why, Value::Null, None, as_string), fault);
            }
        };
    }
    let r = match ledger.run(&infno, &env) {
        Ok(output) => {
            let output = if infno == "9001" { variants::sign_in_output(&sh.cfg.variant, output) } else { output };
            if sh.cfg.encrypt_answers {
                let key = mobile::data_key(&sh.cfg.mp_app_id, &sh.cfg.mp_app_secret);
                let (output, cainfo) = sealed::seal(&key, &sh.cfg.answer_private_key, &output, &fault);
                return (200, reply(&mut ledger, &sh.cfg, 0, "", output, Some(cainfo), as_string), fault);
            }
            // An encrypted request gets its output encrypted the same way.
            let output = if env.get("enc_type").and_then(Value::as_str) == Some("SM4") {
                let key = mobile::data_key(&sh.cfg.mp_app_id, &sh.cfg.mp_app_secret);
                if fault.get("garble_output").and_then(Value::as_bool) == Some(true) {
                    // Processed, but answered with hex no key opens (8 bytes: not one SM4 block).
                    Value::String("0123456789ABCDEF".into())
                } else {
                    Value::String(mobile::encrypt_hex(&key, output.to_string().as_bytes()))
                }
            } else {
                output
            };
            reply(&mut ledger, &sh.cfg, 0, "", output, None, as_string)
        }
        Err(why) => reply(&mut ledger, &sh.cfg, -1, &why, Value::Null, None, as_string),
    };
    (200, r, fault)
}

/// Fujian-style `enc_type: "SM4"`: `input` is hex SM4-ECB of its JSON under the
/// app's data key. Replaced by the plaintext before the other checks.
fn open_sm4_input(cfg: &SimConfig, env: &mut Map<String, Value>) -> Result<(), String> {
    if env.get("enc_type").and_then(Value::as_str) != Some("SM4") {
        return Ok(());
    }
    if env.get("app_id").and_then(Value::as_str) != Some(cfg.mp_app_id.as_str()) {
        return Err("加密报文的 app_id 不存在".into());
    }
    let key = mobile::data_key(&cfg.mp_app_id, &cfg.mp_app_secret);
    let hex = env.get("input").and_then(Value::as_str).ok_or("加密报文的 input 应为十六进制字符串")?;
    let plain = mobile::decrypt_hex(&key, hex).ok_or("input 解密失败")?;
    let input: Value = serde_json::from_slice(&plain).map_err(|_| "input 解密后不是 JSON".to_string())?;
    env.insert("input".into(), input);
    Ok(())
}

fn reply(
    ledger: &mut ledger::Ledger,
    cfg: &SimConfig,
    infcode: i64,
    err_msg: &str,
    output: Value,
    // The SM2 signature over a sealed output (`encrypt_answers`).
    cainfo: Option<String>,
    as_string: bool,
) -> String {
    let now = checks::now_local().format("%Y%m%d%H%M%S%3f").to_string();
    let code = if as_string { json!(infcode.to_string()) } else { json!(infcode) };
    json!({
        "infcode": code,
        "inf_refmsgid": ledger.inf_refmsgid(&cfg.admdvs),
        "refmsg_time": now,
        "respond_time": now,
        "err_msg": if err_msg.is_empty() { Value::Null } else { json!(err_msg) },
        "warn_msg": null,
        "output": output,
        "signtype": if cainfo.is_some() { json!("SM2") } else { Value::Null },
        "cainfo": cainfo,
        "enctype": null
    })
    .to_string()
}
