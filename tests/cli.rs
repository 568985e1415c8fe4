//! The operators' CLI run as a process against a journal filled through the C ABI and
//! the simulator; and the logs it points people to: one line per call, rotation, no
//! full ID numbers.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::process::Command;

#[test]
fn status_requests_show_and_reverse_from_the_command_line() {
    let _g = serial();
    let env = Env::plain();
    let cfg = env.config(
        json!({"gateway": {"timeout_ms": 800}, "retry": {"max_attempts": 2, "base_delay_ms": 20, "max_delay_ms": 50}}),
    );
    let file = env.dir.path().join("mi_sdk.json");
    std::fs::write(&file, cfg.to_string()).unwrap();
    assert_eq!(init_text(&cfg.to_string()), MI_OK);
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    assert_eq!(call("1101", q1101("000")).0, MI_E_BUSINESS);
    let settle = visit("44030000000000100001", "CLI1", 10.0);
    let mut input = settle.clone();
    input["_sim"] = json!({"drop": true});
    let (rc, _) = call("2207", json!({"input": input, "insuplc_admdvs": "440300"}));
    assert_eq!(rc, MI_E_UNCERTAIN);
    let uncertain = mi_last_request_id();
    let paid = visit("44030000000000100001", "CLI2", 12.5);
    assert_eq!(call("2207", json!({"input": paid, "insuplc_admdvs": "440300"})).0, MI_OK);
    mi_shutdown(2000);

    let (code, out, err) = cli(&file, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let st: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["counts"]["uncertain"], 1);
    assert_eq!(st["counts"]["business_error"], 1);
    assert_eq!(st["sign_in"]["signed_in"], true);
    // The same document as mi_get_status, read from the journal.
    assert_eq!(st["last_failure"]["infno"], "2207");
    assert!(st["last_error"].as_str().unwrap().starts_with("2207: "), "{st}");
    assert_eq!(st["queue_depth"], 0);
    assert!(st.get("workers").is_none(), "no running SDK, no workers: {st}");
    assert!(st["journal_bytes"].as_u64().unwrap() > 0 && st["latency_ms"]["p50"].is_number());
    let (code, out, _) = cli(&file, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("signed in") && out.contains("ACTION") && out.contains("1 uncertain"), "{out}");

    let (code, out, _) = cli(&file, &["requests", "--state", "uncertain", "--json"]);
    assert_eq!(code, 0);
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!((rows[0]["request_id"].as_i64(), rows[0]["infno"].as_str()), (Some(uncertain), Some("2207")));
    let (_, out, _) = cli(&file, &["requests", "--infno", "1101"]);
    assert!(out.contains("business_error") && out.contains("2 request(s)"), "{out}");

    let (code, out, _) = cli(&file, &["show", &uncertain.to_string(), "--json"]);
    assert_eq!(code, 0);
    let rec: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rec["attempt_rows"][0]["outcome"], "maybe_processed");

    // The day's report and the CSV export.
    let (code, out, err) = cli(&file, &["report", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rep: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rep["settled"]["count"], 1);
    assert_eq!(rep["settled"]["medfee_sumamt"], 12.5);
    assert_eq!(rep["uncertain"].as_array().unwrap().len(), 1);
    assert!(rep["failures"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["err_msg"].as_str().unwrap_or("").contains("未查询到")));
    let (_, out, _) = cli(&file, &["report"]);
    assert!(out.contains("ACTION: 1 uncertain"), "{out}");
    let today = rep["date"].as_str().unwrap().to_string();
    let (code, out, _) = cli(&file, &["export", "--from", &today]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("request_id,msgid,infno,state"));
    assert_eq!(lines.len() - 1, rep["requests"].as_u64().unwrap() as usize);
    assert!(lines.iter().any(|l| l.contains(",business_error,")));
    assert_eq!(cli(&file, &["export", "--from", "27/11/2026"]).0, 2);

    let (code, out, err) = cli(&file, &["reverse", &uncertain.to_string()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("reversed by request"), "{out}");
    let (_, out, _) = cli(&file, &["show", &uncertain.to_string()]);
    assert!(out.contains("reversed") && out.contains("reversed by request"), "{out}");
    let last = env.ledger()["reversals"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["effect"], "reversed");

    // The installation check, and a sign-in through it.
    let (code, out, err) = cli(&file, &["check", "--sign-in"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for what in ["OK   config", "OK   journal", "OK   gateway", "OK   clock", "OK   sign-in"] {
        assert!(out.contains(what), "{what} in:\n{out}");
    }
    let dead = env.dir.path().join("dead.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead_cfg =
        env.config(json!({"gateway": {"url": format!("http://127.0.0.1:{port}/fsi"), "connect_timeout_ms": 300}}));
    std::fs::write(&dead, dead_cfg.to_string()).unwrap();
    let (code, out, _) = cli(&dead, &["check"]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL gateway"), "{out}");

    // The simulator through the CLI, with no config needed.
    let out = Command::new(target_dir().join("mi-sdk")).args(["sim", "--help"]).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("usage: mi-sim"));

    // Script-friendly failures.
    assert_eq!(cli(&file, &["requests", "--state", "bogus"]).0, 2);
    assert_eq!(cli(&file, &["frobnicate"]).0, 2);
    let (code, _, err) = cli(&file, &["show", "987654"]);
    assert_eq!((code, err.contains("no request 987654")), (1, true));
    let other = env.dir.path().join("other.json");
    std::fs::write(
        &other,
        env.config(json!({"journal": {"path": env.dir.path().join("none.db").to_string_lossy()}})).to_string(),
    )
    .unwrap();
    let (code, _, err) = cli(&other, &["status"]);
    assert_eq!((code, err.contains("no journal")), (1, true), "{err}");
    assert!(!env.dir.path().join("none.db").exists(), "an operator's command never creates a journal");

    // One log line per call, with its msgid; no full ID number anywhere in the logs.
    let logs = files_under(&env.dir.path().join("logs"));
    let all: Vec<u8> = logs.iter().flat_map(|(_, b)| b.clone()).collect();
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.lines().any(|l| l.contains("call infno=2207 msgid=H44030000001") && l.contains("outcome=MI_E_UNCERTAIN")),
        "{text}"
    );
    assert!(!contains(&all, ZHANG_CERTNO.as_bytes()));
}

#[test]
fn logs_roll_over_at_max_file_mb_and_keep_keep_files() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"log": {"level": "debug", "max_file_mb": 1, "keep_files": 2}})), MI_OK);
    let mut big = q1101(ZHANG_CERTNO);
    big["pad"] = json!("x".repeat(150_000));
    for _ in 0..25 {
        assert_eq!(call("1101", big.clone()).0, MI_OK);
    }
    mi_shutdown(2000);
    let files = files_under(&env.dir.path().join("logs"));
    let names: Vec<String> = files.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.contains(&"mi_sdk.log".to_string()), "{names:?}");
    let rolled = names.iter().filter(|n| n.starts_with("mi_sdk.") && n.as_str() != "mi_sdk.log").count();
    assert!((1..=2).contains(&rolled), "rolled files: {names:?}");
    for (p, b) in &files {
        assert!(b.len() < 1_500_000, "{} is {} bytes", p.display(), b.len());
        assert!(!contains(b, ZHANG_CERTNO.as_bytes()));
    }
}

#[test]
fn a_log4rs_file_replaces_the_built_in_logging() {
    let _g = serial();
    let env = Env::plain();
    let custom = env.dir.path().join("hospital-logs/his-mi.log");
    let yaml = format!(
        "appenders:\n  his:\n    kind: file\n    path: \"{}\"\n    encoder:\n      pattern: \"HIS {{l}} {{m}}{{n}}\"\nroot:\n  level: info\n  appenders:\n    - his\n",
        custom.display()
    );
    let yaml_path = env.dir.path().join("log4rs.yaml");
    std::fs::write(&yaml_path, yaml).unwrap();
    assert_eq!(env.init(json!({"log": {"log4rs_file": yaml_path.to_string_lossy()}})), MI_OK, "{}", last_error());
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    mi_shutdown(1000);
    let text = std::fs::read_to_string(&custom).unwrap();
    assert!(text.lines().any(|l| l.starts_with("HIS INFO call infno=1101 msgid=")), "{text}");
    assert!(!env.dir.path().join("logs/mi_sdk.log").exists(), "the built-in file is not used");
    // A broken log4rs file is a config error that names the key.
    std::fs::write(&yaml_path, "appenders: [").unwrap();
    assert_eq!(env.init(json!({"log": {"log4rs_file": yaml_path.to_string_lossy()}})), MI_E_CONFIG);
    assert!(last_error().contains("log.log4rs_file"), "{}", last_error());
}

/// A simulator process, a work folder, and a config there for the catalogue tests.
fn catalog_setup() -> (SimProcess, tempfile::TempDir, std::path::PathBuf) {
    let sim = SimProcess::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let cfg = json!({
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "catalogue", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "cashier"},
        "gateway": {"url": sim.url},
        "journal": {"path": "mi_journal.db"}
    });
    let file = work.path().join("mi_sdk.json");
    std::fs::write(&file, cfg.to_string()).unwrap();
    (sim, work, file)
}

/// Issue 9: `mi-sdk catalog 1301 --out DIR` turns the 100,000-row catalogue into
/// UTF-8 CSV with a header row, records the version, and the next run finds it up
/// to date without downloading again.
#[test]
fn catalog_downloads_as_csv_and_resumes_by_version() {
    let (sim, work, file) = catalog_setup();
    let out = work.path().join("catalogues");
    let (code, stdout, stderr) = cli(&file, &["catalog", "1301", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("1301 version 20261101001: 100000 rows"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("1301_20261101001.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("med_list_codg,drug_genname,drug_prodname,drug_dosform,drug_spec,pacunt,prodentp_name,aprvno,chrgitm_lv,vali_flag,rid,ver"));
    assert_eq!(lines.clone().count(), 100_000);
    assert!(lines.all(|l| l.split(',').count() == 12));
    assert_eq!(std::fs::read_to_string(out.join("1301.version")).unwrap(), "20261101001");
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, vec!["1301.version", "1301_20261101001.csv"], "no download left behind");

    // Resumed: the version recorded is the newest, so nothing is downloaded again.
    let (code, stdout, _) = cli(&file, &["catalog", "1301", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("up to date (version 20261101001)"), "{stdout}");
    // 1301 three times (the first run asks again after its download, to find the
    // newest version), 9102 once.
    let ledger = sim.ledger();
    assert_eq!((ledger["by_infno"]["1301"].as_u64(), ledger["by_infno"]["9102"].as_u64()), (Some(3), Some(1)));
    // Usage mistakes.
    assert_eq!(cli(&file, &["catalog", "--out", out.to_str().unwrap()]).0, 2);
    assert_eq!(cli(&file, &["catalog", "1301"]).0, 2);
}

/// `mi-sdk catalog` names its files after the platform's `ver`: a `ver` that is
/// not a plain name (`../../x`, or one that would pass the "newer" test) is
/// refused before anything is downloaded or written, inside the folder or out.
#[test]
fn catalog_refuses_a_hostile_version() {
    let (sim, work, file) = catalog_setup();
    let out = work.path().join("a/b/catalogues");
    for ver in ["../../x", "9/../../../x", "9\\..\\..\\x", "2026 1101", "版本2"] {
        sim.fault(json!({"catalogue_ver": ver}));
        let (code, stdout, stderr) = cli(&file, &["catalog", "1301", "--out", out.to_str().unwrap()]);
        assert_eq!(code, 1, "{ver}: {stdout}\n{stderr}");
        assert!(stderr.contains("ver") && stderr.contains("A-Z"), "{ver}: {stderr}");
        let written: Vec<String> = files_under(work.path())
            .into_iter()
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .filter(|p| !p.contains("mi_journal.db") && !p.ends_with("mi_sdk.json") && !p.contains("/logs/"))
            .collect();
        assert!(written.is_empty(), "{ver}: written {written:?}");
    }
    assert_eq!(sim.ledger()["by_infno"]["9102"].as_u64(), None, "nothing downloaded");
}
