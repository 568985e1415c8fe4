//! The national medical-insurance e-voucher (医保电子凭证) through the province's
//! `NationECCode.dll`: `NationEcTrans(url, input, output)`, where the input names
//! the institution, the transaction (`ec.query` for a QR code or face already
//! scanned) and the business (`01101` registration, `01301` settlement, ...), and
//! the output is `{code, message, data}`, `data` an object or, from some versions, a
//! JSON string holding one.

use super::{Identity, Way};
use crate::error::{Code, Error, Result};
use serde_json::{json, Value};

/// Who asks, for the reader's input.
#[derive(Debug, Clone, Default)]
pub struct Asker<'a> {
    /// The institution code (`orgId`).
    pub org_id: &'a str,
    /// `ec.query` by default.
    pub trans_type: &'a str,
    /// The business the e-voucher is shown for (`01101` registration, ...).
    pub business_type: &'a str,
    pub operator_id: &'a str,
    pub operator_name: &'a str,
    pub office_id: &'a str,
    pub office_name: &'a str,
    pub device_type: &'a str,
}

/// The input of `NationEcTrans`.
pub fn request(a: &Asker) -> String {
    let trans_type = if a.trans_type.is_empty() { "ec.query" } else { a.trans_type };
    json!({
        "orgId": a.org_id,
        "transType": trans_type,
        "data": {
            "orgId": a.org_id,
            "businessType": a.business_type,
            "operatorId": a.operator_id,
            "operatorName": a.operator_name,
            "officeId": a.office_id,
            "officeName": a.office_name,
            "deviceType": a.device_type,
        }
    })
    .to_string()
}

/// The identity in an output of `NationEcTrans`; `reader` names the library and
/// call in errors. A reader that says no (QR code expired, cancelled) is
/// `MI_E_BUSINESS` with its message; one whose output cannot be read is
/// `MI_E_PROTOCOL` naming the reader.
pub fn parse(output: &str, reader: &str) -> Result<Identity> {
    let garbage = |why: &str| Error::new(Code::Protocol, format!("{reader} answered {why}"));
    let v: Value = serde_json::from_str(output.trim()).map_err(|_| garbage("with something that is not JSON"))?;
    // `code` a number (0) or a string ("0", "0000") by version.
    let ok = match &v["code"] {
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.trim().chars().all(|c| c == '0') && !s.trim().is_empty(),
        _ => return Err(garbage("without a code")),
    };
    if !ok {
        let said = v["message"].as_str().unwrap_or("").chars().take(200).collect::<String>();
        let said = crate::logging::mask_text(&said);
        return Err(Error::new(Code::Business, format!("{reader}: {} (code {})", said, v["code"])));
    }
    let data = match &v["data"] {
        Value::String(s) => serde_json::from_str(s).map_err(|_| garbage("with a data string that is not JSON"))?,
        d @ Value::Object(_) => d.clone(),
        _ => return Err(garbage("success without data")),
    };
    let field = |k: &str| data[k].as_str().unwrap_or("").trim().to_string();
    let token = field("ecToken");
    if token.is_empty() {
        return Err(garbage("success without an ecToken"));
    }
    let certno = field("idNo");
    let id_type = field("idType");
    Ok(Identity {
        way: Way::Ecard,
        mdtrt_cert_type: "01".into(),
        mdtrt_cert_no: token,
        card_sn: String::new(),
        psn_cert_type: if id_type.is_empty() && super::is_resident_id(&certno) { "01".into() } else { id_type },
        certno,
        psn_name: field("userName"),
        insured_in: field("insuOrg"),
        raw: crate::logging::mask(&v).to_string(),
        hcard: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "NationECCode.dll NationEcTrans";

    #[test]
    fn the_input_names_the_institution_and_the_business() {
        let a = Asker { org_id: "H44030000001", business_type: "01101", operator_id: "0001", ..Default::default() };
        let v: Value = serde_json::from_str(&request(&a)).unwrap();
        assert_eq!(v["transType"], "ec.query");
        assert_eq!(v["data"]["orgId"], "H44030000001");
        assert_eq!(v["data"]["businessType"], "01101");
    }

    #[test]
    fn data_as_an_object_or_as_a_string() {
        let data = json!({"ecToken": "4403000000000000001234567890", "idNo": "11010519491231002X", "idType": "01",
                          "userName": "张三", "insuOrg": "440300"});
        for out in
            [json!({"code": 0, "message": "成功", "data": data}), json!({"code": "0000", "data": data.to_string()})]
        {
            let id = parse(&out.to_string(), R).unwrap();
            assert_eq!(id.mdtrt_cert_type, "01");
            assert_eq!(id.mdtrt_cert_no, "4403000000000000001234567890");
            assert_eq!((id.certno.as_str(), id.psn_cert_type.as_str()), ("11010519491231002X", "01"));
            assert_eq!((id.psn_name.as_str(), id.insured_in.as_str()), ("张三", "440300"));
            assert!(id.raw.contains("张*") && id.raw.contains("1101**********002X"), "{}", id.raw);
            assert!(!id.raw.contains("4403000000000000001234567890"), "{}", id.raw);
        }
    }

    #[test]
    fn a_refusal_is_business_and_garbage_is_protocol() {
        let e = parse(r#"{"code": 1, "message": "二维码已过期"}"#, R).unwrap_err();
        assert_eq!(e.code, Code::Business);
        assert!(e.message.contains("二维码已过期"));
        for bad in [
            "<html>",
            r#"{"message": "x"}"#,
            r#"{"code": 0}"#,
            r#"{"code": 0, "data": "{"}"#,
            r#"{"code": 0, "data": {}}"#,
        ] {
            let e = parse(bad, R).unwrap_err();
            assert_eq!(e.code, Code::Protocol, "{bad}");
            assert!(e.message.contains("NationEcTrans"), "{bad}");
        }
    }
}
