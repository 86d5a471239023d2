//! What the crawl engine is: its parts, its options and what stops it. The run loop is
//! in `run`, the work handlers in `work`, fetching in `http`, sources in `sources`.

use std::collections::BTreeMap;
use std::sync::Arc;

use mpwatch_core::CrawlTrigger;
use mpwatch_core::config::Config;
use mpwatch_core::secrets::{BackendSession, Secrets};
use mpwatch_core::time::{Clock, UnixSeconds};
use mpwatch_store::Store;
use mpwatch_store::runs::RunCounts;

use crate::alerts::Alerts;
use crate::cooldown::Cooldowns;
use crate::credential_leases::CredentialLeases;
use crate::credentials::CredentialPool;
use crate::db::Db;
pub use crate::error::CrawlError;
use crate::http::{Http, RequestTotals};
use crate::run::RunScope;
use crate::sources::{RobotsCache, SourceContext};

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// When no work is due any more (`mpwatch crawl`).
    Idle,
    /// Keep going (rediscovering, taking ladder rungs as they fall due) until the
    /// clock reaches this instant.
    Time(UnixSeconds),
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct CrawlOptions {
    /// Only these accounts (row ids); empty: every enabled account.
    pub accounts: Vec<i64>,
    /// Extra article URLs to fetch.
    pub urls: Vec<String>,
    /// Ask sources for articles and fetch pages.
    pub pages: bool,
    /// Take count snapshots.
    pub metrics: bool,
    /// Page profile_ext lists all the way back instead of stopping at known articles.
    pub backfill: bool,
    /// What started it.
    pub trigger: CrawlTrigger,
    /// When it ends.
    pub until: Until,
    /// How often sources are asked again while running until a time.
    pub rediscover_every: i64,
    /// The job name recorded in `crawl_runs` (`crawl`, or a schedule's name).
    pub job: String,
    /// The ad-hoc request (`crawl_requests.id`) this run serves, linked to the run as
    /// soon as it starts so that the requester can follow it.
    pub request_id: Option<i64>,
}

impl Default for CrawlOptions {
    fn default() -> Self {
        CrawlOptions {
            accounts: Vec::new(),
            urls: Vec::new(),
            pages: true,
            metrics: true,
            backfill: false,
            trigger: CrawlTrigger::Adhoc,
            until: Until::Idle,
            rediscover_every: 3600,
            job: "crawl".to_string(),
            request_id: None,
        }
    }
}

/// The closing summary of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CrawlSummary {
    /// Run id in `crawl_runs`.
    pub run_id: i64,
    /// Totals.
    pub counts: RunCounts,
    /// Requests by outcome class (`ok`, `deleted`, `verification`, `timeout`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Cooldowns entered.
    pub cooldowns: u64,
    /// Work items still waiting (retries, future ladder rungs, pending credentials).
    pub queued: i64,
    /// How it ended.
    pub result: String,
    /// Why, when it did not end `ok` (the error, or the hosts found unreachable).
    pub message: Option<String>,
    /// Wall-clock duration.
    pub duration_ms: u64,
}

/// The crawl engine.
#[derive(Debug)]
pub struct Engine {
    pub(crate) db: Db,
    pub(crate) config: Arc<Config>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: Http,
    pub(crate) cooldowns: Cooldowns,
    pub(crate) pool: CredentialPool,
    /// Which credential sets this node may use now.
    pub(crate) credential_leases: CredentialLeases,
    pub(crate) backend: Option<BackendSession>,
    pub(crate) robots: RobotsCache,
    /// Where alerts go.
    pub(crate) alerts: Alerts,
    /// Who holds this engine's leases (`<pid>@<host>`).
    pub(crate) holder: String,
    /// This crawler's node (`''` on SQLite).
    pub(crate) node: String,
    /// The snapshot ladder's rungs (ages in seconds).
    pub(crate) rungs: Vec<i64>,
    /// Short links of pages fetched whose article waits for its group commit: a feed's
    /// link to one of them is not fetched again meanwhile (the database does not know
    /// it yet).
    pub(crate) short_links_in_writing: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Engine {
    /// An engine over an open store, with its configuration, secrets and clock.
    pub fn new(
        mut store: Store,
        config: Config,
        secrets: Secrets,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, CrawlError> {
        // The sets of the secrets file are usable until the server says otherwise.
        let now = clock.now();
        store.write(|tx| {
            for credential in &secrets.client {
                tx.set_credential_state(&credential.name, "valid", now)?;
            }
            Ok(())
        })?;
        let rungs = config.crawl.snapshot_ages.iter().map(|d| d.as_secs() as i64).collect();
        let node = crate::holder::node_name(&config, store.connection().is_postgres());
        let config = Arc::new(config);
        let db = Db::with_gather(store, config.crawl.commit_gather);
        let lease_seconds = config.crawl.lease.as_secs() as i64;
        Ok(Engine {
            http: Http::new(config.clone(), clock.clone(), db.clone())?,
            cooldowns: Cooldowns::new(config.clone(), clock.clone(), db.clone(), Alerts::default(), node.clone()),
            pool: CredentialPool::new(secrets.client),
            credential_leases: CredentialLeases::new(db.clone(), clock.clone(), node.clone(), lease_seconds),
            node,
            backend: secrets.backend,
            robots: RobotsCache::default(),
            alerts: Alerts::default(),
            holder: crate::holder::holder_name(),
            db,
            config,
            clock,
            rungs,
            short_links_in_writing: Default::default(),
        })
    }

    /// Sends the engine's alerts to `alerts` (the service's dispatcher).
    pub fn with_alerts(mut self, alerts: Alerts) -> Engine {
        self.cooldowns =
            Cooldowns::new(self.config.clone(), self.clock.clone(), self.db.clone(), alerts.clone(), self.node.clone());
        self.alerts = alerts;
        self
    }

    /// Counts requests into `totals` (shared across the engines of one service).
    pub fn with_request_totals(mut self, totals: Arc<RequestTotals>) -> Engine {
        self.http.totals = totals;
        self
    }

    /// Shares `other`'s rate limiters (same limits): a service reloading its config
    /// keeps one budget for the runs in flight and the new ones.
    pub fn with_rate_limiters_of(mut self, other: &Engine) -> Engine {
        self.http.limiters = other.http.limiters.clone();
        self
    }

    /// Requests by class and outcome since the engine (or its shared totals) began.
    pub fn request_totals(&self) -> Arc<RequestTotals> {
        self.http.totals.clone()
    }

    /// The credential pool (for summaries).
    pub fn credentials(&self) -> &CredentialPool {
        &self.pool
    }

    /// The crawl clock's current time.
    pub(crate) fn now(&self) -> UnixSeconds {
        self.clock.now()
    }

    /// Until when an item waits that cannot be done here before `until` for a reason
    /// of this node's own (its host's cooldown, its credential sets all resting or held
    /// by other nodes). Alone (SQLite), it waits until then. In a cluster another node
    /// may do it now: it goes back to the queue at once, and this node leases no more
    /// of its kind meanwhile (the run loop asks [`Engine::page_host_rests_until`] and the
    /// pool), so it is not taken and given back again and again.
    pub(crate) fn wait_here_or_give_back(&self, until: UnixSeconds) -> UnixSeconds {
        if self.node.is_empty() { until } else { self.now() }
    }

    /// The end of this node's cooldown of the WeChat host, while it runs: pages wait.
    pub(crate) async fn page_host_rests_until(&self) -> Result<Option<UnixSeconds>, CrawlError> {
        self.cooldowns.cooling_until(crate::cooldown::Scope::Host, &self.http.wechat_host()).await
    }

    /// What sources may use, counting into `run`.
    pub(crate) fn source_context<'a>(&'a self, run: &'a RunScope) -> SourceContext<'a> {
        SourceContext {
            run,
            http: &self.http,
            cooldowns: &self.cooldowns,
            credentials: &self.pool,
            credential_leases: &self.credential_leases,
            backend: self.backend.as_ref(),
            robots: &self.robots,
            db: &self.db,
            alerts: &self.alerts,
        }
    }
}
