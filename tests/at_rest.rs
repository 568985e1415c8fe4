//! Patients' data at rest (issue 22), through the C ABI against the simulator: the
//! journal's envelopes and answers are sealed with the journal's key; a journal
//! copied without its key opens nowhere (and nothing is sent); a value moved to
//! another request or changed by a byte is refused, never returned; a journal kept
//! in clear by an earlier version is sealed in place while calls go on.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const ZHANG: &str = "张三";
const LI_CERTNO: &str = "440104198505052345";

/// The journal's request ids of `infno`, oldest first.
fn ids(journal: &Path, infno: &str) -> Vec<i64> {
    let db = rusqlite::Connection::open(journal).unwrap();
    let mut st = db.prepare("SELECT id FROM mi_request WHERE infno = ?1 ORDER BY id").unwrap();
    st.query_map([infno], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
}

fn sql(journal: &Path, sql: &str) {
    rusqlite::Connection::open(journal).unwrap().execute_batch(sql).unwrap();
}

/// The journal file and its WAL as bytes.
fn journal_bytes(journal: &Path) -> Vec<u8> {
    let mut wal = journal.as_os_str().to_owned();
    wal.push("-wal");
    [std::fs::read(journal).unwrap(), std::fs::read(Path::new(&wal)).unwrap_or_default()].concat()
}

fn cli(config: &Value, dir: &Path, args: &[&str]) -> (bool, String) {
    let file = dir.join("cli.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let out = Command::new(target_dir().join("mi-sdk")).arg("--config").arg(&file).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_journal_copied_without_its_key_opens_nowhere_and_sends_nothing() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!((rc, out["output"]["baseinfo"]["psn_name"].as_str()), (MI_OK, Some(ZHANG)));
    mi_shutdown(1000);
    let key = env.journal_path().with_file_name("mi_journal.db.key");
    assert!(key.is_file(), "the key was made beside the journal at mi_init");
    assert!(!contains(&journal_bytes(&env.journal_path()), ZHANG.as_bytes()));

    // The journal alone, on another PC (another folder): refused at mi_init, naming
    // the key file it needs; nothing reaches the platform.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("mi_journal.db");
    std::fs::copy(env.journal_path(), &copy).unwrap();
    let sent = env.ledger()["requests"].as_array().map_or(0, Vec::len);
    let config = env.config(json!({"journal": {"path": copy.to_string_lossy()}}));
    assert_eq!(init_text(&config.to_string()), MI_E_JOURNAL);
    let why = last_error();
    let copy_key = format!("{}.key", copy.display());
    assert!(why.contains(&copy_key) && why.contains("restore"), "{why}");
    assert!(!Path::new(&copy_key).exists(), "no new key is made for a sealed journal");
    let q = q1101(ZHANG_CERTNO).to_string();
    assert_eq!(call_bytes(b"1101", q.as_bytes(), 4096).0, MI_E_NOT_INITIALIZED);
    assert_eq!(env.ledger()["requests"].as_array().map_or(0, Vec::len), sent, "nothing was sent");
    // The operator's commands say the same.
    let (ok, text) = cli(&config, elsewhere.path(), &["show", "2"]);
    assert!(!ok && text.contains(&copy_key) && !text.contains(ZHANG), "{text}");

    // With its key beside it, the copy is the journal it was.
    std::fs::copy(&key, &copy_key).unwrap();
    assert_eq!(init_text(&config.to_string()), MI_OK, "{}", last_error());
    let id = ids(&copy, "1101")[0];
    let (rc, out) = get_result(id);
    assert!(rc == MI_OK && out.contains(ZHANG), "{rc} {out}");
    assert_eq!(get_request(id).1["state"], "succeeded");
    mi_shutdown(1000);
    let (ok, text) = cli(&config, elsewhere.path(), &["show", &id.to_string(), "--json"]);
    assert!(ok && text.contains(ZHANG_CERTNO), "{text}");
}

#[test]
fn a_moved_or_changed_value_is_refused_never_returned() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    assert_eq!(call("1101", q1101(LI_CERTNO)).0, MI_OK);
    mi_shutdown(1000);
    let j = env.journal_path();
    let [zhang, li] = ids(&j, "1101")[..] else { panic!("two requests") };
    // Zhang's answer put in Li's row; a byte of Zhang's envelope changed.
    sql(
        &j,
        &format!("UPDATE mi_request SET result = (SELECT result FROM mi_request WHERE id = {zhang}) WHERE id = {li}"),
    );
    sql(
        &j,
        &format!("UPDATE mi_request SET envelope = substr(envelope, 1, 40) || 'A' || substr(envelope, 42) WHERE id = {zhang}"),
    );
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    let (rc, text) = get_result(li);
    assert_eq!(rc, MI_E_JOURNAL, "{text}");
    let why = last_error();
    assert!(why.contains("mi_request.result") && why.contains("changed or moved") && !why.contains(ZHANG), "{why}");
    let (rc, req) = get_request(zhang);
    assert_eq!(rc, MI_E_JOURNAL, "{req}");
    assert!(!last_error().contains(ZHANG_CERTNO));
    // The rest of the journal is read as before, and calls go on.
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    mi_shutdown(1000);
}

#[test]
fn a_clear_journal_is_sealed_in_place_while_calls_go_on() {
    let _g = serial();
    let env = Env::plain();
    let clear = json!({"journal": {"seal": false}});
    assert_eq!(env.init(clear.clone()), MI_OK, "{}", last_error());
    for _ in 0..30 {
        assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    }
    let settle = visit("44030000000000100001", "AR1", 25.0);
    let (rc, settled) = call("2207", json!({"input": settle, "insuplc_admdvs": "440300"}));
    assert_eq!(rc, MI_OK, "{settled}");
    mi_shutdown(1000);
    let j = env.journal_path();
    assert!(contains(&journal_bytes(&j), ZHANG_CERTNO.as_bytes()), "written in clear with journal.seal false");
    let old = ids(&j, "1101");

    // Sealing on (the default): the SDK seals what is there in the background while
    // calls go on, and reads both kinds meanwhile.
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    assert_eq!(call("1101", q1101(LI_CERTNO)).0, MI_OK);
    let clear_left = "SELECT count(*) FROM mi_request WHERE envelope NOT LIKE 'mi1.%' OR result NOT LIKE 'mi1.%'";
    assert!(wait_until(|| journal_count(&env, clear_left) == 0), "sealed in the background");
    // An attempt's answer that is its request's result is kept once, in the result.
    let clear_answers = "SELECT count(*) FROM mi_attempt WHERE response NOT LIKE 'mi1.%' AND response != '=result'";
    assert_eq!(journal_count(&env, clear_answers), 0);
    let (rc, text) = get_result(old[0]);
    assert!(rc == MI_OK && text.contains(ZHANG), "{rc} {text}");
    mi_shutdown(1000);
    // The day's report reads the sealed settlement.
    let (ok, text) = cli(&env.config(json!({})), env.dir.path(), &["report", "--json"]);
    assert!(ok, "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["settled"]["count"], 1, "{report}");
    assert_eq!(report["settled"]["medfee_sumamt"].as_f64(), Some(25.0), "{report}");
    let bytes = journal_bytes(&j);
    for needle in [ZHANG_CERTNO.as_bytes(), ZHANG.as_bytes(), &mi_sdk::Charset::Gbk.encode(ZHANG)] {
        assert!(!contains(&bytes, needle), "{needle:?} is left in the journal after sealing");
    }
}

/// The HIS's config says `journal.seal: false`, the drop-box service's says true
/// (the default), on one journal, both running: the service seals the journal; the
/// HIS reads the service's requests and seals its own from then on; the service's
/// operator reads the HIS's; the HIS's earlier clear request is sealed in place.
/// Nothing is refused or lost.
#[test]
fn an_his_that_opened_in_clear_follows_a_service_that_seals() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"journal": {"seal": false}})), MI_OK, "{}", last_error());
    assert_eq!(call("1101", q1101(ZHANG_CERTNO)).0, MI_OK);
    let j = env.journal_path();
    let key = j.with_file_name("mi_journal.db.key");
    assert!(!key.exists());
    // The service starts on the same journal, sealing: the key is made.
    let sealing = env.config(json!({}));
    let file = env.dir.path().join("service.json");
    std::fs::write(&file, sealing.to_string()).unwrap();
    let boxdir = env.dir.path().join("box");
    std::fs::create_dir_all(&boxdir).unwrap();
    let mut service = Service(
        Command::new(target_dir().join("mi-sdk"))
            .arg("--config")
            .arg(&file)
            .args(["serve", "--watch"])
            .arg(&boxdir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_until(|| key.is_file()), "the service made the journal's key");
    // A request through the service: sealed in the file; the HIS reads it.
    let req = json!({"infno": "1101", "input": q1101(LI_CERTNO)}).to_string();
    std::fs::write(boxdir.join("li.writing"), req).unwrap();
    std::fs::rename(boxdir.join("li.writing"), boxdir.join("li.req.json")).unwrap();
    assert!(wait_until(|| boxdir.join("li.res.json").exists()), "the service answered");
    let theirs = *ids(&j, "1101").last().unwrap();
    let (rc, text) = get_result(theirs);
    assert!(rc == MI_OK && text.contains(LI_CERTNO), "{rc} {text}");
    // The HIS's next call is sealed in the file, its attempt too; the service's side reads it.
    let (rc, out) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_OK, "{out}");
    let mine = *ids(&j, "1101").last().unwrap();
    assert!(mine > theirs);
    let db = rusqlite::Connection::open(&j).unwrap();
    for (what, id) in [("request", theirs), ("request", mine), ("attempt", mine)] {
        let kept: String = if what == "request" {
            db.query_row("SELECT envelope || ' ' || result FROM mi_request WHERE id = ?1", [id], |r| r.get(0))
        } else {
            db.query_row("SELECT response FROM mi_attempt WHERE request_id = ?1", [id], |r| r.get(0))
        }
        .unwrap();
        assert!(kept.split(' ').all(|v| v.starts_with("mi1.")), "{what} {id}: {kept}");
    }
    let (ok, text) = cli(&sealing, env.dir.path(), &["show", &mine.to_string(), "--json"]);
    assert!(ok && text.contains(ZHANG_CERTNO), "{text}");
    // The request the HIS wrote in clear before is sealed in place, and read by both.
    let zhang = ids(&j, "1101")[0];
    let clear_left = "SELECT count(*) FROM mi_request WHERE envelope NOT LIKE 'mi1.%'";
    assert!(wait_until(|| journal_count(&env, clear_left) == 0), "sealed in the background");
    let (rc, text) = get_result(zhang);
    assert!(rc == MI_OK && text.contains(ZHANG), "{rc} {text}");
    let (ok, text) = cli(&sealing, env.dir.path(), &["show", &zhang.to_string(), "--json"]);
    assert!(ok && text.contains(ZHANG_CERTNO), "{text}");
    mi_shutdown(1000);
    Command::new("kill").arg("-TERM").arg(service.0.id().to_string()).status().unwrap();
    assert!(service.0.wait().unwrap().success(), "the service stops cleanly");
    assert_eq!(journal_count(&env, "SELECT count(*) FROM mi_request WHERE state <> 'succeeded'"), 0);
}

/// A service process, killed if the test fails before stopping it.
struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
