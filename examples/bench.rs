//! The performance suite: every figure of docs/performance.md, each as a ratio
//! against a baseline measured in the same run. Rounds of a figure and its baseline
//! are interleaved and the medians reported, because these machines are noisy.
//!
//!     scripts/bench.sh                      # all figures, full sizes
//!     scripts/bench.sh --quick              # smaller sizes, a minute or two
//!     cargo run --release --example bench -- [--quick] [--rounds N] [--only NAME[,NAME]]
//!
//! NAME is one of: sync, submit, http, seal, async, crypto, init, rss, lookup.
//! Prints a table; asserts nothing (speed is measured, not tested).

use mi_sdk::crypto::sm::{self, Mode};
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::ffi::{c_char, CString};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CODE: &str = "H44030000001";
const CERTNO: &str = "440301199001011234";

struct Opts {
    quick: bool,
    rounds: usize,
    only: Option<Vec<String>>,
}

/// One line of the table.
struct Row {
    figure: String,
    ours: String,
    baseline: String,
    ratio: f64,
    /// The target, and whether it is met.
    target: String,
    met: Option<bool>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve-sim") {
        return serve_sim();
    }
    let mut o = Opts { quick: false, rounds: 5, only: None };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--rounds" => o.rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--only" => o.only = Some(it.next().expect("--only NAME").split(',').map(str::to_owned).collect()),
            other => panic!("unknown argument {other}"),
        }
    }
    if o.quick && o.rounds == 5 {
        o.rounds = 3;
    }
    let want = |name: &str| o.only.as_ref().is_none_or(|l| l.iter().any(|n| n == name));
    let mut rows = Vec::new();
    let started = Instant::now();
    if want("sync") {
        rows.extend(sync_overhead(&o));
    }
    if want("submit") {
        rows.push(durable_submits(&o));
    }
    if want("http") {
        rows.push(http_calls(&o));
    }
    if want("seal") {
        rows.push(sealing_cost(&o));
    }
    if want("async") {
        rows.extend(async_end_to_end(&o));
    }
    if want("crypto") {
        rows.extend(crypto(&o));
    }
    if want("init") || want("lookup") {
        rows.extend(big_journal(&o, want("init"), want("lookup")));
    }
    if want("rss") {
        rows.push(rss(&o));
    }
    println!();
    println!("| figure | mi_sdk | baseline | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!("| {} | {} | {} | {:.2}x | {} | {met} |", r.figure, r.ours, r.baseline, r.ratio, r.target);
    }
    println!(
        "\n{} rounds, interleaved, medians; {} in {:.0} s",
        o.rounds,
        if o.quick { "quick sizes" } else { "full sizes" },
        started.elapsed().as_secs_f64()
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------------
// The SDK through its C ABI.

/// Each journal its own node_id: msgids are unique per journal and node, and the
/// simulator refuses a msgid it has seen.
fn node_of(dir: &Path) -> u32 {
    static NODES: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut nodes = NODES.lock().unwrap();
    let n = nodes.iter().position(|d| d == dir).unwrap_or_else(|| {
        nodes.push(dir.to_path_buf());
        nodes.len() - 1
    });
    assert!(n < 99, "more journals than node ids");
    n as u32
}

fn config(dir: &Path, url: &str, synchronous: &str, workers: u32) -> Value {
    json!({
        "node_id": node_of(dir),
        "institution": {"fixmedins_code": CODE, "fixmedins_name": "bench", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "bench"},
        "gateway": {"url": url, "timeout_ms": 120000},
        "journal": {"path": dir.join("mi_journal.db").to_string_lossy(), "synchronous": synchronous},
        "log": {"dir": dir.join("logs").to_string_lossy(), "level": "info"},
        "workers": workers,
        "queue_capacity": 10_000_000
    })
}

fn init(cfg: &Value) {
    let c = CString::new(cfg.to_string()).unwrap();
    // SAFETY: a NUL-terminated string.
    let rc = unsafe { mi_init(c.as_ptr()) };
    assert_eq!(rc, MI_OK, "mi_init: {}", last_error());
}

fn last_error() -> String {
    let mut buf = vec![0u8; 4096];
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    unsafe { mi_last_error(buf.as_mut_ptr() as *mut c_char, &mut len) };
    String::from_utf8_lossy(&buf[..len.max(0) as usize]).into_owned()
}

fn input_1101() -> CString {
    CString::new(json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO}}).to_string()).unwrap()
}

/// A sync call into a caller-owned buffer, as an HIS makes it.
fn call_sync(infno: &CString, input: &CString, buf: &mut [u8]) -> i32 {
    let mut len = buf.len() as i32;
    // SAFETY: valid strings; buf has len bytes.
    unsafe { mi_call_sync(infno.as_ptr(), input.as_ptr(), buf.as_mut_ptr() as *mut c_char, &mut len) }
}

fn call_async(infno: &CString, input: &CString) -> i64 {
    let mut id = 0i64;
    // SAFETY: valid strings and out-pointer.
    let rc = unsafe { mi_call_async(infno.as_ptr(), input.as_ptr(), 0, &mut id) };
    assert_eq!(rc, MI_OK, "mi_call_async: {}", last_error());
    id
}

fn get_result(id: i64, buf: &mut [u8]) -> i32 {
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    unsafe { mi_get_result(id, buf.as_mut_ptr() as *mut c_char, &mut len) }
}

fn get_status(buf: &mut [u8]) -> i32 {
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    unsafe { mi_get_status(buf.as_mut_ptr() as *mut c_char, &mut len) }
}

fn sim() -> mi_sim::Sim {
    mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").expect("the simulator starts")
}

/// A msgid no SDK here hands out: another node, a time far from now.
struct RawMsgids(u64);

impl RawMsgids {
    fn next(&mut self) -> String {
        let n = self.0;
        self.0 += 1;
        let base = chrono::NaiveDate::from_ymd_opt(2001, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let t = base + chrono::Duration::seconds((n / 10_000) as i64);
        format!("{CODE}{}{:04}", t.format("%Y%m%d%H%M%S"), n % 10_000)
    }
}

/// What a hand-written client does per call: the envelope template with a fresh
/// msgid and inf_time, POSTed on a keep-alive connection, the answer read whole.
struct RawClient {
    agent: ureq::Agent,
    url: String,
    template: String,
    msgid_at: usize,
    time_at: usize,
}

impl RawClient {
    fn new(url: &str, envelope: &str) -> RawClient {
        let v: Value = serde_json::from_str(envelope).unwrap();
        let msgid = v["msgid"].as_str().unwrap();
        let time = v["inf_time"].as_str().unwrap();
        RawClient {
            agent: ureq::Agent::config_builder().http_status_as_error(false).build().into(),
            url: url.to_string(),
            template: envelope.to_string(),
            msgid_at: envelope.find(msgid).unwrap(),
            time_at: envelope.find(time).unwrap(),
        }
    }

    /// The envelope for a msgid, sent now.
    fn body(&self, msgid: &str) -> String {
        let mut body = self.template.clone();
        body.replace_range(self.msgid_at..self.msgid_at + 30, msgid);
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
        body.replace_range(self.time_at..self.time_at + 19, &now);
        body
    }

    fn send(&self, body: &str) -> String {
        let resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json;charset=utf-8")
            .send(body)
            .expect("raw POST");
        let text = resp.into_body().read_to_string().expect("raw body");
        assert!(text.contains("\"infcode\":0"), "raw call refused: {text}");
        text
    }

    fn post(&self, msgid: &str) -> usize {
        self.send(&self.body(msgid)).len()
    }
}

/// The durable floor: what any client that never loses a request must do at
/// least — the raw POST above, with the request committed to SQLite before it is
/// sent and its answer committed after (plain rusqlite, WAL, the same
/// `synchronous` as the SDK), one connection per thread.
struct DurableClient {
    db: rusqlite::Connection,
}

impl DurableClient {
    fn open(path: &Path, synchronous: &str) -> DurableClient {
        let db = rusqlite::Connection::open(path).unwrap();
        db.busy_timeout(Duration::from_secs(60)).unwrap();
        db.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous};
             CREATE TABLE IF NOT EXISTS r (id INTEGER PRIMARY KEY, msgid TEXT UNIQUE, infno TEXT, envelope TEXT,
                                           state TEXT, result TEXT, created_at TEXT, updated_at TEXT);"
        ))
        .unwrap();
        DurableClient { db }
    }

    fn call(&self, raw: &RawClient, msgid: &str) {
        let body = raw.body(msgid);
        self.db
            .prepare_cached(
                "INSERT INTO r(msgid, infno, envelope, state, created_at, updated_at)
                 VALUES (?1, '1101', ?2, 'sending', datetime('now'), datetime('now'))",
            )
            .unwrap()
            .execute(rusqlite::params![msgid, body])
            .unwrap();
        let id = self.db.last_insert_rowid();
        let answer = raw.send(&body);
        self.db
            .prepare_cached("UPDATE r SET state = 'succeeded', result = ?2, updated_at = datetime('now') WHERE id = ?1")
            .unwrap()
            .execute(rusqlite::params![id, answer])
            .unwrap();
    }
}

/// The envelope of the newest 1101 in a journal, as it was sent (opened with the
/// journal's key: the journal keeps it sealed).
fn sent_envelope(journal: &Path) -> String {
    use mi_sdk::internals::{Journal, Options};
    let j = Journal::open(journal, Options::beside_key(CODE)).expect("the journal opens with its key");
    let newest = mi_sdk::Filter { infno: Some("1101".into()), limit: 1, ..Default::default() };
    j.find(&newest).expect("the journal is read").remove(0).envelope
}

/// The config of a journal kept in clear (`journal.seal` false): one whose rows are
/// copied by SQL (a sealed value opens only in the row it was sealed for).
fn unsealed(mut cfg: Value) -> Value {
    cfg["journal"]["seal"] = json!(false);
    cfg
}

// ---------------------------------------------------------------------------
// Sealing the journal (SM4-GCM): the same sync call with and without it.

/// The SDK started on `cfg`, warmed (connection, sign-in), then `n` sync 1101 calls
/// timed, and shut down: microseconds per call.
fn timed_sync_calls(cfg: &Value, n: usize) -> f64 {
    let (infno, input, mut buf) = (CString::new("1101").unwrap(), input_1101(), vec![0u8; 1 << 16]);
    init(cfg);
    call_sync(&infno, &input, &mut buf);
    let t0 = Instant::now();
    for _ in 0..n {
        let rc = call_sync(&infno, &input, &mut buf);
        assert_eq!(rc, MI_OK, "{}", last_error());
    }
    let us = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
    mi_shutdown(5000);
    us
}

fn sealing_cost(o: &Opts) -> Row {
    let n = if o.quick { 1000 } else { 3000 };
    let sim = sim();
    let url = sim.service_url();
    let (sealed_dir, clear_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut sealed, mut clear, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..o.rounds {
        let s = timed_sync_calls(&config(sealed_dir.path(), &url, "normal", 1), n);
        let c = timed_sync_calls(&unsealed(config(clear_dir.path(), &url, "normal", 1)), n);
        sealed.push(s);
        clear.push(c);
        ratios.push(s / c);
    }
    let (us, base, ratio) = (median(sealed), median(clear), median(ratios));
    println!("seal: {us:.0} us/call sealed, {base:.0} us/call in clear, {ratio:.3}x ({:+.0} us)", us - base);
    Row {
        figure: format!("sync call, journal sealed (SM4-GCM) vs in clear, synchronous=normal ({n} calls/round)"),
        ours: format!("{us:.0} us/call"),
        baseline: format!("{base:.0} us/call (journal.seal false)"),
        ratio,
        target: "<= 1.1x".into(),
        met: Some(ratio <= 1.1),
    }
}

// ---------------------------------------------------------------------------
// The local HTTP API: a browser HIS's call against the same call through the C ABI.

/// `POST /v1/call/1101` to `mi-sdk serve --http`'s loop (in this process, on
/// loopback, one keep-alive connection) against `mi_call_sync`, rounds interleaved.
fn http_calls(o: &Opts) -> Row {
    const TOKEN: &str = "bench-TOKEN-0123456789";
    let n = if o.quick { 500 } else { 2000 };
    let sim = sim();
    let url = sim.service_url();
    let (abi_dir, http_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let infno = CString::new("1101").unwrap();
    let input = input_1101();
    let mut buf = vec![0u8; 1 << 16];
    let mut cfg = config(http_dir.path(), &url, "normal", 4);
    cfg["http"] = json!({"token": TOKEN});
    let cfg = mi_sdk::Config::from_json(&cfg.to_string(), http_dir.path()).expect("the config");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (abi, http, ratios) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let server =
            s.spawn(|| mi_sdk::ops::http::serve_until(cfg, "127.0.0.1:0", &stop, move |a| tx.send(a).unwrap()));
        let base = format!("http://{}/v1/call/1101", rx.recv().expect("the service listens"));
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let body = input.to_str().unwrap().to_string();
        let post = || {
            let mut r = agent.post(&base).header("Authorization", format!("Bearer {TOKEN}")).send(&body).unwrap();
            let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
            assert_eq!(v["mi_code"], 0, "{v}");
        };
        post(); // warm: connection, sign-in
        let (mut abi, mut http, mut ratios) = (vec![], vec![], vec![]);
        for _ in 0..o.rounds {
            init(&config(abi_dir.path(), &url, "normal", 4));
            call_sync(&infno, &input, &mut buf);
            let t0 = Instant::now();
            for _ in 0..n {
                assert_eq!(call_sync(&infno, &input, &mut buf), MI_OK, "{}", last_error());
            }
            let a = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
            mi_shutdown(5000);
            let t0 = Instant::now();
            for _ in 0..n {
                post();
            }
            let h = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
            abi.push(a);
            http.push(h);
            ratios.push(h / a);
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        server.join().unwrap().expect("the service ran");
        (median(abi), median(http), median(ratios))
    });
    println!("http: {http:.0} us/call over the API, {abi:.0} us/call through the ABI, {ratios:.2}x");
    Row {
        figure: format!("sync call over the local HTTP API, loopback, one connection ({n} calls/round)"),
        ours: format!("{http:.0} us/call"),
        baseline: format!("{abi:.0} us/call (mi_call_sync)"),
        ratio: ratios,
        // Against a real platform's tens to hundreds of milliseconds a call, what
        // counts is the time the API adds, not the ratio on a loopback simulator.
        target: format!("<= 1 ms added (added {:.0} us)", http - abi),
        met: Some(http - abi <= 1000.0),
    }
}

// ---------------------------------------------------------------------------
// 1. Sync call overhead.

/// One `synchronous` mode's rounds: the SDK's figure, the durable floor's, and the
/// SDK's ratio to the raw baseline and to the floor, per round.
struct Rounds {
    sync: &'static str,
    ours: Vec<f64>,
    floor: Vec<f64>,
    vs_raw: Vec<f64>,
    vs_floor: Vec<f64>,
}

impl Rounds {
    fn new(sync: &'static str) -> Rounds {
        Rounds { sync, ours: vec![], floor: vec![], vs_raw: vec![], vs_floor: vec![] }
    }

    fn push(&mut self, ours: f64, raw: f64, floor: f64) {
        self.ours.push(ours);
        self.floor.push(floor);
        self.vs_raw.push(ours / raw);
        self.vs_floor.push(ours / floor);
    }
}

fn sync_overhead(o: &Opts) -> Vec<Row> {
    let n = if o.quick { 1000 } else { 3000 };
    let sim = sim();
    let url = sim.service_url();
    let infno = CString::new("1101").unwrap();
    let input = input_1101();
    let mut buf = vec![0u8; 1 << 16];
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let floor_dir = tempfile::tempdir().unwrap();
    // Sign in, and get an envelope exactly as the SDK sends it.
    init(&config(dirs[0].path(), &url, "normal", 1));
    assert_eq!(call_sync(&infno, &input, &mut buf), MI_OK, "{}", last_error());
    mi_shutdown(5000);
    let raw = RawClient::new(&url, &sent_envelope(&dirs[0].path().join("mi_journal.db")));
    let mut ids = RawMsgids(0);
    let mut t_raw = vec![];
    let mut modes = [Rounds::new("normal"), Rounds::new("full")];
    let per_call = |t0: Instant| t0.elapsed().as_secs_f64() * 1e6 / n as f64;
    for _ in 0..o.rounds {
        let t0 = Instant::now();
        for _ in 0..n {
            raw.post(&ids.next());
        }
        let base = per_call(t0);
        t_raw.push(base);
        for (k, m) in modes.iter_mut().enumerate() {
            let sync = m.sync;
            let floor_db = DurableClient::open(&floor_dir.path().join(format!("floor-{sync}.db")), sync);
            let t0 = Instant::now();
            for _ in 0..n {
                floor_db.call(&raw, &ids.next());
            }
            let floor = per_call(t0);
            let us = timed_sync_calls(&config(dirs[k].path(), &url, sync, 1), n);
            m.push(us, base, floor);
        }
    }
    let raw_us = median(t_raw);
    println!("sync: raw {raw_us:.0} us/call");
    let mut rows = Vec::new();
    for Rounds { sync, ours, floor, vs_raw, vs_floor } in modes {
        let (us, floor) = (median(ours), median(floor));
        let (r_raw, r_floor) = (median(vs_raw), median(vs_floor));
        println!("sync {sync}: {us:.0} us/call, {r_raw:.2}x raw, {r_floor:.2}x the durable floor ({floor:.0} us)");
        let figure = format!("sync call, plain, loopback, synchronous={sync} ({n} calls/round)");
        rows.push(Row {
            figure: figure.clone(),
            ours: format!("{us:.0} us/call"),
            baseline: format!("{raw_us:.0} us/call (raw ureq)"),
            ratio: r_raw,
            target: "report".into(),
            met: None,
        });
        rows.push(Row {
            figure,
            ours: format!("{us:.0} us/call"),
            baseline: format!("{floor:.0} us/call (durable floor: raw ureq + 2 SQLite commits)"),
            ratio: r_floor,
            target: "<= 1.5x".into(),
            met: Some(r_floor <= 1.5),
        });
    }
    rows
}

// ---------------------------------------------------------------------------
// 2. Durable async submits.

const SUBMIT_THREADS: usize = 8;

fn durable_submits(o: &Opts) -> Row {
    let per_thread = if o.quick { 1500 } else { 4000 };
    let total = (per_thread * SUBMIT_THREADS) as f64;
    let sim = sim();
    let (mut ours, mut base, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..o.rounds {
        let dir = tempfile::tempdir().unwrap();
        let b = one_row_per_transaction(&dir.path().join("baseline.db"), per_thread);
        let mut cfg = config(dir.path(), &sim.service_url(), "full", 1);
        cfg["log"]["level"] = json!("warn");
        init(&cfg);
        // Park the one worker at a gate so the run measures submission alone.
        let park = CString::new(
            json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO}, "_sim": {"gate": "park"}}).to_string(),
        )
        .unwrap();
        let infno = CString::new("1101").unwrap();
        sim.close_gate("park");
        call_async(&infno, &park);
        assert!(sim.wait_at_gate("park", 1, Duration::from_secs(30)), "the worker is parked");
        let input = Arc::new(input_1101());
        let t0 = Instant::now();
        let threads: Vec<_> = (0..SUBMIT_THREADS)
            .map(|_| {
                let input = input.clone();
                std::thread::spawn(move || {
                    let infno = CString::new("1101").unwrap();
                    for _ in 0..per_thread {
                        call_async(&infno, &input);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let rate = total / t0.elapsed().as_secs_f64();
        mi_shutdown(0);
        sim.open_gate("park");
        println!("submit: {rate:.0}/s vs {b:.0}/s");
        ours.push(rate);
        base.push(b);
        ratios.push(rate / b);
    }
    let (rate, ratio) = (median(ours), median(ratios));
    Row {
        figure: format!("durable async submits, {SUBMIT_THREADS} threads, synchronous=FULL"),
        ours: format!("{rate:.0}/s"),
        baseline: format!("{:.0}/s (one transaction per row)", median(base)),
        ratio,
        target: ">= 5x and >= 20000/s".into(),
        met: Some(ratio >= 5.0 && rate >= 20_000.0),
    }
}

/// The naive journal: 8 threads, each with its own connection, one INSERT
/// transaction per row, same disk, same durability.
fn one_row_per_transaction(path: &Path, per_thread: usize) -> f64 {
    let setup = rusqlite::Connection::open(path).unwrap();
    setup
        .execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE r (id INTEGER PRIMARY KEY, msgid TEXT UNIQUE, infno TEXT,
             envelope TEXT, state TEXT, created_at TEXT);",
        )
        .unwrap();
    let envelope =
        json!({"infno": "1101", "input": {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO}}}).to_string();
    let t0 = Instant::now();
    let threads: Vec<_> = (0..SUBMIT_THREADS)
        .map(|t| {
            let (path, envelope) = (path.to_path_buf(), envelope.clone());
            std::thread::spawn(move || {
                let c = rusqlite::Connection::open(path).unwrap();
                c.busy_timeout(Duration::from_secs(60)).unwrap();
                c.execute_batch("PRAGMA synchronous=FULL").unwrap();
                for i in 0..per_thread {
                    c.execute(
                        "INSERT INTO r(msgid, infno, envelope, state, created_at)
                         VALUES (?1, '1101', ?2, 'queued', datetime('now'))",
                        rusqlite::params![format!("{t}-{i}"), envelope],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    (per_thread * SUBMIT_THREADS) as f64 / t0.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------
// 3. Async end to end.

const E2E_THREADS: usize = 4;

fn async_end_to_end(o: &Opts) -> Vec<Row> {
    let per_thread = if o.quick { 500 } else { 2000 };
    let total = (per_thread * E2E_THREADS) as f64;
    let sim = sim();
    let url = sim.service_url();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let floor_dir = tempfile::tempdir().unwrap();
    let infno = CString::new("1101").unwrap();
    let mut buf = vec![0u8; 1 << 16];
    init(&config(dirs[0].path(), &url, "normal", 1));
    assert_eq!(call_sync(&infno, &input_1101(), &mut buf), MI_OK, "{}", last_error());
    mi_shutdown(5000);
    let raw = Arc::new(RawClient::new(&url, &sent_envelope(&dirs[0].path().join("mi_journal.db"))));
    let mut next_raw = 0u64;
    // E2E_THREADS threads, each sending `per_thread` requests its own way; the rate.
    let mut threads_rate = |work: &(dyn Fn(RawMsgids) + Sync)| {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for t in 0..E2E_THREADS as u64 {
                let ids = RawMsgids(next_raw + t * per_thread as u64);
                s.spawn(move || work(ids));
            }
        });
        next_raw += (E2E_THREADS * per_thread) as u64;
        total / t0.elapsed().as_secs_f64()
    };
    let mut base = vec![];
    let mut modes = [Rounds::new("normal"), Rounds::new("full")];
    for _ in 0..o.rounds {
        let b = threads_rate(&|mut ids: RawMsgids| {
            for _ in 0..per_thread {
                raw.post(&ids.next());
            }
        });
        base.push(b);
        for (k, m) in modes.iter_mut().enumerate() {
            let sync = m.sync;
            let path = floor_dir.path().join(format!("floor-{sync}.db"));
            drop(DurableClient::open(&path, sync)); // the table, before the threads race to make it
            let floor = threads_rate(&|mut ids: RawMsgids| {
                let db = DurableClient::open(&path, sync);
                for _ in 0..per_thread {
                    db.call(&raw, &ids.next());
                }
            });
            init(&config(dirs[k].path(), &url, sync, E2E_THREADS as u32));
            call_sync(&infno, &input_1101(), &mut buf);
            let rate = threads_rate(&|_| {
                let (infno, input) = (CString::new("1101").unwrap(), input_1101());
                let ids: Vec<i64> = (0..per_thread).map(|_| call_async(&infno, &input)).collect();
                let mut buf = vec![0u8; 1 << 16];
                for id in ids {
                    loop {
                        match get_result(id, &mut buf) {
                            MI_PENDING => std::thread::sleep(Duration::from_millis(1)),
                            rc => {
                                assert_eq!(rc, MI_OK, "request {id}");
                                break;
                            }
                        }
                    }
                }
            });
            mi_shutdown(5000);
            println!("async {sync}: {rate:.0}/s vs raw {b:.0}/s and the durable floor {floor:.0}/s");
            m.push(rate, b, floor);
        }
    }
    let b = median(base);
    let mut rows = Vec::new();
    for Rounds { sync, ours, floor, vs_raw, vs_floor } in modes {
        let figure =
            format!("async end to end, {E2E_THREADS} threads submit, {E2E_THREADS} workers, synchronous={sync}");
        let (rate, floor) = (median(ours), median(floor));
        rows.push(Row {
            figure: figure.clone(),
            ours: format!("{rate:.0} completions/s"),
            baseline: format!("{b:.0}/s (raw ureq, {E2E_THREADS} threads)"),
            ratio: median(vs_raw),
            target: "report".into(),
            met: None,
        });
        let ratio = median(vs_floor);
        rows.push(Row {
            figure,
            ours: format!("{rate:.0} completions/s"),
            baseline: format!("{floor:.0}/s (durable floor, {E2E_THREADS} threads)"),
            ratio,
            target: ">= 0.5x".into(),
            met: Some(ratio >= 0.5),
        });
    }
    rows
}

// ---------------------------------------------------------------------------
// 4. SM3 and SM4-CBC against `openssl speed`.

/// MB/s (10^6 bytes) of `f` over buffers of `size` bytes, for about `budget`.
fn throughput(size: usize, budget: Duration, mut f: impl FnMut(&[u8])) -> f64 {
    let data = vec![0x5au8; size];
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget {
        f(&data);
        n += 1;
    }
    (n as f64 * size as f64) / t0.elapsed().as_secs_f64() / 1e6
}

/// OpenSSL's MB/s for an EVP algorithm at one size, or None if it cannot run.
fn openssl_speed(alg: &str, size: usize) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-evp", alg, "-bytes", &size.to_string(), "-seconds", "1"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let k: f64 = text.lines().last()?.split_whitespace().last()?.trim_end_matches('k').parse().ok()?;
    Some(k / 1000.0)
}

fn crypto(o: &Opts) -> Vec<Row> {
    let (key, iv) = ([7u8; 16], [9u8; 16]);
    let mut rows = Vec::new();
    for size in [1024usize, 16 * 1024, 1024 * 1024] {
        for alg in ["sm3", "sm4-cbc"] {
            let (mut ours, mut theirs, mut ratios) = (vec![], vec![], vec![]);
            for _ in 0..o.rounds.min(3) {
                let us = throughput(size, Duration::from_millis(700), |d| {
                    if alg == "sm3" {
                        std::hint::black_box(sm::sm3(d));
                    } else {
                        std::hint::black_box(sm::sm4_encrypt(Mode::Cbc, &key, Some(&iv), d).unwrap());
                    }
                });
                let Some(them) = openssl_speed(alg, size) else { continue };
                ours.push(us);
                theirs.push(them);
                ratios.push(us / them);
            }
            if ours.is_empty() {
                println!("crypto: openssl speed did not run; {alg} not compared");
                continue;
            }
            let ratio = median(ratios);
            println!("crypto {alg} {size}: {ratio:.2}x");
            rows.push(Row {
                figure: format!("{} MB/s, {} KiB buffers", alg.to_uppercase(), size / 1024),
                ours: format!("{:.0} MB/s", median(ours)),
                baseline: format!("{:.0} MB/s (openssl speed -evp {alg})", median(theirs)),
                ratio,
                target: "report (goal >= 1.0x)".into(),
                met: None,
            });
        }
    }
    rows
}

// ---------------------------------------------------------------------------
// 5 and 7. A journal of a million finished requests.

/// Fills a journal made by the SDK with `finished` succeeded requests (copies of a
/// real 2201's row and attempt, each with its own msgid) and `unfinished` requests
/// waiting out a gateway outage (`retry_wait`, due in an hour).
fn fill_journal(path: &Path, finished: u64, unfinished: u64) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL;").unwrap();
    let (envelope, result): (String, String) = c
        .query_row(
            "SELECT envelope, result FROM mi_request WHERE state = 'succeeded' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let due = mi_sdk::Clock::system().unix_ms() + 3_600_000;
    let tx = c.unchecked_transaction().unwrap();
    let start: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM mi_request", [], |r| r.get(0)).unwrap();
    tx.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO mi_request(id, msgid, infno, mode, priority, state, envelope, attempts, mi_code, result,
                                created_at, updated_at, next_at)
         SELECT ?2 + i, printf('H44030000001%014d%04d', 20010101000000 + i / 10000, i % 10000), '2201', 'sync', 0,
                CASE WHEN i > ?1 - ?3 THEN 'retry_wait' ELSE 'succeeded' END, ?4, 1,
                CASE WHEN i > ?1 - ?3 THEN NULL ELSE 0 END, CASE WHEN i > ?1 - ?3 THEN NULL ELSE ?5 END,
                strftime('%Y-%m-%d %H:%M:%f', 'now', 'localtime'), strftime('%Y-%m-%d %H:%M:%f', 'now', 'localtime'),
                CASE WHEN i > ?1 - ?3 THEN ?6 ELSE NULL END
           FROM n",
        rusqlite::params![(finished + unfinished) as i64, start, unfinished as i64, envelope, result, due],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO mi_attempt(request_id, attempt_no, msgid, started_at, finished_at, outcome, http_status,
                                infcode, response, latency_ms)
         SELECT id, 1, msgid, created_at, updated_at, CASE WHEN state = 'succeeded' THEN 'ok' ELSE 'never_sent' END,
                200, 0, result, 3
           FROM mi_request WHERE id > ?1",
        [start],
    )
    .unwrap();
    tx.commit().unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
}

/// A journal with one real signed-in 2201 in it, the SDK shut down.
fn seeded_journal(dir: &Path, url: &str) {
    init(&unsealed(config(dir, url, "full", 4)));
    let infno = CString::new("2201").unwrap();
    let input = CString::new(
        json!({"input": {"data": {"psn_no": "44030000000000100001", "insutype": "310",
                                   "begntime": "2026-11-27 09:00:00", "mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO,
                                   "ipt_otp_no": format!("MZ{:04}", node_of(dir)), "atddr_no": "D001", "dr_name": "李医生", "dept_code": "A01",
                                   "dept_name": "内科", "caty": "A01"}},
               "insuplc_admdvs": "440300"})
        .to_string(),
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let rc = call_sync(&infno, &input, &mut buf);
    assert_eq!(rc, MI_OK, "2201: {}", last_error());
    mi_shutdown(5000);
}

fn time_us(f: impl FnOnce()) -> f64 {
    let t0 = Instant::now();
    f();
    t0.elapsed().as_secs_f64() * 1e6
}

fn big_journal(o: &Opts, do_init: bool, do_lookup: bool) -> Vec<Row> {
    let big = if o.quick { 100_000 } else { 1_000_000 };
    let sim = sim();
    let url = sim.service_url();
    let (small_dir, big_dir, empty_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    seeded_journal(small_dir.path(), &url);
    seeded_journal(big_dir.path(), &url);
    let t0 = Instant::now();
    fill_journal(&small_dir.path().join("mi_journal.db"), 1_000, 0);
    fill_journal(&big_dir.path().join("mi_journal.db"), big, 10_000);
    let bytes = std::fs::metadata(big_dir.path().join("mi_journal.db")).map(|m| m.len()).unwrap_or(0);
    println!(
        "journal of {big} finished + 10000 unfinished requests made in {:.1} s ({} MB)",
        t0.elapsed().as_secs_f64(),
        bytes / 1_000_000
    );
    let mut rows = Vec::new();
    if do_init {
        let (mut empty, mut full) = (vec![], vec![]);
        for _ in 0..o.rounds {
            for (dir, out) in [(&empty_dir, &mut empty), (&big_dir, &mut full)] {
                let cfg = unsealed(config(dir.path(), &url, "full", 4));
                out.push(time_us(|| init(&cfg)) / 1000.0);
                mi_shutdown(5000);
            }
        }
        let (e, f) = (median(empty), median(full));
        println!("init: empty {e:.1} ms, big {f:.1} ms");
        rows.push(Row {
            figure: format!("mi_init, {big} finished + 10000 unfinished requests"),
            ours: format!("{f:.1} ms"),
            baseline: format!("{e:.1} ms (empty journal)"),
            ratio: f / e,
            target: "<= 100 ms".into(),
            met: Some(f <= 100.0),
        });
    }
    if do_lookup {
        let samples = if o.quick { 2000 } else { 10_000 };
        let mut buf = vec![0u8; 1 << 16];
        // Per journal: random ids over all of it, ids among its newest 1,000 (what
        // an HIS asks about), and the status.
        let mut results: [[Vec<f64>; 3]; 2] = Default::default();
        for _ in 0..o.rounds {
            for (k, (dir, n)) in [(&small_dir, 1_000u64), (&big_dir, big)].into_iter().enumerate() {
                init(&unsealed(config(dir.path(), &url, "full", 4)));
                let mut rng = 0x9e37_79b9_7f4a_7c15u64;
                let mut next = |m: u64| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % m
                };
                let mut any = Vec::with_capacity(samples);
                let mut recent = Vec::with_capacity(samples);
                for _ in 0..samples {
                    let id = 2 + next(n) as i64;
                    any.push(time_us(|| assert_eq!(get_result(id, &mut buf), MI_OK)));
                    let id = 2 + (n - 1_000 + next(1_000)) as i64;
                    recent.push(time_us(|| assert_eq!(get_result(id, &mut buf), MI_OK)));
                }
                let status: Vec<f64> = (0..200).map(|_| time_us(|| assert_eq!(get_status(&mut buf), MI_OK))).collect();
                mi_shutdown(5000);
                for (slot, v) in results[k].iter_mut().zip([any, recent, status]) {
                    slot.push(median(v));
                }
            }
        }
        let [small, large] = results.map(|r| r.map(median));
        for (i, what) in
            ["mi_get_result, random ids", "mi_get_result, newest 1000 ids", "mi_get_status"].into_iter().enumerate()
        {
            let (s, b) = (small[i], large[i]);
            println!("{what}: {s:.1} us on 1000 rows, {b:.1} us on {big}");
            rows.push(Row {
                figure: format!("{what} latency, {big} rows"),
                ours: format!("{b:.1} us"),
                baseline: format!("{s:.1} us (1000 rows)"),
                ratio: b / s,
                target: "flat (<= 1.5x)".into(),
                met: Some(b / s <= 1.5),
            });
        }
    }
    rows
}

// ---------------------------------------------------------------------------
// 6. Memory after a million calls.

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The simulator in a child process, so its own bookkeeping is not in our RSS.
fn spawn_sim() -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve-sim")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the simulator process starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().to_string())
}

fn serve_sim() {
    let sim = sim();
    println!("{}", sim.service_url());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn rss(o: &Opts) -> Row {
    const THREADS: usize = 4;
    let total: usize = if o.quick { 100_000 } else { 1_000_000 };
    let (mut child, url) = spawn_sim();
    let dir = tempfile::tempdir().unwrap();
    init(&config(dir.path(), &url, "normal", 4));
    let calls = |n: usize| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                std::thread::spawn(move || {
                    let (infno, input) = (CString::new("1101").unwrap(), input_1101());
                    let mut buf = vec![0u8; 1 << 16];
                    for _ in 0..n / THREADS {
                        assert_eq!(call_sync(&infno, &input, &mut buf), MI_OK, "{}", last_error());
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    };
    calls(1_000);
    let after_1k = rss_kib();
    let t0 = Instant::now();
    calls(total - 1_000);
    let secs = t0.elapsed().as_secs_f64();
    let after = rss_kib();
    mi_shutdown(5000);
    let _ = child.kill();
    let _ = child.wait();
    println!("rss: {after_1k} KiB after 1000 calls, {after} KiB after {total} ({:.0} calls/s)", total as f64 / secs);
    let ratio = after as f64 / after_1k as f64;
    Row {
        figure: format!("RSS after {total} sync calls ({THREADS} threads, {:.0} calls/s)", total as f64 / secs),
        ours: format!("{:.1} MiB", after as f64 / 1024.0),
        baseline: format!("{:.1} MiB (after 1000)", after_1k as f64 / 1024.0),
        ratio,
        target: "flat (<= 1.1x)".into(),
        met: Some(ratio <= 1.1),
    }
}
