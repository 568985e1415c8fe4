//! What one exchange means: how its attempt ended (what the journal records and
//! the retry rule decides on), and the final state and output should the request
//! not be sent again. Pure: no journal, no clock, no network.

use super::{failed_final, uncertain_final};
use crate::error::Code;
use crate::journal::{Attempt, Final, State};
use crate::protocol::response::{self, Answer};
use crate::protocol::retry::AttemptOutcome;
use crate::protocol::transactions;
use crate::transport::{Exchange, Failure};

/// An exchange, judged.
#[derive(Debug, Clone)]
pub struct Judged {
    /// How the attempt ended, ready for the journal.
    pub attempt: Attempt,
    /// The request's final state if it is not sent again.
    pub fin: Final,
}

impl Judged {
    pub fn outcome(&self) -> AttemptOutcome {
        self.attempt.outcome.expect("a judged attempt has an outcome")
    }

    /// Whether an HTTP answer came (for the latency figures).
    pub fn answered(&self) -> bool {
        self.attempt.http_status.is_some()
    }
}

/// Judges attempt `no` of `infno` under `msgid`; `resendable` says whether the
/// request may be sent again after it may have been processed.
pub fn classify(infno: &str, msgid: &str, no: i64, sent: Exchange, latency_ms: u64, resendable: bool) -> Judged {
    let a = Attempt { no, msgid: msgid.to_string(), latency_ms: Some(latency_ms as i64), ..Default::default() };
    let failed = |code: Code, msg: String| failed_final(code, msg, msgid);
    // Each way of ending completes the attempt once: it moves in, the answer is not copied.
    let end = move |outcome, status: Option<u16>, body: Option<String>, err: Option<String>, fin: Final| {
        let attempt = Attempt { outcome: Some(outcome), http_status: status, response: body, err_msg: err, ..a };
        Judged { attempt, fin }
    };
    match sent {
        Exchange::Refused { status, body, why } => {
            // Sending again would bring the same answer back.
            let fin = failed(Code::Protocol, format!("the answer was refused: {why}"));
            end(AttemptOutcome::Refused, Some(status), Some(body), Some(why), fin)
        }
        Exchange::Unverified { status, body, why } => {
            let msg = format!("the platform's answer failed verification, so it cannot be trusted: {why}");
            let fin = if resendable {
                failed(Code::Protocol, msg)
            } else {
                // The platform answered, so it may have processed it: not resent, and
                // the code is the state's (MI_E_UNCERTAIN), so that a HIS that acts on
                // the code reverses or queries it rather than treating it as refused.
                uncertain_final(infno, msgid, &msg)
            };
            end(AttemptOutcome::Unverified, Some(status), Some(body), Some(why), fin)
        }
        Exchange::Answer(reply) => {
            let status = reply.status;
            let snippet: String = reply.body.chars().take(200).collect();
            if (400..500).contains(&status) {
                let fin = failed(Code::Protocol, format!("gateway refused the request with HTTP {status}: {snippet}"));
                return end(AttemptOutcome::GatewayRefused, Some(status), Some(reply.body), None, fin);
            }
            let parsed = if (200..300).contains(&status) {
                response::read(&reply.body)
            } else {
                Err(format!("gateway answered HTTP {status}: {snippet}"))
            };
            match parsed {
                Ok(Answer::GatewayRefused { code, message }) => {
                    // Nothing reached the platform: a clean failure, for every class.
                    let fin = failed(
                        Code::Network,
                        format!(
                            "the gateway refused the request before the platform (code {code}: {message}); nothing \
                             was processed: check gateway.paas_id / paas_token and this computer's clock, then call \
                             again"
                        ),
                    );
                    end(AttemptOutcome::GatewayRefused, Some(status), Some(reply.body), Some(message), fin)
                }
                Ok(Answer::Platform { verdict, unwrapped, .. }) => {
                    let ok = verdict.infcode == 0;
                    let fin = Final {
                        state: if ok { State::Succeeded } else { State::BusinessError },
                        code: if ok { Code::Ok } else { Code::Business },
                        // The HIS gets the platform's own envelope, unwrapped.
                        result: unwrapped.unwrap_or_else(|| reply.body.clone()),
                        last_error: (!ok).then(|| verdict.err_msg.clone()),
                    };
                    let outcome = if ok { AttemptOutcome::Ok } else { AttemptOutcome::BusinessError };
                    let err = Some(verdict.err_msg).filter(|s| !s.is_empty());
                    let j = end(outcome, Some(status), Some(reply.body), err, fin);
                    Judged { attempt: Attempt { infcode: Some(verdict.infcode), ..j.attempt }, fin: j.fin }
                }
                Err(why) => {
                    let fin = if resendable {
                        failed(Code::Protocol, format!("gateway answered, but not as the platform: {why}"))
                    } else {
                        uncertain_final(infno, msgid, &why)
                    };
                    end(AttemptOutcome::GatewayFault, Some(status), Some(reply.body), Some(why), fin)
                }
            }
        }
        Exchange::Failed(Failure::NeverSent(why)) => {
            let fin = failed(Code::Network, format!("gateway not reached, request not sent: {why}"));
            end(AttemptOutcome::NeverSent, None, None, Some(why), fin)
        }
        Exchange::Failed(Failure::MaybeProcessed(why)) => {
            let fin = if resendable {
                failed(Code::Timeout, format!("no answer from the gateway: {why}"))
            } else {
                uncertain_final(infno, msgid, &why)
            };
            end(AttemptOutcome::MaybeProcessed, None, None, Some(why), fin)
        }
    }
}

/// Whether the platform refused a request for its sign_no: proof that it was not
/// processed, so it may be resent once after a new sign-in. Not for sign-in and
/// sign-out themselves, whose inputs carry their own sign-in data.
pub fn is_sign_no_refusal(infno: &str, fin: &Final) -> bool {
    fin.code == Code::Business
        && infno != transactions::SIGN_OUT
        && transactions::needs_sign_no(infno)
        && fin.last_error.as_deref().is_some_and(|m| m.contains("sign_no") || m.contains("签到"))
}

/// Whether the platform refused an attempt because its msgid was already used
/// ("报文ID[…]重复"). What that proves depends on the msgid: to its first send, that
/// another workstation sent the same msgid (two on one node in the same second) and
/// this request was not processed, so it may be resent under a fresh msgid; to a
/// msgid the platform may have had from this request already, that the earlier send
/// was processed (a state-changing request is then uncertain); to a caller's msgid,
/// what the platform said. The attempt loop asks the journal which.
pub fn is_duplicate_msgid(fin: &Final) -> bool {
    let Some(m) = fin.last_error.as_deref().filter(|_| fin.code == Code::Business) else { return false };
    let lower = m.to_ascii_lowercase();
    (m.contains("报文ID") || lower.contains("msgid")) && (m.contains("重复") || lower.contains("duplicate"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Reply;

    fn answer(status: u16, body: &str) -> Exchange {
        Exchange::Answer(Reply { status, body: body.into() })
    }

    /// Every way an exchange can end, for a query (resendable) and a settlement:
    /// the attempt's outcome, the code and state the caller gets if it is not
    /// resent, and whether an answer came.
    #[test]
    fn every_exchange_judged() {
        use AttemptOutcome as O;
        let unverified = || Exchange::Unverified { status: 200, body: "x".into(), why: "bad signature".into() };
        let refused = || Exchange::Refused { status: 200, body: "{}".into(), why: "zip escapes".into() };
        let never = || Exchange::Failed(Failure::NeverSent("refused".into()));
        let maybe = || Exchange::Failed(Failure::MaybeProcessed("timed out".into()));
        #[rustfmt::skip]
        let table: Vec<(&str, Exchange, bool, O, Code, State, bool)> = vec![
            ("ok",            answer(200, r#"{"infcode":0}"#),            true,  O::Ok,             Code::Ok,        State::Succeeded,     true),
            ("ok, string",    answer(200, r#"{"infcode":"0"}"#),          false, O::Ok,             Code::Ok,        State::Succeeded,     true),
            ("business",      answer(200, r#"{"infcode":-1,"err_msg":"x"}"#), false, O::BusinessError, Code::Business, State::BusinessError, true),
            ("4xx",           answer(403, "forbidden"),                   false, O::GatewayRefused, Code::Protocol,  State::Failed,        true),
            ("5xx query",     answer(502, "<html>"),                      true,  O::GatewayFault,   Code::Protocol,  State::Failed,        true),
            ("5xx settle",    answer(502, "<html>"),                      false, O::GatewayFault,   Code::Uncertain, State::Uncertain,     true),
            ("not JSON",      answer(200, "<html>"),                      false, O::GatewayFault,   Code::Uncertain, State::Uncertain,     true),
            ("no infcode",    answer(200, r#"{"code":0}"#),               true,  O::GatewayFault,   Code::Protocol,  State::Failed,        true),
            ("unverified q",  unverified(),                               true,  O::Unverified,     Code::Protocol,  State::Failed,        true),
            ("unverified s",  unverified(),                               false, O::Unverified,     Code::Uncertain, State::Uncertain,     true),
            ("refused",       refused(),                                  false, O::Refused,        Code::Protocol,  State::Failed,        true),
            ("never sent",    never(),                                    false, O::NeverSent,      Code::Network,   State::Failed,        false),
            ("maybe query",   maybe(),                                    true,  O::MaybeProcessed, Code::Timeout,   State::Failed,        false),
            ("maybe settle",  maybe(),                                    false, O::MaybeProcessed, Code::Uncertain, State::Uncertain,     false),
        ];
        for (name, ex, resendable, outcome, code, state, answered) in table {
            let infno = if resendable { "1101" } else { "2207" };
            let j = classify(infno, "M", 2, ex, 7, resendable);
            assert_eq!(
                (j.outcome(), j.fin.code, j.fin.state, j.answered()),
                (outcome, code, state, answered),
                "{name}"
            );
            assert_eq!((j.attempt.no, j.attempt.latency_ms, j.attempt.msgid.as_str()), (2, Some(7), "M"), "{name}");
            let out: serde_json::Value = serde_json::from_str(&j.fin.result).unwrap_or_default();
            if code != Code::Ok && code != Code::Business {
                assert_eq!(
                    (out["mi_code"].as_i64(), out["msgid"].as_str()),
                    (Some(code.as_i32() as i64), Some("M")),
                    "{name}"
                );
                assert!(j.fin.last_error.is_some(), "{name}");
            }
        }
    }

    #[test]
    fn the_platform_answer_is_kept_as_it_came() {
        let body = r#"{"infcode":-1,"err_msg":"未查询到人员","output":null}"#;
        let j = classify("1101", "M", 1, answer(200, body), 3, true);
        assert_eq!(j.fin.result, body);
        assert_eq!(j.fin.last_error.as_deref(), Some("未查询到人员"));
        assert_eq!((j.attempt.infcode, j.attempt.err_msg.as_deref()), (Some(-1), Some("未查询到人员")));
        assert_eq!(j.attempt.response.as_deref(), Some(body));
    }

    #[test]
    fn a_sign_no_refusal_is_recognised_for_business_calls_only() {
        let refusal = |msg: &str| Final {
            state: State::BusinessError,
            code: Code::Business,
            result: String::new(),
            last_error: Some(msg.into()),
        };
        assert!(is_sign_no_refusal("2207", &refusal("sign_no 无效")));
        assert!(is_sign_no_refusal("1101", &refusal("操作员未签到")));
        assert!(!is_sign_no_refusal("9001", &refusal("未签到")));
        assert!(!is_sign_no_refusal("9002", &refusal("未签到")));
        assert!(!is_sign_no_refusal("2207", &refusal("余额不足")));
        let mut other = refusal("sign_no");
        other.code = Code::Protocol;
        assert!(!is_sign_no_refusal("2207", &other));
    }

    #[test]
    fn a_duplicate_msgid_answer_is_recognised_and_nothing_else() {
        let j = |body: &str| classify("2207", "M", 1, answer(200, body), 1, false).fin;
        assert!(is_duplicate_msgid(&j(r#"{"infcode":-1,"err_msg":"报文ID[H44030000001202611271015300700]重复"}"#)));
        assert!(is_duplicate_msgid(&j(r#"{"infcode":-1,"err_msg":"duplicate msgid"}"#)));
        for other in ["就诊ID[1]已结算, 不能重复结算", "明细流水号[1]重复上传", "报文ID[msgid]格式不正确", "余额不足"]
        {
            assert!(!is_duplicate_msgid(&j(&format!(r#"{{"infcode":-1,"err_msg":"{other}"}}"#))), "{other}");
        }
        assert!(!is_duplicate_msgid(&j(r#"{"infcode":0,"err_msg":"报文ID重复"}"#)), "a success is a success");
        // Taken alone, the answer is a final business error, as any refusal (the
        // attempt loop decides more, knowing the msgid's sends).
        let fin = j(r#"{"infcode":-1,"err_msg":"报文ID[M]重复"}"#);
        assert_eq!((fin.state, fin.code), (State::BusinessError, Code::Business));
    }
}
