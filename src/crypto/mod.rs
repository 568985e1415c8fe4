//! Cryptography: the gateway signatures (SHA-256, HMAC-SHA1) and, later, SM2/SM3/SM4.

pub mod gateway_sign;
