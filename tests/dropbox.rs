//! The drop-box service (`mi-sdk serve --watch DIR`) as a process: request files in,
//! result files out, and kills at any moment neither lose nor double a request.

mod common;

use common::*;
use mi_sdk::Charset;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn serve(config: &std::path::Path, dir: &std::path::Path) -> Child {
    Command::new(target_dir().join("mi-sdk"))
        .arg("--config")
        .arg(config)
        .args(["serve", "--watch"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Writes `<name>.req.json` as an HIS should: under another name, then renamed.
fn put(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!("{name}.writing"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.req.json"))).unwrap();
}

/// A 2201 registration request file for the registry's first person.
fn register(otp: &str) -> Value {
    json!({"infno": "2201", "input": {"input": {"data": {"psn_no": "44030000000000100001", "insutype": "310",
        "ipt_otp_no": otp}}, "insuplc_admdvs": "440300"}})
}

/// A 1101 request file that names 张三, so a mangled name is refused by the platform.
fn person_query() -> String {
    let mut q = q1101(ZHANG_CERTNO);
    q["data"]["psn_name"] = json!("张三");
    json!({"infno": "1101", "input": q}).to_string()
}

/// Waits for `<name>.res.json`, then takes it away as the HIS does; its bytes.
fn collect(dir: &Path, name: &str) -> Vec<u8> {
    let res = dir.join(format!("{name}.res.json"));
    assert!(wait_until(|| res.exists()), "no {name}.res.json; the folder has {:?}", names(dir));
    let bytes = std::fs::read(&res).unwrap();
    std::fs::remove_file(&res).unwrap();
    bytes
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// SIGTERM, and the clean stop it must bring.
fn stop(mut s: Child) {
    Command::new("kill").arg("-TERM").arg(s.id().to_string()).status().unwrap();
    assert!(s.wait().unwrap().success(), "SIGTERM stops it cleanly");
}

/// The exit status of a process that must stop by itself; `None` (and killed) if it
/// is still running after 20 s.
fn exits(s: &mut Child) -> Option<ExitStatus> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = s.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > until {
            let _ = s.kill();
            let _ = s.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn setup(env: &Env, patch: Value, folder: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let config = env.dir.path().join(format!("{folder}.json"));
    std::fs::write(&config, env.config(patch).to_string()).unwrap();
    let dir = env.dir.path().join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    (config, dir)
}

fn count(dir: &std::path::Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(suffix))
        .count()
}

#[test]
fn files_in_results_out_through_kills() {
    let _g = serial();
    let env = Env::plain();
    let config = env.dir.path().join("mi_sdk.json");
    std::fs::write(&config, env.config(json!({})).to_string()).unwrap();
    let dir = env.dir.path().join("dropbox");
    std::fs::create_dir_all(&dir).unwrap();
    let n = 200;
    for i in 0..n {
        let req = json!({"infno": "2201", "priority": i % 3, "input": {"input": {"data": {"psn_no": "44030000000000100001",
            "insutype": "310", "ipt_otp_no": format!("DB{i}")}}, "insuplc_admdvs": "440300"}});
        std::fs::write(dir.join(format!("visit{i:02}.req.json")), req.to_string()).unwrap();
    }
    std::fs::write(dir.join("broken.req.json"), "{\"infno\": \"2201\", ").unwrap();
    // Killed (SIGKILL) twice while it works, then left to finish.
    for wait in [60u64, 120, 200] {
        let mut s = serve(&config, &dir);
        std::thread::sleep(Duration::from_millis(wait));
        s.kill().unwrap();
        s.wait().unwrap();
        let at = |suffix| count(&dir, suffix);
        println!(
            "killed after {wait} ms: {} waiting, {} accepted, {} done",
            at(".req.json"),
            at(".accepted.json"),
            at(".done.json")
        );
    }
    let mut s = serve(&config, &dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&dir, ".res.json") < n + 1 {
        assert!(Instant::now() < deadline, "results: {} of {}", count(&dir, ".res.json"), n + 1);
        std::thread::sleep(Duration::from_millis(50));
    }
    // A clean stop on SIGTERM.
    Command::new("kill").arg("-TERM").arg(s.id().to_string()).status().unwrap();
    assert!(s.wait().unwrap().success(), "SIGTERM stops it cleanly");
    assert_eq!(count(&dir, ".req.json"), 0);
    assert_eq!(count(&dir, ".done.json"), n);
    assert_eq!(count(&dir, ".rejected.json"), 1);
    let broken: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("broken.res.json")).unwrap()).unwrap();
    assert_eq!(broken["mi_code"], -1);
    let mut ok = 0;
    for i in 0..n {
        let res: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("visit{i:02}.res.json"))).unwrap()).unwrap();
        let code = res["mi_code"].as_i64().unwrap();
        // Uncertain only when a kill came while it was on the wire; never a double registration.
        assert!(code == 0 || code == -9, "visit{i:02}: {res}");
        assert!(!res.to_string().contains("已登记"), "visit{i:02} was registered twice: {res}");
        ok += usize::from(code == 0);
    }
    let ledger = env.ledger();
    let visits = ledger["visits"].as_array().unwrap();
    let mut otp: Vec<&str> = visits.iter().map(|v| v["ipt_otp_no"].as_str().unwrap()).collect();
    otp.sort();
    otp.dedup();
    assert_eq!(otp.len(), visits.len(), "no visit registered twice");
    assert!(visits.len() >= ok && visits.len() <= n, "{} visits for {ok} confirmed", visits.len());
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
}

/// A request file name used again is a new request: the second registration under
/// `visit` is sent and answered for itself, and so is a third with the very same
/// bytes (the platform's own answer says it saw that visit already) — never the
/// earlier request's answer.
#[test]
fn a_reused_name_is_a_new_request() {
    let _g = serial();
    let env = Env::plain();
    let (config, dir) = setup(&env, json!({}), "dropbox");
    let s = serve(&config, &dir);
    let mut answers = Vec::new();
    for otp in ["REUSE-A", "REUSE-B", "REUSE-B"] {
        put(&dir, "visit", register(otp).to_string().as_bytes());
        answers.push(serde_json::from_slice::<Value>(&collect(&dir, "visit")).unwrap());
    }
    stop(s);
    let ids: Vec<i64> = answers.iter().map(|a| a["request_id"].as_i64().unwrap()).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{answers:?}");
    assert_eq!((answers[0]["mi_code"].as_i64(), answers[1]["mi_code"].as_i64()), (Some(0), Some(0)), "{answers:?}");
    let mdtrt = |a: &Value| a["result"]["output"]["data"]["mdtrt_id"].as_str().unwrap().to_string();
    assert_ne!(mdtrt(&answers[0]), mdtrt(&answers[1]));
    assert_ne!(answers[2]["mi_code"], 0, "{}", answers[2]);
    assert!(
        answers[2].to_string().contains("已登记"),
        "the third was sent, and refused by the platform: {}",
        answers[2]
    );
    let ledger = env.ledger();
    let otp: Vec<&str> =
        ledger["visits"].as_array().unwrap().iter().map(|v| v["ipt_otp_no"].as_str().unwrap()).collect();
    assert_eq!(otp, ["REUSE-A", "REUSE-B"]);
    assert_eq!(count(&dir, ".done.json"), 3);
}

/// One service per folder: a second one says so and exits 1 while the first goes
/// on; the lock goes with the process, so once the first is killed a new one starts.
#[test]
fn a_second_service_on_the_folder_refuses_to_start() {
    let _g = serial();
    let env = Env::plain();
    let (config, dir) = setup(&env, json!({}), "dropbox");
    let mut first = serve(&config, &dir);
    put(&dir, "one", register("LOCK-1").to_string().as_bytes());
    collect(&dir, "one");
    let mut second = Command::new(target_dir().join("mi-sdk"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--watch"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exits(&mut second).expect("the second service stops by itself");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another mi-sdk serve") && !stderr.contains("mi-sdk: watching"), "{stderr}");
    // The first is still the one at work.
    put(&dir, "two", register("LOCK-2").to_string().as_bytes());
    assert_eq!(serde_json::from_slice::<Value>(&collect(&dir, "two")).unwrap()["mi_code"], 0);
    first.kill().unwrap();
    first.wait().unwrap();
    let again = serve(&config, &dir);
    put(&dir, "three", register("LOCK-3").to_string().as_bytes());
    assert_eq!(serde_json::from_slice::<Value>(&collect(&dir, "three")).unwrap()["mi_code"], 0);
    stop(again);
    assert_eq!(env.ledger()["visits"].as_array().unwrap().len(), 3);
}

/// A request file whose source the journal already has (taken and committed, and
/// the service stopped before it could say so) is followed to the outcome of the
/// request that was sent: its real answer, not "rejected", and nothing sent again.
#[test]
fn a_request_already_in_the_journal_gets_its_real_outcome() {
    let _g = serial();
    let env = Env::plain();
    let (config, dir) = setup(&env, json!({}), "dropbox");
    let taken = "visit@0123456789abcdef";
    let req = register("FOLLOW-1");
    let source = format!("dropbox:{}/{taken}", dir.canonicalize().unwrap().display());
    let id = {
        let cfg = mi_sdk::Config::from_json(&env.config(json!({})).to_string(), env.dir.path()).unwrap();
        let sdk = mi_sdk::Sdk::start(cfg).unwrap();
        let id = sdk.call_async_from("2201", &req["input"].to_string(), 0, Some(&source)).unwrap();
        assert!(wait_until(|| sdk.get_result(id).unwrap().code != mi_sdk::Code::Pending));
        sdk.shutdown(Duration::from_secs(10));
        id
    };
    std::fs::write(dir.join(format!("{taken}.accepted.json")), req.to_string()).unwrap();
    let s = serve(&config, &dir);
    let answer: Value = serde_json::from_slice(&collect(&dir, "visit")).unwrap();
    stop(s);
    assert_eq!((answer["request_id"].as_i64(), answer["mi_code"].as_i64()), (Some(id), Some(0)), "{answer}");
    assert_eq!(names(&dir), [".mi-sdk-serve.lock".to_string(), format!("{taken}.done.json")]);
    assert_eq!(env.ledger()["visits"].as_array().unwrap().len(), 1, "sent once");
}

/// Request files in the configured charset (GBK, as PowerBuilder and Delphi 7 write)
/// or in UTF-8 with a BOM are read; results are written in the configured charset;
/// a file that cannot be read gets a result saying why, and a log line.
#[test]
fn gbk_and_bom_files_are_read_and_unreadable_ones_answered() {
    let _g = serial();
    let env = Env::plain();
    let query = person_query();
    let bom = [b"\xEF\xBB\xBF".as_slice(), query.as_bytes()].concat();
    let gbk = Charset::Gbk.encode(&query);
    let name_of = |res: &Value| res["result"]["output"]["baseinfo"]["psn_name"].as_str().map(str::to_owned);

    // utf-8: the BOM is skipped; GBK bytes are refused with the way out.
    let (config, dir) = setup(&env, json!({}), "utf8box");
    put(&dir, "bom", &bom);
    put(&dir, "gbk", &gbk);
    let s = serve(&config, &dir);
    let ok: Value = serde_json::from_slice(&collect(&dir, "bom")).unwrap();
    let refused: Value = serde_json::from_slice(&collect(&dir, "gbk")).unwrap();
    stop(s);
    assert_eq!((ok["mi_code"].as_i64(), name_of(&ok).as_deref()), (Some(0), Some("张三")), "{ok}");
    assert_eq!(refused["mi_code"], -1, "{refused}");
    let why = refused["result"]["err_msg"].as_str().unwrap();
    assert!(why.contains("gbk.req.json") && why.contains("UTF-8") && why.contains("\"charset\": \"gbk\""), "{why}");

    // gbk: GBK bytes are read, a BOM still means UTF-8, results are GBK.
    let (config, dir) = setup(&env, json!({"charset": "gbk"}), "gbkbox");
    put(&dir, "gbk", &gbk);
    put(&dir, "bom", &bom);
    put(&dir, "bad", b"{\"infno\": \"1101\", \"input\": \"\x81\"}");
    let s = serve(&config, &dir);
    let (gbk_res, bom_res, bad_res) = (collect(&dir, "gbk"), collect(&dir, "bom"), collect(&dir, "bad"));
    stop(s);
    for bytes in [&gbk_res, &bom_res] {
        assert!(contains(bytes, b"\xD5\xC5\xC8\xFD") && !contains(bytes, "张".as_bytes()), "张三 in GBK");
    }
    let text =
        |bytes: &[u8]| -> Value { serde_json::from_str(&Charset::Gbk.decode(bytes, "a result").unwrap()).unwrap() };
    let (from_gbk, from_bom, bad) = (text(&gbk_res), text(&bom_res), text(&bad_res));
    assert_eq!((from_gbk["mi_code"].as_i64(), name_of(&from_gbk).as_deref()), (Some(0), Some("张三")), "{from_gbk}");
    assert_eq!((from_bom["mi_code"].as_i64(), name_of(&from_bom).as_deref()), (Some(0), Some("张三")), "{from_bom}");
    assert_eq!(bad["mi_code"], -1, "{bad}");
    let why = bad["result"]["err_msg"].as_str().unwrap();
    assert!(why.contains("bad.req.json") && why.contains("GBK"), "{why}");
    let log = std::fs::read_to_string(env.dir.path().join("logs/mi_sdk.log")).unwrap();
    let logged = |folder: &str, file: &str| {
        log.lines().any(|l| l.contains("drop-box") && l.contains(&format!("{folder}/{file}")) && l.contains("refused"))
    };
    assert!(logged("utf8box", "gbk.req.json") && logged("gbkbox", "bad.req.json"), "{log}");
}

/// A watch folder that does not exist is refused at start, before "watching"; the
/// service does not create it (a mistyped path would be watched for nothing).
#[test]
fn a_missing_folder_is_refused_at_start() {
    let _g = serial();
    let env = Env::plain();
    let (config, dir) = setup(&env, json!({}), "dropbox");
    let missing = dir.join("no-such-box");
    let (code, _, stderr) = cli(&config, &["serve", "--watch", missing.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not exist") && !stderr.contains("watching"), "{stderr}");
    assert!(!missing.exists());
}
