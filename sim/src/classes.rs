//! The transaction classes beside the outpatient visit, routed from
//! [`Ledger::run`]: inpatient ([`crate::inpatient`]), pharmacy ([`crate::pharmacy`]),
//! inventory uploads (3501–3507) and the settlement list (4101) here, the queries
//! ([`crate::queries`]) and reconciliation ([`crate::reconcile`]).

use crate::ledger::{text, Ledger, TxResult};
use serde_json::{json, Map, Value};

/// The inventory uploads: infno → (input node, `inv_data_type` that 3507 deletes by).
const INVENTORY: [(&str, &str, &str); 6] = [
    ("3501", "invinfo", "1"),
    ("3502", "invinfo", "2"),
    ("3503", "purcinfo", "3"),
    ("3504", "purcinfo", "4"),
    ("3505", "selinfo", "5"),
    ("3506", "selinfo", "6"),
];

impl Ledger {
    pub(crate) fn run_class(&mut self, infno: &str, input: &Value, msgid: &str, env: &Map<String, Value>) -> TxResult {
        match infno {
            "2401" => self.admit(input, msgid),
            "2402" => self.discharge(input),
            "2403" => self.change_admission(input),
            "2404" => self.cancel_admission(input),
            "2405" => self.cancel_discharge(input),
            "2301" => self.upload_fees(input, "inpatient"),
            "2302" => self.cancel_inpatient_fees(input),
            "2101" => self.pharmacy_settle(input, msgid, false),
            "2102" => self.pharmacy_settle(input, msgid, true),
            "2103" => self.cancel_settlement(input, msgid, "2103"),
            "3507" => self.delete_inventory(input),
            "4101" => self.settlement_list(input),
            "3201" => self.reconcile_totals(input),
            "3202" => self.reconcile_details(input, env),
            i if INVENTORY.iter().any(|(n, _, _)| *n == i) => self.upload_inventory(i, input),
            i => self.query(i, input, env),
        }
    }

    /// 3501–3506: one record per `fixmedins_bchno` and kind; the same batch twice is refused.
    fn upload_inventory(&mut self, infno: &str, input: &Value) -> TxResult {
        let (_, node, kind) = INVENTORY.iter().find(|(n, _, _)| *n == infno).copied().unwrap_or_default();
        let rec = input.get(node).ok_or(format!("入参 {node} 不能为空"))?;
        let bchno = text(rec, "/fixmedins_bchno");
        if bchno.is_empty() || text(rec, "/med_list_codg").is_empty() {
            return Err(format!("{node}.fixmedins_bchno、med_list_codg 不能为空"));
        }
        let key = (bchno.clone(), kind.to_string());
        if self.inventory.contains_key(&key) {
            return Err(format!("定点医药机构批次流水号[{bchno}]已上传"));
        }
        self.inventory.insert(key, rec.clone());
        Ok(json!({}))
    }

    /// 3507: `data{fixmedins_bchno, inv_data_type}` deletes what 3501–3506 uploaded.
    fn delete_inventory(&mut self, input: &Value) -> TxResult {
        let (bchno, kind) = (text(input, "/data/fixmedins_bchno"), text(input, "/data/inv_data_type"));
        match self.inventory.remove(&(bchno.clone(), kind.clone())) {
            Some(_) => Ok(json!({})),
            None => Err(format!("批次流水号[{bchno}]类型[{kind}]的进销存信息不存在")),
        }
    }

    /// 4101: the settlement list of a settled visit (`setlinfo{setl_id, mdtrt_id, psn_no, …}`), once.
    fn settlement_list(&mut self, input: &Value) -> TxResult {
        let info = input.get("setlinfo").ok_or("结算清单信息[setlinfo]不能为空")?;
        let setl_id = text(info, "/setl_id");
        let s = self.settlement(&setl_id)?;
        if s.status != "settled" || s.mdtrt_id != text(info, "/mdtrt_id") || s.psn_no != text(info, "/psn_no") {
            return Err(format!("结算ID[{setl_id}]与就诊信息不符或已撤销"));
        }
        if self.setl_lists.contains_key(&setl_id) {
            return Err(format!("结算ID[{setl_id}]的结算清单已上传"));
        }
        let id = self.new_id();
        self.setl_lists.insert(setl_id, id.clone());
        Ok(json!({"data": {"setl_list_id": id}}))
    }
}
