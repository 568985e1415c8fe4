//! Who the patient is: the outputs of the card and e-voucher readers a cashier's PC
//! has (the national e-voucher's `NationECCode.dll`, the social-security card's
//! `HeaSecReadInfo.dll` / `SSCardDriver.dll`, the resident ID card), turned into one
//! [`Identity`] that is the `data` of 1101. docs/readers.md has the layouts, the
//! mapping per region and their sources.
//!
//! [`reader::Reader`] loads a reader library and calls it on a thread of its own,
//! with a timeout, into [`guard::Guarded`] buffers; `ecard` and `card` read what it
//! wrote.

pub mod card;
pub mod ecard;
pub mod guard;
pub mod identify;
pub mod reader;
pub mod settings;

use serde::Serialize;
use serde_json::{json, Value};

/// How the patient was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Way {
    /// The national medical-insurance e-voucher (QR code or face).
    Ecard,
    /// The social-security card.
    Sscard,
    /// The resident ID card.
    Idcard,
}

impl Way {
    pub fn name(self) -> &'static str {
        match self {
            Way::Ecard => "ecard",
            Way::Sscard => "sscard",
            Way::Idcard => "idcard",
        }
    }
}

/// What goes into 1101's `mdtrt_cert_no` for a social-security card: the card
/// number, or (some regions) the card number and the reader's business string
/// `卡号|busiCardInfo`, which those platforms check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardNo {
    #[default]
    CardNo,
    CardNoAndBusi,
}

/// A region's mapping of reader outputs into 1101: the config's `readers.mapping`,
/// which region presets set.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mapping {
    /// `card_no` (the national default) or `card_no_and_busi` (卡号|busiCardInfo).
    pub card_no: CardNo,
    /// Issuing divisions (prefixes of 发卡地区行政区划代码, e.g. `"440"` for Guangdong)
    /// whose cards are sent as 02 with the 社会保障号码, as those platforms expect.
    pub card_as_id_in: Vec<String>,
}

/// The patient as a reader identified them: the `data` of 1101 ([`Identity::data_1101`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub way: Way,
    /// 就诊凭证类型: 01 e-voucher, 02 resident ID card, 03 social-security card.
    pub mdtrt_cert_type: String,
    pub mdtrt_cert_no: String,
    /// The social-security card's 卡识别码; empty otherwise.
    pub card_sn: String,
    /// 人员证件类型 (01 resident ID card), when the reader says or the number shows it.
    pub psn_cert_type: String,
    pub certno: String,
    pub psn_name: String,
    /// Where the person is insured as the reader says (the e-voucher's `insuOrg`, the
    /// card's issuing division): a hint for `insuplc_admdvs`, never sent as it is.
    pub insured_in: String,
    /// What the reader wrote, with the person's data masked: for the log.
    pub raw: String,
    /// A social-security card's outputs as the reader wrote them, for the regions
    /// whose visits carry them (Guangzhou's `hcard_basinfo`, `hcard_chkinfo`):
    /// handed to the HIS, never logged.
    pub hcard: Option<Hcard>,
}

/// The card reader's two outputs: `ReadCardBas`'s text, and its business string or
/// signature (HeaSecReadInfo's `busiCardInfo`, SSCard.dll's `sign`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hcard {
    pub hcard_basinfo: String,
    pub hcard_chkinfo: String,
}

impl Identity {
    /// The `data` of 1101 for this person.
    pub fn data_1101(&self) -> Value {
        json!({
            "mdtrt_cert_type": self.mdtrt_cert_type,
            "mdtrt_cert_no": self.mdtrt_cert_no,
            "card_sn": self.card_sn,
            "begntime": "",
            "psn_cert_type": self.psn_cert_type,
            "certno": self.certno,
            "psn_name": self.psn_name,
        })
    }
}

/// Whether `no` is a resident ID number (18 characters, the last a check digit or X,
/// and the check digit right): then its 证件类型 is 01.
pub fn is_resident_id(no: &str) -> bool {
    let b = no.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = b[..17].iter().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize];
    b[17].to_ascii_uppercase() == check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_ids_by_their_check_digit() {
        assert!(is_resident_id("11010519491231002X"));
        assert!(is_resident_id("11010519491231002x"));
        assert!(!is_resident_id("110105194912310021"));
        assert!(!is_resident_id("1101051949123100"));
        assert!(!is_resident_id("A1010519491231002X"));
    }

    #[test]
    fn an_identity_is_the_data_of_1101() {
        let id = Identity {
            way: Way::Idcard,
            mdtrt_cert_type: "02".into(),
            mdtrt_cert_no: "11010519491231002X".into(),
            card_sn: String::new(),
            psn_cert_type: "01".into(),
            certno: "11010519491231002X".into(),
            psn_name: "张三".into(),
            insured_in: String::new(),
            raw: String::new(),
            hcard: None,
        };
        let d = id.data_1101();
        assert_eq!(d["mdtrt_cert_type"], "02");
        assert_eq!(d["psn_name"], "张三");
        assert_eq!(d.as_object().unwrap().len(), 7);
    }
}
