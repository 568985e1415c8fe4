//! One call, start to finish: check it, journal it, sign in when needed, send it,
//! judge the answer, decide whether it may be sent again, record it.
//!
//! - this file: [`Core`], what every call shares, and what a call gives its caller;
//! - [`attempt`]: the attempt loop, for a sync call (to the end, sleeping through
//!   backoffs) and for a worker (one attempt at a time);
//! - [`classify`]: what one exchange means (pure);
//! - [`signin`]: the day's sign_no of each operator;
//! - [`reversal`]: 2601, by hand and by `uncertain_policy`;
//! - [`queue`]: async submissions and the workers' claims, through the journal's
//!   group-commit writer.

pub mod attempt;
pub mod classify;
pub mod queue;
pub mod reversal;
pub mod signin;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::journal::owners::OwnerLock;
use crate::journal::writer::Writer;
use crate::journal::{CallMode, Final, Journal, NewRequest, RequestRow, State};
use crate::protocol::envelope::{self, CallInput, SendTime};
use crate::stats::Stats;
use crate::transport::channel::Channels;
use serde_json::json;
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

/// What a call gives its caller: the code and the output text
/// (docs/api_reference.md, `mi_call_sync`).
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

/// The pending output of an unfinished request.
pub fn pending_output(msgid: &str, state: State) -> String {
    json!({"infcode": -1, "err_msg": "pending", "mi_code": Code::Pending.as_i32(), "msgid": msgid, "state": state.as_str()})
        .to_string()
}

/// The final state of a request that failed without an answer from the platform
/// (not sent, not resent, or refused on the way): `msg` is what its caller reads.
pub fn failed_final(code: Code, msg: String, msgid: &str) -> Final {
    Final { state: State::Failed, code, result: sdk_output(code, &msg, msgid), last_error: Some(msg) }
}

/// The final state of a request that may have been processed and was not resent.
pub fn uncertain_final(infno: &str, msgid: &str, why: &str) -> Final {
    let msg = format!(
        "no valid answer after sending {infno}: it may have been processed and was not resent; reverse it (2601) or query: {why}"
    );
    Final {
        state: State::Uncertain,
        code: Code::Uncertain,
        result: sdk_output(Code::Uncertain, &msg, msgid),
        last_error: Some(msg),
    }
}

/// Wakes idle workers: new work is queued.
#[derive(Default)]
pub struct Wake {
    seq: Mutex<u64>,
    cv: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *self.seq.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cv.notify_all();
    }

    /// Waits for a notification newer than `seen`, or the timeout; returns the latest.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let g = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        if *g != seen {
            return *g;
        }
        let (g, _) = self.cv.wait_timeout(g, timeout).unwrap_or_else(|p| p.into_inner());
        *g
    }

    pub fn current(&self) -> u64 {
        *self.seq.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Shutdown's "stop now", which a sleeping sync call hears.
#[derive(Default)]
pub struct Halt {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Halt {
    fn set(&self) {
        *self.set.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    pub fn is_set(&self) -> bool {
        *self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps for `d`, or until set.
    pub fn sleep(&self, d: Duration) {
        let g = self.set.lock().unwrap_or_else(|p| p.into_inner());
        drop(self.cv.wait_timeout_while(g, d, |set| !*set));
    }
}

/// Everything a call needs, shared by the sync path and the workers.
pub struct Core {
    pub cfg: Config,
    pub clock: Clock,
    pub journal: Journal,
    /// The gateway, mobile-payment and file channels, with their keys.
    channels: Channels,
    pub stats: Stats,
    /// This process's name in the journal's claims (`mi_owner`).
    pub owner: String,
    /// Wakes idle workers when new work is queued.
    pub wake: Wake,
    signins: signin::SignIns,
    /// Group commit for async submissions and the workers' claims and outcomes;
    /// set once the core is shared (`Sdk::start`). Without it (a tool that only
    /// reverses, say) everything is written directly.
    pub writer: OnceLock<Writer<Core>>,
    /// Set when the workers are told to stop: they claim nothing more, neither on
    /// their own nor along with an outcome, so what is queued stays queued.
    pub stopping: AtomicBool,
    /// Set when shutdown broke off the sends in flight: nothing more is sent, and
    /// sync calls sleeping through a backoff wake up.
    halt: Halt,
    /// Held while the core lives: tells other processes its owner is alive. The
    /// last field, so it is released after everything else is dropped.
    _alive: OwnerLock,
}

impl Core {
    /// A core over an open journal; its clock is the journal's. (The SDK takes its
    /// owner lock before it opens the journal: [`Core::holding`].)
    #[cfg(test)]
    pub fn new(cfg: Config, journal: Journal, owner: String) -> Result<Core> {
        let alive = OwnerLock::take(journal.path(), &owner)?;
        Core::holding(cfg, journal, owner, alive)
    }

    /// A core over an open journal whose owner lock `alive` was taken before the
    /// journal was opened (see `Sdk::start`).
    pub fn holding(cfg: Config, journal: Journal, owner: String, alive: OwnerLock) -> Result<Core> {
        let clock = journal.clock().clone();
        let channels = Channels::new(&cfg, clock.clone())?;
        Ok(Core {
            channels,
            cfg,
            clock,
            journal,
            stats: Stats::default(),
            owner,
            wake: Wake::default(),
            signins: Default::default(),
            writer: OnceLock::new(),
            stopping: Default::default(),
            halt: Halt::default(),
            _alive: alive,
        })
    }

    /// Breaks off the exchanges in flight (shutdown's deadline has passed): their
    /// senders record them as they would a connection that broke off.
    pub fn interrupt_sends(&self) {
        self.halt.set();
        self.channels.interrupt();
    }

    /// Checks `infno` and `input` and builds nothing yet: errors here mean nothing was
    /// journaled.
    pub fn parse(&self, infno: &str, input: &str) -> Result<CallInput> {
        if !crate::infno::is_valid(infno) {
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
        self.channels.check(infno)?;
        self.check_route(infno)?;
        let call = CallInput::parse(input)?;
        envelope::check(&self.cfg, &call)?;
        Ok(call)
    }

    /// Refuses, before anything is journaled, a transaction (or the sign-in it
    /// needs) that the gateway's per-transaction URL map cannot place.
    fn check_route(&self, infno: &str) -> Result<()> {
        use crate::protocol::transactions::{mobile_pay_path, needs_sign_no, SIGN_IN};
        if mobile_pay_path(infno).is_some() {
            return Ok(());
        }
        let sign_in = needs_sign_no(infno).then_some(SIGN_IN);
        for i in std::iter::once(infno).chain(sign_in) {
            self.cfg.gateway.url_for(i).map_err(Error::config)?;
        }
        Ok(())
    }

    /// The identity columns of a new request.
    pub fn new_request(infno: &str, call: &CallInput, mode: CallMode, priority: i32) -> NewRequest {
        NewRequest {
            infno: infno.to_string(),
            mode,
            priority,
            caller_msgid: call.msgid().map(str::to_owned),
            reversal_of: None,
            source: None,
        }
    }

    /// The envelope JSON of a call under a msgid, to be sent later (its send-time
    /// fields are set then).
    pub fn envelope_text(&self, infno: &str, msgid: &str, call: &CallInput) -> Result<String> {
        envelope::text(&self.cfg, infno, call, &SendTime { msgid, ..Default::default() })
    }

    /// The operator a journaled request is sent as: its envelope's, else the
    /// configured one.
    pub fn opter_of(&self, row: &RequestRow) -> String {
        envelope::opter_of(&row.envelope).unwrap_or_else(|| self.cfg.institution.opter.clone())
    }

    /// The row of a request, or `MI_E_NOT_FOUND`.
    pub fn request(&self, id: i64) -> Result<RequestRow> {
        self.journal.request(id)?.ok_or_else(|| Error::new(Code::NotFound, format!("no request with id {id}")))
    }

    /// Whether failures of a transaction may be resent (see [`crate::protocol::retry`]).
    pub fn resendable(&self, infno: &str) -> bool {
        crate::protocol::retry::resendable(infno, &self.cfg.retry)
    }

    /// The code and output a finished or pending request gives.
    pub fn result_of(&self, id: i64) -> Result<Outcome> {
        let row = self.request(id)?;
        match (row.mi_code, row.result) {
            (Some(code), Some(result)) => Ok(Outcome { request_id: id, code: Code::from_i32(code), output: result }),
            _ => Ok(Outcome { request_id: id, code: Code::Pending, output: pending_output(&row.msgid, row.state) }),
        }
    }
}
