//! Logging: log4rs with a rolling file in `log.dir` (or the hospital's own log4rs
//! YAML), and masking of personal data before anything about a patient is logged.

use crate::config::Config;
use crate::error::{Error, Result};
use log4rs::append::rolling_file::policy::compound::{
    roll::fixed_window::FixedWindowRoller, trigger::size::SizeTrigger, CompoundPolicy,
};
use log4rs::append::rolling_file::RollingFileAppender;
use log4rs::config::{Appender, Root};
use log4rs::encode::pattern::PatternEncoder;
use serde_json::Value;
use std::sync::{Mutex, OnceLock};

static HANDLE: OnceLock<Mutex<Option<log4rs::Handle>>> = OnceLock::new();

/// Starts (or re-points) logging for a config. The process has one logger, so a
/// second `mi_init` after `mi_shutdown` swaps its configuration.
pub fn init(cfg: &Config) -> Result<()> {
    let config = match cfg.log4rs_file() {
        Some(path) => {
            let raw = log4rs::config::load_config_file(&path, Default::default())
                .map_err(|e| Error::config(format!("config key `log.log4rs_file`: {}: {e}", path.display())))?;
            raw
        }
        None => {
            let level = cfg.log.level.filter();
            let dir = cfg.log_dir();
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::config(format!("config key `log.dir`: cannot create {}: {e}", dir.display())))?;
            let file = dir.join("mi_sdk.log");
            let pattern = dir.join("mi_sdk.{}.log");
            let roller = FixedWindowRoller::builder()
                .build(&pattern.to_string_lossy(), cfg.log.keep_files)
                .map_err(|e| Error::config(format!("config key `log.dir`: {e}")))?;
            let policy =
                CompoundPolicy::new(Box::new(SizeTrigger::new(cfg.log.max_file_mb * 1024 * 1024)), Box::new(roller));
            let appender = RollingFileAppender::builder()
                .encoder(Box::new(PatternEncoder::new("{d(%Y-%m-%d %H:%M:%S%.3f)} {l:<5} [{T}] {t} - {m}{n}")))
                .build(&file, Box::new(policy))
                .map_err(|e| Error::config(format!("config key `log.dir`: cannot open {}: {e}", file.display())))?;
            log4rs::Config::builder()
                .appender(Appender::builder().build("file", Box::new(appender)))
                .build(Root::builder().appender("file").build(level))
                .map_err(|e| Error::config(format!("log: {e}")))?
        }
    };
    let slot = HANDLE.get_or_init(|| Mutex::new(None));
    let mut h = slot.lock().unwrap_or_else(|p| p.into_inner());
    match h.as_ref() {
        Some(handle) => handle.set_config(config),
        // Another logger already installed by a Rust host: leave it in charge.
        None => *h = log4rs::init_config(config).ok(),
    }
    Ok(())
}

/// Keys whose values identify a person, by how they are masked, written as
/// [`plain_key`] leaves them: the national platform's `psn_name` and the
/// mobile-payment platform's `psnName` are the same key here.
const NAME_KEYS: &[&str] = &["psnname", "patnname", "insuname", "name", "gendnamepsn", "username", "realname"];
const ID_KEYS: &[&str] = &[
    "certno",
    "mdtrtcertno",
    "psncertno",
    "cardsn",
    "cardno",
    "bankcardno",
    "idcard",
    "idcardno",
    "idno",
    "usercertno",
];
const PHONE_KEYS: &[&str] = &["tel", "mob", "phone", "conntel", "emptel", "mobile", "mobileno", "phoneno", "telno"];

/// `psn_name`, `psnName`, `PSN-NAME` -> `psnname`.
fn plain_key(k: &str) -> String {
    k.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// A copy of a JSON value with names, ID, card and phone numbers masked: by key,
/// and, under any key, resident ID numbers found inside text (a platform's
/// `err_msg` may quote one).
pub fn mask(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = plain_key(k);
                    let masked = match v {
                        Value::String(s) if NAME_KEYS.contains(&key.as_str()) => Value::String(mask_name(s)),
                        Value::String(s) if ID_KEYS.contains(&key.as_str()) => Value::String(mask_middle(s, 4, 4)),
                        Value::String(s) if PHONE_KEYS.contains(&key.as_str()) => Value::String(mask_middle(s, 3, 4)),
                        other => mask(other),
                    };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(mask).collect()),
        Value::String(s) => Value::String(mask_id_numbers(s)),
        other => other.clone(),
    }
}

/// Masks every 18-character resident ID number (not part of a longer number)
/// inside a text.
pub fn mask_id_numbers(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() < 18 {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i + 18 <= b.len() {
        let before_ok = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let after_ok = i + 18 == b.len() || !b[i + 18].is_ascii_alphanumeric();
        if before_ok && after_ok && is_resident_id(&b[i..i + 18]) {
            out.push_str(&s[copied..i]);
            out.push_str(&mask_middle(&s[i..i + 18], 4, 4));
            i += 18;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// The shape of a GB 11643 resident ID number: 17 digits, a check character, and a
/// birth date at 7–14. The check character itself is not verified: a mistyped
/// number is still somebody's.
fn is_resident_id(b: &[u8]) -> bool {
    if b.len() != 18
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x')
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    b[0] != b'0' && (1880..=2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// The text of a JSON document for a log line, masked when the config says so.
pub fn for_log(text: &str, mask_pii: bool) -> String {
    if !mask_pii {
        return text.to_string();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => mask(&v).to_string(),
        // Not JSON: it may still hold personal data, so say only how long it was.
        Err(_) => format!("<{} bytes, not JSON>", text.len()),
    }
}

/// `张三` -> `张*`, `欧阳娜娜` -> `欧***`.
pub fn mask_name(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => std::iter::once(first).chain(c.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// Keeps `head` and `tail` characters: `440301199001011234` -> `4403**********1234`.
pub fn mask_middle(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    chars.iter().enumerate().map(|(i, c)| if i < head || i >= chars.len() - tail { *c } else { '*' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_names_ids_and_phones_anywhere() {
        let v = json!({"data":{"psn_name":"张三","certno":"440301199001011234","tel":"13800138000","balc":12.5,
                        "list":[{"mdtrt_cert_no":"440301199001011234","psn_name":"欧阳娜娜"}]}});
        let m = mask(&v).to_string();
        assert!(m.contains("\"张*\""), "{m}");
        assert!(m.contains("4403**********1234"), "{m}");
        assert!(m.contains("138****8000"), "{m}");
        assert!(m.contains("欧***"), "{m}");
        assert!(m.contains("12.5"));
        assert!(!m.contains("张三") && !m.contains("440301199001011234"));
    }

    #[test]
    fn camel_case_keys_and_id_numbers_inside_text_are_masked() {
        let v = json!({"psnName": "张三", "idNo": "440301199001011234", "mob": "13912345678",
                       "err_msg": "人员[44030519500315002X]不存在", "msgid": "H44030000001202611272207420710",
                       "psn_no": "44030000000000100001", "not_an_id": "440301000001011235"});
        let m = mask(&v);
        assert_eq!(m["psnName"], "张*");
        assert_eq!(m["idNo"], "4403**********1234");
        assert_eq!(m["mob"], "139****5678");
        assert_eq!(m["err_msg"], "人员[4403**********002X]不存在");
        // Longer numbers, and numbers without a birth date, are not ID numbers.
        assert_eq!((m["msgid"].clone(), m["psn_no"].clone()), (v["msgid"].clone(), v["psn_no"].clone()));
        assert_eq!(m["not_an_id"], v["not_an_id"]);
    }

    #[test]
    fn for_log_hides_non_json() {
        assert_eq!(
            for_log("张三 440301199001011234", true),
            format!("<{} bytes, not JSON>", "张三 440301199001011234".len())
        );
        assert_eq!(mask_middle("123", 4, 4), "***");
    }
}
