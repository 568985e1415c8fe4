//! Sign-in (9001) as the platform defines it: the input, and where the answer
//! carries the `sign_no`, in the national shape or a region's
//! (`sign_in.style`). (When the SDK signs in and how it keeps the sign_no is
//! `call::signin`.)

use crate::config::{Config, SignIn};
use crate::variant::SignInStyle;
use md5::{Digest, Md5};
use serde_json::{json, Value};

/// The business input of 9001 for an operator, as it is journaled: the Guangzhou
/// password and its time are put in only when it is sent ([`put_password`]).
pub fn input(cfg: &Config, opter: &str) -> Value {
    let inst = &cfg.institution;
    match cfg.sign_in.style {
        SignInStyle::National => json!({"signIn": {"opter_no": opter, "mac": inst.mac, "ip": inst.ip}}),
        SignInStyle::Guangzhou => json!({"data": {
            "mac": inst.mac, "ip": inst.ip, "userid": cfg.sign_in.userid, "opter_no": opter,
            "password": "", "currenttime": ""
        }}),
    }
}

/// Guangzhou: `currenttime` (local, yyyyMMddHHmmss) and `password`, the
/// upper-case hex MD5 of that time followed by the account's password, so what
/// crosses the network changes every second.
pub fn put_password(s: &SignIn, input: &mut Value, now: chrono::NaiveDateTime) {
    let Some(data) = input.get_mut("data").and_then(Value::as_object_mut) else { return };
    let time = now.format("%Y%m%d%H%M%S").to_string();
    data.insert("password".into(), Value::String(password_digest(&time, s.password.expose())));
    data.insert("currenttime".into(), Value::String(time));
}

/// Upper-case hex MD5 of `time` + `password` (UTF-8).
pub fn password_digest(time: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(time.as_bytes());
    h.update(password.as_bytes());
    hex::encode_upper(h.finalize())
}

/// The `sign_no` of a 9001 response: `output.signinoutb.sign_no` (national) or
/// `output.result.sign_no` (Guangzhou).
pub fn sign_no_of(style: SignInStyle, response: &Value) -> Option<String> {
    let at = match style {
        SignInStyle::National => "/output/signinoutb/sign_no",
        SignInStyle::Guangzhou => "/output/result/sign_no",
    };
    match response.pointer(at)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_no_from_response() {
        let r = json!({"infcode":0,"output":{"signinoutb":{"sign_no":"123456","sign_time":"2026-11-27 08:00:00"}}});
        assert_eq!(sign_no_of(SignInStyle::National, &r).as_deref(), Some("123456"));
        assert_eq!(sign_no_of(SignInStyle::Guangzhou, &r), None);
        assert_eq!(sign_no_of(SignInStyle::National, &json!({"infcode":0})), None);
        let r = json!({"infcode":0,"output":{"result":{"sign_no":"GZ0001"}}});
        assert_eq!(sign_no_of(SignInStyle::Guangzhou, &r).as_deref(), Some("GZ0001"));
    }

    #[test]
    fn the_password_digest_is_upper_hex_md5_of_time_then_password() {
        // MD5("20261130080102" + "abc"), computed independently (Python hashlib).
        assert_eq!(password_digest("20261130080102", "abc"), MD5_VECTOR);
        // RFC 1321's vector for "abc", split anywhere.
        assert_eq!(password_digest("", "abc"), "900150983CD24FB0D6963F7D28E17F72");
        assert_eq!(password_digest("a", "bc"), "900150983CD24FB0D6963F7D28E17F72");
    }

    const MD5_VECTOR: &str = "F8104CF9165596FC0F08A8D146AEF870";
}
