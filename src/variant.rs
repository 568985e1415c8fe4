//! Province variants one SDK expresses by configuration, not forks
//! (docs/regions/): the 9001 shape, extra envelope fields, an SDK-computed
//! `cainfo`, and where each transaction is posted. The national behaviour is the
//! default of every key; a region preset ([`crate::region`]) only sets these keys.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a transaction is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlStyle {
    /// Every transaction to `gateway.url` (files beside it).
    #[default]
    Single,
    /// `gateway.url/{infno}`, 9101 and 9102 included (Guangzhou).
    AppendInfno,
    /// `gateway.url` + the transaction's own path from `gateway.paths` (Hebei, Inner Mongolia).
    PerInfno,
}

impl UrlStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            UrlStyle::Single => "single",
            UrlStyle::AppendInfno => "append_infno",
            UrlStyle::PerInfno => "per_infno",
        }
    }
}

/// The shape of the 9001 sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInStyle {
    /// `signIn{opter_no, mac, ip}`, answered at `output.signinoutb.sign_no`.
    #[default]
    National,
    /// `data{mac, ip, userid, opter_no, password, currenttime}`, answered at
    /// `output.result.sign_no`.
    Guangzhou,
}

impl SignInStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInStyle::National => "national",
            SignInStyle::Guangzhou => "guangzhou",
        }
    }
}

/// What the SDK puts in `cainfo` and `signtype` when the caller does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cainfo {
    /// Both empty.
    #[default]
    None,
    /// `signtype` "SM3", `cainfo` the upper-case hex SM3 of the `input` JSON as sent.
    Sm3OfInput,
}

/// The `envelope` section of the config.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Envelope {
    /// Fields added to every request: name -> value. A value `{field}` copies a
    /// field the SDK sets (e.g. `{mdtrtarea_admvs}`), after the call's overrides.
    pub extra: BTreeMap<String, String>,
    pub cainfo: Cainfo,
}

/// The longest value of an extra envelope field: the longest standard field but
/// `dev_safe_info` is 1024 (`cainfo`); names of divisions and systems are short.
pub const MAX_EXTRA_VALUE: usize = 1024;
/// The longest name of an extra envelope field.
pub const MAX_EXTRA_NAME: usize = 30;

/// Why an extra field's name cannot be used; `None` when it can.
pub fn extra_name_problem(name: &str, encrypt_input: bool) -> Option<String> {
    if name.is_empty()
        || name.len() > MAX_EXTRA_NAME
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Some(format!("\"{name}\" is not a field name (1 to {MAX_EXTRA_NAME} lower-case letters, digits, _)"));
    }
    if crate::variant::SDK_FIELDS.contains(&name) || name == "input" {
        return Some(format!("\"{name}\" is a field the SDK sets; use its own key or per-call override"));
    }
    if encrypt_input && (name == "app_id" || name == "enc_type") {
        return Some(format!("\"{name}\" is set by the SDK when gateway.encrypt_input is true"));
    }
    None
}

/// The standard field a value `{field}` copies, if it is one.
pub fn copied_field(value: &str) -> Option<&str> {
    value.strip_prefix('{')?.strip_suffix('}')
}

/// The fields the SDK sets in every envelope (beside `input`): no extra field
/// (`envelope.extra`, a call's `extra`) may take one of these names.
pub const SDK_FIELDS: &[&str] = &[
    "infno",
    "msgid",
    "mdtrtarea_admvs",
    "insuplc_admdvs",
    "recer_sys_code",
    "dev_no",
    "dev_safe_info",
    "cainfo",
    "signtype",
    "infver",
    "opter_type",
    "opter",
    "opter_name",
    "inf_time",
    "fixmedins_code",
    "fixmedins_name",
    "sign_no",
];
