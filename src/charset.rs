//! Text at the C boundary: UTF-8 or GBK (decoded and encoded as GB18030, its
//! superset, so every character the platform sends survives the trip to an ANSI HIS).

use crate::error::{Error, Result};
use encoding_rs::{Encoding, GB18030};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charset {
    #[default]
    Utf8,
    Gbk,
}

impl Charset {
    /// Parses the config's `charset` value.
    pub fn parse(name: &str) -> Option<Charset> {
        match name.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Charset::Utf8),
            "gbk" | "gb2312" | "gb18030" | "cp936" => Some(Charset::Gbk),
            _ => None,
        }
    }

    /// Decodes caller bytes (without the NUL); invalid text is an error, never replaced,
    /// because a silently mangled name or ID number would reach the platform.
    pub fn decode(self, bytes: &[u8], what: &str) -> Result<String> {
        match self {
            Charset::Utf8 => std::str::from_utf8(bytes).map(str::to_owned).map_err(|e| {
                Error::invalid(format!(
                    "{what} is not valid UTF-8 (byte {}); is the HIS sending GBK? set \"charset\": \"gbk\"",
                    e.valid_up_to()
                ))
            }),
            Charset::Gbk => GB18030
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|s| s.into_owned())
                .ok_or_else(|| Error::invalid(format!("{what} is not valid GBK text"))),
        }
    }

    /// The canonical name, as the status reports it.
    pub fn name(self) -> &'static str {
        match self {
            Charset::Utf8 => "utf-8",
            Charset::Gbk => "gbk",
        }
    }

    /// Encodes text for the caller. GB18030 covers all of Unicode, so this never fails.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => text.as_bytes().to_vec(),
            Charset::Gbk => GB18030.encode(text).0.into_owned(),
        }
    }
}

/// The system's ANSI code page: what a Windows program's `char *` strings and
/// Notepad's "ANSI" files are in. The C boundary sets it from `GetACP()`; elsewhere,
/// and until then, 936 (GBK), the code page of Chinese Windows.
static ANSI_CODE_PAGE: AtomicU32 = AtomicU32::new(936);

pub fn set_ansi_code_page(code_page: u32) {
    ANSI_CODE_PAGE.store(code_page, Ordering::Relaxed);
}

pub fn ansi_code_page() -> u32 {
    ANSI_CODE_PAGE.load(Ordering::Relaxed)
}

/// The encoding of a Windows ANSI code page, for those a HIS is likely to run under.
fn ansi_encoding(code_page: u32) -> Option<(&'static Encoding, &'static str)> {
    Some(match code_page {
        936 => (GB18030, "GBK"),
        950 => (encoding_rs::BIG5, "Big5"),
        932 => (encoding_rs::SHIFT_JIS, "Shift_JIS"),
        949 => (encoding_rs::EUC_KR, "EUC-KR"),
        874 => (encoding_rs::WINDOWS_874, "windows-874"),
        1250..=1258 => {
            let e = Encoding::for_label(format!("windows-{code_page}").as_bytes())?;
            (e, e.name())
        }
        _ => return None,
    })
}

/// The platform's files: UTF-8, or else GBK (made on Chinese Windows).
pub fn utf8_or_gbk<'a>(bytes: &'a [u8], what: &str) -> Result<std::borrow::Cow<'a, str>> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Err(_) => Charset::Gbk.decode(bytes, what).map(std::borrow::Cow::Owned),
    }
}

/// Text a HIS hands over before any `charset` is configured: `mi_init`'s argument
/// and the config file. UTF-8 when it is valid (a BOM is dropped), else the ANSI code
/// page: a HIS installed under `D:\医院HIS\` passes that path in GBK, and Notepad on
/// Chinese Windows 7 saves "ANSI", which is GBK. Returns the text and how it was read.
pub fn decode_unconfigured(bytes: &[u8], what: &str) -> Result<(String, String)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok((s.to_owned(), "UTF-8".into()));
    }
    let cp = ansi_code_page();
    let Some((_, name)) = ansi_encoding(cp) else {
        return Err(Error::config(format!(
            "{what} is not valid UTF-8, and the system's code page {cp} is not one mi_sdk reads: save it as UTF-8"
        )));
    };
    decode_ansi(bytes)
        .map(|(s, how)| (s, format!("{how}, since it is not valid UTF-8")))
        .ok_or_else(|| Error::config(format!("{what} is neither valid UTF-8 nor valid {name} (code page {cp}) text")))
}

/// `bytes` in the ANSI code page, and how they were read; None when they are not
/// valid there.
pub fn decode_ansi(bytes: &[u8]) -> Option<(String, String)> {
    let cp = ansi_code_page();
    let (encoding, name) = ansi_encoding(cp)?;
    let text = encoding.decode_without_bom_handling_and_without_replacement(bytes)?;
    Some((text.into_owned(), format!("{name} (code page {cp})")))
}

/// The config's `charset`: any spelling [`Charset::parse`] takes, in any case.
impl<'de> serde::Deserialize<'de> for Charset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Charset, D::Error> {
        let name = String::deserialize(d)?;
        Charset::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("\"{name}\" is not a charset: must be \"utf-8\" or \"gbk\""))
        })
    }
}

impl serde::Serialize for Charset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_round_trip() {
        let s = "{\"psn_name\":\"张三\"}";
        let b = Charset::Gbk.encode(s);
        assert_eq!(&b[13..17], &[0xD5, 0xC5, 0xC8, 0xFD]);
        assert_eq!(Charset::Gbk.decode(&b, "input").unwrap(), s);
    }

    #[test]
    fn unconfigured_text_is_utf8_when_valid_else_the_ansi_code_page() {
        let (s, how) = decode_unconfigured("\u{feff}{\"opter_name\":\"收费员\"}".as_bytes(), "config").unwrap();
        assert_eq!((s.as_str(), how.as_str()), ("{\"opter_name\":\"收费员\"}", "UTF-8"));
        let gbk = Charset::Gbk.encode("D:\\医保接口\\mi_sdk.json");
        let (s, how) = decode_unconfigured(&gbk, "config").unwrap();
        assert_eq!(s, "D:\\医保接口\\mi_sdk.json");
        assert!(how.starts_with("GBK (code page 936)"), "{how}");
        // Some GBK is valid UTF-8 too: read as UTF-8 here (Config::load_arg then
        // tries the code page for a path that names nothing).
        let ambiguous = Charset::Gbk.encode("医院");
        assert_eq!(decode_unconfigured(&ambiguous, "config").unwrap().1, "UTF-8");
        assert_eq!(decode_ansi(&ambiguous).unwrap().0, "医院");
        let e = decode_unconfigured(&[0xD5, 0xC5, 0x81], "the config file").unwrap_err();
        assert_eq!(e.code, crate::error::Code::Config);
        assert!(e.message.contains("the config file is neither valid UTF-8 nor valid GBK"), "{}", e.message);
        assert_eq!(ansi_encoding(1252).map(|e| e.1), Some("windows-1252"));
        assert_eq!(ansi_encoding(437), None);
    }

    #[test]
    fn invalid_text_is_rejected() {
        let gbk = Charset::Gbk.encode("张三");
        assert!(Charset::Utf8.decode(&gbk, "input").is_err());
        assert!(Charset::Gbk.decode(&[0x81], "input").is_err());
        assert_eq!(Charset::parse("GBK"), Some(Charset::Gbk));
        assert_eq!(Charset::parse("latin1"), None);
    }
}
