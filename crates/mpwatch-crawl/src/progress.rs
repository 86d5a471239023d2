//! Live counters of a run, readable while it goes on (progress bars) and summed up at
//! its end.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mpwatch_store::runs::RunCounts;

/// Live counters, readable while a run goes on (progress bars).
#[derive(Debug, Default)]
pub struct Progress {
    /// Items finished (any outcome).
    pub processed: AtomicU64,
    /// Items leased so far.
    pub leased: AtomicU64,
    pub(crate) accounts: Mutex<HashSet<i64>>,
    pub(crate) found: AtomicU64,
    pub(crate) new: AtomicU64,
    pub(crate) updated: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) cooldowns: AtomicU64,
    outcomes: Mutex<BTreeMap<String, u64>>,
    /// Hosts found unreachable (breaker opened), with until when their work waits.
    hosts_down: Mutex<BTreeMap<String, i64>>,
}

impl Progress {
    /// Counts one request outcome (`ok`, `deleted`, `timeout`, ...).
    pub(crate) fn outcome(&self, class: &str) {
        *self
            .outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(class.to_string())
            .or_default() += 1;
    }

    /// Requests by outcome class so far.
    pub(crate) fn outcomes(&self) -> BTreeMap<String, u64> {
        self.outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Notes that a host's breaker is open until `until`.
    pub(crate) fn host_down(&self, host: &str, until: i64) {
        let mut hosts = self.hosts_down.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let latest = hosts.entry(host.to_string()).or_insert(until);
        *latest = (*latest).max(until);
    }

    /// Hosts found unreachable during the run, with until when their work waits.
    pub(crate) fn hosts_down(&self) -> BTreeMap<String, i64> {
        self.hosts_down.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Notes that an account was crawled.
    pub(crate) fn account(&self, account_id: i64) {
        self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(account_id);
    }

    /// Adds one to a counter.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Article pages stored so far (new articles and updated ones).
    pub(crate) fn pages_stored(&self) -> u64 {
        self.new.load(Ordering::Relaxed) + self.updated.load(Ordering::Relaxed)
    }

    /// The totals as stored in `crawl_runs`.
    pub(crate) fn counts(&self) -> RunCounts {
        RunCounts {
            accounts: self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len() as i64,
            articles_found: self.found.load(Ordering::Relaxed) as i64,
            articles_new: self.new.load(Ordering::Relaxed) as i64,
            articles_updated: self.updated.load(Ordering::Relaxed) as i64,
            snapshots: self.snapshots.load(Ordering::Relaxed) as i64,
            failures: self.failures.load(Ordering::Relaxed) as i64,
        }
    }
}
