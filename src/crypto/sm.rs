//! China's national algorithms on the RustCrypto crates: SM3 (hash, HMAC-SM3), SM4
//! (ECB and CBC with PKCS#7) and SM2 signatures with SM3 and a chosen user id, in the
//! forms the platform uses (raw 64-byte r‖s; keys as Base64). Thin wrappers only.

use crate::error::{Error, Result};
use base64::Engine;
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit};
use hmac::{Hmac, Mac};
use sm2::dsa::{signature::Signer, signature::Verifier, Signature, SigningKey, VerifyingKey};
use sm3::{Digest, Sm3};

pub fn sm3(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sm3> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// The two SM4 modes the platform uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ecb,
    Cbc,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "ecb" => Some(Mode::Ecb),
            "cbc" => Some(Mode::Cbc),
            _ => None,
        }
    }
}

fn key16(key: &[u8], what: &str) -> Result<[u8; 16]> {
    key.try_into().map_err(|_| Error::invalid(format!("{what} must be 16 bytes, got {}", key.len())))
}

/// SM4 with PKCS#7 padding. `iv` is required for CBC and ignored for ECB.
pub fn sm4_encrypt(mode: Mode, key: &[u8], iv: Option<&[u8]>, plain: &[u8]) -> Result<Vec<u8>> {
    let k = key16(key, "SM4 key")?;
    Ok(match mode {
        Mode::Ecb => ecb::Encryptor::<sm4::Sm4>::new(&k.into()).encrypt_padded_vec_mut::<Pkcs7>(plain),
        Mode::Cbc => {
            let iv = key16(iv.ok_or_else(|| Error::invalid("SM4-CBC needs an IV"))?, "SM4 IV")?;
            cbc::Encryptor::<sm4::Sm4>::new(&k.into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plain)
        }
    })
}

pub fn sm4_decrypt(mode: Mode, key: &[u8], iv: Option<&[u8]>, cipher: &[u8]) -> Result<Vec<u8>> {
    let k = key16(key, "SM4 key")?;
    let bad = |_| Error::invalid("SM4 ciphertext does not decrypt: wrong key, or not PKCS#7-padded 16-byte blocks");
    match mode {
        Mode::Ecb => ecb::Decryptor::<sm4::Sm4>::new(&k.into()).decrypt_padded_vec_mut::<Pkcs7>(cipher).map_err(bad),
        Mode::Cbc => {
            let iv = key16(iv.ok_or_else(|| Error::invalid("SM4-CBC needs an IV"))?, "SM4 IV")?;
            cbc::Decryptor::<sm4::Sm4>::new(&k.into(), &iv.into()).decrypt_padded_vec_mut::<Pkcs7>(cipher).map_err(bad)
        }
    }
}

/// Parses hex in either case.
pub fn from_hex(s: &str, what: &str) -> Result<Vec<u8>> {
    hex::decode(s.trim()).map_err(|_| Error::invalid(format!("{what} is not hex")))
}

pub fn to_hex_upper(b: &[u8]) -> String {
    hex::encode_upper(b)
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| Error::config(format!("{what} is not Base64")))
}

/// An SM2 private key from the Base64 of its 32-byte scalar (a leading 0x00 may
/// make it 33 bytes), for signing with `user_id` as the distinguishing id.
pub fn signing_key(private_b64: &str, user_id: &str) -> Result<SigningKey> {
    let mut raw = b64(private_b64, "SM2 private key")?;
    if raw.len() == 33 && raw[0] == 0 {
        raw.remove(0);
    }
    if raw.len() != 32 {
        return Err(Error::config(format!("SM2 private key must be 32 bytes (Base64), got {}", raw.len())));
    }
    SigningKey::from_slice(user_id, &raw).map_err(|_| Error::config("SM2 private key is not a valid scalar"))
}

/// An SM2 public key from the Base64 of its 65-byte uncompressed point.
pub fn verifying_key(public_b64: &str, user_id: &str) -> Result<VerifyingKey> {
    let raw = b64(public_b64, "SM2 public key")?;
    VerifyingKey::from_sec1_bytes(user_id, &raw).map_err(|_| Error::config("SM2 public key is not a valid point"))
}

/// SM3withSM2 over `msg`; the signature as Base64 of raw r‖s (64 bytes).
pub fn sm2_sign(key: &SigningKey, msg: &[u8]) -> String {
    let sig: Signature = key.sign(msg);
    base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
}

/// Checks a Base64 raw r‖s signature.
pub fn sm2_verify(key: &VerifyingKey, msg: &[u8], sig_b64: &str) -> bool {
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sig_b64.trim()) else { return false };
    let Ok(sig) = Signature::from_slice(&raw) else { return false };
    key.verify(msg, &sig).is_ok()
}

/// The Base64 public key of a private key, as the platform is given it.
pub fn public_key_b64(key: &SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_sec1_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sm3_known_answers() {
        // GB/T 32905-2016 examples A.1 and A.2.
        assert_eq!(hex::encode(sm3(b"abc")), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
        assert_eq!(
            hex::encode(sm3(&b"abcd".repeat(16))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    #[test]
    fn sm4_known_answers() {
        // GB/T 32907-2016 example 1, one block without padding: the first 16 bytes of
        // the padded ECB output are the raw block cipher output.
        let k = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let c = sm4_encrypt(Mode::Ecb, &k, None, &k).unwrap();
        assert_eq!(hex::encode(&c[..16]), "681edf34d206965e86b3e94f536e4246");
        assert_eq!(sm4_decrypt(Mode::Ecb, &k, None, &c).unwrap(), k);
        // Example 2: the block encrypted 1,000,000 times with the same key.
        use sm4::cipher::BlockEncrypt;
        let cipher = <sm4::Sm4 as sm4::cipher::KeyInit>::new_from_slice(&k).unwrap();
        let mut block = sm4::cipher::generic_array::GenericArray::clone_from_slice(&k);
        for _ in 0..1_000_000 {
            cipher.encrypt_block(&mut block);
        }
        assert_eq!(hex::encode(block), "595298c7c6fd271f0402f804c33d3f66");
    }

    #[test]
    fn sm4_cbc_round_trip_and_bad_input() {
        let k = [7u8; 16];
        let iv = [9u8; 16];
        let c = sm4_encrypt(Mode::Cbc, &k, Some(&iv), "医保 SM4-CBC".as_bytes()).unwrap();
        assert_eq!(c.len() % 16, 0);
        assert_eq!(sm4_decrypt(Mode::Cbc, &k, Some(&iv), &c).unwrap(), "医保 SM4-CBC".as_bytes());
        assert!(
            sm4_decrypt(Mode::Cbc, &[8u8; 16], Some(&iv), &c).is_err()
                || sm4_decrypt(Mode::Cbc, &[8u8; 16], Some(&iv), &c).unwrap() != "医保 SM4-CBC".as_bytes()
        );
        assert!(sm4_encrypt(Mode::Ecb, &[1u8; 15], None, b"x").is_err());
        assert!(sm4_encrypt(Mode::Cbc, &k, None, b"x").is_err());
        assert!(sm4_decrypt(Mode::Ecb, &k, None, &[1u8; 15]).is_err());
    }

    #[test]
    fn sm2_round_trip_with_user_id() {
        let private = base64::engine::general_purpose::STANDARD.encode([0x11u8; 32]);
        let sk = signing_key(&private, "appSecret-123").unwrap();
        let vk = verifying_key(&public_key_b64(&sk), "appSecret-123").unwrap();
        let sig = sm2_sign(&sk, b"appId=x&key=y");
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(&sig).unwrap().len(), 64, "raw r||s, not DER");
        assert!(sm2_verify(&vk, b"appId=x&key=y", &sig));
        assert!(!sm2_verify(&vk, b"appId=x&key=z", &sig));
        let other_id = verifying_key(&public_key_b64(&sk), "1234567812345678").unwrap();
        assert!(!sm2_verify(&other_id, b"appId=x&key=y", &sig), "the user id is part of the signature");
        // A 33-byte key with a leading zero is the same key.
        let mut padded = vec![0u8];
        padded.extend([0x11u8; 32]);
        let sk33 = signing_key(&base64::engine::general_purpose::STANDARD.encode(padded), "appSecret-123").unwrap();
        assert_eq!(public_key_b64(&sk33), public_key_b64(&sk));
        assert!(signing_key("not base64!", "x").is_err());
    }
}
