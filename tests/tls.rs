//! TLS (issue 8): the simulator serves HTTPS with a certificate from a test CA made
//! by `openssl`. With `tls_verify: true` an untrusted certificate, another CA's or
//! one for another host name is refused with a clear error and the request is not
//! sent; `gateway.ca_file` naming the right CA makes it pass; an `https` URL never
//! falls back to plain HTTP.

mod common;

use common::*;
use mi_sdk::ffi::*;
use mi_sim::{Profile, Sim, SimConfig};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`<name>-ca.pem`) and a server certificate it signed for 127.0.0.1 only
/// (`<name>-server.pem`, `<name>-server.key`), in `dir`.
fn make_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let (ca_key, ca, key, csr, cert, ext) = (
        format!("{name}-ca.key"),
        format!("{name}-ca.pem"),
        format!("{name}-server.key"),
        format!("{name}-server.csr"),
        format!("{name}-server.pem"),
        format!("{name}-ext.cnf"),
    );
    let subject = format!("/CN=mi-sim test CA {name}");
    openssl(
        dir,
        &[&["req", "-x509"][..], &ec, &["-keyout", &ca_key, "-out", &ca, "-days", "2", "-subj", &subject]].concat(),
    );
    openssl(dir, &[&["req"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
    (dir.join(ca), dir.join(cert), dir.join(key))
}

fn https_env(cert: &Path, key: &Path) -> Env {
    let cfg = SimConfig {
        tls_cert_pem: std::fs::read(cert).unwrap(),
        tls_key_pem: std::fs::read(key).unwrap(),
        ..SimConfig::default()
    };
    let sim = Sim::start(cfg, "127.0.0.1:0").expect("the simulator serves HTTPS");
    assert!(sim.service_url().starts_with("https://"));
    Env { sim, dir: tempfile::tempdir().unwrap(), profile: Profile::Plain, region: Region::National }
}

/// Registration (2201) changes state: a refused certificate must read "not sent"
/// (`MI_E_NETWORK`), never "may have been processed".
fn register() -> (i32, serde_json::Value) {
    call(
        "2201",
        json!({"input": {"data": {"psn_no": "44030000000000300003", "insutype": "310", "ipt_otp_no": "T1"}}, "insuplc_admdvs": "440300"}),
    )
}

#[test]
fn untrusted_certificates_are_refused_and_a_configured_ca_is_trusted() {
    if !require_tool("openssl", &["version"]) {
        return;
    }
    let _g = serial();
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_ca(certs.path(), "good");
    let (other_ca, _, _) = make_ca(certs.path(), "other");
    let env = https_env(&cert, &key);
    // A refused certificate is "not sent", which is retried; once is enough here.
    let once = |gateway: serde_json::Value| json!({"gateway": gateway, "retry": {"max_attempts": 1}});

    // First trusted, which also signs the operator in for the day (kept in the
    // journal), so that below a 2201 meets the refused certificate itself.
    // The CA file (relative to the config's folder, as an operator writes it).
    std::fs::copy(&ca, env.dir.path().join("bureau-ca.pem")).unwrap();
    let cfg_file = env.dir.path().join("mi_sdk.json");
    std::fs::write(&cfg_file, env.config(json!({"gateway": {"ca_file": "bureau-ca.pem"}})).to_string()).unwrap();
    assert_eq!(init_text(cfg_file.to_str().unwrap()), MI_OK, "{}", last_error());
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_OK, "{out}");
    let (rc, out) = register();
    assert_eq!(rc, MI_OK, "{out}");
    mi_shutdown(1000);
    // The installation check goes through the same transport, so it trusts the
    // bureau's CA too, and refuses what the SDK refuses.
    let (code, out, err) = cli(&cfg_file, &["check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("OK   gateway"), "{out}");
    let other_file = env.dir.path().join("other.json");
    let other_cfg = env.config(json!({"gateway": {"ca_file": other_ca.to_string_lossy()}}));
    std::fs::write(&other_file, other_cfg.to_string()).unwrap();
    let (code, out, _) = cli(&other_file, &["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL gateway") && out.contains("TLS certificate was refused"), "{out}");
    let ledger = env.ledger();
    assert_eq!((ledger["by_infno"]["1101"].as_u64(), ledger["by_infno"]["2201"].as_u64()), (Some(1), Some(1)));
    let sent = ledger["requests"].clone();

    // The Mozilla roots do not know the test CA; nor does another CA vouch for it.
    for (what, patch) in
        [("built-in roots", once(json!({}))), ("another CA", once(json!({"ca_file": other_ca.to_string_lossy()})))]
    {
        assert_eq!(env.init(patch), MI_OK, "{what}: {}", last_error());
        let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
        assert_eq!(rc, MI_E_NETWORK, "{what}: {out}");
        let err = last_error();
        assert!(err.contains("TLS certificate was refused") && err.contains("UnknownIssuer"), "{what}: {err}");
        assert!(err.contains("gateway.ca_file"), "{what}: the message says what to do: {err}");
        let (rc, out) = register();
        assert_eq!(rc, MI_E_NETWORK, "{what}: a refused handshake means not sent, never uncertain: {out}");
        let err = last_error();
        assert!(err.contains("TLS certificate was refused") && !err.contains("sign-in"), "{what}: {err}");
        mi_shutdown(1000);
    }
    assert_eq!(env.ledger()["requests"], sent, "nothing reached the platform");

    // The right CA, but a host name the certificate does not name.
    let by_name = env.sim.service_url().replace("127.0.0.1", "localhost");
    assert_eq!(env.init(once(json!({"url": by_name, "ca_file": ca.to_string_lossy()}))), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_E_NETWORK);
    assert!(last_error().contains("not valid for name"), "{}", last_error());
    mi_shutdown(1000);
    assert_eq!(env.ledger()["requests"], sent);

    // Turning verification off is explicit, and logged.
    assert_eq!(env.init(json!({"gateway": {"tls_verify": false}})), MI_OK);
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_OK, "{out}");
    mi_shutdown(1000);
    let log = std::fs::read_to_string(env.dir.path().join("logs/mi_sdk.log")).unwrap();
    assert!(log.contains("tls_verify is false"), "the log says verification is off");
}

#[test]
fn a_bad_ca_file_is_a_config_error_naming_the_key() {
    let _g = serial();
    let env = Env::plain();
    let dir = env.dir.path();
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    std::fs::write(
        dir.join("junk.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for (file, why) in [("missing.pem", "cannot be read"), ("empty.pem", "no PEM certificate"), ("junk.pem", "PEM")] {
        let path = dir.join(file);
        assert_eq!(env.init(json!({"gateway": {"ca_file": path.to_string_lossy()}})), MI_E_CONFIG, "{file}");
        let err = last_error();
        assert!(err.contains("gateway.ca_file") && err.contains(why), "{file}: {err}");
    }
    assert_eq!(env.init(json!({"gateway": {"ca_file": "x.pem", "tls_verify": false}})), MI_E_CONFIG);
    assert!(last_error().contains("tls_verify is false"), "{}", last_error());
    assert_eq!(call_bytes(b"1101", q1101(ZHANG_CERTNO).to_string().as_bytes(), 4096).0, MI_E_NOT_INITIALIZED);
}

#[test]
fn an_https_url_never_falls_back_to_plain_http() {
    let _g = serial();
    // A gateway that speaks only plain HTTP, addressed as https.
    let env = Env::plain();
    let url = env.sim.service_url().replace("http://", "https://");
    // It reads the TLS hello as the start of a request head and waits for the rest,
    // so each try ends at the timeout: one try, one second.
    assert_eq!(env.init(json!({"gateway": {"url": url, "timeout_ms": 1000}, "retry": {"max_attempts": 1}})), MI_OK);
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert!(rc == MI_E_NETWORK || rc == MI_E_TIMEOUT, "{out}");
    assert_eq!(register().0, MI_E_NETWORK, "its sign-in failed, so it was not sent");
    mi_shutdown(1000);
    // The plain server saw a TLS hello, not a request: nothing was processed.
    assert_eq!(env.ledger()["processed_msgids"].as_array().map(Vec::len), Some(0));
}
