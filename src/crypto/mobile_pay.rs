//! The mobile-payment message format (医保移动支付, docs/protocol.md, "Mobile
//! payment"): the data key derived from appId and appSecret, `encData` (SM4-ECB,
//! upper-case hex), and `signData` (SM3withSM2 over the sorted fields, user id =
//! appSecret, raw r‖s).

use crate::crypto::sm::{self, Mode};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use sm2::dsa::{SigningKey, VerifyingKey};

/// Fields never signed.
const UNSIGNED: [&str; 3] = ["signData", "encData", "extra"];

/// The keys of one app: the data key, our signing key and the platform's key.
pub struct Keys {
    pub app_id: String,
    app_secret: String,
    data_key: [u8; 16],
    signer: SigningKey,
    platform: VerifyingKey,
}

impl Keys {
    pub fn new(app_id: &str, app_secret: &str, private_b64: &str, platform_public_b64: &str) -> Result<Keys> {
        Ok(Keys {
            app_id: app_id.to_string(),
            app_secret: app_secret.to_string(),
            data_key: data_key(app_id, app_secret)?,
            signer: sm::signing_key(private_b64, app_secret)?,
            platform: sm::verifying_key(platform_public_b64, app_secret)?,
        })
    }

    pub fn data_key(&self) -> &[u8; 16] {
        &self.data_key
    }

    /// The wire request for `data` (docs/protocol.md, "Mobile payment").
    pub fn seal(&self, data: &Value, version: &str, timestamp_ms: u64) -> Value {
        let mut m = Map::new();
        m.insert("appId".into(), Value::String(self.app_id.clone()));
        m.insert("encType".into(), Value::String("SM4".into()));
        m.insert("signType".into(), Value::String("SM2".into()));
        m.insert("timestamp".into(), Value::String(timestamp_ms.to_string()));
        m.insert("version".into(), Value::String(version.into()));
        let text = sign_text(&m, Some(data), &self.app_secret);
        let enc = sm::sm4_encrypt(Mode::Ecb, &self.data_key, None, data.to_string().as_bytes()).expect("a 16-byte key");
        m.insert("encData".into(), Value::String(sm::to_hex_upper(&enc)));
        m.insert("signData".into(), Value::String(sm::sm2_sign(&self.signer, text.as_bytes())));
        Value::Object(m)
    }

    /// Checks and decrypts the platform's answer; gives the HIS
    /// `{"infcode","err_msg","output",...the other fields}`. An error answer that
    /// carries neither data nor signature (the platform could not read ours) is
    /// passed on as it is: it moves no money and says why.
    pub fn open(&self, body: &str) -> std::result::Result<Value, String> {
        let v: Value = serde_json::from_str(body).map_err(|e| format!("answer is not JSON: {e}"))?;
        let Value::Object(mut m) = v else { return Err("answer is not a JSON object".into()) };
        let code = match m.get("code") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err("answer has no code".into()),
        };
        let message = m.get("message").and_then(Value::as_str).unwrap_or("").to_string();
        let enc = m.get("encData").and_then(Value::as_str).unwrap_or("").to_string();
        let sig = m.get("signData").and_then(Value::as_str).unwrap_or("").to_string();
        if sig.is_empty() && (code == "0" || !enc.is_empty()) {
            return Err("the answer carries data without signData: cannot verify it".into());
        }
        let data = if enc.is_empty() {
            Value::Null
        } else {
            let raw = sm::from_hex(&enc, "encData").map_err(|e| e.message)?;
            let plain = sm::sm4_decrypt(Mode::Ecb, &self.data_key, None, &raw)
                .map_err(|_| "encData cannot be decrypted with our data key".to_string())?;
            serde_json::from_slice(&plain).map_err(|_| "decrypted encData is not JSON".to_string())?
        };
        if !sig.is_empty() {
            let text = sign_text(&m, (!data.is_null()).then_some(&data), &self.app_secret);
            if !sm::sm2_verify(&self.platform, text.as_bytes(), &sig) {
                return Err("the platform's signData does not verify: 验签失败".into());
            }
        }
        m.remove("encData");
        m.remove("signData");
        let mut out = Map::new();
        out.insert("infcode".into(), Value::from(if code == "0" { 0 } else { -1 }));
        out.insert("err_msg".into(), Value::String(message));
        out.insert("output".into(), data);
        out.extend(m);
        Ok(Value::Object(out))
    }
}

/// k1 = the first 16 bytes of appId; c = SM4-ECB-PKCS7(appSecret, k1); the data key
/// is the first 16 characters of upper-case hex(c), as ASCII bytes.
pub fn data_key(app_id: &str, app_secret: &str) -> Result<[u8; 16]> {
    let k1 = app_id
        .as_bytes()
        .get(..16)
        .ok_or_else(|| Error::config("config key `mobile_pay.app_id`: must be at least 16 characters"))?;
    let c = sm::sm4_encrypt(Mode::Ecb, k1, None, app_secret.as_bytes())?;
    let hex = sm::to_hex_upper(&c);
    let mut key = [0u8; 16];
    key.copy_from_slice(&hex.as_bytes()[..16]);
    Ok(key)
}

/// A JSON value with every object's keys sorted, recursively, as compact text.
pub fn sorted_json(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// The text that is signed: every field but signData/encData/extra that is not null
/// or empty, `data` as sorted JSON, sorted by key, `k=v` joined by `&`, then
/// `&key=<appSecret>`.
pub fn sign_text(fields: &Map<String, Value>, data: Option<&Value>, app_secret: &str) -> String {
    let mut pairs: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| !UNSIGNED.contains(&k.as_str()) && k.as_str() != "data")
        .filter_map(|(k, v)| {
            let text = match v {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                Value::Object(_) | Value::Array(_) => sorted_json(v),
                other => other.to_string(),
            };
            (!text.is_empty()).then(|| (k.clone(), text))
        })
        .collect();
    if let Some(d) = data.filter(|d| !d.is_null()) {
        pairs.push(("data".into(), sorted_json(d)));
    }
    pairs.sort();
    let joined: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}&key={app_secret}", joined.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::json;

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn data_key_is_sixteen_hex_characters_of_the_encrypted_secret() {
        let k = data_key("1GF3Q2VKF0TH4460C80A0000DCF00F8B", "secret").unwrap();
        let c = sm::sm4_encrypt(Mode::Ecb, b"1GF3Q2VKF0TH4460", None, b"secret").unwrap();
        assert_eq!(&k, &hex::encode_upper(c).as_bytes()[..16]);
        assert!(k.iter().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()));
        assert!(data_key("short", "secret").is_err());
    }

    #[test]
    fn sign_text_sorts_drops_empty_and_appends_the_key() {
        let f = json!({"version": "2.0.1", "appId": "A", "signData": "x", "encData": "y", "extra": {"a": 1}, "empty": "", "nul": null});
        let t = sign_text(f.as_object().unwrap(), Some(&json!({"b": 1, "a": {"d": 2, "c": [ {"z":1,"y":2} ]}})), "S");
        assert_eq!(t, r#"appId=A&data={"a":{"c":[{"y":2,"z":1}],"d":2},"b":1}&version=2.0.1&key=S"#);
    }

    #[test]
    fn seal_and_open_round_trip_and_tampering() {
        let (app, platform) = ([0x21u8; 32], [0x42u8; 32]);
        let secret = "A5C2B0D1E7F845B2A1C4D9E8F7A6B5C4";
        let app_pub = sm::public_key_b64(&sm::signing_key(&b64(&app), secret).unwrap());
        let plat_pub = sm::public_key_b64(&sm::signing_key(&b64(&platform), secret).unwrap());
        let ours = Keys::new("1GF3Q2VKF0TH4460C80A0000DCF00F8B", secret, &b64(&app), &plat_pub).unwrap();
        // The platform's side: our public key, its private key.
        let theirs = Keys::new("1GF3Q2VKF0TH4460C80A0000DCF00F8B", secret, &b64(&platform), &app_pub).unwrap();
        let data = json!({"payOrdId": "P1", "feeSumamt": "12.30", "psnName": "张三"});
        let wire = ours.seal(&data, "2.0.1", 1_700_000_000_000);
        assert!(wire["encData"].as_str().unwrap().bytes().all(|b| !b.is_ascii_lowercase()));
        // The platform opens what we sealed (it verifies with our key).
        let mut as_answer = wire.clone();
        as_answer["code"] = json!("0");
        as_answer["message"] = json!("成功");
        let resealed = {
            let mut m = theirs.seal(&data, "2.0.1", 1_700_000_000_001);
            m["code"] = json!("0");
            m["message"] = json!("成功");
            // Re-sign including code and message, as the platform does.
            let mut fields = m.as_object().unwrap().clone();
            fields.remove("signData");
            let text = sign_text(&fields, Some(&data), secret);
            m["signData"] = json!(sm::sm2_sign(&theirs.signer, text.as_bytes()));
            m
        };
        let out = ours.open(&resealed.to_string()).unwrap();
        assert_eq!((out["infcode"].as_i64(), out["output"]["psnName"].as_str()), (Some(0), Some("张三")));
        assert!(out.get("encData").is_none() && out.get("signData").is_none());
        // Tampered: a different message under the same signature.
        let mut bad = resealed.clone();
        bad["message"] = json!("改过");
        assert!(ours.open(&bad.to_string()).unwrap_err().contains("验签失败"));
        // An unsigned error answer passes as a business error.
        let e = ours.open(r#"{"code":"1001","message":"验签失败"}"#).unwrap();
        assert_eq!((e["infcode"].as_i64(), e["err_msg"].as_str()), (Some(-1), Some("验签失败")));
        // An unsigned success does not.
        assert!(ours.open(r#"{"code":"0","message":"ok"}"#).is_err());
    }
}
