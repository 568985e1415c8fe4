//! Cryptography: the gateway signatures (SHA-256, HMAC-SHA1), SM2/SM3/SM4, the
//! mobile-payment message format and the platform's sealed `output` built on them,
//! and random nonces.

pub mod gateway_sign;
pub mod mobile_pay;
pub mod seal;
pub mod sealed_output;
pub mod sm;

/// A fresh random nonce: 32 hex characters from the OS generator.
pub fn nonce() -> String {
    hex::encode(random16())
}

/// A fresh random nonce as the CSB client makes `_api_nonce`: a signed 64-bit
/// decimal (Java's `Random.nextLong()`), so a gateway sees the form it knows.
pub fn decimal_nonce() -> String {
    let b = random16();
    i64::from_le_bytes(b[..8].try_into().expect("8 bytes")).to_string()
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    // A failing OS generator is not worth a failed payment: fall back to time + counter.
    if getrandom::fill(&mut b).is_err() {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let t =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The counter in both halves: the decimal nonce reads only the first.
        b[..8].copy_from_slice(&(t ^ n.rotate_left(40)).to_le_bytes());
        b[8..].copy_from_slice(&n.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    #[test]
    fn nonces_differ_and_are_hex() {
        let (a, b) = (super::nonce(), super::nonce());
        assert_ne!(a, b);
        assert!(a.len() == 32 && a.bytes().all(|c| c.is_ascii_hexdigit()));
        let (c, d) = (super::decimal_nonce(), super::decimal_nonce());
        assert_ne!(c, d);
        assert!(c.parse::<i64>().is_ok(), "{c}");
    }
}
