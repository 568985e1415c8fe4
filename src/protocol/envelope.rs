//! The request envelope (docs/protocol.md, "Request envelope"): the HIS gives the business `input` and,
//! optionally, per-call overrides; everything else comes from config and state.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::protocol::{msgid, wire};
use crate::variant::{self, Cainfo};
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

/// The member of a call's input that carries its extra envelope fields.
const EXTRA: &str = "extra";

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
        if let Some(extra) = obj.get(EXTRA) {
            check_extra(extra)?;
        }
        for (k, v) in obj.iter().filter(|(k, _)| *k != EXTRA) {
            let Some(&(_, max)) = OVERRIDABLE.iter().find(|(name, _)| name == k) else {
                return Err(Error::invalid(format!(
                    "unknown envelope field \"{k}\" beside \"input\"; allowed: {}, and \"extra\" for fields of your region",
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

    /// The call's extra envelope fields (checked by `parse`).
    fn extra(&self) -> impl Iterator<Item = (&String, &str)> {
        self.overrides
            .get(EXTRA)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s)))
    }
}

/// A call's `extra`: an object of string fields, named and sized as the config's
/// `envelope.extra` must be.
fn check_extra(extra: &Value) -> Result<()> {
    let Some(fields) = extra.as_object() else {
        return Err(Error::invalid(
            "\"extra\" must be an object of envelope fields, e.g. {\"recer_admdvs\":\"440100\"}",
        ));
    };
    for (name, v) in fields {
        if let Some(why) = variant::extra_name_problem(name, false) {
            return Err(Error::invalid(format!("extra envelope field: {why}")));
        }
        let Some(s) = v.as_str() else {
            return Err(Error::invalid(format!("extra envelope field \"{name}\" must be a string")));
        };
        if s.chars().count() > variant::MAX_EXTRA_VALUE {
            return Err(Error::invalid(format!(
                "extra envelope field \"{name}\" is longer than {} characters",
                variant::MAX_EXTRA_VALUE
            )));
        }
    }
    Ok(())
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
    if let Some((name, why)) =
        call.extra().find_map(|(n, _)| variant::extra_name_problem(n, cfg.gateway.encrypt_input).map(|w| (n, w)))
    {
        return Err(Error::invalid(format!("extra envelope field \"{name}\": {why}")));
    }
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
    if cfg.envelope.cainfo == Cainfo::Sm3OfInput && !call.overrides.contains_key("signtype") {
        // cainfo itself is computed over the input as sent (`wire`).
        m.insert("signtype".into(), s(wire::SM3));
    }
    // The config's first (a `{field}` copies a field set above), then the call's,
    // which win.
    for (name, value) in &cfg.envelope.extra {
        let value = match variant::copied_field(value) {
            Some(f) => m.get(f).cloned().unwrap_or_else(|| s("")),
            None => s(value),
        };
        m.insert(name.clone(), value);
    }
    for (name, value) in call.extra() {
        m.insert(name.clone(), s(value));
    }
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
    fn extra_fields_from_config_and_call() {
        let mut c = cfg();
        c.envelope.extra.insert("recer_admdvs".into(), "{mdtrtarea_admvs}".into());
        c.envelope.extra.insert("app_id".into(), "APP1".into());
        let call = CallInput::parse(r#"{"input":{"data":{}},"mdtrtarea_admvs":"440100"}"#).unwrap();
        let e = build(&c, "1101", &call, &M).unwrap();
        // Copied after the call's override; added before the input.
        assert_eq!((&e["recer_admdvs"], &e["app_id"]), (&json!("440100"), &json!("APP1")));
        assert_eq!(e.keys().next_back().unwrap(), "input");
        // The call's own win over the config's.
        let call =
            CallInput::parse(r#"{"input":{"data":{}},"extra":{"recer_admdvs":"440000","enc_type":"N"}}"#).unwrap();
        let e = build(&c, "1101", &call, &M).unwrap();
        assert_eq!((&e["recer_admdvs"], &e["enc_type"]), (&json!("440000"), &json!("N")));
        // Without any: the national envelope, nothing added.
        let e = build(&cfg(), "1101", &call_of(r#"{"data":{}}"#), &M).unwrap();
        assert_eq!(e.len(), variant::SDK_FIELDS.len() + 1);
    }

    fn call_of(t: &str) -> CallInput {
        CallInput::parse(t).unwrap()
    }

    #[test]
    fn bad_extra_fields_are_refused_with_their_name() {
        let long = "x".repeat(crate::variant::MAX_EXTRA_VALUE + 1);
        for (extra, says) in [
            (r#""x""#.to_string(), "must be an object"),
            (r#"{"msgid":"M"}"#.into(), "msgid"),
            (r#"{"input":"x"}"#.into(), "input"),
            (r#"{"Recer":"x"}"#.into(), "Recer"),
            (r#"{"recer_admdvs":440100}"#.into(), "must be a string"),
            (format!(r#"{{"recer_admdvs":"{long}"}}"#), "longer than 1024"),
        ] {
            let e = CallInput::parse(&format!(r#"{{"input":{{}},"extra":{extra}}}"#)).unwrap_err();
            assert_eq!(e.code, crate::error::Code::InvalidArgument, "{extra}");
            assert!(e.message.contains(says), "{extra}: {}", e.message);
        }
        // app_id and enc_type are the SDK's own once it encrypts the input.
        let mut c = cfg();
        c.gateway.encrypt_input = true;
        let call = call_of(r#"{"input":{},"extra":{"app_id":"A"}}"#);
        assert!(check(&c, &call).unwrap_err().message.contains("encrypt_input"));
    }

    #[test]
    fn cainfo_signtype_and_recer_sys_code_overrides_are_bounded() {
        for (field, max) in [("cainfo", 1024), ("signtype", 10), ("recer_sys_code", 10)] {
            let ok = format!(r#"{{"input":{{}},"{field}":"{}"}}"#, "A".repeat(max));
            assert!(CallInput::parse(&ok).is_ok(), "{field}");
            let long = format!(r#"{{"input":{{}},"{field}":"{}"}}"#, "A".repeat(max + 1));
            let e = CallInput::parse(&long).unwrap_err();
            assert!(e.message.contains(field) && e.message.contains(&max.to_string()), "{}", e.message);
        }
        for code in ["LXXT", "GSXT", "HIS", "MK"] {
            let call = call_of(&format!(r#"{{"input":{{}},"recer_sys_code":"{code}"}}"#));
            assert_eq!(build(&cfg(), "2201", &call, &M).unwrap()["recer_sys_code"], code);
        }
        // The SM3 mode sets signtype unless the call gives its own.
        let mut c = cfg();
        c.envelope.cainfo = Cainfo::Sm3OfInput;
        assert_eq!(build(&c, "1101", &call_of(r#"{"data":{}}"#), &M).unwrap()["signtype"], "SM3");
        let call = call_of(r#"{"input":{},"signtype":"SM2","cainfo":"X"}"#);
        let e = build(&c, "2207", &call, &M).unwrap();
        assert_eq!((&e["signtype"], &e["cainfo"]), (&json!("SM2"), &json!("X")));
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
