//! Inpatient business: admission (2401), discharge (2402), changes (2403), their
//! cancellations (2404, 2405), fee details (2301, 2302). Pre-settlement and
//! settlement (2303, 2304) and the settlement's cancellation (2305) share the
//! outpatient books ([`Ledger::settle_visit`], [`Ledger::cancel_settlement`]).

use crate::ledger::{text, Ledger, TxResult, Visit};
use serde_json::{json, Value};

impl Ledger {
    /// 2401: `mdtrtinfo{psn_no, insutype, begntime, mdtrt_cert_type, med_type, ipt_no, …}`, `diseinfo[]`.
    pub(crate) fn admit(&mut self, input: &Value, msgid: &str) -> TxResult {
        let m = input.get("mdtrtinfo").ok_or("入院信息[mdtrtinfo]不能为空")?;
        let psn_no = text(m, "/psn_no");
        self.person(&psn_no)?;
        for (field, name) in
            [("ipt_no", "住院号"), ("begntime", "入院时间"), ("med_type", "医疗类别"), ("insutype", "险种类型")]
        {
            if text(m, &format!("/{field}")).is_empty() {
                return Err(format!("{name}[{field}]不能为空"));
            }
        }
        let ipt_no = text(m, "/ipt_no");
        if self.visits.iter().any(|v| v.kind == "inpatient" && v.ipt_otp_no == ipt_no && !v.cancelled) {
            return Err(format!("住院号[{ipt_no}]已办理入院"));
        }
        if self.visits.iter().any(|v| v.kind == "inpatient" && v.psn_no == psn_no && !v.cancelled && !v.discharged) {
            return Err("该人员有未出院的住院记录, 不能重复入院".into());
        }
        let mdtrt_id = self.new_id();
        self.visits.push(Visit {
            mdtrt_id: mdtrt_id.clone(),
            psn_no: psn_no.clone(),
            ipt_otp_no: ipt_no.clone(),
            med_type: text(m, "/med_type"),
            cancelled: false,
            fees: Vec::new(),
            msgid: msgid.to_string(),
            kind: "inpatient",
            discharged: false,
        });
        self.processed.insert(msgid.to_string(), ("2401".into(), mdtrt_id.clone()));
        Ok(json!({"result": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "ipt_otp_no": ipt_no}}))
    }

    fn inpatient_visit(&mut self, node: &Value) -> Result<&mut Visit, String> {
        let (psn_no, mdtrt_id) = (text(node, "/psn_no"), text(node, "/mdtrt_id"));
        let v = self.visit_mut(&mdtrt_id, &psn_no)?;
        if v.kind != "inpatient" {
            return Err(format!("就诊ID[{mdtrt_id}]不是住院就诊"));
        }
        Ok(v)
    }

    fn settled(&self, mdtrt_id: &str) -> bool {
        self.settlements.iter().any(|s| s.mdtrt_id == mdtrt_id && s.status == "settled")
    }

    /// 2402: `dscginfo{mdtrt_id, psn_no, endtime, dscg_way, …}`.
    pub(crate) fn discharge(&mut self, input: &Value) -> TxResult {
        let d = input.get("dscginfo").ok_or("出院信息[dscginfo]不能为空")?;
        if text(d, "/endtime").is_empty() {
            return Err("出院时间[endtime]不能为空".into());
        }
        let v = self.inpatient_visit(d)?;
        if v.discharged {
            return Err("该人员已办理出院".into());
        }
        v.discharged = true;
        Ok(json!({}))
    }

    /// 2403: `adminfo{mdtrt_id, psn_no, …}` changes what the admission recorded.
    pub(crate) fn change_admission(&mut self, input: &Value) -> TxResult {
        let a = input.get("adminfo").ok_or("住院信息[adminfo]不能为空")?;
        let med_type = text(a, "/med_type");
        let v = self.inpatient_visit(a)?;
        if v.discharged {
            return Err("已出院, 不能变更入院信息".into());
        }
        if !med_type.is_empty() {
            v.med_type = med_type;
        }
        Ok(json!({}))
    }

    /// 2404: `data{mdtrt_id, psn_no}` withdraws an admission without fees or settlement.
    pub(crate) fn cancel_admission(&mut self, input: &Value) -> TxResult {
        let d = input.get("data").ok_or("入参 data 不能为空")?;
        let mdtrt_id = text(d, "/mdtrt_id");
        if self.settled(&mdtrt_id) {
            return Err("该住院已结算, 不能撤销入院".into());
        }
        let v = self.inpatient_visit(d)?;
        if !v.fees.is_empty() {
            return Err("该住院有费用明细, 请先撤销费用明细".into());
        }
        v.cancelled = true;
        Ok(json!({}))
    }

    /// 2405: `data{mdtrt_id, psn_no}` undoes a discharge.
    pub(crate) fn cancel_discharge(&mut self, input: &Value) -> TxResult {
        let d = input.get("data").ok_or("入参 data 不能为空")?;
        let mdtrt_id = text(d, "/mdtrt_id");
        if self.settled(&mdtrt_id) {
            return Err("该住院已结算, 不能撤销出院".into());
        }
        let v = self.inpatient_visit(d)?;
        if !v.discharged {
            return Err("该人员未办理出院".into());
        }
        v.discharged = false;
        Ok(json!({}))
    }

    /// 2302: `data{feedetl_sn ("0000": all), mdtrt_id, psn_no}`.
    pub(crate) fn cancel_inpatient_fees(&mut self, input: &Value) -> TxResult {
        let d = input.get("data").ok_or("入参 data 不能为空")?;
        let (sn, mdtrt_id) = (text(d, "/feedetl_sn"), text(d, "/mdtrt_id"));
        if self.settled(&mdtrt_id) {
            return Err("该住院已结算, 不能撤销费用明细".into());
        }
        let v = self.inpatient_visit(d)?;
        let before = v.fees.len();
        v.fees.retain(|f| sn != "0000" && f.feedetl_sn != sn);
        if v.fees.len() == before {
            return Err(format!("费用明细流水号[{sn}]不存在"));
        }
        Ok(json!({}))
    }
}
