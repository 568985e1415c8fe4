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
    // UTF-8 with a BOM, which a Chinese Excel needs to read it as UTF-8.
    let out = out.strip_prefix('\u{feff}').expect("a BOM first");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("request_id,msgid,infno,state"));
    assert!(out.contains("未查询到"), "the Chinese error text: {out}");
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
    for what in ["OK   config", "OK   journal", "OK   sealing", "OK   gateway", "OK   clock", "OK   sign-in"] {
        assert!(out.contains(what), "{what} in:\n{out}");
    }
    assert!(out.contains("mi_journal.db.key"), "the check names the key file:\n{out}");
    let dead = env.dir.path().join("dead.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead_cfg =
        env.config(json!({"gateway": {"url": format!("http://127.0.0.1:{port}/fsi"), "connect_timeout_ms": 300}}));
    std::fs::write(&dead, dead_cfg.to_string()).unwrap();
    let (code, out, _) = cli(&dead, &["check"]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL gateway"), "{out}");

    // The export for Excel: GBK by option, and a reader that stops early.
    let (code, out, _) = cli(&file, &["export", "--from", &today, "--encoding", "gbk"]);
    assert_eq!(code, 0);
    assert!(!out.starts_with('\u{feff}'));
    let (code, _, err) = cli(&file, &["export", "--from", &today, "--encoding", "latin1"]);
    assert_eq!(code, 2, "{err}");
    let exe = target_dir().join("mi-sdk");
    // `true` reads nothing and exits at once: the writes meet a closed pipe.
    let piped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "\"{}\" --config \"{}\" export --from {today} | true; \"{0}\" --help | true",
            exe.display(),
            file.display()
        ))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&piped.stderr).trim().is_empty(), "{}", String::from_utf8_lossy(&piped.stderr));

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
    let cfg = sim.config(json!({
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "catalogue", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "cashier"},
        "journal": {"path": "mi_journal.db"}
    }));
    let file = work.path().join("mi_sdk.json");
    std::fs::write(&file, cfg.to_string()).unwrap();
    (sim, work, file)
}

/// The names in a folder, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// `mi-sdk catalog 1301 --out DIR` as the platform serves it: the query names a
/// file and no version; 9102 gets it only as `fixmedins_code: "plc"`; its 100,000
/// rows of the real 92-column layout become CSV with that layout's header, `null`
/// empty and Java dates ISO; the highest `ver` among the rows is the version
/// reached, and the next run asks from there. `--since` fetches only newer rows.
#[test]
fn catalog_downloads_as_csv_and_resumes_by_version() {
    let (sim, work, file) = catalog_setup();
    let out = work.path().join("catalogues");
    let (code, stdout, stderr) = cli(&file, &["catalog", "1301", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("1301 version 20261115002: 100000 rows"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("1301_20261115002.csv")).unwrap();
    let mut lines = csv.lines();
    let layout: Vec<&str> = include_str!("../data/catalogues/1301.columns").lines().collect();
    assert_eq!(layout.len(), 92);
    assert_eq!(lines.next(), Some(layout.join(",").as_str()));
    assert_eq!(lines.clone().count(), 100_000);
    assert!(lines.clone().all(|l| l.split(',').count() == 92), "every row whole");
    let ver_at = layout.iter().position(|c| *c == "ver").unwrap();
    let newer = lines.clone().filter(|l| l.split(',').nth(ver_at) == Some("20261115002")).count();
    assert_eq!(newer, 10_000);
    assert!(!csv.contains(",null,") && !csv.contains(" CST "), "null cells emptied, Java dates converted");
    assert!(csv.contains(",2000-01-01 00:00:00,"), "a Java date as ISO");
    assert_eq!(std::fs::read_to_string(out.join("1301.version")).unwrap(), "20261115002");
    assert_eq!(names_in(&out), vec!["1301.version", "1301_20261115002.csv"], "no download left behind");

    // Resumed: the version recorded is the newest, so nothing is downloaded again.
    let (code, stdout, _) = cli(&file, &["catalog", "1301", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("up to date (version 20261115002)"), "{stdout}");
    // 1301 three times (the first run asks again after its download, to find
    // nothing newer), 9102 once.
    let ledger = sim.ledger();
    assert_eq!((ledger["by_infno"]["1301"].as_u64(), ledger["by_infno"]["9102"].as_u64()), (Some(3), Some(1)));

    // From a version on: only the rows changed after it.
    let out2 = work.path().join("since");
    let (code, stdout, stderr) =
        cli(&file, &["catalog", "1301", "--since", "20261101001", "--out", out2.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("1301 version 20261115002: 10000 rows"), "{stdout}");
    // Usage mistakes.
    assert_eq!(cli(&file, &["catalog", "--out", out.to_str().unwrap()]).0, 2);
    assert_eq!(cli(&file, &["catalog", "1301"]).0, 2);
}

/// The 9102 of a catalogue file goes out as the platform's own (`plc`): sent
/// under the institution's code, as before, the platform finds no such file.
#[test]
fn catalogue_files_are_fetched_as_plc() {
    let (sim, work, file) = catalog_setup();
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    cfg["files"] = json!({"catalog_fixmedins_code": "H44030000001"});
    let own = work.path().join("own.json");
    std::fs::write(&own, cfg.to_string()).unwrap();
    let out = work.path().join("c");
    let (code, stdout, stderr) = cli(&own, &["catalog", "1305", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("9102") && stderr.contains("H44030000001"), "{stderr}");
    assert!(names_in(&out).is_empty(), "{:?}", names_in(&out));
    let (code, stdout, stderr) = cli(&file, &["catalog", "1305", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("1305 version 20261115002: 300 rows"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("1305_20261115002.csv")).unwrap();
    assert!(csv.starts_with(&include_str!("../data/catalogues/1305.columns").lines().collect::<Vec<_>>().join(",")));
    // A platform whose filter takes the version asked for too answers it again: that
    // is nothing newer, and the whole file of that version is not overwritten by it.
    sim.fault(json!({"catalogue_ver": "20261115002"}));
    let (code, stdout, stderr) = cli(&file, &["catalog", "1305", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("up to date (version 20261115002)"), "{stdout}");
    assert_eq!(std::fs::read_to_string(out.join("1305_20261115002.csv")).unwrap(), csv);
    assert_eq!(names_in(&out), vec!["1305.version", "1305_20261115002.csv"]);
}

/// A catalogue whose rows change layout part-way is refused, naming the line, and
/// nothing is recorded: the next run fetches it again.
#[test]
fn catalog_refuses_a_layout_change_mid_stream() {
    let (sim, work, file) = catalog_setup();
    let out = work.path().join("c");
    sim.fault(json!({"catalogue_break_layout_at": 5}));
    let (code, stdout, stderr) = cli(&file, &["catalog", "1307", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("line 5: 25 columns where the rows before have 24"), "{stderr}");
    assert!(names_in(&out).is_empty(), "{:?}", names_in(&out));
}

/// The paged catalogues (1312 …) are fetched page by page into the same CSV
/// shape; a run broken off part-way goes on from the page after the last one
/// written, and the next run asks only for what changed since the run began.
#[test]
fn a_paged_catalogue_is_fetched_page_by_page_and_resumes() {
    let (sim, work, file) = catalog_setup();
    let out = work.path().join("c");
    // Record 1,500 (page 2) has a field the pages before did not: the run stops there.
    sim.fault(json!({"catalogue_break_layout_at": 1500}));
    let (code, stdout, stderr) = cli(&file, &["catalog", "1312", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("page 2 record 500") && stderr.contains("new_field"), "{stderr}");
    assert_eq!(names_in(&out), vec![".1312.csv.part", ".1312.paging"], "page 1 kept for the next run");
    sim.fault(json!({"catalogue_break_layout_at": 0}));
    let (code, stdout, stderr) = cli(&file, &["catalog", "1312", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(": 2345 rows ->"), "{stdout}");
    // Pages 1 and 2, then 2 and 3: page 1 was not fetched again.
    assert_eq!(sim.ledger()["by_infno"]["1312"].as_u64(), Some(4));
    let names = names_in(&out);
    assert_eq!(names.len(), 2, "{names:?}");
    let csv = std::fs::read_to_string(out.join(&names[1])).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert_eq!(header, include_str!("../data/catalogues/1312.columns").lines().collect::<Vec<_>>().join(","));
    let codes: std::collections::BTreeSet<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(codes.len(), 2345, "every record once");
    let since = std::fs::read_to_string(out.join("1312.version")).unwrap();
    assert!(stdout.contains(&format!("1312 version {since}")), "{stdout} / {since}");

    // From a time on: only the records updated since.
    let (code, stdout, _) = cli(
        &file,
        &["catalog", "1312", "--since", "2026-01-01 00:00:00", "--out", work.path().join("d").to_str().unwrap()],
    );
    assert_eq!(code, 0);
    assert!(stdout.contains(": 335 rows ->"), "{stdout}");
    // Again from the time recorded: nothing has changed since.
    let (code, stdout, _) = cli(&file, &["catalog", "1312", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("up to date"), "{stdout}");
}

/// `mi-sdk catalog` names its files after the highest `ver` in the rows: a `ver`
/// that is not a plain name (`../../x`, or one that would pass the "newer" test)
/// is refused before anything is written, inside the folder or out.
#[test]
fn catalog_refuses_a_hostile_version() {
    let (sim, work, file) = catalog_setup();
    let out = work.path().join("a/b/catalogues");
    for ver in ["../../x", "9/../../../x", "9\\..\\..\\x", "2026 1101", "版本2"] {
        sim.fault(json!({"catalogue_ver": ver}));
        let (code, stdout, stderr) = cli(&file, &["catalog", "1305", "--out", out.to_str().unwrap()]);
        assert_eq!(code, 1, "{ver}: {stdout}\n{stderr}");
        assert!(stderr.contains("version") && stderr.contains("A-Z"), "{ver}: {stderr}");
        let written: Vec<String> = files_under(work.path())
            .into_iter()
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .filter(|p| !p.contains("mi_journal.db") && !p.ends_with("mi_sdk.json") && !p.contains("/logs/"))
            .collect();
        assert!(written.is_empty(), "{ver}: written {written:?}");
    }
}

/// `mi-sdk ARGS` in an empty folder with no config anywhere: exit code, stdout, stderr.
fn without_config(args: &[&str]) -> (Option<i32>, String, String) {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(target_dir().join("mi-sdk"))
        .args(args)
        .current_dir(empty.path())
        .env_remove("MI_SDK_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a newcomer types first needs no config: the usage, and each command's.
#[test]
fn help_needs_no_config() {
    let run = |args: &[&str]| {
        let (code, out, _) = without_config(args);
        (code, out)
    };
    let (code, all) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(all.contains("  export --from DATE") && all.contains("  check [--sign-in]"), "{all}");
    for args in [&["help", "export"][..], &["export", "--help"], &["--config", "nowhere.json", "export", "-h"]] {
        let (code, one) = run(args);
        assert_eq!(code, Some(0), "{args:?}");
        assert!(one.contains("--encoding utf8-bom|utf8|gbk") && !one.contains("check [--sign-in]"), "{args:?}: {one}");
    }
    assert_eq!(run(&["help", "frobnicate"]).0, Some(2));
    // Without help, a command still needs its config, and says where it looked.
    let (code, _) = run(&["status"]);
    assert_eq!(code, Some(1));
}

/// `mi-sdk service` is for Windows (tests/windows.rs runs it under Wine's Service
/// Control Manager); here it says what to do instead, and its arguments are checked
/// as anywhere.
#[test]
fn the_windows_service_commands_say_what_to_do_elsewhere() {
    let run = |args: &[&str]| {
        let (code, _, err) = without_config(args);
        (code, err)
    };
    for action in ["start", "stop", "uninstall"] {
        let (code, err) = run(&["service", action]);
        assert_eq!(code, Some(1), "{action}: {err}");
        assert!(err.contains("mi-sdk serve --watch DIR") && err.contains("systemd"), "{action}: {err}");
    }
    // install checks its arguments, then the config, before anything else.
    let (code, err) = run(&["service", "install"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("service install needs one of --watch DIR, --bridge, --http ADDR"), "{err}");
    let (code, err) = run(&["service", "install", "--watch", "box", "--http", "127.0.0.1:8765"]);
    assert_eq!(code, Some(2), "two things to serve: {err}");
    let (code, err) = run(&["service", "install", "--watch", "box"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no config given"), "{err}");
    let (code, err) = run(&["service", "frobnicate"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["service", "start", "--name", "two words"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("service name"), "{err}");
    let (code, err) = run(&["service", "run", "--watch", "box", "--config", "x.json"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is for Windows"), "{err}");
    let (code, help, _) = without_config(&["help", "service"]);
    assert_eq!(code, Some(0));
    assert!(help.contains("service install|start|stop|uninstall") && help.contains("run as administrator"), "{help}");
}

/// `mi-sim` with a gateway profile says which credentials a config must carry.
#[test]
fn the_simulator_prints_the_credentials_it_expects() {
    let mut child = Command::new(target_dir().join("mi-sim"))
        .args(["--addr", "127.0.0.1:0", "--profile", "tif", "--paas-id", "his-1", "--paas-token", "tok-2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let said = lines.nth(1).unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(said.contains(r#""paas_id": "his-1""#) && said.contains(r#""paas_token": "tok-2""#), "{said}");
}
