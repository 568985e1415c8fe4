//! Province variants one SDK expresses by configuration, not forks
//! (docs/regions/): the 9001 shape, extra envelope fields, an SDK-computed
//! `cainfo`, and where each transaction is posted. The national behaviour is the
//! default of every key; a region preset ([`crate::region`]) only sets these keys.

use crate::config::{Config, Gateway};
use crate::error::{Error, Result};
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
    if crate::protocol::envelope::SDK_FIELDS.contains(&name) || name == "input" {
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

/// Checks the variant keys (called by the config's validation).
pub fn validate(cfg: &Config) -> Result<()> {
    let bad = |key: &str, why: String| Err(Error::config(format!("config key `{key}`: {why}")));
    for (name, value) in &cfg.envelope.extra {
        if let Some(why) = extra_name_problem(name, cfg.gateway.encrypt_input) {
            return bad("envelope.extra", why);
        }
        if value.chars().count() > MAX_EXTRA_VALUE {
            return bad(&format!("envelope.extra.{name}"), format!("is longer than {MAX_EXTRA_VALUE} characters"));
        }
        if let Some(f) = copied_field(value) {
            if !crate::protocol::envelope::SDK_FIELDS.contains(&f) {
                return bad(
                    &format!("envelope.extra.{name}"),
                    format!(
                        "\"{{{f}}}\" names no envelope field; use one of {}",
                        crate::protocol::envelope::SDK_FIELDS.join(", ")
                    ),
                );
            }
        }
    }
    let g = &cfg.gateway;
    if g.append_infno && g.url_style == UrlStyle::PerInfno {
        return bad(
            "gateway.append_infno",
            "is true while gateway.url_style is per_infno; keep one (append_infno is url_style \"append_infno\")"
                .into(),
        );
    }
    if g.url_style == UrlStyle::PerInfno && g.paths.is_empty() {
        return bad(
            "gateway.paths",
            "is empty while gateway.url_style is per_infno: map each infno to its path".into(),
        );
    }
    for (infno, path) in &g.paths {
        if infno != "*" && !crate::infno::is_valid(infno) {
            return bad("gateway.paths", format!("\"{infno}\" is not a transaction code (or * for the others)"));
        }
        if !(path.starts_with('/') || path.starts_with("http://") || path.starts_with("https://")) {
            return bad(
                &format!("gateway.paths.{infno}"),
                "must be a path starting with / (joined to gateway.url) or a whole http(s):// URL".into(),
            );
        }
    }
    let s = &cfg.sign_in;
    if s.style == SignInStyle::Guangzhou {
        if s.userid.is_empty() || s.userid.chars().count() > 30 {
            return bad("sign_in.userid", "the guangzhou sign-in needs the login account (1 to 30 characters)".into());
        }
        if s.password.is_empty() {
            return bad("sign_in.password", "the guangzhou sign-in needs the login account's password".into());
        }
    }
    Ok(())
}

/// The URL a transaction is posted to; `Err` names what is missing.
pub fn url_for(g: &Gateway, infno: &str) -> std::result::Result<String, String> {
    let base = g.url.trim();
    match effective_style(g) {
        UrlStyle::Single => Ok(base.to_string()),
        UrlStyle::AppendInfno => Ok(join(base, &format!("/{infno}"))),
        UrlStyle::PerInfno => match g.paths.get(infno).or_else(|| g.paths.get("*")) {
            Some(p) if p.starts_with('/') => Ok(join(base, p)),
            Some(url) => Ok(url.clone()),
            None => Err(format!(
                "gateway.url_style is per_infno and gateway.paths has no path for {infno} (nor a \"*\" entry)"
            )),
        },
    }
}

/// Where a file transaction goes when `files.*_url` is not set: in the single
/// style the platform's file path beside the service URL; otherwise where the
/// style puts it, the file path under `gateway.url` when per_infno maps none.
pub fn file_url(g: &Gateway, infno: &str, path: &str) -> String {
    match effective_style(g) {
        UrlStyle::Single => g.beside(path),
        UrlStyle::AppendInfno => url_for(g, infno).unwrap_or_default(),
        UrlStyle::PerInfno => {
            if g.paths.contains_key(infno) {
                url_for(g, infno).unwrap_or_default()
            } else {
                join(g.url.trim(), path)
            }
        }
    }
}

/// `base` with `tail` added to its path; a query string of `base` (`?k=v`, which a
/// csb gateway signs) stays at the end.
fn join(base: &str, tail: &str) -> String {
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    };
    let mut url = format!("{}{tail}", path.trim_end_matches('/'));
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The URL style in force: `append_infno: true` is the older name of `append_infno`.
pub fn effective_style(g: &Gateway) -> UrlStyle {
    if g.append_infno {
        UrlStyle::AppendInfno
    } else {
        g.url_style
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(patch: &str) -> Result<Config> {
        let base = r#"{"institution":{"fixmedins_code":"H44030000001","fixmedins_name":"示例医院","mdtrtarea_admvs":"440300","opter":"0001","opter_name":"收费员"}"#;
        Config::from_json(&format!("{base}{patch}}}"), Path::new("."))
    }

    #[test]
    fn the_national_behaviour_is_the_default() {
        let c = cfg("").unwrap();
        assert_eq!(effective_style(&c.gateway), UrlStyle::Single);
        assert_eq!(c.sign_in.style, SignInStyle::National);
        assert_eq!(c.envelope, Envelope::default());
        assert_eq!(url_for(&c.gateway, "9001").unwrap(), c.gateway.url);
    }

    #[test]
    fn the_three_url_styles() {
        let c = cfg(r#","gateway":{"url":"http://gw/hsa/fsi/api/rsfComIfsService/callService","append_infno":true}"#)
            .unwrap();
        assert_eq!(url_for(&c.gateway, "1101").unwrap(), "http://gw/hsa/fsi/api/rsfComIfsService/callService/1101");
        assert_eq!(c.upload_url(), "http://gw/hsa/fsi/api/rsfComIfsService/callService/9101");
        assert_eq!(c.download_url(), "http://gw/hsa/fsi/api/rsfComIfsService/callService/9102");
        let c = cfg(r#","gateway":{"url":"http://gw/x/","url_style":"append_infno"}"#).unwrap();
        assert_eq!(url_for(&c.gateway, "2207").unwrap(), "http://gw/x/2207");
        // A query string of the URL (a csb gateway signs it) stays at the end.
        let c = cfg(r#","gateway":{"url":"http://gw/x?a=1&b=2","url_style":"append_infno"}"#).unwrap();
        assert_eq!(url_for(&c.gateway, "2207").unwrap(), "http://gw/x/2207?a=1&b=2");
        let c = cfg(r#","gateway":{"url":"http://gw?k=v","url_style":"per_infno","paths":{"*":"/svc"}}"#).unwrap();
        assert_eq!(url_for(&c.gateway, "1101").unwrap(), "http://gw/svc?k=v");

        let c = cfg(
            r#","gateway":{"url":"http://gw/ebus/rio_fsi","url_style":"per_infno","paths":{"1101":"/fsi/api/fsiPsnInfoService/queryPsnInfo","9102":"https://files.example/dl"}}"#,
        )
        .unwrap();
        assert_eq!(
            url_for(&c.gateway, "1101").unwrap(),
            "http://gw/ebus/rio_fsi/fsi/api/fsiPsnInfoService/queryPsnInfo"
        );
        let e = url_for(&c.gateway, "2207").unwrap_err();
        assert!(e.contains("2207") && e.contains("gateway.paths"), "{e}");
        assert_eq!(c.download_url(), "https://files.example/dl");
        // Not mapped: the platform's file path under the base.
        assert_eq!(c.upload_url(), "http://gw/ebus/rio_fsi/fsi/api/fileupload/upload");
        let c = cfg(r#","gateway":{"url":"http://gw","url_style":"per_infno","paths":{"*":"/svc"}}"#).unwrap();
        assert_eq!(url_for(&c.gateway, "2207").unwrap(), "http://gw/svc");
        // A config that turns a per-path preset back to one URL keeps the preset's
        // table, unread: objects merge, so it could not empty it.
        let c = cfg(r#","region":"hebei","gateway":{"url":"http://gw/svc","url_style":"single"}"#).unwrap();
        assert_eq!(url_for(&c.gateway, "1101").unwrap(), "http://gw/svc");
    }

    #[test]
    fn bad_variant_keys_are_named() {
        for (patch, key) in [
            (r#","gateway":{"url_style":"per_infno"}"#, "gateway.paths"),
            (r#","gateway":{"url_style":"per_infno","paths":{"11x":"/x"}}"#, "gateway.paths"),
            (r#","gateway":{"url_style":"per_infno","paths":{"1101":"x"}}"#, "gateway.paths.1101"),
            (r#","gateway":{"url_style":"per_infno","append_infno":true,"paths":{"1101":"/x"}}"#, "append_infno"),
            (r#","gateway":{"url_style":"path"}"#, "gateway.url_style"),
            (r#","envelope":{"extra":{"msgid":"x"}}"#, "envelope.extra"),
            (r#","envelope":{"extra":{"Recer":"x"}}"#, "envelope.extra"),
            (r#","envelope":{"extra":{"recer_admdvs":"{nope}"}}"#, "envelope.extra.recer_admdvs"),
            (r#","envelope":{"extra":{"recer_admdvs":1}}"#, "envelope.extra.recer_admdvs"),
            (r#","envelope":{"cainfo":"md5"}"#, "envelope.cainfo"),
            (r#","sign_in":{"style":"guangzhou","password":"p"}"#, "sign_in.userid"),
            (r#","sign_in":{"style":"guangzhou","userid":"u"}"#, "sign_in.password"),
            (r#","sign_in":{"style":"gz"}"#, "sign_in.style"),
        ] {
            let e = cfg(patch).unwrap_err();
            assert_eq!(e.code, crate::error::Code::Config, "{patch}");
            assert!(e.message.contains(key), "{patch}: {}", e.message);
        }
        let long = "x".repeat(MAX_EXTRA_VALUE + 1);
        assert!(cfg(&format!(r#","envelope":{{"extra":{{"app_id":"{long}"}}}}"#)).is_err());
        assert!(cfg(r#","gateway":{"encrypt_input":false},"envelope":{"extra":{"app_id":"A","enc_type":"N"}}"#).is_ok());
    }
}
