//! Durable async submission, measured: 8 threads calling `mi_call_async` (journal
//! with `synchronous = FULL`, group commit) against the naive way, one SQLite
//! transaction per row from 8 threads, run in the same process on the same disk.
//!
//!     cargo run --release --example bench_submit [-- <submits per thread>]
//!
//! Prints rates and their ratio; asserts nothing (speed is measured, not tested).

use mi_sdk::ffi::*;
use serde_json::json;
use std::ffi::CString;
use std::sync::Arc;
use std::time::{Duration, Instant};

const THREADS: usize = 8;

fn main() {
    let per_thread: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2500);
    let total = per_thread * THREADS;
    let dir = tempfile::tempdir().unwrap();
    println!(
        "{THREADS} threads x {per_thread} = {total} durable submits, journal synchronous=FULL, {}",
        dir.path().display()
    );

    let base = baseline(&dir.path().join("baseline.db"), per_thread);
    println!("baseline: one transaction per row   {:>9.0} rows/s", base);

    let sim = mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").unwrap();
    let config = json!({
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "bench", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "bench"},
        "gateway": {"url": sim.service_url(), "timeout_ms": 120000},
        "journal": {"path": dir.path().join("mi_journal.db").to_string_lossy(), "synchronous": "full"},
        "log": {"dir": dir.path().join("logs").to_string_lossy(), "level": "warn"},
        "workers": 1,
        "queue_capacity": total * 2
    });
    let c = CString::new(config.to_string()).unwrap();
    // SAFETY: a NUL-terminated string.
    assert_eq!(unsafe { mi_init(c.as_ptr()) }, MI_OK);
    // Park the one worker on a slow request so the run measures submission alone.
    let park = CString::new(
        json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}, "_sim": {"delay_ms": 60000}})
            .to_string(),
    )
    .unwrap();
    let infno = CString::new("1101").unwrap();
    let mut id = 0i64;
    // SAFETY: valid strings and out-pointer.
    assert_eq!(unsafe { mi_call_async(infno.as_ptr(), park.as_ptr(), 0, &mut id) }, MI_OK);
    std::thread::sleep(Duration::from_millis(300));

    let input = Arc::new(
        CString::new(json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}}).to_string())
            .unwrap(),
    );
    let t0 = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let input = input.clone();
            std::thread::spawn(move || {
                let infno = CString::new("1101").unwrap();
                for _ in 0..per_thread {
                    let mut id = 0i64;
                    // SAFETY: valid strings and out-pointer.
                    let rc = unsafe { mi_call_async(infno.as_ptr(), input.as_ptr(), 0, &mut id) };
                    assert_eq!(rc, MI_OK);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let rate = total as f64 / secs;
    println!("mi_call_async (group commit)         {:>9.0} submits/s  ({secs:.2} s)", rate);
    println!("ratio: {:.1}x the baseline", rate / base);
    mi_shutdown(0);
}

/// 8 threads, each with its own connection, one INSERT transaction per row: what a
/// journal without group commit does.
fn baseline(path: &std::path::Path, per_thread: usize) -> f64 {
    let setup = rusqlite::Connection::open(path).unwrap();
    setup
        .execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE r (id INTEGER PRIMARY KEY, msgid TEXT UNIQUE, infno TEXT, envelope TEXT, state TEXT, created_at TEXT);",
        )
        .unwrap();
    let envelope =
        json!({"infno": "1101", "input": {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}}})
            .to_string();
    let t0 = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (path, envelope) = (path.to_path_buf(), envelope.clone());
            std::thread::spawn(move || {
                let c = rusqlite::Connection::open(path).unwrap();
                c.busy_timeout(Duration::from_secs(60)).unwrap();
                c.execute_batch("PRAGMA synchronous=FULL").unwrap();
                for i in 0..per_thread {
                    c.execute(
                        "INSERT INTO r(msgid, infno, envelope, state, created_at) VALUES (?1, '1101', ?2, 'queued', datetime('now'))",
                        rusqlite::params![format!("{t}-{i}"), envelope],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (per_thread * THREADS) as f64 / t0.elapsed().as_secs_f64()
}
