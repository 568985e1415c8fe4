//! What operators and services do with the SDK and its journal: the status, the
//! requests and their attempts, a day's report and CSV export, the installation
//! check, catalogue downloads, the drop-box service and its Windows service. The
//! `mi-sdk` binary only parses its arguments and calls these; each returns the text
//! to print.

pub mod catalog;
pub mod check;
pub mod dropbox;
pub mod http;
mod monitor;
pub mod reconcile;
pub mod report;
pub mod requests;
pub mod service;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::journal::{Journal, Options};
use crate::sdk::{Sdk, Status};
use std::time::Duration;

/// The journal, read as it is: an operator's command never creates one.
pub fn journal(cfg: &Config) -> Result<Journal> {
    let path = cfg.journal_path();
    if !path.is_file() {
        return Err(Error::new(
            Code::NotFound,
            format!("no journal at {}: has the HIS run mi_init with this config?", path.display()),
        ));
    }
    Journal::open(&path, Options::of(cfg, Clock::system()))
}

/// `mi-sdk status`: the same document as `mi_get_status`, read from the journal,
/// with the latency of the last 1,000 answered attempts of any process; as JSON,
/// or as lines for a person with what to do about anything uncertain.
pub fn status(cfg: &Config, as_json: bool) -> Result<String> {
    let j = journal(cfg)?;
    let st = Status::read(cfg, &j)?.with_journal_latency(&j)?;
    if as_json {
        return Ok(st.to_json());
    }
    use crate::journal::State::*;
    let n = |s| st.counts.of(s);
    let mut out = vec![
        format!("mi_sdk {}  institution {}", st.version, st.fixmedins_code),
        format!("gateway      {} ({})", st.gateway.url, st.gateway.profile.as_str()),
        format!("journal      {} ({} KiB)", st.journal, st.journal_bytes / 1024),
        format!(
            "sign-in      operator {} on {}: {}",
            st.sign_in.opter,
            st.sign_in.sign_date,
            if st.sign_in.signed_in { "signed in" } else { "not signed in" }
        ),
        format!(
            "requests     {} succeeded, {} business errors, {} failed, {} reversed",
            n(Succeeded),
            n(BusinessError),
            n(Failed),
            n(Reversed)
        ),
        format!("waiting      {} queued, {} sending, {} waiting to retry", n(Queued), n(Sending), n(RetryWait)),
    ];
    if let Some(at) = &st.oldest_unfinished_at {
        out.push(format!("oldest       unfinished since {at}"));
    }
    out.push(format!("last success {}", st.last_success_at.as_deref().unwrap_or("never")));
    if let Some(f) = &st.last_failure {
        out.push(format!("last error   {} {}: {}", f.at, f.infno, f.message));
    }
    if let (Some(p50), Some(p99)) = (st.latency_ms.p50, st.latency_ms.p99) {
        out.push(format!("latency      p50 {p50} ms, p99 {p99} ms"));
    }
    if n(Uncertain) > 0 {
        out.push(format!(
            "ACTION       {} uncertain request(s): `mi-sdk requests --state uncertain`, then reverse or query",
            n(Uncertain)
        ));
    }
    Ok(out.join("\n"))
}

/// What a command printed, and why it failed if it did (the text is printed
/// either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    pub text: String,
    pub failure: Option<String>,
}

/// `mi-sdk journal rekey`: the journal's key rotated (see `Journal::rekey`).
pub fn rekey(cfg: &Config) -> Result<String> {
    let n = journal(cfg)?.rekey()?;
    Ok(format!(
        "the journal's key is new: {n} requests sealed again with it, key file {}. Back the new key file up, \
         apart from the journal's backups; the old key no longer opens the journal",
        cfg.journal_key_path().display()
    ))
}

/// `mi-sdk reverse ID`: sends 2601 for an uncertain or succeeded settlement; the
/// platform's answer, and a failure unless the reversal succeeded.
pub fn reverse(cfg: Config, id: i64) -> Result<Printed> {
    journal(&cfg)?;
    let sdk = Sdk::start(cfg)?;
    let r = sdk.reverse(id);
    sdk.shutdown(Duration::from_secs(10));
    let out = r?;
    Ok(if out.code == Code::Ok {
        Printed { text: format!("{}\nrequest {id} reversed by request {}", out.output, out.request_id), failure: None }
    } else {
        Printed { text: out.output, failure: Some(format!("the reversal ended with {}", out.code.name())) }
    })
}
