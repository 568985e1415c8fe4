//! The mobile-payment platform (医保移动支付, 6201–6401): it decrypts `encData` with
//! the data key of the app, verifies `signData` with the app's public key (user id =
//! appSecret), runs the order, and answers encrypted and signed with its own key.
//! Written from docs/protocol.md ("Mobile payment") independently of mi_sdk, so a shared mistake is unlikely.

use base64::Engine;
use ecb::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyInit};
use serde_json::{json, Map, Value};
use sm2::dsa::{signature::Signer, signature::Verifier, Signature, SigningKey, VerifyingKey};
use std::collections::HashMap;

/// The test app's keys (invented for the simulator; never real ones).
pub const TEST_APP_ID: &str = "1GF3Q2VKF0TH4460C80A0000DCF00F8B";
pub const TEST_APP_SECRET: &str = "A5C2B0D1E7F845B2A1C4D9E8F7A6B5C4";
pub const TEST_APP_PRIVATE_KEY: [u8; 32] = [0x21; 32];
pub const TEST_PLATFORM_PRIVATE_KEY: [u8; 32] = [0x42; 32];

pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The Base64 uncompressed public key of a private scalar, with `user_id`.
pub fn public_key_b64(private: &[u8; 32], user_id: &str) -> String {
    let sk = SigningKey::from_slice(user_id, private).expect("a valid test scalar");
    b64(&sk.verifying_key().to_sec1_bytes())
}

pub fn data_key(app_id: &str, app_secret: &str) -> [u8; 16] {
    let k1: [u8; 16] = app_id.as_bytes()[..16].try_into().expect("appId has 16 bytes");
    let c = ecb::Encryptor::<sm4::Sm4>::new(&k1.into()).encrypt_padded_vec_mut::<Pkcs7>(app_secret.as_bytes());
    let hex: String = c.iter().map(|b| format!("{b:02X}")).collect();
    hex.as_bytes()[..16].try_into().expect("16 hex characters")
}

pub fn encrypt_hex(key: &[u8; 16], plain: &[u8]) -> String {
    let c = ecb::Encryptor::<sm4::Sm4>::new(&(*key).into()).encrypt_padded_vec_mut::<Pkcs7>(plain);
    c.iter().map(|b| format!("{b:02X}")).collect()
}

pub fn decrypt_hex(key: &[u8; 16], hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let raw: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect();
    ecb::Decryptor::<sm4::Sm4>::new(&(*key).into()).decrypt_padded_vec_mut::<Pkcs7>(&raw?).ok()
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        o => o.clone(),
    }
}

/// The signed text (docs/protocol.md, "Mobile payment").
pub fn sign_text(fields: &Map<String, Value>, data: &Value, secret: &str) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in fields {
        if ["signData", "encData", "extra", "data"].contains(&k.as_str()) {
            continue;
        }
        let t = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Object(_) | Value::Array(_) => sorted(v).to_string(),
            o => o.to_string(),
        };
        if !t.is_empty() {
            pairs.push((k.clone(), t));
        }
    }
    if !data.is_null() {
        pairs.push(("data".into(), sorted(data).to_string()));
    }
    pairs.sort();
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}&key={secret}", body.join("&"))
}

#[derive(Default)]
pub struct Orders {
    /// payOrdId -> (medOrgOrd, status, feeSumamt)
    orders: HashMap<String, (String, String, String)>,
    serial: u64,
    pub bad_signatures: u64,
}

impl Orders {
    pub fn to_json(&self) -> Value {
        let mut list: Vec<Value> = self
            .orders
            .iter()
            .map(|(id, (org, st, fee))| json!({"payOrdId": id, "medOrgOrd": org, "status": st, "feeSumamt": fee}))
            .collect();
        list.sort_by(|a, b| a["payOrdId"].as_str().cmp(&b["payOrdId"].as_str()));
        json!({"orders": list, "bad_signatures": self.bad_signatures})
    }

    fn run(&mut self, path: &str, data: &Value) -> Result<Value, String> {
        let s = |k: &str| {
            data.get(k).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())).unwrap_or_default()
        };
        let order = |o: &Self, id: &str| o.orders.get(id).cloned().ok_or_else(|| format!("支付订单[{id}]不存在"));
        match path {
            "uldFeeInfo" => {
                if s("medOrgOrd").is_empty() {
                    return Err("medOrgOrd 不能为空".into());
                }
                self.serial += 1;
                let id = format!("ORD{:012}", self.serial);
                self.orders.insert(id.clone(), (s("medOrgOrd"), "uploaded".into(), s("feeSumamt")));
                Ok(json!({"payOrdId": id, "payToken": format!("TK{:012}", self.serial), "extData": null}))
            }
            "pay_order" => {
                let id = s("payOrdId");
                let (org, st, fee) = order(self, &id)?;
                if st != "uploaded" {
                    return Err(format!("支付订单[{id}]状态为{st}, 不能支付"));
                }
                self.orders.insert(id.clone(), (org, "paid".into(), fee.clone()));
                Ok(json!({"payOrdId": id, "ordStas": "6", "feeSumamt": fee}))
            }
            "refund_Order" | "revoke_order" => {
                let id = s("payOrdId");
                let (org, _, fee) = order(self, &id)?;
                let st = if path == "refund_Order" { "refunded" } else { "revoked" };
                self.orders.insert(id.clone(), (org, st.into(), fee));
                Ok(json!({"payOrdId": id, "ordStas": st}))
            }
            "query_order_info" => {
                let id = s("payOrdId");
                let (org, st, fee) = order(self, &id)?;
                Ok(json!({"payOrdId": id, "medOrgOrd": org, "ordStas": st, "feeSumamt": fee}))
            }
            _ => Err(format!("no such service {path}")),
        }
    }
}

/// The app the platform knows.
pub struct App {
    pub app_id: String,
    pub app_secret: String,
    pub app_public_key_b64: String,
    pub platform_private_key: [u8; 32],
}

/// Handles one mobile-payment request body for `path` (the last path segment).
pub fn handle(app: &App, orders: &mut Orders, path: &str, body: &[u8]) -> Value {
    let unsigned = |code: &str, msg: &str| json!({"code": code, "message": msg});
    let Ok(Value::Object(wire)) = serde_json::from_slice::<Value>(body) else {
        return unsigned("1000", "报文格式错误");
    };
    let get = |k: &str| wire.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if get("appId") != app.app_id {
        return unsigned("1003", "appId不存在");
    }
    let key = data_key(&app.app_id, &app.app_secret);
    let Some(plain) = decrypt_hex(&key, &get("encData")) else { return unsigned("1001", "解密失败") };
    let Ok(mut data) = serde_json::from_slice::<Value>(&plain) else { return unsigned("1001", "解密失败") };
    let verified = (|| {
        let raw = base64::engine::general_purpose::STANDARD.decode(get("signData")).ok()?;
        let sig = Signature::from_slice(&raw).ok()?;
        let vk = VerifyingKey::from_sec1_bytes(
            &app.app_secret,
            &base64::engine::general_purpose::STANDARD.decode(&app.app_public_key_b64).ok()?,
        )
        .ok()?;
        vk.verify(sign_text(&wire, &data, &app.app_secret).as_bytes(), &sig).ok()
    })();
    if verified.is_none() {
        orders.bad_signatures += 1;
        return unsigned("1002", "验签失败");
    }
    let tamper = data.get("_sim").and_then(|f| f.get("tamper_signature")).and_then(Value::as_bool) == Some(true);
    if let Some(d) = data.as_object_mut() {
        d.remove("_sim");
    }
    let (code, message, out) = match orders.run(path, &data) {
        Ok(o) => ("0", "成功".to_string(), o),
        Err(e) => ("2001", e, Value::Null),
    };
    let mut resp = Map::new();
    for (k, v) in [
        ("code", code.to_string()),
        ("message", message),
        ("appId", app.app_id.clone()),
        ("encType", "SM4".into()),
        ("signType", "SM2".into()),
        ("version", get("version")),
    ] {
        resp.insert(k.into(), Value::String(v));
    }
    resp.insert("timestamp".into(), Value::String(chrono::Utc::now().timestamp_millis().to_string()));
    let sk = SigningKey::from_slice(&app.app_secret, &app.platform_private_key).expect("a valid test scalar");
    let sig: Signature = sk.sign(sign_text(&resp, &out, &app.app_secret).as_bytes());
    if !out.is_null() {
        resp.insert("encData".into(), Value::String(encrypt_hex(&key, out.to_string().as_bytes())));
    }
    resp.insert("signData".into(), Value::String(b64(&sig.to_bytes())));
    if tamper {
        resp.insert("message".into(), Value::String("成功(已篡改)".into()));
    }
    Value::Object(resp)
}
