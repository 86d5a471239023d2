//! Politeness, credentials, cooldowns, deletions and the ladder, against the simulator.

mod common;

use std::time::Duration;

use common::{Harness, T0, count};
use mpwatch_core::config::RateLimit;
use mpwatch_core::time::ClockMode;
use mpwatch_core::{ArticleStatus, SourceKind};
use mpwatch_crawl::alerts::AlertKind;
use mpwatch_crawl::credentials::CredentialState;
use mpwatch_crawl::{CrawlOptions, Until};
use mpwatch_sim::scenario::{Limit, Quota};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_and_is_used() {
    let mut harness = Harness::new(201, 1, 6, |_| {}).await;
    harness.add_accounts(4, &[SourceKind::ProfileExt]);
    // One page per 100 ms in the long run, bursts of at most 10.
    harness.config.rate_limits.article_page =
        RateLimit { interval: Duration::from_millis(100), burst: 10, jitter: Duration::ZERO };
    let engine = harness.engine(vec![harness.credential("phone-1")]);
    engine.run(&CrawlOptions { metrics: false, ..CrawlOptions::default() }).await.unwrap();
    let pages: Vec<u64> = harness
        .sim
        .state()
        .requests_since(0)
        .into_iter()
        .filter(|r| r.path.starts_with("/s"))
        .map(|r| r.at_ms)
        .collect();
    assert!(pages.len() >= 40, "{} page requests", pages.len());
    // Over any window T at most burst + T / interval (one more for arrival jitter: the
    // server sees arrivals, not admissions).
    for window_ms in [1u64, 100, 1000, 3000] {
        let bound = 10 + window_ms as usize / 100 + 1;
        for (i, start) in pages.iter().enumerate() {
            let in_window = pages[i..].iter().take_while(|t| **t < start + window_ms).count();
            assert!(in_window <= bound, "{in_window} page requests in the {window_ms} ms after {start}");
        }
    }
    // The long-run rate: n requests take at least (n - burst) intervals.
    let span = pages.last().unwrap() - pages.first().unwrap();
    assert!(span + 100 >= (pages.len() as u64 - 10) * 100, "{} requests in {span} ms", pages.len());
    // And the limit is used: the achieved rate is close to it.
    let rate = pages.len() as f64 / (span as f64 / 1000.0 + 1.0);
    assert!(rate >= 0.8 * 10.0 * pages.len() as f64 / (pages.len() as f64 + 10.0), "achieved {rate:.2}/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_expiry_raises_the_alert_rotates_and_counts_wait_for_a_new_set() {
    let harness = Harness::new(203, 1, 5, |_| {}).await;
    harness.add_accounts(3, &[SourceKind::ProfileExt]);
    let first = harness.credential("phone-1");
    let second = harness.credential("phone-2");
    // phone-1 is dead before the crawl starts: the first use gets "no session".
    assert!(harness.sim.state().revoke_credential(1));
    let (engine, mut alerts) = harness.engine_with_alerts(vec![first.clone(), second.clone()]);
    let summary = engine.run(&CrawlOptions::default()).await.unwrap();
    let states = engine.credentials().states();
    assert_eq!(states[0], ("phone-1".to_string(), CredentialState::Expired));
    let alert = alerts.try_recv().unwrap();
    assert_eq!((alert.kind, alert.subject.as_str()), (AlertKind::CredentialExpired, "phone-1"));
    assert!(alerts.try_recv().is_err(), "one alert: phone-2 is still usable");
    assert_eq!(
        count(&harness.store(), "SELECT count(*) FROM credential_states WHERE name = 'phone-1' AND state = 'expired'"),
        1
    );
    assert_eq!(states[1].1, CredentialState::Active);
    assert!(summary.counts.snapshots > 0, "rotation went on with phone-2");
    let store = harness.store();
    let snapshots = count(&store, "SELECT count(*) FROM metric_snapshots");

    // Both sets dead, a day later: pages are crawled, counts wait in the queue.
    assert!(harness.sim.state().revoke_credential(2));
    harness.clock.advance(86_400.0 + 3600.0);
    let (engine, mut alerts) = harness.engine_with_alerts(vec![first, second]);
    let summary = engine.run(&CrawlOptions::default()).await.unwrap();
    assert_eq!(summary.counts.snapshots, 0);
    let kinds: Vec<AlertKind> = std::iter::from_fn(|| alerts.try_recv().ok()).map(|a| a.kind).collect();
    assert!(kinds.contains(&AlertKind::NoCredentials), "{kinds:?}");
    assert_eq!(count(&store, "SELECT count(*) FROM metric_snapshots"), snapshots);
    let waiting = count(
        &store,
        "SELECT count(*) FROM work_queue WHERE kind = 'metrics' AND state = 'pending' AND not_before <= (SELECT max(observed_at) FROM metric_snapshots) + 90000",
    );
    assert!(waiting > 0, "due counts are still queued");
    assert_eq!(count(&store, "SELECT count(*) FROM work_queue WHERE state = 'failed'"), 0, "nothing dropped");

    // A fresh set: the waiting counts are taken.
    let fresh = harness.credential("phone-3");
    let engine = harness.engine(vec![fresh]);
    harness.clock.advance(120.0);
    let summary = engine.run(&CrawlOptions::default()).await.unwrap();
    assert!(summary.counts.snapshots > 0);
    assert!(count(&store, "SELECT count(*) FROM metric_snapshots") > snapshots);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_and_frequency_control_cool_down_then_crawling_resumes() {
    let harness = Harness::new(205, 2, 5, |config| {
        config.scenario.quota = Quota {
            per_client: Some(Limit { limit: 25, window: 60 }),
            per_credential: Some(Limit { limit: 8, window: 60 }),
            cooldown: 600,
        };
    })
    .await;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt]);
    let credential = harness.credential("phone-1");
    let store = harness.store();
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 40, "the crawl never finished");
        let engine = harness.engine(vec![credential.clone()]);
        engine.run(&CrawlOptions::default()).await.unwrap();
        let cooling = store.active_cooldowns(harness.sim.state().now()).unwrap();
        let due = count(
            &store,
            &format!(
                "SELECT count(*) FROM work_queue WHERE state = 'pending' AND not_before <= {}",
                harness.sim.state().now()
            ),
        );
        if cooling.is_empty()
            && due == 0
            && count(&store, "SELECT count(*) FROM articles WHERE status = 'pending'") == 0
        {
            break;
        }
        // Let the cooldowns run out.
        harness.clock.advance(
            cooling.iter().map(|c| c.until).max().map_or(60, |until| until - harness.sim.state().now() + 1) as f64,
        );
    }
    assert!(runs > 1, "the quota never triggered");
    assert!(count(&store, "SELECT count(*) FROM fetch_log WHERE outcome = 'verification'") > 0);
    // Every article of the world is stored; none was taken for deleted because of a
    // verification page, and every one that is live has its content.
    let truth = harness.truth();
    assert_eq!(count(&store, "SELECT count(*) FROM articles"), truth.len() as i64);
    for expected in &truth {
        let article = store.article_by_key(&expected.key).unwrap().unwrap();
        if article.status != expected.status {
            // Only a later deletion we have not re-checked yet may differ.
            assert_eq!(article.status, ArticleStatus::Ok, "{}", expected.url);
        }
        if article.status == ArticleStatus::Ok {
            assert!(article.content_text.is_some(), "{}", expected.url);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_article_keeps_its_content_and_gets_its_time() {
    let harness = Harness::new(207, 8, 4, |config| config.legacy_share = 0.0).await;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt]);
    let credential = harness.credential("phone-1");
    harness.engine(vec![credential.clone()]).run(&CrawlOptions::default()).await.unwrap();
    // An article alive now that its publisher deletes later.
    let world = &harness.sim.state().world;
    let doomed = world
        .accounts()
        .iter()
        .flat_map(|a| world.articles_of(a, T0 as i64))
        .find(|a| a.deleted_at.is_some_and(|d| d > T0 as i64 + 86_400) && a.status_at(T0 as i64) == ArticleStatus::Ok)
        .expect("a world with a later deletion");
    let store = harness.store();
    let before = store.article_by_key(&doomed.key).unwrap().unwrap();
    assert_eq!(before.status, ArticleStatus::Ok);
    let deleted_at = doomed.deleted_at.unwrap();
    harness.clock.set(ClockMode::Fixed { at: deleted_at as f64 + 3600.0 });
    harness.engine(vec![credential]).run(&CrawlOptions::default()).await.unwrap();
    let after = store.article_by_key(&doomed.key).unwrap().unwrap();
    assert_eq!(after.status, ArticleStatus::Deleted);
    assert_eq!(after.status_changed_at, Some(deleted_at + 3600));
    assert_eq!(after.content_text, before.content_text);
    assert!(after.content_text.is_some());
    assert_eq!(after.title, before.title);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ladder_takes_each_rung_in_its_window_as_simulated_days_pass() {
    let mut harness = Harness::new(209, 2, 1, |config| config.legacy_share = 0.0).await;
    harness.add_accounts(4, &[SourceKind::ProfileExt]);
    let rungs = [3600u64, 6 * 3600, 24 * 3600];
    harness.config.crawl.snapshot_ages = rungs.iter().map(|r| Duration::from_secs(*r)).collect();
    let credential = harness.credential("phone-1");
    // Two simulated hours per real second, for 30 simulated hours.
    harness.clock.set(ClockMode::Accelerated { at: T0, scale: 7200.0 });
    let end = T0 as i64 + 30 * 3600;
    let engine = harness.engine(vec![credential]);
    engine
        .run(&CrawlOptions { until: Until::Time(end), rediscover_every: 3600, ..CrawlOptions::default() })
        .await
        .unwrap();

    let store = harness.store();
    let world = &harness.sim.state().world;
    let mut checked = 0;
    for account in world.accounts().iter().take(4) {
        for article in world.articles_of(account, end) {
            let Some(stored) = store.article_by_key(&article.key).unwrap() else { continue };
            for snapshot in store.snapshots_of(stored.id).unwrap() {
                let rung = snapshot.snapshot.rung_seconds.unwrap();
                let age = snapshot.age_seconds.unwrap();
                let next = rungs.iter().map(|r| *r as i64).find(|r| *r > rung).unwrap_or(i64::MAX);
                let first = rungs[0] as i64;
                if rung == 0 {
                    assert!(age < first, "first sight at age {age}");
                } else {
                    assert!(age >= rung && age < next, "rung {rung} taken at age {age}");
                }
                // The stored counts are the world's at the observation time (the clock
                // runs fast, so allow the few simulated minutes a request takes).
                let observed = snapshot.snapshot.observed_at;
                let low = article.counts_at(account, observed - 600).reads;
                let high = article.counts_at(account, observed + 600).reads;
                let reads = snapshot.snapshot.reads.unwrap();
                assert!(low <= reads && reads <= high, "{low} <= {reads} <= {high}");
                checked += 1;
            }
            // Every rung that fell due during the run was taken (articles published
            // before the start may have missed early rungs, which are never invented).
            if article.published_at >= T0 as i64 && article.status_at(end) == ArticleStatus::Ok {
                let taken: Vec<i64> =
                    store.snapshots_of(stored.id).unwrap().iter().filter_map(|s| s.snapshot.rung_seconds).collect();
                for rung in rungs.iter().map(|r| *r as i64).filter(|r| article.published_at + r + 3600 <= end) {
                    assert!(taken.contains(&rung), "{}: rung {rung} missing from {taken:?}", article.key);
                }
            }
        }
    }
    assert!(checked > 20, "{checked} snapshots checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_failing_run_after_run_raises_an_alert_on_the_third() {
    let mut harness = Harness::new(211, 0, 1, |_| {}).await;
    harness.config.http.connect_timeout = Duration::from_millis(500);
    {
        let mut store = harness.store();
        store
            .write(|tx| {
                let source = mpwatch_store::accounts::NewSource {
                    kind: SourceKind::Feed,
                    // Nothing listens on port 1.
                    locator: "http://127.0.0.1:1/feeds/dead.atom".into(),
                };
                tx.add_account(
                    &mpwatch_store::accounts::NewAccount { sources: vec![source], ..Default::default() },
                    T0 as i64,
                )?;
                Ok(())
            })
            .unwrap();
    }
    let mut raised = Vec::new();
    for run in 1..=3 {
        let (engine, mut alerts) = harness.engine_with_alerts(Vec::new());
        engine.run(&CrawlOptions::default()).await.unwrap();
        raised.extend(std::iter::from_fn(|| alerts.try_recv().ok()).map(|a| (run, a.kind, a.subject)));
        // Past the failing source's retry time.
        harness.clock.advance(86_400.0 * 2.0);
    }
    assert_eq!(raised, vec![(3, AlertKind::SourceFailing, "source #1".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_paging_that_stops_part_way_resumes_where_it_stopped() {
    // One credential allowed three requests an hour: the sweep through a long history
    // stops part-way, three times.
    let harness = Harness::new(211, 0, 90, |config| {
        config.scenario.quota =
            Quota { per_client: None, per_credential: Some(Limit { limit: 3, window: 3600 }), cooldown: 3600 };
    })
    .await;
    harness.add_accounts(1, &[SourceKind::ProfileExt]);
    let credential = harness.credential("phone-1");
    let store = harness.store();
    // List pages answered (frequency-control answers are logged `throttled`).
    let list_requests =
        || count(&store, "SELECT count(*) FROM fetch_log WHERE url_class = 'list_api' AND outcome = 'ok'") as usize;
    let listed = || count(&store, "SELECT count(*) FROM articles");
    let source = || store.list_accounts(None).unwrap()[0].sources[0].clone();
    // Count requests share the credential's quota; leave them out to count list pages.
    let lists_only = CrawlOptions { metrics: false, ..CrawlOptions::default() };

    harness.engine(vec![credential.clone()]).run(&lists_only).await.unwrap();
    let first = source();
    assert!(first.listing.resume_offset.is_some_and(|offset| offset > 0), "{first:?}");
    assert_ne!(first.health, mpwatch_core::SourceHealth::Ok, "a sweep that stopped part-way is not ok");
    let after_first = listed();
    assert!(after_first > 0, "what the first pages listed is stored");

    let mut runs = 1;
    while source().listing.resume_offset.is_some() {
        runs += 1;
        assert!(runs < 30, "the sweep never finished: {:?}", source());
        let before = listed();
        harness.clock.advance(3601.0);
        harness.engine(vec![credential.clone()]).run(&lists_only).await.unwrap();
        assert!(
            listed() > before || source().listing.resume_offset.is_none(),
            "run {runs} listed nothing new: {:?} {:?}",
            source(),
            store.active_cooldowns(harness.sim.state().now()).unwrap()
        );
    }
    assert!(runs >= 3, "{runs} runs: the quota never stopped the sweep");
    let done = source();
    assert_eq!(done.health, mpwatch_core::SourceHealth::Ok);
    assert!(done.listing.covered_through.is_some());
    // Every article of the account is there, and each list page was asked for at most
    // twice (a resumed sweep re-reads one page of overlap).
    let truth: Vec<_> = harness.truth().into_iter().filter(|a| a.account_index == 0).collect();
    assert_eq!(listed(), truth.len() as i64);
    let pushes: std::collections::BTreeSet<i64> = truth.iter().map(|a| a.published_at).collect();
    let pages = pushes.len().div_ceil(10);
    assert!(list_requests() <= pages + runs, "{} list requests for {pages} pages in {runs} runs", list_requests());

    // A later plain crawl stops at what the sweep covered: one page.
    let before = list_requests();
    harness.clock.advance(3601.0);
    harness.engine(vec![credential]).run(&lists_only).await.unwrap();
    assert_eq!(list_requests() - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adhoc_crawl_asks_a_backing_off_source_at_once_and_a_scheduled_run_waits() {
    use mpwatch_sim::scenario::{Endpoint, Fault, FaultRule};
    let harness = Harness::new(215, 0, 8, |config| {
        config.scenario.faults.push(FaultRule {
            endpoint: Endpoint::ProfileExt,
            fault: Fault::Garbage,
            probability: Some(1.0),
            next: None,
        });
    })
    .await;
    harness.add_accounts(2, &[SourceKind::ProfileExt]);
    let credential = harness.credential("phone-1");
    harness.engine(vec![credential.clone()]).run(&CrawlOptions::default()).await.unwrap();
    let store = harness.store();
    let sources: Vec<_> = store.list_accounts(None).unwrap().into_iter().flat_map(|a| a.sources).collect();
    assert!(sources.iter().all(|s| s.consecutive_failures == 1 && s.next_retry_at > Some(harness.sim.state().now())));

    // The fault is fixed. A scheduled run respects the sources' retry time...
    harness.sim.state().set_scenario(mpwatch_sim::scenario::Scenario::default());
    let scheduled = CrawlOptions { trigger: mpwatch_core::CrawlTrigger::Schedule, ..CrawlOptions::default() };
    harness.engine(vec![credential.clone()]).run(&scheduled).await.unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM articles"), 0);
    // ...and an ad-hoc crawl asks them now and completes the accounts.
    harness.engine(vec![credential]).run(&CrawlOptions::default()).await.unwrap();
    let truth = harness.truth().into_iter().filter(|a| a.account_index < 2).count();
    assert_eq!(count(&store, "SELECT count(*) FROM articles"), truth as i64);
}
