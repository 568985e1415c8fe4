//! The simulator rejects what the real platform rejects, and keeps honest books.
//! These tests speak raw HTTP with ureq: they do not use mi_sdk.

use base64::Engine;
use hmac::{Hmac, Mac};
use mi_sim::{Profile, Sim, SimConfig};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn now() -> chrono::NaiveDateTime {
    chrono::Local::now().naive_local()
}

struct Client {
    sim: Sim,
    agent: ureq::Agent,
    seq: u32,
}

impl Client {
    fn new(cfg: SimConfig) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Client { sim: Sim::start(cfg, "127.0.0.1:0").unwrap(), agent, seq: 0 }
    }

    fn msgid(&mut self) -> String {
        self.seq += 1;
        format!("H44030000001{}{:04}", now().format("%Y%m%d%H%M%S"), self.seq)
    }

    fn envelope(&mut self, infno: &str, input: Value, sign_no: &str) -> Value {
        json!({"infno": infno, "msgid": self.msgid(), "mdtrtarea_admvs": "440300", "insuplc_admdvs": "440300",
            "recer_sys_code": "YBXT", "dev_no": "", "dev_safe_info": "", "cainfo": "", "signtype": "", "infver": "V1.0",
            "opter_type": "1", "opter": "0001", "opter_name": "收费员", "inf_time": now().format("%Y-%m-%d %H:%M:%S").to_string(),
            "fixmedins_code": "H44030000001", "fixmedins_name": "示例医院", "sign_no": sign_no, "input": input})
    }

    fn post(&self, env: &Value, headers: &[(&str, String)]) -> Value {
        self.post_to(&self.sim.service_url(), env, headers)
    }

    /// POSTs to `url`, which must answer 200: the JSON answer.
    fn post_to(&self, url: &str, env: &Value, headers: &[(&str, String)]) -> Value {
        let (status, body) = self.post_at(url, env, headers);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// POSTs to any URL: the status and the JSON answer.
    fn post_at(&self, url: &str, env: &Value, headers: &[(&str, String)]) -> (u16, Value) {
        let mut rq = self.agent.post(url).header("Content-Type", "application/json;charset=utf-8");
        for (k, v) in headers {
            rq = rq.header(*k, v);
        }
        let mut resp = rq.send(env.to_string()).unwrap();
        (resp.status().as_u16(), serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap())
    }

    fn sign_in(&mut self) -> String {
        let env = self.envelope("9001", json!({"signIn": {"opter_no": "0001", "mac": "", "ip": ""}}), "");
        let r = self.post(&env, &[]);
        assert_eq!(r["infcode"], 0, "{r}");
        r["output"]["signinoutb"]["sign_no"].as_str().unwrap().to_string()
    }

    fn call(&mut self, infno: &str, input: Value, sign_no: &str) -> Value {
        let env = self.envelope(infno, input, sign_no);
        self.post(&env, &[])
    }
}

fn rejected_with(r: &Value, text: &str) {
    assert_eq!(r["infcode"], -1, "{r}");
    assert!(r["err_msg"].as_str().unwrap().contains(text), "wanted '{text}' in {r}");
}

#[test]
fn envelope_rules() {
    let mut c = Client::new(SimConfig::default());
    let sign_no = c.sign_in();
    assert_eq!(sign_no.len(), 30);
    let q = json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}});
    assert_eq!(c.call("1101", q.clone(), &sign_no)["infcode"], 0);
    rejected_with(&c.call("1101", q.clone(), ""), "sign_no");
    rejected_with(&c.call("1101", q.clone(), "123456789012345678901234567890"), "sign_no");
    let mut e = c.envelope("1101", q.clone(), &sign_no);
    e.as_object_mut().unwrap().remove("infver");
    rejected_with(&c.post(&e, &[]), "infver");
    let mut e = c.envelope("1101", q.clone(), &sign_no);
    e["inf_time"] = json!("2020-01-01 00:00:00");
    rejected_with(&c.post(&e, &[]), "inf_time");
    let mut e = c.envelope("1101", q.clone(), &sign_no);
    e["fixmedins_code"] = json!("H99999999999");
    rejected_with(&c.post(&e, &[]), "H99999999999");
    let mut e = c.envelope("1101", q.clone(), &sign_no);
    e["msgid"] = json!("H44030000001202613019999990001");
    rejected_with(&c.post(&e, &[]), "msgid");
    let e = c.envelope("1101", q.clone(), &sign_no);
    assert_eq!(c.post(&e, &[])["infcode"], 0);
    rejected_with(&c.post(&e, &[]), "重复");
    let mut e = c.envelope("2201", json!({"data": {"psn_no": "44030000000000100001"}}), &sign_no);
    e["insuplc_admdvs"] = json!("");
    rejected_with(&c.post(&e, &[]), "insuplc_admdvs");
    rejected_with(&c.call("110", q.clone(), &sign_no), "交易编号");
    rejected_with(&c.call("7777", q, &sign_no), "不存在");
    let ledger = c.sim.ledger();
    // Nine envelope rejections; the unknown transaction 7777 is a business refusal.
    assert_eq!(ledger["rejected"], 9, "{}", ledger["rejections"]);
}

#[test]
fn tif_signature_and_clock_window() {
    let cfg = SimConfig { profile: Profile::Tif, ..SimConfig::default() };
    let (id, token) = (cfg.paas_id.clone(), cfg.paas_token.clone());
    let mut c = Client::new(cfg);
    let headers = |ts: i64, tok: &str| {
        let ts = ts.to_string();
        let mut h = Sha256::new();
        h.update(format!("{ts}{tok}nonce-1{ts}").as_bytes());
        let sig: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        vec![
            ("x-tif-paasid", id.clone()),
            ("x-tif-timestamp", ts),
            ("x-tif-nonce", "nonce-1".to_string()),
            ("x-tif-signature", sig),
        ]
    };
    let t = chrono::Utc::now().timestamp();
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
    assert_eq!(c.post(&e, &headers(t, &token))["infcode"], 0);
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
    rejected_with(&c.post(&e, &headers(t, "wrong")), "签名");
    rejected_with(&c.post(&e, &headers(t - 3600, &token)), "时间戳");
    rejected_with(&c.post(&e, &[]), "x-tif");
}

#[test]
fn csb_signature() {
    let cfg = SimConfig { profile: Profile::Csb, ..SimConfig::default() };
    let (name, ak, sk) = (cfg.api_name.clone(), cfg.access_key.clone(), cfg.secret_key.clone());
    let mut c = Client::new(cfg);
    let ts = chrono::Utc::now().timestamp_millis().to_string();
    let text = format!("_api_access_key={ak}&_api_name={name}&_api_timestamp={ts}&_api_version=1.0.0");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(sk.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let h = vec![
        ("_api_name", name),
        ("_api_version", "1.0.0".to_string()),
        ("_api_access_key", ak),
        ("_api_timestamp", ts),
        ("_api_signature", sig),
    ];
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
    assert_eq!(c.post(&e, &h)["infcode"], 0);
    let mut bad = h.clone();
    bad[4].1 = "AAAA".into();
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
    rejected_with(&c.post(&e, &bad), "签名");
}

/// Signed as the Alibaba CSB client (aliyun/csb-sdk `SignUtil`/`SpasSigner`) signs
/// a POST with its nonce option on: `_api_name`, `_api_version`, `_api_timestamp`,
/// `_api_nonce`, `_api_access_key` and the URL's query parameters (decoded), sorted
/// by name then value, `k=v` joined by `&`, HMAC-SHA1 under the secret, Base64. The
/// gateway checks all of them: changing any one after signing is refused, and so is
/// a nonce seen before.
#[test]
fn csb_signature_with_nonce_and_query_parameters_as_the_csb_client_signs_it() {
    let cfg = SimConfig { profile: Profile::Csb, ..SimConfig::default() };
    let (name, ak, sk) = (cfg.api_name.clone(), cfg.access_key.clone(), cfg.secret_key.clone());
    let mut c = Client::new(cfg);
    let url = format!("{}?region=%E5%90%89%E6%9E%97&a=2&a=1&note=x+y", c.sim.service_url());
    let query = [("region", "吉林"), ("a", "2"), ("a", "1"), ("note", "x y")];
    let sign = |headers: &[(&str, String)], query: &[(&str, &str)]| {
        let mut pairs: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        pairs.extend(query.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        pairs.sort();
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(sk.as_bytes()).unwrap();
        mac.update(text.join("&").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let signed = |nonce: &str| {
        let mut h = vec![
            ("_api_name", name.clone()),
            ("_api_version", "1.0.0".to_string()),
            ("_api_timestamp", chrono::Utc::now().timestamp_millis().to_string()),
            ("_api_nonce", nonce.to_string()),
            ("_api_access_key", ak.clone()),
        ];
        let sig = sign(&h, &query);
        h.push(("_api_signature", sig));
        h
    };
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
    let r = c.post_to(&url, &e, &signed("-4611686018427387904"));
    assert_eq!(r["infcode"], 0, "{r}");
    // The same nonce again, even freshly signed: a replay.
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
    rejected_with(&c.post_to(&url, &e, &signed("-4611686018427387904")), "重放");
    // Any signed header changed after signing.
    for i in 0..5 {
        let mut h = signed(&format!("{i}{}", 9_000_000_000_000u64 + i as u64));
        if h[i].0 == "_api_timestamp" {
            // One millisecond later: inside the clock window, outside the signature.
            h[i].1 = (h[i].1.parse::<i64>().unwrap() + 1).to_string();
        } else {
            h[i].1.push('0');
        }
        let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
        rejected_with(&c.post_to(&url, &e, &h), "CSB校验失败");
    }
    // An `_api_*` header that was not signed.
    let mut h = signed("777");
    h.push(("_api_extra", "1".into()));
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
    rejected_with(&c.post_to(&url, &e, &h), "签名");
    // A query parameter changed, added or dropped.
    for other in ["region=%E5%90%89&a=2&a=1&note=x+y", "region=%E5%90%89%E6%9E%97&a=2&a=1&note=x+y&z=1", "a=2&a=1"] {
        let u = format!("{}?{other}", c.sim.service_url());
        let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
        rejected_with(&c.post_to(&u, &e, &signed(&format!("q-{other}"))), "签名");
    }
    // Signed without the query parameters (the assumption the signer used to share).
    let mut h = signed("888");
    h.pop();
    let sig = sign(&h, &[]);
    h.push(("_api_signature", sig));
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001"}}), "");
    rejected_with(&c.post_to(&url, &e, &h), "签名");
}

#[test]
fn settlement_books_double_settle_and_reversal() {
    let mut c = Client::new(SimConfig::default());
    let s = c.sign_in();
    let psn = "44030000000000100001";
    let r = c.call("2201", json!({"data": {"psn_no": psn, "ipt_otp_no": "MZ1", "insutype": "310"}}), &s);
    let mdtrt_id = r["output"]["data"]["mdtrt_id"].as_str().unwrap().to_string();
    let fee = json!({"feedetail": [{"feedetl_sn": "1", "mdtrt_id": mdtrt_id, "psn_no": psn, "chrg_bchno": "B", "med_list_codg": "X1",
        "det_item_fee_sumamt": 100.0, "cnt": 2, "pric": 50.0}]});
    assert_eq!(c.call("2204", fee, &s)["infcode"], 0);
    let settle = json!({"data": {"psn_no": psn, "mdtrt_id": mdtrt_id, "medfee_sumamt": 100.0, "acct_used_flag": "1"}});
    rejected_with(
        &c.call("2207", json!({"data": {"psn_no": psn, "mdtrt_id": mdtrt_id, "medfee_sumamt": 99.0}}), &s),
        "不符",
    );
    let env = c.envelope("2207", settle.clone(), &s);
    let msgid = env["msgid"].as_str().unwrap().to_string();
    let r = c.post(&env, &[]);
    assert_eq!(r["output"]["setlinfo"]["acct_pay"], 30.0, "{r}");
    assert_eq!(c.sim.ledger()["balances"][psn], 1170.5);
    rejected_with(&c.call("2207", settle, &s), "重复结算");
    assert_eq!(c.sim.ledger()["double_settle_attempts"], 1);
    // 2601 names the settlement's msgid and gives the account its money back; repeating it is harmless.
    for _ in 0..2 {
        let r = c.call("2601", json!({"data": {"psn_no": psn, "omsgid": msgid, "oinfno": "2207"}}), &s);
        assert_eq!(r["infcode"], 0, "{r}");
    }
    let l = c.sim.ledger();
    assert_eq!(l["balances"][psn], 1200.5);
    assert_eq!(l["settlements"][0]["status"], "reversed");
    assert_eq!(l["reversals"].as_array().unwrap().len(), 2);
    // Reversing what never arrived succeeds and changes nothing.
    let r = c.call(
        "2601",
        json!({"data": {"psn_no": psn, "omsgid": "H44030000001202611270000000001", "oinfno": "2207"}}),
        &s,
    );
    assert_eq!(r["infcode"], 0);
    assert_eq!(c.sim.ledger()["reversals"][2]["effect"], "not_found");
}

#[test]
fn faults_and_the_ledger_over_http() {
    let mut c = Client::new(SimConfig::default());
    let s = c.sign_in();
    let env = c.envelope(
        "1101",
        json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}, "_sim": {"drop": true}}),
        &s,
    );
    let dropped = c.agent.post(c.sim.service_url()).header("Content-Type", "application/json").send(env.to_string());
    assert!(dropped.is_err(), "the connection is closed without an answer");
    let mut resp = c.agent.get(format!("{}/sim/ledger", c.sim.base_url())).call().unwrap();
    let l: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(l["by_infno"]["1101"], 1, "a dropped request was still processed");
    let env = c.envelope("1101", json!({"data": {}, "_sim": {"http_status": 502}}), &s);
    let resp =
        c.agent.post(c.sim.service_url()).header("Content-Type", "application/json").send(env.to_string()).unwrap();
    assert_eq!(resp.status().as_u16(), 502);
}

#[test]
fn the_binary_prints_its_url_and_serves() {
    let exe = env!("CARGO_BIN_EXE_mi-sim");
    let mut child = std::process::Command::new(exe)
        .args(["--addr", "127.0.0.1:0", "--profile", "tif"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
    let base = url.split("/fsi").next().unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.get(format!("{base}/sim/ledger")).call().unwrap();
    let l: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(l["requests"], 0);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(line.contains("Tif"));
}

/// A Guangzhou platform: url + infno, the data{...} sign-in answered at
/// output.result, recer_admdvs required, cainfo = SM3 of the input.
fn guangzhou() -> SimConfig {
    use mi_sim::variants::{SignIn, Urls, Variant};
    SimConfig {
        variant: Variant {
            urls: Urls::AppendInfno,
            sign_in: SignIn::Guangzhou,
            userid: "gz-user".into(),
            password: "gz-pass".into(),
            required_fields: vec!["recer_admdvs".into()],
            sm3_cainfo: true,
        },
        ..SimConfig::default()
    }
}

/// An envelope as a Guangzhou client completes it: recer_admdvs, SM3 and cainfo.
fn gz_sealed(mut e: Value) -> Value {
    e["recer_admdvs"] = json!("440100");
    e["signtype"] = json!("SM3");
    e["cainfo"] = json!(sm3_hex(&e["input"]));
    e
}

fn sm3_hex(v: &Value) -> String {
    use sm3::Digest as _;
    sm3::Sm3::digest(v.to_string().as_bytes()).iter().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn guangzhou_sign_in_refuses_the_national_shape_and_a_wrong_password() {
    let mut c = Client::new(guangzhou());
    let url = format!("{}/9001", c.sim.service_url());
    let time = now().format("%Y%m%d%H%M%S").to_string();
    let gz = |password: &str| {
        json!({"data": {"mac": "11-11-11-11-11", "ip": "10.0.0.8", "userid": "gz-user", "opter_no": "0001",
            "password": password, "currenttime": time}})
    };
    let national = gz_sealed(c.envelope("9001", json!({"signIn": {"opter_no": "0001", "mac": "", "ip": ""}}), ""));
    rejected_with(&c.post_at(&url, &national, &[]).1, "data{mac, ip, userid, opter_no, password, currenttime}");
    let wrong = gz_sealed(c.envelope("9001", gz(&mi_sim::variants::password_digest(&time, "guess")), ""));
    rejected_with(&c.post_at(&url, &wrong, &[]).1, "密码错误");
    let plain = gz_sealed(c.envelope("9001", gz("gz-pass"), ""));
    rejected_with(&c.post_at(&url, &plain, &[]).1, "密码错误");
    let right = gz_sealed(c.envelope("9001", gz(&mi_sim::variants::password_digest(&time, "gz-pass")), ""));
    let (status, r) = c.post_at(&url, &right, &[]);
    assert_eq!((status, &r["infcode"]), (200, &json!(0)), "{r}");
    let sign_no = r["output"]["result"]["sign_no"].as_str().expect("answered at output.result");
    assert!(r["output"].get("signinoutb").is_none());
    // The sign_no is good for business at its own URL.
    let q = json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}});
    let e = gz_sealed(c.envelope("1101", q, sign_no));
    assert_eq!(c.post_at(&format!("{}/1101", c.sim.service_url()), &e, &[]).1["infcode"], 0);
    // And the national platform refuses the Guangzhou shape.
    let mut n = Client::new(SimConfig::default());
    let e = n.envelope("9001", gz("x"), "");
    rejected_with(&n.post(&e, &[]), "signIn.opter_no");
}

#[test]
fn guangzhou_requires_its_fields_and_the_sm3_cainfo() {
    let mut c = Client::new(guangzhou());
    let url = format!("{}/1101", c.sim.service_url());
    let q = json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}});
    let good = gz_sealed(c.envelope("1101", q.clone(), "S"));
    let mut e = good.clone();
    e.as_object_mut().unwrap().remove("recer_admdvs");
    rejected_with(&c.post_at(&url, &e, &[]).1, "recer_admdvs");
    let mut e = good.clone();
    e["cainfo"] = json!("");
    rejected_with(&c.post_at(&url, &e, &[]).1, "cainfo");
    let mut e = good.clone();
    e["input"]["data"]["mdtrt_cert_no"] = json!("440301199001015678");
    rejected_with(&c.post_at(&url, &e, &[]).1, "cainfo");
    let mut e = good.clone();
    e["signtype"] = json!("");
    rejected_with(&c.post_at(&url, &e, &[]).1, "signtype");
    // The cainfo checks out; the (made-up) sign_no is what is refused next.
    let mut e = good.clone();
    e["cainfo"] = json!(e["cainfo"].as_str().unwrap().to_lowercase());
    e["msgid"] = json!(c.msgid());
    rejected_with(&c.post_at(&url, &e, &[]).1, "sign_no");
}

#[test]
fn each_url_style_serves_only_its_own_urls() {
    use mi_sim::variants::{Urls, Variant};
    let q = json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}});
    // National: one URL; url + infno does not exist.
    let mut c = Client::new(SimConfig::default());
    let e = c.envelope("1101", q.clone(), "S");
    assert_eq!(c.post_at(&format!("{}/1101", c.sim.service_url()), &e, &[]).0, 404);
    // url + infno: the bare service URL and the national file URLs do not exist,
    // the infno in the URL must be the envelope's.
    let mut c = Client::new(SimConfig {
        variant: Variant { urls: Urls::AppendInfno, ..Variant::default() },
        ..SimConfig::default()
    });
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001", "mac": "", "ip": ""}}), "");
    assert_eq!(c.post_at(&c.sim.service_url(), &e, &[]).0, 404);
    assert_eq!(c.post_at(&c.sim.upload_url(), &e, &[]).0, 404);
    rejected_with(&c.post_at(&format!("{}/1101", c.sim.service_url()), &e, &[]).1, "不一致");
    // One path per transaction: only the mapped paths exist, each for its own.
    let paths = [("9001", "/fsi/api/signInSignOutService/signIn"), ("1101", "/fsi/api/fsiPsnInfoService/queryPsnInfo")];
    let mut c = Client::new(SimConfig {
        variant: Variant {
            urls: Urls::PerInfno(paths.iter().map(|(i, p)| (i.to_string(), p.to_string())).collect()),
            ..Variant::default()
        },
        ..SimConfig::default()
    });
    let base = c.sim.base_url();
    let e = c.envelope("9001", json!({"signIn": {"opter_no": "0001", "mac": "", "ip": ""}}), "");
    assert_eq!(c.post_at(&c.sim.service_url(), &e, &[]).0, 404);
    rejected_with(&c.post_at(&format!("{base}{}", paths[1].1), &e, &[]).1, "不一致");
    let (status, r) = c.post_at(&format!("{base}{}", paths[0].1), &e, &[]);
    assert_eq!((status, &r["infcode"]), (200, &json!(0)), "{r}");
}
