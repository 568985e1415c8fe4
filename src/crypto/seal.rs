//! Sealing values at rest: SM4 in GCM mode (the national block cipher in an
//! authenticated mode), a fresh 96-bit nonce per value, and associated data that
//! names where the value belongs (for the journal: the table, the column and the
//! row id), so that a value moved to another row or column does not open. A sealed
//! value is text, `mi1.` and the base64 (URL alphabet, no padding) of nonce,
//! ciphertext and tag, so it fits the TEXT columns it replaces; a text that does not
//! begin with `mi1.` was never sealed.

use crate::error::{Code, Error, Result};
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;

/// SM4-GCM with the 96-bit nonce of GCM's fast path.
type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, U12>;

/// What every sealed value begins with (the format's version).
pub const PREFIX: &str = "mi1.";
const NONCE: usize = 12;
const TAG: usize = 16;

/// A 128-bit sealing key. It never reaches a log or an error text: its `Debug`
/// prints nothing of it.
#[derive(Clone)]
pub struct SealKey([u8; 16]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    pub fn from_bytes(b: [u8; 16]) -> SealKey {
        SealKey(b)
    }

    /// A new key from the operating system's generator; an error rather than a
    /// weaker key when the generator fails.
    pub fn generate() -> Result<SealKey> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b)
            .map_err(|e| Error::new(Code::Internal, format!("the system's random generator failed: {e}")))?;
        Ok(SealKey(b))
    }

    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// `plain` sealed for the place `aad` names.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce)
            .map_err(|e| Error::new(Code::Internal, format!("the system's random generator failed: {e}")))?;
        let sealed = self
            .cipher()
            .encrypt((&nonce).into(), Payload { msg: plain, aad })
            .map_err(|_| Error::new(Code::Internal, "a value could not be sealed"))?;
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)))
    }

    /// The value `sealed` holds, if it was sealed with this key for the place
    /// `aad` names and not changed since; `MI_E_JOURNAL` otherwise, never a guess.
    pub fn open(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>> {
        let refused =
            || Error::new(Code::Journal, "a sealed value does not open: another key, another place, or changed");
        let body = sealed.strip_prefix(PREFIX).ok_or_else(refused)?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).map_err(|_| refused())?;
        if raw.len() < NONCE + TAG {
            return Err(refused());
        }
        let (nonce, rest) = raw.split_at(NONCE);
        self.cipher().decrypt(nonce.into(), Payload { msg: rest, aad }).map_err(|_| refused())
    }

    fn cipher(&self) -> Sm4Gcm {
        Sm4Gcm::new((&self.0).into())
    }
}

/// Whether `text` is a sealed value (rather than one kept in clear).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SealKey {
        SealKey::from_bytes(*b"0123456789abcdef")
    }

    #[test]
    fn values_open_only_with_their_key_and_place() {
        let k = key();
        let text = "{\"psn_name\":\"张三\",\"certno\":\"440301199001011234\"}";
        let s = k.seal(b"mi_request.result:7", text.as_bytes()).unwrap();
        assert!(is_sealed(&s) && !s.contains("440301") && !s.contains("张三"));
        assert_eq!(k.open(b"mi_request.result:7", &s).unwrap(), text.as_bytes());
        // Another row, another column, another key: refused.
        assert_eq!(k.open(b"mi_request.result:8", &s).unwrap_err().code, Code::Journal);
        assert!(k.open(b"mi_request.envelope:7", &s).is_err());
        assert!(SealKey::from_bytes([7; 16]).open(b"mi_request.result:7", &s).is_err());
        // A fresh nonce each time: the same value seals differently.
        assert_ne!(s, k.seal(b"mi_request.result:7", text.as_bytes()).unwrap());
        // Nothing of the key in its Debug form.
        assert_eq!(format!("{k:?}"), "SealKey(..)");
    }

    #[test]
    fn a_changed_byte_anywhere_is_detected() {
        let k = key();
        let s = k.seal(b"a", b"settled 81.00").unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&s[PREFIX.len()..]).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let text = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bad));
            assert!(k.open(b"a", &text).is_err(), "byte {i} changed and not seen");
        }
        for bad in ["", "mi1.", "mi1.@@@", "plain text", "mi1.AAAA"] {
            assert!(k.open(b"a", bad).is_err(), "{bad:?}");
        }
    }
}
