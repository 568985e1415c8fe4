//! Province variants through configuration only (docs/regions/): a region preset
//! against a simulator of that region, a national config against a Guangzhou
//! platform, files under the per-transaction and url + infno styles, and the
//! per-call extra envelope fields, all through the C ABI.

mod common;

use common::*;
use mi_sdk::ffi::*;
use mi_sim::Profile;
use serde_json::{json, Value};

/// The envelope the journal keeps of the first request of `infno`.
fn journaled_envelope(env: &Env, infno: &str) -> Value {
    serde_json::from_str(&journaled_envelope_of(&env.journal_path(), infno)).unwrap()
}

/// Every byte the SDK wrote under the test's folder: journal, logs.
fn everything_written(env: &Env) -> Vec<u8> {
    files_under(env.dir.path()).into_iter().flat_map(|(_, b)| b).collect()
}

#[test]
fn a_guangzhou_preset_does_the_whole_outpatient_visit_against_a_guangzhou_platform() {
    let _g = serial();
    let env = Env::in_region(Region::Guangzhou, Profile::Tif, |_| {});
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    let r = outpatient_visit("GZ0001");
    assert_eq!(r["output"]["setlinfo"]["medfee_sumamt"], 81.0, "{r}");
    let ledger = env.ledger();
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
    assert_eq!(ledger["signins"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["settlements"].as_array().unwrap().len(), 1);
    // The journal keeps the sign-in without its password, and the envelopes with
    // the region's fields; cainfo is computed on the wire, never journaled stale.
    let signin = journaled_envelope(&env, "9001");
    assert_eq!(signin["input"]["data"]["userid"], GZ_USERID, "{signin}");
    assert_eq!(signin["input"]["data"]["password"], "", "{signin}");
    let settle = journaled_envelope(&env, "2207");
    assert_eq!((&settle["recer_admdvs"], &settle["signtype"]), (&json!("440300"), &json!("SM3")), "{settle}");
    let (_, st) = status();
    assert_eq!(st["gateway"]["region"], "guangzhou", "{st}");
    assert_eq!(st["gateway"]["url_style"], "append_infno");
    assert_eq!(st["gateway"]["sign_in_style"], "guangzhou");
    mi_shutdown(2000);
    assert!(!contains(&everything_written(&env), GZ_PASSWORD.as_bytes()), "the password reached a file");
}

#[test]
fn a_national_config_against_a_guangzhou_platform_fails_sign_in_clearly() {
    let _g = serial();
    let env = Env::in_region(Region::Guangzhou, Profile::Plain, |_| {});
    // A national config at the Guangzhou URLs: refused for the region's own
    // envelope field, in the platform's words; the business request is not sent.
    assert_eq!(env.init(json!({"region": "national", "gateway": {"url_style": "append_infno"}})), MI_OK);
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_E_BUSINESS, "{out}");
    let msg = out["err_msg"].as_str().unwrap();
    assert!(msg.contains("sign-in (9001) failed") && msg.contains("not sent") && msg.contains("recer_admdvs"), "{msg}");
    mi_shutdown(1000);
    // With the region's envelope but the national sign-in: refused for its shape.
    assert_eq!(env.init(json!({"sign_in": {"style": "national"}})), MI_OK, "{}", last_error());
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_E_BUSINESS, "{out}");
    let msg = out["err_msg"].as_str().unwrap();
    assert!(msg.contains("sign-in (9001) failed") && msg.contains("not sent"), "{msg}");
    assert!(msg.contains("data{mac, ip, userid, opter_no, password, currenttime}"), "{msg}");
    assert!(env.ledger()["by_infno"]["1101"].is_null(), "nothing but sign-ins reached the platform");
    mi_shutdown(1000);
    // The national URL is not served at all there: the gateway's 404.
    assert_eq!(env.init(json!({"region": "national"})), MI_OK);
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_E_PROTOCOL, "{out}");
    assert!(out["err_msg"].as_str().unwrap().contains("HTTP 404"), "{out}");
    mi_shutdown(1000);
}

#[test]
fn one_path_per_transaction_and_url_plus_infno_reach_9101_and_9102() {
    let _g = serial();
    for region in [Region::Hebei, Region::Guangzhou] {
        let env = Env::in_region(region, Profile::Plain, |_| {});
        assert_eq!(env.init(json!({})), MI_OK, "{region:?}: {}", last_error());
        let work = tempfile::tempdir().unwrap();
        let doc = work.path().join("对明细账.zip");
        let original: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&doc, &original).unwrap();
        let (rc, up) = upload_file(&doc);
        assert_eq!(rc, MI_OK, "{region:?}: {up} {}", last_error());
        let no = up["output"]["file_qury_no"].as_str().unwrap().to_string();
        let (rc, down) = download_file(&no, "对明细账.zip", &work.path().join("out"));
        assert_eq!(rc, MI_OK, "{region:?}: {down} {}", last_error());
        let path = down["output"]["files"][0]["path"].as_str().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), original, "{region:?}");
        let ledger = env.ledger();
        assert_eq!(ledger["rejected"], 0, "{region:?}: {}", ledger["rejections"]);
        mi_shutdown(1000);
    }
}

#[test]
fn a_transaction_missing_from_the_path_map_is_refused_before_it_is_journaled() {
    let _g = serial();
    let env = Env::in_region(Region::Hebei, Profile::Plain, |_| {});
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    let (rc, _) = call("5401", json!({"data": {"psn_no": "P"}}));
    assert_eq!(rc, MI_E_CONFIG);
    let e = last_error();
    assert!(e.contains("5401") && e.contains("gateway.paths"), "{e}");
    assert_eq!(journal_count(&env, "SELECT count(*) FROM mi_request"), 0, "nothing journaled, nothing sent");
    mi_shutdown(1000);
    // A "*" entry of the config's own takes the rest; the preset's paths stay.
    let all = json!({"gateway": {"paths": {"*": "/fsi/api/rsfComIfsService/callService"}}, "retry": {"base_delay_ms": 10, "max_delay_ms": 20}});
    assert_eq!(env.init(all), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK, "{}", last_error());
    let (rc, out) = call("5401", json!({"input": {"data": {"psn_no": "P"}}, "insuplc_admdvs": "440300"}));
    assert_eq!(rc, MI_E_PROTOCOL, "this simulator serves no such URL: {out}");
    assert!(out["err_msg"].as_str().unwrap().contains("HTTP 404"), "{out}");
    mi_shutdown(1000);
}

#[test]
fn per_call_extra_fields_and_receiver_codes_go_out_and_bad_ones_are_refused() {
    let _g = serial();
    let env = Env::in_region(Region::National, Profile::Plain, |c| {
        c.variant.required_fields = vec!["app_id".into()];
    });
    assert_eq!(env.init(json!({"envelope": {"extra": {"app_id": "APP-CFG"}}})), MI_OK, "{}", last_error());
    let input = |extra: Value| json!({"input": q1101(ZHANG_CERTNO), "extra": extra, "recer_sys_code": "LXXT"});
    let (rc, out) = call("1101", input(json!({"recer_admdvs": "440100"})));
    assert_eq!(rc, MI_OK, "{out}");
    let sent = journaled_envelope(&env, "1101");
    assert_eq!(
        (&sent["app_id"], &sent["recer_admdvs"], &sent["recer_sys_code"]),
        (&json!("APP-CFG"), &json!("440100"), &json!("LXXT")),
        "{sent}"
    );
    // A call's own value wins over the config's; the platform requires it non-empty.
    let (rc, out) = call("1101", input(json!({"app_id": ""})));
    assert_eq!(rc, MI_E_BUSINESS, "{out}");
    assert!(out["err_msg"].as_str().unwrap().contains("app_id"), "{out}");
    let before = journal_count(&env, "SELECT count(*) FROM mi_request");
    for (extra, says) in [
        (json!({"msgid": "x"}), "msgid"),
        (json!({"recer_admdvs": 440100}), "must be a string"),
        (json!(["app_id"]), "must be an object"),
        (json!({"app_id": "x".repeat(1025)}), "longer than 1024"),
    ] {
        let (rc, _) = call("1101", input(extra.clone()));
        assert_eq!(rc, MI_E_INVALID_ARGUMENT, "{extra}");
        assert!(last_error().contains(says), "{extra}: {}", last_error());
    }
    let (rc, _) = call("1101", json!({"input": q1101(ZHANG_CERTNO), "recer_sys_code": "RECEIVER-SYS"}));
    assert_eq!(rc, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("recer_sys_code"), "{}", last_error());
    assert_eq!(journal_count(&env, "SELECT count(*) FROM mi_request"), before, "refused before the journal");
    mi_shutdown(1000);
}
