//! The journal as the queue: claiming the next request, who owns what (heartbeats,
//! taking over from a process that died), how a request moves on after an attempt
//! (to its final state, or back to wait for a retry), and retention.
//!
//! A claim is one atomic `UPDATE ... RETURNING`, so several processes sharing one
//! journal never claim the same request, and whatever a crash leaves behind is
//! found again by the same rules.

use super::sealing::{self, Place};
use super::{exec, records, row, Attempt, Final, Journal, RequestRow, State, Tx};
use crate::error::{Code, Error, Result};
use crate::protocol::retry::AttemptOutcome;
use rusqlite::{params, OptionalExtension};

/// Claims the next request: two index probes, each a LIMIT 1: the head of the
/// queue (mi_request_ready) and the most urgent retry that is due (mi_request_due).
/// Finished rows and retries not yet due are never visited, however many there are.
/// Only async requests: a sync one is driven by its caller alone, never by a worker.
pub(super) const CLAIM: &str = "UPDATE mi_request SET state = 'sending', owner = ?1, updated_at = ?3
             WHERE id = (SELECT id FROM (
                           SELECT id, priority FROM (SELECT id, priority FROM mi_request
                                                      WHERE state = 'queued' AND owner IS NULL AND mode = 'async'
                                                      ORDER BY priority DESC, id LIMIT 1)
                           UNION ALL
                           SELECT id, priority FROM (SELECT id, priority FROM mi_request
                                                      WHERE state = 'retry_wait' AND next_at <= ?2 AND owner IS NULL
                                                            AND mode = 'async'
                                                      ORDER BY priority DESC, id LIMIT 1))
                         ORDER BY priority DESC, id LIMIT 1)
             RETURNING id";

/// Claimed requests with whether an attempt is in flight, for recovery (through
/// the partial index on owner: claimed rows only, however many are waiting).
pub(super) const ORPHANS: &str = "SELECT r.id, r.owner,
        EXISTS (SELECT 1 FROM mi_attempt a WHERE a.request_id = r.id AND a.finished_at IS NULL)
   FROM mi_request r
  WHERE r.state IN ('sending', 'retry_wait') AND r.owner IS NOT NULL";

/// The other processes holding claims, with their heartbeats (NULL: never
/// registered).
const CLAIMANTS: &str = "SELECT c.owner, o.beat, o.heartbeat_at
   FROM (SELECT DISTINCT owner FROM mi_request WHERE owner IS NOT NULL AND owner != ?1) c
   LEFT JOIN mi_owner o ON o.owner = c.owner";

/// A process's heartbeat as another sees it: its counter and the wall time it
/// wrote. Only whether it changes is ever looked at (an older library writes the
/// time alone), never how the time compares with another clock.
pub type Beat = Option<(i64, i64)>;

/// Requests waiting to be sent: queued, or waiting to retry (kept by triggers).
pub(super) const WAITING: &str = "SELECT sum(n) FROM mi_state_count WHERE state IN ('queued', 'retry_wait')";

/// What follows an attempt (or a request ended without one).
#[derive(Debug, Clone)]
pub enum Next {
    /// The request is finished.
    Final(Final),
    /// It waits in `retry_wait` until `at_ms` (Unix time). With `keep_owner` the
    /// claimer (a sync call sleeping through its backoff) keeps it; otherwise any
    /// worker may take it when due.
    Retry { at_ms: i64, last_error: String, keep_owner: Option<String> },
}

/// Whose claimed requests to take over.
#[derive(Debug, Clone, Copy)]
pub enum Whose<'a> {
    /// All those of a process judged gone (see the maintenance thread).
    Dead { owner: &'a str },
    /// One request this owner claimed but can no longer drive.
    Mine { id: i64, owner: &'a str },
}

/// What recovery does with a request whose sender stopped mid-send.
#[derive(Debug, Clone)]
pub enum Recovery {
    /// Send it (again): it was not sent, or it is safe to resend.
    Requeue,
    /// End it: uncertain (it may have been processed and must not be resent), or
    /// failed (nobody waits for it any more and it never left).
    End(Final),
}

/// Requests waiting to be sent (queued or waiting to retry), by any process.
fn waiting(c: &rusqlite::Connection) -> Result<u64> {
    Ok(row(c, WAITING, [], |r| r.get::<_, Option<i64>>(0))?.unwrap_or(0).max(0) as u64)
}

impl Journal {
    /// Requests waiting to be sent (queued or waiting to retry), by any process.
    pub fn waiting(&self) -> Result<u64> {
        waiting(&self.lock())
    }

    /// The processes other than `me` that hold claimed requests, each with its
    /// heartbeat (`None`: it never registered one).
    pub fn claimants(&self, me: &str) -> Result<Vec<(String, Beat)>> {
        let c = self.lock();
        let mut st = c.prepare_cached(CLAIMANTS)?;
        let rows = st.query_map([me], |r| {
            let beat = match (r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?) {
                (Some(n), Some(at)) => Some((n, at)),
                _ => None,
            };
            Ok((r.get(0)?, beat))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

impl Tx<'_> {
    /// Claims the next request to send (highest priority, then oldest; `retry_wait`
    /// ones once due at `now_ms`) for `owner`. Returns the row as it now is.
    /// A request whose sealed values do not open is ended on the way (see
    /// [`Tx::unreadable`]) and the next one claimed: one damaged row never stops
    /// the queue.
    pub fn claim(&self, owner: &str, now_ms: i64) -> Result<Option<RequestRow>> {
        for _ in 0..8 {
            let Some(id) = row(self, CLAIM, params![owner, now_ms, self.now()], |r| r.get::<_, i64>(0)).optional()?
            else {
                return Ok(None);
            };
            match records::existing_row(self, id) {
                Ok(r) => return Ok(Some(r)),
                Err(e) if e.code == Code::Journal => {
                    log::error!("request {id} cannot be sent: {e}");
                    self.end(id, Some(owner), &self.unreadable(id, &e)?, &self.now())?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// How a request ends whose sealed values do not open (changed or moved in the
    /// file outside mi_sdk): it cannot be sent or judged. Uncertain if a send of it
    /// may have reached the platform, else failed with `MI_E_JOURNAL`; `e` says why.
    fn unreadable(&self, id: i64, e: &Error) -> Result<Final> {
        let attempts: i64 = row(self, "SELECT attempts FROM mi_request WHERE id = ?1", [id], |r| r.get(0))?;
        let (state, code) =
            if attempts > 0 { (State::Uncertain, Code::Uncertain) } else { (State::Failed, Code::Journal) };
        let result = serde_json::json!({"infcode": -1, "err_msg": e.message, "mi_code": code.as_i32()}).to_string();
        Ok(Final { state, code, result, last_error: Some(e.message.clone()) })
    }

    /// Requests waiting to be sent, as this transaction sees them.
    pub fn waiting(&self) -> Result<u64> {
        waiting(self)
    }

    /// Moves a request on: ends its attempt (if one was begun) with how it ended,
    /// and gives the request its final state or sends it back to wait for a retry.
    /// Only `owner`, who claimed it, may: for anyone else (it was taken over) this
    /// changes nothing and fails with [`Error::lost_claim`].
    pub fn advance(&self, id: i64, owner: &str, attempt: Option<&Attempt>, next: &Next) -> Result<()> {
        let now = self.now();
        let s = &self.journal.sealing;
        match next {
            Next::Final(fin) => {
                if !self.end(id, Some(owner), fin, &now)? {
                    return Err(Error::lost_claim(id));
                }
            }
            Next::Retry { at_ms, last_error, keep_owner } => {
                let n = exec(
                    self,
                    "UPDATE mi_request SET state = 'retry_wait', last_error = ?3, next_at = ?4, owner = ?5,
                            updated_at = ?6
                      WHERE id = ?1 AND owner = ?2",
                    params![id, owner, s.seal(Place::LastError(id), last_error)?, at_ms, keep_owner, now],
                )?;
                if n != 1 {
                    return Err(Error::lost_claim(id));
                }
            }
        }
        if let Some(a) = attempt {
            let err_msg = s.seal_opt(Place::ErrMsg(id, a.no), a.err_msg.as_deref())?;
            // The answer of the attempt that ended the request is usually its result
            // too: kept once (sealing it twice cost a third of a call's sealing).
            let response = match (a.response.as_deref(), next) {
                (Some(r), Next::Final(fin)) if s.keeps_answers_once() && r == fin.result => {
                    Some(s.seal(Place::Response(id, a.no), sealing::SAME_AS_RESULT)?)
                }
                (r, _) => s.seal_opt(Place::Response(id, a.no), r)?,
            };
            exec(
                self,
                "UPDATE mi_attempt SET finished_at = ?3, outcome = ?4, http_status = ?5, infcode = ?6,
                        err_msg = ?7, response = ?8, latency_ms = ?9
                  WHERE request_id = ?1 AND attempt_no = ?2",
                params![id, a.no, now, a.outcome, a.http_status, a.infcode, err_msg, response, a.latency_ms],
            )?;
        }
        Ok(())
    }

    /// Takes back a request this owner left in `retry_wait` while it slept through
    /// the backoff (sync calls); [`Error::lost_claim`] if it is no longer its own.
    pub fn reclaim(&self, id: i64, owner: &str) -> Result<()> {
        let n = exec(
            self,
            "UPDATE mi_request SET state = 'sending', updated_at = ?3
              WHERE id = ?1 AND owner = ?2 AND state = 'retry_wait'",
            params![id, owner, self.now()],
        )?;
        if n != 1 {
            return Err(Error::lost_claim(id));
        }
        Ok(())
    }

    /// Registers a process, or counts one more heartbeat of it. The counter is
    /// what others watch; the wall time is for people reading the table.
    pub fn heartbeat(&self, owner: &str, now_ms: i64) -> Result<()> {
        exec(
            self,
            "INSERT INTO mi_owner(owner, pid, started_at, heartbeat_at, beat) VALUES (?1, ?2, ?3, ?4, 1)
             ON CONFLICT(owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, beat = beat + 1",
            params![owner, std::process::id(), self.now(), now_ms],
        )?;
        Ok(())
    }

    /// Takes over claimed requests (see [`Whose`]). Requests waiting to retry, or
    /// claimed with no attempt begun, provably did not leave; `decide` says what
    /// becomes of each (given whether an attempt was in flight). In one
    /// transaction, and each change names the owner it takes from, so two
    /// recovering processes never both take the same request.
    pub fn take_over(
        &self,
        whose: Whose<'_>,
        decide: impl Fn(&RequestRow, bool) -> Recovery,
    ) -> Result<Vec<(i64, Recovery)>> {
        let orphans: Vec<(i64, String, bool)> = match whose {
            Whose::Dead { owner } => self.orphans("r.owner = ?1", params![owner])?,
            Whose::Mine { id, owner } => self.orphans("r.id = ?2 AND r.owner = ?1", params![owner, id])?,
        };
        let now = self.now();
        let mut done = Vec::new();
        for (id, owner, in_flight) in orphans {
            let what = match records::existing_row(self, id) {
                Ok(r) => decide(&r, in_flight),
                Err(e) if e.code == Code::Journal => {
                    log::error!("request {id} cannot be taken over: {e}");
                    Recovery::End(self.unreadable(id, &e)?)
                }
                Err(e) => return Err(e),
            };
            let open: Vec<i64> = self
                .prepare_cached("SELECT attempt_no FROM mi_attempt WHERE request_id = ?1 AND finished_at IS NULL")?
                .query_map([id], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            for no in open {
                let why = self
                    .journal
                    .sealing
                    .seal(Place::ErrMsg(id, no), "the process sending it stopped before an answer came")?;
                exec(
                    self,
                    "UPDATE mi_attempt SET finished_at = ?3, outcome = ?4, err_msg = ?5
                      WHERE request_id = ?1 AND attempt_no = ?2",
                    params![id, no, now, AttemptOutcome::Interrupted, why],
                )?;
            }
            let n = match &what {
                // From now on the workers drive it (a sync query or reversal whose
                // sender stopped mid-send): `mode` says who drives a request.
                Recovery::Requeue => exec(
                    self,
                    "UPDATE mi_request SET owner = NULL, updated_at = ?3, mode = 'async',
                            state = CASE WHEN state = 'retry_wait' OR attempts > 0 THEN 'retry_wait' ELSE 'queued' END,
                            next_at = CASE WHEN state = 'retry_wait' THEN next_at WHEN attempts > 0 THEN 0 ELSE NULL END
                      WHERE id = ?1 AND owner = ?2",
                    params![id, owner, now],
                )?,
                Recovery::End(fin) => usize::from(self.end(id, Some(&owner), fin, &now)?),
            };
            if n != 1 {
                return Err(Error::lost_claim(id));
            }
            done.push((id, what));
        }
        Ok(done)
    }

    /// Claimed requests matching `condition`: id, owner, whether an attempt is in flight.
    fn orphans(&self, condition: &str, p: impl rusqlite::Params) -> Result<Vec<(i64, String, bool)>> {
        let mut st = self.prepare_cached(&format!("{ORPHANS} AND {condition}"))?;
        let rows = st.query_map(p, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Deletes finished requests created before `before` (journal time text),
    /// never unfinished or uncertain ones, owners silent since `owners_before_ms`,
    /// and sign-ins of days before `before`'s.
    pub fn purge(&self, before: &str, owners_before_ms: i64) -> Result<usize> {
        let n = exec(
            self,
            "DELETE FROM mi_request
              WHERE state IN ('succeeded', 'business_error', 'failed', 'reversed') AND created_at < ?1",
            [before],
        )?;
        exec(self, "DELETE FROM mi_owner WHERE heartbeat_at < ?1", [owners_before_ms])?;
        // A sign-in outlives its 9001 row (the link is cleared), and is kept by its
        // own day: one of a day before the cutoff's is no one's sign_no any more.
        exec(self, "DELETE FROM mi_signin WHERE sign_date < substr(?1, 1, 10)", [before])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::tests::{new_req, queued};
    use super::super::records::Start;
    use super::super::tests::open;
    use super::super::State;
    use super::*;
    use crate::error::Code;

    fn claim(j: &Journal, owner: &str) -> Option<i64> {
        j.write(|tx| tx.claim(owner, 0)).unwrap().map(|r| r.id)
    }

    fn state(j: &Journal, id: i64) -> State {
        j.request(id).unwrap().unwrap().state
    }

    #[test]
    fn attempts_and_final_state_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path());
        let id = queued(&j, 0);
        let m = j.request(id).unwrap().unwrap().msgid;
        assert!(j.write(|tx| tx.begin_attempt(id, "W", &m, "{}")).unwrap_err().is_lost_claim(), "unclaimed");
        assert_eq!(claim(&j, "W"), Some(id));
        assert_eq!(j.write(|tx| tx.begin_attempt(id, "W", &m, "{}")).unwrap(), 1);
        assert_eq!(state(&j, id), State::Sending);
        let a = Attempt {
            no: 1,
            outcome: Some(AttemptOutcome::Ok),
            http_status: Some(200),
            infcode: Some(0),
            latency_ms: Some(5),
            ..Default::default()
        };
        let fin = Final { state: State::Succeeded, code: Code::Ok, result: "{\"infcode\":0}".into(), last_error: None };
        // Only the owner moves it on; anyone else changes nothing.
        let e = j.write(|tx| tx.advance(id, "X", Some(&a), &Next::Final(fin.clone()))).unwrap_err();
        assert!(e.is_lost_claim(), "{e}");
        assert_eq!((state(&j, id), j.attempts(id).unwrap()[0].outcome), (State::Sending, None));
        j.write(|tx| tx.advance(id, "W", Some(&a), &Next::Final(fin.clone()))).unwrap();
        assert!(j.write(|tx| tx.advance(id, "W", Some(&a), &Next::Final(fin))).unwrap_err().is_lost_claim(), "once");
        let r = j.request(id).unwrap().unwrap();
        assert_eq!((r.state, r.attempts, r.mi_code), (State::Succeeded, 1, Some(0)));
        assert_eq!(j.counts_by_state().unwrap(), vec![(State::Succeeded, 1)]);
        let (infcode, lat): (i64, i64) = j
            .lock()
            .query_row("SELECT infcode, latency_ms FROM v_mi_result WHERE request_id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((infcode, lat), (0, 5));
        let read = &j.attempts(id).unwrap()[0];
        assert_eq!((read.outcome, read.http_status, read.msgid.as_str()), (Some(AttemptOutcome::Ok), Some(200), &*m));
    }

    #[test]
    fn claims_follow_priority_and_dead_owners_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path());
        let ids: Vec<i64> = [0, 5, 5, 1].into_iter().map(|p| queued(&j, p)).collect();
        let order: Vec<i64> = (0..4).map(|_| claim(&j, "A").unwrap()).collect();
        assert_eq!(order, vec![ids[1], ids[2], ids[3], ids[0]]);
        assert_eq!(claim(&j, "B"), None, "nothing claimed twice");
        // A is gone: B takes over. One was sent (an attempt begun), three not.
        j.write(|tx| tx.heartbeat("A", 1000)).unwrap();
        j.write(|tx| tx.heartbeat("B", 10_000)).unwrap();
        assert_eq!(j.claimants("B").unwrap(), vec![("A".to_string(), Some((1, 1000)))]);
        assert!(j.claimants("A").unwrap().is_empty());
        let row = j.request(ids[1]).unwrap().unwrap();
        j.write(|tx| tx.begin_attempt(ids[1], "A", &row.msgid, "{}")).unwrap();
        let uncertain = Final { state: State::Uncertain, code: Code::Uncertain, result: "{}".into(), last_error: None };
        let dead = Whose::Dead { owner: "A" };
        let done = j
            .write(|tx| {
                tx.take_over(dead, |_, in_flight| match in_flight {
                    true => Recovery::End(uncertain.clone()),
                    false => Recovery::Requeue,
                })
            })
            .unwrap();
        assert_eq!(done.len(), 4);
        assert_eq!(state(&j, ids[1]), State::Uncertain);
        assert_eq!(j.attempts(ids[1]).unwrap()[0].outcome, Some(AttemptOutcome::Interrupted));
        for id in [ids[0], ids[2], ids[3]] {
            assert_eq!(state(&j, id), State::Queued);
        }
        assert!(j.write(|tx| tx.take_over(dead, |_, _| Recovery::Requeue)).unwrap().is_empty(), "taken over once");
        // The old owner can no longer move on what it lost.
        let a = Attempt { no: 1, outcome: Some(AttemptOutcome::Ok), ..Default::default() };
        let ok = Final { state: State::Succeeded, code: Code::Ok, result: "{}".into(), last_error: None };
        let e = j.write(|tx| tx.advance(ids[1], "A", Some(&a), &Next::Final(ok))).unwrap_err();
        assert!(e.is_lost_claim());
        assert_eq!(state(&j, ids[1]), State::Uncertain, "the new owner's outcome stands");
        // One's own request given up: back to the queue when no attempt began.
        let mine = claim(&j, "B").unwrap();
        let back = j.write(|tx| tx.take_over(Whose::Mine { id: mine, owner: "B" }, |_, _| Recovery::Requeue)).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(state(&j, mine), State::Queued);
    }

    #[test]
    fn a_retry_waits_until_due_and_a_kept_one_is_not_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path());
        let (a, b) = (queued(&j, 0), queued(&j, 0));
        for id in [a, b] {
            assert_eq!(claim(&j, "W"), Some(id));
            let m = j.request(id).unwrap().unwrap().msgid;
            j.write(|tx| tx.begin_attempt(id, "W", &m, "{}")).unwrap();
        }
        let never = Attempt { no: 1, outcome: Some(AttemptOutcome::NeverSent), ..Default::default() };
        let later = |keep: Option<&str>| Next::Retry {
            at_ms: 100,
            last_error: "down".into(),
            keep_owner: keep.map(str::to_owned),
        };
        j.write(|tx| tx.advance(a, "W", Some(&never), &later(None))).unwrap();
        j.write(|tx| tx.advance(b, "W", Some(&never), &later(Some("S")))).unwrap();
        assert_eq!(j.waiting().unwrap(), 2);
        assert_eq!(j.write(|tx| tx.claim("W", 99)).unwrap().map(|r| r.id), None, "not due yet");
        assert_eq!(j.write(|tx| tx.claim("W", 100)).unwrap().map(|r| r.id), Some(a));
        assert_eq!(j.write(|tx| tx.claim("W", 1000)).unwrap().map(|r| r.id), None, "b is kept by S");
        assert!(j.write(|tx| tx.reclaim(b, "W")).unwrap_err().is_lost_claim(), "only by its keeper");
        j.write(|tx| tx.reclaim(b, "S")).unwrap();
        assert_eq!(state(&j, b), State::Sending);
        assert!(j.write(|tx| tx.reclaim(b, "S")).unwrap_err().is_lost_claim(), "not waiting any more");
    }

    #[test]
    fn retention_purges_only_old_finished_requests() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path());
        let mut ids = Vec::new();
        for st in [State::Succeeded, State::Failed, State::Uncertain, State::Queued, State::Succeeded] {
            let id = queued(&j, 0);
            j.lock().execute("UPDATE mi_request SET state = ?2 WHERE id = ?1", params![id, st]).unwrap();
            ids.push(id);
        }
        // The first four are old; the last is new.
        j.lock()
            .execute("UPDATE mi_request SET created_at = '2020-01-01 00:00:00.000' WHERE id <= ?1", [ids[3]])
            .unwrap();
        assert_eq!(j.write(|tx| tx.purge("2021-01-01 00:00:00.000", 0)).unwrap(), 2);
        let left: Vec<State> = ids.iter().filter_map(|id| j.request(*id).unwrap()).map(|r| r.state).collect();
        assert_eq!(left, vec![State::Uncertain, State::Queued, State::Succeeded]);
    }

    /// The counts the triggers keep equal a full count after every kind of change:
    /// inserts, claims, retries, finishes, recovery and purge.
    #[test]
    fn state_counts_follow_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let j = open(dir.path());
        let scan = |j: &Journal| -> Vec<(State, i64)> {
            let c = j.lock();
            let mut st = c.prepare("SELECT state, count(*) FROM mi_request GROUP BY state ORDER BY state").unwrap();
            let mut v: Vec<(State, i64)> =
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(|r| r.unwrap()).collect();
            v.sort();
            v
        };
        let counts = |j: &Journal| {
            let mut v = j.counts_by_state().unwrap();
            v.sort();
            v
        };
        for _ in 0..6 {
            queued(&j, 0);
        }
        let sid = j.write(|tx| tx.insert(&new_req(None), Start::Sending("A"), |_| Ok("{}".into()))).unwrap().id;
        assert_eq!(counts(&j), scan(&j));
        let a = claim(&j, "A").unwrap();
        let b = claim(&j, "A").unwrap();
        let m = j.request(a).unwrap().unwrap().msgid;
        j.write(|tx| tx.begin_attempt(a, "A", &m, "{}")).unwrap();
        let rec = Attempt { no: 1, outcome: Some(AttemptOutcome::NeverSent), ..Default::default() };
        let retry = Next::Retry { at_ms: i64::MAX, last_error: "down".into(), keep_owner: None };
        j.write(|tx| tx.advance(a, "A", Some(&rec), &retry)).unwrap();
        let ok = Final { state: State::Succeeded, code: Code::Ok, result: "{}".into(), last_error: None };
        j.write(|tx| tx.advance(sid, "A", Some(&rec), &Next::Final(ok))).unwrap();
        let bad =
            Final { state: State::Failed, code: Code::Network, result: "{}".into(), last_error: Some("x".into()) };
        j.write(|tx| tx.advance(b, "A", None, &Next::Final(bad))).unwrap();
        assert_eq!(counts(&j), scan(&j));
        assert_eq!(j.waiting().unwrap(), 5, "four queued and one waiting to retry");
        let h = j.health().unwrap();
        assert!(h.last_success_at.is_some());
        assert_eq!(h.last_error.map(|e| e.message), Some("x".to_string()));
        j.write(|tx| tx.heartbeat("A", 0)).unwrap();
        j.write(|tx| tx.take_over(Whose::Dead { owner: "A" }, |_, _| Recovery::Requeue)).unwrap();
        j.lock().execute("UPDATE mi_request SET created_at = '2020-01-01 00:00:00.000'", []).unwrap();
        assert_eq!(j.write(|tx| tx.purge("2021-01-01 00:00:00.000", 0)).unwrap(), 2);
        assert_eq!(counts(&j), scan(&j));
        assert_eq!(j.waiting().unwrap(), 5);
    }

    /// Sync requests are driven by their callers alone: a worker never claims one,
    /// and those an earlier version put back in the queue when their caller died
    /// end failed, never sent, when the journal is upgraded.
    #[test]
    fn sync_requests_are_never_claimed_and_old_orphans_end_at_upgrade() {
        use super::super::tests::opts;
        use super::super::MIGRATIONS;
        use crate::config::Synchronous;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.db");
        {
            let c = rusqlite::Connection::open(&p).unwrap();
            for (i, sql) in MIGRATIONS.iter().take(5).enumerate() {
                c.execute_batch(sql).unwrap();
                c.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).unwrap();
            }
            c.execute_batch(
                "INSERT INTO mi_request(msgid, infno, mode, state, envelope, attempts, next_at, created_at, updated_at)
                 VALUES ('S1', '2207', 'sync', 'retry_wait', '{}', 1, 0, '2026-11-27 08:00:00.000', '2026-11-27 08:00:00.000'),
                        ('A1', '2207', 'async', 'queued', '{}', 0, NULL, '2026-11-27 08:00:00.000', '2026-11-27 08:00:00.000');",
            )
            .unwrap();
        }
        let j = Journal::open(&p, opts(Synchronous::Full)).unwrap();
        let sync = j.request(1).unwrap().unwrap();
        assert_eq!((sync.state, sync.mi_code), (State::Failed, Some(Code::Shutdown.as_i32())));
        assert!(sync.result.unwrap().contains("never sent"));
        assert_eq!(state(&j, 2), State::Queued, "async requests are untouched");
        assert_eq!(claim(&j, "W"), Some(2));
        let s = j.write(|tx| tx.insert(&new_req(None), Start::Queued, |_| Ok("{}".into()))).unwrap().id;
        assert_eq!(claim(&j, "W"), None, "a sync request is never a worker's");
        assert_eq!(state(&j, s), State::Queued);
    }
}
