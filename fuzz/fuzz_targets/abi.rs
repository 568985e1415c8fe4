//! The argument-decoding layer of the exports: arbitrary text (GBK charset, so
//! decoding is exercised too), arbitrary capacities (0, 1, small, negative, NULL
//! buffers), into mi_call_sync, mi_call_async, mi_sm3_hex and mi_sm4_*_hex of an SDK
//! started against a gateway that refuses connections. Every call ends in a
//! documented code — never `MI_E_INTERNAL` (a panic caught at the boundary) — and
//! nothing is written past the capacity given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mi_sdk::ffi::*;
use std::ffi::{c_char, CString};
use std::sync::Once;

fn start() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let dir = std::env::temp_dir().join(format!("mi-fuzz-abi-{}", std::process::id()));
        let cfg = serde_json::json!({
            "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "fuzz", "mdtrtarea_admvs": "440300",
                            "opter": "0001", "opter_name": "fuzz"},
            "gateway": {"url": "http://127.0.0.1:9/fsi/api/rsfComIfsService/callService",
                        "connect_timeout_ms": 200, "timeout_ms": 500},
            "journal": {"path": dir.join("j.db").to_string_lossy(), "synchronous": "off"},
            "log": {"dir": dir.join("logs").to_string_lossy(), "level": "off"},
            "retry": {"max_attempts": 1},
            "charset": "gbk",
            "workers": 1,
            "max_input_bytes": 65536
        });
        let c = CString::new(cfg.to_string()).unwrap();
        // SAFETY: a NUL-terminated string.
        assert_eq!(unsafe { mi_init(c.as_ptr()) }, MI_OK);
    });
}

/// A C string of the bytes up to the first NUL.
fn arg(b: &[u8]) -> CString {
    CString::new(b.split(|x| *x == 0).next().unwrap_or(&[])).unwrap()
}

fuzz_target!(|data: &[u8]| {
    start();
    let Some((&sel, rest)) = data.split_first() else { return };
    let parts: Vec<&[u8]> = rest.splitn(4, |b| *b == 0xFF).collect();
    let a: Vec<CString> = (0..4).map(|i| arg(parts.get(i).copied().unwrap_or(&[]))).collect();
    let cap: i32 = match sel % 5 {
        0 => 0,
        1 => 1,
        2 => -1 - i32::from(sel),
        3 => 16,
        _ => 4096,
    };
    // One guard byte past the capacity.
    let mut buf = vec![0x55u8; cap.max(0) as usize + 1];
    let mut len = cap;
    let out: *mut c_char = if cap == 0 && sel & 0x80 != 0 { std::ptr::null_mut() } else { buf.as_mut_ptr().cast() };
    let mut id = 0i64;
    // SAFETY: every string is NUL-terminated; `out` is NULL or has `cap` bytes and a
    // guard; `len` and `id` are valid.
    let rc = unsafe {
        match (sel >> 3) % 5 {
            0 => mi_call_sync(a[0].as_ptr(), a[1].as_ptr(), out, &mut len),
            1 => mi_call_async(a[0].as_ptr(), a[1].as_ptr(), i32::from(sel), &mut id),
            2 => mi_sm3_hex(a[0].as_ptr(), out, &mut len),
            3 => mi_sm4_encrypt_hex(a[0].as_ptr(), a[1].as_ptr(), a[2].as_ptr(), a[3].as_ptr(), out, &mut len),
            _ => mi_sm4_decrypt_hex(a[0].as_ptr(), a[1].as_ptr(), a[2].as_ptr(), a[3].as_ptr(), out, &mut len),
        }
    };
    assert_ne!(rc, MI_E_INTERNAL, "a panic was caught at the boundary");
    assert!((-13..=1).contains(&rc), "undocumented code {rc}");
    if cap >= 0 {
        assert_eq!(buf[cap as usize], 0x55, "written past the capacity");
    }
    if rc == MI_OK && (sel >> 3) % 5 != 1 {
        assert!(len >= 0 && len < cap && buf[len as usize] == 0, "len {len}, cap {cap}");
    }
});
