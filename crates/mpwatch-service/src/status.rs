//! What `mpwatch status` and the dashboard's status page show: the service, its jobs,
//! running work, the queue, sources, credential sets (names only, never a secret),
//! cooldowns, the alerts of the last 24 hours and the database. Read from the database
//! alone (a read-only connection does).

use mpwatch_core::config::Config;
use mpwatch_store::Store;
use mpwatch_store::accounts::Account;
use mpwatch_store::cooldowns::Cooldown;
use mpwatch_store::nodes::{CrawlerLock, NodeState};
use mpwatch_store::runs::RunRecord;
use mpwatch_store::service::{AlertRecord, CrawlRequest, CredentialStateRecord, QueueDepth};
use serde::Serialize;
use serde_json::{Value, json};

use crate::ServiceError;
use crate::jobs::jobs_of;
use crate::lock::lock_holder_alive;

/// One scheduled job: its schedule and its last and next fires.
#[derive(Debug, Serialize)]
pub struct JobStatus {
    /// `[[schedule]] name`.
    pub name: String,
    /// discover, metrics, index, maintenance.
    pub kind: String,
    /// The cron expression.
    pub cron: String,
    /// The zone the cron expression is read in.
    pub timezone: String,
    /// Last fire (unix seconds).
    pub last_fire_at: Option<i64>,
    /// ok, failed, skipped, ...
    pub last_result: Option<String>,
    /// When the last fire's run ended.
    pub last_finished_at: Option<i64>,
    /// The last run's message.
    pub last_message: Option<String>,
    /// The last run's `crawl_runs.id`.
    pub last_run_id: Option<i64>,
    /// Next fire (unix seconds).
    pub next_fire_at: Option<i64>,
}

/// A crawler node: who holds its lock, whether it lives, what it holds.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Its lock row and what it holds.
    #[serde(flatten)]
    pub state: NodeState,
    /// Whether its holder lives (a fresh heartbeat; on this host, its process exists).
    pub alive: bool,
}

/// Everything the status shows, read at `now`.
#[derive(Debug)]
pub struct Status {
    /// When it was read.
    pub now: i64,
    /// This process's node (`''` on SQLite, the one node).
    pub node: String,
    /// The service holding this node's crawler lock, if it is alive.
    pub service: Option<CrawlerLock>,
    /// A foreground `mpwatch crawl` holding this node's lock, if alive.
    pub foreground_crawl: Option<CrawlerLock>,
    /// Every node of the database (on SQLite, the one), alive or not.
    pub nodes: Vec<NodeStatus>,
    /// The configured jobs.
    pub jobs: Vec<JobStatus>,
    /// Runs in progress.
    pub running: Vec<RunRecord>,
    /// Queue items by kind and state.
    pub queue: Vec<QueueDepth>,
    /// Ad-hoc requests not yet done.
    pub requests: Vec<CrawlRequest>,
    /// Tracked accounts with their sources.
    pub accounts: Vec<Account>,
    /// Credential sets by name (never a secret).
    pub credentials: Vec<CredentialStateRecord>,
    /// Cooldowns in force.
    pub cooldowns: Vec<Cooldown>,
    /// Alerts of the last 24 hours.
    pub alerts: Vec<AlertRecord>,
    /// The database file.
    pub database: DatabaseStatus,
}

/// The database file.
#[derive(Debug, Serialize)]
pub struct DatabaseStatus {
    /// Its path.
    pub path: String,
    /// The main file's size.
    pub file_bytes: u64,
    /// The WAL's size.
    pub wal_bytes: u64,
    /// `PRAGMA user_version`.
    pub schema_version: i64,
    /// Articles waiting for the next batch of the full-text index (SQLite).
    pub waiting_for_search_index: i64,
}

impl Status {
    /// Reads the status of the database through `store`.
    pub fn read(store: &Store, config: &Config, now: i64) -> Result<Status, ServiceError> {
        let node = mpwatch_crawl::holder::node_name(config, store.connection().is_postgres());
        let nodes: Vec<NodeStatus> = store
            .nodes(now)?
            .into_iter()
            .map(|state| NodeStatus { alive: lock_holder_alive(&state.lock, now), state })
            .collect();
        let lock = nodes.iter().find(|n| n.state.lock.node == node && n.alive).map(|n| n.state.lock.clone());
        let alive = |role: &str| lock.clone().filter(|lock| lock.role == role);
        let states = store.job_states()?;
        let jobs = jobs_of(config)?
            .into_iter()
            .map(|job| {
                let state = states.iter().find(|s| s.name == job.entry.name);
                JobStatus {
                    name: job.entry.name.clone(),
                    kind: job.entry.job.as_str().to_string(),
                    cron: job.entry.cron.clone(),
                    timezone: config.job_timezone(&job.entry).to_string(),
                    last_fire_at: state.and_then(|s| s.last_fire_at),
                    last_result: state.and_then(|s| s.last_result.clone()),
                    last_finished_at: state.and_then(|s| s.last_finished_at),
                    last_message: state.and_then(|s| s.last_message.clone()),
                    last_run_id: state.and_then(|s| s.last_run_id),
                    next_fire_at: job.next_after(now),
                }
            })
            .collect();
        Ok(Status {
            now,
            service: alive("service"),
            foreground_crawl: alive("crawl"),
            node,
            nodes,
            jobs,
            running: store.running_runs()?,
            queue: store.queue_depth()?,
            requests: store.open_crawl_requests()?,
            accounts: store.list_accounts(None)?,
            credentials: store.credential_states()?,
            cooldowns: store.active_cooldowns(now)?,
            alerts: store.alerts_since(now - 86_400)?,
            database: {
                // The store's path: a PostgreSQL URL without its password.
                let (file_bytes, wal_bytes) = store.disk_usage()?;
                DatabaseStatus {
                    path: store.path().display().to_string(),
                    file_bytes,
                    wal_bytes,
                    schema_version: store.schema_version()?,
                    waiting_for_search_index: store.waiting_for_search_index()?,
                }
            },
        })
    }

    /// The enabled accounts' sources.
    pub fn sources(&self) -> impl Iterator<Item = (&Account, &mpwatch_store::accounts::Source)> {
        self.accounts.iter().filter(|a| a.enabled).flat_map(|a| a.sources.iter().map(move |s| (a, s)))
    }

    /// The status as one JSON object (`mpwatch status --json`, the dashboard's
    /// `/status.json`).
    pub fn to_json(&self) -> Value {
        let sources: Vec<Value> = self
            .sources()
            .map(|(a, s)| {
                json!({
                    "account_id": a.id, "account": a.display_name(), "source_id": s.id, "kind": s.kind.as_str(),
                    "health": s.health.as_str(), "consecutive_failures": s.consecutive_failures,
                    "last_ok_at": s.last_ok_at, "last_error": s.last_error, "next_retry_at": s.next_retry_at,
                })
            })
            .collect();
        json!({
            "now": self.now,
            "service": self.service.as_ref().map(|l| json!({"running": true, "holder": l.holder, "since": l.acquired_at, "heartbeat_at": l.heartbeat_at, "status": l.status}))
                .unwrap_or_else(|| json!({"running": false})),
            "foreground_crawl": self.foreground_crawl.as_ref().map(|l| json!({"holder": l.holder, "since": l.acquired_at})),
            "node": self.node,
            "nodes": self.nodes,
            "jobs": self.jobs,
            "running_runs": self.running,
            "queue": self.queue,
            "requests": self.requests,
            "sources": sources,
            "credentials": self.credentials,
            "cooldowns": self.cooldowns,
            "alerts_24h": self.alerts,
            "database": self.database,
        })
    }
}
