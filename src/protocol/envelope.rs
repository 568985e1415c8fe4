//! The request envelope (docs/protocol.md, "Request envelope"): the HIS gives the business `input` and,
//! optionally, per-call overrides; everything else comes from config and state.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::protocol::msgid;
use serde_json::{Map, Value};

/// Envelope fields a caller may set for one call, with their length limits
/// (characters). `msgid` has its own rule.
const OVERRIDABLE: &[(&str, usize)] = &[
    ("insuplc_admdvs", 6),
    ("mdtrtarea_admvs", 6),
    ("recer_sys_code", 10),
    ("opter", 30),
    ("opter_name", 50),
    ("opter_type", 3),
    ("msgid", msgid::MSGID_LEN),
    ("cainfo", 1024),
    ("signtype", 10),
    ("dev_no", 100),
    ("dev_safe_info", 2000),
];

/// A caller's input, split into the business object and the envelope overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct CallInput {
    pub business: Value,
    pub overrides: Map<String, Value>,
}

impl CallInput {
    /// A business input built by the SDK itself, with no envelope overrides.
    pub fn of(business: Value) -> CallInput {
        CallInput { business, overrides: Map::new() }
    }

    /// Parses the caller's JSON text (docs/api_reference.md, `mi_call_sync`).
    pub fn parse(text: &str) -> Result<CallInput> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| Error::invalid(format!("input is not valid JSON: {e}")))?;
        let Value::Object(mut obj) = v else {
            return Err(Error::invalid("input must be a JSON object, e.g. {\"data\":{...}}"));
        };
        let Some(business) = obj.remove("input") else {
            return Ok(CallInput { business: Value::Object(obj), overrides: Map::new() });
        };
        if !business.is_object() {
            return Err(Error::invalid("input.input must be a JSON object (the business input)"));
        }
        for (k, v) in &obj {
            let Some(&(_, max)) = OVERRIDABLE.iter().find(|(name, _)| name == k) else {
                return Err(Error::invalid(format!(
                    "unknown envelope field \"{k}\" beside \"input\"; allowed: {}",
                    OVERRIDABLE.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )));
            };
            let Some(s) = v.as_str() else {
                return Err(Error::invalid(format!("envelope field \"{k}\" must be a string")));
            };
            if s.chars().count() > max {
                return Err(Error::invalid(format!("envelope field \"{k}\" is longer than {max} characters")));
            }
            if k == "msgid" && !msgid::is_well_formed(s) {
                return Err(Error::invalid(
                    "msgid must be 30 letters and digits: institution code (12) + yyyyMMddHHmmss + 4 digits",
                ));
            }
            if k == "opter_type" && !["1", "2", "3"].contains(&s) {
                return Err(Error::invalid("opter_type must be \"1\", \"2\" or \"3\""));
            }
        }
        Ok(CallInput { business, overrides: obj })
    }

    /// A caller-given msgid, if any.
    /// The operator the call is made as: its override, or the configured one.
    pub fn opter<'a>(&'a self, cfg: &'a Config) -> &'a str {
        self.field("opter", &cfg.institution.opter)
    }

    pub fn msgid(&self) -> Option<&str> {
        self.overrides.get("msgid").and_then(Value::as_str)
    }

    fn field<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.overrides.get(key).and_then(Value::as_str).unwrap_or(default)
    }
}

/// Whether the business input names a person anywhere (then the platform needs the
/// insured person's division, `insuplc_admdvs`).
fn names_psn_no(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.iter().any(|(k, v)| (k == "psn_no" && v.as_str().is_some_and(|s| !s.is_empty())) || names_psn_no(v))
        }
        Value::Array(a) => a.iter().any(names_psn_no),
        _ => false,
    }
}

/// What makes an envelope impossible to build, checked before anything is
/// journaled or sent (a sign-in included).
pub fn check(cfg: &Config, call: &CallInput) -> Result<()> {
    let insuplc = call.field("insuplc_admdvs", &cfg.institution.insuplc_admdvs);
    if insuplc.is_empty() && names_psn_no(&call.business) {
        return Err(Error::invalid(
            "insuplc_admdvs is required when the input names a psn_no: pass it beside \"input\" (from 1101's insuinfo[].insuplc_admdvs) or set institution.insuplc_admdvs",
        ));
    }
    Ok(())
}

/// The fields of an envelope that are set when it is sent: `msgid` (a resend of a
/// query carries a fresh one), `inf_time` (now) and `sign_no` (today's). Empty in
/// an envelope journaled to be sent later.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendTime<'a> {
    pub msgid: &'a str,
    pub inf_time: &'a str,
    pub sign_no: &'a str,
}

/// Builds the envelope in the platform's field order.
pub fn build(cfg: &Config, infno: &str, call: &CallInput, at: &SendTime<'_>) -> Result<Map<String, Value>> {
    check(cfg, call)?;
    let i = &cfg.institution;
    let insuplc = call.field("insuplc_admdvs", &i.insuplc_admdvs);
    let s = |v: &str| Value::String(v.to_string());
    let mut m = Map::new();
    m.insert("infno".into(), s(infno));
    m.insert("msgid".into(), s(at.msgid));
    m.insert("mdtrtarea_admvs".into(), s(call.field("mdtrtarea_admvs", &i.mdtrtarea_admvs)));
    m.insert("insuplc_admdvs".into(), s(insuplc));
    m.insert("recer_sys_code".into(), s(call.field("recer_sys_code", &i.recer_sys_code)));
    m.insert("dev_no".into(), s(call.field("dev_no", "")));
    m.insert("dev_safe_info".into(), s(call.field("dev_safe_info", "")));
    m.insert("cainfo".into(), s(call.field("cainfo", "")));
    m.insert("signtype".into(), s(call.field("signtype", "")));
    m.insert("infver".into(), s(&i.infver));
    m.insert("opter_type".into(), s(call.field("opter_type", &i.opter_type)));
    m.insert("opter".into(), s(call.field("opter", &i.opter)));
    m.insert("opter_name".into(), s(call.field("opter_name", &i.opter_name)));
    m.insert("inf_time".into(), s(at.inf_time));
    m.insert("fixmedins_code".into(), s(&i.fixmedins_code));
    m.insert("fixmedins_name".into(), s(&i.fixmedins_name));
    m.insert("sign_no".into(), s(at.sign_no));
    m.insert("input".into(), call.business.clone());
    Ok(m)
}

/// The envelope as JSON text.
pub fn text(cfg: &Config, infno: &str, call: &CallInput, at: &SendTime<'_>) -> Result<String> {
    Ok(serde_json::to_string(&build(cfg, infno, call, at)?).expect("a JSON map always serialises"))
}

/// Sets the send-time fields of a journaled envelope, in place (the field order
/// stays the platform's).
pub fn refresh(envelope: &str, at: &SendTime<'_>) -> Result<String> {
    let mut v: Map<String, Value> =
        serde_json::from_str(envelope).map_err(|e| Error::journal(format!("journaled envelope is damaged: {e}")))?;
    for (k, value) in [("msgid", at.msgid), ("inf_time", at.inf_time), ("sign_no", at.sign_no)] {
        v.insert(k.into(), Value::String(value.into()));
    }
    Ok(serde_json::to_string(&v).expect("a JSON map always serialises"))
}

/// The opter of an envelope, to find the sign-in it needs.
pub fn opter_of(envelope: &str) -> Option<String> {
    let v: Value = serde_json::from_str(envelope).ok()?;
    v.get("opter")?.as_str().map(str::to_owned)
}

pub fn format_inf_time(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    const M: SendTime = SendTime { msgid: "M", inf_time: "", sign_no: "" };

    fn cfg() -> Config {
        Config::from_json(r#"{"institution":{"fixmedins_code":"H44030000001","fixmedins_name":"示例医院","mdtrtarea_admvs":"440300","opter":"0001","opter_name":"收费员"}}"#, Path::new(".")).unwrap()
    }

    #[test]
    fn plain_business_input() {
        let c = CallInput::parse(r#"{"data":{"certno":"1"}}"#).unwrap();
        let e = build(&cfg(), "1101", &c, &M).unwrap();
        assert_eq!(e["input"]["data"]["certno"], "1");
        assert_eq!(e["opter"], "0001");
        assert_eq!(e["recer_sys_code"], "YBXT");
        let keys: Vec<_> = e.keys().cloned().collect();
        assert_eq!(keys.first().unwrap(), "infno");
        assert_eq!(keys.last().unwrap(), "input");
        // Sent later: the send-time fields change in place, the order stays.
        let at = SendTime { msgid: "N", inf_time: "2026-11-30 09:00:00", sign_no: "S1" };
        let sent: Map<String, Value> =
            serde_json::from_str(&refresh(&serde_json::to_string(&e).unwrap(), &at).unwrap()).unwrap();
        assert_eq!(sent.keys().cloned().collect::<Vec<_>>(), keys);
        assert_eq!(
            (&sent["msgid"], &sent["inf_time"], &sent["sign_no"]),
            (&json!("N"), &json!("2026-11-30 09:00:00"), &json!("S1"))
        );
        assert_eq!(text(&cfg(), "1101", &c, &at).unwrap(), serde_json::to_string(&sent).unwrap());
    }

    #[test]
    fn overrides_apply_and_unknown_is_rejected() {
        let c =
            CallInput::parse(r#"{"input":{"data":{"psn_no":"P1"}},"insuplc_admdvs":"440100","opter":"0009"}"#).unwrap();
        let e = build(&cfg(), "2201", &c, &M).unwrap();
        assert_eq!(e["insuplc_admdvs"], "440100");
        assert_eq!(e["opter"], "0009");
        assert!(CallInput::parse(r#"{"input":{},"fixmedins_code":"X"}"#)
            .unwrap_err()
            .message
            .contains("fixmedins_code"));
        assert!(CallInput::parse(r#"{"input":{},"msgid":"short"}"#).is_err());
        assert!(CallInput::parse(r#"{"input":{},"opter":5}"#).is_err());
    }

    #[test]
    fn psn_no_needs_insuplc() {
        let c = CallInput::parse(r#"{"data":{"psn_no":"P1"}}"#).unwrap();
        assert!(build(&cfg(), "2201", &c, &M).unwrap_err().message.contains("insuplc_admdvs"));
        let c = CallInput::parse(r#"{"feedetail":[{"psn_no":"P1"}]}"#).unwrap();
        assert!(build(&cfg(), "2204", &c, &M).is_err());
    }

    #[test]
    fn non_objects_are_rejected() {
        for t in ["[]", "1", "\"x\"", "{", "", "{\"input\":[]}"] {
            assert!(CallInput::parse(t).is_err(), "{t}");
        }
    }
}
