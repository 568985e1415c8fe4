//! The retry policy (PROTOCOL.md §6, ABI.md §4): which failed attempt may be sent
//! again, and after how long.

use crate::config::Retry;
use std::time::Duration;

/// How an attempt ended, as far as resending is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The platform answered (success or a business error): final.
    Answered,
    /// Provably never left this machine (refused, DNS, connect timeout).
    NeverSent,
    /// May have reached the platform: timeout or reset after sending.
    MaybeProcessed,
    /// The gateway refused it with HTTP 4xx: it did not reach the platform, and
    /// sending it again will not change that.
    GatewayRefused,
    /// The gateway answered 5xx or something that is not a platform response: the
    /// platform may or may not have processed it.
    GatewayFault,
    /// An answer that fails verification (bad signature, cannot decrypt): it cannot
    /// be trusted either way.
    Unverified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the outcome.
    Final,
    /// Send again after the delay.
    Retry(Duration),
    /// Not resent, and it may have been processed.
    Uncertain,
}

/// Decides after attempt number `attempt` (1-based) of a transaction that is
/// `retry_safe` (a query) or not.
pub fn decide(f: Failure, retry_safe: bool, attempt: u32, policy: &Retry) -> Verdict {
    let more = attempt < policy.max_attempts;
    match f {
        Failure::Answered | Failure::GatewayRefused => Verdict::Final,
        Failure::NeverSent if more => Verdict::Retry(backoff(attempt, policy)),
        Failure::NeverSent => Verdict::Final,
        Failure::MaybeProcessed | Failure::GatewayFault | Failure::Unverified if retry_safe => {
            if more {
                Verdict::Retry(backoff(attempt, policy))
            } else {
                Verdict::Final
            }
        }
        Failure::MaybeProcessed | Failure::GatewayFault | Failure::Unverified => Verdict::Uncertain,
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

    fn policy(max: u32) -> Retry {
        Retry { max_attempts: max, base_delay_ms: 100, max_delay_ms: 1000, ..Retry::default() }
    }

    #[test]
    fn settlements_are_never_resent_after_they_may_have_left() {
        let p = policy(5);
        assert_eq!(decide(Failure::MaybeProcessed, false, 1, &p), Verdict::Uncertain);
        assert_eq!(decide(Failure::GatewayFault, false, 1, &p), Verdict::Uncertain);
        assert!(matches!(decide(Failure::NeverSent, false, 1, &p), Verdict::Retry(_)));
        assert_eq!(decide(Failure::NeverSent, false, 5, &p), Verdict::Final);
        assert_eq!(decide(Failure::GatewayRefused, false, 1, &p), Verdict::Final);
        assert_eq!(decide(Failure::Answered, true, 1, &p), Verdict::Final);
    }

    #[test]
    fn queries_are_resent_up_to_max_attempts() {
        let p = policy(3);
        assert!(matches!(decide(Failure::MaybeProcessed, true, 1, &p), Verdict::Retry(_)));
        assert!(matches!(decide(Failure::GatewayFault, true, 2, &p), Verdict::Retry(_)));
        assert_eq!(decide(Failure::MaybeProcessed, true, 3, &p), Verdict::Final);
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
