//! Politeness: request-rate limits that hold exactly as configured.
//!
//! Each key (a host and request class, or a credential) gets a sliding window: at most
//! `burst` requests in any window of `burst × interval`, so the long-run rate is one per
//! `interval` and no window of that length ever carries more than `burst` requests.
//! (A GCRA/token bucket such as governor's allows `burst + T/interval` requests in a
//! window `T`, which breaks that guarantee; the sliding window is a dozen lines.)
//! A random jitter of up to `jitter` is added to each slot, and the slot is reserved
//! before waiting, so concurrent callers never share one.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use mpwatch_core::config::RateLimit;
use tokio::time::Instant;

/// A margin against scheduling and network noise between our clock and the server's:
/// windows are 2% (at least 3 ms) longer than configured, so that the server never
/// sees more than `burst` requests in a window even when one request travels slower
/// than the next.
fn safety_margin(span: Duration) -> Duration {
    (span / 50).max(Duration::from_millis(3))
}

#[derive(Debug, Default)]
struct Window {
    /// Reserved slots, oldest first (at most `burst`).
    slots: VecDeque<Instant>,
}

/// Keyed sliding-window limiters.
#[derive(Debug, Default)]
pub struct Limiter {
    windows: Mutex<HashMap<String, Window>>,
    seed: Mutex<u64>,
}

impl Limiter {
    /// A limiter with no history.
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Limiter { windows: Mutex::new(HashMap::new()), seed: Mutex::new(seed | 1) }
    }

    fn random_below(&self, bound: Duration) -> Duration {
        if bound.is_zero() {
            return Duration::ZERO;
        }
        let mut seed = self.seed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        bound.mul_f64((*seed >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// Reserves the next slot for `key` under `limit` and returns when it may be used.
    pub fn reserve(&self, key: &str, limit: &RateLimit) -> Instant {
        let burst = limit.burst.max(1) as usize;
        let span = limit.interval * burst as u32;
        let span = span + safety_margin(span);
        let jitter = self.random_below(limit.jitter);
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = windows.entry(key.to_string()).or_default();
        while window.slots.len() > burst {
            window.slots.pop_front();
        }
        // The burst-th most recent slot bounds the next one: it must be a full span ago.
        let earliest =
            if window.slots.len() == burst { window.slots.front().map(|oldest| *oldest + span) } else { None };
        // Slots stay in order even with jitter.
        let after_last = window.slots.back().copied();
        let mut slot = earliest.unwrap_or(now).max(now) + jitter;
        if let Some(last) = after_last {
            slot = slot.max(last);
        }
        window.slots.push_back(slot);
        if window.slots.len() > burst {
            window.slots.pop_front();
        }
        slot
    }

    /// Waits for the next slot of `key`.
    pub async fn acquire(&self, key: &str, limit: &RateLimit) {
        let slot = self.reserve(key, limit);
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(interval_ms: u64, burst: u32) -> RateLimit {
        RateLimit { interval: Duration::from_millis(interval_ms), burst, jitter: Duration::ZERO }
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_carries_more_than_the_burst() {
        let limiter = Limiter::new();
        let limit = limit(100, 10);
        let start = Instant::now();
        let slots: Vec<Duration> = (0..55).map(|_| limiter.reserve("host", &limit) - start).collect();
        for (i, slot) in slots.iter().enumerate() {
            let in_window = slots[i..].iter().filter(|s| **s < *slot + Duration::from_secs(1)).count();
            assert!(in_window <= 10, "{in_window} slots within 1 s of {slot:?}");
        }
        // The long-run rate stays close to one per interval.
        let last = *slots.last().unwrap();
        assert!(last < Duration::from_millis(5_200), "{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_independent_and_jitter_keeps_order() {
        let limiter = Limiter::new();
        let jittery = RateLimit { interval: Duration::from_millis(50), burst: 1, jitter: Duration::from_millis(30) };
        let a: Vec<Instant> = (0..20).map(|_| limiter.reserve("a", &jittery)).collect();
        assert!(a.windows(2).all(|w| w[1] >= w[0] + Duration::from_millis(50)));
        let b = limiter.reserve("b", &jittery);
        assert!(b < a[1], "another key does not wait for the first");
    }
}
