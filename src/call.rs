//! One call, start to finish: validate, journal, sign in when needed, send, classify
//! the outcome, record it. The sync path and the async workers share this code.

use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::journal::{self, state, AttemptRecord, Final, Journal, NewRequest};
use crate::logging;
use crate::protocol::envelope::{self, CallInput};
use crate::protocol::{signin, transactions};
use crate::stats::Stats;
use crate::transport::{Failure, Transport};
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Instant;

/// What a call gives its caller: the code and the output text (ABI.md §3).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub request_id: i64,
    pub code: Code,
    pub output: String,
}

/// The output the SDK writes when the platform did not answer.
pub fn sdk_output(code: Code, err_msg: &str, msgid: &str) -> String {
    json!({"infcode": -1, "err_msg": err_msg, "mi_code": code.as_i32(), "msgid": msgid}).to_string()
}

/// Whether a refusal is about the sign_no (not for sign-in and sign-out themselves,
/// whose inputs carry their own sign-in data).
fn is_sign_no_refusal(infno: &str, err_msg: Option<&str>) -> bool {
    infno != transactions::SIGN_OUT
        && transactions::needs_sign_no(infno)
        && err_msg.is_some_and(|m| m.contains("sign_no") || m.contains("签到"))
}

/// Everything a call needs, shared by the sync path and the workers.
pub struct Core {
    pub cfg: Config,
    pub journal: Journal,
    pub transport: Transport,
    pub stats: Stats,
    signins: signin::SignIns,
    /// Serialises sign-ins so sixteen threads at 8 a.m. sign in once, not sixteen times.
    signin_lock: Mutex<()>,
}

impl Core {
    pub fn new(cfg: Config, journal: Journal) -> Core {
        let transport = Transport::new(&cfg.gateway);
        Core {
            cfg,
            journal,
            transport,
            stats: Stats::default(),
            signins: Default::default(),
            signin_lock: Mutex::new(()),
        }
    }

    /// Checks `infno` and `input` and builds nothing yet: errors here mean nothing was
    /// journaled.
    pub fn parse(&self, infno: &str, input: &str) -> Result<CallInput> {
        if !transactions::is_valid_infno(infno) {
            return Err(Error::invalid(format!(
                "infno \"{}\" is not a transaction code (4 digits and an optional capital letter, e.g. 1101 or 2203A)",
                infno.chars().take(16).collect::<String>()
            )));
        }
        if input.len() as u64 > self.cfg.max_input_bytes {
            return Err(Error::invalid(format!(
                "input is {} bytes, more than max_input_bytes ({})",
                input.len(),
                self.cfg.max_input_bytes
            )));
        }
        CallInput::parse(input)
    }

    /// Commits a new request; from here on it is never lost.
    pub fn journal_new(
        &self,
        infno: &str,
        call: &CallInput,
        mode: &str,
        priority: i32,
    ) -> Result<(i64, String)> {
        let req = NewRequest {
            infno,
            mode,
            priority,
            caller_msgid: call.msgid(),
            fixmedins_code: &self.cfg.institution.fixmedins_code,
            node_id: self.cfg.node_id,
        };
        let (id, msgid, _) = self.journal.insert_request(&req, state::QUEUED, |msgid| {
            let env = envelope::build(&self.cfg, infno, msgid, call)?;
            Ok(serde_json::to_string(&env).expect("a JSON map always serialises"))
        })?;
        Ok((id, msgid))
    }

    /// Sends a journaled request once and records how it ended.
    pub fn execute(&self, id: i64) -> Outcome {
        match self.try_execute(id) {
            Ok(o) => o,
            Err(e) => {
                log::error!("request {id}: {e}");
                self.stats.failure(e.message.clone());
                Outcome {
                    request_id: id,
                    code: e.code,
                    output: sdk_output(e.code, &e.message, ""),
                }
            }
        }
    }

    fn try_execute(&self, id: i64) -> Result<Outcome> {
        let row = self
            .journal
            .request(id)?
            .ok_or_else(|| Error::new(Code::NotFound, format!("no request {id}")))?;
        let opter =
            envelope::opter_of(&row.envelope).unwrap_or_else(|| self.cfg.institution.opter.clone());
        let sign_no = if transactions::needs_sign_no(&row.infno) {
            match self.sign_no_for(&opter) {
                Ok(s) => s,
                Err(e) => return self.finish_unsent(&row, e),
            }
        } else {
            String::new()
        };
        let mut msgid = row.msgid.clone();
        let mut sign_no = sign_no;
        let mut resent = false;
        loop {
            let fin = self.attempt(&row, &msgid, &sign_no)?;
            // The platform refusing the sign_no (it restarted, or another terminal
            // signed the operator in again) proves the request was not processed:
            // sign in anew and resend once, under a fresh msgid.
            if !resent
                && fin.code == Code::Business
                && is_sign_no_refusal(&row.infno, fin.last_error.as_deref())
            {
                resent = true;
                log::warn!("request {id}: the platform refused sign_no of {opter}; signing in again and resending");
                let date = signin::today();
                self.journal
                    .signin_forget(&self.cfg.institution.fixmedins_code, &opter, &date)?;
                self.signins.forget(&opter);
                sign_no = match self.sign_no_for(&opter) {
                    Ok(s) => s,
                    Err(e) => return self.finish_unsent(&row, e),
                };
                msgid = self.journal.reassign_msgid(
                    id,
                    &self.cfg.institution.fixmedins_code,
                    self.cfg.node_id,
                )?;
                continue;
            }
            self.after(&row.infno, &opter, id, &fin);
            return Ok(Outcome {
                request_id: id,
                code: fin.code,
                output: fin.result,
            });
        }
    }

    /// One send of a journaled request, recorded as an attempt with its outcome.
    fn attempt(&self, row: &journal::RequestRow, msgid: &str, sign_no: &str) -> Result<Final> {
        let id = row.id;
        let inf_time = envelope::format_inf_time(crate::protocol::now_local());
        let env = envelope::refresh(&row.envelope, msgid, &inf_time, sign_no)?;
        let attempt_no = self.journal.begin_attempt(id, msgid, &env)?;
        log::info!(
            "send {} request={} msgid={} attempt={}",
            row.infno,
            id,
            msgid,
            attempt_no
        );
        if log::log_enabled!(log::Level::Debug) {
            log::debug!(
                "request {id} envelope: {}",
                logging::for_log(&env, self.cfg.log.mask_pii)
            );
        }
        let t0 = Instant::now();
        let sent = self.transport.post(&row.infno, &env);
        let latency_ms = t0.elapsed().as_millis() as u64;
        let (attempt, fin) = self.classify(&row.infno, msgid, sent, latency_ms);
        self.journal
            .finish(id, Some((attempt_no, &attempt)), &fin)?;
        Ok(fin)
    }

    /// Ends a request that was never sent (its sign-in failed).
    fn finish_unsent(&self, row: &journal::RequestRow, e: Error) -> Result<Outcome> {
        let result = sdk_output(e.code, &e.message, &row.msgid);
        let fin = Final {
            state: state::FAILED,
            code: e.code,
            result: result.clone(),
            last_error: Some(e.message.clone()),
        };
        self.journal.finish(row.id, None, &fin)?;
        log::warn!("request {} ({}) not sent: {}", row.id, row.infno, e.message);
        self.stats.failure(e.message);
        Ok(Outcome {
            request_id: row.id,
            code: e.code,
            output: result,
        })
    }

    /// Turns what the transport returned into the attempt record and final state.
    fn classify(
        &self,
        infno: &str,
        msgid: &str,
        sent: std::result::Result<crate::transport::Reply, Failure>,
        latency_ms: u64,
    ) -> (AttemptRecord, Final) {
        let mut a = AttemptRecord {
            latency_ms: latency_ms as i64,
            ..Default::default()
        };
        let fail = |a: AttemptRecord, st: &'static str, code: Code, msg: String| {
            let result = sdk_output(code, &msg, msgid);
            (
                a,
                Final {
                    state: st,
                    code,
                    result,
                    last_error: Some(msg),
                },
            )
        };
        match sent {
            Ok(reply) => {
                self.stats.answered(latency_ms);
                a.http_status = Some(reply.status);
                a.response = Some(reply.body.clone());
                if !(200..300).contains(&reply.status) {
                    a.outcome = "protocol";
                    let snippet: String = reply.body.chars().take(200).collect();
                    return fail(
                        a,
                        state::FAILED,
                        Code::Protocol,
                        format!("gateway answered HTTP {}: {snippet}", reply.status),
                    );
                }
                match crate::protocol::response::parse(&reply.body) {
                    Ok((_, verdict)) => {
                        a.infcode = Some(verdict.infcode);
                        a.err_msg = Some(verdict.err_msg.clone()).filter(|s| !s.is_empty());
                        let (st, code, outcome) = if verdict.infcode == 0 {
                            (state::SUCCEEDED, Code::Ok, "ok")
                        } else {
                            (state::BUSINESS_ERROR, Code::Business, "business_error")
                        };
                        a.outcome = outcome;
                        let last_error = (code != Code::Ok).then(|| verdict.err_msg.clone());
                        (
                            a,
                            Final {
                                state: st,
                                code,
                                result: reply.body,
                                last_error,
                            },
                        )
                    }
                    Err(why) => {
                        a.outcome = "protocol";
                        fail(
                            a,
                            state::FAILED,
                            Code::Protocol,
                            format!("gateway answered, but not as the platform: {why}"),
                        )
                    }
                }
            }
            Err(Failure::NeverSent(why)) => {
                a.outcome = "never_sent";
                a.err_msg = Some(why.clone());
                fail(
                    a,
                    state::FAILED,
                    Code::Network,
                    format!("gateway not reached, request not sent: {why}"),
                )
            }
            Err(Failure::MaybeProcessed(why)) => {
                a.outcome = "maybe_processed";
                a.err_msg = Some(why.clone());
                if transactions::matches_any(infno, &self.cfg.retry.safe_infnos) {
                    fail(
                        a,
                        state::FAILED,
                        Code::Timeout,
                        format!("no answer from the gateway: {why}"),
                    )
                } else {
                    fail(a, state::UNCERTAIN, Code::Uncertain, format!(
                        "no answer from the gateway after sending {infno}: it may have been processed and was not resent; reverse it (2601) or query: {why}"
                    ))
                }
            }
        }
    }

    /// Logging, statistics and the session state a finished call changes.
    fn after(&self, infno: &str, opter: &str, id: i64, fin: &Final) {
        match fin.code {
            Code::Ok => {
                log::info!("done {infno} request={id} -> MI_OK");
                self.stats.success(journal::now_text());
            }
            code => {
                let msg = fin.last_error.clone().unwrap_or_default();
                log::warn!("done {infno} request={id} -> {} {}", code.name(), msg);
                self.stats.failure(format!("{infno}: {msg}"));
            }
        }
        if log::log_enabled!(log::Level::Debug) {
            log::debug!(
                "request {id} result: {}",
                logging::for_log(&fin.result, self.cfg.log.mask_pii)
            );
        }
        let code = &self.cfg.institution.fixmedins_code;
        let date = signin::today();
        if fin.code == Code::Ok && infno == transactions::SIGN_IN {
            if let Ok(v) = serde_json::from_str::<Value>(&fin.result) {
                if let Some(sign_no) = signin::sign_no_of(&v) {
                    if let Err(e) = self.journal.signin_put(code, opter, &date, &sign_no, id) {
                        log::error!("sign-in of {opter} not kept in the journal: {e}");
                    }
                    self.signins.put(opter, &date, &sign_no);
                }
            }
        }
        if fin.code == Code::Ok && infno == transactions::SIGN_OUT {
            let _ = self.journal.signin_forget(code, opter, &date);
            self.signins.forget(opter);
        }
    }

    /// Today's sign_no for an operator: from memory, the journal, or a new 9001.
    fn sign_no_for(&self, opter: &str) -> Result<String> {
        let date = signin::today();
        if let Some(s) = self.signins.get(opter, &date) {
            return Ok(s);
        }
        let _one_at_a_time = self.signin_lock.lock().unwrap_or_else(|p| p.into_inner());
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
        let mut call = CallInput {
            business: signin::input(&self.cfg.institution, opter),
            overrides: Default::default(),
        };
        call.overrides
            .insert("opter".into(), Value::String(opter.into()));
        let (id, _) = self.journal_new(transactions::SIGN_IN, &call, "sync", 0)?;
        log::info!("signing in operator {opter} for {date} (request {id})");
        let out = self.execute(id);
        if out.code == Code::Ok {
            if let Some(s) = self.signins.get(opter, &date) {
                return Ok(s);
            }
        }
        let why = serde_json::from_str::<Value>(&out.output)
            .ok()
            .and_then(|v| v.get("err_msg").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        // The business request itself never left: a failed sign-in is never uncertain for it.
        let code = match out.code {
            Code::Business | Code::Protocol | Code::Journal | Code::InvalidArgument => out.code,
            Code::Ok => Code::Protocol,
            _ => Code::Network,
        };
        Err(Error::new(
            code,
            format!("automatic sign-in (9001) failed, request not sent: {why}"),
        ))
    }

    /// The code and output a finished or pending request gives.
    pub fn result_of(&self, id: i64) -> Result<Outcome> {
        let row = self
            .journal
            .request(id)?
            .ok_or_else(|| Error::new(Code::NotFound, format!("no request with id {id}")))?;
        match (row.mi_code, row.result) {
            (Some(code), Some(result)) => Ok(Outcome { request_id: id, code: Code::from_i32(code), output: result }),
            _ => Ok(Outcome {
                request_id: id,
                code: Code::Pending,
                output: json!({"infcode": -1, "err_msg": "pending", "mi_code": Code::Pending.as_i32(), "msgid": row.msgid, "state": row.state}).to_string(),
            }),
        }
    }

    /// The journal record of a request as JSON (ABI.md `mi_get_request`).
    pub fn record_of(&self, id: i64) -> Result<String> {
        let r = self
            .journal
            .request(id)?
            .ok_or_else(|| Error::new(Code::NotFound, format!("no request with id {id}")))?;
        Ok(json!({
            "request_id": r.id,
            "msgid": r.msgid,
            "infno": r.infno,
            "state": r.state,
            "priority": r.priority,
            "attempts": r.attempts,
            "mode": r.mode,
            "mi_code": r.mi_code,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "last_error": r.last_error,
            "reversal_of": r.reversal_of,
            "reversed_by": r.reversed_by,
        })
        .to_string())
    }
}
