//! What the platform checks before it looks at a transaction: the gateway's
//! signature and clock window, and the envelope's fields, formats and msgid.

use crate::{Profile, SimConfig};
use base64::Engine;
use chrono::{Local, NaiveDateTime};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Looks up a header, case-insensitively.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Checks the gateway profile's headers (and for csb the URL's `query`, the text
/// after `?`). `now_ms` is the simulator's clock. Returns the csb `_api_nonce`, if
/// one was sent, for the caller to refuse a replay.
pub fn gateway(
    cfg: &SimConfig,
    headers: &[(String, String)],
    query: &str,
    now_ms: i64,
) -> Result<Option<String>, String> {
    let window_ms = cfg.time_window_s * 1000;
    match cfg.profile {
        Profile::Plain => Ok(None),
        Profile::Tif => {
            let get = |n: &str| header(headers, n).ok_or_else(|| format!("网关校验失败: 缺少请求头 {n}"));
            let (id, ts, nonce, sig) =
                (get("x-tif-paasid")?, get("x-tif-timestamp")?, get("x-tif-nonce")?, get("x-tif-signature")?);
            if id != cfg.paas_id {
                return Err(format!("网关校验失败: 未知的 paasid {id}"));
            }
            let t: i64 = ts.parse().map_err(|_| "网关校验失败: x-tif-timestamp 不是秒级时间戳".to_string())?;
            if (t * 1000 - now_ms).abs() > window_ms {
                return Err("签名时间戳超时: x-tif-timestamp 与平台时间相差过大".into());
            }
            if nonce.is_empty() {
                return Err("网关校验失败: x-tif-nonce 为空".into());
            }
            let mut h = Sha256::new();
            for p in [ts, cfg.paas_token.as_str(), nonce, ts] {
                h.update(p.as_bytes());
            }
            if hex_lower(&h.finalize()) != sig {
                return Err("网关校验失败: x-tif-signature 签名不正确".into());
            }
            Ok(None)
        }
        Profile::Csb => csb(cfg, headers, query, now_ms),
    }
}

/// What a CSB gateway checks: the four required `_api_*` headers, the clock, and
/// `_api_signature` over every `_api_*` header received (but the signature and the
/// unsigned `_api_sign_algorithm`) plus the query parameters, decoded, sorted by
/// name then value, as the Alibaba CSB client signs them.
fn csb(cfg: &SimConfig, headers: &[(String, String)], query: &str, now_ms: i64) -> Result<Option<String>, String> {
    let get = |n: &str| header(headers, n).ok_or_else(|| format!("CSB校验失败: 缺少请求头 {n}"));
    let (name, _, ak, ts, sig) = (
        get("_api_name")?,
        get("_api_version")?,
        get("_api_access_key")?,
        get("_api_timestamp")?,
        get("_api_signature")?,
    );
    if name != cfg.api_name || ak != cfg.access_key {
        return Err("CSB校验失败: _api_name 或 _api_access_key 不正确".into());
    }
    let t: i64 = ts.parse().map_err(|_| "CSB校验失败: _api_timestamp 不是毫秒时间戳".to_string())?;
    if (t - now_ms).abs() > cfg.time_window_s * 1000 {
        return Err("签名时间戳超时".into());
    }
    if let Some(alg) = header(headers, "_api_sign_algorithm").filter(|a| *a != "HmacSHA1") {
        return Err(format!("CSB校验失败: 不支持的签名算法 {alg}"));
    }
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .filter(|(k, _)| k.starts_with("_api_") && k != "_api_signature" && k != "_api_sign_algorithm")
        .collect();
    pairs.extend(query_pairs(query)?);
    pairs.sort();
    let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(cfg.secret_key.as_bytes()).expect("any key length");
    mac.update(text.join("&").as_bytes());
    let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if want != sig {
        return Err("CSB校验失败: _api_signature 签名不正确".into());
    }
    Ok(header(headers, "_api_nonce").map(str::to_owned))
}

/// A query string's parameters, decoded as a form (`+` a space, `%XX` a byte).
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    let decode = |s: &str| -> Result<String, String> {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(hex.ok_or_else(|| format!("CSB校验失败: URL 参数编码错误 [{s}]"))?);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).map_err(|_| "CSB校验失败: URL 参数不是 UTF-8".to_string())
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Field name, maximum length in characters, and whether it may be empty.
const FIELDS: &[(&str, usize, bool)] = &[
    ("infno", 5, false),
    ("msgid", 30, false),
    ("mdtrtarea_admvs", 6, false),
    ("insuplc_admdvs", 6, true),
    ("recer_sys_code", 10, false),
    ("dev_no", 100, true),
    ("dev_safe_info", 2000, true),
    ("cainfo", 1024, true),
    ("signtype", 10, true),
    ("infver", 6, false),
    ("opter_type", 3, false),
    ("opter", 30, false),
    ("opter_name", 50, false),
    ("inf_time", 19, false),
    ("fixmedins_code", 12, false),
    ("fixmedins_name", 200, false),
    ("sign_no", 30, true),
];

/// Checks an envelope's fields (not the sign_no's validity nor msgid uniqueness,
/// which need the ledger).
pub fn envelope(cfg: &SimConfig, env: &Map<String, Value>, now: NaiveDateTime) -> Result<(), String> {
    for (name, max, may_be_empty) in FIELDS {
        let v = match env.get(*name) {
            None => return Err(format!("入参校验失败: 缺少字段 {name}")),
            Some(Value::String(s)) => s,
            Some(_) => return Err(format!("入参校验失败: 字段 {name} 应为字符串")),
        };
        if v.is_empty() && !may_be_empty {
            return Err(format!("入参校验失败: 字段 {name} 不能为空"));
        }
        if v.chars().count() > *max {
            return Err(format!("入参校验失败: 字段 {name} 超过最大长度 {max}"));
        }
    }
    let s = |k: &str| env[k].as_str().unwrap_or_default();
    let infno = s("infno");
    let ib = infno.as_bytes();
    if !(ib.len() == 4 || ib.len() == 5)
        || !ib[..4].iter().all(u8::is_ascii_digit)
        || (ib.len() == 5 && !ib[4].is_ascii_uppercase())
    {
        return Err(format!("交易编号[{infno}]格式不正确"));
    }
    let code = s("fixmedins_code");
    if !cfg.fixmedins_codes.iter().any(|c| c == code) {
        return Err(format!("定点医药机构编号[{code}]不存在或未开通"));
    }
    let msgid = s("msgid");
    if msgid.len() != 30 || !msgid.starts_with(code) {
        return Err("报文ID[msgid]格式不正确: 应为定点机构编号(12)+时间(14)+顺序号(4)".into());
    }
    if NaiveDateTime::parse_from_str(&msgid[12..26], "%Y%m%d%H%M%S").is_err()
        || !msgid[26..].bytes().all(|b| b.is_ascii_digit())
    {
        return Err("报文ID[msgid]格式不正确: 时间或顺序号无效".into());
    }
    let t = NaiveDateTime::parse_from_str(s("inf_time"), "%Y-%m-%d %H:%M:%S")
        .map_err(|_| "交易时间[inf_time]格式不正确, 应为 yyyy-MM-dd HH:mm:ss".to_string())?;
    if (t - now).num_seconds().abs() > cfg.time_window_s {
        return Err("交易时间[inf_time]与平台时间相差过大, 请校准系统时间".into());
    }
    if !is_division(s("mdtrtarea_admvs")) {
        return Err("就医地医保区划[mdtrtarea_admvs]格式不正确".into());
    }
    let insuplc = s("insuplc_admdvs");
    if !insuplc.is_empty() && !is_division(insuplc) {
        return Err("参保地医保区划[insuplc_admdvs]格式不正确".into());
    }
    if !["1", "2", "3"].contains(&s("opter_type")) {
        return Err("经办人类别[opter_type]不正确".into());
    }
    let input = env.get("input").ok_or("入参校验失败: 缺少字段 input")?;
    if !input.is_object() {
        return Err("入参校验失败: input 应为对象".into());
    }
    if insuplc.is_empty() && names_psn_no(input) {
        return Err("参保地医保区划[insuplc_admdvs]不能为空".into());
    }
    if infno != "9001" && s("sign_no").is_empty() {
        return Err("签到编号[sign_no]不能为空, 请先签到".into());
    }
    Ok(())
}

fn is_division(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

fn names_psn_no(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.iter().any(|(k, v)| (k == "psn_no" && v.as_str().is_some_and(|s| !s.is_empty())) || names_psn_no(v))
        }
        Value::Array(a) => a.iter().any(names_psn_no),
        _ => false,
    }
}

pub fn now_local() -> NaiveDateTime {
    Local::now().naive_local()
}
