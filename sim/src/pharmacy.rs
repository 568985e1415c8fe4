//! Designated pharmacies: pre-settlement (2101), settlement (2102) and its
//! cancellation (2103, shared with [`Ledger::cancel_settlement`]). A pharmacy sale
//! has no registration: 2102 opens the visit and settles its drug details at once.

use crate::ledger::{fee_line, fen, text, Fee, Ledger, TxResult, Visit};
use serde_json::Value;

impl Ledger {
    /// 2101 / 2102: `data{psn_no, mdtrt_cert_type, medfee_sumamt, …}` and `drugdetail[]`
    /// (`feedetl_sn`, `med_list_codg`, `cnt`, `pric`, `det_item_fee_sumamt`).
    pub(crate) fn pharmacy_settle(&mut self, input: &Value, msgid: &str, for_real: bool) -> TxResult {
        let psn_no = text(input, "/data/psn_no");
        self.person(&psn_no)?;
        let medfee = fen(input.pointer("/data/medfee_sumamt")).ok_or("医疗费总额[medfee_sumamt]不正确")?;
        let items = input.get("drugdetail").and_then(Value::as_array).filter(|a| !a.is_empty());
        let items = items.ok_or("药品明细[drugdetail]不能为空")?;
        let mut fees = Vec::new();
        for it in items {
            let (fee, _, _) = fee_line(it)?;
            if fees.iter().any(|f: &Fee| f.feedetl_sn == fee.feedetl_sn) {
                return Err(format!("明细流水号[{}]重复", fee.feedetl_sn));
            }
            fees.push(fee);
        }
        let total: i64 = fees.iter().map(|f| f.amount_fen).sum();
        let selfpay: i64 = fees.iter().map(|f| f.selfpay_fen).sum();
        if (total - medfee).abs() > 1 {
            return Err(format!("医疗费总额[{}]与药品明细合计[{}]不符", medfee as f64 / 100.0, total as f64 / 100.0));
        }
        let mdtrt_id = if for_real { self.new_id() } else { String::new() };
        if for_real {
            self.visits.push(Visit {
                mdtrt_id: mdtrt_id.clone(),
                psn_no: psn_no.clone(),
                ipt_otp_no: text(input, "/data/ipt_otp_no"),
                med_type: text(input, "/data/med_type"),
                cancelled: false,
                fees,
                msgid: msgid.to_string(),
                kind: "pharmacy",
                discharged: false,
            });
        }
        self.settle_amounts("2102", &psn_no, &mdtrt_id, (total, selfpay), input, msgid, for_real)
    }
}
