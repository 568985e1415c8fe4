//! The drop-box service (`mi-sdk serve --watch DIR`) as a process: request files in,
//! result files out, and kills at any moment neither lose nor double a request.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::{Child, Command};
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
