//! The main job: a cashier's outpatient visit, end to end, through the C ABI.
//!
//! Starts the platform simulator in-process on a free port (tif gateway profile),
//! initialises mi_sdk with an inline JSON config, identifies the patient by the
//! e-voucher through a stand-in reader (`mi_identify`), then runs sign-in, 1101, 2201,
//! 2203, 2204, 2206 and 2207 as a HIS would, a batch of async queries with a
//! progress bar, and prints `mi_get_status`. Exits non-zero if any step fails.
//!
//!     cargo run --release --example his_demo

#[path = "shared/demo.rs"]
mod demo;

use demo::{last_error, print_pre_settlement, print_settlement, step};
use mi_sdk::ffi::*;
use serde_json::{json, Value};
use std::ffi::{c_char, CString};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    demo::finish(run())
}

fn run() -> Result<(), String> {
    let sim = demo::start("his_demo")?;

    println!("Outpatient visit for 张三 (sign-in 9001 happens by itself before the first call)");
    let person = identify_by_ecard()?.unwrap_or_else(|| {
        json!({"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234",
        "card_sn": "", "begntime": "", "psn_cert_type": "01", "certno": "440301199001011234", "psn_name": "张三"})
    });
    // The visit is registered and settled under the voucher the patient showed.
    let (cert_type, cert_no) = (person["mdtrt_cert_type"].clone(), person["mdtrt_cert_no"].clone());
    let p = step(1, "person info", "1101", json!({"data": person}))?;
    let base = &p["baseinfo"];
    let insu = &p["insuinfo"][0];
    let psn_no = base["psn_no"].as_str().ok_or("1101 gave no psn_no")?.to_string();
    let insuplc = insu["insuplc_admdvs"].as_str().unwrap_or("440300").to_string();
    println!(
        "   {} {} born {}, insurance {} in {}, account balance {}",
        psn_no,
        base["psn_name"].as_str().unwrap_or(""),
        base["brdy"].as_str().unwrap_or(""),
        insu["insutype"].as_str().unwrap_or(""),
        insuplc,
        insu["balc"]
    );
    let with_person = |input: Value| json!({"input": input, "insuplc_admdvs": insuplc});
    let otp_no = format!("MZ{}", std::process::id());
    let r = step(
        2,
        "register",
        "2201",
        with_person(json!({"data": {"psn_no": psn_no, "insutype": "310",
        "begntime": "2026-11-27 09:00:00", "mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no, "ipt_otp_no": otp_no,
        "atddr_no": "D0001", "dr_name": "李医生", "dept_code": "A03", "dept_name": "内科", "caty": "A03"}})),
    )?;
    let mdtrt_id = r["data"]["mdtrt_id"].as_str().ok_or("2201 gave no mdtrt_id")?.to_string();
    println!("   mdtrt_id {mdtrt_id}");
    step(
        3,
        "visit info",
        "2203",
        with_person(json!({"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11",
        "begntime": "2026-11-27 09:00:00", "main_cond_dscr": "咳嗽三天", "dise_codg": "J06.900", "dise_name": "急性上呼吸道感染"},
        "diseinfo": [{"psn_no": psn_no, "diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染",
        "diag_dept": "内科", "dise_dor_no": "D0001", "dise_dor_name": "李医生", "diag_time": "2026-11-27 09:05:00", "vali_flag": "1"}]})),
    )?;
    let fee = |sn: &str, codg: &str, name: &str, cnt: f64, pric: f64| {
        json!({"feedetl_sn": sn, "mdtrt_id": mdtrt_id,
        "psn_no": psn_no, "chrg_bchno": "B0001", "rx_circ_flag": "0", "fee_ocur_time": "2026-11-27 09:10:00",
        "med_list_codg": codg, "medins_list_codg": name, "det_item_fee_sumamt": (cnt * pric * 100.0).round() / 100.0,
        "cnt": cnt, "pric": pric, "bilg_dept_codg": "A03", "bilg_dept_name": "内科", "bilg_dr_codg": "D0001",
        "bilg_dr_name": "李医生", "hosp_appr_flag": "1"})
    };
    let fees = vec![
        fee("F0001", "XJ01CAA040A001010104463", "阿莫西林胶囊", 2.0, 25.5),
        fee("F0002", "001102000010000", "普通门诊诊查费", 1.0, 30.0),
        fee("F0003", "ZZ9900000000001", "自费敷料", 1.0, 12.0),
    ];
    let total: f64 = fees.iter().map(|f| f["det_item_fee_sumamt"].as_f64().unwrap()).sum();
    let r = step(4, "fee details", "2204", with_person(json!({"feedetail": fees})))?;
    println!("   {} items uploaded, total {total:.2}", r["result"].as_array().map_or(0, Vec::len));
    let settle = json!({"data": {"psn_no": psn_no, "mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no, "med_type": "11",
        "medfee_sumamt": total, "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B0001", "insutype": "310",
        "acct_used_flag": "1"}});
    let pre = step(5, "pre-settlement", "2206", with_person(settle.clone()))?;
    print_pre_settlement(&pre);
    let s = step(6, "settlement", "2207", with_person(settle))?;
    print_settlement(&s);

    let settled = sim.ledger()["settlements"].as_array().map_or(0, Vec::len);
    if settled != 1 {
        return Err(format!("the platform's ledger shows {settled} settlements, expected 1"));
    }

    println!("\nAsync batch: 200 person queries (1101) through the worker pool");
    let q = CString::new(json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "44030519500315002X"}}).to_string())
        .unwrap();
    let infno = CString::new("1101").unwrap();
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for i in 0..200 {
        let mut id = 0i64;
        // SAFETY: NUL-terminated strings and a valid out-pointer.
        let rc = unsafe { mi_call_async(infno.as_ptr(), q.as_ptr(), i % 3, &mut id) };
        if rc != MI_OK {
            return Err(format!("mi_call_async returned {rc}: {}", last_error()));
        }
        ids.push(id);
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while done < ids.len() {
        let mut len = buf.len() as i32;
        // SAFETY: buf has len bytes.
        let rc = unsafe { mi_get_result(ids[done], buf.as_mut_ptr() as *mut c_char, &mut len) };
        match rc {
            MI_PENDING if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            MI_OK => {
                done += 1;
                progress(done, ids.len());
            }
            other => {
                return Err(format!(
                    "async request {} ended with {other}: {}",
                    ids[done],
                    String::from_utf8_lossy(&buf[..len.max(0) as usize])
                ))
            }
        }
    }
    println!("\n   200 queries answered in {} ms", t0.elapsed().as_millis());

    println!("\nmi_get_status:");
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    let rc = unsafe { mi_get_status(buf.as_mut_ptr() as *mut c_char, &mut len) };
    if rc != MI_OK {
        return Err(format!("mi_get_status returned {rc}"));
    }
    let st: Value = serde_json::from_slice(&buf[..len as usize]).map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&st).unwrap());
    let ledger = sim.ledger();
    if ledger["rejected"] != 0 {
        return Err(format!("the simulator rejected envelopes: {}", ledger["rejections"]));
    }
    mi_shutdown(5000);
    Ok(())
}

fn progress(done: usize, total: usize) {
    // Into a pipe or a log, no frames: the line after the loop says it all.
    if !std::io::stdout().is_terminal() {
        return;
    }
    let width = 40;
    let filled = done * width / total;
    // Redraw only when the bar grows, so a log of the run stays short.
    if done != total && filled == (done - 1) * width / total {
        return;
    }
    print!("\r   [{}{}] {done}/{total}", "#".repeat(filled), ".".repeat(width - filled));
    let _ = std::io::stdout().flush();
}

/// Who the patient is: the e-voucher they show, read through `mi_identify`, as the
/// `data` of 1101; `None` when no reader is configured.
fn identify_by_ecard() -> Result<Option<Value>, String> {
    let req = CString::new(r#"{"way":"ecard","business_type":"01101"}"#).unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = buf.len() as i32;
    print!("0. {:<28} ... ", "identify (e-voucher QR code)");
    let _ = std::io::stdout().flush();
    // SAFETY: a NUL-terminated string and a buffer of `len` bytes.
    let rc = unsafe { mi_identify(req.as_ptr(), buf.as_mut_ptr() as *mut c_char, &mut len) };
    if rc == MI_E_CONFIG {
        println!("no reader configured");
        return Ok(None);
    }
    if rc != MI_OK {
        println!("code {rc}");
        return Err(format!("mi_identify returned {rc}: {}", last_error()));
    }
    let answer: Value =
        serde_json::from_slice(&buf[..len as usize]).map_err(|e| format!("mi_identify: not JSON: {e}"))?;
    println!("ok, {} through {} (reader wrote {})", answer["way"], answer["reader"], answer["raw"]);
    Ok(Some(answer["data"].clone()))
}
