//! Sign-in (9001) as the platform defines it: the input, and where the answer
//! carries the `sign_no`. (When the SDK signs in and how it keeps the sign_no is
//! `call::signin`.)

use crate::config::Institution;
use serde_json::{json, Value};

/// The business input of 9001 for an operator.
pub fn input(inst: &Institution, opter: &str) -> Value {
    json!({"signIn": {"opter_no": opter, "mac": inst.mac, "ip": inst.ip}})
}

/// `output.signinoutb.sign_no` of a 9001 response.
pub fn sign_no_of(response: &Value) -> Option<String> {
    let s = response.pointer("/output/signinoutb/sign_no")?;
    match s {
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
        assert_eq!(sign_no_of(&r).as_deref(), Some("123456"));
        assert_eq!(sign_no_of(&json!({"infcode":0})), None);
    }
}
