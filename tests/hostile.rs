//! Hostile callers (issue 8): deeply nested JSON, small caller stacks, every output
//! buffer at capacities 0, 1, exact and negative, `mi_shutdown` racing calls on
//! other threads, `mi_init` racing itself, and calls from threads created after
//! shutdown. Every one ends in a documented code: never a crash, a hang or a loss.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::json;
use std::collections::HashSet;
use std::ffi::{c_char, CString};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `{"data":[[[…]]]}` with `depth` levels of arrays, and the same with objects.
fn nested(depth: usize) -> [String; 2] {
    let arrays = format!("{{\"data\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{{\"data\":{}1{}}}", "{\"a\":".repeat(depth), "}".repeat(depth));
    [arrays, objects]
}

/// Runs `f` on a thread with `stack` bytes of stack, as a HIS's worker thread may
/// have, and fails the test if it does not come back within `secs`.
fn on_small_stack<T: Send + 'static>(stack: usize, secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(secs)).expect("the call came back (no hang, no dead thread)")
}

/// 256 KiB, a quarter of the 1 MiB that Windows gives a thread by default, for the
/// library as shipped (release). Unoptimised builds keep every temporary on the stack,
/// so the test build gets 1 MiB.
const SMALL_STACK: usize = if cfg!(debug_assertions) { 1 << 20 } else { 256 << 10 };

#[test]
fn hundred_thousand_levels_of_nesting_are_refused_on_a_small_stack() {
    let _g = serial();
    let env = Env::plain();
    // 100,000 levels inline in the config itself: a config error, not a stack overflow.
    let deep_cfg = format!("{{\"institution\":{}}}", nested(100_000)[1]);
    let rc = on_small_stack(SMALL_STACK, 30, move || init_text(&deep_cfg));
    assert_eq!(rc, MI_E_CONFIG, "{}", last_error());
    assert_eq!(env.init(json!({"max_input_bytes": 4 << 20})), MI_OK);
    for input in nested(100_000) {
        let sync = input.clone();
        let (rc, out, err) = on_small_stack(SMALL_STACK, 30, move || {
            let (rc, out, _) = call_bytes(b"1101", sync.as_bytes(), 4096);
            (rc, out, last_error())
        });
        assert_eq!(rc, MI_E_INVALID_ARGUMENT, "{err}");
        assert!(err.contains("JSON"), "{err}");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["mi_code"], MI_E_INVALID_ARGUMENT);
        let rc = on_small_stack(SMALL_STACK, 30, move || {
            let infno = CString::new("1101").unwrap();
            let input = CString::new(input).unwrap();
            let mut id = 0i64;
            // SAFETY: valid strings and out-pointer.
            unsafe { mi_call_async(infno.as_ptr(), input.as_ptr(), 0, &mut id) }
        });
        assert_eq!(rc, MI_E_INVALID_ARGUMENT);
    }
    // A whole outpatient query works from the same small stack: the SDK's own call
    // path (JSON, journal, HTTP) fits in it.
    let rc = on_small_stack(SMALL_STACK, 30, || call("1101", q1101(ZHANG_CERTNO)).0);
    assert_eq!(rc, MI_OK, "{}", last_error());
    assert_eq!(env.ledger()["by_infno"]["1101"], 1, "only the good call reached the platform");
    mi_shutdown(1000);
}

type OutFn = Box<dyn Fn(*mut c_char, *mut i32) -> i32>;

/// Every export with an output buffer, each asked the same way.
fn outputs(id: i64) -> Vec<(&'static str, OutFn)> {
    let s = |t: &str| CString::new(t).unwrap();
    let (infno, input) = (s("1101"), s(&q1101(ZHANG_CERTNO).to_string()));
    let (data, data2, mode, key, iv) =
        (s("abc"), s("abc"), s("cbc"), s("00112233445566778899aabbccddeeff"), s("0f0e0d0c0b0a09080706050403020100"));
    // SAFETY (every closure): the strings outlive the closures (moved in); the
    // buffer and length come from the caller of the closure.
    vec![
        ("mi_call_sync", Box::new(move |o, l| unsafe { mi_call_sync(infno.as_ptr(), input.as_ptr(), o, l) })),
        ("mi_get_result", Box::new(move |o, l| unsafe { mi_get_result(id, o, l) })),
        ("mi_get_request", Box::new(move |o, l| unsafe { mi_get_request(id, o, l) })),
        ("mi_get_status", Box::new(|o, l| unsafe { mi_get_status(o, l) })),
        ("mi_last_error", Box::new(|o, l| unsafe { mi_last_error(o, l) })),
        ("mi_sm3_hex", Box::new(move |o, l| unsafe { mi_sm3_hex(data.as_ptr(), o, l) })),
        (
            "mi_sm4_encrypt_hex",
            Box::new(move |o, l| unsafe {
                mi_sm4_encrypt_hex(mode.as_ptr(), key.as_ptr(), iv.as_ptr(), data2.as_ptr(), o, l)
            }),
        ),
    ]
}

#[test]
fn every_output_buffer_at_capacity_zero_one_exact_and_negative() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK);
    let (rc, _) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_OK);
    let id = mi_last_request_id();
    // mi_last_error needs a last error to report.
    assert_eq!(get_result(-5).0, MI_E_NOT_FOUND);
    for (name, f) in outputs(id) {
        // Capacity 0 with NULL: the size comes back, nothing is written.
        let mut len = 0;
        let rc = f(null_mut(), &mut len);
        assert_eq!(rc, MI_E_BUFFER_TOO_SMALL, "{name} at 0");
        let needed = len;
        assert!(needed > 0, "{name}: {needed}");
        // The same with a real buffer of capacity 0: not a byte is touched.
        let mut guard = [0x55u8; 4];
        let mut len = 0;
        assert_eq!(f(guard.as_mut_ptr().cast(), &mut len), MI_E_BUFFER_TOO_SMALL, "{name} at 0 with a buffer");
        assert_eq!(guard, [0x55; 4], "{name} wrote into a zero-capacity buffer");
        // Capacity 1: only the NUL.
        let mut one = [0x55u8; 4];
        let mut len = 1;
        assert_eq!(f(one.as_mut_ptr().cast(), &mut len), MI_E_BUFFER_TOO_SMALL, "{name} at 1");
        assert_eq!((one[0], one[1], len), (0, 0x55, needed), "{name} at 1");
        // Capacity exactly the length: the NUL does not fit, so only a NUL is written.
        let mut exact = vec![0x55u8; needed as usize + 1];
        let mut len = needed;
        assert_eq!(f(exact.as_mut_ptr().cast(), &mut len), MI_E_BUFFER_TOO_SMALL, "{name} exact");
        assert_eq!((exact[0], exact[1], exact[needed as usize]), (0, 0x55, 0x55), "{name} exact");
        // One more: the text, its NUL, nothing past it.
        let mut fits = vec![0x55u8; needed as usize + 2];
        let mut len = needed + 1;
        assert_eq!(f(fits.as_mut_ptr().cast(), &mut len), MI_OK, "{name} length + 1");
        assert_eq!((len, fits[needed as usize], fits[needed as usize + 1]), (needed, 0, 0x55), "{name}");
        // Negative capacities: refused without touching the buffer.
        for cap in [-1, i32::MIN] {
            let mut buf = [0x55u8; 4];
            let mut len = cap;
            assert_eq!(f(buf.as_mut_ptr().cast(), &mut len), MI_E_INVALID_ARGUMENT, "{name} at {cap}");
            assert_eq!((buf, len), ([0x55; 4], cap), "{name} at {cap}");
        }
    }
    // The sync calls made above were journaled and answered each time.
    assert!(env.ledger()["by_infno"]["1101"].as_u64().unwrap() >= 5);
    mi_shutdown(1000);
}

/// The codes a call may end in while another thread shuts the SDK down and starts it.
const RACE_CODES: [i32; 3] = [MI_OK, MI_E_NOT_INITIALIZED, MI_E_SHUTDOWN];

#[test]
fn shutdown_and_init_race_calls_on_other_threads_and_lose_nothing_acknowledged() {
    let _g = serial();
    let env = Env::plain();
    let cfg = env.config(json!({"workers": 2})).to_string();
    assert_eq!(init_text(&cfg), MI_OK);
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(Mutex::new(Vec::<i64>::new()));
    let seen = Arc::new(Mutex::new(HashSet::<i32>::new()));
    let mut callers = Vec::new();
    for t in 0..6 {
        let (stop, accepted, seen) = (stop.clone(), accepted.clone(), seen.clone());
        callers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                n += 1;
                let rc = if t % 2 == 0 {
                    call_bytes(b"1101", q1101(ZHANG_CERTNO).to_string().as_bytes(), 8192).0
                } else {
                    let (rc, id) = call_async("1101", q1101(ZHANG_CERTNO), 0);
                    if rc == MI_OK {
                        accepted.lock().unwrap().push(id);
                    }
                    rc
                };
                assert!(RACE_CODES.contains(&rc), "thread {t} call {n}: {rc} {}", last_error());
                seen.lock().unwrap().insert(rc);
                // Readers race too.
                let (rc, _) = status();
                assert!(RACE_CODES.contains(&rc), "status: {rc}");
            }
            n
        }));
    }
    let t0 = Instant::now();
    for round in 0..12 {
        std::thread::sleep(Duration::from_millis(40));
        let wait = if round % 3 == 0 { 0 } else { 500 };
        assert_eq!(mi_shutdown(wait), MI_OK);
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(init_text(&cfg), MI_OK, "round {round}: {}", last_error());
    }
    stop.store(true, Ordering::Release);
    let calls: u64 = callers.into_iter().map(|h| h.join().expect("a caller thread panicked")).sum();
    eprintln!("{calls} calls raced 12 shutdowns and starts in {:?}", t0.elapsed());
    assert!(calls > 50, "the callers ran");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&MI_OK) && seen.len() > 1, "calls met a stopped SDK as well as a running one: {seen:?}");
    // Every request the SDK acknowledged finishes, across all those restarts.
    let accepted = accepted.lock().unwrap().clone();
    eprintln!("{} async requests acknowledged; codes seen: {seen:?}", accepted.len());
    assert!(!accepted.is_empty());
    for id in &accepted {
        let (rc, out) = wait_result(*id, 30);
        assert_eq!(rc, MI_OK, "request {id}: {out}");
    }
    // Nothing was sent twice: every msgid the platform saw is distinct.
    let ledger = env.ledger();
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
    mi_shutdown(1000);
}

#[test]
fn init_races_itself() {
    let _g = serial();
    let env = Env::plain();
    let same = env.config(json!({})).to_string();
    let other = env.config(json!({"workers": 1})).to_string();
    // Eight threads start the same config at once: one SDK, all told MI_OK.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let c = same.clone();
            std::thread::spawn(move || init_text(&c))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), MI_OK);
    }
    assert_eq!(status().1["workers"], 4);
    mi_shutdown(1000);
    // Two configs at once: exactly one wins, the others are told why.
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let c = if i % 2 == 0 { same.clone() } else { other.clone() };
            std::thread::spawn(move || (init_text(&c), last_error()))
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let oks = results.iter().filter(|(rc, _)| *rc == MI_OK).count();
    assert!((1..8).contains(&oks), "{results:?}");
    for (rc, err) in &results {
        assert!(*rc == MI_OK || (*rc == MI_E_CONFIG && err.contains("already initialised")), "{rc} {err}");
    }
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    mi_shutdown(1000);
}

#[test]
fn threads_created_after_shutdown_get_not_initialized() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    let id = mi_last_request_id();
    assert_eq!(mi_shutdown(1000), MI_OK);
    let (rc, err, last_id, result) = std::thread::spawn(move || {
        let (rc, _, _) = call_bytes(b"1101", q1101(ZHANG_CERTNO).to_string().as_bytes(), 4096);
        (rc, last_error(), mi_last_request_id(), get_result(id).0)
    })
    .join()
    .unwrap();
    assert_eq!((rc, result, last_id), (MI_E_NOT_INITIALIZED, MI_E_NOT_INITIALIZED, 0));
    assert!(err.contains("mi_init"), "{err}");
    // A later start serves the old result to a new thread.
    assert_eq!(env.init(json!({})), MI_OK);
    assert_eq!(std::thread::spawn(move || get_result(id).0).join().unwrap(), MI_OK);
    mi_shutdown(1000);
}
