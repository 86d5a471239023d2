//! Is this host reachable, or should its work wait? A per-host circuit breaker: after
//! [`OPEN_AFTER`] connection failures in a row (refused, reset, timed out) the host is
//! left alone for a while, doubling with each failed probe up to [`LONGEST_OPEN`], with
//! jitter so many crawlers do not come back together. While it is open, the host's work
//! items are postponed (no attempt used), never failed; one answer closes it again.

use std::collections::HashMap;
use std::sync::Mutex;

use mpwatch_core::time::UnixSeconds;
use rand::Rng as _;

/// Connection failures in a row that open a host's breaker.
pub const OPEN_AFTER: u32 = 5;
/// How long a breaker first stays open, seconds.
pub const FIRST_OPEN: i64 = 30;
/// The longest a breaker stays open, seconds.
pub const LONGEST_OPEN: i64 = 30 * 60;

/// One host's state.
#[derive(Debug, Default, Clone, Copy)]
struct HostState {
    /// Connection failures since the last answer.
    failures_in_a_row: u32,
    /// Times opened since the last answer (the exponent of the wait).
    openings: u32,
    /// Open until this instant.
    open_until: Option<UnixSeconds>,
}

/// The breakers of every host an engine talks to.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    hosts: Mutex<HashMap<String, HostState>>,
}

impl Breakers {
    fn hosts(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostState>> {
        self.hosts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Until when the host's work should wait (`None`: go ahead).
    pub(crate) fn open_until(&self, host: &str, now: UnixSeconds) -> Option<UnixSeconds> {
        self.hosts().get(host).and_then(|state| state.open_until).filter(|until| *until > now)
    }

    /// The host answered: its breaker closes.
    pub(crate) fn answered(&self, host: &str) {
        let mut hosts = self.hosts();
        if hosts.get(host).is_some_and(|state| state.failures_in_a_row > 0 || state.openings > 0) {
            hosts.remove(host);
        }
    }

    /// A connection to the host failed. Returns when the breaker opened, if this
    /// failure opened it (or reopened it: a failed probe after an opening).
    pub(crate) fn failed(&self, host: &str, now: UnixSeconds) -> Option<UnixSeconds> {
        let mut hosts = self.hosts();
        let state = hosts.entry(host.to_string()).or_default();
        state.failures_in_a_row = state.failures_in_a_row.saturating_add(1);
        if state.failures_in_a_row < OPEN_AFTER || state.open_until.is_some_and(|until| until > now) {
            return None;
        }
        let longest = FIRST_OPEN.saturating_mul(1 << state.openings.min(16)).min(LONGEST_OPEN);
        // Between three quarters of the wait and the whole of it.
        let wait = rand::rng().random_range(longest * 3 / 4..=longest);
        state.openings = state.openings.saturating_add(1);
        state.open_until = Some(now + wait);
        state.open_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_and_an_answer_closes_it() {
        let breakers = Breakers::default();
        for _ in 1..OPEN_AFTER {
            assert_eq!(breakers.failed("h", 100), None);
        }
        let until = breakers.failed("h", 100).expect("opens on the fifth failure");
        assert!((100 + FIRST_OPEN * 3 / 4..=100 + FIRST_OPEN).contains(&until), "{until}");
        assert_eq!(breakers.open_until("h", 100), Some(until));
        assert_eq!(breakers.open_until("other", 100), None);
        // Failures of requests already in flight do not extend it.
        assert_eq!(breakers.failed("h", 101), None);
        assert_eq!(breakers.open_until("h", until), None, "open until, not at");
        breakers.answered("h");
        assert_eq!(breakers.open_until("h", 100), None);
    }

    #[test]
    fn each_failed_probe_doubles_the_wait_up_to_the_cap() {
        let breakers = Breakers::default();
        let mut now = 0;
        for _ in 1..OPEN_AFTER {
            breakers.failed("h", now);
        }
        let mut waits = Vec::new();
        for _ in 0..12 {
            let until = breakers.failed("h", now).expect("a failed probe reopens at once");
            waits.push(until - now);
            now = until;
        }
        for (opening, wait) in waits.iter().enumerate() {
            let longest = (FIRST_OPEN << opening).min(LONGEST_OPEN);
            assert!((longest * 3 / 4..=longest).contains(wait), "opening {opening}: {wait} s");
        }
        assert_eq!(breakers.open_until("h", now - 1), Some(now));
    }
}
