//! How an envelope becomes what goes on the wire, and an answer what the HIS gets:
//! the 两定 gateway (optionally with the Fujian-style SM4 `input`, and an `output`
//! sealed by the platform, docs/protocol.md, "Encrypted answers"), the mobile-
//! payment platform (encrypted and signed, docs/protocol.md, "Mobile payment"), or
//! the file channel. The journal always keeps the plaintext on both sides.

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::mobile_pay::{self, Keys};
use crate::crypto::sealed_output::{Seal, SealedOutput};
use crate::crypto::sm::{self, Mode};
use crate::error::{Error, Result};
use crate::protocol::transactions;
use crate::transport::files::FileChannel;
use crate::transport::sealed::opened;
use crate::transport::{Exchange, Reply, Transport};
use serde_json::Value;

pub struct Channels {
    transport: Transport,
    mobile: Option<(Keys, String, String)>,
    /// `gateway.encrypt_input`: the appId and the SM4 data key for `input`.
    encrypt_input: Option<(String, [u8; 16])>,
    /// How the platform seals `output`, if it does.
    sealed_output: Option<SealedOutput>,
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
        let g = &cfg.gateway;
        let data_key = || mobile_pay::data_key(&m.app_id, m.app_secret.expose());
        let encrypt_input = if g.encrypt_input { Some((m.app_id.clone(), data_key()?)) } else { None };
        let sealed_output = if g.decrypt_answers {
            let platform = sm::verifying_key(&g.platform_public_key, &g.sm2_user_id)?;
            Some(SealedOutput { key: data_key()?, seal: Seal::Signed(platform) })
        } else if g.encrypt_input {
            Some(SealedOutput { key: data_key()?, seal: Seal::Hex })
        } else {
            None
        };
        Ok(Channels { transport, mobile, encrypt_input, sealed_output, files: FileChannel::new(cfg), clock })
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
            return self.files.exchange(transport, infno, envelope, self.sealed_output.as_ref());
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
        let sent = match &self.encrypt_input {
            None => transport.post(infno, envelope),
            Some((app_id, key)) => transport.post(infno, &sealed_input(app_id, key, envelope)),
        };
        match sent {
            Err(f) => Exchange::Failed(f),
            Ok(r) => opened(self.sealed_output.as_ref(), r),
        }
    }
}

/// The Fujian-style envelope: `app_id`, `enc_type: "SM4"`, and `input` as upper-case
/// hex SM4-ECB of its JSON.
fn sealed_input(app_id: &str, key: &[u8; 16], envelope: &str) -> String {
    let mut env: serde_json::Map<String, Value> = serde_json::from_str(envelope).unwrap_or_default();
    let input = env.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into());
    let sealed = sm::sm4_encrypt(Mode::Ecb, key, None, input.as_bytes()).expect("a 16-byte key");
    env.insert("app_id".into(), Value::String(app_id.to_string()));
    env.insert("enc_type".into(), Value::String("SM4".into()));
    env.insert("input".into(), Value::String(sm::to_hex_upper(&sealed)));
    Value::Object(env).to_string()
}
