//! What the demos share: one sync call through the C ABI, a numbered step that
//! must succeed, and the last error's text.

use mi_sdk::ffi::*;
use serde_json::Value;
use std::ffi::{c_char, CString};
use std::io::Write;
use std::time::Instant;

/// One sync call through the C ABI; the output parsed.
pub fn call(infno: &str, input: &Value) -> Result<(i32, Value), String> {
    let c_infno = CString::new(infno).unwrap();
    let c_input = CString::new(input.to_string()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = buf.len() as i32;
    // SAFETY: NUL-terminated strings and a buffer of `len` bytes.
    let mut rc = unsafe { mi_call_sync(c_infno.as_ptr(), c_input.as_ptr(), buf.as_mut_ptr() as *mut c_char, &mut len) };
    if rc == MI_E_BUFFER_TOO_SMALL {
        // The call happened; fetch its kept result with a buffer of the right size.
        buf = vec![0u8; len as usize + 1];
        len += 1;
        // SAFETY: as above.
        rc = unsafe { mi_get_result(mi_last_request_id(), buf.as_mut_ptr() as *mut c_char, &mut len) };
    }
    let out: Value =
        serde_json::from_slice(&buf[..len.max(0) as usize]).map_err(|e| format!("{infno}: output is not JSON: {e}"))?;
    Ok((rc, out))
}

pub fn step(n: usize, title: &str, infno: &str, input: Value) -> Result<Value, String> {
    print!("{n}. {title:<28} {infno} ... ");
    let _ = std::io::stdout().flush();
    let t0 = Instant::now();
    let (rc, out) = call(infno, &input)?;
    if rc != MI_OK {
        println!("code {rc}");
        return Err(format!("{infno} returned {rc}: {}", out["err_msg"]));
    }
    println!("ok ({} ms, request {})", t0.elapsed().as_millis(), mi_last_request_id());
    Ok(out["output"].clone())
}

pub fn last_error() -> String {
    let mut buf = vec![0u8; 4096];
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    unsafe { mi_last_error(buf.as_mut_ptr() as *mut c_char, &mut len) };
    String::from_utf8_lossy(&buf[..len.max(0) as usize]).into_owned()
}

/// Starts the simulator (tif gateway) on a free port and mi_sdk against it, its
/// journal and logs in `target/<name>`; the simulator runs while it is kept.
pub fn start(name: &str) -> Result<mi_sim::Sim, String> {
    let sim_cfg = mi_sim::SimConfig { profile: mi_sim::Profile::Tif, ..Default::default() };
    let sim = mi_sim::Sim::start(sim_cfg, "127.0.0.1:0").map_err(|e| format!("simulator: {e}"))?;
    let work = std::env::current_dir().unwrap().join("target").join(name);
    let _ = std::fs::remove_dir_all(&work);
    println!("mi_sdk {} (C ABI {})", mi_sdk::VERSION, mi_abi_version());
    println!("simulated platform: {} (tif gateway)", sim.service_url());
    println!("journal and logs:   {}", work.display());
    let reader = fake_ecard_reader(&work);
    match &reader {
        Some(lib) => println!("e-voucher reader:   {} (a stand-in for NationECCode.dll)\n", lib.display()),
        None => {
            println!("e-voucher reader:   NONE (no C compiler `cc` to build the stand-in; the patient is typed in)\n")
        }
    }
    let mut config = serde_json::json!({
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "深圳市示例医院", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "收费员甲", "mac": "00-16-3E-00-00-01", "ip": "10.1.2.3"},
        "gateway": {"url": sim.service_url(), "profile": "tif", "paas_id": sim.config().paas_id, "paas_token": sim.config().paas_token,
                    "timeout_ms": 10000},
        "node_id": 1,
        "journal": {"path": work.join("mi_journal.db").to_string_lossy()},
        "log": {"dir": work.join("logs").to_string_lossy()},
        "workers": 4
    });
    if let Some(lib) = reader {
        config["readers"] = serde_json::json!({"ecard": {"library": lib.to_string_lossy(),
            "url": "http://127.0.0.1:7001/localcfc/api/hsecfc/localQrCodeQuery"}});
    }
    let c_config = CString::new(config.to_string()).unwrap();
    // SAFETY: a NUL-terminated string.
    let rc = unsafe { mi_init(c_config.as_ptr()) };
    if rc != MI_OK {
        return Err(format!("mi_init returned {rc}: {}", last_error()));
    }
    Ok(sim)
}

/// The exit of a demo: every step passed, or what failed (and the SDK shut down).
pub fn finish(r: Result<(), String>) -> std::process::ExitCode {
    match r {
        Ok(()) => {
            println!("\nAll steps passed.");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nFAILED: {e}");
            mi_shutdown(2000);
            std::process::ExitCode::FAILURE
        }
    }
}

/// What a pre-settlement answer says the fund, the account and the patient would pay.
pub fn print_pre_settlement(pre: &Value) {
    let s = &pre["setlinfo"];
    println!("   fund would pay {}, account {}, cash {}", s["fund_pay_sumamt"], s["acct_pay"], s["psn_cash_pay"]);
}

/// What a settlement answer says was paid, and the account balance after it.
pub fn print_settlement(settled: &Value) {
    let s = &settled["setlinfo"];
    println!(
        "   setl_id {}  total {}  fund {}  account {}  cash {}  balance now {}",
        s["setl_id"].as_str().unwrap_or(""),
        s["medfee_sumamt"],
        s["fund_pay_sumamt"],
        s["acct_pay"],
        s["psn_cash_pay"],
        s["balc"]
    );
}

/// The stand-in e-voucher reader (sim/readers/fake_reader.c, what the province's
/// NationECCode.dll is to a real cashier's PC) built by the C compiler cargo links
/// with; `None` when there is none.
fn fake_ecard_reader(work: &std::path::Path) -> Option<std::path::PathBuf> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sim/readers/fake_reader.c");
    let lib = work.join(if cfg!(windows) { "NationECCode.dll" } else { "libNationECCode.so" });
    std::fs::create_dir_all(work).ok()?;
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    built.then_some(lib)
}
