//! The mobile-payment channel (6201–6401) and the SM4 gateway input through the C
//! ABI against the simulator's own keys: encryption, signatures both ways, a tampered
//! answer, a wrong appSecret, and a journal that keeps plaintext and no key.

mod common;

use common::*;
use mi_sdk::ffi::*;
use mi_sim::{mobile, Profile};
use serde_json::{json, Value};

fn mobile_config(env: &Env, secret: &str) -> Value {
    let s = env.sim.config();
    json!({
        "mobile_pay": {"url": env.sim.base_url(), "app_id": s.mp_app_id, "app_secret": secret,
                       "private_key": mobile::b64(&mobile::TEST_APP_PRIVATE_KEY),
                       "platform_public_key": s.mp_platform_public_key()},
        "retry": {"max_attempts": 2, "base_delay_ms": 20, "max_delay_ms": 50}
    })
}

#[test]
fn order_upload_pay_and_query_round_trip() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(mobile_config(&env, mobile::TEST_APP_SECRET)), MI_OK, "{}", last_error());
    let (rc, up) =
        call("6201", json!({"data": {"medOrgOrd": "MZ20261127001", "feeSumamt": "93.00", "psnName": "张三"}}));
    assert_eq!(rc, MI_OK, "{up}");
    assert_eq!((up["infcode"].as_i64(), up["err_msg"].as_str()), (Some(0), Some("成功")));
    let ord = up["output"]["payOrdId"].as_str().unwrap().to_string();
    let token = up["output"]["payToken"].as_str().unwrap().to_string();
    assert!(up.get("encData").is_none() && up.get("signData").is_none());
    let (rc, paid) = call("6202", json!({"data": {"payOrdId": ord, "payToken": token}}));
    assert_eq!((rc, paid["output"]["ordStas"].as_str()), (MI_OK, Some("6")));
    let (rc, q) = call("6301", json!({"data": {"payOrdId": ord}}));
    assert_eq!((rc, q["output"]["ordStas"].as_str()), (MI_OK, Some("paid")));
    // A platform refusal comes back as a business error with its message.
    let (rc, r) = call("6202", json!({"data": {"payOrdId": ord, "payToken": token}}));
    assert_eq!(rc, MI_E_BUSINESS, "{r}");
    assert!(r["err_msg"].as_str().unwrap().contains("不能支付"));
    // No sign-in is needed for the mobile platform, and none happened.
    assert_eq!(env.ledger()["signins"].as_array().unwrap().len(), 0);
    assert_eq!(env.ledger()["mobile_pay"]["bad_signatures"], 0);
    mi_shutdown(1000);
    // The journal keeps the plaintext request and answer (sealed with the journal's
    // key, opened here as the SDK opens them), and not the mobile platform's key.
    let j = open_journal(&env.journal_path());
    let sent = j.find(&mi_sdk::Filter { infno: Some("6201".into()), limit: 1, ..Default::default() }).unwrap();
    let envelope = &sent[0].envelope;
    let response = j.attempts(sent[0].id).unwrap()[0].response.clone().unwrap_or_default();
    assert!(envelope.contains("MZ20261127001") && response.contains(&ord), "{envelope} / {response}");
    drop(j);
    for (path, bytes) in files_under(env.dir.path()) {
        for secret in [mobile::TEST_APP_SECRET.as_bytes(), mobile::b64(&mobile::TEST_APP_PRIVATE_KEY).as_bytes()] {
            assert!(!contains(&bytes, secret), "a secret in {}", path.display());
        }
    }
}

#[test]
fn tampered_answers_are_protocol_errors_or_uncertain_and_a_wrong_secret_is_refused_by_the_platform() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(mobile_config(&env, mobile::TEST_APP_SECRET)), MI_OK);
    let (_, up) = call("6201", json!({"data": {"medOrgOrd": "MZ2", "feeSumamt": "10.00"}}));
    let ord = up["output"]["payOrdId"].as_str().unwrap().to_string();
    // A query whose answer fails verification: resent (it is a query), then MI_E_PROTOCOL.
    let (rc, out) = call("6301", json!({"data": {"payOrdId": ord, "_sim": {"tamper_signature": true}}}));
    assert_eq!(rc, MI_E_PROTOCOL, "{out}");
    assert!(out["err_msg"].as_str().unwrap().contains("验签失败"), "{out}");
    assert_eq!(get_request(mi_last_request_id()).1["attempts"], 2);
    // A payment whose answer fails verification: never resent, and held as uncertain:
    // the money may have moved. The code says so (MI_E_UNCERTAIN), like the state.
    let (rc, out) = call(
        "6202",
        json!({"data": {"payOrdId": ord, "payToken": up["output"]["payToken"], "_sim": {"tamper_signature": true}}}),
    );
    assert_eq!((rc, out["mi_code"].as_i64()), (MI_E_UNCERTAIN, Some(MI_E_UNCERTAIN as i64)), "{out}");
    assert!(out["err_msg"].as_str().unwrap().contains("验签失败"), "{out}");
    let (_, rec) = get_request(mi_last_request_id());
    assert_eq!((rec["state"].as_str(), rec["attempts"].as_i64()), (Some("uncertain"), Some(1)));
    let orders = env.ledger()["mobile_pay"]["orders"].clone();
    assert_eq!(orders[0]["status"], "paid", "it was processed once: {orders}");
    mi_shutdown(1000);
    // A wrong appSecret: the platform cannot read or verify us and says so.
    assert_eq!(env.init(mobile_config(&env, "WRONG-SECRET-0000000000000000000")), MI_OK);
    let (rc, out) = call("6201", json!({"data": {"medOrgOrd": "MZ3", "feeSumamt": "1.00"}}));
    assert_eq!(rc, MI_E_BUSINESS, "{out}");
    let msg = out["err_msg"].as_str().unwrap();
    assert!(msg.contains("解密失败") || msg.contains("验签失败"), "{out}");
    // Mobile-payment calls without mobile_pay.url are refused before anything is sent.
    mi_shutdown(1000);
    assert_eq!(env.init(json!({})), MI_OK);
    assert_eq!(call("6201", json!({"data": {}})).0, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("mobile_pay.url"));
    mi_shutdown(1000);
}

#[test]
fn sm4_encrypted_gateway_input_round_trip() {
    let _g = serial();
    let env = Env::sealing(Profile::Plain, |_| {});
    let s = env.sim.config();
    let cfg = json!({"gateway": {"encrypt_input": true}, "mobile_pay": {"app_id": s.mp_app_id, "app_secret": s.mp_app_secret}});
    assert_eq!(env.init(cfg), MI_OK, "{}", last_error());
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_OK, "{out}");
    assert_eq!(out["output"]["baseinfo"]["psn_name"], "张三", "the encrypted output comes back decrypted");
    assert_eq!(env.ledger()["rejected"], 0, "{}", env.ledger()["rejections"]);
    mi_shutdown(1000);
    // encrypt_input needs the app's identity.
    let bad = env.config(json!({"gateway": {"encrypt_input": true}}));
    assert_eq!(init_text(&bad.to_string()), MI_E_CONFIG);
    assert!(last_error().contains("mobile_pay.app_id"), "{}", last_error());
}

#[test]
fn an_encrypted_settlement_answer_that_cannot_be_decrypted_is_uncertain() {
    let _g = serial();
    let env = Env::sealing(Profile::Plain, |_| {});
    let s = env.sim.config();
    let cfg = json!({"gateway": {"encrypt_input": true}, "mobile_pay": {"app_id": s.mp_app_id, "app_secret": s.mp_app_secret},
                     "retry": {"max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 50}});
    assert_eq!(env.init(cfg), MI_OK, "{}", last_error());
    let mut settle = visit("44030000000000100001", "MZ-ENC-1", 25.0);
    settle["_sim"] = json!({"garble_output": true});
    let (rc, out) = call("2207", json!({"input": settle, "insuplc_admdvs": "440300"}));
    // The platform settled it; the answer cannot be read. Uncertain: state and code agree.
    assert_eq!((rc, out["mi_code"].as_i64()), (MI_E_UNCERTAIN, Some(MI_E_UNCERTAIN as i64)), "{out}");
    assert!(out["err_msg"].as_str().unwrap().contains("cannot be decrypted"), "{out}");
    let id = mi_last_request_id();
    let (_, rec) = get_request(id);
    assert_eq!((rec["state"].as_str(), rec["attempts"].as_i64()), (Some("uncertain"), Some(1)), "{rec}");
    assert_eq!(get_result(id).0, MI_E_UNCERTAIN);
    assert_eq!(env.ledger()["by_infno"]["2207"].as_u64(), Some(1), "sent once, never resent");
    // A query whose answer cannot be decrypted stays a protocol error, after its resends.
    let mut q = q1101(ZHANG_CERTNO);
    q["_sim"] = json!({"garble_output": true});
    let (rc, out) = call("1101", q);
    assert_eq!(rc, MI_E_PROTOCOL, "{out}");
    assert_eq!(get_request(mi_last_request_id()).1["attempts"], 3);
    mi_shutdown(1000);
}
