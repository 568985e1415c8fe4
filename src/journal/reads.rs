//! What operators ask of the journal: counts by state, how healthy it is, requests
//! by filter or date, one request's attempts. Reads only, of any process's work;
//! index lookups wherever a status is asked often, so they stay as fast with a
//! million requests as with a thousand.

use super::sealing::{self, Place};
use super::{records, row, Attempt, Journal, RequestRow, State};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};
use std::path::Path;

/// The creation time of the oldest unfinished request (mi_request_unfinished).
pub(super) const OLDEST_UNFINISHED: &str =
    "SELECT created_at FROM mi_request WHERE state IN ('queued', 'sending', 'retry_wait') ORDER BY id LIMIT 1";

/// When, which transaction and why the latest request failed (mi_state_count).
pub(super) const LAST_FAILURE: &str = "SELECT s.last_at, coalesce(r.infno, ''), r.id, r.last_error
               FROM mi_state_count s LEFT JOIN mi_request r ON r.id = s.last_id
              WHERE s.state IN ('failed', 'business_error', 'uncertain') AND s.last_at IS NOT NULL
              ORDER BY s.last_at DESC LIMIT 1";

/// The journal's answer to "is it healthy?" (see [`Journal::health`]).
#[derive(Debug, Clone)]
pub struct Health {
    pub oldest_unfinished: Option<String>,
    pub last_success_at: Option<String>,
    pub last_error: Option<LastFailure>,
    /// The journal file and its WAL, in bytes.
    pub bytes: u64,
}

/// The latest request that ended failed, with a business error, or uncertain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFailure {
    pub at: String,
    pub infno: String,
    pub message: String,
}

/// An operator's filter over requests.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<State>,
    pub infno: Option<String>,
    /// `yyyy-MM-dd` of creation.
    pub date: Option<String>,
    pub msgid: Option<String>,
    pub limit: i64,
}

impl Filter {
    /// The filter an operator names (`state`, `infno`, `date` as yyyy-MM-dd,
    /// `msgid`, `limit`: 50 unless given, 1 to 1000), checked: `named` gives each
    /// by its name. The CLI's options and the HTTP API's query both come here.
    pub fn from_named(named: impl Fn(&str) -> Option<String>) -> Result<Filter> {
        let state = match named("state") {
            Some(s) => Some(State::parse(&s).ok_or_else(|| {
                let all: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
                Error::invalid(format!("state \"{s}\" is not one of {}", all.join(", ")))
            })?),
            None => None,
        };
        let date = named("date");
        if let Some(d) = &date {
            crate::clock::parse_day(d, "date")?;
        }
        let limit = match named("limit") {
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| Error::invalid(format!("limit \"{l}\" is not a number from 1 to 1000")))?,
            None => 50,
        };
        Ok(Filter { state, infno: named("infno"), date, msgid: named("msgid"), limit })
    }
}

impl Journal {
    /// Requests per state, of the states that have any. Kept by triggers
    /// (migration 0003): no scan of the requests.
    pub fn counts_by_state(&self) -> Result<Vec<(State, i64)>> {
        let c = self.lock();
        let mut st = c.prepare_cached("SELECT state, n FROM mi_state_count WHERE n > 0 ORDER BY state")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// What an operator asks first: the oldest unfinished request, the last success
    /// and failure, the size on disk.
    pub fn health(&self) -> Result<Health> {
        let c = self.lock();
        let oldest_unfinished: Option<String> = row(&c, OLDEST_UNFINISHED, [], |r| r.get(0)).optional()?;
        let last_success_at: Option<String> =
            row(&c, "SELECT last_at FROM mi_state_count WHERE state = 'succeeded'", [], |r| r.get(0))
                .optional()?
                .flatten();
        let last: Option<(String, String, Option<i64>, Option<String>)> =
            row(&c, LAST_FAILURE, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()?;
        let last_error = match last {
            Some((at, infno, Some(id), Some(kept))) => {
                // A damaged text says so here: the status never fails for it.
                let message = self.sealing.open(Place::LastError(id), kept).unwrap_or_else(|e| e.message);
                Some(LastFailure { at, infno, message })
            }
            Some((at, infno, ..)) => Some(LastFailure { at, infno, message: String::new() }),
            None => None,
        };
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        Ok(Health {
            oldest_unfinished,
            last_success_at,
            last_error,
            bytes: size(&self.path) + size(&super::wal_of(&self.path)),
        })
    }

    /// (p50, p99) in ms of the last 1,000 answered attempts of any process. It reads
    /// those attempt rows, so it is for operators' tools, not for `mi_get_status`
    /// (which has the process's own figures in memory).
    pub fn recent_latency(&self) -> Result<(Option<i64>, Option<i64>)> {
        let c = self.lock();
        let mut lat: Vec<i64> = c
            .prepare("SELECT latency_ms FROM mi_attempt WHERE latency_ms IS NOT NULL ORDER BY id DESC LIMIT 1000")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        lat.sort_unstable();
        Ok((crate::stats::nearest_rank(&lat, 0.5), crate::stats::nearest_rank(&lat, 0.99)))
    }

    /// The answered attempts of day `day`'s requests, by hour of the day they
    /// started: `(hour, count, p50, p99)` for each hour that has any. Read by the
    /// requests' creation index, so a day costs its own rows only.
    pub fn latency_by_hour(&self, day: &str) -> Result<Vec<(u32, usize, i64, i64)>> {
        let c = self.lock();
        let mut by_hour: std::collections::BTreeMap<u32, Vec<i64>> = Default::default();
        let mut st = c.prepare(
            "SELECT CAST(substr(a.started_at, 12, 2) AS INTEGER), a.latency_ms
               FROM mi_request r JOIN mi_attempt a ON a.request_id = r.id
              WHERE r.created_at >= ?1 AND r.created_at < date(?1, '+1 day') AND a.latency_ms IS NOT NULL",
        )?;
        let rows = st.query_map([day], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))?;
        for r in rows {
            let (hour, ms) = r?;
            by_hour.entry(hour).or_default().push(ms);
        }
        Ok(by_hour
            .into_iter()
            .map(|(hour, mut ms)| {
                ms.sort_unstable();
                let rank = |q| crate::stats::nearest_rank(&ms, q).unwrap_or(0);
                (hour, ms.len(), rank(0.5), rank(0.99))
            })
            .collect())
    }

    /// The request submitted from a source (a drop-box file), if any.
    pub fn by_source(&self, source: &str) -> Result<Option<i64>> {
        let c = self.lock();
        Ok(row(&c, "SELECT id FROM mi_request WHERE source = ?1", [source], |r| r.get(0)).optional()?)
    }

    /// Requests matching an operator's filter, newest first.
    pub fn find(&self, f: &Filter) -> Result<Vec<RequestRow>> {
        let c = self.lock();
        let mut st = c.prepare(
            "SELECT id FROM mi_request
              WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR infno = ?2)
                AND (?3 IS NULL OR (created_at >= ?3 AND created_at < date(?3, '+1 day'))) AND (?4 IS NULL OR msgid = ?4)
              ORDER BY id DESC LIMIT ?5",
        )?;
        let ids: Vec<i64> = st
            .query_map(params![f.state, f.infno, f.date, f.msgid, f.limit], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        ids.into_iter().filter_map(|id| records::listed_row(&c, &self.sealing, id).transpose()).collect()
    }

    /// Requests created on the days `from` to `to` (`yyyy-MM-dd`, inclusive), oldest first.
    pub fn between(&self, from: &str, to: &str) -> Result<Vec<RequestRow>> {
        let c = self.lock();
        let ids: Vec<i64> = c
            .prepare(
                "SELECT id FROM mi_request WHERE created_at >= ?1 AND created_at < date(?2, '+1 day') ORDER BY id",
            )?
            .query_map(params![from, to], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        ids.into_iter().filter_map(|id| records::listed_row(&c, &self.sealing, id).transpose()).collect()
    }

    /// The attempts of a request, oldest first.
    pub fn attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        let c = self.lock();
        let mut st = c.prepare(
            "SELECT attempt_no, msgid, started_at, outcome, http_status, infcode, err_msg, response, latency_ms
               FROM mi_attempt WHERE request_id = ?1 ORDER BY attempt_no",
        )?;
        let rows = st
            .query_map([id], |r| {
                Ok(Attempt {
                    no: r.get(0)?,
                    msgid: r.get(1)?,
                    started_at: r.get(2)?,
                    outcome: r.get(3)?,
                    http_status: r.get(4)?,
                    infcode: r.get(5)?,
                    err_msg: r.get(6)?,
                    response: r.get(7)?,
                    latency_ms: r.get(8)?,
                })
            })?
            .collect::<std::result::Result<Vec<Attempt>, _>>()?;
        let mut result: Option<Option<String>> = None;
        rows.into_iter()
            .map(|mut a| {
                a.err_msg = self.sealing.open_opt(Place::ErrMsg(id, a.no), a.err_msg.take())?;
                a.response = match self.sealing.open_opt(Place::Response(id, a.no), a.response.take())? {
                    Some(same) if same == sealing::SAME_AS_RESULT => {
                        if result.is_none() {
                            let kept: Option<String> =
                                row(&c, "SELECT result FROM mi_request WHERE id = ?1", [id], |r| r.get(0))?;
                            result = Some(self.sealing.open_opt(Place::Result(id), kept)?);
                        }
                        result.clone().flatten()
                    }
                    other => other,
                };
                Ok(a)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::{CLAIM, ORPHANS, WAITING};
    use super::super::tests::open;
    use super::*;

    /// The statements a status, a claim and a retention pass run never scan the
    /// requests table: they stay as fast with a million rows as with a thousand.
    #[test]
    fn lookups_use_indexes_not_scans() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path());
        let c = j.lock();
        for sql in &[
            CLAIM,
            &format!("{ORPHANS} AND r.owner IS NOT NULL AND r.owner != ?1"),
            OLDEST_UNFINISHED,
            LAST_FAILURE,
            WAITING,
            "DELETE FROM mi_request WHERE state IN ('succeeded', 'business_error', 'failed', 'reversed') AND created_at < ?1",
            "SELECT id, msgid, result FROM mi_request WHERE id = ?1",
        ] {
            let n = sql.matches('?').count();
            let args: Vec<i64> = vec![0; n.min(3)];
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            for line in &plan {
                assert!(
                    !(line.contains("mi_request") && line.starts_with("SCAN") && !line.contains("USING")),
                    "{sql}\nscans the table: {plan:?}"
                );
            }
        }
    }
}
