//! The fault matrix: for each simulator fault on each endpoint class, crawl under the
//! fault, clear it, let the retry times pass, crawl once more (a plain crawl, no
//! `--backfill`), and compare the database with the simulator's truth: nothing
//! missing, nothing twice, no wrong status, kind or title, every snapshot's counts equal
//! to the truth at its observation instant.

mod common;

use std::time::Duration;

use common::{Harness, differences_from_truth};
use mpwatch_core::SourceKind;
use mpwatch_crawl::CrawlOptions;
use mpwatch_sim::scenario::{Endpoint, Fault, FaultRule, Quota, Scenario};

/// Every way an answer can go wrong, at a rate that lets some requests through (so list
/// paging fails part-way, which is where history used to be lost).
fn faults() -> Vec<(&'static str, Fault)> {
    vec![
        ("429", Fault::Status { status: 429, retry_after: Some(30) }),
        ("502", Fault::Status { status: 502, retry_after: None }),
        ("503 storm", Fault::Status { status: 503, retry_after: Some(120) }),
        ("reset", Fault::Reset),
        ("stall", Fault::Stall),
        ("trickle", Fault::Trickle { bytes_per_second: 200 }),
        ("truncate", Fault::Truncate),
        ("oversize", Fault::Oversize { bytes: 16 * 1024 * 1024 }),
        ("garbage", Fault::Garbage),
        ("redirect loop", Fault::RedirectLoop),
        ("charset lie", Fault::WrongCharset { charset: "gbk".into() }),
    ]
}

/// A small world whose accounts need several list pages each, crawled through both a
/// feed and `profile_ext`, with timeouts short enough for stalls to cost little.
async fn faulty_world(seed: u64) -> Harness {
    let mut harness = Harness::new(seed, 1, 12, |_| {}).await;
    harness.config.http.connect_timeout = Duration::from_millis(500);
    harness.config.http.read_timeout = Duration::from_millis(700);
    harness.config.http.total_timeout = Duration::from_secs(2);
    harness.config.http.max_body_bytes = 4 * 1024 * 1024;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt, SourceKind::Feed]);
    harness
}

/// Crawls under `scenario`, clears it, lets a day pass (every retry time, cooldown and
/// source back-off is shorter), crawls again; returns the differences from the truth.
async fn crawl_through(harness: &Harness, scenario: Scenario) -> Vec<String> {
    let normal = harness.sim.state().scenario();
    harness.sim.state().set_scenario(scenario);
    let engine = harness.engine(vec![harness.credential("phone-1"), harness.credential("phone-2")]);
    let under_fault = engine.run(&CrawlOptions::default()).await.expect("a fault never ends the crawl with an error");
    drop(engine);
    harness.sim.state().set_scenario(normal);
    harness.clock.advance(90_000.0);
    let engine = harness.engine(vec![harness.credential("phone-3")]);
    let after = engine.run(&CrawlOptions::default()).await.expect("crawl after the fault");
    let mut differences = differences_from_truth(harness);
    if !differences.is_empty() {
        differences.push(format!("under the fault: {under_fault:?}; after: {after:?}"));
    }
    differences
}

fn with_fault(endpoint: Endpoint, fault: Fault, probability: f64) -> Scenario {
    let mut scenario = Scenario::default();
    scenario.faults.push(FaultRule { endpoint, fault, probability: Some(probability), next: None });
    scenario
}

/// Runs every fault on one endpoint, each on its own world, and reports every case
/// that left the database different from the truth.
async fn matrix(endpoint: Endpoint, seed: u64) {
    let mut failed = Vec::new();
    for (index, (name, fault)) in faults().into_iter().enumerate() {
        let started = std::time::Instant::now();
        let harness = faulty_world(seed + index as u64).await;
        let differences = crawl_through(&harness, with_fault(endpoint, fault, 0.35)).await;
        eprintln!("{endpoint:?} / {name}: {} ms", started.elapsed().as_millis());
        if !differences.is_empty() {
            let shown: Vec<_> = differences.iter().take(6).cloned().collect();
            failed.push(format!("{endpoint:?} / {name}: {} differences:\n  {}", differences.len(), shown.join("\n  ")));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_peak_memory_below(200);
}

/// The process's peak resident memory (`VmHWM`), which covers every crawl of every test
/// of this binary (they run in one process), stays under `megabytes`, with 16 MiB
/// bodies offered by the oversize faults.
fn assert_peak_memory_below(megabytes: u64) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return };
    let peak_kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    assert!(peak_kb > 0 && peak_kb < megabytes * 1024, "peak RSS {} MB", peak_kb / 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_article_pages_lose_nothing() {
    matrix(Endpoint::Article, 1_100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_the_list_api_lose_nothing() {
    matrix(Endpoint::ProfileExt, 1_200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_the_count_api_lose_nothing() {
    matrix(Endpoint::Getappmsgext, 1_300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_feeds_lose_nothing() {
    matrix(Endpoint::Feed, 1_400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_errors_on_every_endpoint_loses_nothing() {
    let harness = faulty_world(1_500).await;
    let mut scenario = Scenario::default();
    for fault in [Fault::Status { status: 502, retry_after: None }, Fault::Reset, Fault::Stall] {
        scenario.faults.push(FaultRule { endpoint: Endpoint::Any, fault, probability: Some(0.2), next: None });
    }
    let differences = crawl_through(&harness, scenario).await;
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_verification_pages_and_expired_credentials_lose_nothing() {
    // Per-client and per-credential quotas: verification pages, frequency control.
    let harness = faulty_world(1_600).await;
    let mut scenario = Scenario::default();
    scenario.quota = Quota {
        per_client: Some(mpwatch_sim::scenario::Limit { limit: 40, window: 3600 }),
        per_credential: Some(mpwatch_sim::scenario::Limit { limit: 15, window: 3600 }),
        cooldown: 1800,
    };
    let differences = crawl_through(&harness, scenario).await;
    assert!(differences.is_empty(), "quotas: {}", differences.join("\n"));

    // Every credential the crawl has is revoked before it starts: it lists nothing,
    // says so, and the next crawl with a fresh set completes the world.
    let harness = faulty_world(1_700).await;
    let differences = differences_after_renewal(&harness).await;
    assert!(differences.is_empty(), "expired credentials: {}", differences.join("\n"));
}

async fn differences_after_renewal(harness: &Harness) -> Vec<String> {
    let stale = harness.sim.state().issue_credential(Some("stale".into()));
    harness.sim.state().revoke_credential(stale.id);
    let engine = harness.engine(vec![common::to_client(&stale)]);
    engine.run(&CrawlOptions::default()).await.expect("a crawl with a dead credential");
    drop(engine);
    harness.clock.advance(90_000.0);
    let engine = harness.engine(vec![harness.credential("renewed")]);
    engine.run(&CrawlOptions::default()).await.expect("a crawl after renewal");
    differences_from_truth(harness)
}
