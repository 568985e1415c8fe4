//! Counters for `mi_get_status`: recent latencies, the last success and failure.

use std::collections::VecDeque;
use std::sync::Mutex;

const WINDOW: usize = 1000;

#[derive(Default)]
struct Inner {
    latencies_ms: VecDeque<u64>,
    last_success_at: Option<String>,
    last_error: Option<String>,
}

#[derive(Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an exchange that got an HTTP answer.
    pub fn answered(&self, latency_ms: u64) {
        let mut i = self.lock();
        if i.latencies_ms.len() == WINDOW {
            i.latencies_ms.pop_front();
        }
        i.latencies_ms.push_back(latency_ms);
    }

    pub fn success(&self, at: String) {
        self.lock().last_success_at = Some(at);
    }

    pub fn failure(&self, message: String) {
        self.lock().last_error = Some(message);
    }

    pub fn last_success_at(&self) -> Option<String> {
        self.lock().last_success_at.clone()
    }

    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// (p50, p99, samples) of the recent window, nearest-rank.
    pub fn percentiles(&self) -> (Option<u64>, Option<u64>, usize) {
        let mut v: Vec<u64> = self.lock().latencies_ms.iter().copied().collect();
        if v.is_empty() {
            return (None, None, 0);
        }
        v.sort_unstable();
        let rank = |p: f64| nearest_rank(&v, p).unwrap_or(0);
        (Some(rank(0.50)), Some(rank(0.99)), v.len())
    }
}

/// The nearest-rank `p` percentile (0..=1) of sorted values.
pub fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    (!sorted.is_empty()).then(|| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let s = Stats::default();
        assert_eq!(s.percentiles(), (None, None, 0));
        for ms in 1..=100 {
            s.answered(ms);
        }
        assert_eq!(s.percentiles(), (Some(50), Some(99), 100));
        for _ in 0..2000 {
            s.answered(7);
        }
        assert_eq!(s.percentiles(), (Some(7), Some(7), WINDOW));
    }
}
