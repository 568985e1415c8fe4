//! Reconciliation with the platform's books.
//!
//! - 3201 (对总账): the institution's totals of a period, per insurance type and
//!   clearing type (`data{insutype, clr_type, setl_optins, stmt_begndate,
//!   stmt_enddate, medfee_sumamt, fund_pay_sumamt, acct_pay,
//!   fixmedins_setl_cnt}`), against the platform's settlements of that period:
//!   `stmtinfo{stmt_rslt: "0" agree | "1" differ, …}` with the platform's totals.
//! - 3202 (对明细账): the institution uploads its settlements as a zipped,
//!   tab-separated file through 9101 (`setl_id, mdtrt_id, psn_no, medfee_sumamt,
//!   fund_pay_sumamt, acct_pay, refd_setl_flag` per line), sends its
//!   `file_qury_no` with the totals, and is answered `fileinfo{file_qury_no,
//!   filename}`: a file of the differing rows (`psn_no, mdtrt_id, setl_id, msgid,
//!   stmt_rslt, refd_setl_flag, memo, medfee_sumamt, fund_pay_sumamt, acct_pay`,
//!   the order a public HIS reads it in; `stmt_rslt` 1 only at the institution, 2
//!   only at the platform, 3 the amounts differ; `msgid` is the platform's record
//!   of the message that settled) that 9102 fetches under the institution's own
//!   code.
//! - Controls (`POST /sim/faults`) make the classic mismatches: the platform
//!   reverses a settlement on its own (`platform_reverse`), or books one on
//!   another day (`settlement_day`).

use crate::ledger::{fen, text, yuan, Ledger, Settlement, TxResult};
use serde_json::{json, Map, Value};

impl Ledger {
    /// The platform's settlements that 3201/3202 compare with.
    fn period(&self, d: &Value) -> Result<Vec<&Settlement>, String> {
        let (begn, end) = (text(d, "/stmt_begndate"), text(d, "/stmt_enddate"));
        let (clr_type, optins) = (text(d, "/clr_type"), text(d, "/setl_optins"));
        if begn.is_empty() || end.is_empty() || clr_type.is_empty() {
            return Err("对账开始日期、结束日期、清算类别不能为空".into());
        }
        let insutype = text(d, "/insutype");
        Ok(self
            .settlements
            .iter()
            .filter(|s| s.status == "settled" && s.clr_type == clr_type)
            .filter(|s| insutype.is_empty() || s.insutype == insutype)
            .filter(|s| optins.is_empty() || s.clr_optins == optins)
            .filter(|s| s.setl_time[..10] >= *begn && s.setl_time[..10] <= *end)
            .collect())
    }

    pub(crate) fn reconcile_totals(&mut self, input: &Value) -> TxResult {
        let d = input.get("data").ok_or("入参 data 不能为空")?;
        let mine = self.period(d)?;
        let sum = |f: fn(&Settlement) -> i64| mine.iter().map(|s| f(s)).sum::<i64>();
        let (medfee, fund, acct) = (sum(|s| s.medfee_fen), sum(|s| s.fund_fen), sum(|s| s.acct_fen));
        let theirs = (
            fen(d.get("medfee_sumamt")).ok_or("medfee_sumamt 不正确")?,
            fen(d.get("fund_pay_sumamt")).ok_or("fund_pay_sumamt 不正确")?,
            fen(d.get("acct_pay")).ok_or("acct_pay 不正确")?,
            text(d, "/fixmedins_setl_cnt").parse::<usize>().map_err(|_| "fixmedins_setl_cnt 不正确".to_string())?,
        );
        let agree = theirs == (medfee, fund, acct, mine.len());
        Ok(json!({"stmtinfo": {"setl_optins": text(d, "/setl_optins"), "stmt_rslt": if agree { "0" } else { "1" },
            "stmt_rslt_dscr": if agree { "对账一致" } else { "对账不一致" },
            "medfee_sumamt": yuan(medfee), "fund_pay_sumamt": yuan(fund), "acct_pay": yuan(acct),
            "fixmedins_setl_cnt": mine.len()}}))
    }

    pub(crate) fn reconcile_details(&mut self, input: &Value, env: &Map<String, Value>) -> TxResult {
        let d = input.get("data").ok_or("入参 data 不能为空")?;
        let no = text(d, "/file_qury_no");
        let text_of = self.files.stored_text(&no).ok_or(format!("文件查询号[{no}]不存在"))?;
        let mine: Vec<Settlement> = self.period(d)?.into_iter().cloned().collect();
        let mut rows = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let row = |s: &Settlement, rslt: &str, memo: &str| {
            format!(
                "{}\t{}\t{}\t{}\t{rslt}\t0\t{memo}\t{}\t{}\t{}",
                s.psn_no,
                s.mdtrt_id,
                s.setl_id,
                s.msgid,
                yuan(s.medfee_fen),
                yuan(s.fund_fen),
                yuan(s.acct_fen)
            )
        };
        for (i, line) in text_of.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 6 {
                return Err(format!("对账明细文件第{}行格式不正确", i + 1));
            }
            let (setl_id, medfee, fund) = (f[0], fen(Some(&json!(f[3]))), fen(Some(&json!(f[4]))));
            seen.insert(setl_id.to_string());
            match mine.iter().find(|s| s.setl_id == setl_id) {
                None => rows.push(format!(
                    "{}\t{}\t{setl_id}\t\t1\t0\t医药机构有, 中心无\t{}\t{}\t{}",
                    f[2], f[1], f[3], f[4], f[5]
                )),
                Some(s) if Some(s.medfee_fen) != medfee || Some(s.fund_fen) != fund => {
                    rows.push(row(s, "3", "金额不一致"))
                }
                Some(_) => {}
            }
        }
        for s in mine.iter().filter(|s| !seen.contains(&s.setl_id)) {
            rows.push(row(s, "2", "中心有, 医药机构无"));
        }
        let code = env.get("fixmedins_code").and_then(Value::as_str).unwrap_or_default();
        let now = crate::checks::now_local().format("%Y%m%d%H%M%S").to_string();
        let name = format!("{code}_3202_{now}.txt");
        let mut body = rows.join("\n");
        body.push('\n');
        let (no, filename) = self.files.store(&name, body.into_bytes(), &now);
        Ok(json!({"fileinfo": {"file_qury_no": no, "filename": filename, "dld_endtime": "2099-12-31 23:59:59"}}))
    }
}

impl Ledger {
    /// `platform_reverse`: the platform reverses a settlement on its own (a centre's
    /// correction the institution was not told of).
    pub fn reverse_on_platform(&mut self, setl_id: &str) -> Result<(), String> {
        self.undo_settlement(setl_id, "reversed").map(|_| ())
    }

    /// `settlement_day`: the platform books a settlement on `day` (`yyyy-MM-dd`),
    /// as a settlement sent just before midnight and booked after it.
    pub fn move_settlement(&mut self, setl_id: &str, day: &str) -> Result<(), String> {
        if chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_err() {
            return Err(format!("settlement_day: [{day}] is not yyyy-MM-dd"));
        }
        let s = self.settlements.iter_mut().find(|s| s.setl_id == setl_id).ok_or(format!("结算ID[{setl_id}]不存在"))?;
        s.setl_time = format!("{day}{}", &s.setl_time[10..]);
        Ok(())
    }
}
