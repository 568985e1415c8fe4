//! Cryptography: the gateway signatures (SHA-256, HMAC-SHA1), SM2/SM3/SM4, and the
//! mobile-payment message format built on them.

pub mod gateway_sign;
pub mod mobile_pay;
pub mod sm;
