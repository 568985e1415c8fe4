//! Logging: log4rs with a rolling file in `log.dir` (or the hospital's own log4rs
//! YAML), and masking of personal data before anything about a patient is logged.

use crate::config::Config;
use crate::error::{Error, Result};
use log::LevelFilter;
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
            let level = match cfg.log.level.as_str() {
                "off" => LevelFilter::Off,
                "error" => LevelFilter::Error,
                "warn" => LevelFilter::Warn,
                "debug" => LevelFilter::Debug,
                "trace" => LevelFilter::Trace,
                _ => LevelFilter::Info,
            };
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

/// Keys whose values identify a person, by how they are masked.
const NAME_KEYS: &[&str] = &["psn_name", "patn_name", "insu_name", "name", "gend_name_psn"];
const ID_KEYS: &[&str] =
    &["certno", "mdtrt_cert_no", "psn_cert_no", "card_sn", "cardno", "card_no", "bank_card_no", "idcard"];
const PHONE_KEYS: &[&str] = &["tel", "mob", "phone", "conn_tel", "emp_tel", "mobile"];

/// A copy of a JSON value with names, ID, card and phone numbers masked.
pub fn mask(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let masked = match v {
                        Value::String(s) if NAME_KEYS.contains(&k.as_str()) => Value::String(mask_name(s)),
                        Value::String(s) if ID_KEYS.contains(&k.as_str()) => Value::String(mask_middle(s, 4, 4)),
                        Value::String(s) if PHONE_KEYS.contains(&k.as_str()) => Value::String(mask_middle(s, 3, 4)),
                        other => mask(other),
                    };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(mask).collect()),
        other => other.clone(),
    }
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
    fn for_log_hides_non_json() {
        assert_eq!(
            for_log("张三 440301199001011234", true),
            format!("<{} bytes, not JSON>", "张三 440301199001011234".len())
        );
        assert_eq!(mask_middle("123", 4, 4), "***");
    }
}
