//! The platform's books: sign-ins, visits, fee details, settlements, reversals and
//! account balances, and the transactions that change them.

use crate::registry::{self, Person};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
pub struct Fee {
    pub feedetl_sn: String,
    pub chrg_bchno: String,
    pub med_list_codg: String,
    pub amount_fen: i64,
    pub selfpay_fen: i64,
}

#[derive(Debug, Clone)]
pub struct Visit {
    pub mdtrt_id: String,
    pub psn_no: String,
    pub ipt_otp_no: String,
    pub med_type: String,
    pub cancelled: bool,
    pub fees: Vec<Fee>,
    pub msgid: String,
    /// `outpatient` (2201), `inpatient` (2401) or `pharmacy` (2102).
    pub kind: &'static str,
    /// Discharged (2402), until 2405 undoes it.
    pub discharged: bool,
}

#[derive(Debug, Clone)]
pub struct Settlement {
    /// The transaction that settled: 2207, 2304 or 2102.
    pub infno: String,
    pub insutype: String,
    pub clr_type: String,
    pub clr_optins: String,
    pub setl_id: String,
    pub mdtrt_id: String,
    pub psn_no: String,
    pub msgid: String,
    pub medfee_fen: i64,
    pub fund_fen: i64,
    pub acct_fen: i64,
    pub cash_fen: i64,
    pub balc_after_fen: i64,
    /// `settled`, `cancelled` (2208, 2305, 2103) or `reversed` (2601).
    pub status: String,
    pub setl_time: String,
}

#[derive(Default)]
pub struct Ledger {
    pub people: Vec<Person>,
    pub seen_msgids: HashSet<String>,
    /// sign_no -> (opter, date)
    pub sign_nos: HashMap<String, (String, String)>,
    pub signins: Vec<Value>,
    pub visits: Vec<Visit>,
    pub settlements: Vec<Settlement>,
    pub reversals: Vec<Value>,
    /// msgid of every processed state-changing request -> (infno, reference)
    pub processed: HashMap<String, (String, String)>,
    pub counts: HashMap<String, u64>,
    pub requests: u64,
    pub rejected: u64,
    pub rejections: Vec<String>,
    pub double_settle_attempts: u64,
    /// Every msgid the platform processed (accepted past the envelope checks), in order.
    pub processed_msgids: Vec<String>,
    /// Uploaded files (9101) and the catalogue files.
    pub files: crate::files::Files,
    /// Inventory uploads (3501–3506) by (fixmedins_bchno, inv_data_type).
    pub inventory: HashMap<(String, String), Value>,
    /// Settlement lists (4101): setl_id -> setl_list_id.
    pub setl_lists: HashMap<String, String>,
    /// The zip a processed 9102 answers with, by its msgid, until it is sent.
    pub zips: HashMap<String, std::sync::Arc<Vec<u8>>>,
    serial: u64,
}

pub type TxResult = Result<Value, String>;

pub(crate) fn yuan(fen: i64) -> Value {
    json!((fen as f64) / 100.0)
}

pub(crate) fn fen(v: Option<&Value>) -> Option<i64> {
    let f = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    Some((f * 100.0).round() as i64)
}

/// One fee line (`feedetail[]`, `drugdetail[]`): its serial number, amount, count
/// and price, which must agree; a code starting `ZZ` is wholly self-paid. Returns
/// the fee with its count and unit price (fen).
pub(crate) fn fee_line(it: &Value) -> Result<(Fee, f64, i64), String> {
    let sn = text(it, "/feedetl_sn");
    let amount = fen(it.get("det_item_fee_sumamt")).ok_or(format!("明细[{sn}]费用总额不正确"))?;
    let cnt = it.get("cnt").and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok())).unwrap_or(0.0);
    let pric = fen(it.get("pric")).unwrap_or(0);
    if sn.is_empty() || ((cnt * pric as f64).round() as i64 - amount).abs() > 1 {
        return Err(format!("明细[{sn}]数量×单价与金额不符"));
    }
    let codg = text(it, "/med_list_codg");
    let selfpay = if codg.starts_with("ZZ") { amount } else { 0 };
    let fee = Fee {
        feedetl_sn: sn,
        chrg_bchno: text(it, "/chrg_bchno"),
        med_list_codg: codg,
        amount_fen: amount,
        selfpay_fen: selfpay,
    };
    Ok((fee, cnt, pric))
}

pub(crate) fn text(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger { people: registry::people(), ..Default::default() }
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// A platform-style id: time (14) + serial (6).
    pub(crate) fn new_id(&mut self) -> String {
        let s = self.next_serial();
        format!("{}{:06}", crate::checks::now_local().format("%Y%m%d%H%M%S"), s)
    }

    pub fn inf_refmsgid(&mut self, admdvs: &str) -> String {
        let s = self.next_serial();
        format!("{admdvs}{}{:010}", crate::checks::now_local().format("%Y%m%d%H%M%S"), s)
    }

    pub fn reject(&mut self, why: &str) {
        self.rejected += 1;
        self.rejections.push(why.to_string());
        if self.rejections.len() > 100 {
            self.rejections.remove(0);
        }
    }

    pub(crate) fn person(&self, psn_no: &str) -> Result<&Person, String> {
        self.people.iter().find(|p| p.psn_no == psn_no).ok_or_else(|| format!("人员编号[{psn_no}]不存在"))
    }

    pub(crate) fn person_mut(&mut self, psn_no: &str) -> Result<&mut Person, String> {
        self.people.iter_mut().find(|p| p.psn_no == psn_no).ok_or_else(|| format!("人员编号[{psn_no}]不存在"))
    }

    pub(crate) fn visit_mut(&mut self, mdtrt_id: &str, psn_no: &str) -> Result<&mut Visit, String> {
        let v = self
            .visits
            .iter_mut()
            .find(|v| v.mdtrt_id == mdtrt_id)
            .ok_or_else(|| format!("就诊ID[{mdtrt_id}]不存在"))?;
        if v.psn_no != psn_no {
            return Err(format!("就诊ID[{mdtrt_id}]与人员编号不符"));
        }
        if v.cancelled {
            return Err(format!("就诊ID[{mdtrt_id}]已撤销"));
        }
        Ok(v)
    }

    /// Runs one accepted transaction. `env` is the whole envelope.
    pub fn run(&mut self, infno: &str, env: &Map<String, Value>) -> TxResult {
        *self.counts.entry(infno.to_string()).or_default() += 1;
        let input = env.get("input").cloned().unwrap_or(Value::Null);
        let msgid = env["msgid"].as_str().unwrap_or_default().to_string();
        let opter = env["opter"].as_str().unwrap_or_default().to_string();
        match infno.get(..4).unwrap_or(infno) {
            "9001" => self.sign_in(&input, &opter),
            "9002" => self.sign_out(&input),
            "1101" => self.person_info(&input),
            "2201" => self.register(&input, &msgid),
            "2202" => self.cancel_register(&input),
            "2203" => self.visit_info(&input),
            "2204" => self.upload_fees(&input, "outpatient"),
            "2205" => self.cancel_fees(&input),
            "2206" => self.settle(&input, &msgid, false),
            "2207" => self.settle(&input, &msgid, true),
            "2208" => self.cancel_settlement(&input, &msgid, "2208"),
            "2601" => self.reverse(&input, &msgid),
            "5203" => self.settlement_info(&input),
            "2303" => self.settle_visit("2304", "inpatient", &input, &msgid, false),
            "2304" => self.settle_visit("2304", "inpatient", &input, &msgid, true),
            "2305" => self.cancel_settlement(&input, &msgid, "2305"),
            i if crate::catalogues::layout(i).is_some() => self.files.catalogues.query(i, &input),
            i if crate::catalogues::is_paged(i) => self.files.catalogues.page(i, &input),
            "9101" => {
                let code = env["fixmedins_code"].as_str().unwrap_or_default();
                let now = crate::checks::now_local().format("%Y%m%d%H%M%S").to_string();
                self.files.upload(&input, code, &now)
            }
            "9102" => {
                let zip = self.files.download(&input, env["fixmedins_code"].as_str().unwrap_or_default())?;
                self.zips.insert(msgid, zip);
                Ok(json!({}))
            }
            other => self.run_class(other, &input, &msgid, env),
        }
    }

    fn sign_in(&mut self, input: &Value, opter: &str) -> TxResult {
        let opter_no = text(input, "/signIn/opter_no");
        if opter_no.is_empty() {
            return Err("签到入参 signIn.opter_no 不能为空".into());
        }
        if opter_no != opter {
            return Err("签到操作员与报文经办人不一致".into());
        }
        let now = crate::checks::now_local();
        let serial = self.next_serial();
        let sign_no = format!("{}{:016}", now.format("%Y%m%d%H%M%S"), serial);
        let date = now.format("%Y-%m-%d").to_string();
        let sign_time = now.format("%Y-%m-%d %H:%M:%S").to_string();
        self.sign_nos.insert(sign_no.clone(), (opter_no.clone(), date.clone()));
        self.signins.push(json!({"opter": opter_no, "sign_no": sign_no, "sign_date": date, "sign_time": sign_time}));
        Ok(json!({"signinoutb": {"sign_time": sign_time, "sign_no": sign_no}}))
    }

    fn sign_out(&mut self, input: &Value) -> TxResult {
        let sign_no = text(input, "/signOut/sign_no");
        if self.sign_nos.remove(&sign_no).is_none() {
            return Err(format!("签到编号[{sign_no}]不存在"));
        }
        Ok(json!({"signoutoutb": {"sign_time": crate::checks::now_local().format("%Y-%m-%d %H:%M:%S").to_string()}}))
    }

    /// Whether `sign_no` was issued today to `opter`.
    pub fn sign_no_valid(&self, sign_no: &str, opter: &str) -> bool {
        let today = crate::checks::now_local().format("%Y-%m-%d").to_string();
        self.sign_nos.get(sign_no).is_some_and(|(o, d)| o == opter && *d == today)
    }

    fn person_info(&mut self, input: &Value) -> TxResult {
        let cert_type = text(input, "/data/mdtrt_cert_type");
        let cert_no = text(input, "/data/mdtrt_cert_no");
        let certno = text(input, "/data/certno");
        let name = text(input, "/data/psn_name");
        if !["01", "02", "03"].contains(&cert_type.as_str()) {
            return Err("就诊凭证类型[mdtrt_cert_type]不正确".into());
        }
        // An e-voucher is known by its token and a card by its number (some regions
        // send `卡号|busiCardInfo`); an ID number, or the person number, is itself.
        let key = if cert_no.is_empty() { certno.clone() } else { cert_no };
        let p = match cert_type.as_str() {
            "01" => self.people.iter().find(|p| p.ec_token == key),
            "03" => self.people.iter().find(|p| p.card_no == key.split('|').next().unwrap_or("") || p.certno == key),
            _ => self.people.iter().find(|p| p.certno == key || p.psn_no == key),
        }
        .ok_or_else(|| "未查询到该人员的参保信息".to_string())?;
        if !certno.is_empty() && certno != p.certno {
            return Err("证件号码与就诊凭证不符".into());
        }
        if !name.is_empty() && name != p.psn_name {
            return Err("姓名与证件号码不符".into());
        }
        let today = crate::checks::now_local().format("%Y-%m-%d").to_string();
        Ok(json!({
            "baseinfo": {"psn_no": p.psn_no, "psn_cert_type": "01", "certno": p.certno, "psn_name": p.psn_name,
                         "gend": p.gend, "naty": p.naty, "brdy": p.brdy, "age": registry::age_on(p.brdy, &today)},
            "insuinfo": [{"balc": yuan(p.balc_fen), "insutype": p.insutype, "psn_type": p.psn_type, "psn_insu_stas": "1",
                          "psn_insu_date": "2010-01-01", "paus_insu_date": null, "cvlserv_flag": "0",
                          "insuplc_admdvs": p.insuplc_admdvs, "emp_name": p.emp_name}],
            "idetinfo": []
        }))
    }

    fn register(&mut self, input: &Value, msgid: &str) -> TxResult {
        let psn_no = text(input, "/data/psn_no");
        self.person(&psn_no)?;
        let ipt_otp_no = text(input, "/data/ipt_otp_no");
        if ipt_otp_no.is_empty() {
            return Err("门诊/住院号[ipt_otp_no]不能为空".into());
        }
        if self.visits.iter().any(|v| v.ipt_otp_no == ipt_otp_no && !v.cancelled) {
            return Err(format!("门诊号[{ipt_otp_no}]已登记, 请勿重复挂号"));
        }
        let mdtrt_id = self.new_id();
        self.visits.push(Visit {
            mdtrt_id: mdtrt_id.clone(),
            psn_no: psn_no.clone(),
            ipt_otp_no: ipt_otp_no.clone(),
            med_type: text(input, "/data/med_type"),
            cancelled: false,
            fees: Vec::new(),
            msgid: msgid.to_string(),
            kind: "outpatient",
            discharged: false,
        });
        self.processed.insert(msgid.to_string(), ("2201".into(), mdtrt_id.clone()));
        Ok(json!({"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "ipt_otp_no": ipt_otp_no, "exp_content": ""}}))
    }

    fn cancel_register(&mut self, input: &Value) -> TxResult {
        let (psn_no, mdtrt_id) = (text(input, "/data/psn_no"), text(input, "/data/mdtrt_id"));
        if self.settlements.iter().any(|s| s.mdtrt_id == mdtrt_id && s.status == "settled") {
            return Err("该就诊已结算, 不能撤销挂号".into());
        }
        self.visit_mut(&mdtrt_id, &psn_no)?.cancelled = true;
        Ok(json!({}))
    }

    fn visit_info(&mut self, input: &Value) -> TxResult {
        let (psn_no, mdtrt_id) = (text(input, "/mdtrtinfo/psn_no"), text(input, "/mdtrtinfo/mdtrt_id"));
        let med_type = text(input, "/mdtrtinfo/med_type");
        if med_type.is_empty() {
            return Err("医疗类别[med_type]不能为空".into());
        }
        self.visit_mut(&mdtrt_id, &psn_no)?.med_type = med_type;
        Ok(json!({}))
    }

    /// 2204 (outpatient) and 2301 (inpatient): fee details of a visit of `kind`.
    pub(crate) fn upload_fees(&mut self, input: &Value, kind: &str) -> TxResult {
        let items = input.get("feedetail").and_then(Value::as_array).ok_or("费用明细[feedetail]不能为空")?;
        if items.is_empty() {
            return Err("费用明细[feedetail]不能为空".into());
        }
        // Every line is checked before any is booked: a refused upload books nothing.
        let mut lines = Vec::new();
        for it in items {
            let (psn_no, mdtrt_id) = (text(it, "/psn_no"), text(it, "/mdtrt_id"));
            let (fee, cnt, pric) = fee_line(it)?;
            let v = self.visit_mut(&mdtrt_id, &psn_no)?;
            if v.kind != kind {
                return Err(format!("就诊ID[{mdtrt_id}]不是{kind}就诊"));
            }
            let sn = &fee.feedetl_sn;
            let twice =
                lines.iter().any(|(m, f, _, _): &(String, Fee, f64, i64)| *m == mdtrt_id && f.feedetl_sn == *sn);
            if twice || v.fees.iter().any(|f| f.feedetl_sn == *sn) {
                return Err(format!("明细流水号[{sn}]重复上传"));
            }
            lines.push((mdtrt_id, fee, cnt, pric));
        }
        let mut out = Vec::new();
        for (mdtrt_id, fee, cnt, pric) in lines {
            let (sn, amount, selfpay) = (fee.feedetl_sn.clone(), fee.amount_fen, fee.selfpay_fen);
            if let Some(v) = self.visits.iter_mut().find(|v| v.mdtrt_id == mdtrt_id) {
                v.fees.push(fee);
            }
            let lv = if selfpay > 0 { "03" } else { "01" };
            out.push(json!({"feedetl_sn": sn, "det_item_fee_sumamt": yuan(amount), "cnt": cnt, "pric": yuan(pric),
                "pric_uplmt_amt": yuan(pric), "selfpay_prop": if selfpay > 0 { 1 } else { 0 },
                "fulamt_ownpay_amt": yuan(selfpay), "overlmt_amt": 0, "preselfpay_amt": 0,
                "inscp_scp_amt": yuan(amount - selfpay), "chrg_item_lv": lv, "med_chrgitm_type": "09",
                "bas_medn_flag": "0", "hi_nego_drug_flag": "0", "chld_medc_flag": "0", "list_sp_item_flag": "0",
                "lmt_used_flag": "0", "drt_reim_flag": "0", "memo": ""}));
        }
        Ok(json!({"result": out}))
    }

    fn cancel_fees(&mut self, input: &Value) -> TxResult {
        let (psn_no, mdtrt_id, bch) =
            (text(input, "/data/psn_no"), text(input, "/data/mdtrt_id"), text(input, "/data/chrg_bchno"));
        if self.settlements.iter().any(|s| s.mdtrt_id == mdtrt_id && s.status == "settled") {
            return Err("该就诊已结算, 不能撤销费用明细".into());
        }
        let v = self.visit_mut(&mdtrt_id, &psn_no)?;
        v.fees.retain(|f| bch != "0000" && f.chrg_bchno != bch);
        Ok(json!({}))
    }

    fn settle(&mut self, input: &Value, msgid: &str, for_real: bool) -> TxResult {
        self.settle_visit("2207", "outpatient", input, msgid, for_real)
    }

    /// A (pre-)settlement of a visit's uploaded fees: 2206/2207 outpatient,
    /// 2303/2304 inpatient. `infno` is the settling transaction.
    pub(crate) fn settle_visit(
        &mut self,
        infno: &str,
        kind: &str,
        input: &Value,
        msgid: &str,
        for_real: bool,
    ) -> TxResult {
        let psn_no = text(input, "/data/psn_no");
        let mdtrt_id = text(input, "/data/mdtrt_id");
        let medfee = fen(input.pointer("/data/medfee_sumamt")).ok_or("医疗费总额[medfee_sumamt]不正确")?;
        let (total, selfpay) = {
            let v = self.visit_mut(&mdtrt_id, &psn_no)?;
            if v.kind != kind {
                return Err(format!("就诊ID[{mdtrt_id}]不是{kind}就诊, 不能用[{infno}]结算"));
            }
            (v.fees.iter().map(|f| f.amount_fen).sum::<i64>(), v.fees.iter().map(|f| f.selfpay_fen).sum::<i64>())
        };
        if total == 0 {
            return Err("该就诊没有上传费用明细".into());
        }
        if (total - medfee).abs() > 1 {
            return Err(format!("医疗费总额[{}]与费用明细合计[{}]不符", medfee as f64 / 100.0, total as f64 / 100.0));
        }
        if for_real && self.settlements.iter().any(|s| s.mdtrt_id == mdtrt_id && s.status == "settled") {
            self.double_settle_attempts += 1;
            return Err(format!("就诊ID[{mdtrt_id}]已结算, 不能重复结算"));
        }
        self.settle_amounts(infno, &psn_no, &mdtrt_id, (total, selfpay), input, msgid, for_real)
    }

    /// Splits `total` (of which `selfpay` is wholly the patient's) between the
    /// fund, the account and cash; with `for_real`, books it as settlement `infno`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn settle_amounts(
        &mut self,
        infno: &str,
        psn_no: &str,
        mdtrt_id: &str,
        (total, selfpay): (i64, i64),
        input: &Value,
        msgid: &str,
        for_real: bool,
    ) -> TxResult {
        let (psn_no, mdtrt_id) = (psn_no.to_string(), mdtrt_id.to_string());
        let acct_used = text(input, "/data/acct_used_flag") == "1";
        let clr_type = match infno {
            "2304" => "21",
            "2102" => "41",
            _ => "11",
        };
        let p = self.person(&psn_no)?.clone();
        let inscp = total - selfpay;
        let fund = inscp * p.fund_ratio / 100;
        let part = total - fund;
        let acct = if acct_used { part.min(p.balc_fen) } else { 0 };
        let cash = part - acct;
        let balc_after = p.balc_fen - acct;
        let setl_id = if for_real { Some(self.new_id()) } else { None };
        let setl_time = crate::checks::now_local().format("%Y-%m-%d %H:%M:%S").to_string();
        if let Some(id) = &setl_id {
            self.person_mut(&psn_no)?.balc_fen = balc_after;
            self.settlements.push(Settlement {
                infno: infno.to_string(),
                insutype: p.insutype.to_string(),
                clr_type: clr_type.to_string(),
                clr_optins: p.insuplc_admdvs.to_string(),
                setl_id: id.clone(),
                mdtrt_id: mdtrt_id.clone(),
                psn_no: psn_no.clone(),
                msgid: msgid.to_string(),
                medfee_fen: total,
                fund_fen: fund,
                acct_fen: acct,
                cash_fen: cash,
                balc_after_fen: balc_after,
                status: "settled".into(),
                setl_time: setl_time.clone(),
            });
            self.processed.insert(msgid.to_string(), (infno.into(), id.clone()));
        }
        let today = crate::checks::now_local().format("%Y-%m-%d").to_string();
        Ok(json!({"setlinfo": {
            "setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no, "psn_name": p.psn_name, "psn_cert_type": "01",
            "certno": p.certno, "gend": p.gend, "naty": p.naty, "brdy": p.brdy, "age": registry::age_on(p.brdy, &today),
            "insutype": p.insutype, "psn_type": p.psn_type, "cvlserv_flag": "0", "setl_time": setl_time,
            "mdtrt_cert_type": text(input, "/data/mdtrt_cert_type"), "med_type": text(input, "/data/med_type"),
            "medfee_sumamt": yuan(total), "fulamt_ownpay_amt": yuan(selfpay), "overlmt_selfpay": 0, "preselfpay_amt": 0,
            "inscp_scp_amt": yuan(inscp), "act_pay_dedc": 0, "hifp_pay": yuan(fund), "pool_prop_selfpay": yuan(inscp - fund),
            "cvlserv_pay": 0, "hifes_pay": 0, "hifmi_pay": 0, "hifob_pay": 0, "maf_pay": 0, "oth_pay": 0,
            "fund_pay_sumamt": yuan(fund), "psn_part_amt": yuan(part), "acct_pay": yuan(acct), "psn_cash_pay": yuan(cash),
            "hosp_part_amt": 0, "balc": yuan(balc_after), "acct_mulaid_pay": 0, "medins_setl_id": msgid,
            "clr_optins": p.insuplc_admdvs, "clr_way": "1", "clr_type": clr_type
        }, "setldetail": [{"fund_pay_type": "310100", "inscp_scp_amt": yuan(inscp), "crt_payb_lmt_amt": 0,
                            "fund_payamt": yuan(fund), "fund_pay_type_name": "统筹基金支出", "setl_proc_info": ""}]}))
    }

    pub(crate) fn settlement(&self, setl_id: &str) -> Result<&Settlement, String> {
        self.settlements.iter().find(|s| s.setl_id == setl_id).ok_or_else(|| format!("结算ID[{setl_id}]不存在"))
    }

    /// Undoes a settlement (2208 or 2601), giving the account its money back.
    pub(crate) fn undo_settlement(&mut self, setl_id: &str, status: &str) -> Result<Settlement, String> {
        let s = self
            .settlements
            .iter_mut()
            .find(|s| s.setl_id == setl_id)
            .ok_or_else(|| format!("结算ID[{setl_id}]不存在"))?;
        if s.status != "settled" {
            return Err(format!("结算ID[{setl_id}]已撤销"));
        }
        s.status = status.to_string();
        let s = s.clone();
        self.person_mut(&s.psn_no)?.balc_fen += s.acct_fen;
        Ok(s)
    }

    /// 2208, 2305, 2103: cancels a settlement of 2207, 2304, 2102.
    pub(crate) fn cancel_settlement(&mut self, input: &Value, msgid: &str, infno: &str) -> TxResult {
        let setl_id = text(input, "/data/setl_id");
        let s = self.settlement(&setl_id)?;
        if s.psn_no != text(input, "/data/psn_no") || s.mdtrt_id != text(input, "/data/mdtrt_id") {
            return Err("结算ID与人员编号或就诊ID不符".into());
        }
        let settled_by = match infno {
            "2305" => "2304",
            "2103" => "2102",
            _ => "2207",
        };
        if s.infno != settled_by {
            return Err(format!("结算ID[{setl_id}]不是[{settled_by}]的结算, 不能用[{infno}]撤销"));
        }
        let s = self.undo_settlement(&setl_id, "cancelled")?;
        let new_id = self.new_id();
        self.processed.insert(msgid.to_string(), (infno.into(), setl_id.clone()));
        let balc = self.person(&s.psn_no)?.balc_fen;
        Ok(json!({"setlinfo": {"setl_id": new_id, "mdtrt_id": s.mdtrt_id, "psn_no": s.psn_no,
            "medfee_sumamt": yuan(-s.medfee_fen), "fund_pay_sumamt": yuan(-s.fund_fen), "acct_pay": yuan(-s.acct_fen),
            "psn_cash_pay": yuan(-s.cash_fen), "balc": yuan(balc)}}))
    }

    fn reverse(&mut self, input: &Value, msgid: &str) -> TxResult {
        let (omsgid, oinfno, psn_no) =
            (text(input, "/data/omsgid"), text(input, "/data/oinfno"), text(input, "/data/psn_no"));
        if omsgid.is_empty() || oinfno.is_empty() {
            return Err("冲正入参 omsgid、oinfno 不能为空".into());
        }
        let effect = match self.processed.get(&omsgid).cloned() {
            Some((infno, reference)) if infno == oinfno => self.reverse_effect(&infno, &reference)?,
            Some(_) => return Err("原交易编号[oinfno]与原报文不符".into()),
            // Never processed: nothing to undo, and the outcome the HIS wants holds.
            None => "not_found",
        };
        self.reversals
            .push(json!({"msgid": msgid, "omsgid": omsgid, "oinfno": oinfno, "psn_no": psn_no, "effect": effect}));
        Ok(json!({}))
    }

    /// What a 2601 of a processed `infno` undoes: a settlement (2207, 2304, 2102)
    /// is refunded, a cancellation (2208, 2305, 2103) restores its settlement, an
    /// admission (2401) without fees is withdrawn. Anything else is refused: the
    /// platform undoes it only by its counter-transaction.
    fn reverse_effect(&mut self, infno: &str, reference: &str) -> Result<&'static str, String> {
        let done = match infno {
            "2207" | "2304" | "2102" => self.undo_settlement(reference, "reversed").is_ok(),
            "2208" | "2305" | "2103" => self.redo_settlement(reference)?,
            "2401" => {
                let Some(v) = self.visits.iter().find(|v| v.mdtrt_id == reference) else {
                    return Err(format!("就诊ID[{reference}]不存在"));
                };
                if v.cancelled {
                    false
                } else if !v.fees.is_empty() || self.settlements.iter().any(|s| s.mdtrt_id == reference) {
                    return Err("该住院已有费用明细或结算, 不能冲正入院".into());
                } else {
                    self.visits.iter_mut().filter(|v| v.mdtrt_id == reference).for_each(|v| v.cancelled = true);
                    true
                }
            }
            _ => return Err(format!("交易[{infno}]不支持冲正, 请使用其撤销交易")),
        };
        Ok(if done { "reversed" } else { "already_reversed" })
    }

    /// A cancelled settlement made good again (its cancellation reversed); false
    /// when it is not cancelled (already made good). Refused when the visit was
    /// settled anew since, or the account no longer holds what it paid.
    fn redo_settlement(&mut self, setl_id: &str) -> Result<bool, String> {
        let s = self.settlement(setl_id)?.clone();
        if s.status != "cancelled" {
            return Ok(false);
        }
        if self.settlements.iter().any(|o| o.mdtrt_id == s.mdtrt_id && o.status == "settled") {
            return Err(format!("就诊ID[{}]已重新结算, 不能冲正其撤销", s.mdtrt_id));
        }
        let person = self.person_mut(&s.psn_no)?;
        if person.balc_fen < s.acct_fen {
            return Err("个人账户余额不足, 不能冲正结算撤销".into());
        }
        person.balc_fen -= s.acct_fen;
        self.settlements.iter_mut().filter(|o| o.setl_id == setl_id).for_each(|o| o.status = "settled".into());
        Ok(true)
    }

    fn settlement_info(&mut self, input: &Value) -> TxResult {
        let setl_id = text(input, "/data/setl_id");
        let s = self.settlement(&setl_id)?;
        Ok(
            json!({"setlinfo": {"setl_id": s.setl_id, "mdtrt_id": s.mdtrt_id, "psn_no": s.psn_no, "setl_time": s.setl_time,
            "medfee_sumamt": yuan(s.medfee_fen), "fund_pay_sumamt": yuan(s.fund_fen), "acct_pay": yuan(s.acct_fen),
            "psn_cash_pay": yuan(s.cash_fen), "balc": yuan(s.balc_after_fen), "setl_stas": s.status}}),
        )
    }

    /// The books as JSON, for `GET /sim/ledger`.
    pub fn to_json(&self) -> Value {
        let mut counts = self.counts.iter().collect::<Vec<_>>();
        counts.sort();
        json!({
            "requests": self.requests,
            "rejected": self.rejected,
            "rejections": self.rejections,
            "by_infno": counts.into_iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
            "signins": self.signins,
            "visits": self.visits.iter().map(|v| json!({"mdtrt_id": v.mdtrt_id, "psn_no": v.psn_no, "ipt_otp_no": v.ipt_otp_no,
                "med_type": v.med_type, "cancelled": v.cancelled, "fees": v.fees.len(), "msgid": v.msgid, "kind": v.kind,
                "discharged": v.discharged})).collect::<Vec<_>>(),
            "settlements": self.settlements.iter().map(|s| json!({"infno": s.infno, "clr_type": s.clr_type, "setl_id": s.setl_id, "mdtrt_id": s.mdtrt_id, "psn_no": s.psn_no,
                "msgid": s.msgid, "medfee_sumamt": yuan(s.medfee_fen), "fund_pay_sumamt": yuan(s.fund_fen), "acct_pay": yuan(s.acct_fen),
                "psn_cash_pay": yuan(s.cash_fen), "status": s.status})).collect::<Vec<_>>(),
            "double_settle_attempts": self.double_settle_attempts,
            "processed_msgids": self.processed_msgids,
            "reversals": self.reversals,
            "balances": self.people.iter().map(|p| (p.psn_no.to_string(), yuan(p.balc_fen))).collect::<Map<_, _>>(),
        })
    }
}
