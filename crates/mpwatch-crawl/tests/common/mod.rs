//! A simulator, a database with the world's accounts, and an engine pointed at both.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use mpwatch_core::config::{Config, RateLimit};
use mpwatch_core::secrets::{ClientCredential, Secret, Secrets};
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
        let mut store = self.store();
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
    ClientCredential {
        name: credential.name.clone(),
        uin: Secret::new(credential.uin.clone()),
        key: Secret::new(credential.key.clone()),
        pass_ticket: Secret::new(credential.pass_ticket.clone()),
        appmsg_token: Secret::new(credential.appmsg_token.clone()),
        cookie: Some(Secret::new(credential.cookie.clone())),
        user_agent: None,
    }
}

/// Row count of a table.
pub fn count(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |row| row.get(0)).unwrap()
}
