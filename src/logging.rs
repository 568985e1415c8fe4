//! Logging: log4rs with a rolling file in `log.dir` (or the hospital's own log4rs
//! YAML), behind a logger of our own that makes every line safe to write: control
//! characters escaped (a message cannot forge a line), and, with `log.mask_pii`,
//! names, ID and phone numbers masked. One place for all lines, so a message that
//! quotes outside text (a platform's `err_msg`, a file name) needs no care where it
//! is logged.

use crate::config::Config;
use crate::error::{Error, Result};
use log4rs::append::rolling_file::policy::compound::{
    roll::fixed_window::FixedWindowRoller, trigger::size::SizeTrigger, CompoundPolicy,
};
use log4rs::append::rolling_file::RollingFileAppender;
use log4rs::config::{Appender, Root};
use log4rs::encode::pattern::PatternEncoder;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

static HANDLE: OnceLock<Mutex<Option<log4rs::Handle>>> = OnceLock::new();
/// `log.mask_pii` of the config logging was last started with.
static MASK_PII: AtomicBool = AtomicBool::new(true);

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
    MASK_PII.store(cfg.log.mask_pii, Ordering::Release);
    let slot = HANDLE.get_or_init(|| Mutex::new(None));
    let mut h = slot.lock().unwrap_or_else(|p| p.into_inner());
    match h.as_ref() {
        Some(handle) => handle.set_config(config),
        None => {
            let logger = log4rs::Logger::new(config);
            let handle = logger.handle();
            // Another logger already installed by a Rust host: leave it in charge.
            if log::set_boxed_logger(Box::new(SafeLines(logger))).is_ok() {
                log::set_max_level(handle.max_log_level());
                *h = Some(handle);
            }
        }
    }
    Ok(())
}

/// The installed logger: log4rs, with each record's message passed through
/// [`safe_line`] first, whatever appender or encoder the config names.
struct SafeLines(log4rs::Logger);

impl log::Log for SafeLines {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if !self.0.enabled(record.metadata()) {
            return;
        }
        let text = safe_line(&record.args().to_string(), MASK_PII.load(Ordering::Acquire));
        self.0.log(
            &log::Record::builder()
                .metadata(record.metadata().clone())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .args(format_args!("{text}"))
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// A message made fit for one log line: with `mask_pii`, personal data masked
/// ([`mask_text`]); always, every character that could end the line or rewrite what
/// a viewer shows ([`needs_escape`]) written as an escape (`\n`, `\r`, `\t`,
/// `\u{1b}`), so no text can pass for a line the SDK wrote.
pub fn safe_line(text: &str, mask_pii: bool) -> String {
    let masked = if mask_pii { mask_text(text) } else { text.to_string() };
    if !masked.chars().any(needs_escape) {
        return masked;
    }
    let mut out = String::with_capacity(masked.len() + 16);
    for c in masked.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Control characters (C0, DEL, C1 with NEL), the Unicode line and paragraph
/// separators, and the bidirectional overrides that make a viewer show text in
/// another order than it was written.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
    // The e-voucher's token: whoever holds it can be billed as the patient for a while.
    "ectoken",
];
const PHONE_KEYS: &[&str] = &["tel", "mob", "phone", "conntel", "emptel", "mobile", "mobileno", "phoneno", "telno"];
/// Values that open something: a password, and `cainfo`, which some provinces fill
/// with the patient's encrypted card or e-voucher password (replayable as it is).
/// And a social card's raw outputs (Guangzhou's `hcard_basinfo`, `hcard_chkinfo`):
/// every field of the card, and its signature.
const SECRET_KEYS: &[&str] = &["password", "passwd", "pwd", "cainfo", "hcardbasinfo", "hcardchkinfo"];

/// The same kinds of value as they are labelled in free text (a platform's
/// `err_msg`): `姓名:张三`, `证件号码[4403...]`, `联系电话 0755-1234`.
const NAME_LABELS: &[&str] = &["姓名"];
const ID_LABELS: &[&str] = &["身份证号码", "身份证号", "身份证", "证件号码", "证件号", "卡号"];
const PHONE_LABELS: &[&str] = &["手机号码", "手机号", "手机", "联系电话", "电话"];

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
                    let masked = match (v, kind_of_key(&key)) {
                        (Value::String(s), Some(kind)) => Value::String(kind.mask(s)),
                        (other, _) => mask(other),
                    };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(mask).collect()),
        Value::String(s) => Value::String(mask_text(s)),
        other => other.clone(),
    }
}

/// What a value is, by how it is masked.
#[derive(Clone, Copy)]
enum Kind {
    Name,
    Id,
    Phone,
    Secret,
}

impl Kind {
    fn mask(self, s: &str) -> String {
        match self {
            Kind::Name => mask_name(s),
            Kind::Id => mask_id(s),
            Kind::Phone => mask_middle(s, 3, 4),
            // Nothing of it: even its length says something.
            Kind::Secret if s.is_empty() => String::new(),
            Kind::Secret => "******".into(),
        }
    }
}

/// The kind of a key already made [`plain_key`].
fn kind_of_key(plain: &str) -> Option<Kind> {
    [(NAME_KEYS, Kind::Name), (ID_KEYS, Kind::Id), (PHONE_KEYS, Kind::Phone), (SECRET_KEYS, Kind::Secret)]
        .into_iter()
        .find_map(|(keys, kind)| keys.contains(&plain).then_some(kind))
}

/// Free text with its personal data masked: values after a label or key
/// (`姓名:张三`, `psn_name=张三`, `"certno":"4403..."`, `证件号码[4403...]`), then every
/// resident ID number and mobile phone number wherever it stands.
pub fn mask_text(s: &str) -> String {
    mask_phone_numbers(&mask_id_numbers(&mask_labelled(s)))
}

/// Masks the value after each label of a name, ID or phone number: an ASCII key in
/// any spelling ([`plain_key`]) or a Chinese label, then a separator (`:`, `=`, `：`,
/// an opening bracket, or for a Chinese label just spaces), then the value up to the
/// next delimiter.
fn mask_labelled(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut prev: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        if let Some((kind, label_len, cjk)) = label_at(rest, prev) {
            let (label, after) = rest.split_at(label_len);
            if let Some((lead, value, tail)) = value_after(after, cjk) {
                out.push_str(label);
                out.push_str(lead);
                out.push_str(&kind.mask(value));
                rest = tail;
                prev = value.chars().last();
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        prev = Some(c);
    }
    out
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A label starting `rest`: its kind, its length in bytes, and whether it is a
/// Chinese one. An ASCII key counts only as a whole word.
fn label_at(rest: &str, prev: Option<char>) -> Option<(Kind, usize, bool)> {
    let first = rest.chars().next()?;
    if first.is_ascii_alphabetic() {
        if prev.is_some_and(is_key_char) {
            return None;
        }
        let len = rest.find(|c: char| !is_key_char(c)).unwrap_or(rest.len());
        return kind_of_key(&plain_key(&rest[..len])).map(|k| (k, len, false));
    }
    [(NAME_LABELS, Kind::Name), (ID_LABELS, Kind::Id), (PHONE_LABELS, Kind::Phone)]
        .into_iter()
        .find_map(|(labels, kind)| labels.iter().find(|l| rest.starts_with(**l)).map(|l| (kind, l.len(), true)))
}

/// After a label: what leads to the value (quotes, spaces, the separator), the value,
/// and the text after it; `None` if no value follows.
fn value_after(after: &str, cjk: bool) -> Option<(&str, &str, &str)> {
    let skip = |t: &str, set: &[char]| t.len() - t.trim_start_matches(|c: char| set.contains(&c) || c == ' ').len();
    // `"psn_name":"x"`: the key's closing quote comes first.
    let mut i = skip(after, &['"', '\'']);
    let sep = after[i..].chars().next()?;
    let bracket = matches!(sep, '[' | '【' | '(' | '（' | '<');
    if matches!(sep, ':' | '=' | '：') || bracket {
        i += sep.len_utf8();
    } else if !(cjk && i > 0) {
        return None;
    }
    i += skip(&after[i..], &['"', '\'', '[', '【', '(', '（', '<']);
    let value_len = after[i..]
        .find(|c: char| c.is_whitespace() || c.is_control() || "\"',;，；、。)）]】}>&|\\".contains(c))
        .unwrap_or(after.len() - i);
    let value = &after[i..i + value_len];
    if value.is_empty() || value == "null" {
        return None;
    }
    Some((&after[..i], value, &after[i + value_len..]))
}

/// Masks every mobile phone number (`1[3-9]` and nine more digits, not part of a
/// longer number): `13912345678` -> `139****5678`.
fn mask_phone_numbers(s: &str) -> String {
    mask_digit_runs(s, 11, |b| b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit), 3)
}

/// Masks every 18-character resident ID number (not part of a longer number)
/// inside a text.
pub fn mask_id_numbers(s: &str) -> String {
    mask_digit_runs(s, 18, is_resident_id, 4)
}

/// Masks each `len`-byte run of `s` that `shape` accepts and that no other digit
/// touches (a letter may: `ID440301...`), keeping `head` and 4 trailing characters.
fn mask_digit_runs(s: &str, len: usize, shape: impl Fn(&[u8]) -> bool, head: usize) -> String {
    let b = s.as_bytes();
    if b.len() < len {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i + len <= b.len() {
        let before_ok = i == 0 || !b[i - 1].is_ascii_digit();
        let after_ok = i + len == b.len() || !b[i + len].is_ascii_digit();
        if before_ok && after_ok && shape(&b[i..i + len]) {
            out.push_str(&s[copied..i]);
            out.push_str(&mask_middle(&s[i..i + len], head, 4));
            i += len;
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

/// An ID, card or token number: a quarter of it kept at each end, at most 4
/// characters, so a short card number (`A12345678` -> `A1*****78`) shows no more of
/// itself than an ID number (`4403**********1234`).
pub fn mask_id(s: &str) -> String {
    let keep = (s.chars().count() / 4).min(4);
    mask_middle(s, keep, keep)
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
    fn card_outputs_and_short_card_numbers() {
        // A 2201 carrying a social card's outputs (Guangzhou): nothing of them shown.
        let v = json!({"data":{"hcard_basinfo":"440300|440301199001011234|A12345678|x|张三|","hcard_chkinfo":"U0lH",
                        "mdtrt_cert_no":"A12345678","card_sn":"440300D15600000500123456"}});
        let m = mask(&v).to_string();
        assert!(m.contains(r#""hcard_basinfo":"******""#) && m.contains(r#""hcard_chkinfo":"******""#), "{m}");
        // A 9-character card number keeps two characters at each end, not four.
        assert!(m.contains("A1*****78") && m.contains("4403****************3456"), "{m}");
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
        // A password, and a cainfo that may hold the patient's encrypted card password.
        let m = mask(&json!({"cainfo": "A1B2C3D4E5F6", "signIn": {"password": "x"}, "signtype": "SM3", "pwd": ""}));
        assert_eq!((m["cainfo"].as_str(), m["signIn"]["password"].as_str()), (Some("******"), Some("******")));
        assert_eq!((m["signtype"].as_str(), m["pwd"].as_str()), (Some("SM3"), Some("")));
    }

    #[test]
    fn free_text_is_masked_by_label_and_by_shape() {
        let t = "人员信息不符: 姓名:赵六, psn_name=钱七, \"psnName\":\"孙八\", 患者姓名 周九, 证件号码[11010519491231002X], \
                 idNo=ABC123456789, 联系电话 0755-12345678, 手机：13912345678, tel 13812345678";
        let m = mask_text(t);
        for gone in
            ["赵六", "钱七", "孙八", "周九", "11010519491231002X", "ABC123456789", "0755-12345678", "13912345678"]
        {
            assert!(!m.contains(gone), "{gone}: {m}");
        }
        for kept in [
            "姓名:赵*",
            "psn_name=钱*",
            "\"psnName\":\"孙*\"",
            "患者姓名 周*",
            "证件号码[1101**********002X]",
            "手机：139****5678",
        ] {
            assert!(m.contains(kept), "{kept}: {m}");
        }
        // Unlabelled, by shape; a letter may touch an ID number, a digit may not.
        assert_eq!(mask_text("ID440301199001011234,13800138000"), "ID4403**********1234,138****8000");
        // What the SDK's own lines carry stays readable.
        for same in [
            "done 2207 request=12 -> MI_E_BUSINESS msgid H44030000001202611272207420710",
            "psn_no 44030000000000100001 at 20261130083846070, 2026-11-30 08:38:46",
            "signing in operator 0001 for 20261130 (request 3)",
            "config key `log.dir`: cannot create /srv/his/logs",
            "{\"psn_name\":null,\"name\":\"\"}",
        ] {
            assert_eq!(mask_text(same), same);
        }
    }

    #[test]
    fn a_line_cannot_be_broken_or_disguised() {
        let forged =
            "x\n2020-01-01 00:00:00.000 INFO  [w] t - done 2207 request=1 -> MI_OK\r\t\u{1b}[2K\u{85}\u{2028}\u{202e}";
        let line = safe_line(forged, false);
        assert_eq!(
            line,
            "x\\n2020-01-01 00:00:00.000 INFO  [w] t - done 2207 request=1 -> MI_OK\\r\\t\\u{1b}[2K\\u{85}\\u{2028}\\u{202e}"
        );
        assert!(!line.chars().any(needs_escape));
        // Masking sees the text before escaping: a number right after a line break is still one.
        assert_eq!(safe_line("a\n13912345678", true), "a\\n139****5678");
        assert_eq!(safe_line("中文 text", true), "中文 text");
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
