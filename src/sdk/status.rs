//! The status document: what `mi_get_status` returns and `mi-sdk status` prints.
//! One struct for both. What the journal knows (counts, the queue, the oldest
//! unfinished request, the last failure, the sign-in) is read the same way for
//! both; a running SDK adds what only it knows (its workers, its own latencies,
//! whether it is shutting down). No secret is in it.

use crate::charset::Charset;
use crate::clock::{Clock, STAMP_FORMAT};
use crate::config::{Config, Profile, UncertainPolicy};
use crate::error::Result;
use crate::journal::{Journal, LastFailure, NodeSource, State};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub abi_version: i32,
    pub fixmedins_code: String,
    /// The msgid node in use, and where it came from (`config` or `journal`).
    pub node_id: u32,
    pub node_id_source: NodeSource,
    pub charset: Charset,
    pub gateway: GatewayStatus,
    /// The journal file.
    pub journal: String,
    /// The journal file and its WAL, in bytes.
    pub journal_bytes: u64,
    pub oldest_unfinished_at: Option<String>,
    pub oldest_unfinished_age_s: Option<i64>,
    pub last_error_at: Option<String>,
    /// Workers of the running SDK (absent when read from the journal alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers_busy: Option<usize>,
    /// Requests waiting to be sent (queued or waiting to retry), as the journal
    /// counts them.
    pub queue_depth: i64,
    pub queue_capacity: u64,
    pub counts: Counts,
    pub last_success_at: Option<String>,
    /// The last failure's message: the running SDK's own, or the journal's.
    pub last_error: Option<String>,
    /// The latest request that ended failed, with a business error or uncertain,
    /// by any process.
    pub last_failure: Option<FailureStatus>,
    pub sign_in: SignInStatus,
    pub latency_ms: Latency,
    pub uncertain_policy: UncertainPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutting_down: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayStatus {
    /// The gateway URL without credentials or query.
    pub url: String,
    pub profile: Profile,
    /// The region preset in force (`region`), or "" for none.
    pub region: String,
    pub url_style: crate::variant::UrlStyle,
    pub sign_in_style: crate::variant::SignInStyle,
}

/// Requests per state; serialised as an object with every state, in order.
#[derive(Debug, Clone, Default)]
pub struct Counts([i64; State::ALL.len()]);

impl Counts {
    /// The requests in a state (the enum's order is `State::ALL`'s).
    pub fn of(&self, s: State) -> i64 {
        self.0[s as usize]
    }

    fn set(&mut self, s: State, n: i64) {
        self.0[s as usize] = n;
    }
}

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(State::ALL.len()))?;
        for st in State::ALL {
            m.serialize_entry(st.as_str(), &self.of(st))?;
        }
        m.end()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureStatus {
    pub at: String,
    pub infno: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignInStatus {
    pub opter: String,
    pub opter_name: String,
    pub sign_date: String,
    pub signed_in: bool,
}

/// Latency of answered exchanges, nearest-rank.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    /// How many exchanges the figures are of (the running SDK's window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
}

impl Status {
    /// The status as the journal and the config tell it, without a running SDK:
    /// the last success and failure are any process's, and there is no latency
    /// (see [`Status::with_journal_latency`]).
    pub fn read(cfg: &Config, journal: &Journal) -> Result<Status> {
        let clock = journal.clock();
        let mut counts = Counts::default();
        for (s, n) in journal.counts_by_state()? {
            counts.set(s, n);
        }
        let i = &cfg.institution;
        let date = clock.today();
        let signed_in = journal.signin_get(&i.fixmedins_code, &i.opter, &date)?.is_some();
        let mut health = journal.health()?;
        // The platform's words reach operators' screens and monitoring: masked and
        // on one line, as in the log.
        if let Some(e) = health.last_error.as_mut() {
            e.message = crate::logging::safe_line(&e.message, cfg.log.mask_pii);
        }
        Ok(Status {
            version: super::VERSION,
            abi_version: super::ABI_VERSION,
            fixmedins_code: i.fixmedins_code.clone(),
            node_id: journal.node().id,
            node_id_source: journal.node().source,
            charset: cfg.charset,
            gateway: GatewayStatus {
                url: strip_userinfo(&cfg.gateway.url),
                profile: cfg.gateway.profile,
                region: cfg.region.clone(),
                url_style: cfg.gateway.style(),
                sign_in_style: cfg.sign_in.style,
            },
            journal: cfg.journal_path().display().to_string(),
            journal_bytes: health.bytes,
            oldest_unfinished_age_s: health.oldest_unfinished.as_deref().and_then(|t| age_seconds(clock, t)),
            oldest_unfinished_at: health.oldest_unfinished,
            last_error_at: health.last_error.as_ref().map(|e| e.at.clone()),
            workers: None,
            workers_busy: None,
            queue_depth: counts.of(State::Queued) + counts.of(State::RetryWait),
            queue_capacity: cfg.queue_capacity,
            counts,
            last_success_at: health.last_success_at,
            last_error: health.last_error.as_ref().map(|e| format!("{}: {}", e.infno, e.message)),
            last_failure: health.last_error.map(|LastFailure { at, infno, message }| FailureStatus {
                at,
                infno,
                message,
            }),
            sign_in: SignInStatus {
                opter: i.opter.clone(),
                opter_name: i.opter_name.clone(),
                sign_date: date,
                signed_in,
            },
            latency_ms: Latency::default(),
            uncertain_policy: cfg.retry.uncertain_policy,
            shutting_down: None,
        })
    }

    /// Adds the latency of the last 1,000 answered attempts of any process, read
    /// from the journal (for operators' tools: it reads those rows).
    pub fn with_journal_latency(mut self, journal: &Journal) -> Result<Status> {
        let (p50, p99) = journal.recent_latency()?;
        self.latency_ms = Latency { p50: p50.map(|v| v as u64), p99: p99.map(|v| v as u64), samples: None };
        Ok(self)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the status always serialises")
    }
}

/// Seconds from a journal timestamp (local time) to now.
pub fn age_seconds(clock: &Clock, ts: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(ts, STAMP_FORMAT).ok()?;
    Some((clock.local() - t).num_seconds().max(0))
}

/// `http://user:pw@host/x` -> `http://host/x`: a URL may carry credentials.
pub fn strip_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
            let path = path.split('?').next().unwrap_or("");
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_query_are_stripped() {
        assert_eq!(strip_userinfo("https://u:p@gw:8443/fsi/api?token=x"), "https://gw:8443/fsi/api");
        assert_eq!(strip_userinfo("http://gw/x"), "http://gw/x");
    }

    #[test]
    fn ages_are_measured_on_the_clock() {
        let clock = Clock::manual(1_764_460_800_000);
        let then = clock.stamp();
        clock.advance(std::time::Duration::from_secs(75));
        assert_eq!(age_seconds(&clock, &then), Some(75));
        assert_eq!(age_seconds(&clock, "yesterday"), None);
    }

    #[test]
    fn counts_serialise_every_state_in_order() {
        let mut c = Counts::default();
        c.set(State::Uncertain, 2);
        assert!(State::ALL.iter().enumerate().all(|(i, s)| *s as usize == i), "Counts indexes by the order of ALL");
        let v = serde_json::to_value(&c).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, State::ALL.map(State::as_str));
        assert_eq!((v["uncertain"].as_i64(), c.of(State::Uncertain)), (Some(2), 2));
    }
}
