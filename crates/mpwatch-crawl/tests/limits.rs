//! Rate limits hold for failed attempts too, retries of items failing together are
//! spread out, and the limiters stay small with many keys.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Harness, count};
use mpwatch_core::config::{RateLimit, RateLimits};
use mpwatch_crawl::CrawlOptions;
use mpwatch_crawl::rate_limit::{RateLimiters, RequestClass};
use mpwatch_sim::scenario::{Endpoint, Fault, FaultRule};

/// Bytes allocated and not yet freed, by this test binary.
struct CountingAllocator;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is
// updated beside it.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn article_urls(harness: &Harness, n: usize) -> Vec<String> {
    harness.truth().into_iter().filter(|a| a.status == mpwatch_core::ArticleStatus::Ok).take(n).map(|a| a.url).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_drops_every_connection_is_backed_off_and_its_work_waits() {
    // A host that accepts and drops every connection at once: each attempt fails
    // within a millisecond, must still wait for its rate slot, and after a few in a row
    // the host's breaker opens: its work waits instead of failing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let accepted: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            log.lock().unwrap().push(Instant::now());
            drop(stream);
        }
    });
    let mut harness = Harness::new(301, 1, 3, |_| {}).await;
    let urls = article_urls(&harness, 12);
    harness.config.wechat.base_url = url::Url::parse(&format!("http://{address}")).unwrap();
    harness.config.rate_limits.article_page =
        RateLimit { interval: Duration::from_millis(50), burst: 1, jitter: Duration::ZERO };
    let engine = harness.engine(Vec::new());
    let summary =
        engine.run(&CrawlOptions { urls: urls.clone(), metrics: false, ..CrawlOptions::default() }).await.unwrap();
    let times = accepted.lock().unwrap().clone();
    // The breaker opened after OPEN_AFTER failures in a row (requests already waiting
    // for their rate slot when it opened are not sent).
    let opened_after = mpwatch_crawl::breaker::OPEN_AFTER as usize;
    assert!((opened_after..opened_after + 3).contains(&times.len()), "{} attempts: {summary:?}", times.len());
    let store = harness.store();
    assert_eq!(count(&store, "SELECT count(*) FROM fetch_log"), times.len() as i64);
    assert_eq!(count(&store, "SELECT count(*) FROM articles"), 0);
    // Nothing given up: every item waits, most without having used an attempt.
    assert_eq!(count(&store, "SELECT count(*) FROM work_queue WHERE state = 'failed'"), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM work_queue WHERE state = 'pending'"), urls.len() as i64);
    // The run says which host and until when.
    assert_eq!(summary.result, "partial");
    let message = summary.message.unwrap_or_default();
    assert!(message.contains(&address.to_string()) && message.contains("waits until"), "{message}");
    // One attempt per 50 ms at most (arrivals may bunch by a few ms of scheduling).
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(35), "attempts {gap:?} apart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_failing_at_the_same_instant_come_back_at_spread_out_times() {
    let harness = Harness::new(302, 4, 6, |sim| {
        sim.scenario.faults.push(FaultRule {
            endpoint: Endpoint::Article,
            fault: Fault::Status { status: 404, retry_after: None },
            probability: Some(1.0),
            next: None,
        });
    })
    .await;
    let urls = article_urls(&harness, 100);
    assert_eq!(urls.len(), 100);
    let engine = harness.engine(Vec::new());
    // The clock stands still: every item fails at the same instant.
    engine.run(&CrawlOptions { urls, metrics: false, ..CrawlOptions::default() }).await.unwrap();
    let store = harness.store();
    let mut statement = store
        .connection()
        .prepare("SELECT not_before FROM work_queue WHERE kind = 'page' AND state = 'pending' AND attempts = 1")
        .unwrap();
    let retry_times: Vec<i64> = statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
    let states: Vec<(String, i64, Option<String>)> = store
        .connection()
        .prepare("SELECT state, attempts, last_error FROM work_queue WHERE kind = 'page'")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(retry_times.len(), 100, "{states:?}");
    let distinct: std::collections::BTreeSet<_> = retry_times.iter().collect();
    assert!(distinct.len() >= 20, "only {} distinct retry times among 100", distinct.len());
    let most_at_once = distinct.iter().map(|t| retry_times.iter().filter(|u| u == t).count()).max().unwrap();
    assert!(most_at_once <= 15, "{most_at_once} items retry at the same second");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_day_of_100_000_keys_stays_under_20_mb() {
    let limit = RateLimit { interval: Duration::from_secs(5), burst: 2, jitter: Duration::from_secs(1) };
    let limits =
        RateLimits { article_page: limit.clone(), list_api: limit.clone(), count_api: limit.clone(), feed: limit };
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let limiters = RateLimiters::new(&limits);
    // 100,000 keys over a simulated day: credentials on the count API, hosts on pages.
    for i in 0..100_000u32 {
        if i % 2 == 0 {
            limiters.acquire(RequestClass::CountApi, &format!("credential-{i:06}")).await;
        } else {
            limiters.acquire(RequestClass::ArticlePage, &format!("host-{i:06}.example:443")).await;
        }
        if i % 1_000 == 999 {
            tokio::time::advance(Duration::from_secs(864)).await;
        }
    }
    let peak = LIVE_BYTES.load(Ordering::Relaxed).saturating_sub(before);
    assert!(peak < 20 << 20, "100,000 keys take {peak} bytes");
    // The timer's housekeeping forgets idle keys and returns the memory.
    limiters.retain_recent();
    assert!(limiters.keys() < 1_000, "{} keys remembered after a day", limiters.keys());
    let after = LIVE_BYTES.load(Ordering::Relaxed).saturating_sub(before);
    assert!(after < peak / 10, "{after} bytes after housekeeping (peak {peak})");
}
