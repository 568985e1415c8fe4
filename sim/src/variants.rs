//! Province variants the simulator can be (docs/regions/ of mi_sdk): which URLs
//! it serves, the 9001 shape, envelope fields it requires, and an SM3 `cainfo`
//! over the input. The national platform is the default of each; a simulator of
//! one variant refuses the others, as a real province's gateway would.

use crate::files;
use chrono::NaiveDateTime;
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Which URLs the platform serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Urls {
    /// The service path for all, the file paths for 9101 and 9102.
    #[default]
    Single,
    /// The service path + `/{infno}` for every transaction, files included.
    AppendInfno,
    /// One path per transaction: infno -> path.
    PerInfno(BTreeMap<String, String>),
}

impl Urls {
    pub fn parse(style: &str, paths: BTreeMap<String, String>) -> Option<Urls> {
        match style {
            "single" => Some(Urls::Single),
            "append_infno" => Some(Urls::AppendInfno),
            "per_infno" => Some(Urls::PerInfno(paths)),
            _ => None,
        }
    }
}

/// The 9001 shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignIn {
    /// `signIn{opter_no, mac, ip}` -> `output.signinoutb`.
    #[default]
    National,
    /// `data{mac, ip, userid, opter_no, password, currenttime}` -> `output.result`.
    Guangzhou,
}

#[derive(Debug, Clone, Default)]
pub struct Variant {
    pub urls: Urls,
    pub sign_in: SignIn,
    /// The Guangzhou login account and its password.
    pub userid: String,
    pub password: String,
    /// Envelope fields every request must carry, non-empty (`recer_admdvs`...).
    pub required_fields: Vec<String>,
    /// `signtype` must be SM3 and `cainfo` the hex SM3 of the input.
    pub sm3_cainfo: bool,
}

/// Which transactions a URL takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The service: any but the file transactions.
    Service,
    /// This transaction only.
    Only(String),
}

/// The route of a path, or `None` (a 404) when this variant serves no such URL.
pub fn route(urls: &Urls, path: &str) -> Option<Route> {
    match urls {
        Urls::Single => match path {
            files::UPLOAD_PATH => Some(Route::Only("9101".into())),
            files::DOWNLOAD_PATH => Some(Route::Only("9102".into())),
            p if p == crate::SERVICE_PATH => Some(Route::Service),
            _ => None,
        },
        Urls::AppendInfno => {
            let infno = path.strip_prefix(crate::SERVICE_PATH)?.strip_prefix('/')?;
            is_infno(infno).then(|| Route::Only(infno.to_string()))
        }
        Urls::PerInfno(paths) => paths.iter().find(|(_, p)| p.as_str() == path).map(|(i, _)| Route::Only(i.clone())),
    }
}

fn is_infno(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() == 4 || b.len() == 5)
        && b[..4].iter().all(u8::is_ascii_digit)
        && (b.len() == 4 || b[4].is_ascii_uppercase())
}

/// Checks the variant's envelope rules (after the national ones).
pub fn check_envelope(v: &Variant, env: &Map<String, Value>) -> Result<(), String> {
    for name in &v.required_fields {
        match env.get(name).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => {}
            _ => return Err(format!("入参校验失败: 缺少字段 {name}")),
        }
    }
    if v.sm3_cainfo {
        if env.get("signtype").and_then(Value::as_str) != Some("SM3") {
            return Err("签名类型[signtype]应为 SM3".into());
        }
        let input = env.get("input").map(Value::to_string).unwrap_or_default();
        let want = hex_upper(&sm3::Sm3::digest(input.as_bytes()));
        let got = env.get("cainfo").and_then(Value::as_str).unwrap_or_default();
        if !got.eq_ignore_ascii_case(&want) {
            return Err("数字签名信息[cainfo]校验失败: 应为 input 的 SM3 摘要".into());
        }
    }
    Ok(())
}

/// A Guangzhou 9001 input, checked (account, password digest, time) and put in the
/// national shape the ledger keeps its books in. National: as it is.
pub fn sign_in_input(v: &Variant, input: &Value, now: NaiveDateTime, window_s: i64) -> Result<Value, String> {
    if v.sign_in == SignIn::National {
        return Ok(input.clone());
    }
    const SHAPE: &str = "签到入参应为 data{mac, ip, userid, opter_no, password, currenttime}";
    let data = input.get("data").and_then(Value::as_object).ok_or(SHAPE)?;
    let get = |k: &str| data.get(k).and_then(Value::as_str).ok_or(SHAPE);
    let (mac, ip, userid, opter_no, password, time) =
        (get("mac")?, get("ip")?, get("userid")?, get("opter_no")?, get("password")?, get("currenttime")?);
    let t = NaiveDateTime::parse_from_str(time, "%Y%m%d%H%M%S")
        .map_err(|_| "登录时间[currenttime]格式不正确, 应为 yyyyMMddHHmmss".to_string())?;
    if (t - now).num_seconds().abs() > window_s {
        return Err("登录时间[currenttime]与平台时间相差过大".into());
    }
    if userid != v.userid || !password.eq_ignore_ascii_case(&password_digest(time, &v.password)) {
        return Err("登录账号或密码错误".into());
    }
    Ok(json!({"signIn": {"opter_no": opter_no, "mac": mac, "ip": ip}}))
}

/// The 9001 answer in the variant's shape (the ledger answers `signinoutb`).
pub fn sign_in_output(v: &Variant, output: Value) -> Value {
    match (v.sign_in, output) {
        (SignIn::Guangzhou, Value::Object(mut o)) => json!({"result": o.remove("signinoutb").unwrap_or(Value::Null)}),
        (_, o) => o,
    }
}

/// Upper-case hex MD5 of `time` + `password`: what a Guangzhou client sends as
/// its password.
pub fn password_digest(time: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(time.as_bytes());
    h.update(password.as_bytes());
    hex_upper(&h.finalize())
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_url_style_serves_only_its_urls() {
        let svc = crate::SERVICE_PATH;
        assert_eq!(route(&Urls::Single, svc), Some(Route::Service));
        assert_eq!(route(&Urls::Single, files::UPLOAD_PATH), Some(Route::Only("9101".into())));
        assert_eq!(route(&Urls::Single, &format!("{svc}/1101")), None);
        assert_eq!(route(&Urls::AppendInfno, &format!("{svc}/2203A")), Some(Route::Only("2203A".into())));
        assert_eq!(route(&Urls::AppendInfno, &format!("{svc}/9101")), Some(Route::Only("9101".into())));
        assert_eq!(route(&Urls::AppendInfno, svc), None);
        assert_eq!(route(&Urls::AppendInfno, files::UPLOAD_PATH), None);
        let per = Urls::PerInfno([("1101".to_string(), "/fsi/api/q".to_string())].into());
        assert_eq!(route(&per, "/fsi/api/q"), Some(Route::Only("1101".into())));
        assert_eq!(route(&per, svc), None);
    }
}
