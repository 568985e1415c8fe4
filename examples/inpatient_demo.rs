//! An inpatient stay, end to end, through the C ABI: admission (2401), a fee upload
//! for each day in hospital (2301), the in-hospital check (5303), pre-settlement
//! (2303), settlement (2304) and discharge (2402), against the simulator started
//! in-process. Prints what the platform's books show and exits non-zero if any step
//! fails.
//!
//!     cargo run --release --example inpatient_demo

#[path = "shared/demo.rs"]
mod demo;

use demo::{print_pre_settlement, print_settlement, step};
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::process::ExitCode;

const CERTNO: &str = "440301199001011234";

fn main() -> ExitCode {
    demo::finish(run())
}

fn run() -> Result<(), String> {
    let sim = demo::start("inpatient_demo")?;
    println!("Inpatient stay for 张三 (sign-in 9001 happens by itself before the first call)");
    let p = step(
        1,
        "person info",
        "1101",
        json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO, "psn_cert_type": "01", "certno": CERTNO,
                        "psn_name": "张三"}}),
    )?;
    let psn_no = p["baseinfo"]["psn_no"].as_str().ok_or("1101 gave no psn_no")?.to_string();
    let insuplc = p["insuinfo"][0]["insuplc_admdvs"].as_str().unwrap_or("440300").to_string();
    let with_person = |input: Value| json!({"input": input, "insuplc_admdvs": insuplc});
    let ipt_no = format!("ZY{}", std::process::id());
    let a = step(
        2,
        "admission",
        "2401",
        with_person(json!({"mdtrtinfo": {"psn_no": psn_no, "insutype": "310", "begntime": "2026-11-23 09:00:00",
            "mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO, "med_type": "21", "ipt_no": ipt_no, "atddr_no": "D0002",
            "chfpdr_name": "王医生", "adm_diag_dscr": "社区获得性肺炎", "adm_dept_codg": "A03.06", "adm_dept_name": "呼吸内科",
            "adm_bed": "12", "dscg_maindiag_code": "J18.900", "dscg_maindiag_name": "肺炎"},
            "diseinfo": [{"psn_no": psn_no, "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": "1", "diag_code": "J18.900",
            "diag_name": "肺炎", "diag_dept": "呼吸内科", "dise_dor_no": "D0002", "dise_dor_name": "王医生",
            "diag_time": "2026-11-23 09:00:00"}]})),
    )?;
    let mdtrt_id = a["result"]["mdtrt_id"].as_str().ok_or("2401 gave no mdtrt_id")?.to_string();
    println!("   mdtrt_id {mdtrt_id}, in hospital as {ipt_no}");

    // One upload per day: a bed, a drug and an examination, each with its own serial number.
    let mut total = 0.0;
    for (day, date) in ["2026-11-23", "2026-11-24", "2026-11-25"].iter().enumerate() {
        let fee = |item: usize, codg: &str, name: &str, cnt: f64, pric: f64| {
            json!({"feedetl_sn": format!("{ipt_no}-{}-{item}", day + 1), "mdtrt_id": mdtrt_id, "psn_no": psn_no,
                "med_type": "21", "fee_ocur_time": format!("{date} 10:00:00"), "med_list_codg": codg, "medins_list_codg": name,
                "det_item_fee_sumamt": (cnt * pric * 100.0).round() / 100.0, "cnt": cnt, "pric": pric,
                "bilg_dept_codg": "A03.06", "bilg_dept_name": "呼吸内科", "bilg_dr_codg": "D0002", "bilg_dr_name": "王医生"})
        };
        let fees = vec![
            fee(1, "001110000010000", "普通病房床位费", 1.0, 45.0),
            fee(2, "XJ01DCA021B002010100580", "头孢呋辛钠注射剂", 2.0, 38.6),
            fee(3, "002502000010000", "血常规", 1.0, 20.0),
        ];
        total += fees.iter().map(|f| f["det_item_fee_sumamt"].as_f64().unwrap()).sum::<f64>();
        let r = step(3 + day, &format!("fees of day {}", day + 1), "2301", with_person(json!({"feedetail": fees})))?;
        println!("   {} items, running total {total:.2}", r["result"].as_array().map_or(0, Vec::len));
    }
    let here = step(6, "in hospital now?", "5303", with_person(json!({"data": {"psn_no": psn_no}})))?;
    if here["data"][0]["mdtrt_id"] != mdtrt_id.as_str() {
        return Err(format!("5303 does not show the stay: {here}"));
    }
    let settle = json!({"data": {"psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO, "mdtrt_id": mdtrt_id,
        "medfee_sumamt": (total * 100.0_f64).round() / 100.0, "psn_setlway": "01", "insutype": "310", "acct_used_flag": "1",
        "mid_setl_flag": "0"}});
    let pre = step(7, "pre-settlement", "2303", with_person(settle.clone()))?;
    print_pre_settlement(&pre);
    let s = step(8, "settlement", "2304", with_person(settle))?;
    print_settlement(&s);
    step(
        9,
        "discharge",
        "2402",
        with_person(json!({"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "insutype": "310",
            "endtime": "2026-11-26 10:00:00", "dscg_way": "1", "dscg_dept_codg": "A03.06", "dscg_dept_name": "呼吸内科"}})),
    )?;

    let ledger = sim.ledger();
    let stay = ledger["visits"].as_array().and_then(|v| v.iter().find(|v| v["mdtrt_id"] == mdtrt_id.as_str()));
    let stay = stay.ok_or("the platform has no such stay")?;
    let settled: Vec<&Value> = ledger["settlements"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["mdtrt_id"] == mdtrt_id.as_str()).collect())
        .unwrap_or_default();
    println!(
        "\nThe platform's books: stay {} with {} fee lines, discharged {}, {} settlement(s) of {}",
        stay["ipt_otp_no"],
        stay["fees"],
        stay["discharged"],
        settled.len(),
        settled.first().map_or(json!(null), |s| s["medfee_sumamt"].clone())
    );
    if stay["fees"] != 9 || stay["discharged"] != true || settled.len() != 1 || settled[0]["status"] != "settled" {
        return Err("the platform's books do not show one settled, discharged stay of nine fee lines".into());
    }
    if ledger["rejected"] != 0 {
        return Err(format!("the simulator rejected envelopes: {}", ledger["rejections"]));
    }
    mi_shutdown(5000);
    Ok(())
}
