//! The retry rule, the one place that decides whether a request may be sent again
//! (docs/delivery.md): which transactions may be resent, what each way an attempt
//! can end means for a resend, after how long, and what becomes of a request whose
//! sender stopped mid-send. The attempt loop and recovery both ask here.

use crate::config::Retry;
use crate::protocol::transactions;
use std::time::Duration;

/// How one send of a request ended, as its attempt row records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The platform answered `infcode` 0.
    Ok,
    /// The platform answered with another `infcode`.
    BusinessError,
    /// Provably never left this machine (refused, DNS, connect timeout, TLS).
    NeverSent,
    /// May have reached the platform: timeout or reset after sending.
    MaybeProcessed,
    /// The gateway refused it with HTTP 4xx: it did not reach the platform, and
    /// sending it again will not change that.
    GatewayRefused,
    /// The gateway answered 5xx or something that is not a platform response: the
    /// platform may or may not have processed it.
    GatewayFault,
    /// An answer this side refuses whatever is sent (a zip that would escape its
    /// folder): final.
    Refused,
    /// An answer that fails verification (bad signature, cannot decrypt): it cannot
    /// be trusted either way.
    Unverified,
    /// The process sending it stopped before an answer came.
    Interrupted,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 9] = [
        AttemptOutcome::Ok,
        AttemptOutcome::BusinessError,
        AttemptOutcome::NeverSent,
        AttemptOutcome::MaybeProcessed,
        AttemptOutcome::GatewayRefused,
        AttemptOutcome::GatewayFault,
        AttemptOutcome::Refused,
        AttemptOutcome::Unverified,
        AttemptOutcome::Interrupted,
    ];

    /// The name the journal stores.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::BusinessError => "business_error",
            AttemptOutcome::NeverSent => "never_sent",
            AttemptOutcome::MaybeProcessed => "maybe_processed",
            AttemptOutcome::GatewayRefused => "gateway_refused",
            AttemptOutcome::GatewayFault => "gateway_fault",
            AttemptOutcome::Refused => "refused",
            AttemptOutcome::Unverified => "unverified",
            AttemptOutcome::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptOutcome> {
        match s {
            // The first builds wrote a gateway's non-answer as "protocol".
            "protocol" => Some(AttemptOutcome::GatewayFault),
            _ => AttemptOutcome::ALL.into_iter().find(|o| o.as_str() == s),
        }
    }
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep the outcome.
    Final,
    /// Send again after the delay.
    Retry(Duration),
    /// Not resent, and it may have been processed.
    Uncertain,
}

/// Whether failures of `infno` may be resent: queries and calculations
/// (`retry.safe_infnos`), and reversals (2601 names its original by msgid, so a
/// second one reverses nothing twice).
pub fn resendable(infno: &str, policy: &Retry) -> bool {
    crate::infno::matches_any(infno, &policy.safe_infnos) || infno == transactions::REVERSAL
}

/// Decides after attempt number `attempt` (1-based) of a request that is
/// `resendable` or not.
pub fn decide(outcome: AttemptOutcome, resendable: bool, attempt: u32, policy: &Retry) -> Decision {
    use AttemptOutcome::*;
    let more = attempt < policy.max_attempts;
    match outcome {
        Ok | BusinessError | GatewayRefused | Refused => Decision::Final,
        NeverSent if more => Decision::Retry(backoff(attempt, policy)),
        NeverSent => Decision::Final,
        MaybeProcessed | GatewayFault | Unverified | Interrupted if resendable => {
            if more {
                Decision::Retry(backoff(attempt, policy))
            } else {
                Decision::Final
            }
        }
        MaybeProcessed | GatewayFault | Unverified | Interrupted => Decision::Uncertain,
    }
}

/// What becomes of a request whose sender stopped (its process died, or a worker
/// failed) before it ended. One whose attempt was in flight may have been
/// processed: resent at once if it may be (a query, a 2601: sending it again moves
/// nothing twice, and it gives the journal the true outcome), else uncertain. One
/// that provably did not leave is sent if it is async; a sync one ends (`Final`,
/// failed, never sent): its caller is gone, perhaps took cash instead, and nobody
/// waits for it, so it is never sent on its own later.
pub fn after_interruption(resendable: bool, in_flight: bool, sync: bool) -> Decision {
    match (in_flight, sync) {
        (true, _) if resendable => Decision::Retry(Duration::ZERO),
        (true, _) => Decision::Uncertain,
        (false, true) => Decision::Final,
        (false, false) => Decision::Retry(Duration::ZERO),
    }
}

/// Exponential backoff with jitter: base * 2^(attempt-1), capped at the maximum,
/// then a random point in its upper half, so many workstations that failed together
/// do not all come back in the same instant.
pub fn backoff(attempt: u32, policy: &Retry) -> Duration {
    let exp = policy.base_delay_ms.saturating_mul(1u64 << (attempt.saturating_sub(1)).min(30));
    let cap = exp.min(policy.max_delay_ms);
    let mut b = [0u8; 8];
    let r = if getrandom::fill(&mut b).is_ok() { u64::from_le_bytes(b) } else { 0 };
    let half = cap / 2;
    Duration::from_millis(half + if cap > half { r % (cap - half + 1) } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptOutcome::*;

    fn policy(max: u32) -> Retry {
        Retry { max_attempts: max, base_delay_ms: 100, max_delay_ms: 1000, ..Retry::default() }
    }

    #[test]
    fn settlements_are_never_resent_after_they_may_have_left() {
        let p = policy(5);
        assert_eq!(decide(MaybeProcessed, false, 1, &p), Decision::Uncertain);
        assert_eq!(decide(GatewayFault, false, 1, &p), Decision::Uncertain);
        assert_eq!(decide(Interrupted, false, 1, &p), Decision::Uncertain);
        assert!(matches!(decide(NeverSent, false, 1, &p), Decision::Retry(_)));
        assert_eq!(decide(NeverSent, false, 5, &p), Decision::Final);
        assert_eq!(decide(GatewayRefused, false, 1, &p), Decision::Final);
        assert_eq!(decide(Refused, true, 1, &p), Decision::Final);
        assert_eq!(decide(Ok, true, 1, &p), Decision::Final);
        assert_eq!(decide(BusinessError, true, 1, &p), Decision::Final);
    }

    #[test]
    fn queries_are_resent_up_to_max_attempts() {
        let p = policy(3);
        assert!(matches!(decide(MaybeProcessed, true, 1, &p), Decision::Retry(_)));
        assert!(matches!(decide(GatewayFault, true, 2, &p), Decision::Retry(_)));
        assert!(matches!(decide(Unverified, true, 2, &p), Decision::Retry(_)));
        assert_eq!(decide(MaybeProcessed, true, 3, &p), Decision::Final);
    }

    #[test]
    fn which_transactions_are_resendable() {
        let p = Retry::default();
        for infno in ["1101", "1301", "5203", "9102", "2601"] {
            assert!(resendable(infno, &p), "{infno}");
        }
        for infno in ["2207", "2203A", "2201", "9001", "9101", "6202"] {
            assert!(!resendable(infno, &p), "{infno}");
        }
        assert_eq!(after_interruption(true, true, false), Decision::Retry(Duration::ZERO));
        assert_eq!(after_interruption(false, true, false), Decision::Uncertain);
        assert_eq!(after_interruption(false, false, false), Decision::Retry(Duration::ZERO), "never left");
        // A sync call's caller is gone: never sent on its own, unless it may be out.
        assert_eq!(after_interruption(false, true, true), Decision::Uncertain);
        assert_eq!(after_interruption(false, false, true), Decision::Final);
        assert_eq!(after_interruption(true, false, true), Decision::Final);
        // A sync 2601 (or query) that may have reached the platform: sent again, so
        // that the journal learns what happened; never "failed".
        assert_eq!(after_interruption(true, true, true), Decision::Retry(Duration::ZERO));
    }

    #[test]
    fn outcome_names_round_trip() {
        for o in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(AttemptOutcome::parse("in flight"), None);
        assert_eq!(AttemptOutcome::parse("protocol"), Some(GatewayFault), "an early journal reads back");
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = policy(10);
        for _ in 0..50 {
            let d1 = backoff(1, &p).as_millis();
            assert!((50..=100).contains(&d1), "{d1}");
            let d3 = backoff(3, &p).as_millis();
            assert!((200..=400).contains(&d3), "{d3}");
            let d9 = backoff(9, &p).as_millis();
            assert!((500..=1000).contains(&d9), "{d9}");
        }
        assert!(backoff(64, &p).as_millis() <= 1000);
    }
}
