//! Cryptography: the gateway signatures (SHA-256, HMAC-SHA1), SM2/SM3/SM4, the
//! mobile-payment message format built on them, and random nonces.

pub mod gateway_sign;
pub mod mobile_pay;
pub mod sm;

/// A fresh random nonce: 32 hex characters from the OS generator.
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    // A failing OS generator is not worth a failed payment: fall back to time + counter.
    if getrandom::fill(&mut b).is_err() {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let t =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        b[..8].copy_from_slice(&t.to_le_bytes());
        b[8..].copy_from_slice(&N.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_le_bytes());
    }
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nonces_differ_and_are_hex() {
        let (a, b) = (super::nonce(), super::nonce());
        assert_ne!(a, b);
        assert!(a.len() == 32 && a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
