//! The last step before an envelope leaves: what must never be journaled (the
//! Guangzhou sign-in password) is put in, and what is computed over the input as
//! it is sent (an SM3 `cainfo`) is computed. The journal keeps the envelope
//! without either; every send completes it afresh.

use crate::config::Config;
use crate::crypto::sm::{sm3, to_hex_upper};
use crate::protocol::signin;
use crate::protocol::transactions::{is_file_transfer, SIGN_IN};
use crate::variant::{Cainfo, SignInStyle};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The `signtype` of an SM3 `cainfo`.
pub const SM3: &str = "SM3";

/// The envelope as it goes on the wire, sent at local time `now`. The `cainfo` of
/// 9101 and 9102 is left to the file channel, which puts the file in and takes
/// its own notes out first ([`sign_input`]).
pub fn complete<'a>(cfg: &Config, infno: &str, envelope: &'a str, now: chrono::NaiveDateTime) -> Cow<'a, str> {
    let password = infno == SIGN_IN && cfg.sign_in.style == SignInStyle::Guangzhou;
    let digest = cfg.envelope.cainfo == Cainfo::Sm3OfInput && !is_file_transfer(infno);
    if !password && !digest {
        return Cow::Borrowed(envelope);
    }
    // A journaled envelope the SDK wrote always parses; one that does not is
    // sent as it is, and the platform refuses it.
    let Ok(mut env) = serde_json::from_str::<Map<String, Value>>(envelope) else {
        return Cow::Borrowed(envelope);
    };
    if password {
        if let Some(input) = env.get_mut("input") {
            signin::put_password(&cfg.sign_in, input, now);
        }
    }
    if digest {
        sign_input(&mut env);
    }
    Cow::Owned(serde_json::to_string(&env).expect("a JSON map always serialises"))
}

/// Sets `cainfo` to the upper-case hex SM3 of the `input` JSON exactly as it is
/// serialised into the envelope, unless the caller gave a `cainfo` of its own
/// (Hebei puts the patient's encrypted password there), or `signtype` is not SM3.
pub fn sign_input(env: &mut Map<String, Value>) {
    let given = env.get("cainfo").and_then(Value::as_str).is_some_and(|c| !c.is_empty());
    if given || env.get("signtype").and_then(Value::as_str) != Some(SM3) {
        return;
    }
    let input = env.get("input").map(|i| serde_json::to_string(i).expect("JSON serialises")).unwrap_or_default();
    env.insert("cainfo".into(), Value::String(to_hex_upper(&sm3(input.as_bytes()))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::envelope::{self, CallInput, SendTime};
    use std::path::Path;

    fn cfg(patch: &str) -> Config {
        Config::from_json(
            &format!(
                r#"{{"institution":{{"fixmedins_code":"H44010000001","fixmedins_name":"示例医院","mdtrtarea_admvs":"440100","opter":"0001","opter_name":"收费员","mac":"11-11-11-11-11","ip":"10.0.0.8"}}{patch}}}"#
            ),
            Path::new("."),
        )
        .unwrap()
    }

    fn now() -> chrono::NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap().and_hms_opt(8, 1, 2).unwrap()
    }

    fn sent(c: &Config, infno: &str, input: &str) -> (String, Map<String, Value>) {
        let call = CallInput::parse(input).unwrap();
        let journaled = envelope::text(c, infno, &call, &SendTime { msgid: "M", ..Default::default() }).unwrap();
        let wire = complete(c, infno, &journaled, now()).into_owned();
        (journaled, serde_json::from_str(&wire).unwrap())
    }

    #[test]
    fn national_envelopes_leave_as_journaled() {
        let c = cfg("");
        let call = CallInput::parse(r#"{"data":{"x":"1"}}"#).unwrap();
        let text = envelope::text(&c, "1101", &call, &SendTime::default()).unwrap();
        assert!(matches!(complete(&c, "1101", &text, now()), Cow::Borrowed(_)));
    }

    #[test]
    fn cainfo_is_the_sm3_of_the_input_as_sent() {
        let c = cfg(r#","region":"guangzhou","sign_in":{"userid":"u1","password":"pw"}"#);
        let (journaled, env) =
            sent(&c, "1101", r#"{"data":{"psn_cert_type":"02","certno":"44010019900101123X","姓名":"张三"}}"#);
        assert!(journaled.contains(r#""cainfo":"""#), "journaled without it: {journaled}");
        assert_eq!(env["signtype"], SM3);
        assert_eq!(env["recer_admdvs"], "440100");
        let wire = serde_json::to_string(&env).unwrap();
        let input_text = &wire[wire.find(r#""input":"#).unwrap() + 8..wire.len() - 1];
        let want = to_hex_upper(&sm3(input_text.as_bytes()));
        assert_eq!(env["cainfo"], want.as_str());
        assert_eq!(want.len(), 64);
        assert!(want.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        // A caller's cainfo (an encrypted card password) wins.
        let (_, env) = sent(&c, "2207", r#"{"input":{"data":{"x":"1"}},"cainfo":"ENC-PASSWORD"}"#);
        assert_eq!(env["cainfo"], "ENC-PASSWORD");
        // 9101 and 9102 are left to the file channel.
        for infno in ["9101", "9102"] {
            let (_, env) = sent(&c, infno, r#"{"fsUploadIn":{"filename":"a.zip"}}"#);
            assert_eq!(env["cainfo"], "", "{infno}");
        }
    }

    #[test]
    fn the_guangzhou_password_is_only_on_the_wire() {
        let c = cfg(r#","region":"guangzhou","sign_in":{"userid":"u1","password":"PLAIN-pw"}"#);
        let input = serde_json::to_string(&signin::input(&c, "0001")).unwrap();
        let (journaled, env) = sent(&c, SIGN_IN, &input);
        assert!(!journaled.contains("PLAIN-pw"));
        let data = &env["input"]["data"];
        assert_eq!(data["currenttime"], "20261130080102");
        assert_eq!(data["password"], signin::password_digest("20261130080102", "PLAIN-pw").as_str());
        assert_eq!(data["userid"], "u1");
        assert_eq!(data["opter_no"], "0001");
        // The digest covers the password that was sent.
        let wire = serde_json::to_string(&env).unwrap();
        assert!(!wire.contains("PLAIN-pw"));
        let input_text = serde_json::to_string(&env["input"]).unwrap();
        assert_eq!(env["cainfo"], to_hex_upper(&sm3(input_text.as_bytes())).as_str());
    }
}
