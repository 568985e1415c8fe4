//! Name resolution that does not happen on every call. ureq resolves the gateway's
//! host before it even looks for a pooled keep-alive connection, and with a timeout
//! configured it does so on a new thread: one thread and one DNS lookup per call,
//! a fifth of a loopback call's time, and a call that fails when DNS hiccups even
//! though a live connection to the gateway is waiting in the pool.
//!
//! Lookups run on the calling thread (a worker's, or the HIS's), so that no thread
//! of the library outlives mi_shutdown. Here an answer is kept for a minute; when a lookup fails, the last good answer
//! (up to an hour old) is used instead, because a hospital's gateway address
//! changes far more rarely than its DNS server fails.

use crate::clock::{Clock, Mono};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long an answer is used without asking again.
const FRESH: Duration = Duration::from_secs(60);
/// How old an answer may be and still stand in for a failed lookup.
const FALLBACK: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct CachingResolver {
    inner: Box<dyn Resolver>,
    /// Ages are monotonic: a wall clock stepped back must not make an answer young.
    clock: Clock,
    /// scheme://authority -> (when resolved, addresses)
    answers: Mutex<HashMap<String, (Mono, ResolvedSocketAddrs)>>,
}

impl CachingResolver {
    pub fn new(clock: Clock) -> CachingResolver {
        CachingResolver { inner: Box::new(DefaultResolver::default()), clock, answers: Mutex::default() }
    }
}

impl Resolver for CachingResolver {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = format!("{}://{}", uri.scheme_str().unwrap_or(""), uri.authority().map(|a| a.as_str()).unwrap_or(""));
        let known = self.answers.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        let age = |at: Mono| self.clock.mono().since(at);
        if let Some((at, addrs)) = &known {
            if age(*at) < FRESH {
                return Ok(addrs.clone());
            }
        }
        // On this thread, never on one of ureq's: with a time limit, ureq resolves on
        // a thread it does not wait for, which could outlive mi_shutdown and run on in
        // an unloaded library. The OS resolver's own timeouts bound the lookup.
        let inline = NextTimeout { after: ureq::unversioned::transport::time::Duration::NotHappening, ..timeout };
        match self.inner.resolve(uri, config, inline) {
            Ok(addrs) => {
                let now = self.clock.mono();
                self.answers.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (now, addrs.clone()));
                Ok(addrs)
            }
            Err(e) => match known {
                Some((at, addrs)) if age(at) < FALLBACK => {
                    log::warn!("cannot resolve {key} ({e}); using its address from {} s ago", age(at).as_secs());
                    Ok(addrs)
                }
                _ => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    /// The system's resolver, made to fail on demand and counting its lookups.
    #[derive(Debug, Default)]
    struct Flaky {
        down: Arc<AtomicBool>,
        lookups: Arc<AtomicUsize>,
    }

    impl Resolver for Flaky {
        fn resolve(&self, uri: &Uri, config: &Config, t: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(ureq::Error::HostNotFound);
            }
            DefaultResolver::default().resolve(uri, config, t)
        }
    }

    fn no_timeout() -> NextTimeout {
        NextTimeout {
            after: ureq::unversioned::transport::time::Duration::NotHappening,
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        }
    }

    #[test]
    fn an_answer_is_reused_and_stands_in_for_a_failed_lookup() {
        let flaky = Flaky::default();
        let (down, lookups) = (flaky.down.clone(), flaky.lookups.clone());
        // The test drives the clock: no arithmetic on the machine's uptime, which a
        // machine booted minutes ago cannot go back an hour on.
        let clock = Clock::manual(1_764_460_800_000);
        let r = CachingResolver { inner: Box::new(flaky), clock: clock.clone(), answers: Mutex::default() };
        let config = Config::default();
        let uri: Uri = "http://127.0.0.1:8080/x".parse().unwrap();
        let first = r.resolve(&uri, &config, no_timeout()).unwrap();
        assert_eq!(first[0].port(), 8080);
        r.resolve(&uri, &config, no_timeout()).unwrap();
        assert_eq!(lookups.load(Ordering::SeqCst), 1, "a fresh answer is reused");
        // The answer ages and DNS goes down: the last good answer stands in.
        clock.advance(FRESH + Duration::from_secs(1));
        down.store(true, Ordering::SeqCst);
        assert_eq!(r.resolve(&uri, &config, no_timeout()).unwrap()[0], first[0]);
        assert_eq!(lookups.load(Ordering::SeqCst), 2, "a stale answer is asked again");
        // Nothing known, nothing invented.
        let other: Uri = "http://127.0.0.2:1/x".parse().unwrap();
        assert!(r.resolve(&other, &config, no_timeout()).is_err());
        // Too old to stand in.
        clock.advance(FALLBACK);
        assert!(r.resolve(&uri, &config, no_timeout()).is_err());
    }
}
