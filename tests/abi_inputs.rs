//! The C ABI's promises about arguments: calls before init and after shutdown, NULLs,
//! bad text, bad JSON, huge inputs, the buffer protocol, both charsets, and config
//! loading — each a clear code and message, never a crash.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::json;
use std::ffi::{c_char, CString};
use std::ptr::{null, null_mut};

#[test]
fn every_function_before_init_and_after_shutdown_is_not_initialized() {
    let _g = serial();
    let env = Env::plain();
    for phase in ["before init", "after shutdown"] {
        if phase == "after shutdown" {
            assert_eq!(env.init(json!({})), MI_OK);
            assert_eq!(mi_shutdown(100), MI_OK);
            assert_eq!(mi_shutdown(100), MI_OK, "idempotent");
        }
        let (rc, _, _) = call_bytes(b"1101", b"{}", 100);
        assert_eq!(rc, MI_E_NOT_INITIALIZED, "{phase}");
        assert!(last_error().contains("mi_init"), "{phase}: {}", last_error());
        assert_eq!(call_async("1101", json!({}), 0).0, MI_E_NOT_INITIALIZED);
        assert_eq!(get_result(1).0, MI_E_NOT_INITIALIZED);
        assert_eq!(get_request(1).0, MI_E_NOT_INITIALIZED);
        assert_eq!(status().0, MI_E_NOT_INITIALIZED);
        let mut len = 10;
        let mut buf = [0u8; 10];
        // SAFETY: buf has len bytes.
        assert_eq!(unsafe { mi_reverse(1, buf.as_mut_ptr().cast(), &mut len) }, MI_E_NOT_INITIALIZED);
    }
    assert_eq!(mi_abi_version(), 1);
}

#[test]
fn null_and_malformed_arguments_are_invalid_and_nothing_is_sent() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"max_input_bytes": 1048576})), MI_OK);
    let infno = CString::new("1101").unwrap();
    let input = CString::new(q1101(ZHANG_CERTNO).to_string()).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut len = buf.len() as i32;
    let out = buf.as_mut_ptr() as *mut c_char;
    // SAFETY (all calls below): pointers are valid or deliberately NULL.
    unsafe {
        assert_eq!(mi_call_sync(null(), input.as_ptr(), out, &mut len), MI_E_INVALID_ARGUMENT);
        assert!(last_error().contains("infno is NULL"));
        len = 4096;
        assert_eq!(mi_call_sync(infno.as_ptr(), null(), out, &mut len), MI_E_INVALID_ARGUMENT);
        assert_eq!(mi_call_sync(infno.as_ptr(), input.as_ptr(), out, null_mut()), MI_E_INVALID_ARGUMENT);
        len = 10;
        assert_eq!(mi_call_sync(infno.as_ptr(), input.as_ptr(), null_mut(), &mut len), MI_E_INVALID_ARGUMENT);
        len = -5;
        assert_eq!(mi_call_sync(infno.as_ptr(), input.as_ptr(), out, &mut len), MI_E_INVALID_ARGUMENT);
        assert_eq!(mi_call_async(infno.as_ptr(), input.as_ptr(), 0, null_mut()), MI_E_INVALID_ARGUMENT);
        assert_eq!(mi_get_result(1, out, null_mut()), MI_E_INVALID_ARGUMENT);
        assert_eq!(mi_get_status(out, null_mut()), MI_E_INVALID_ARGUMENT);
        assert_eq!(mi_last_error(out, null_mut()), MI_E_INVALID_ARGUMENT);
        // mi_identify: a NULL length, a NULL buffer with room, a request too big or not
        // the charset's text; with no reader configured, a way asked for is MI_E_CONFIG.
        let way = CString::new(r#"{"way":"ecard"}"#).unwrap();
        assert_eq!(mi_identify(way.as_ptr(), out, null_mut()), MI_E_INVALID_ARGUMENT);
        len = 10;
        assert_eq!(mi_identify(way.as_ptr(), null_mut(), &mut len), MI_E_INVALID_ARGUMENT);
        let huge = CString::new(format!("{{\"way\":\"{}\"}}", "x".repeat(1 << 20))).unwrap();
        len = 4096;
        assert_eq!(mi_identify(huge.as_ptr(), out, &mut len), MI_E_INVALID_ARGUMENT);
        assert!(last_error().contains("more than"), "{}", last_error());
        let gbk = CString::new(b"{\"operator_name\":\"\xd5\xc5\"}".to_vec()).unwrap();
        assert_eq!(mi_identify(gbk.as_ptr(), out, &mut len), MI_E_INVALID_ARGUMENT);
        assert_eq!(mi_identify(way.as_ptr(), out, &mut len), MI_E_CONFIG);
        assert!(last_error().contains("readers.ecard.library"), "{}", last_error());
        assert_eq!(mi_identify(null(), out, &mut len), MI_E_CONFIG, "NULL is auto, and no reader is configured");
    }
    for (infno, input, why) in [
        ("11O1", json!({}).to_string(), "transaction code"),
        ("1101 ", json!({}).to_string(), "transaction code"),
        ("2203a", json!({}).to_string(), "transaction code"),
        ("1101", "[1,2]".to_string(), "JSON object"),
        ("1101", "{\"data\":".to_string(), "not valid JSON"),
        ("1101", "".to_string(), "not valid JSON"),
        ("1101", json!({"input": {}, "fixmedins_code": "X"}).to_string(), "unknown envelope field"),
        ("2201", json!({"data": {"psn_no": "P"}}).to_string(), "insuplc_admdvs"),
        ("1101", format!("{{\"data\":\"{}\"}}", "x".repeat(2 << 20)), "max_input_bytes"),
    ] {
        let (rc, out, _) = call_bytes(infno.as_bytes(), input.as_bytes(), 4096);
        assert_eq!(rc, MI_E_INVALID_ARGUMENT, "{infno} {why}");
        assert!(last_error().contains(why), "{why}: {}", last_error());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!((v["infcode"].as_i64(), v["mi_code"].as_i64()), (Some(-1), Some(-1)));
        assert_eq!(mi_last_request_id(), 0, "not journaled");
    }
    // Text that is not UTF-8 (GBK bytes for 张三) with charset utf-8.
    let (rc, _, _) = call_bytes(b"1101", b"{\"data\":{\"psn_name\":\"\xd5\xc5\xc8\xfd\"}}", 4096);
    assert_eq!(rc, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("UTF-8"));
    // Nothing of that reached the platform.
    assert_eq!(env.ledger()["requests"], 0);
    mi_shutdown(1000);
}

#[test]
fn fifty_megabytes_of_input_is_refused_quickly() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK);
    let big = format!("{{\"data\":\"{}\"}}", "x".repeat(50 << 20));
    let t0 = std::time::Instant::now();
    let (rc, _, _) = call_bytes(b"1101", big.as_bytes(), 4096);
    assert_eq!(rc, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("max_input_bytes") || last_error().contains("more than"), "{}", last_error());
    assert_eq!(call_async("1101", serde_json::Value::String("x".repeat(50 << 20)), 0).0, MI_E_INVALID_ARGUMENT);
    eprintln!("50 MB refused in {:?}", t0.elapsed());
    assert_eq!(env.ledger()["requests"], 0);
    mi_shutdown(1000);
}

#[test]
fn buffer_protocol() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK);
    let input = q1101(ZHANG_CERTNO).to_string();
    // Size query: NULL buffer, capacity 0.
    let (rc, _, needed) = call_bytes(b"1101", input.as_bytes(), 0);
    assert_eq!(rc, MI_E_BUFFER_TOO_SMALL);
    assert!(needed > 100);
    let id = mi_last_request_id();
    assert!(id > 0);
    assert!(last_error().contains(&format!("mi_get_result({id})")), "{}", last_error());
    // The result is kept: fetch it with the right size, as many times as wanted.
    let (rc, full) = get_result(id);
    assert_eq!(rc, MI_OK);
    assert_eq!(full.len() as i32, needed);
    // Capacity equal to the length is too small (the NUL needs a byte); only a NUL is written.
    let mut buf = vec![0x55u8; needed as usize];
    let mut len = needed;
    // SAFETY: buf has len bytes.
    assert_eq!(unsafe { mi_get_result(id, buf.as_mut_ptr().cast(), &mut len) }, MI_E_BUFFER_TOO_SMALL);
    assert_eq!((buf[0], buf[1], len), (0, 0x55, needed));
    let mut buf = vec![0x55u8; needed as usize + 2];
    let mut len = needed + 1;
    // SAFETY: buf has more than len bytes.
    assert_eq!(unsafe { mi_get_result(id, buf.as_mut_ptr().cast(), &mut len) }, MI_OK);
    assert_eq!(len, needed);
    assert_eq!(&buf[..needed as usize], full.as_bytes());
    assert_eq!((buf[needed as usize], buf[needed as usize + 1]), (0, 0x55), "NUL written, nothing past it");
    // A one-byte buffer on a sync call: the call happened, only a NUL came back.
    let (rc, out, n) = call_bytes(b"1101", input.as_bytes(), 1);
    assert_eq!((rc, out[0], n), (MI_E_BUFFER_TOO_SMALL, 0, needed));
    assert_eq!(get_result(mi_last_request_id()).0, MI_OK);
    assert_eq!(env.ledger()["by_infno"]["1101"], 2);
    // Status and last error follow the same protocol.
    let mut len = 0;
    // SAFETY: NULL with capacity 0 asks for the size.
    assert_eq!(unsafe { mi_get_status(null_mut(), &mut len) }, MI_E_BUFFER_TOO_SMALL);
    assert!(len > 50);
    assert_eq!(get_result(987654).0, MI_E_NOT_FOUND);
    assert_eq!(get_request(987654).0, MI_E_NOT_FOUND);
    mi_shutdown(1000);
}

#[test]
fn gbk_in_and_out() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"charset": "gbk"})), MI_OK);
    // 1101 by name: 张三 in GBK is D5 C5 C8 FD.
    let mut input =
        b"{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\",\"psn_name\":\"".to_vec();
    input.extend_from_slice(b"\xd5\xc5\xc8\xfd\"}}");
    let (rc, out, _) = call_bytes(b"1101", &input, 65536);
    assert_eq!(rc, MI_OK, "{}", String::from_utf8_lossy(&out));
    assert!(contains(&out, b"\xd5\xc5\xc8\xfd"), "name comes back in GBK");
    assert!(std::str::from_utf8(&out).is_err(), "and is not UTF-8");
    let (text, _, bad) = encoding_rs::GBK.decode(&out);
    assert!(!bad);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["output"]["insuinfo"][0]["emp_name"], "深圳市示例科技有限公司");
    // Error texts are GBK too: a business error in Chinese.
    let (rc, _, _) = call_bytes(b"1101", b"{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"0\"}}", 65536);
    assert_eq!(rc, MI_E_BUSINESS);
    let err = last_error_bytes();
    let (msg, _, bad) = encoding_rs::GBK.decode(&err);
    assert!(!bad && msg.contains("未查询到"), "{msg}");
    // Bytes that are not GBK are refused.
    let (rc, _, _) = call_bytes(b"1101", b"{\"data\":\"\x81\"}", 4096);
    assert_eq!(rc, MI_E_INVALID_ARGUMENT);
    assert_eq!(env.ledger()["rejected"], 0);
    mi_shutdown(1000);
}

#[test]
fn config_sources_and_errors() {
    let _g = serial();
    let env = Env::plain();
    // NULL with nothing to find.
    std::env::remove_var("MI_SDK_CONFIG");
    let cwd = tempfile::tempdir().unwrap();
    std::env::set_current_dir(cwd.path()).unwrap();
    // SAFETY: NULL is allowed.
    assert_eq!(unsafe { mi_init(null()) }, MI_E_CONFIG);
    assert!(last_error().contains("MI_SDK_CONFIG"), "{}", last_error());
    for (text, key) in [
        ("{\"institution\":", "config"),
        ("{}", "institution"),
        (&env.config(json!({"gateway": {"urll": "x"}})).to_string() as &str, "urll"),
        (&env.config(json!({"workers": 0})).to_string(), "workers"),
        (&env.config(json!({"gateway": {"profile": "tif"}})).to_string(), "gateway.paas_id"),
        (&env.config(json!({"institution": {"fixmedins_code": "H1"}})).to_string(), "institution.fixmedins_code"),
    ] {
        assert_eq!(init_text(text), MI_E_CONFIG, "{key}");
        assert!(last_error().contains(key), "{key}: {}", last_error());
    }
    assert_eq!(init_text("/no/such/mi_sdk.json"), MI_E_CONFIG);
    assert!(last_error().contains("/no/such/mi_sdk.json"));
    // A file: relative paths resolve against its folder, not the working folder.
    let site = env.dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let mut cfg = env.config(json!({"journal": {"path": "data/j.db"}, "log": {"dir": "mylogs"}}));
    std::fs::write(site.join("mi_sdk.json"), format!("\u{feff}{cfg}")).unwrap();
    let path = site.join("mi_sdk.json").to_string_lossy().into_owned();
    assert_eq!(init_text(&path), MI_OK, "{}", last_error());
    assert_eq!(init_text(&path), MI_OK, "same config again is fine");
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    assert!(site.join("data/j.db").is_file());
    assert!(site.join("mylogs/mi_sdk.log").is_file());
    assert!(!cwd.path().join("data").exists());
    cfg["workers"] = json!(2);
    assert_eq!(init_text(&cfg.to_string()), MI_E_CONFIG, "a different config while running");
    assert!(last_error().contains("mi_shutdown"));
    mi_shutdown(1000);
    // MI_SDK_CONFIG names the file when mi_init gets NULL.
    std::env::set_var("MI_SDK_CONFIG", &path);
    // SAFETY: NULL is allowed.
    assert_eq!(unsafe { mi_init(null()) }, MI_OK, "{}", last_error());
    mi_shutdown(1000);
    std::env::remove_var("MI_SDK_CONFIG");
    // mi_sdk.json in the working folder is the last resort.
    std::fs::copy(site.join("mi_sdk.json"), cwd.path().join("mi_sdk.json")).unwrap();
    // SAFETY: NULL is allowed.
    assert_eq!(unsafe { mi_init(null()) }, MI_OK, "{}", last_error());
    mi_shutdown(1000);
}

/// A HIS on Chinese Windows: installed under `D:\医院HIS\`, it passes that path to
/// `mi_init` in its ANSI code page (GBK), and the config Notepad saved there is "ANSI"
/// (GBK) with Chinese names in it. Both are read as GBK when they are not UTF-8 (GBK
/// stands in for the ANSI code page off Windows), and the log says so.
#[test]
fn a_config_path_and_file_in_gbk_are_read_as_the_ansi_code_page() {
    let _g = serial();
    let gbk = |s: &str| mi_sdk::Charset::Gbk.encode(s);
    // "医保接口" in GBK is not valid UTF-8; "医院HIS" in GBK happens to be, and names no
    // file read that way.
    for folder in ["医保接口", "医院HIS"] {
        let env = Env::plain();
        let his = env.dir.path().join(folder);
        std::fs::create_dir_all(&his).unwrap();
        let cfg =
            env.config(json!({"institution": {"fixmedins_name": "深圳市第一人民医院", "opter_name": "收费员乙"}}));
        let file = his.join("mi_sdk.json");
        std::fs::write(&file, gbk(&serde_json::to_string_pretty(&cfg).unwrap())).unwrap();
        let path = CString::new(gbk(file.to_str().unwrap())).unwrap();
        assert_ne!(path.as_bytes(), file.to_str().unwrap().as_bytes());
        // SAFETY: a NUL-terminated string.
        assert_eq!(unsafe { mi_init(path.as_ptr()) }, MI_OK, "{folder}: {}", last_error());
        let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
        assert_eq!(rc, MI_OK, "{out}");
        // The same file by its UTF-8 path is the same config: MI_OK again.
        assert_eq!(init_text(file.to_str().unwrap()), MI_OK, "{}", last_error());
        mi_shutdown(1000);
        // The names reached the platform as Chinese, not mojibake.
        let envelope = journaled_envelope_of(&env.journal_path(), "1101");
        assert!(envelope.contains("深圳市第一人民医院") && envelope.contains("收费员乙"), "{envelope}");
        let log = std::fs::read_to_string(env.dir.path().join("logs/mi_sdk.log")).unwrap();
        assert!(
            log.contains("read as GBK (code page 936)") && log.contains("mi_init's argument read as GBK"),
            "{folder}: {log}"
        );
        // Neither UTF-8 nor GBK: a config error naming the file, nothing started.
        std::fs::write(&file, [b'{', 0xD5, 0xC5, 0x81]).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { mi_init(path.as_ptr()) }, MI_E_CONFIG);
        assert!(last_error().contains("neither valid UTF-8 nor valid GBK"), "{}", last_error());
    }
}

/// `mi_last_request_id` belongs to the last call on the thread: a call that fails
/// before it journals anything (whatever the reason, a caught panic included) leaves 0,
/// never the id of an earlier request the HIS might then fetch, reverse or bill.
#[test]
fn last_request_id_is_reset_by_every_call_that_fails_before_journaling() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK);
    let infno = CString::new("1101").unwrap();
    let input = CString::new(q1101(ZHANG_CERTNO).to_string()).unwrap();
    let path = CString::new("/nonexistent/file.zip").unwrap();
    let mut buf = vec![0u8; 4096];
    let out = buf.as_mut_ptr() as *mut c_char;
    let ok_call = || {
        assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
        let id = mi_last_request_id();
        assert!(id > 0);
        id
    };
    type Failing<'a> = (&'a str, Box<dyn Fn() -> i32 + 'a>, i32);
    let failing: Vec<Failing> = vec![
        // SAFETY (all below): pointers are valid or deliberately NULL.
        (
            "sync, no length",
            Box::new(|| unsafe { mi_call_sync(infno.as_ptr(), input.as_ptr(), out, null_mut()) }),
            MI_E_INVALID_ARGUMENT,
        ),
        (
            "async, NULL input",
            Box::new(|| {
                let mut id = 0;
                unsafe { mi_call_async(infno.as_ptr(), null(), 0, &mut id) }
            }),
            MI_E_INVALID_ARGUMENT,
        ),
        (
            "async, no id pointer",
            Box::new(|| unsafe { mi_call_async(infno.as_ptr(), input.as_ptr(), 0, null_mut()) }),
            MI_E_INVALID_ARGUMENT,
        ),
        (
            "reverse, unknown id",
            Box::new(|| {
                let mut len = 4096;
                unsafe { mi_reverse(987_654_321, out, &mut len) }
            }),
            MI_E_NOT_FOUND,
        ),
        (
            "upload, no length",
            Box::new(|| unsafe { mi_upload_file(path.as_ptr(), out, null_mut()) }),
            MI_E_INVALID_ARGUMENT,
        ),
    ];
    for (what, f, code) in failing {
        let before = ok_call();
        assert_eq!(f(), code, "{what}: {}", last_error());
        assert_eq!(mi_last_request_id(), 0, "{what}: still says {before}");
    }
    // A successful async call sets it; a failing sync call then clears it.
    let (rc, id) = call_async("1101", q1101(ZHANG_CERTNO), 0);
    assert_eq!((rc, mi_last_request_id()), (MI_OK, id));
    assert_eq!(wait_result(id, 30).0, MI_OK);
    assert_eq!(call_bytes(b"1101", b"[]", 4096).0, MI_E_INVALID_ARGUMENT);
    assert_eq!(mi_last_request_id(), 0);
    mi_shutdown(1000);
}
