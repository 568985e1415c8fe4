//! The day's sign-in of each operator: one `sign_no` per operator per day, signed in
//! by the SDK itself before the first business call (`sign_in.auto`), kept in the
//! journal so a restart does not sign in again, and forgotten when the platform
//! refuses it or the operator signs out. The SDK never signs out on its own.

use super::{Core, Outcome};
use crate::error::{Code, Error, Result};
use crate::journal::{Final, RequestRow, Tx};
use crate::protocol::envelope::CallInput;
use crate::protocol::{signin, transactions};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// Today's sign_no per operator, in memory in front of the journal.
#[derive(Default)]
pub struct SignIns {
    /// opter -> (date, sign_no)
    by_opter: Mutex<HashMap<String, (String, String)>>,
    /// Serialises sign-ins so sixteen threads at 8 a.m. sign in once, not sixteen times.
    one_at_a_time: Mutex<()>,
}

impl SignIns {
    pub fn get(&self, opter: &str, date: &str) -> Option<String> {
        let m = self.by_opter.lock().unwrap_or_else(|p| p.into_inner());
        m.get(opter).filter(|(d, _)| d == date).map(|(_, s)| s.clone())
    }

    fn put(&self, opter: &str, date: &str, sign_no: &str) {
        let mut m = self.by_opter.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(opter.to_string(), (date.to_string(), sign_no.to_string()));
    }

    fn forget(&self, opter: &str) {
        self.by_opter.lock().unwrap_or_else(|p| p.into_inner()).remove(opter);
    }
}

impl Core {
    /// The sign_no a transaction needs: today's of the operator, or none.
    pub(super) fn sign_no_if_needed(&self, infno: &str, opter: &str) -> Result<String> {
        if transactions::needs_sign_no(infno) {
            self.sign_no_for(opter)
        } else {
            Ok(String::new())
        }
    }

    /// Today's sign_no for an operator: from memory, the journal, or a new 9001.
    pub(super) fn sign_no_for(&self, opter: &str) -> Result<String> {
        let date = self.clock.today();
        if let Some(s) = self.signins.get(opter, &date) {
            return Ok(s);
        }
        let _one_at_a_time = self.signins.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = self.signins.get(opter, &date) {
            return Ok(s);
        }
        let code = &self.cfg.institution.fixmedins_code;
        if let Some(s) = self.journal.signin_get(code, opter, &date)? {
            self.signins.put(opter, &date, &s);
            return Ok(s);
        }
        if !self.cfg.sign_in.auto {
            return Err(Error::invalid(format!(
                "operator {opter} has not signed in today (9001) and sign_in.auto is false"
            )));
        }
        let mut call = CallInput::of(signin::input(&self.cfg, opter));
        call.overrides.insert("opter".into(), Value::String(opter.into()));
        let row = self.journal_claimed(transactions::SIGN_IN, &call, None)?;
        log::info!("signing in operator {opter} for {date} (request {})", row.id);
        let out = self.execute(row);
        if out.code == Code::Ok {
            if let Some(s) = self.signins.get(opter, &date) {
                return Ok(s);
            }
            return Err(Error::new(
                Code::Protocol,
                format!(
                    "automatic sign-in (9001) failed, request not sent: the answer has no sign_no where sign_in.style \"{}\" reads it; check the region preset",
                    self.cfg.sign_in.style.as_str()
                ),
            ));
        }
        Err(signin_failed(&out, self.halt.is_set()))
    }

    /// Forgets an operator's sign-in of today, in the journal (inside `tx`) and in
    /// memory: the platform refused its sign_no.
    pub(super) fn forget_sign_in(&self, tx: &Tx<'_>, opter: &str) -> Result<()> {
        tx.signin_forget(&self.cfg.institution.fixmedins_code, opter, &self.clock.today())?;
        self.signins.forget(opter);
        Ok(())
    }

    /// What a finished 9001 or 9002 changes: the sign_no kept, or forgotten.
    pub(super) fn after_sign_in(&self, row: &RequestRow, opter: &str, fin: &Final) {
        if fin.code != Code::Ok || (row.infno != transactions::SIGN_IN && row.infno != transactions::SIGN_OUT) {
            return;
        }
        let code = &self.cfg.institution.fixmedins_code;
        let date = self.clock.today();
        if row.infno == transactions::SIGN_IN {
            let sign_no = serde_json::from_str::<Value>(&fin.result)
                .ok()
                .and_then(|v| signin::sign_no_of(self.cfg.sign_in.style, &v));
            if let Some(sign_no) = sign_no {
                if let Err(e) = self.journal.write(|tx| tx.signin_put(code, opter, &date, &sign_no, row.id)) {
                    log::error!("sign-in of {opter} not kept in the journal: {e}");
                }
                self.signins.put(opter, &date, &sign_no);
            }
        }
        if row.infno == transactions::SIGN_OUT {
            let _ = self.journal.write(|tx| tx.signin_forget(code, opter, &date));
            self.signins.forget(opter);
        }
    }
}

/// Why an automatic sign-in failed, as the error of the business request that
/// needed it. That request never left: a failed sign-in is never uncertain for it.
/// A sign-in that `mi_shutdown` broke off (`halted`) ends the call as shut down.
fn signin_failed(out: &Outcome, halted: bool) -> Error {
    let why = serde_json::from_str::<Value>(&out.output)
        .ok()
        .and_then(|v| v.get("err_msg").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let code = match out.code {
        _ if halted => Code::Shutdown,
        Code::Business | Code::Protocol | Code::Journal | Code::InvalidArgument | Code::Shutdown => out.code,
        Code::Ok => Code::Protocol,
        _ => Code::Network,
    };
    Error::new(code, format!("automatic sign-in (9001) failed, request not sent: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_per_day_and_operator() {
        let s = SignIns::default();
        s.put("0001", "2026-11-27", "A");
        assert_eq!(s.get("0001", "2026-11-27").as_deref(), Some("A"));
        assert_eq!(s.get("0001", "2026-11-28"), None);
        assert_eq!(s.get("0002", "2026-11-27"), None);
        s.forget("0001");
        assert_eq!(s.get("0001", "2026-11-27"), None);
    }

    #[test]
    fn a_failed_sign_in_is_never_uncertain_for_the_request_that_needed_it() {
        let out =
            |code: Code| Outcome { request_id: 1, code, output: super::super::sdk_output(code, "签名错误", "M") };
        for (sign_in, request) in [
            (Code::Business, Code::Business),
            (Code::Uncertain, Code::Network),
            (Code::Timeout, Code::Network),
            (Code::Journal, Code::Journal),
            (Code::Ok, Code::Protocol),
            (Code::Shutdown, Code::Shutdown),
        ] {
            let e = signin_failed(&out(sign_in), false);
            assert_eq!(e.code, request, "{sign_in:?}");
            assert!(e.message.contains("签名错误") && e.message.contains("not sent"), "{}", e.message);
        }
        // Broken off by mi_shutdown, however the send ended: the call was shut down.
        for sign_in in [Code::Uncertain, Code::Network, Code::Timeout] {
            assert_eq!(signin_failed(&out(sign_in), true).code, Code::Shutdown, "{sign_in:?}");
        }
    }
}
