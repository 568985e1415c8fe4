//! Every transaction class end to end through the C ABI against the simulator:
//! inpatient (2401–2405, 2301–2305), pharmacy (2101–2103), inventory (3501–3507),
//! the settlement list (4101), the queries (1201, 1901, 5101–5104, 5201–5206,
//! 5301–5304) and reconciliation (3201, and 3202 with its 9101/9102 chain).
//!
//! For every state-changing class (2201–2205, 2207, 2208, 2301–2305, 2401–2405,
//! 2102/2103, 3501–3507, 4101), the answer is dropped after the platform
//! processed the request: the request must be uncertain, never resent, and put
//! right by the right transaction (2601 through `mi_reverse` for the reversible
//! ones, the class's own counter-transaction or a query otherwise), leaving the
//! platform's books consistent.

mod common;

use common::*;
use mi_sdk::ffi::*;
use mi_sim::Profile;
use serde_json::{json, Value};
use std::time::Duration;

const PSN: &str = "44030000000000100001";

/// The per-call form with the insured person's division, and a simulator fault.
fn with(input: Value, fault: Option<Value>) -> Value {
    let mut input = input;
    if let Some(f) = fault {
        input["_sim"] = f;
    }
    json!({"input": input, "insuplc_admdvs": "440300"})
}

fn ok(infno: &str, input: Value) -> Value {
    let (rc, out) = call(infno, with(input, None));
    assert_eq!(rc, MI_OK, "{infno}: {out}");
    out["output"].clone()
}

fn reverse(id: i64) -> (i32, Value) {
    let mut buf = vec![0u8; 65536];
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    let rc = unsafe { mi_reverse(id, buf.as_mut_ptr().cast(), &mut len) };
    (rc, serde_json::from_slice(&buf[..len.max(0) as usize]).unwrap_or(Value::Null))
}

fn by_infno(env: &Env, infno: &str) -> u64 {
    env.ledger()["by_infno"][infno].as_u64().unwrap_or(0)
}

fn balance(env: &Env) -> f64 {
    env.ledger()["balances"][PSN].as_f64().unwrap()
}

/// The simulator's record of settlement `setl_id`.
fn settlement(env: &Env, setl_id: &str) -> Value {
    env.ledger()["settlements"].as_array().unwrap().iter().find(|s| s["setl_id"] == setl_id).cloned().unwrap()
}

fn visit_of(env: &Env, mdtrt_id: &str) -> Value {
    env.ledger()["visits"].as_array().unwrap().iter().find(|v| v["mdtrt_id"] == mdtrt_id).cloned().unwrap()
}

fn admission(ipt_no: &str) -> Value {
    json!({"mdtrtinfo": {"psn_no": PSN, "insutype": "310", "begntime": "2026-11-20 09:00:00", "mdtrt_cert_type": "02",
        "mdtrt_cert_no": ZHANG_CERTNO, "med_type": "21", "ipt_no": ipt_no, "atddr_no": "D001", "chfpdr_name": "李医生",
        "adm_diag_dscr": "肺炎", "adm_dept_codg": "A03", "adm_dept_name": "呼吸内科", "adm_bed": "12",
        "dscg_maindiag_code": "J18.900", "dscg_maindiag_name": "肺炎"},
        "diseinfo": [{"psn_no": PSN, "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": 1, "diag_code": "J18.900",
                      "diag_name": "肺炎", "diag_dept": "呼吸内科", "dise_dor_no": "D001", "dise_dor_name": "李医生",
                      "diag_time": "2026-11-20 09:00:00"}]})
}

fn inpatient_fee(mdtrt_id: &str, sn: &str, amount: f64) -> Value {
    json!({"feedetail": [{"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": PSN, "med_type": "21",
        "fee_ocur_time": "2026-11-21 10:00:00", "med_list_codg": "XJ01", "medins_list_codg": "H-J01",
        "det_item_fee_sumamt": amount, "cnt": 1, "pric": amount, "bilg_dept_codg": "A03", "bilg_dept_name": "呼吸内科"}]})
}

fn settle_input(mdtrt_id: &str, amount: f64) -> Value {
    json!({"data": {"psn_no": PSN, "mdtrt_cert_type": "02", "mdtrt_cert_no": ZHANG_CERTNO, "mdtrt_id": mdtrt_id,
        "medfee_sumamt": amount, "psn_setlway": "01", "insutype": "310", "acct_used_flag": "1", "mid_setl_flag": "0"}})
}

fn discharge(mdtrt_id: &str) -> Value {
    json!({"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": PSN, "insutype": "310", "endtime": "2026-11-25 10:00:00",
        "dscg_way": "1", "dscg_dept_codg": "A03", "dscg_dept_name": "呼吸内科"}})
}

fn pharmacy_sale(sn: &str, amount: f64) -> Value {
    json!({"data": {"psn_no": PSN, "mdtrt_cert_type": "02", "mdtrt_cert_no": ZHANG_CERTNO, "med_type": "41",
        "medfee_sumamt": amount, "psn_setlway": "01", "insutype": "310", "acct_used_flag": "1", "ipt_otp_no": sn},
        "drugdetail": [{"feedetl_sn": sn, "med_list_codg": "XA01", "medins_list_codg": "Y-01", "cnt": 2,
                        "pric": amount / 2.0, "det_item_fee_sumamt": amount, "rx_circ_flag": "0"}]})
}

fn admitted(ipt_no: &str) -> String {
    ok("2401", admission(ipt_no))["result"]["mdtrt_id"].as_str().unwrap().to_string()
}

/// An inpatient stay: admission, fees on two days, one fee cancelled, discharge
/// and its cancellation, pre-settlement, settlement, settlement cancellation;
/// each step is what the platform's books show.
#[test]
fn an_inpatient_stay_from_admission_to_settlement() {
    let _g = serial();
    let env = Env::new(Profile::Tif);
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    let start = balance(&env);
    let mdtrt_id = admitted("ZY1001");
    assert_eq!(ok("5303", json!({"data": {"psn_no": PSN}}))["data"][0]["mdtrt_id"], mdtrt_id.as_str(), "in hospital");
    let (rc, out) = call("2401", with(admission("ZY1002"), None));
    assert_eq!(rc, MI_E_BUSINESS, "a second admission while in hospital: {out}");
    ok("2403", json!({"adminfo": {"mdtrt_id": mdtrt_id, "psn_no": PSN, "med_type": "21"}}));
    for (sn, amount) in [("D1-1", 300.0), ("D2-1", 200.0), ("D2-2", 50.0)] {
        ok("2301", inpatient_fee(&mdtrt_id, sn, amount));
    }
    ok("2302", json!({"data": {"feedetl_sn": "D2-2", "mdtrt_id": mdtrt_id, "psn_no": PSN}}));
    assert_eq!(visit_of(&env, &mdtrt_id)["fees"], 2);
    // The pre-settlement books nothing and must agree with the fees.
    let pre = ok("2303", settle_input(&mdtrt_id, 500.0));
    assert!(pre["setlinfo"]["setl_id"].is_null(), "{pre}");
    let (rc, _) = call("2303", with(settle_input(&mdtrt_id, 550.0), None));
    assert_eq!(rc, MI_E_BUSINESS);
    ok("2402", discharge(&mdtrt_id));
    ok("2405", json!({"data": {"mdtrt_id": mdtrt_id, "psn_no": PSN}}));
    ok("2402", discharge(&mdtrt_id));
    assert_eq!(ok("5303", json!({"data": {"psn_no": PSN}}))["data"], json!([]), "discharged");
    let setl = ok("2304", settle_input(&mdtrt_id, 500.0))["setlinfo"].clone();
    let setl_id = setl["setl_id"].as_str().unwrap().to_string();
    assert_eq!((setl["medfee_sumamt"].as_f64(), setl["clr_type"].as_str()), (Some(500.0), Some("21")));
    let acct = setl["acct_pay"].as_f64().unwrap();
    assert_eq!(balance(&env), start - acct);
    // A 2207 cannot settle an inpatient stay, and 2208 cannot cancel a 2304.
    let (rc, _) = call("2207", with(settle_input(&mdtrt_id, 500.0), None));
    assert_eq!(rc, MI_E_BUSINESS);
    let cancel = json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": PSN}});
    assert_eq!(call("2208", with(cancel.clone(), None)).0, MI_E_BUSINESS);
    ok("2305", cancel);
    assert_eq!(settlement(&env, &setl_id)["status"], "cancelled");
    assert_eq!(balance(&env), start, "the account has its money back");
    assert_eq!(env.ledger()["rejected"], 0, "{}", env.ledger()["rejections"]);
    mi_shutdown(1000);
}

/// A pharmacy sale: pre-settlement, settlement (which opens the visit), cancellation.
#[test]
fn a_pharmacy_sale_and_its_cancellation() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    let start = balance(&env);
    let pre = ok("2101", pharmacy_sale("P1", 36.0));
    assert!(pre["setlinfo"]["setl_id"].is_null());
    assert_eq!(balance(&env), start);
    let setl = ok("2102", pharmacy_sale("P1", 36.0))["setlinfo"].clone();
    assert_eq!((setl["clr_type"].as_str(), setl["medfee_sumamt"].as_f64()), (Some("41"), Some(36.0)));
    assert!(balance(&env) < start);
    let (setl_id, mdtrt_id) = (setl["setl_id"].as_str().unwrap(), setl["mdtrt_id"].as_str().unwrap());
    assert_eq!(visit_of(&env, mdtrt_id)["kind"], "pharmacy");
    ok("2103", json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": PSN}}));
    assert_eq!(settlement(&env, setl_id)["status"], "cancelled");
    assert_eq!(balance(&env), start);
    // Amounts that do not add up are refused.
    let mut bad = pharmacy_sale("P2", 36.0);
    bad["data"]["medfee_sumamt"] = json!(40.0);
    assert_eq!(call("2102", with(bad, None)).0, MI_E_BUSINESS);
    mi_shutdown(1000);
}

fn inventory(infno: &str, bchno: &str) -> Value {
    let node = match infno {
        "3501" | "3502" => "invinfo",
        "3503" | "3504" => "purcinfo",
        _ => "selinfo",
    };
    json!({node: {"med_list_codg": "XA01", "fixmedins_hilist_id": "Y-01", "fixmedins_hilist_name": "阿莫西林胶囊",
        "fixmedins_bchno": bchno, "rx_flag": "1", "cnt": 10, "pric": 1.5, "manu_lotnum": "L2026", "inv_chg_type": "101",
        "inv_chg_time": "2026-11-30 10:00:00", "memo": ""}})
}

/// Inventory uploads (3501–3506), refused twice for the same batch, and deleted by 3507.
#[test]
fn inventory_uploads_and_their_deletion() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    for (i, infno) in ["3501", "3502", "3503", "3504", "3505", "3506"].iter().enumerate() {
        ok(infno, inventory(infno, &format!("B{i}")));
        assert_eq!(call(infno, with(inventory(infno, &format!("B{i}")), None)).0, MI_E_BUSINESS, "{infno} twice");
        ok("3507", json!({"data": {"fixmedins_bchno": format!("B{i}"), "inv_data_type": format!("{}", i + 1)}}));
        ok(infno, inventory(infno, &format!("B{i}")));
    }
    assert_eq!(
        call("3507", with(json!({"data": {"fixmedins_bchno": "none", "inv_data_type": "1"}}), None)).0,
        MI_E_BUSINESS
    );
    mi_shutdown(1000);
}

/// Every query answers, from the books where they know (visits, fees, settlements).
#[test]
fn every_query_answers() {
    let _g = serial();
    let env = Env::new(Profile::Csb);
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    let settle = visit(PSN, "Q1", 80.0);
    let mdtrt_id = settle["data"]["mdtrt_id"].as_str().unwrap().to_string();
    let setl = ok("2207", settle)["setlinfo"].clone();
    let p = json!({"data": {"psn_no": PSN, "mdtrt_id": mdtrt_id, "setl_id": setl["setl_id"], "begntime": "2026-01-01",
                             "endtime": "2026-12-31", "cum_ym": "202611"}});
    for (infno, input, node) in [
        ("1201", json!({"medinsinfo": {"fixmedins_type": "1", "fixmedins_code": "H44030000001"}}), "medinsinfo"),
        ("1901", json!({"data": {"type": "med_type", "date": "2026-11-30"}}), "list"),
        ("5101", json!({"data": {"hosp_dept_codg": "", "begntime": "2020-01-01"}}), "feedetail"),
        ("5102", json!({"data": {"prac_psn_type": "1"}}), "feedetail"),
        ("5103", json!({"data": {}}), "data"),
        ("5104", json!({"data": {}}), "data"),
        ("5201", p.clone(), "mdtrtinfo"),
        ("5202", p.clone(), "diseinfo"),
        ("5203", p.clone(), "setlinfo"),
        ("5204", p.clone(), "output"),
        ("5205", p.clone(), "feedetail"),
        ("5206", p.clone(), "cuminfo"),
        ("5301", p.clone(), "feedetail"),
        ("5302", p.clone(), "psnfixmedin"),
        ("5303", p.clone(), "data"),
        ("5304", p.clone(), "refmedin"),
    ] {
        let out = ok(infno, input);
        assert!(out.get(node).is_some(), "{infno}: {out}");
    }
    let fees = ok("5204", p.clone())["output"].clone();
    assert_eq!(fees[0]["det_item_fee_sumamt"].as_f64(), Some(80.0), "{fees}");
    assert!(ok("5201", p.clone())["mdtrtinfo"].as_array().unwrap().iter().any(|v| v["mdtrt_id"] == mdtrt_id.as_str()));
    assert_eq!(ok("5206", p)["cuminfo"][0]["cum"], setl["fund_pay_sumamt"]);
    assert_eq!(env.ledger()["rejected"], 0, "{}", env.ledger()["rejections"]);
    mi_shutdown(1000);
}

/// Puts a lost request (its id, its input) right.
type Resolve = Box<dyn Fn(&Env, i64, &Value)>;

/// What one state-changing class does when its answer is lost, and how the HIS
/// puts it right.
struct Lost {
    infno: &'static str,
    /// Makes what the transaction needs; returns its input.
    prepare: Box<dyn Fn(&Env) -> Value>,
    /// Puts it right once the request (id) is uncertain; returns what to check.
    resolve: Resolve,
}

/// For every state-changing class: the platform processes the request and the
/// answer is lost. The request is uncertain after one send and never resent; the
/// right transaction puts it right and the books agree.
#[test]
fn every_state_changing_class_is_uncertain_when_its_answer_is_lost_and_put_right() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"gateway": {"timeout_ms": 2000}})), MI_OK, "{}", last_error());
    let reversed_by_2601 = |env: &Env, id: i64, _: &Value| {
        let (rc, out) = reverse(id);
        assert_eq!(rc, MI_OK, "{out}");
        assert_eq!(get_request(id).1["state"], "reversed");
        let last = env.ledger()["reversals"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["effect"], "reversed", "{last}");
    };
    let settled_outpatient = |env: &Env, otp: &str| -> (String, String) {
        let s = visit(PSN, otp, 60.0);
        let setl = ok("2207", s)["setlinfo"].clone();
        let _ = env;
        (setl["setl_id"].as_str().unwrap().into(), setl["mdtrt_id"].as_str().unwrap().into())
    };
    let classes: Vec<Lost> = vec![
        Lost {
            infno: "2201",
            prepare: Box::new(|_| json!({"data": {"psn_no": PSN, "insutype": "310", "ipt_otp_no": "L2201"}})),
            // The HIS never learnt the mdtrt_id: it finds the visit by query, then cancels it.
            resolve: Box::new(|env, _, _| {
                let visits = ok("5201", json!({"data": {"psn_no": PSN}}))["mdtrtinfo"].clone();
                let v = visits.as_array().unwrap().iter().find(|v| v["ipt_otp_no"] == "L2201").unwrap().clone();
                ok("2202", json!({"data": {"psn_no": PSN, "mdtrt_id": v["mdtrt_id"], "ipt_otp_no": "L2201"}}));
                assert_eq!(visit_of(env, v["mdtrt_id"].as_str().unwrap())["cancelled"], true);
            }),
        },
        Lost {
            infno: "2202",
            prepare: Box::new(|_| {
                let r = ok("2201", json!({"data": {"psn_no": PSN, "insutype": "310", "ipt_otp_no": "L2202"}}));
                json!({"data": {"psn_no": PSN, "mdtrt_id": r["data"]["mdtrt_id"], "ipt_otp_no": "L2202"}})
            }),
            // The cancellation went through: the visit query shows it no longer valid.
            resolve: Box::new(|_, _, input| {
                let visits = ok("5201", json!({"data": {"psn_no": PSN}}))["mdtrtinfo"].clone();
                let v = visits
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["mdtrt_id"] == input["data"]["mdtrt_id"])
                    .unwrap()
                    .clone();
                assert_eq!(v["vali_flag"], "0", "{v}");
            }),
        },
        Lost {
            infno: "2205",
            prepare: Box::new(|_| {
                let s = visit(PSN, "L2205", 10.0);
                json!({"data": {"psn_no": PSN, "mdtrt_id": s["data"]["mdtrt_id"], "chrg_bchno": "B"}})
            }),
            resolve: Box::new(|_, _, input| {
                assert_eq!(ok("5204", input.clone())["output"], json!([]), "the fees are gone");
            }),
        },
        Lost {
            infno: "2203",
            prepare: Box::new(|_| {
                let s = visit(PSN, "L2203", 10.0);
                json!({"mdtrtinfo": {"mdtrt_id": s["data"]["mdtrt_id"], "psn_no": PSN, "med_type": "14",
                    "begntime": "2026-11-30 09:00:00", "dise_codg": "M03900", "dise_name": "高血压"}, "diseinfo": []})
            }),
            // Visit information sent twice says the same: it may be sent again by hand.
            resolve: Box::new(|env, _, input| {
                assert_eq!(
                    visit_of(env, input["mdtrtinfo"]["mdtrt_id"].as_str().unwrap())["med_type"],
                    "14",
                    "processed"
                );
                ok("2203", input.clone());
            }),
        },
        Lost {
            infno: "2204",
            prepare: Box::new(|_| {
                let s = visit(PSN, "L2204", 10.0);
                json!({"feedetail": [{"feedetl_sn": "2", "mdtrt_id": s["data"]["mdtrt_id"], "psn_no": PSN, "chrg_bchno": "C2",
                    "med_list_codg": "X2", "det_item_fee_sumamt": 5.0, "cnt": 1, "pric": 5.0}]})
            }),
            resolve: Box::new(|env, _, input| {
                let mdtrt_id = input["feedetail"][0]["mdtrt_id"].as_str().unwrap();
                assert_eq!(visit_of(env, mdtrt_id)["fees"], 2, "processed");
                ok("2205", json!({"data": {"psn_no": PSN, "mdtrt_id": mdtrt_id, "chrg_bchno": "C2"}}));
                assert_eq!(visit_of(env, mdtrt_id)["fees"], 1);
            }),
        },
        Lost {
            infno: "2207",
            prepare: Box::new(|_| visit(PSN, "L2207", 40.0)),
            resolve: Box::new(move |env, id, input| {
                let before = balance(env);
                reversed_by_2601(env, id, input);
                assert!(balance(env) > before, "the account got its money back");
            }),
        },
        Lost {
            infno: "2208",
            prepare: Box::new(move |env| {
                let (setl_id, mdtrt_id) = settled_outpatient(env, "L2208");
                json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": PSN}})
            }),
            // The cancellation went through: the settlement query says so, nothing to undo.
            resolve: Box::new(|env, _, input| {
                let s = ok("5203", input.clone())["setlinfo"].clone();
                assert_eq!(s["setl_stas"], "cancelled", "{s}");
                assert_eq!(settlement(env, input["data"]["setl_id"].as_str().unwrap())["status"], "cancelled");
            }),
        },
        Lost {
            infno: "2401",
            prepare: Box::new(|_| admission("L2401")),
            resolve: Box::new(move |env, id, input| {
                reversed_by_2601(env, id, input);
                assert_eq!(ok("5303", json!({"data": {"psn_no": PSN}}))["data"], json!([]), "admission withdrawn");
            }),
        },
        Lost {
            infno: "2301",
            prepare: Box::new(|_| inpatient_fee(&admitted("L2301"), "F1", 120.0)),
            resolve: Box::new(|env, _, input| {
                let mdtrt_id = input["feedetail"][0]["mdtrt_id"].as_str().unwrap();
                assert_eq!(visit_of(env, mdtrt_id)["fees"], 1, "processed");
                ok("2302", json!({"data": {"feedetl_sn": "F1", "mdtrt_id": mdtrt_id, "psn_no": PSN}}));
                assert_eq!(visit_of(env, mdtrt_id)["fees"], 0);
                ok("2404", json!({"data": {"mdtrt_id": mdtrt_id, "psn_no": PSN}}));
            }),
        },
        Lost {
            infno: "2302",
            prepare: Box::new(|_| {
                let mdtrt_id = admitted("L2302");
                ok("2301", inpatient_fee(&mdtrt_id, "F1", 80.0));
                json!({"data": {"feedetl_sn": "F1", "mdtrt_id": mdtrt_id, "psn_no": PSN}})
            }),
            resolve: Box::new(|_, _, input| {
                assert_eq!(ok("5204", input.clone())["output"], json!([]), "the fee is gone");
                ok("2404", json!({"data": {"mdtrt_id": input["data"]["mdtrt_id"], "psn_no": PSN}}));
            }),
        },
        Lost {
            infno: "2403",
            prepare: Box::new(
                |_| json!({"adminfo": {"mdtrt_id": admitted("L2403"), "psn_no": PSN, "med_type": "2114"}}),
            ),
            // A change sent twice changes nothing more: it may be sent again by hand.
            resolve: Box::new(|env, _, input| {
                let mdtrt_id = input["adminfo"]["mdtrt_id"].as_str().unwrap();
                assert_eq!(visit_of(env, mdtrt_id)["med_type"], "2114", "processed");
                ok("2403", input.clone());
                ok("2404", json!({"data": {"mdtrt_id": mdtrt_id, "psn_no": PSN}}));
            }),
        },
        Lost {
            infno: "2404",
            prepare: Box::new(|_| json!({"data": {"mdtrt_id": admitted("L2404"), "psn_no": PSN}})),
            resolve: Box::new(|_, _, _| {
                assert_eq!(ok("5303", json!({"data": {"psn_no": PSN}}))["data"], json!([]), "no longer in hospital");
            }),
        },
        Lost {
            infno: "2405",
            prepare: Box::new(|_| {
                let mdtrt_id = admitted("L2405");
                ok("2402", discharge(&mdtrt_id));
                json!({"data": {"mdtrt_id": mdtrt_id, "psn_no": PSN}})
            }),
            resolve: Box::new(|_, _, input| {
                let here = ok("5303", json!({"data": {"psn_no": PSN}}))["data"].clone();
                assert_eq!(here[0]["mdtrt_id"], input["data"]["mdtrt_id"], "in hospital again");
                ok("2404", input.clone());
            }),
        },
        Lost {
            infno: "2402",
            prepare: Box::new(|_| discharge(&admitted("L2402"))),
            resolve: Box::new(|env, _, input| {
                let mdtrt_id = input["dscginfo"]["mdtrt_id"].as_str().unwrap();
                assert_eq!(visit_of(env, mdtrt_id)["discharged"], true, "processed");
                ok("2405", json!({"data": {"mdtrt_id": mdtrt_id, "psn_no": PSN}}));
                assert_eq!(visit_of(env, mdtrt_id)["discharged"], false);
                ok("2404", json!({"data": {"mdtrt_id": mdtrt_id, "psn_no": PSN}}));
            }),
        },
        Lost {
            infno: "2304",
            prepare: Box::new(|_| {
                let mdtrt_id = admitted("L2304");
                ok("2301", inpatient_fee(&mdtrt_id, "F1", 900.0));
                ok("2402", discharge(&mdtrt_id));
                settle_input(&mdtrt_id, 900.0)
            }),
            resolve: Box::new(move |env, id, input| {
                let mdtrt_id = input["data"]["mdtrt_id"].as_str().unwrap().to_string();
                reversed_by_2601(env, id, input);
                let l = env.ledger();
                let s =
                    l["settlements"].as_array().unwrap().iter().find(|s| s["mdtrt_id"] == mdtrt_id.as_str()).unwrap();
                assert_eq!(s["status"], "reversed");
            }),
        },
        Lost {
            infno: "2305",
            prepare: Box::new(|_| {
                let mdtrt_id = admitted("L2305");
                ok("2301", inpatient_fee(&mdtrt_id, "F1", 300.0));
                ok("2402", discharge(&mdtrt_id));
                let setl_id = ok("2304", settle_input(&mdtrt_id, 300.0))["setlinfo"]["setl_id"].clone();
                json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": PSN}})
            }),
            resolve: Box::new(|_, _, input| {
                assert_eq!(ok("5203", input.clone())["setlinfo"]["setl_stas"], "cancelled");
            }),
        },
        Lost {
            infno: "2102",
            prepare: Box::new(|_| pharmacy_sale("L2102", 24.0)),
            resolve: Box::new(move |env, id, input| {
                let before = balance(env);
                reversed_by_2601(env, id, input);
                assert!(balance(env) > before, "the account got its money back");
            }),
        },
        Lost {
            infno: "2103",
            prepare: Box::new(|_| {
                let setl = ok("2102", pharmacy_sale("L2103", 24.0))["setlinfo"].clone();
                json!({"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": PSN}})
            }),
            // Reversing the cancellation restores the sale: 2103 is in the default reversible set.
            resolve: Box::new(move |env, id, input| {
                let setl_id = input["data"]["setl_id"].as_str().unwrap();
                assert_eq!(settlement(env, setl_id)["status"], "cancelled", "processed");
                reversed_by_2601(env, id, input);
                assert_eq!(settlement(env, setl_id)["status"], "settled");
            }),
        },
        Lost {
            infno: "3507",
            prepare: Box::new(|_| {
                ok("3501", inventory("3501", "L3507"));
                json!({"data": {"fixmedins_bchno": "L3507", "inv_data_type": "1"}})
            }),
            // Sent again by hand, the platform no longer has the record: it was deleted.
            resolve: Box::new(|_, _, input| {
                let (rc, out) = call("3507", with(input.clone(), None));
                assert_eq!(rc, MI_E_BUSINESS, "{out}");
                assert!(out["err_msg"].as_str().unwrap().contains("不存在"), "{out}");
            }),
        },
        Lost {
            infno: "4101",
            prepare: Box::new(move |env| {
                let (setl_id, mdtrt_id) = settled_outpatient(env, "L4101");
                json!({"setlinfo": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": PSN, "psn_name": "张三",
                                    "setl_list_id": ""}})
            }),
            resolve: Box::new(|_, _, input| {
                let (rc, out) = call("4101", with(input.clone(), None));
                assert_eq!(rc, MI_E_BUSINESS, "already uploaded: {out}");
                assert!(out["err_msg"].as_str().unwrap().contains("已上传"), "{out}");
            }),
        },
    ];
    // The inventory uploads: sent again by hand, the platform says it has the batch;
    // then 3507 deletes it.
    let mut classes = classes;
    for (i, infno) in ["3501", "3502", "3503", "3504", "3505", "3506"].into_iter().enumerate() {
        let bchno = format!("L{infno}");
        let kind = format!("{}", i + 1);
        classes.push(Lost {
            infno,
            prepare: Box::new({
                let bchno = bchno.clone();
                move |_| inventory(infno, &bchno)
            }),
            resolve: Box::new(move |_, _, input| {
                assert_eq!(call(infno, with(input.clone(), None)).0, MI_E_BUSINESS, "{infno} already uploaded");
                ok("3507", json!({"data": {"fixmedins_bchno": bchno, "inv_data_type": kind}}));
            }),
        });
    }
    for c in &classes {
        let input = (c.prepare)(&env);
        let before = by_infno(&env, c.infno);
        let (rc, out) = call(c.infno, with(input.clone(), Some(json!({"drop": true}))));
        assert_eq!(rc, MI_E_UNCERTAIN, "{}: {out}", c.infno);
        let id = mi_last_request_id();
        let (_, rec) = get_request(id);
        assert_eq!((rec["state"].as_str(), rec["attempts"].as_i64()), (Some("uncertain"), Some(1)), "{}", c.infno);
        assert!(env.sim.wait_idle(Duration::from_secs(10)));
        assert_eq!(by_infno(&env, c.infno), before + 1, "{}: processed once, never resent", c.infno);
        (c.resolve)(&env, id, &input);
    }
    let l = env.ledger();
    assert_eq!(l["double_settle_attempts"], 0);
    // Every settlement left standing is one the HIS knows: the lost ones were put right.
    let standing: Vec<&Value> =
        l["settlements"].as_array().unwrap().iter().filter(|s| s["status"] == "settled").collect();
    assert_eq!(standing.len(), 2, "4101's settlement and 2103's restored sale, nothing else: {standing:?}");
    mi_shutdown(1000);
}

/// The day's books: 3201 agrees with the platform's totals of the day and says
/// when they differ; 3202 uploads the institution's settlements (9101), is
/// answered with a file of the differing rows, fetched under the institution's
/// own code (9102).
#[test]
fn reconciliation_of_totals_and_details() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK, "{}", last_error());
    let mut settled = Vec::new();
    for otp in ["R1", "R2", "R3"] {
        settled.push(ok("2207", visit(PSN, otp, 70.0))["setlinfo"].clone());
    }
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let sum = |k: &str| settled.iter().map(|s| s[k].as_f64().unwrap()).sum::<f64>();
    let totals = |cnt: usize| {
        json!({"data": {"insutype": "310", "clr_type": "11", "setl_optins": "440300", "stmt_begndate": today,
            "stmt_enddate": today, "medfee_sumamt": sum("medfee_sumamt"), "fund_pay_sumamt": sum("fund_pay_sumamt"),
            "acct_pay": sum("acct_pay"), "fixmedins_setl_cnt": cnt}})
    };
    assert_eq!(ok("3201", totals(3))["stmtinfo"]["stmt_rslt"], "0");
    assert_eq!(ok("3201", totals(2))["stmtinfo"]["stmt_rslt"], "1");

    // The detail file: R1 as booked, R2 with another amount, R3 missing, and one
    // the platform never saw.
    let work = tempfile::tempdir().unwrap();
    let row = |s: &Value, medfee: f64| {
        format!(
            "{}\t{}\t{PSN}\t{medfee}\t{}\t{}\t0\n",
            s["setl_id"].as_str().unwrap(),
            s["mdtrt_id"].as_str().unwrap(),
            s["fund_pay_sumamt"],
            s["acct_pay"]
        )
    };
    let text = format!("{}{}X999\tM999\t{PSN}\t1\t0\t0\t0\n", row(&settled[0], 70.0), row(&settled[1], 75.0));
    let zip_path = work.path().join("H44030000001_3202.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        z.start_file("H44030000001_3202.txt", zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut z, text.as_bytes()).unwrap();
        z.finish().unwrap();
    }
    let (rc, up) = upload_file(&zip_path);
    assert_eq!(rc, MI_OK, "{up}");
    let mut input = totals(3);
    input["data"]["file_qury_no"] = up["output"]["file_qury_no"].clone();
    input["data"]["cash_payamt"] = json!(sum("psn_cash_pay"));
    input["data"]["refd_setl_flag"] = json!("0");
    let info = ok("3202", input)["fileinfo"].clone();
    let dest = work.path().join("answer");
    let (rc, down) = download_file(info["file_qury_no"].as_str().unwrap(), info["filename"].as_str().unwrap(), &dest);
    assert_eq!(rc, MI_OK, "{down}");
    let answer = std::fs::read_to_string(down["output"]["files"][0]["path"].as_str().unwrap()).unwrap();
    let mut results: Vec<(String, String)> = answer
        .lines()
        .map(|l| {
            // psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo, amounts
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 10, "{l}");
            (f[2].to_string(), f[4].to_string())
        })
        .collect();
    results.sort();
    let id = |i: usize| settled[i]["setl_id"].as_str().unwrap().to_string();
    let mut expected = vec![(id(1), "3".to_string()), (id(2), "2".to_string()), ("X999".to_string(), "1".to_string())];
    expected.sort();
    assert_eq!(results, expected, "{answer}");
    mi_shutdown(1000);
}
