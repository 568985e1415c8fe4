//! The committed `include/mi_sdk.h` must be what cbindgen generates from the
//! current `src/ffi.rs` (build.rs writes a fresh copy into OUT_DIR on every build).

#[test]
fn committed_header_is_current() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/mi_sdk.h"));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/mi_sdk.h")).unwrap();
    assert!(
        fresh == committed,
        "include/mi_sdk.h is stale: run `cargo build` (outside CI) and commit the regenerated header"
    );
}

#[test]
fn header_declares_every_export_with_mi_call() {
    let h = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/include/mi_sdk.h"));
    for f in [
        "mi_init(",
        "mi_call_sync(",
        "mi_call_async(",
        "mi_get_result(",
        "mi_get_request(",
        "mi_reverse(",
        "mi_get_status(",
        "mi_last_error(",
        "mi_last_request_id(",
        "mi_shutdown(",
        "mi_version(",
        "mi_abi_version(",
        "mi_code_name(",
        "mi_sm3_hex(",
        "mi_sm4_encrypt_hex(",
        "mi_sm4_decrypt_hex(",
        "mi_upload_file(",
        "mi_download_file(",
        "mi_reconcile(",
        "mi_identify(",
    ] {
        let decl = h
            .lines()
            .filter(|l| !l.trim_start().starts_with('*'))
            .find(|l| l.contains(&format!(" {f}")) || l.contains(&format!("*{f}")));
        let line = decl.unwrap_or_else(|| panic!("{f} not declared"));
        assert!(line.starts_with("MI_CALL "), "{line}");
    }
    for m in [
        "#ifndef MI_SDK_H",
        "define MI_CALL __stdcall",
        "MI_SDK_VERSION_MAJOR",
        "MI_ABI_VERSION 1",
        "MI_E_INTERNAL -99",
    ] {
        assert!(h.contains(m), "{m} missing");
    }
    assert!(h.is_ascii(), "the header stays ASCII so any code page compiles it");
}
