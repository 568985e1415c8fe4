//! The readers' libraries called for real: a stand-in library with the signatures
//! public HIS code declares (sim/readers/fake_reader.c), built here by gcc and
//! loaded as the e-voucher, social-card and ID-card readers are: the person read
//! and mapped into 1101, and every way a reader fails — no card, a wrong PIN, text
//! that is not its format, an overrun of its buffer, a call that never returns.

mod common;

use common::*;
use mi_sdk::ffi::{mi_identify, ReaderLib, MI_E_BUFFER_TOO_SMALL, MI_E_NOT_INITIALIZED};
use mi_sdk::readers::ecard::Asker;
use mi_sdk::readers::reader::{CardCall, Reader, Setup, ECARD_OUT};
use mi_sdk::readers::{CardNo, Mapping};
use mi_sdk::Code;
use serde_json::{json, Value};
use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The stand-in reads its mode from the environment: one test at a time.
static MODE: Mutex<()> = Mutex::new(());

fn with_mode(mode: &str) -> MutexGuard<'static, ()> {
    let g = MODE.lock().unwrap_or_else(|p| p.into_inner());
    std::env::set_var("MI_FAKE_READER", mode);
    g
}

fn asker() -> Asker<'static> {
    Asker {
        org_id: "H44030000001",
        business_type: "01101",
        operator_id: "0001",
        operator_name: "收费员甲",
        ..Default::default()
    }
}

const URL: &str = "http://127.0.0.1:9/localcfc/api/hsecfc/localQrCodeQuery";
const INIT: &str = r#"{"IP":"127.0.0.1","PORT":8080,"TIMEOUT":30,"LOG_PATH":"C:\\log"}"#;

fn heasec() -> Setup {
    Setup::HeaSec(INIT.into())
}

#[test]
fn a_person_read_by_each_reader_is_the_data_of_1101() {
    let Some(lib) = fake_reader() else { return };
    let _m = with_mode("ok");
    let r = Reader::open(&lib, Duration::from_secs(5), ReaderLib::open).unwrap();
    let e = r.ecard(URL, &asker()).unwrap();
    let d = e.data_1101();
    assert_eq!(
        (d["mdtrt_cert_type"].as_str(), d["mdtrt_cert_no"].as_str()),
        (Some("01"), Some("440300EC0000000000000000001234"))
    );
    assert_eq!((d["certno"].as_str(), d["psn_name"].as_str()), (Some(ZHANG_CERTNO), Some("张三")));
    assert_eq!(e.insured_in, "440300");
    let c = r.social_card(CardCall::HeaSec, &heasec(), Mapping::default()).unwrap();
    assert_eq!(
        (c.mdtrt_cert_type.as_str(), c.mdtrt_cert_no.as_str(), c.card_sn.as_str()),
        ("03", "A12345678", "440300D15600000500123456")
    );
    assert_eq!((c.psn_name.as_str(), c.psn_cert_type.as_str()), ("张三", "01"));
    let busi = r
        .social_card(CardCall::HeaSec, &heasec(), Mapping { card_no: CardNo::CardNoAndBusi, ..Default::default() })
        .unwrap();
    assert_eq!(busi.mdtrt_cert_no, "A12345678|QkFTRTY0LWJ1c2k=");
    let d = r.social_card(CardCall::SsCardDriver(3), &Setup::None, Mapping::default()).unwrap();
    assert_eq!(d.mdtrt_cert_no, "A12345678");
    let i = r.id_card(&heasec()).unwrap();
    assert_eq!((i.mdtrt_cert_type.as_str(), i.certno.as_str(), i.psn_name.as_str()), ("02", ZHANG_CERTNO, "张三"));
}

#[test]
fn a_readers_no_is_business_and_its_garbage_is_protocol_naming_it() {
    let Some(lib) = fake_reader() else { return };
    let r = Reader::open(&lib, Duration::from_secs(5), ReaderLib::open).unwrap();
    {
        let _m = with_mode("absent");
        let e = r.ecard(URL, &asker()).unwrap_err();
        assert_eq!(e.code, Code::Business);
        assert!(e.message.contains("未检测到电子凭证"), "{}", e.message);
        let e = r.social_card(CardCall::SsCardDriver(3), &Setup::None, Mapping::default()).unwrap_err();
        assert_eq!(e.code, Code::Business);
        assert!(e.message.contains("未插卡") && e.message.contains("returned -11"), "{}", e.message);
    }
    {
        let _m = with_mode("wrong_pin");
        let e = r.social_card(CardCall::HeaSec, &heasec(), Mapping::default()).unwrap_err();
        assert!(e.code == Code::Business && e.message.contains("密码错误"), "{}", e.message);
    }
    {
        let _m = with_mode("garbage");
        for e in [
            r.ecard(URL, &asker()).unwrap_err(),
            r.social_card(CardCall::HeaSec, &heasec(), Mapping::default()).unwrap_err(),
            r.id_card(&heasec()).unwrap_err(),
        ] {
            assert_eq!(e.code, Code::Protocol, "{}", e.message);
            assert!(e.message.contains("libfake_reader") || e.message.contains("NationEcTrans"), "{}", e.message);
        }
    }
    // A buffer overrun (past the usable part, into the guard) is caught and named.
    {
        let _m = with_mode(&format!("overflow:{}", ECARD_OUT + 100));
        let e = r.ecard(URL, &asker()).unwrap_err();
        assert_eq!(e.code, Code::Protocol);
        assert!(e.message.contains("wrote past the end"), "{}", e.message);
    }
    // Init refused: said, and tried again next time (a fresh copy of the library, which
    // nothing has set up yet).
    let dir = tempfile::tempdir().unwrap();
    let r2 = Reader::open(Path::new(&copy_of(lib, dir.path(), "fresh.so")), Duration::from_secs(5), ReaderLib::open)
        .unwrap();
    let _m = with_mode("init_fail");
    let e = r2.social_card(CardCall::HeaSec, &heasec(), Mapping::default()).unwrap_err();
    assert!(e.message.contains("Init") && e.message.contains("读卡器未连接"), "{}", e.message);
    drop(_m);
    let _m = with_mode("ok");
    assert_eq!(r2.social_card(CardCall::HeaSec, &heasec(), Mapping::default()).unwrap().mdtrt_cert_type, "03");
}

#[test]
fn a_reader_that_never_returns_is_abandoned_after_its_timeout() {
    let Some(lib) = fake_reader() else { return };
    let r = Reader::open(&lib, Duration::from_millis(300), ReaderLib::open).unwrap();
    let started = std::time::Instant::now();
    let e = {
        let _m = with_mode("hang");
        r.social_card(CardCall::SsCardDriver(3), &Setup::None, Mapping::default()).unwrap_err()
    };
    assert_eq!(e.code, Code::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(e.message.contains("did not return within 300 ms"), "{}", e.message);
    // Not called again: the library may be stuck for good.
    let _m = with_mode("ok");
    let e = r.id_card(&heasec()).unwrap_err();
    assert!(e.code == Code::Timeout && e.message.contains("restart the program"), "{}", e.message);
    // A reader that is not there.
    let e = Reader::open(std::path::Path::new("/nonexistent/libreader.so"), Duration::from_secs(1), ReaderLib::open)
        .err()
        .unwrap();
    assert!(e.message.contains("cannot load the reader library"), "{}", e.message);
}

/// `mi_identify` with a buffer of `cap` bytes: its code, and its output as text.
fn identify(request: Option<&str>, cap: i32) -> (i32, String, i32) {
    let req = request.map(|r| CString::new(r).unwrap());
    let mut buf = vec![0u8; cap as usize];
    let mut len = cap;
    let ptr = if cap == 0 { std::ptr::null_mut() } else { buf.as_mut_ptr() as *mut c_char };
    // SAFETY: a valid string or NULL; `buf` has `cap` bytes.
    let rc = unsafe { mi_identify(req.as_ref().map_or(std::ptr::null(), |r| r.as_ptr()), ptr, &mut len) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(0);
    (rc, String::from_utf8(buf[..end].to_vec()).unwrap(), len)
}

fn identified(request: &str) -> Value {
    let (rc, out, _) = identify(Some(request), 1 << 16);
    assert_eq!(rc, 0, "{request}: {}", last_error());
    serde_json::from_str(&out).unwrap()
}

/// A copy of the stand-in under `name`: each copy is a library of its own to the
/// loader, as the province's NationECCode.dll and HeaSecReadInfo.dll are.
fn reader_copy(dir: &Path, name: &str) -> String {
    copy_of(fake_reader().unwrap(), dir, name)
}

fn copy_of(lib: PathBuf, dir: &Path, name: &str) -> String {
    let to = dir.join(name);
    std::fs::copy(lib, &to).unwrap();
    to.to_string_lossy().into_owned()
}

#[test]
fn mi_identify_reads_each_way_and_auto_through_the_c_abi() {
    if fake_reader().is_none() {
        return;
    }
    let _s = serial();
    assert_eq!(identify(Some(r#"{"way":"ecard"}"#), 1024).0, MI_E_NOT_INITIALIZED);
    let env = Env::plain();
    let ecard = reader_copy(env.dir.path(), "NationECCode.so");
    let card = reader_copy(env.dir.path(), "HeaSecReadInfo.so");
    let readers = json!({"readers": {
        "ecard": {"library": ecard, "url": URL},
        "sscard": {"library": card, "init": {"IP": "127.0.0.1", "PORT": 8080}},
        "timeout_ms": 5000
    }});
    assert_eq!(env.init(readers), 0, "{}", last_error());
    let _m = with_mode("ok");
    let e = identified(r#"{"way":"ecard","business_type":"01101"}"#);
    assert_eq!(e["way"], "ecard");
    assert_eq!(e["reader"], "NationECCode.so");
    assert_eq!(e["data"]["mdtrt_cert_type"], "01");
    assert_eq!(e["data"]["mdtrt_cert_no"], "440300EC0000000000000000001234");
    assert_eq!((e["data"]["certno"].as_str(), e["data"]["psn_name"].as_str()), (Some(ZHANG_CERTNO), Some("张三")));
    assert_eq!(e["insured_in"], "440300");
    assert!(e["hcard"].is_null(), "no card outputs for an e-voucher");
    // What the reader wrote, for the log: the person's data masked.
    let raw = e["raw"].as_str().unwrap();
    assert!(raw.contains("张*") && !raw.contains(ZHANG_CERTNO) && !raw.contains("EC0000000000000000001234"), "{raw}");
    // The ID card first: HeaSecReadInfo's Init comes before its first read of either
    // kind (the stand-in answers nothing before it).
    let i = identified(r#"{"way":"idcard"}"#);
    assert_eq!((i["data"]["mdtrt_cert_type"].as_str(), i["reader"].as_str()), (Some("02"), Some("HeaSecReadInfo.so")));
    let c = identified(r#"{"way":"sscard"}"#);
    assert_eq!(
        (c["data"]["mdtrt_cert_type"].as_str(), c["data"]["mdtrt_cert_no"].as_str()),
        (Some("03"), Some("A12345678"))
    );
    assert_eq!(c["data"]["card_sn"], "440300D15600000500123456");
    // NULL asks for auto: the e-voucher first, as configured.
    let (rc, out, _) = identify(None, 1 << 16);
    assert_eq!(rc, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["way"], "ecard");
    // A buffer too small: the size needed; asked again, the reader is read again,
    // never an identity kept from before (here the card is gone by then).
    let (rc, _, need) = identify(Some(r#"{"way":"idcard"}"#), 8);
    assert_eq!(rc, MI_E_BUFFER_TOO_SMALL);
    let (rc, out, len) = identify(Some(r#"{"way":"idcard"}"#), need + 1);
    assert_eq!((rc, len), (0, need), "{}", last_error());
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["data"], i["data"]);
    let (rc, _, _) = identify(Some(r#"{"way":"idcard"}"#), 8);
    assert_eq!(rc, MI_E_BUFFER_TOO_SMALL);
    drop(_m);
    let _m = with_mode("absent");
    let (rc, _, _) = identify(Some(r#"{"way":"idcard"}"#), need + 1);
    assert_eq!(rc, Code::Business.as_i32(), "the earlier identity is not handed over");
    drop(_m);

    // Nobody there: in auto every reader is asked, and the answer is the readers' "no".
    {
        let _m = with_mode("absent");
        let (rc, _, _) = identify(Some(r#"{"way":"auto"}"#), 1 << 16);
        assert_eq!(rc, Code::Business.as_i32());
        let said = last_error();
        assert!(said.contains("ecard: ") && said.contains("未插卡") && said.contains("未放卡"), "{said}");
    }
    // A reader's garbage ends auto's search with MI_E_PROTOCOL naming the reader,
    // once nobody else answered.
    {
        let _m = with_mode("garbage");
        let (rc, _, _) = identify(Some(r#"{"way":"auto"}"#), 1 << 16);
        assert_eq!(rc, Code::Protocol.as_i32());
        assert!(last_error().contains("NationEcTrans"), "{}", last_error());
    }
    // The caller's mistakes.
    let (rc, _, _) = identify(Some(r#"{"way":"face"}"#), 1024);
    assert_eq!(rc, Code::InvalidArgument.as_i32());
    let (rc, _, _) = identify(Some("{"), 1024);
    assert_eq!(rc, Code::InvalidArgument.as_i32());
    // The log has the identification, masked.
    mi_sdk::ffi::mi_shutdown(5000);
    let logs = logs_of(&env);
    assert!(logs.contains("identified the patient by ecard through NationECCode.so"), "{logs}");
    assert!(!logs.contains(ZHANG_CERTNO) && !logs.contains("张三"), "the log shows the person");
    assert!(!logs.contains("A12345678") && !logs.contains("EC0000000000000000001234"), "the log shows a card or token");
}

#[test]
fn mi_identify_follows_the_regions_mapping_and_abandons_a_hung_reader() {
    if fake_reader().is_none() {
        return;
    }
    let _s = serial();
    let env = Env::plain();
    let card = reader_copy(env.dir.path(), "SSCardDriver.so");
    let hanging = reader_copy(env.dir.path(), "HangingECCode.so");
    let readers = json!({"readers": {
        "ecard": {"library": hanging, "url": URL},
        "sscard": {"library": card, "api": "sscard_driver", "card_type": 2},
        "mapping": {"card_as_id_in": ["440"]},
        "timeout_ms": 1000
    }});
    assert_eq!(env.init(readers), 0, "{}", last_error());
    {
        let _m = with_mode("ok");
        let c = identified(r#"{"way":"sscard"}"#);
        assert_eq!(
            (c["data"]["mdtrt_cert_type"].as_str(), c["data"]["mdtrt_cert_no"].as_str()),
            (Some("02"), Some(ZHANG_CERTNO))
        );
        // No ID-card reader: SSCardDriver has no ReadSFZ, and none is configured.
        let (rc, _, _) = identify(Some(r#"{"way":"idcard"}"#), 1024);
        assert_eq!(rc, Code::Config.as_i32());
        assert!(last_error().contains("readers.idcard.library"), "{}", last_error());
    }
    let started = std::time::Instant::now();
    {
        let _m = with_mode("hang");
        let (rc, _, _) = identify(Some(r#"{"way":"ecard"}"#), 1024);
        assert_eq!(rc, Code::Timeout.as_i32());
        assert!(last_error().contains("did not return within 1000 ms"), "{}", last_error());
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    // auto passes over the stuck e-voucher reader to the card.
    let _m = with_mode("ok");
    let a = identified(r#"{"way":"auto"}"#);
    assert_eq!(a["way"], "sscard");
    assert_eq!(a["tried"][0]["way"], "ecard");
    assert_eq!(a["tried"][0]["code"], "MI_E_TIMEOUT");
}

/// SSCard.dll's way: `Init(url, user)` from `sscard.init`, then the sized reads, its
/// signature as the card's business string; the ID card through the same library.
#[test]
fn mi_identify_through_sscard_dll() {
    let Some(lib) = fake_sscard_reader() else { return };
    let _s = serial();
    let env = Env::plain();
    let card = copy_of(lib, env.dir.path(), "SSCard.so");
    let readers = json!({"readers": {
        "order": ["sscard", "idcard"],
        "sscard": {"library": card, "api": "sscard", "init": {"url": "http://10.1.1.1:9000/card", "user": "440300"}},
        "mapping": {"card_no": "card_no_and_busi"}
    }});
    assert_eq!(env.init(readers), 0, "{}", last_error());
    let _m = with_mode("ok");
    let c = identified(r#"{"way":"auto"}"#);
    assert_eq!((c["way"].as_str(), c["data"]["mdtrt_cert_type"].as_str()), (Some("sscard"), Some("03")));
    assert_eq!(c["data"]["mdtrt_cert_no"], "A12345678|U0lHTi1zc2NhcmQ=");
    // What Guangzhou's card visits carry: the reader's two outputs, as written.
    assert!(c["hcard"]["hcard_basinfo"].as_str().unwrap().starts_with("440300|440301199001011234|A12345678|"));
    assert_eq!(c["hcard"]["hcard_chkinfo"], "U0lHTi1zc2NhcmQ=");
    let i = identified(r#"{"way":"idcard"}"#);
    assert_eq!((i["data"]["certno"].as_str(), i["reader"].as_str()), (Some(ZHANG_CERTNO), Some("SSCard.so")));
    drop(_m);
    // Its Init refused: the reader's no, named; tried again on the next call.
    mi_sdk::ffi::mi_shutdown(5000);
    let other = copy_of(fake_sscard_reader().unwrap(), env.dir.path(), "SSCard2.so");
    let readers = json!({"readers": {"sscard": {"library": other, "api": "sscard", "init": {"url": "http://10.1.1.1:9000/card"}}}});
    assert_eq!(env.init(readers), 0, "{}", last_error());
    let (rc, _, _) = identify(Some(r#"{"way":"sscard"}"#), 4096);
    assert_eq!(rc, Code::Business.as_i32());
    assert!(last_error().contains("SSCard2.so Init returned -1"), "{}", last_error());
    mi_sdk::ffi::mi_shutdown(5000);
    let logs = logs_of(&env);
    assert!(logs.contains("identified the patient by sscard through SSCard.so"), "{logs}");
    assert!(!logs.contains("U0lHTi1zc2NhcmQ=") && !logs.contains("A12345678"), "the log shows the card's outputs");
}

fn logs_of(env: &Env) -> String {
    std::fs::read_dir(env.dir.path().join("logs"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap_or_default())
        .collect()
}
