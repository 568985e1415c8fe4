//! A downloaded zip, any bytes: unpacked or refused, never a panic, and nothing
//! written outside the destination, whatever the entries are named.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mi_sdk::internals::{safe_relative, unpack, Limits};
use std::path::Component;

fuzz_target!(|data: &[u8]| {
    // Entry names on their own: a name that passes is a plain relative path.
    if let Ok(name) = std::str::from_utf8(data) {
        if let Ok(p) = safe_relative(name) {
            assert!(p.components().all(|c| matches!(c, Component::Normal(_))), "{name:?} -> {p:?}");
        }
    }
    // The bytes as a zip, unpacked into a fresh folder inside a fresh parent.
    let parent = tempfile_dir();
    let dest = parent.join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let zip = parent.join("in.zip");
    std::fs::write(&zip, data).unwrap();
    let limits = Limits { max_bytes: 1 << 20, max_entries: 64 };
    let _ = unpack(&zip, &dest, &limits);
    std::fs::remove_file(&zip).unwrap();
    // Only `dest` may have been written to.
    let left: Vec<_> = std::fs::read_dir(&parent).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("dest")], "written beside the destination");
    std::fs::remove_dir_all(&parent).unwrap();
});

fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let p =
        std::env::temp_dir().join(format!("mi-fuzz-zip-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&p).unwrap();
    p
}
