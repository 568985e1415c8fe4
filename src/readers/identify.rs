//! `mi_identify`: one request names the way (or `"auto"`), the configured reader is
//! loaded at first use and kept for the life of the process, and the answer is the
//! `data` of 1101 with the reader's output, masked, beside it.

use super::ecard::Asker;
use super::reader::{CardCall, Opener, Reader, Setup};
use super::settings::{CardApi, Init, Readers};
use super::{Identity, Way};
use crate::config::Config;
use crate::error::{Code, Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the HIS asks for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Request {
    /// `ecard`, `sscard`, `idcard`, or `auto` (`readers.order`).
    pub way: String,
    /// What the e-voucher is shown for: `01101` registration (the default), `01301`
    /// settlement, ...
    pub business_type: String,
    /// The cashier; empty: the config's `institution.opter` / `opter_name`.
    pub operator_id: String,
    pub operator_name: String,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            way: "auto".into(),
            business_type: "01101".into(),
            operator_id: String::new(),
            operator_name: String::new(),
        }
    }
}

impl Request {
    /// An empty text asks for `auto` with the defaults.
    pub fn parse(text: &str) -> Result<Request> {
        if text.trim().is_empty() {
            return Ok(Request::default());
        }
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("identify request: {e}")))
    }

    fn ways(&self, readers: &Readers) -> Result<Vec<Way>> {
        Ok(match self.way.trim() {
            "auto" | "" => readers.order.clone(),
            "ecard" => vec![Way::Ecard],
            "sscard" => vec![Way::Sscard],
            "idcard" => vec![Way::Idcard],
            other => {
                return Err(Error::invalid(format!(
                    "identify request: way \"{other}\" is not one of ecard, sscard, idcard, auto"
                )))
            }
        })
    }
}

/// Each reader library once per process, by path: a library holds its own state
/// (HeaSecReadInfo's `Init`), and one stuck in a call must stay known as stuck
/// across `mi_shutdown` and `mi_init`.
static OPEN: Mutex<Option<HashMap<PathBuf, Arc<Reader>>>> = Mutex::new(None);

fn reader_at(path: &Path, timeout: Duration, open_lib: Opener) -> Result<Arc<Reader>> {
    // One library however it is spelled (`SSCard.dll`, `.\sscard.dll`): one lock, one
    // set-up, one "hung".
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    let open = open.get_or_insert_with(HashMap::new);
    if let Some(r) = open.get(&key) {
        r.set_timeout(timeout);
        return Ok(r.clone());
    }
    let r = Arc::new(Reader::open(path, timeout, open_lib)?);
    open.insert(key, r.clone());
    Ok(r)
}

/// Identifies the patient as `request` (JSON) asks, through reader libraries
/// loaded by `open`; the answer's JSON text.
pub fn identify(cfg: &Config, request: &str, open: Opener) -> Result<String> {
    let req = Request::parse(request)?;
    let readers = &cfg.readers;
    let ways = req.ways(readers)?;
    let auto = ways.len() > 1;
    let mut tried: Vec<(Way, Error)> = Vec::new();
    for way in ways {
        let lib = readers.library(way).trim();
        if lib.is_empty() {
            if !auto {
                return Err(Error::config(format!(
                    "no {} reader is configured (config key `readers.{}.library`)",
                    way.name(),
                    way.name()
                )));
            }
            continue;
        }
        match read(cfg, &req, way, &cfg.base_dir.join(lib), open) {
            Ok(id) => {
                let reader = Path::new(lib).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                log::info!("identified the patient by {} through {reader}: {}", way.name(), logged(cfg, &id));
                return Ok(answer(&id, &reader, &tried).to_string());
            }
            Err(e) if auto => {
                log::info!("identify: {} gave no patient: {}", way.name(), e.message);
                tried.push((way, e));
            }
            Err(e) => return Err(e),
        }
    }
    Err(none_identified(tried))
}

fn read(cfg: &Config, req: &Request, way: Way, path: &Path, open: Opener) -> Result<Identity> {
    let readers = &cfg.readers;
    let reader = reader_at(path, Duration::from_millis(readers.timeout_ms), open)?;
    match way {
        Way::Ecard => {
            let e = &readers.ecard;
            let pick =
                |asked: &'_ str, configured: &'_ str| if asked.is_empty() { configured } else { asked }.to_string();
            let (operator_id, operator_name) =
                (pick(&req.operator_id, &cfg.institution.opter), pick(&req.operator_name, &cfg.institution.opter_name));
            let asker = Asker {
                org_id: &cfg.institution.fixmedins_code,
                trans_type: &e.trans_type,
                business_type: &req.business_type,
                operator_id: &operator_id,
                operator_name: &operator_name,
                office_id: &e.office_id,
                office_name: &e.office_name,
                device_type: &e.device_type,
            };
            reader.ecard(&e.url, &asker)
        }
        Way::Sscard => {
            let s = &readers.sscard;
            let call = match s.api {
                CardApi::Heasec => CardCall::HeaSec,
                CardApi::SscardDriver => CardCall::SsCardDriver(s.card_type),
                CardApi::Sscard => CardCall::SsCard,
            };
            reader.social_card(call, &setup(s.api, &s.init), readers.mapping.clone())
        }
        Way::Idcard => {
            let (api, init) = readers.idcard_api();
            reader.id_card(&setup(api, init))
        }
    }
}

/// What a library of `api` needs before its first read.
fn setup(api: CardApi, init: &Init) -> Setup {
    match api {
        CardApi::Heasec => Setup::HeaSec(init.text()),
        CardApi::Sscard => {
            let (url, user) = init.url_and_user();
            Setup::SsCard { url, user }
        }
        CardApi::SscardDriver => Setup::None,
    }
}

/// The answer: the `data` of 1101, where the person is insured as the reader says,
/// the reader's output masked, and in `auto` what the ways before said.
fn answer(id: &Identity, reader: &str, tried: &[(Way, Error)]) -> Value {
    json!({
        "way": id.way,
        "reader": reader,
        "data": id.data_1101(),
        "insured_in": id.insured_in,
        "raw": id.raw,
        "hcard": id.hcard,
        "tried": tried.iter().map(|(w, e)| json!({"way": w, "code": e.code.name(), "message": e.message})).collect::<Vec<_>>(),
    })
}

/// The identity as the log shows it.
fn logged(cfg: &Config, id: &Identity) -> String {
    let data = id.data_1101().to_string();
    format!("{} (reader wrote {})", crate::logging::for_log(&data, cfg.log.mask_pii), id.raw)
}

/// In `auto`, nobody identified: a business "no" when every reader said one (no
/// card, no QR code), else the first failure of another kind; the message lists all.
fn none_identified(tried: Vec<(Way, Error)>) -> Error {
    if tried.is_empty() {
        return Error::config("no reader is configured (config section `readers`)");
    }
    let code = tried.iter().map(|(_, e)| e.code).find(|c| *c != Code::Business).unwrap_or(Code::Business);
    let said: Vec<String> = tried.iter().map(|(w, e)| format!("{}: {}", w.name(), e.message)).collect();
    Error::new(code, format!("no reader identified the patient ({})", said.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_strict_and_default_to_auto() {
        let r = Request::parse("").unwrap();
        assert_eq!((r.way.as_str(), r.business_type.as_str()), ("auto", "01101"));
        assert_eq!(Request::parse(r#"{"way":"idcard"}"#).unwrap().ways(&Readers::default()).unwrap(), [Way::Idcard]);
        assert_eq!(Request::parse(r#"{"way":"auto"}"#).unwrap().ways(&Readers::default()).unwrap().len(), 3);
        assert_eq!(Request::parse(r#"{"wya":"x"}"#).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(Request::parse("[").unwrap_err().code, Code::InvalidArgument);
        let bad = Request::parse(r#"{"way":"face"}"#).unwrap().ways(&Readers::default()).unwrap_err();
        assert!(bad.message.contains("\"face\""), "{}", bad.message);
    }

    #[test]
    fn nobody_identified_is_business_only_when_every_reader_said_no() {
        let no = |w| (w, Error::new(Code::Business, "no card"));
        let e = none_identified(vec![no(Way::Ecard), no(Way::Sscard)]);
        assert_eq!(e.code, Code::Business);
        assert!(e.message.contains("ecard: no card; sscard: no card"), "{}", e.message);
        let e = none_identified(vec![no(Way::Ecard), (Way::Sscard, Error::new(Code::Timeout, "hung"))]);
        assert_eq!(e.code, Code::Timeout);
        assert_eq!(none_identified(vec![]).code, Code::Config);
    }
}
