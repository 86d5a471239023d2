//! A simulator, a database with the world's accounts, and an engine pointed at both.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use mpwatch_core::config::{Config, RateLimit};
use mpwatch_core::secrets::{ClientCredential, Secrets};
use mpwatch_core::time::{ClockMode, ControlledClock};
use mpwatch_core::{Biz, SourceKind};
use mpwatch_crawl::Engine;
use mpwatch_sim::{SimConfig, SimCredential, SimHandle};
use mpwatch_store::accounts::{NewAccount, NewSource};
use mpwatch_store::{Store, StoreOptions};

/// 2025-11-10 12:00 UTC.
pub const T0: f64 = 1_762_776_000.0;

pub struct Harness {
    pub sim: SimHandle,
    pub clock: ControlledClock,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

pub fn fast_limit() -> RateLimit {
    RateLimit { interval: Duration::from_millis(1), burst: 50, jitter: Duration::ZERO }
}

impl Harness {
    /// A sim with a small world on a fixed clock, and a config pointing at it.
    pub async fn new(seed: u64, synthetic_accounts: usize, days: i64, tweak: impl FnOnce(&mut SimConfig)) -> Harness {
        let clock = ControlledClock::new(ClockMode::Fixed { at: T0 });
        let mut sim_config = SimConfig {
            seed,
            synthetic_accounts,
            days,
            page_bytes: 30_000,
            legacy_share: 0.3,
            clock: clock.clone(),
            ..SimConfig::default()
        };
        sim_config.scenario.credential_ttl = 365 * 86_400;
        tweak(&mut sim_config);
        let sim = mpwatch_sim::start(sim_config).await.expect("start simulator");
        let mut config = Config::default();
        config.wechat.base_url = url::Url::parse(sim.base_url()).unwrap();
        config.http.connect_timeout = Duration::from_secs(2);
        config.http.read_timeout = Duration::from_secs(5);
        config.http.total_timeout = Duration::from_secs(10);
        config.rate_limits.article_page = fast_limit();
        config.rate_limits.list_api = fast_limit();
        config.rate_limits.count_api = fast_limit();
        config.rate_limits.feed = fast_limit();
        config.crawl.concurrency_per_host = 8;
        Harness { sim, clock, dir: tempfile::tempdir().unwrap(), config }
    }

    pub fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("mpwatch.db")
    }

    pub fn store(&self) -> Store {
        Store::open(&self.db_path(), &StoreOptions::default()).unwrap()
    }

    /// Adds every account of the world (or the first `limit`) with the given sources.
    pub fn add_accounts(&self, limit: usize, kinds: &[SourceKind]) {
        self.add_accounts_to(&mut self.store(), limit, kinds);
    }

    /// [`Harness::add_accounts`] into another database (a PostgreSQL one, say).
    pub fn add_accounts_to(&self, store: &mut Store, limit: usize, kinds: &[SourceKind]) {
        store
            .write(|tx| {
                for account in self.sim.state().world.accounts().iter().take(limit) {
                    let sources = kinds
                        .iter()
                        .map(|kind| NewSource {
                            kind: *kind,
                            locator: match kind {
                                SourceKind::Feed => self.sim.feed_url(account, "atom"),
                                _ => account.biz.to_string(),
                            },
                        })
                        .collect();
                    tx.add_account(
                        &NewAccount { biz: Some(account.biz.clone()), sources, ..NewAccount::default() },
                        T0 as i64,
                    )?;
                }
                Ok(())
            })
            .unwrap();
    }

    pub fn credential(&self, name: &str) -> ClientCredential {
        to_client(&self.sim.state().issue_credential(Some(name.into())))
    }

    pub fn engine(&self, credentials: Vec<ClientCredential>) -> Arc<Engine> {
        let secrets = Secrets { client: credentials, ..Secrets::default() };
        Arc::new(Engine::new(self.store(), self.config.clone(), secrets, Arc::new(self.clock.clone())).unwrap())
    }

    /// An engine over another database with its own config (a cluster node's, say).
    pub fn engine_on(&self, store: Store, config: Config, credentials: Vec<ClientCredential>) -> Arc<Engine> {
        let secrets = Secrets { client: credentials, ..Secrets::default() };
        Arc::new(Engine::new(store, config, secrets, Arc::new(self.clock.clone())).unwrap())
    }

    /// An engine whose alerts arrive on the returned channel.
    pub fn engine_with_alerts(
        &self,
        credentials: Vec<ClientCredential>,
    ) -> (Arc<Engine>, tokio::sync::mpsc::UnboundedReceiver<mpwatch_crawl::alerts::Alert>) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let secrets = Secrets { client: credentials, ..Secrets::default() };
        let engine = Engine::new(self.store(), self.config.clone(), secrets, Arc::new(self.clock.clone()))
            .unwrap()
            .with_alerts(mpwatch_crawl::alerts::Alerts::to(sender));
        (Arc::new(engine), receiver)
    }

    pub fn truth(&self) -> Vec<mpwatch_sim::TruthArticle> {
        mpwatch_sim::server::truth_at(&self.sim.state().world, self.sim.state().now())
    }

    pub fn biz(&self, index: usize) -> Biz {
        self.sim.state().world.accounts()[index].biz.clone()
    }
}

pub fn to_client(credential: &SimCredential) -> ClientCredential {
    credential.to_client()
}

/// Row count of a table.
pub fn count(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |row| row.get(0)).unwrap()
}

/// Compares the database with the simulator's truth now: every article present once
/// with its status (and for readable ones title, publish time, kind and a body), every
/// snapshot's counts equal to the truth at the instant it was observed, and every
/// readable article with at least one snapshot. Returns the differences (empty: equal).
pub fn differences_from_truth(harness: &Harness) -> Vec<String> {
    let world = &harness.sim.state().world;
    let truth = harness.truth();
    let store = harness.store();
    let mut differences = Vec::new();
    let stored = count(&store, "SELECT count(*) FROM articles");
    if stored != truth.len() as i64 {
        differences.push(format!("{stored} articles stored, the truth has {}", truth.len()));
    }
    let mut truth_by_time: std::collections::HashMap<
        i64,
        std::collections::HashMap<String, mpwatch_sim::TruthArticle>,
    > = std::collections::HashMap::new();
    for expected in &truth {
        let Some(article) = store.article_by_key(&expected.key).unwrap() else {
            differences.push(format!("missing {}", expected.url));
            continue;
        };
        if article.status != expected.status {
            differences.push(format!("{}: status {:?}, truth {:?}", expected.url, article.status, expected.status));
            continue;
        }
        if expected.status != mpwatch_core::ArticleStatus::Ok {
            continue;
        }
        if article.title.as_deref() != Some(expected.title.as_str()) {
            differences.push(format!("{}: title {:?}, truth {:?}", expected.url, article.title, expected.title));
        }
        if article.published_at != Some(expected.published_at) {
            differences.push(format!("{}: published_at {:?}", expected.url, article.published_at));
        }
        if article.kind != expected.kind {
            differences.push(format!("{}: kind {:?}, truth {:?}", expected.url, article.kind, expected.kind));
        }
        if !article.content_text.as_deref().is_some_and(|t| !t.is_empty() && !t.contains('\u{fffd}')) {
            differences.push(format!("{}: no body, or a garbled one", expected.url));
        }
        let snapshots = store.snapshots_of(article.id).unwrap();
        if snapshots.is_empty() {
            differences.push(format!("{}: no snapshot", expected.url));
        }
        for stored in &snapshots {
            let at = stored.snapshot.observed_at;
            let then = truth_by_time.entry(at).or_insert_with(|| {
                mpwatch_sim::server::truth_at(world, at).into_iter().map(|a| (a.url.clone(), a)).collect()
            });
            let Some(then) = then.get(&expected.url) else {
                differences.push(format!("{}: snapshot at {at} before publication", expected.url));
                continue;
            };
            let counts = &then.counts;
            let snapshot = &stored.snapshot;
            if snapshot.reads != Some(counts.reads)
                || snapshot.likes != Some(counts.likes)
                || snapshot.wows != Some(counts.wows)
                || snapshot.shares != Some(counts.shares)
                || snapshot.comments != Some(counts.comments)
            {
                differences.push(format!("{}: counts at {at} {snapshot:?}, truth {counts:?}", expected.url));
            }
        }
    }
    differences
}
