//! The snapshot ladder is served between schedule fires: with metrics fired every 20
//! minutes, a rung that falls due at 14:03 is taken within a minute of 14:03. The
//! service runs in-process on the simulator's accelerated clock.

use std::sync::Arc;
use std::time::Duration;

use mpwatch_core::config::{CatchUp, Config, JobKind, RateLimit, ScheduleEntry};
use mpwatch_core::secrets::Secrets;
use mpwatch_core::time::{ClockMode, ControlledClock};
use mpwatch_core::{Biz, SourceKind};
use mpwatch_service::notify::Notifier;
use mpwatch_service::{Control, ServiceSetup};
use mpwatch_sim::SimConfig;
use mpwatch_store::accounts::{NewAccount, NewSource};
use mpwatch_store::{Store, StoreOptions};

/// 2025-11-10 12:00 UTC.
const T0: f64 = 1_762_776_000.0;

fn job(name: &str, cron: &str, job: JobKind) -> ScheduleEntry {
    ScheduleEntry {
        name: name.into(),
        cron: cron.into(),
        job,
        timezone: Some("UTC".into()),
        account: None,
        group: None,
        catch_up: CatchUp::None,
        jitter: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rung_due_between_fires_is_taken_within_a_minute_of_its_time() {
    // Two simulated minutes per real second.
    let clock = ControlledClock::new(ClockMode::Fixed { at: T0 });
    let mut sim_config = SimConfig {
        seed: 77,
        synthetic_accounts: 16,
        days: 2,
        page_bytes: 20_000,
        legacy_share: 0.0,
        clock: clock.clone(),
        ..SimConfig::default()
    };
    sim_config.scenario.credential_ttl = 365 * 86_400;
    let sim = mpwatch_sim::start(sim_config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("mpwatch.db");
    let accounts: Vec<Biz> = sim.state().world.accounts().iter().map(|a| a.biz.clone()).collect();
    {
        let mut store = Store::open(&db_path, &StoreOptions::default()).unwrap();
        store
            .write(|tx| {
                for biz in &accounts {
                    let sources = vec![NewSource { kind: SourceKind::ProfileExt, locator: biz.to_string() }];
                    tx.add_account(
                        &NewAccount { biz: Some(biz.clone()), sources, ..NewAccount::default() },
                        T0 as i64,
                    )?;
                }
                Ok(())
            })
            .unwrap();
    }
    let issued = sim.state().issue_credential(Some("phone-1".into()));
    let secrets = Secrets { client: vec![issued.to_client()], ..Secrets::default() };
    let fast = RateLimit { interval: Duration::from_millis(1), burst: 50, jitter: Duration::ZERO };
    let mut config = Config::default();
    config.wechat.base_url = url::Url::parse(sim.base_url()).unwrap();
    config.rate_limits.article_page = fast.clone();
    config.rate_limits.list_api = fast.clone();
    config.rate_limits.count_api = fast.clone();
    config.rate_limits.feed = fast;
    config.crawl.concurrency_per_host = 8;
    config.crawl.snapshot_ages =
        ["20m", "40m", "1h", "80m", "100m", "2h", "3h", "4h", "6h", "8h", "12h", "16h", "1d", "30h", "36h", "2d"]
            .iter()
            .map(|d| humantime::parse_duration(d).unwrap())
            .collect();
    // Discovery at the start (catch-up would need history), metrics every 20 minutes.
    config.schedule =
        vec![job("discover", "*/10 * * * *", JobKind::Discover), job("metrics", "*/20 * * * *", JobKind::Metrics)];
    clock.set(ClockMode::Accelerated { at: T0, scale: 120.0 });
    let setup = ServiceSetup {
        config,
        secrets,
        db_path: db_path.clone(),
        clock: Arc::new(clock.clone()),
        reload: Box::new(|| Err("no reload in this test".into())),
    };
    let (control, receiver) = tokio::sync::mpsc::channel(1);
    let service = tokio::spawn(mpwatch_service::run(setup, receiver, Notifier::from_env()));
    // 45 simulated minutes.
    let end = T0 as i64 + 45 * 60;
    while clock_now(&clock) < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    control.send(Control::Stop).await.unwrap();
    service.await.unwrap().unwrap();

    let store = Store::open(&db_path, &StoreOptions::default()).unwrap();
    let rows: Vec<(i64, i64, i64, i64)> = store
        .connection()
        .prepare(
            "SELECT a.published_at + s.rung_seconds, s.observed_at, a.first_seen_at, s.rung_seconds
             FROM metric_snapshots s JOIN articles a ON a.id = s.article_id WHERE s.rung_seconds > 0",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Rungs that fell due while the article was known and the service ran (the first
    // metrics fire is at T0 + 20 min; before it, discovery runs).
    let mut checked = 0;
    for (due, observed, first_seen, rung) in rows {
        if due > first_seen + 60 && due > T0 as i64 + 60 {
            let late = observed - due;
            assert!((0..=60).contains(&late), "rung {rung} due at {due} taken {late} s late");
            checked += 1;
        }
    }
    let summary: Vec<(String, i64)> = store
        .connection()
        .prepare("SELECT job || ':' || result, count(*) FROM crawl_runs GROUP BY 1")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let articles: i64 = store.connection().query_row("SELECT count(*) FROM articles", [], |r| r.get(0)).unwrap();
    let snapshots: i64 =
        store.connection().query_row("SELECT count(*) FROM metric_snapshots", [], |r| r.get(0)).unwrap();
    assert!(
        checked >= 5,
        "only {checked} rungs fell due during the run ({articles} articles, {snapshots} snapshots, runs {summary:?})"
    );
}

fn clock_now(clock: &ControlledClock) -> i64 {
    mpwatch_core::time::Clock::now(clock)
}
