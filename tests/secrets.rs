//! Secrets and personal data (issue 8): with every secret of the config set (the
//! gateway's `paas_token` or `secret_key`, the mobile-payment `app_secret` and
//! `private_key`, and under `MI_SIM_VARIANT=guangzhou` the sign-in password), a day's worth of calls — successes, refusals, a settlement, a
//! mobile payment, async requests, a config error, a rejected signature — and the
//! operator's commands, no file the SDK wrote (logs, journal, WAL), no status
//! output, command output or error text holds a secret, and the log holds no
//! unmasked ID number, name or phone number, even at trace level; the journal
//! (its file, WAL and backups) holds none of them in the clear at all.

mod common;

use common::*;
use mi_sdk::ffi::*;
use mi_sim::{mobile, Profile};
use serde_json::{json, Value};
use std::process::Command;

/// People of the simulator's registry: (psn_no, ID number, name).
const PEOPLE: [(&str, &str, &str); 2] =
    [("44030000000000100001", "440301199001011234", "张三"), ("44030000000000300003", "44030519500315002X", "王五")];

fn cli(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(target_dir().join("mi-sdk")).arg("--config").arg(config).args(args).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn no_secret_anywhere_and_no_personal_data_in_logs() {
    let _g = serial();
    for profile in [Profile::Tif, Profile::Csb] {
        let env = Env::new(profile);
        let s = env.sim.config().clone();
        let private_key = mobile::b64(&mobile::TEST_APP_PRIVATE_KEY);
        let secrets = [TIF_TOKEN, CSB_SECRET, mobile::TEST_APP_SECRET, private_key.as_str(), GZ_PASSWORD];
        let config = env.config(json!({
            "log": {"level": "trace"},
            "mobile_pay": {"url": env.sim.base_url(), "app_id": s.mp_app_id, "app_secret": mobile::TEST_APP_SECRET,
                           "private_key": private_key, "platform_public_key": s.mp_platform_public_key()},
        }));
        let file = env.dir.path().join("mi_sdk.json");
        std::fs::write(&file, config.to_string()).unwrap();
        assert_eq!(init_text(file.to_str().unwrap()), MI_OK, "{}", last_error());
        let mut texts: Vec<String> = Vec::new();

        for (psn_no, certno, _) in PEOPLE {
            assert_eq!(call("1101", q1101(certno)).0, MI_OK);
            let settle = visit(psn_no, &format!("S{psn_no}"), 25.0);
            let (rc, out) = call("2207", json!({"input": settle, "insuplc_admdvs": "440300"}));
            assert_eq!(rc, MI_OK, "{out}");
            texts.push(out.to_string());
        }
        // A refusal, a mobile payment with a phone number, async requests.
        assert_eq!(call("1101", q1101("000")).0, MI_E_BUSINESS);
        texts.push(last_error());
        let (rc, out) = call(
            "6201",
            json!({"data": {"medOrgOrd": "MZ1", "feeSumamt": "9.00", "psnName": "张三", "mob": "13912345678",
                            "idNo": "440301199001011234"}}),
        );
        assert_eq!(rc, MI_OK, "{out}");
        let ids: Vec<i64> = (0..5).map(|_| call_async("1101", q1101(PEOPLE[0].1), 0).1).collect();
        for id in ids {
            let (rc, out) = wait_result(id, 10);
            assert_eq!(rc, MI_OK);
            texts.push(out.to_string());
            texts.push(get_request(id).1.to_string());
        }
        texts.push(status().1.to_string());
        // Backups taken while it runs: the files as a copying backup tool finds them
        // (the WAL with them), and SQLite's own copy.
        let backup = env.dir.path().join("backup");
        std::fs::create_dir_all(&backup).unwrap();
        for f in files_under(env.journal_path().parent().unwrap()) {
            std::fs::write(backup.join(f.0.file_name().unwrap()), f.1).unwrap();
        }
        assert!(backup.join("mi_journal.db-wal").is_file(), "the WAL is copied with the file");
        let into = backup.join("mi_journal-vacuumed.db");
        rusqlite::Connection::open(env.journal_path())
            .unwrap()
            .execute("VACUUM INTO ?1", [into.to_str().unwrap()])
            .unwrap();
        mi_shutdown(1000);

        // Errors that are about a secret name the key, never the value: a bad config,
        // and a gateway that rejects the signature made with a wrong secret.
        let mut wrong = config.clone();
        wrong["gateway"]["profile"] = json!("bogus");
        assert_eq!(init_text(&wrong.to_string()), MI_E_CONFIG);
        texts.push(last_error());
        let mut wrong = config.clone();
        wrong["gateway"]["paas_token"] = json!(format!("{TIF_TOKEN}-x"));
        wrong["gateway"]["secret_key"] = json!(format!("{CSB_SECRET}-x"));
        assert_eq!(init_text(&wrong.to_string()), MI_OK);
        let (rc, out) = call("1101", q1101(PEOPLE[0].1));
        assert_ne!(rc, MI_OK, "a wrong secret is rejected by the gateway: {out}");
        texts.push(out.to_string());
        texts.push(last_error());
        mi_shutdown(1000);

        // The operator's commands.
        for args in [&["status"][..], &["status", "--json"], &["requests", "--json"], &["show", "1"], &["report"]] {
            texts.push(cli(&file, args));
        }

        let files = files_under(env.dir.path());
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        for wanted in ["mi_sdk.log", "mi_journal.db"] {
            assert!(names.iter().any(|n| n.ends_with(wanted)), "{wanted} among {names:?}");
        }
        for secret in secrets {
            for (path, bytes) in &files {
                if path.ends_with("mi_sdk.json") {
                    continue; // the config itself
                }
                assert!(!contains(bytes, secret.as_bytes()), "{profile:?}: a secret in {}", path.display());
            }
            for t in &texts {
                assert!(!t.contains(secret), "{profile:?}: a secret in an output or error text: {t}");
            }
        }
        let log: Vec<u8> = files
            .iter()
            .filter(|(p, _)| p.to_string_lossy().contains("mi_sdk.log"))
            .flat_map(|(_, b)| b.clone())
            .collect();
        assert!(log.len() > 10_000, "trace logging wrote the envelopes ({} bytes)", log.len());
        for (psn_no, certno, name) in PEOPLE {
            let lines: Vec<String> = String::from_utf8_lossy(&log)
                .lines()
                .filter(|l| l.contains(certno) || l.contains(name))
                .map(str::to_owned)
                .collect();
            assert!(lines.is_empty(), "{profile:?}: ID number {certno} or name {name} unmasked in the log: {lines:#?}");
            assert!(!contains(&log, name.as_bytes()), "{profile:?}: name {name} unmasked in the log");
            // The psn_no is the platform's own key, not an ID document: it stays.
            let _ = psn_no;
        }
        assert!(!contains(&log, b"13912345678"), "{profile:?}: phone number unmasked in the log");
        assert!(
            contains(&log, "张*".as_bytes()) && contains(&log, b"4403**********1234"),
            "the masked forms are there"
        );
        // The journal keeps no name, ID number or phone: not in its file, its WAL or
        // its backups, as UTF-8 or as GBK (issue 22). The full text is read back
        // through the SDK (it is the audit record).
        let journal: Vec<&(std::path::PathBuf, Vec<u8>)> =
            files.iter().filter(|(p, _)| p.to_string_lossy().contains("mi_journal")).collect();
        assert!(journal.len() >= 4, "the journal, its backups and the WAL copied with them: {names:?}");
        for (_, certno, name) in PEOPLE {
            for needle in [certno, name, "13912345678"] {
                for bytes in [needle.as_bytes().to_vec(), mi_sdk::Charset::Gbk.encode(needle)] {
                    for (path, held) in &journal {
                        assert!(!contains(held, &bytes), "{profile:?}: {needle} in {}", path.display());
                    }
                }
            }
        }
        assert!(texts.iter().any(|t| t.contains(PEOPLE[0].2)), "the SDK still gives the full answers back");
        let _: Value = json!(null);
    }
}

/// The platform's `err_msg` is outside text: it may quote a patient's ID number, name
/// and phone, and carry a line break followed by a copy of a real log line. At the
/// default level (`info`, where a refused call is logged with its message) the log
/// holds none of the personal data, and every line in it is one the SDK wrote.
#[test]
fn a_platform_message_cannot_put_personal_data_or_forged_lines_in_the_log() {
    let _g = serial();
    let env = Env::plain();
    let forged = "2020-01-01 00:00:00.000 DEBUG [mi-worker-0] mi_sdk::call::attempt - done 2207 request=1 -> MI_OK";
    let err_msg = format!(
        "人员信息不符: 姓名:赵六, psn_name=钱七, 证件号码[11010519491231002X], 联系电话 13912345678\n{forged}\r\n{forged}\u{1b}[2K"
    );
    for mask_pii in [true, false] {
        let logs = env.dir.path().join(format!("logs-{mask_pii}"));
        let cfg = json!({"log": {"dir": logs.to_string_lossy(), "level": "info", "mask_pii": mask_pii}});
        assert_eq!(env.init(cfg), MI_OK, "{}", last_error());
        let input = json!({"data": {"psn_no": "44030000000000100001", "mdtrt_id": "M1"}, "_sim": {"err_msg": err_msg}});
        let (rc, out) = call("2207", json!({"input": input, "insuplc_admdvs": "440300"}));
        assert_eq!((rc, out["err_msg"].as_str()), (MI_E_BUSINESS, Some(err_msg.as_str())), "the HIS gets it as sent");
        // The status shows the last failure on monitoring screens: the same rule.
        let (_, st) = status();
        let shown = format!(
            "{} {}",
            st["last_error"].as_str().unwrap_or_default(),
            st["last_failure"]["message"].as_str().unwrap_or_default()
        );
        assert!(shown.contains("人员信息不符") && !shown.contains(['\r', '\n']), "{shown}");
        if mask_pii {
            assert!(!shown.contains("11010519491231002X") && !shown.contains("13912345678"), "{shown}");
        }
        mi_shutdown(1000);

        let log: String = files_under(&logs)
            .iter()
            .filter(|(p, _)| p.to_string_lossy().contains("mi_sdk"))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert!(log.contains("MI_E_BUSINESS"), "the refusal is logged: {log}");
        // Every line starts as the SDK's lines do, and none is the forged one.
        for line in log.lines() {
            let stamp = line.get(..24).unwrap_or(line);
            let shaped = stamp.len() == 24
                && stamp.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    10 | 23 => b == b' ',
                    13 | 16 => b == b':',
                    19 => b == b'.',
                    _ => b.is_ascii_digit(),
                });
            assert!(
                shaped && !line.starts_with("2020-01-01"),
                "mask_pii {mask_pii}: a line the SDK did not write: {line:?}"
            );
        }
        assert!(!log.contains('\r') && !log.contains('\u{1b}'), "control characters are escaped");
        assert!(log.contains(r"\n2020-01-01 00:00:00.000 DEBUG"), "the message is there, escaped: {log}");
        let raw = ["11010519491231002X", "13912345678", "赵六", "钱七"];
        if mask_pii {
            for pii in raw {
                assert!(!log.contains(pii), "{pii} unmasked in the log: {log}");
            }
            for masked in ["1101**********002X", "139****5678", "赵*", "钱*"] {
                assert!(log.contains(masked), "{masked} missing: {log}");
            }
        } else {
            assert!(raw.iter().all(|pii| log.contains(pii)), "mask_pii off logs the text as it came: {log}");
        }
    }
}
