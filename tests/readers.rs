//! The readers' libraries called for real: a stand-in library with the signatures
//! public HIS code declares (tests/readers/fake_reader.c), built here by gcc and
//! loaded as the e-voucher, social-card and ID-card readers are: the person read
//! and mapped into 1101, and every way a reader fails — no card, a wrong PIN, text
//! that is not its format, an overrun of its buffer, a call that never returns.

mod common;

use common::*;
use mi_sdk::readers::ecard::Asker;
use mi_sdk::readers::reader::{CardCall, Reader, ECARD_OUT};
use mi_sdk::readers::{CardNo, Mapping};
use mi_sdk::Code;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The stand-in reads its mode from the environment: one test at a time.
static MODE: Mutex<()> = Mutex::new(());

fn with_mode(mode: &str) -> MutexGuard<'static, ()> {
    let g = MODE.lock().unwrap_or_else(|p| p.into_inner());
    std::env::set_var("MI_FAKE_READER", mode);
    g
}

/// Built once for the whole test binary (tests run side by side: a library
/// rebuilt under another test's feet would not load).
fn fake_reader() -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_fake_reader).clone()
}

fn build_fake_reader() -> Option<PathBuf> {
    if !require_tool("gcc", &["--version"]) {
        return None;
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libfake_reader.so");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/readers/fake_reader.c");
    let ok = Command::new("gcc")
        .args(["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok, "the stand-in reader did not build");
    Some(out)
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

#[test]
fn a_person_read_by_each_reader_is_the_data_of_1101() {
    let Some(lib) = fake_reader() else { return };
    let _m = with_mode("ok");
    let r = Reader::open(&lib, Duration::from_secs(5)).unwrap();
    let e = r.ecard(URL, &asker()).unwrap();
    let d = e.data_1101();
    assert_eq!(
        (d["mdtrt_cert_type"].as_str(), d["mdtrt_cert_no"].as_str()),
        (Some("01"), Some("440300EC0000000000000000001234"))
    );
    assert_eq!((d["certno"].as_str(), d["psn_name"].as_str()), (Some(ZHANG_CERTNO), Some("张三")));
    assert_eq!(e.insured_in, "440300");
    let c = r.social_card(CardCall::HeaSec, INIT, Mapping::default()).unwrap();
    assert_eq!(
        (c.mdtrt_cert_type.as_str(), c.mdtrt_cert_no.as_str(), c.card_sn.as_str()),
        ("03", "A12345678", "440300D15600000500123456")
    );
    assert_eq!((c.psn_name.as_str(), c.psn_cert_type.as_str()), ("张三", "01"));
    let busi = r.social_card(CardCall::HeaSec, INIT, Mapping { card_no: CardNo::CardNoAndBusi }).unwrap();
    assert_eq!(busi.mdtrt_cert_no, "A12345678|QkFTRTY0LWJ1c2k=");
    let d = r.social_card(CardCall::SsCardDriver(3), "", Mapping::default()).unwrap();
    assert_eq!(d.mdtrt_cert_no, "A12345678");
    let i = r.id_card().unwrap();
    assert_eq!((i.mdtrt_cert_type.as_str(), i.certno.as_str(), i.psn_name.as_str()), ("02", ZHANG_CERTNO, "张三"));
}

#[test]
fn a_readers_no_is_business_and_its_garbage_is_protocol_naming_it() {
    let Some(lib) = fake_reader() else { return };
    let r = Reader::open(&lib, Duration::from_secs(5)).unwrap();
    {
        let _m = with_mode("absent");
        let e = r.ecard(URL, &asker()).unwrap_err();
        assert_eq!(e.code, Code::Business);
        assert!(e.message.contains("未检测到电子凭证"), "{}", e.message);
        let e = r.social_card(CardCall::SsCardDriver(3), "", Mapping::default()).unwrap_err();
        assert_eq!(e.code, Code::Business);
        assert!(e.message.contains("未插卡") && e.message.contains("returned -11"), "{}", e.message);
    }
    {
        let _m = with_mode("wrong_pin");
        let e = r.social_card(CardCall::HeaSec, INIT, Mapping::default()).unwrap_err();
        assert!(e.code == Code::Business && e.message.contains("密码错误"), "{}", e.message);
    }
    {
        let _m = with_mode("garbage");
        for e in [
            r.ecard(URL, &asker()).unwrap_err(),
            r.social_card(CardCall::HeaSec, INIT, Mapping::default()).unwrap_err(),
            r.id_card().unwrap_err(),
        ] {
            assert_eq!(e.code, Code::Protocol, "{}", e.message);
            assert!(e.message.contains("libfake_reader.so") || e.message.contains("NationEcTrans"), "{}", e.message);
        }
    }
    // A buffer overrun (past the usable part, into the guard) is caught and named.
    {
        let _m = with_mode(&format!("overflow:{}", ECARD_OUT + 100));
        let e = r.ecard(URL, &asker()).unwrap_err();
        assert_eq!(e.code, Code::Protocol);
        assert!(e.message.contains("wrote past the end"), "{}", e.message);
    }
    // Init refused: said, and tried again next time.
    let r2 = Reader::open(&lib, Duration::from_secs(5)).unwrap();
    let _m = with_mode("init_fail");
    let e = r2.social_card(CardCall::HeaSec, INIT, Mapping::default()).unwrap_err();
    assert!(e.message.contains("Init") && e.message.contains("读卡器未连接"), "{}", e.message);
}

#[test]
fn a_reader_that_never_returns_is_abandoned_after_its_timeout() {
    let Some(lib) = fake_reader() else { return };
    let r = Reader::open(&lib, Duration::from_millis(300)).unwrap();
    let started = std::time::Instant::now();
    let e = {
        let _m = with_mode("hang");
        r.social_card(CardCall::SsCardDriver(3), "", Mapping::default()).unwrap_err()
    };
    assert_eq!(e.code, Code::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(e.message.contains("did not return within 300 ms"), "{}", e.message);
    // Not called again: the library may be stuck for good.
    let _m = with_mode("ok");
    let e = r.id_card().unwrap_err();
    assert!(e.code == Code::Timeout && e.message.contains("restart the program"), "{}", e.message);
    // A reader that is not there.
    let e = Reader::open(std::path::Path::new("/nonexistent/libreader.so"), Duration::from_secs(1)).err().unwrap();
    assert!(e.message.contains("cannot load the reader library"), "{}", e.message);
}
