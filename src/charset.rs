//! Text at the C boundary: UTF-8 or GBK (decoded and encoded as GB18030, its
//! superset, so every character the platform sends survives the trip to an ANSI HIS).

use crate::error::{Error, Result};
use encoding_rs::GB18030;

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
    fn invalid_text_is_rejected() {
        let gbk = Charset::Gbk.encode("张三");
        assert!(Charset::Utf8.decode(&gbk, "input").is_err());
        assert!(Charset::Gbk.decode(&[0x81], "input").is_err());
        assert_eq!(Charset::parse("GBK"), Some(Charset::Gbk));
        assert_eq!(Charset::parse("latin1"), None);
    }
}
