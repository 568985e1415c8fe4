//! The social-security card and the resident ID card as their readers write them:
//! `ReadCardBas` (HeaSecReadInfo.dll, SSCard.dll, SSCardDriver.dll `iReadCardBas`)
//! writes eleven `|`-separated fields and a closing `|` (发卡地区行政区划代码 |
//! 社会保障号码 | 卡号 | 卡识别码 | 姓名 | 卡复位信息 | 规范版本 | 发卡日期 | 卡有效期 |
//! 终端机编号 | 终端设备号), with a business string (`busiCardInfo`) beside it;
//! `ReadSFZ` writes nine (姓名 | 性别 | 民族 | 出生日期 | 住址 | 公民身份号码 | 签发日期 |
//! 有效期 | 签发机关).

use super::{is_resident_id, CardNo, Hcard, Identity, Mapping, Way};
use crate::error::{Code, Error, Result};

fn fields<'a>(text: &'a str, want: usize, reader: &str) -> Result<Vec<&'a str>> {
    let f: Vec<&str> = text.trim().trim_end_matches('|').split('|').map(str::trim).collect();
    if f.len() < want {
        // The text is the person's data: its length, never its content, is said.
        return Err(Error::new(
            Code::Protocol,
            format!("{reader} answered {} fields where {want} were expected", f.len()),
        ));
    }
    Ok(f)
}

/// How each field of an output is shown in the log.
#[derive(Clone, Copy)]
enum Show {
    As,
    Id,
    Name,
    Hidden,
}

/// The fields as the log may show them; fields beyond the layout are hidden.
fn masked(f: &[&str], layout: &[Show]) -> String {
    let shown: Vec<String> = f
        .iter()
        .enumerate()
        .map(|(i, v)| match layout.get(i).copied().unwrap_or(Show::Hidden) {
            Show::As => v.to_string(),
            Show::Id => crate::logging::mask_id(v),
            Show::Name => crate::logging::mask_name(v),
            Show::Hidden if v.is_empty() => String::new(),
            Show::Hidden => "***".into(),
        })
        .collect();
    shown.join("|") + "|"
}

/// 发卡地区, 社会保障号码, 卡号, 卡识别码, 姓名, 卡复位信息, 规范版本, 发卡日期, 卡有效期, 终端机编号, 终端设备号.
const SOCIAL_CARD: [Show; 11] =
    [Show::As, Show::Id, Show::Id, Show::Id, Show::Name, Show::Id, Show::As, Show::As, Show::As, Show::As, Show::As];
/// 姓名, 性别, 民族, 出生日期, 住址, 公民身份号码, 签发日期, 有效期, 签发机关.
const ID_CARD: [Show; 9] =
    [Show::Name, Show::As, Show::As, Show::Hidden, Show::Hidden, Show::Id, Show::As, Show::As, Show::As];

/// The identity on a social-security card: `card_info` as `ReadCardBas` wrote it,
/// `busi` its business string (may be empty), mapped as the region says.
pub fn social_card(card_info: &str, busi: &str, mapping: &Mapping, reader: &str) -> Result<Identity> {
    let f = fields(card_info, 11, reader)?;
    let (division, ss_no, card_no, card_sn, name) = (f[0], f[1], f[2], f[3], f[4]);
    let raw = match busi.trim() {
        "" => masked(&f, &SOCIAL_CARD),
        // An opaque string the platform checks: its length only.
        b => format!("{} busiCardInfo <{} bytes>", masked(&f, &SOCIAL_CARD), b.len()),
    };
    if card_no.is_empty() {
        return Err(Error::new(Code::Protocol, format!("{reader} answered a card without a card number")));
    }
    let (cert_type, mdtrt_cert_no) = if mapping.card_as_id_in.iter().any(|p| division.starts_with(p.as_str())) {
        // These platforms know their own province's cards by the 社会保障号码.
        if ss_no.is_empty() {
            return Err(Error::new(Code::Protocol, format!("{reader} answered a card without a 社会保障号码")));
        }
        ("02", ss_no.to_string())
    } else {
        match (mapping.card_no, busi.trim()) {
            (CardNo::CardNoAndBusi, b) if !b.is_empty() => ("03", format!("{card_no}|{b}")),
            (CardNo::CardNoAndBusi, _) => {
                return Err(Error::new(
                    Code::Protocol,
                    format!("{reader} gave no business string (busiCardInfo), which this region's 1101 needs"),
                ))
            }
            (CardNo::CardNo, _) => ("03", card_no.to_string()),
        }
    };
    Ok(Identity {
        way: Way::Sscard,
        mdtrt_cert_type: cert_type.into(),
        mdtrt_cert_no,
        card_sn: card_sn.to_string(),
        psn_cert_type: if is_resident_id(ss_no) { "01".into() } else { String::new() },
        certno: ss_no.to_string(),
        psn_name: name.to_string(),
        insured_in: division.to_string(),
        raw,
        hcard: Some(Hcard { hcard_basinfo: card_info.trim().to_string(), hcard_chkinfo: busi.trim().to_string() }),
    })
}

/// The identity on a resident ID card, as `ReadSFZ` wrote it.
pub fn id_card(text: &str, reader: &str) -> Result<Identity> {
    let f = fields(text, 9, reader)?;
    let (name, number) = (f[0], f[5]);
    if !is_resident_id(number) {
        return Err(Error::new(Code::Protocol, format!("{reader} answered an ID number that is not one")));
    }
    Ok(Identity {
        way: Way::Idcard,
        mdtrt_cert_type: "02".into(),
        mdtrt_cert_no: number.to_uppercase(),
        card_sn: String::new(),
        psn_cert_type: "01".into(),
        certno: number.to_uppercase(),
        psn_name: name.to_string(),
        insured_in: String::new(),
        raw: masked(&f, &ID_CARD),
        hcard: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "440300|11010519491231002X|A12345678|440300D15600000500123456|张三|0081544C3A|3.00|20190101|20290101|T001|D001|";

    #[test]
    fn a_social_card_by_the_national_mapping_and_with_its_business_string() {
        let id = social_card(CARD, "QkFTRTY0", &Mapping::default(), "r").unwrap();
        assert_eq!((id.mdtrt_cert_type.as_str(), id.mdtrt_cert_no.as_str()), ("03", "A12345678"));
        assert_eq!(id.card_sn, "440300D15600000500123456");
        assert_eq!((id.certno.as_str(), id.psn_cert_type.as_str()), ("11010519491231002X", "01"));
        assert_eq!((id.psn_name.as_str(), id.insured_in.as_str()), ("张三", "440300"));
        assert_eq!(
            id.raw,
            "440300|1101**********002X|A1*****78|4403****************3456|张*|00******3A|3.00|20190101|20290101|T001|D001| busiCardInfo <8 bytes>"
        );
        let hcard = id.hcard.as_ref().unwrap();
        assert_eq!((hcard.hcard_basinfo.as_str(), hcard.hcard_chkinfo.as_str()), (CARD, "QkFTRTY0"));
        let busi = Mapping { card_no: CardNo::CardNoAndBusi, ..Default::default() };
        assert_eq!(social_card(CARD, "QkFTRTY0", &busi, "r").unwrap().mdtrt_cert_no, "A12345678|QkFTRTY0");
        assert!(social_card(CARD, "", &busi, "r").unwrap_err().message.contains("busiCardInfo"));
        // Guangdong's own cards go as 02 with the 社会保障号码; others as the nation's.
        let gd = Mapping { card_as_id_in: vec!["440".into()], ..Default::default() };
        let id = social_card(CARD, "", &gd, "r").unwrap();
        assert_eq!((id.mdtrt_cert_type.as_str(), id.mdtrt_cert_no.as_str()), ("02", "11010519491231002X"));
        let elsewhere = CARD.replacen("440300", "320500", 1);
        assert_eq!(social_card(&elsewhere, "", &gd, "r").unwrap().mdtrt_cert_type, "03");
    }

    #[test]
    fn short_or_empty_outputs_are_refused_without_quoting_them() {
        let e = social_card("440300|11010519491231002X|A1|", "", &Mapping::default(), "SSCardDriver.dll").unwrap_err();
        assert_eq!(e.code, Code::Protocol);
        assert!(e.message.contains("SSCardDriver.dll answered 3 fields where 11"), "{}", e.message);
        assert!(!e.message.contains("11010519491231002X"));
        let no_card = CARD.replace("A12345678", "");
        assert!(social_card(&no_card, "", &Mapping::default(), "r").unwrap_err().message.contains("card number"));
    }

    #[test]
    fn an_id_card() {
        let id =
            id_card("张三|男|汉|19491231|北京市西城区|11010519491231002x|20200101|20400101|北京市公安局西城分局|", "r")
                .unwrap();
        assert_eq!((id.mdtrt_cert_type.as_str(), id.mdtrt_cert_no.as_str()), ("02", "11010519491231002X"));
        assert_eq!((id.psn_cert_type.as_str(), id.psn_name.as_str()), ("01", "张三"));
        assert_eq!(id.raw, "张*|男|汉|***|***|1101**********002x|20200101|20400101|北京市公安局西城分局|");
        assert!(id_card("张三|男|汉|19491231|x|123|a|b|c", "r").is_err());
    }
}
