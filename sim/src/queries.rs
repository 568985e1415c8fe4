//! Queries (1201, 1901, 5101–5104, 5201–5206, 5301–5304): answered from the books
//! where the books know the answer (visits, fees, settlements), else with a
//! plausible fixed list in the output node a real answer uses.

use crate::ledger::{text, yuan, Ledger, TxResult};
use serde_json::{json, Map, Value};

impl Ledger {
    pub(crate) fn query(&mut self, infno: &str, input: &Value, env: &Map<String, Value>) -> TxResult {
        let psn = |l: &Ledger| -> Result<String, String> {
            let psn_no = text(input, "/data/psn_no");
            l.person(&psn_no)?;
            Ok(psn_no)
        };
        let today = crate::checks::now_local().format("%Y-%m-%d").to_string();
        Ok(match infno {
            // Institution information.
            "1201" => {
                let code = env.get("fixmedins_code").and_then(Value::as_str).unwrap_or_default();
                json!({"medinsinfo": [{"fixmedins_code": code, "fixmedins_name": env.get("fixmedins_name"),
                    "uscc": "12440300455755000X", "fixmedins_type": "1", "hosp_lv": "03"}]})
            }
            // A dictionary: `data{type}`.
            "1901" => {
                let kind = text(input, "/data/type");
                if kind.is_empty() {
                    return Err("字典类型[type]不能为空".into());
                }
                let list: Vec<Value> = [("11", "普通门诊"), ("21", "普通住院"), ("41", "定点药店购药")]
                    .iter()
                    .enumerate()
                    .map(|(i, (v, l))| json!({"type": kind, "label": l, "value": v, "sort": i + 1, "vali_flag": "1"}))
                    .collect();
                json!({"list": list})
            }
            // Departments, practitioners, and their registrations.
            "5101" => {
                json!({"feedetail": [{"hosp_dept_codg": "A01", "hosp_dept_name": "内科", "begntime": "2020-01-01",
                                          "vali_flag": "1", "caty": "A03"}]})
            }
            "5102" => json!({"feedetail": [{"prac_psn_code": "D440300000001", "prac_psn_name": "李医生",
                                          "prac_psn_type": "1", "vali_flag": "1"}]}),
            "5103" | "5104" => json!({"data": [{"fixmedins_code": env.get("fixmedins_code"), "vali_flag": "1"}]}),
            // Visits of a person.
            "5201" => {
                let psn_no = psn(self)?;
                let list: Vec<Value> = self
                    .visits
                    .iter()
                    .filter(|v| v.psn_no == psn_no)
                    .map(|v| {
                        json!({"mdtrt_id": v.mdtrt_id, "psn_no": v.psn_no, "med_type": v.med_type,
                        "ipt_otp_no": v.ipt_otp_no, "vali_flag": if v.cancelled { "0" } else { "1" }})
                    })
                    .collect();
                json!({"mdtrtinfo": list})
            }
            "5202" => {
                psn(self)?;
                json!({"diseinfo": [{"diag_code": "J06.900", "diag_name": "急性上呼吸道感染", "maindiag_flag": "1"}]})
            }
            // Fee details of a visit.
            "5204" => {
                let psn_no = psn(self)?;
                let mdtrt_id = text(input, "/data/mdtrt_id");
                let v = self.visit_mut(&mdtrt_id, &psn_no)?;
                let list: Vec<Value> = v
                    .fees
                    .iter()
                    .map(|f| {
                        json!({"feedetl_sn": f.feedetl_sn, "mdtrt_id": mdtrt_id, "med_list_codg": f.med_list_codg,
                        "det_item_fee_sumamt": yuan(f.amount_fen), "fulamt_ownpay_amt": yuan(f.selfpay_fen)})
                    })
                    .collect();
                json!({"output": list})
            }
            "5205" => {
                psn(self)?;
                json!({"feedetail": []})
            }
            // The person's year to date: what the fund has paid for them.
            "5206" => {
                let psn_no = psn(self)?;
                let fund: i64 = self
                    .settlements
                    .iter()
                    .filter(|s| s.psn_no == psn_no && s.status == "settled")
                    .map(|s| s.fund_fen)
                    .sum();
                json!({"cuminfo": [{"cum_type_code": "Z0000", "cum": yuan(fund), "year": &today[..4]}]})
            }
            "5301" => {
                psn(self)?;
                json!({"feedetail": [{"opsp_dise_code": "M03900", "opsp_dise_name": "高血压", "begndate": "2024-01-01",
                                      "enddate": "2099-12-31"}]})
            }
            "5302" => {
                psn(self)?;
                json!({"psnfixmedin": [{"fixmedins_code": env.get("fixmedins_code"), "begndate": "2024-01-01"}]})
            }
            // Who is in hospital now.
            "5303" => {
                let psn_no = psn(self)?;
                let list: Vec<Value> = self
                    .visits
                    .iter()
                    .filter(|v| v.psn_no == psn_no && v.kind == "inpatient" && !v.cancelled && !v.discharged)
                    .map(|v| json!({"mdtrt_id": v.mdtrt_id, "psn_no": v.psn_no, "ipt_no": v.ipt_otp_no}))
                    .collect();
                json!({"data": list})
            }
            "5304" => {
                psn(self)?;
                json!({"refmedin": []})
            }
            _ => return Err(format!("交易编号[{infno}]不存在或未开通")),
        })
    }
}
