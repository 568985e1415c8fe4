//! Jilin-style answers (`SimConfig::encrypt_answers`): the platform answers `output`
//! as Base64 of SM4-ECB-PKCS7 of its JSON under the app's data key, `signtype`
//! "SM2", and `cainfo` its SM2 signature (SM3, user id `1234567812345678`, raw r‖s
//! in Base64) over that Base64 text, with a key pair of its own. Written from
//! docs/protocol.md ("Encrypted answers") independently of mi_sdk.

use crate::mobile::{self, b64};
use ecb::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyInit};
use serde_json::{Map, Value};
use sm2::dsa::{signature::Signer, Signature, SigningKey};

/// The SM2 user id the answers are signed with: the GM/T 0009 default.
pub const USER_ID: &str = "1234567812345678";
/// The key pair that signs the answers (invented for the simulator).
pub const TEST_ANSWER_PRIVATE_KEY: [u8; 32] = [0x63; 32];

/// `output` sealed and its `cainfo`. Faults: `garble_output` seals bytes no key
/// opens (8 bytes: not one SM4 block), correctly signed; `bad_cainfo` signs other
/// text, as a tampered answer would carry.
pub fn seal(key: &[u8; 16], signer: &[u8; 32], output: &Value, fault: &Map<String, Value>) -> (Value, String) {
    let on = |f: &str| fault.get(f).and_then(Value::as_bool) == Some(true);
    let plain = if on("garble_output") { vec![7u8; 8] } else { output.to_string().into_bytes() };
    let cipher = if on("garble_output") {
        plain
    } else {
        ecb::Encryptor::<sm4::Sm4>::new(&(*key).into()).encrypt_padded_vec_mut::<Pkcs7>(&plain)
    };
    let text = b64(&cipher);
    let sk = SigningKey::from_slice(USER_ID, signer).expect("a valid test scalar");
    let signed = if on("bad_cainfo") { format!("{text}tampered") } else { text.clone() };
    let sig: Signature = sk.sign(signed.as_bytes());
    (Value::String(text), b64(&sig.to_bytes()))
}

/// The Base64 public key a hospital's config names to check the answers.
pub fn public_key_b64(signer: &[u8; 32]) -> String {
    mobile::public_key_b64(signer, USER_ID)
}
