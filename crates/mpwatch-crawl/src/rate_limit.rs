//! Politeness: request-rate limits per request class and key (a host, or a credential),
//! through governor's keyed GCRA limiters, with governor's [`Jitter`].
//!
//! What a limit of `interval` and `burst` promises, for one key:
//! - the long-run rate is one request per `interval`;
//! - at most `burst` requests are admitted at once;
//! - over any window of length `T`, at most `burst + T / interval` requests.
//!
//! Every attempt takes a slot, failed ones too: the caller acquires before each send,
//! so a host that refuses connections sees no more attempts than one that answers.
//! A request that has to wait waits up to `jitter` longer (a random amount), so tasks
//! waiting on one key do not wake together.
//!
//! The limiters read tokio's clock, so tests on a paused clock (`start_paused`) see the
//! limits exactly; in production it is the monotonic clock.

use std::num::NonZeroU32;
use std::ops::Add;
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Jitter, Quota, RateLimiter};
use mpwatch_core::config::{RateLimit, RateLimits};

/// What a request is, for its rate limit: each class has its own limit (from the
/// `[rate_limits]` config) and its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// Article pages, keyed by host.
    ArticlePage,
    /// Article lists (`profile_ext`, the backend), keyed by host.
    ListApi,
    /// Counts (`getappmsgext`), keyed by credential.
    CountApi,
    /// Feeds and robots.txt, keyed by host.
    Feed,
}

/// A point on tokio's clock, for governor (which has its own clock abstraction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokioInstant(tokio::time::Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        TokioInstant(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        self.0.checked_sub(duration.into()).map_or(*self, TokioInstant)
    }
}

/// tokio's clock as a governor clock: paused in tests, monotonic otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(tokio::time::Instant::now())
    }
}

type KeyedLimiter = RateLimiter<String, DashMapStateStore<String>, TokioClock, NoOpMiddleware<TokioInstant>>;

/// One class's keyed limiter and the jitter added to its waits.
#[derive(Debug)]
struct ClassLimiter {
    limiter: KeyedLimiter,
    jitter: Jitter,
}

impl ClassLimiter {
    fn new(limit: &RateLimit) -> Self {
        // Config validation refuses a zero interval or burst; the fallbacks only keep a
        // hand-built config from panicking.
        let quota = Quota::with_period(limit.interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN));
        ClassLimiter {
            limiter: RateLimiter::dashmap_with_clock(quota, TokioClock),
            jitter: Jitter::up_to(limit.jitter),
        }
    }
}

/// The request-rate limiters of a crawler: one keyed limiter per request class.
#[derive(Debug)]
pub struct RateLimiters {
    article_page: ClassLimiter,
    list_api: ClassLimiter,
    count_api: ClassLimiter,
    feed: ClassLimiter,
}

impl RateLimiters {
    /// Limiters with the configured limits and no history.
    pub fn new(limits: &RateLimits) -> Self {
        RateLimiters {
            article_page: ClassLimiter::new(&limits.article_page),
            list_api: ClassLimiter::new(&limits.list_api),
            count_api: ClassLimiter::new(&limits.count_api),
            feed: ClassLimiter::new(&limits.feed),
        }
    }

    fn class(&self, class: RequestClass) -> &ClassLimiter {
        match class {
            RequestClass::ArticlePage => &self.article_page,
            RequestClass::ListApi => &self.list_api,
            RequestClass::CountApi => &self.count_api,
            RequestClass::Feed => &self.feed,
        }
    }

    /// Waits until one more request of `class` under `key` may go, and takes its slot.
    pub async fn acquire(&self, class: RequestClass, key: &str) {
        let ClassLimiter { limiter, jitter } = self.class(class);
        let key = key.to_string();
        // governor's own `until_key_ready_with_jitter` sleeps on a timer that tokio's
        // paused clock does not drive; this is the same loop on tokio's timer.
        while let Err(not_until) = limiter.check_key(&key) {
            let wait = *jitter + not_until.wait_time_from(TokioClock.now());
            tokio::time::sleep(wait).await;
        }
    }

    /// Forgets keys whose state is the same as a fresh key's (idle for a burst's worth
    /// of intervals) and returns the memory: called on a timer, so that a long-running
    /// service with many hosts and credentials stays small.
    pub fn retain_recent(&self) {
        for class in [&self.article_page, &self.list_api, &self.count_api, &self.feed] {
            class.limiter.retain_recent();
            class.limiter.shrink_to_fit();
        }
    }

    /// How many keys the limiters remember.
    pub fn keys(&self) -> usize {
        [&self.article_page, &self.list_api, &self.count_api, &self.feed].iter().map(|c| c.limiter.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::time::Instant;

    fn limits(interval_ms: u64, burst: u32, jitter_ms: u64) -> RateLimits {
        let limit =
            RateLimit { interval: Duration::from_millis(interval_ms), burst, jitter: Duration::from_millis(jitter_ms) };
        RateLimits { article_page: limit.clone(), list_api: limit.clone(), count_api: limit.clone(), feed: limit }
    }

    /// Admission times (since the start) of `n` requests made by `tasks` concurrent
    /// tasks on one key, on the paused clock.
    async fn admissions(limiters: Arc<RateLimiters>, tasks: usize, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let taken = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut set = tokio::task::JoinSet::new();
        for task in 0..tasks {
            let (limiters, taken) = (limiters.clone(), taken.clone());
            let share = n / tasks + usize::from(task < n % tasks);
            set.spawn(async move {
                for _ in 0..share {
                    limiters.acquire(RequestClass::ArticlePage, "host").await;
                    taken.lock().unwrap().push(Instant::now() - start);
                }
            });
        }
        while set.join_next().await.is_some() {}
        let mut times = taken.lock().unwrap().clone();
        times.sort();
        times
    }

    #[tokio::test(start_paused = true)]
    async fn long_run_rate_is_one_per_interval() {
        let limiters = Arc::new(RateLimiters::new(&limits(100, 5, 0)));
        let times = admissions(limiters, 8, 205).await;
        // The burst goes at once, then one per 100 ms: the 205th at 20 s exactly.
        assert_eq!(times.len(), 205);
        assert_eq!(times[204], Duration::from_secs(20), "{:?}", &times[200..]);
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_the_burst_is_admitted_at_once() {
        let limiters = Arc::new(RateLimiters::new(&limits(100, 5, 0)));
        let times = admissions(limiters, 20, 60).await;
        for (i, t) in times.iter().enumerate() {
            let same_instant = times[i..].iter().take_while(|u| *u == t).count();
            assert!(same_instant <= 5, "{same_instant} admitted at {t:?}");
        }
        assert_eq!(times.iter().filter(|t| t.is_zero()).count(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn any_window_holds_at_most_burst_plus_window_over_interval() {
        let limiters = Arc::new(RateLimiters::new(&limits(100, 5, 30)));
        let times = admissions(limiters, 16, 300).await;
        for window_ms in [1u64, 50, 100, 250, 1_000, 5_000] {
            let window = Duration::from_millis(window_ms);
            let bound = 5 + (window_ms / 100) as usize;
            for (i, t) in times.iter().enumerate() {
                let inside = times[i..].iter().take_while(|u| **u < *t + window).count();
                assert!(inside <= bound, "{inside} in {window:?} from {t:?} (bound {bound})");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_spreads_waiters_and_keys_are_independent() {
        let limiters = Arc::new(RateLimiters::new(&limits(100, 1, 80)));
        let times = admissions(limiters.clone(), 10, 10).await;
        let gaps: std::collections::BTreeSet<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() > 3, "waits are jittered: {times:?}");
        assert!(times.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(100)));
        // Another key does not wait for the first one.
        let before = Instant::now();
        limiters.acquire(RequestClass::ArticlePage, "other-host").await;
        assert_eq!(Instant::now(), before);
        // Nor does another class under the same key.
        limiters.acquire(RequestClass::CountApi, "host").await;
        assert_eq!(Instant::now(), before);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_forgotten() {
        let limiters = RateLimiters::new(&limits(1_000, 2, 0));
        for i in 0..1_000 {
            limiters.acquire(RequestClass::CountApi, &format!("credential-{i}")).await;
        }
        assert_eq!(limiters.keys(), 1_000);
        limiters.retain_recent();
        assert_eq!(limiters.keys(), 1_000, "keys used just now stay");
        tokio::time::advance(Duration::from_secs(3)).await;
        limiters.retain_recent();
        assert_eq!(limiters.keys(), 0);
    }
}
