//! How an envelope becomes what goes on the wire, and an answer what the HIS gets:
//! the 两定 gateway (optionally with the Fujian-style SM4 `input`), the mobile-
//! payment platform (encrypted and signed, docs/protocol.md, "Mobile payment"), or
//! the file channel. The journal always keeps the plaintext on both sides.

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::mobile_pay::{self, Keys};
use crate::crypto::sm::{self, Mode};
use crate::error::{Error, Result};
use crate::protocol::transactions;
use crate::transport::files::FileChannel;
use crate::transport::{Exchange, Reply, Transport};
use serde_json::Value;

pub struct Channels {
    transport: Transport,
    mobile: Option<(Keys, String, String)>,
    /// `gateway.encrypt_input`: the appId and the SM4 data key for `input`.
    encrypt_input: Option<(String, [u8; 16])>,
    /// 9101 and 9102, to their own URLs.
    files: FileChannel,
    clock: Clock,
}

impl Channels {
    pub fn new(cfg: &Config, clock: Clock) -> Result<Channels> {
        let transport = Transport::new(&cfg.gateway, cfg.ca_path().as_deref(), clock.clone())?;
        let m = &cfg.mobile_pay;
        let mobile = if m.url.is_empty() {
            None
        } else {
            let keys = Keys::new(&m.app_id, m.app_secret.expose(), m.private_key.expose(), &m.platform_public_key)?;
            Some((keys, m.url.trim_end_matches('/').to_string(), m.version.clone()))
        };
        let encrypt_input = if cfg.gateway.encrypt_input {
            Some((m.app_id.clone(), mobile_pay::data_key(&m.app_id, m.app_secret.expose())?))
        } else {
            None
        };
        Ok(Channels { transport, mobile, encrypt_input, files: FileChannel::new(cfg), clock })
    }

    /// Breaks off every exchange in flight (see [`Transport::interrupt`]).
    pub fn interrupt(&self) {
        self.transport.interrupt();
    }

    /// Refuses, before anything is journaled, a transaction whose channel is not set up.
    pub fn check(&self, infno: &str) -> Result<()> {
        if transactions::is_file_transfer(infno) {
            return Err(Error::invalid(format!(
                "{infno} moves a file: call mi_upload_file (9101) or mi_download_file (9102), not mi_call_sync"
            )));
        }
        if transactions::mobile_pay_path(infno).is_some() && self.mobile.is_none() {
            return Err(Error::invalid(format!(
                "{infno} is a mobile-payment transaction and mobile_pay.url is not configured"
            )));
        }
        Ok(())
    }

    /// Sends a plaintext envelope over its channel.
    pub fn exchange(&self, infno: &str, envelope: &str) -> Exchange {
        let transport = &self.transport;
        if transactions::is_file_transfer(infno) {
            return self.files.exchange(transport, infno, envelope);
        }
        if let (Some(path), Some((keys, url, version))) = (transactions::mobile_pay_path(infno), &self.mobile) {
            let env: Value = serde_json::from_str(envelope).unwrap_or(Value::Null);
            let input = &env["input"];
            let data = input.get("data").unwrap_or(input);
            let wire = keys.seal(data, version, self.clock.unix_ms() as u64);
            return match transport.post_to(&format!("{url}{path}"), &[], &wire.to_string()) {
                Err(f) => Exchange::Failed(f),
                Ok(r) if !(200..300).contains(&r.status) => Exchange::Answer(r),
                Ok(r) => match keys.open(&r.body) {
                    Ok(v) => Exchange::Answer(Reply { status: r.status, body: v.to_string() }),
                    Err(why) => Exchange::Unverified { status: r.status, body: r.body, why },
                },
            };
        }
        let Some((app_id, key)) = &self.encrypt_input else {
            return transport.post(infno, envelope).into();
        };
        let mut env: serde_json::Map<String, Value> = serde_json::from_str(envelope).unwrap_or_default();
        let input = env.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into());
        let sealed = sm::sm4_encrypt(Mode::Ecb, key, None, input.as_bytes()).expect("a 16-byte key");
        env.insert("app_id".into(), Value::String(app_id.clone()));
        env.insert("enc_type".into(), Value::String("SM4".into()));
        env.insert("input".into(), Value::String(sm::to_hex_upper(&sealed)));
        match transport.post(infno, &Value::Object(env).to_string()) {
            Err(f) => Exchange::Failed(f),
            Ok(r) => match open_output(key, &r.body) {
                Ok(body) => Exchange::Answer(Reply { status: r.status, body }),
                Err(why) => Exchange::Unverified { status: r.status, body: r.body, why },
            },
        }
    }
}

/// With `enc_type: "SM4"` the platform may answer `output` as hex ciphertext: give
/// the HIS the decrypted JSON in its place. Other answers pass unchanged.
pub fn open_output(key: &[u8; 16], body: &str) -> std::result::Result<String, String> {
    let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(body) else { return Ok(body.to_string()) };
    let Some(Value::String(hex)) = m.get("output") else { return Ok(body.to_string()) };
    if hex.is_empty() {
        return Ok(body.to_string());
    }
    let raw = sm::from_hex(hex, "output").map_err(|e| e.message)?;
    let plain = sm::sm4_decrypt(Mode::Ecb, key, None, &raw).map_err(|_| "output cannot be decrypted".to_string())?;
    let v: Value = serde_json::from_slice(&plain).map_err(|_| "decrypted output is not JSON".to_string())?;
    m.insert("output".into(), v);
    Ok(Value::Object(m).to_string())
}
