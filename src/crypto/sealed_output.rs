//! The platform's `output` when it travels encrypted (docs/protocol.md, "Encrypted
//! answers"): Fujian-style, upper-case hex SM4 when the request was encrypted
//! (`gateway.encrypt_input`); Jilin-style, Base64 SM4 always, with the platform's
//! SM2 signature over that Base64 text in `cainfo` (`gateway.decrypt_answers`).
//! Both use SM4-ECB-PKCS7 under the mobile-payment data key.

use crate::crypto::sm::{self, Mode};
use base64::Engine;
use serde_json::{Map, Value};
use sm2::dsa::VerifyingKey;

/// How the platform seals `output`.
pub enum Seal {
    /// Hex ciphertext when the platform chose to encrypt; unsigned.
    Hex,
    /// Base64 ciphertext signed in `cainfo` with the platform's key.
    Signed(VerifyingKey),
}

pub struct SealedOutput {
    pub key: [u8; 16],
    pub seal: Seal,
}

impl SealedOutput {
    /// Puts the plaintext JSON in place of a platform envelope's sealed `output`;
    /// says whether it did. An error says why the answer cannot be trusted: the
    /// caller treats it as an unverifiable answer. An envelope without output (a
    /// refusal) is left as it is: there is nothing in it to trust or to decrypt.
    pub fn open(&self, env: &mut Map<String, Value>) -> Result<bool, String> {
        let success = match env.get("infcode") {
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.trim() == "0",
            _ => false,
        };
        let text = match env.get("output") {
            // A success says what it did in its output: unsigned, nobody can tell it
            // from a forged one. A refusal has nothing to trust.
            None | Some(Value::Null) if success && matches!(self.seal, Seal::Signed(_)) => {
                return Err("a success came without a signed output while gateway.decrypt_answers expects one: \
                            cannot verify it"
                    .into())
            }
            Some(Value::String(s)) if s.is_empty() && success && matches!(self.seal, Seal::Signed(_)) => {
                return Err("a success came with an empty output while gateway.decrypt_answers expects it signed: \
                            cannot verify it"
                    .into())
            }
            None | Some(Value::Null) => return Ok(false),
            Some(Value::String(s)) if s.is_empty() => return Ok(false),
            Some(Value::String(s)) => s.clone(),
            Some(_) => match self.seal {
                Seal::Hex => return Ok(false),
                // Plaintext where a signed ciphertext is due could be anyone's.
                Seal::Signed(_) => {
                    return Err("output came in plaintext, unsigned, while gateway.decrypt_answers expects it \
                                encrypted and signed in cainfo: cannot verify it"
                        .into())
                }
            },
        };
        let raw = match &self.seal {
            Seal::Hex => sm::from_hex(&text, "output").map_err(|e| e.message)?,
            Seal::Signed(platform) => {
                let sig = env.get("cainfo").and_then(Value::as_str).unwrap_or_default();
                if sig.is_empty() {
                    return Err("output is encrypted but cainfo carries no signature: cannot verify it".into());
                }
                // The signature covers the ciphertext exactly as it came.
                if !sm::sm2_verify(platform, text.as_bytes(), sig) {
                    return Err("the platform's SM2 signature in cainfo does not verify over output: 验签失败".into());
                }
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| "output is not Base64 ciphertext".to_string())?
            }
        };
        let plain = sm::sm4_decrypt(Mode::Ecb, &self.key, None, &raw)
            .map_err(|_| "output cannot be decrypted with our data key".to_string())?;
        let v: Value = serde_json::from_slice(&plain).map_err(|_| "decrypted output is not JSON".to_string())?;
        env.insert("output".into(), v);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: [u8; 16] = *b"0123456789ABCDEF";

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn signed() -> (SealedOutput, sm2::dsa::SigningKey) {
        let sk = sm::signing_key(&b64(&[0x63; 32]), "1234567812345678").unwrap();
        let vk = sm::verifying_key(&sm::public_key_b64(&sk), "1234567812345678").unwrap();
        (SealedOutput { key: KEY, seal: Seal::Signed(vk) }, sk)
    }

    fn sealed(sk: &sm2::dsa::SigningKey, output: &Value) -> Map<String, Value> {
        let c = b64(&sm::sm4_encrypt(Mode::Ecb, &KEY, None, output.to_string().as_bytes()).unwrap());
        let sig = sm::sm2_sign(sk, c.as_bytes());
        json!({"infcode": 0, "output": c, "signtype": "SM2", "cainfo": sig}).as_object().unwrap().clone()
    }

    #[test]
    fn a_signed_output_is_verified_then_decrypted() {
        let (keys, sk) = signed();
        let out = json!({"baseinfo": {"psn_name": "张三"}});
        let mut env = sealed(&sk, &out);
        assert!(keys.open(&mut env).unwrap());
        assert_eq!(env["output"], out);
        assert_eq!(env["signtype"], "SM2", "the other fields pass unchanged");
        // A refusal carries no output: nothing to verify.
        let mut refusal = json!({"infcode": -1, "err_msg": "x", "output": null}).as_object().unwrap().clone();
        assert!(!keys.open(&mut refusal).unwrap());
    }

    #[test]
    fn an_output_that_does_not_verify_or_decrypt_is_refused() {
        let (keys, sk) = signed();
        let good = sealed(&sk, &json!({"a": 1}));
        let why = |f: &dyn Fn(&mut Map<String, Value>)| {
            let mut env = good.clone();
            f(&mut env);
            keys.open(&mut env).unwrap_err()
        };
        assert!(why(&|e| e["cainfo"] = json!(sm::sm2_sign(&sk, b"other"))).contains("验签失败"));
        assert!(why(&|e| e["cainfo"] = json!("")).contains("no signature"));
        assert!(why(&|e| {
            e.remove("cainfo");
        })
        .contains("no signature"));
        assert!(why(&|e| e["output"] = json!({"a": 1})).contains("plaintext"));
        // A success with nothing signed could be anyone's: for a settlement that is uncertain.
        assert!(why(&|e| e["output"] = Value::Null).contains("without a signed output"));
        assert!(why(&|e| {
            e.remove("output");
        })
        .contains("without a signed output"));
        assert!(why(&|e| e["output"] = json!("")).contains("empty output"));
        assert!(why(&|e| {
            e["infcode"] = json!("0");
            e["output"] = Value::Null;
        })
        .contains("without a signed output"));
        // Signed, but not a ciphertext of our key (8 bytes: no SM4 block).
        let short = b64(&[1u8; 8]);
        assert!(why(&|e| {
            e["cainfo"] = json!(sm::sm2_sign(&sk, short.as_bytes()));
            e["output"] = json!(short);
        })
        .contains("cannot be decrypted"));
        // A ciphertext signed by another key.
        let other = sm::signing_key(&b64(&[0x17; 32]), "1234567812345678").unwrap();
        assert!(why(&|e| e["cainfo"] = json!(sm::sm2_sign(&other, e["output"].as_str().unwrap().as_bytes())))
            .contains("验签失败"));
    }

    #[test]
    fn a_hex_output_is_decrypted_and_a_plain_one_passes() {
        let keys = SealedOutput { key: KEY, seal: Seal::Hex };
        let c = sm::to_hex_upper(&sm::sm4_encrypt(Mode::Ecb, &KEY, None, br#"{"a":1}"#).unwrap());
        let mut env = json!({"infcode": 0, "output": c}).as_object().unwrap().clone();
        assert!(keys.open(&mut env).unwrap());
        assert_eq!(env["output"], json!({"a": 1}));
        assert!(!keys.open(&mut env).unwrap());
        assert_eq!(env["output"], json!({"a": 1}), "a plaintext output passes");
        let mut bad = json!({"output": "0123456789ABCDEF"}).as_object().unwrap().clone();
        assert!(keys.open(&mut bad).unwrap_err().contains("cannot be decrypted"));
    }
}
