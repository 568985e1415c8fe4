//! Sign-in (9001): one `sign_no` per operator per day, kept in the journal so a
//! restart does not sign in again. The SDK never signs out on its own.

use crate::config::Institution;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

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

/// The date a sign-in is good for: the local calendar day.
pub fn today() -> String {
    crate::protocol::now_local().format("%Y-%m-%d").to_string()
}

/// Today's sign_no per operator, in memory in front of the journal.
#[derive(Default)]
pub struct SignIns {
    by_opter: Mutex<HashMap<String, (String, String)>>,
}

impl SignIns {
    pub fn get(&self, opter: &str, date: &str) -> Option<String> {
        let m = self.by_opter.lock().unwrap_or_else(|p| p.into_inner());
        m.get(opter).filter(|(d, _)| d == date).map(|(_, s)| s.clone())
    }
    pub fn put(&self, opter: &str, date: &str, sign_no: &str) {
        let mut m = self.by_opter.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(opter.to_string(), (date.to_string(), sign_no.to_string()));
    }
    pub fn forget(&self, opter: &str) {
        let mut m = self.by_opter.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(opter);
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

    #[test]
    fn cache_is_per_day() {
        let s = SignIns::default();
        s.put("0001", "2026-11-27", "A");
        assert_eq!(s.get("0001", "2026-11-27").as_deref(), Some("A"));
        assert_eq!(s.get("0001", "2026-11-28"), None);
        assert_eq!(s.get("0002", "2026-11-27"), None);
    }
}
