//! Answers the platform seals, through the C ABI against the simulator: Jilin-style
//! `output` (Base64 SM4, SM2-signed in `cainfo`, `gateway.decrypt_answers`) and the
//! Fujian-style hex `output` of `gateway.encrypt_input`, also behind a wrapping tif
//! gateway; what an answer that does not verify or decrypt means for each class.

mod common;

use common::*;
use mi_sdk::ffi::*;
use mi_sim::{Profile, SimConfig};
use serde_json::{json, Value};

/// The keys a Jilin hospital's config names for this simulator.
fn decrypting(s: &SimConfig) -> Value {
    json!({"gateway": {"decrypt_answers": true, "platform_public_key": s.answer_public_key()},
           "mobile_pay": {"app_id": s.mp_app_id, "app_secret": s.mp_app_secret},
           "retry": {"max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 50}})
}

fn encrypting(profile: Profile) -> Env {
    Env::sealing(profile, |c| c.encrypt_answers = true)
}

#[test]
fn a_settlement_and_a_query_succeed_against_a_platform_that_seals_its_answers() {
    let _g = serial();
    let env = encrypting(Profile::Plain);
    assert_eq!(env.init(decrypting(env.sim.config())), MI_OK, "{}", last_error());
    // The automatic sign-in reads its sign_no from a sealed answer too.
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_OK, "{out}");
    assert_eq!(out["output"]["baseinfo"]["psn_name"], "张三", "the HIS gets the plaintext: {out}");
    assert_eq!(out["signtype"], "SM2");
    let settle = visit("44030000000000100001", "JL-1", 40.0);
    let (rc, out) = call("2207", json!({"input": settle, "insuplc_admdvs": "440300"}));
    assert_eq!(rc, MI_OK, "{out}");
    assert!(out["output"]["setlinfo"]["setl_id"].is_string(), "{out}");
    // The journal's result is the plaintext envelope as well.
    let (rc, kept) = get_result(mi_last_request_id());
    assert_eq!(rc, MI_OK);
    assert_eq!(serde_json::from_str::<Value>(&kept).unwrap()["output"], out["output"]);
    let ledger = env.ledger();
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
    assert_eq!(ledger["settlements"].as_array().unwrap().len(), 1);
    mi_shutdown(1000);
}

/// A `cainfo` that does not verify (or an `output` that does not decrypt) is an
/// answer nobody can trust: a settlement the platform may have made is uncertain,
/// sent once and never again; a query is a clean failure, resent.
#[test]
fn an_answer_that_does_not_verify_makes_a_settlement_uncertain_and_a_query_a_resendable_failure() {
    let _g = serial();
    let env = encrypting(Profile::Plain);
    assert_eq!(env.init(decrypting(env.sim.config())), MI_OK, "{}", last_error());
    let mut settle = visit("44030000000000100001", "JL-2", 25.0);
    settle["_sim"] = json!({"bad_cainfo": true});
    let (rc, out) = call("2207", json!({"input": settle, "insuplc_admdvs": "440300"}));
    assert_eq!((rc, out["mi_code"].as_i64()), (MI_E_UNCERTAIN, Some(MI_E_UNCERTAIN as i64)), "{out}");
    assert!(out["err_msg"].as_str().unwrap().contains("验签失败"), "{out}");
    let (_, rec) = get_request(mi_last_request_id());
    assert_eq!((rec["state"].as_str(), rec["attempts"].as_i64()), (Some("uncertain"), Some(1)), "{rec}");
    assert_eq!(env.ledger()["by_infno"]["2207"].as_u64(), Some(1), "settled once, never resent");
    for (fault, why) in [("bad_cainfo", "验签失败"), ("garble_output", "cannot be decrypted")] {
        let mut q = q1101(ZHANG_CERTNO);
        q["_sim"] = json!({fault: true});
        let before = env.ledger()["by_infno"]["1101"].as_u64().unwrap_or(0);
        let (rc, out) = call("1101", q);
        assert_eq!(rc, MI_E_PROTOCOL, "{fault}: {out}");
        assert!(out["err_msg"].as_str().unwrap().contains(why), "{fault}: {out}");
        let (_, rec) = get_request(mi_last_request_id());
        assert_eq!((rec["state"].as_str(), rec["attempts"].as_i64()), (Some("failed"), Some(3)), "{rec}");
        assert_eq!(env.ledger()["by_infno"]["1101"].as_u64(), Some(before + 3), "resent: a query may be");
    }
    mi_shutdown(1000);
    // Another key than the platform's verifies nothing.
    let mut wrong = decrypting(env.sim.config());
    wrong["gateway"]["platform_public_key"] = json!(env.sim.config().mp_platform_public_key());
    assert_eq!(env.init(wrong), MI_OK, "{}", last_error());
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_E_PROTOCOL, "{out}");
    mi_shutdown(1000);
}

#[test]
fn decrypting_answers_needs_its_keys() {
    let _g = serial();
    let env = encrypting(Profile::Plain);
    let s = env.sim.config();
    let cases = [
        (
            json!({"gateway": {"decrypt_answers": true, "platform_public_key": s.answer_public_key()}}),
            "mobile_pay.app_id",
        ),
        (
            json!({"gateway": {"decrypt_answers": true}, "mobile_pay": {"app_id": s.mp_app_id, "app_secret": s.mp_app_secret}}),
            "gateway.platform_public_key",
        ),
        (
            json!({"gateway": {"decrypt_answers": true, "platform_public_key": "not a key"},
                   "mobile_pay": {"app_id": s.mp_app_id, "app_secret": s.mp_app_secret}}),
            "gateway.platform_public_key",
        ),
        (
            json!({"gateway": {"decrypt_answers": true, "platform_public_key": s.answer_public_key(), "sm2_user_id": ""},
                   "mobile_pay": {"app_id": s.mp_app_id, "app_secret": s.mp_app_secret}}),
            "gateway.sm2_user_id",
        ),
    ];
    for (patch, key) in cases {
        assert_eq!(env.init(patch.clone()), MI_E_CONFIG, "{patch}");
        assert!(last_error().contains(key), "{key}: {}", last_error());
    }
}

/// The sealed output sits inside a wrapping tif gateway's `data`: the wrapper is
/// opened first, then the platform's output decrypted (hex for `encrypt_input`,
/// Base64 and signed for `decrypt_answers`).
#[test]
fn a_sealed_output_behind_a_wrapping_gateway_is_unwrapped_then_opened() {
    let _g = serial();
    for (as_string, jilin) in [(false, false), (true, false), (false, true), (true, true)] {
        let env = Env::sealing(Profile::Tif, |c| {
            c.wrap_answers = true;
            c.wrap_data_as_string = as_string;
            c.encrypt_answers = jilin;
        });
        let s = env.sim.config();
        let cfg = if jilin {
            decrypting(s)
        } else {
            json!({"gateway": {"encrypt_input": true}, "mobile_pay": {"app_id": s.mp_app_id, "app_secret": s.mp_app_secret}})
        };
        assert_eq!(env.init(cfg), MI_OK, "{}", last_error());
        let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
        assert_eq!(rc, MI_OK, "{out}");
        assert!(out.get("code").is_none(), "the platform's envelope: {out}");
        assert_eq!(out["output"]["baseinfo"]["psn_name"], "张三", "as_string {as_string}, jilin {jilin}: {out}");
        assert_eq!(env.ledger()["rejected"], 0, "{}", env.ledger()["rejections"]);
        mi_shutdown(1000);
    }
}

/// The file channel's answers come from the platform too: a 9101 upload's sealed
/// output is opened (the HIS needs its `file_qury_no`), and the 9102 that fetches
/// the file, answered with a zip, still downloads it.
#[test]
fn file_transfers_read_sealed_answers() {
    let _g = serial();
    let env = encrypting(Profile::Plain);
    assert_eq!(env.init(decrypting(env.sim.config())), MI_OK, "{}", last_error());
    let work = tempfile::tempdir().unwrap();
    let doc = work.path().join("清单.txt");
    std::fs::write(&doc, "结算清单").unwrap();
    let path = std::ffi::CString::new(doc.to_str().unwrap()).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = buf.len() as i32;
    // SAFETY: a valid string; buf has len bytes.
    let rc = unsafe { mi_upload_file(path.as_ptr(), buf.as_mut_ptr() as *mut std::ffi::c_char, &mut len) };
    let up: Value = serde_json::from_slice(&buf[..len.max(0) as usize]).unwrap_or(Value::Null);
    assert_eq!(rc, MI_OK, "{up} {}", last_error());
    let no = up["output"]["file_qury_no"].as_str().unwrap_or_else(|| panic!("plaintext output: {up}")).to_string();
    let (q, f, d) = (
        std::ffi::CString::new(no).unwrap(),
        std::ffi::CString::new("清单.txt").unwrap(),
        std::ffi::CString::new(work.path().join("down").to_str().unwrap()).unwrap(),
    );
    let mut len = buf.len() as i32;
    // SAFETY: valid strings; buf has len bytes.
    let rc = unsafe {
        mi_download_file(q.as_ptr(), f.as_ptr(), d.as_ptr(), buf.as_mut_ptr() as *mut std::ffi::c_char, &mut len)
    };
    let down: Value = serde_json::from_slice(&buf[..len.max(0) as usize]).unwrap_or(Value::Null);
    assert_eq!(rc, MI_OK, "{down} {}", last_error());
    assert_eq!(std::fs::read_to_string(down["output"]["files"][0]["path"].as_str().unwrap()).unwrap(), "结算清单");
    mi_shutdown(1000);
}
