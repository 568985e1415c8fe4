//! The config's `readers` section: which reader library each way uses, how it is
//! called, and the region's mapping into 1101 (region presets set `readers.mapping`).
//! A way whose library is empty is not configured: `mi_identify` says so, and
//! `"auto"` passes over it.

use super::{Mapping, Way};
use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Readers {
    /// The ways `"auto"` tries, in this order.
    pub order: Vec<Way>,
    /// How long one reader call may take (a patient scanning a QR code, typing a
    /// PIN) before it is abandoned.
    pub timeout_ms: u64,
    pub ecard: Ecard,
    pub sscard: Sscard,
    pub idcard: Idcard,
    pub mapping: Mapping,
}

impl Default for Readers {
    fn default() -> Self {
        Readers {
            order: vec![Way::Ecard, Way::Sscard, Way::Idcard],
            timeout_ms: 60_000,
            ecard: Ecard::default(),
            sscard: Sscard::default(),
            idcard: Idcard::default(),
            mapping: Mapping::default(),
        }
    }
}

/// The e-voucher reader: the province's `NationECCode.dll` and the local
/// e-voucher service it talks to.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Ecard {
    /// The library's path, relative to the config's folder; empty: no e-voucher reader.
    pub library: String,
    /// The local e-voucher service, e.g. `http://127.0.0.1:7001/localcfc/api/hsecfc/localQrCodeQuery`.
    pub url: String,
    /// `ec.query` when empty.
    pub trans_type: String,
    pub device_type: String,
    pub office_id: String,
    pub office_name: String,
}

/// How the social-security card's library is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CardApi {
    /// HeaSecReadInfo.dll: `Init(json, err)` once, `ReadCardBas(cardInfo, busiCardInfo)`.
    #[default]
    Heasec,
    /// SSCardDriver.dll: `iReadCardBas(type, out)`.
    SscardDriver,
    /// SSCard.dll: `Init(url, user)` once, `ReadCardBas(out, outLen, sign, signLen)`,
    /// and `ReadSFZ(out, outLen, sign, signLen)` for the ID card.
    Sscard,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sscard {
    pub library: String,
    pub api: CardApi,
    /// `iReadCardBas`'s type: 1 contact, 2 contactless, 3 or 4 either.
    pub card_type: i32,
    pub init: Init,
}

impl Default for Sscard {
    fn default() -> Self {
        Sscard { library: String::new(), api: CardApi::Heasec, card_type: 3, init: Init::default() }
    }
}

/// A library's `Init` input: HeaSecReadInfo's JSON as the province's reader wants
/// it (an object, or its text), or SSCard.dll's `{"url": …, "user": …}`, its two
/// arguments. It may hold the reader's own passwords: printed as its keys only.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Init(pub serde_json::Value);

impl Default for Init {
    fn default() -> Self {
        Init(serde_json::json!({}))
    }
}

impl std::fmt::Debug for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&String> = self.0.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        write!(f, "Init(keys {keys:?})")
    }
}

impl Init {
    /// SSCard.dll's `Init(url, user)` arguments.
    pub fn url_and_user(&self) -> (String, String) {
        let key = |k: &str| self.0.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        (key("url"), key("user"))
    }

    /// The input as HeaSecReadInfo's `Init` reads it.
    pub fn text(&self) -> String {
        match &self.0 {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }

    fn check(&self, key: &str, api: CardApi) -> Result<()> {
        let bad = |why: &str| Err(Error::config(format!("config key `readers.{key}`: {why}")));
        if !matches!(self.0, serde_json::Value::Object(_) | serde_json::Value::String(_)) {
            return bad("must be a JSON object or its text");
        }
        if api == CardApi::Sscard && self.url_and_user().0.is_empty() {
            return bad("must be {\"url\": ..., \"user\": ...} for SSCard.dll (api \"sscard\")");
        }
        Ok(())
    }
}

/// The resident ID card's reader (`ReadSFZ`).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Idcard {
    /// Empty: the social-security card's library, when that has `ReadSFZ`
    /// (HeaSecReadInfo.dll, SSCard.dll), called and set up as that library.
    pub library: String,
    /// How `ReadSFZ` is called: `heasec` (photo, info, busi) or `sscard` (out,
    /// outLen, sign, signLen). Used when `library` is given.
    pub api: CardApi,
    /// Its library's `Init` input, when `library` is given; absent: the card's.
    pub init: Option<Init>,
}

impl Readers {
    /// The library for `way`, relative to the config's folder; empty when none.
    pub fn library(&self, way: Way) -> &str {
        match way {
            Way::Ecard => &self.ecard.library,
            Way::Sscard => &self.sscard.library,
            Way::Idcard if self.idcard.library.trim().is_empty() && self.sscard.api != CardApi::SscardDriver => {
                &self.sscard.library
            }
            Way::Idcard => &self.idcard.library,
        }
    }

    /// How the ID card's `ReadSFZ` is called, and its library set up: as the card's
    /// library when it is that one.
    pub fn idcard_api(&self) -> (CardApi, &Init) {
        if self.idcard.library.trim().is_empty() {
            (self.sscard.api, &self.sscard.init)
        } else {
            (self.idcard.api, self.idcard.init.as_ref().unwrap_or(&self.sscard.init))
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::config(format!("config key `readers.{key}`: {why}")));
        if !(1_000..=600_000).contains(&self.timeout_ms) {
            return bad("timeout_ms", "must be 1000 to 600000");
        }
        if self.order.is_empty() {
            return bad("order", "must name at least one way (\"ecard\", \"sscard\", \"idcard\")");
        }
        if (1..self.order.len()).any(|i| self.order[..i].contains(&self.order[i])) {
            return bad("order", "names a way twice");
        }
        if !(1..=4).contains(&self.sscard.card_type) {
            return bad("sscard.card_type", "must be 1 (contact), 2 (contactless), 3 or 4 (either)");
        }
        self.sscard.init.check("sscard.init", self.sscard.api)?;
        let (api, init) = self.idcard_api();
        let own = !self.idcard.library.trim().is_empty();
        let key = if own { "idcard.init" } else { "sscard.init" };
        init.check(key, api)?;
        // One library is called one way: ReadSFZ's arguments follow the card's api.
        let same_file = |a: &str, b: &str| {
            let a = a.trim().replace('\\', "/").to_lowercase();
            let b = b.trim().replace('\\', "/").to_lowercase();
            a.trim_start_matches("./") == b.trim_start_matches("./")
        };
        if own && same_file(&self.idcard.library, &self.sscard.library) && self.idcard.api != self.sscard.api {
            return bad("idcard.api", "differs from sscard.api for the same library; leave idcard.library empty");
        }
        if self.idcard.api == CardApi::SscardDriver {
            return bad("idcard.api", "must be \"heasec\" or \"sscard\": SSCardDriver.dll reads no ID card");
        }
        if !self.ecard.library.trim().is_empty() && self.ecard.url.trim().is_empty() {
            return bad("ecard.url", "must be set when ecard.library is: the local e-voucher service's address");
        }
        if self.mapping.card_as_id_in.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
            return bad("mapping.card_as_id_in", "must list division code prefixes (digits, e.g. \"440\")");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_card_reader_is_the_card_library_when_it_is_heasec() {
        let mut r = Readers::default();
        r.sscard.library = "HeaSecReadInfo.dll".into();
        assert_eq!(r.library(Way::Idcard), "HeaSecReadInfo.dll");
        r.sscard.api = CardApi::Sscard;
        assert_eq!((r.library(Way::Idcard), r.idcard_api().0), ("HeaSecReadInfo.dll", CardApi::Sscard));
        r.sscard.api = CardApi::SscardDriver;
        assert_eq!(r.library(Way::Idcard), "");
        r.idcard.library = "sfz.dll".into();
        assert_eq!((r.library(Way::Idcard), r.idcard_api().0), ("sfz.dll", CardApi::Heasec));
    }

    #[test]
    fn bad_values_are_named_and_the_init_is_never_printed() {
        let r = Readers { order: vec![Way::Ecard, Way::Ecard], ..Default::default() };
        assert!(r.validate().unwrap_err().message.contains("readers.order"));
        let mut r = Readers::default();
        r.ecard.library = "NationECCode.dll".into();
        assert!(r.validate().unwrap_err().message.contains("readers.ecard.url"));
        let mut r = Readers::default();
        r.sscard.api = CardApi::Sscard;
        assert!(r.validate().unwrap_err().message.contains("\"url\""));
        r.sscard.init = Init(serde_json::json!({"url": "http://10.1.1.1:9000", "user": "440300"}));
        assert!(r.validate().is_ok());
        assert_eq!(r.sscard.init.url_and_user(), ("http://10.1.1.1:9000".into(), "440300".into()));
        // An ID card reader of its own takes its own init.
        r.idcard = Idcard { library: "HeaSecReadInfo.dll".into(), api: CardApi::Heasec, init: None };
        assert!(r.validate().is_ok());
        r.idcard.init = Some(Init(serde_json::json!(3)));
        assert!(r.validate().unwrap_err().message.contains("readers.idcard.init"));
        // SSCard.dll named again for the ID card, with HeaSec's ReadSFZ: refused.
        r.sscard.library = "SSCard.dll".into();
        r.idcard = Idcard { library: ".\\sscard.DLL".into(), api: CardApi::Heasec, init: None };
        assert!(r.validate().unwrap_err().message.contains("readers.idcard.api"));
        let mut r = Readers::default();
        r.mapping.card_as_id_in = vec!["44a".into()];
        assert!(r.validate().unwrap_err().message.contains("card_as_id_in"));
        let mut r = Readers::default();
        r.sscard.init = Init(serde_json::json!({"IP": "10.1.1.1", "PASS": "hunter2"}));
        assert!(r.validate().is_ok());
        let shown = format!("{r:?}");
        assert!(shown.contains("PASS") && !shown.contains("hunter2"), "{shown}");
        assert_eq!(r.sscard.init.text(), r#"{"IP":"10.1.1.1","PASS":"hunter2"}"#);
    }
}
