//! Gates: a test holds requests in flight without guessing how long to sleep. A
//! request whose business input carries `{"_sim": {"gate": "g"}}` waits, before the
//! platform looks at it, until the test opens gate `g`; the test can wait until a
//! given number of requests stand at the gate, and until the simulator is idle
//! (no request being handled, delays and gates included).

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Gates {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    open: HashSet<String>,
    /// Requests standing at each gate.
    waiting: HashMap<String, usize>,
    /// Requests being handled.
    busy: usize,
    /// Every gate open from now on (the simulator is stopping).
    all_open: bool,
}

/// Counts a request as being handled for as long as it lives.
pub struct Busy<'a>(&'a Gates);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.lock().busy -= 1;
        self.0.changed.notify_all();
    }
}

impl Gates {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request begins to be handled.
    pub fn enter(&self) -> Busy<'_> {
        self.lock().busy += 1;
        Busy(self)
    }

    /// Waits until gate `name` is open.
    pub fn pass(&self, name: &str) {
        let mut s = self.lock();
        *s.waiting.entry(name.to_string()).or_default() += 1;
        self.changed.notify_all();
        while !s.all_open && !s.open.contains(name) {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        *s.waiting.entry(name.to_string()).or_default() -= 1;
        self.changed.notify_all();
    }

    pub fn open(&self, name: &str) {
        self.lock().open.insert(name.to_string());
        self.changed.notify_all();
    }

    pub fn close(&self, name: &str) {
        self.lock().open.remove(name);
    }

    pub fn open_all(&self) {
        self.lock().all_open = true;
        self.changed.notify_all();
    }

    /// Requests standing at gate `name` now.
    pub fn waiting(&self, name: &str) -> usize {
        self.lock().waiting.get(name).copied().unwrap_or(0)
    }

    /// Every gate's waiting requests, and how many requests are being handled.
    pub fn snapshot(&self) -> (HashMap<String, usize>, usize) {
        let s = self.lock();
        (s.waiting.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (k.clone(), *n)).collect(), s.busy)
    }

    /// Waits until `cond` holds, or `timeout` passes; returns whether it held.
    fn wait_for(&self, timeout: Duration, cond: impl Fn(&State) -> bool) -> bool {
        let until = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if cond(&s) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self.changed.wait_timeout(s, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Waits until at least `n` requests stand at gate `name`.
    pub fn wait_waiting(&self, name: &str, n: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| s.waiting.get(name).copied().unwrap_or(0) >= n)
    }

    /// Waits until no request is being handled.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| s.busy == 0)
    }
}

/// The gate a request asks for: `input._sim.gate` of a JSON envelope. Most
/// requests name none, and are not parsed for it.
pub fn of(body: &[u8]) -> Option<String> {
    if !body.windows(6).any(|w| w == b"\"gate\"") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.pointer("/input/_sim/gate")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_request_waits_until_its_gate_opens() {
        let g = Arc::new(Gates::default());
        let g2 = g.clone();
        let t = std::thread::spawn(move || {
            let _busy = g2.enter();
            g2.pass("a");
        });
        assert!(g.wait_waiting("a", 1, Duration::from_secs(5)));
        assert!(!g.wait_idle(Duration::from_millis(50)), "held at the gate");
        g.open("a");
        t.join().unwrap();
        assert!(g.wait_idle(Duration::from_secs(1)));
        assert_eq!(g.waiting("a"), 0);
        assert_eq!(of(br#"{"input":{"_sim":{"gate":"a"}}}"#).as_deref(), Some("a"));
        assert_eq!(of(b"{}"), None);
    }
}
