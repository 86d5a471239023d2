//! The run loop, the work-item handlers and the sources.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpwatch_core::config::Config;
use mpwatch_core::secrets::{BackendSession, ClientCredential, Secrets};
use mpwatch_core::time::{Clock, UnixSeconds};
use mpwatch_core::{ArticleKey, ArticleStatus, CrawlTrigger, SourceKind};
use mpwatch_store::articles::{ArticleRecord, Snapshot, UpsertOutcome};
use mpwatch_store::cooldowns::Cooldown;
use mpwatch_store::queue::WorkItem;
use mpwatch_store::runs::{FetchRecord, RunCounts, RunResult};
use mpwatch_store::{Store, StoreError};
use mpwatch_wechat::api::{self, ApiOutcome, ListedArticle};
use mpwatch_wechat::page::{ArticlePage, PageKind};
use mpwatch_wechat::url::{ArticleUrl, canonical_url};
use tokio::sync::Semaphore;
use tracing::{Instrument as _, debug, info, info_span, warn};

use crate::credentials::CredentialPool;
use crate::fetch::{self, FetchError, Fetched};
use crate::limiter::Limiter;
use crate::sources::{self, Source as _};

/// What stops a crawl (item failures are outcomes, recorded and retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrawlError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(FetchError),
    /// A background task died.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// Work item kinds.
const DISCOVER: &str = "discover";
const PAGE: &str = "page";
const METRICS: &str = "metrics";

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
    /// Wall-clock duration.
    pub duration_ms: u64,
}

/// Live counters, readable while a run goes on (progress bars).
#[derive(Debug, Default)]
pub struct Progress {
    /// Items finished (any outcome).
    pub processed: AtomicU64,
    /// Items leased so far.
    pub leased: AtomicU64,
    accounts: Mutex<HashSet<i64>>,
    found: AtomicU64,
    new: AtomicU64,
    updated: AtomicU64,
    snapshots: AtomicU64,
    failures: AtomicU64,
    cooldowns: AtomicU64,
    outcomes: Mutex<BTreeMap<String, u64>>,
}

impl Progress {
    fn outcome(&self, class: &str) {
        *self
            .outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(class.to_string())
            .or_default() += 1;
    }

    fn counts(&self) -> RunCounts {
        RunCounts {
            accounts: self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len() as i64,
            articles_found: self.found.load(Ordering::Relaxed) as i64,
            articles_new: self.new.load(Ordering::Relaxed) as i64,
            articles_updated: self.updated.load(Ordering::Relaxed) as i64,
            snapshots: self.snapshots.load(Ordering::Relaxed) as i64,
            failures: self.failures.load(Ordering::Relaxed) as i64,
        }
    }
}

/// The store shared by async tasks: every call runs on the blocking pool.
#[derive(Debug, Clone)]
pub(crate) struct Db(Arc<Mutex<Store>>);

impl Db {
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CrawlError> {
        let db = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut store)
        })
        .await
        .map_err(|e| CrawlError::Task(e.to_string()))?
        .map_err(CrawlError::from)
    }
}

/// What became of a work item (when the handler did not acknowledge it itself).
#[derive(Debug)]
enum Outcome {
    /// Acknowledged together with its effect.
    Done,
    /// Failed; try again at this instant.
    Retry(UnixSeconds, String),
    /// Not tried (cooldown, no credential); wait without using an attempt.
    Postpone(UnixSeconds, String),
    /// Give up.
    Fail(String),
}

/// The crawl engine.
#[derive(Debug)]
pub struct Engine {
    pub(crate) db: Db,
    pub(crate) config: Arc<Config>,
    clock: Arc<dyn Clock>,
    pub(crate) anonymous: reqwest::Client,
    credential_clients: Mutex<HashMap<String, reqwest::Client>>,
    pub(crate) pool: CredentialPool,
    pub(crate) backend: Option<BackendSession>,
    limiter: Limiter,
    host_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    cooldown_cache: Mutex<HashMap<(String, String), UnixSeconds>>,
    pub(crate) robots: tokio::sync::Mutex<HashMap<String, Option<Arc<texting_robots::Robot>>>>,
    holder: String,
    run_id: Mutex<Option<i64>>,
    /// Live counters.
    pub progress: Arc<Progress>,
    pub(crate) rungs: Vec<i64>,
}

/// `<pid>@<host>`: who holds leases.
fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{}@{host}", std::process::id())
}

/// Whether the lease holder `<pid>@<host>` is a live process on this host.
fn holder_alive(holder: &str) -> bool {
    let Some((pid, host)) = holder.split_once('@') else { return false };
    let here = holder_name();
    let this_host = here.split_once('@').map(|(_, h)| h).unwrap_or_default();
    if host != this_host {
        // Another machine's lease: it expires on its own.
        return true;
    }
    pid.parse::<u32>()
        .is_ok_and(|pid| pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists())
}

pub(crate) fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_default()
}

impl Engine {
    /// An engine over an open store, with its configuration, secrets and clock.
    pub fn new(store: Store, config: Config, secrets: Secrets, clock: Arc<dyn Clock>) -> Result<Engine, CrawlError> {
        let anonymous = fetch::build_client(&config.http, None, true).map_err(CrawlError::Client)?;
        let rungs = config.crawl.snapshot_ages.iter().map(|d| d.as_secs() as i64).collect();
        Ok(Engine {
            db: Db(Arc::new(Mutex::new(store))),
            pool: CredentialPool::new(secrets.client),
            backend: secrets.backend,
            config: Arc::new(config),
            clock,
            anonymous,
            credential_clients: Mutex::new(HashMap::new()),
            limiter: Limiter::new(),
            host_slots: Mutex::new(HashMap::new()),
            cooldown_cache: Mutex::new(HashMap::new()),
            robots: tokio::sync::Mutex::new(HashMap::new()),
            holder: holder_name(),
            run_id: Mutex::new(None),
            progress: Arc::new(Progress::default()),
            rungs,
        })
    }

    /// The credential pool (for summaries).
    pub fn credentials(&self) -> &CredentialPool {
        &self.pool
    }

    pub(crate) fn now(&self) -> UnixSeconds {
        self.clock.now()
    }

    /// The WeChat host (`host[:port]`) requests go to.
    pub(crate) fn wechat_host(&self) -> String {
        host_of(self.config.wechat.base_url.as_str())
    }

    /// The URL to request for a canonical or short article URL: same path and query on
    /// the configured base URL.
    pub(crate) fn wechat_url(&self, path_and_query: &str) -> String {
        let base = self.config.wechat.base_url.as_str().trim_end_matches('/');
        format!("{base}{path_and_query}")
    }

    fn path_of(url: &str) -> String {
        match url::Url::parse(url) {
            Ok(parsed) => match parsed.query() {
                Some(query) => format!("{}?{query}", parsed.path()),
                None => parsed.path().to_string(),
            },
            Err(_) => url.to_string(),
        }
    }

    pub(crate) fn client_for(&self, credential: &ClientCredential) -> reqwest::Client {
        let mut clients = self.credential_clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(credential.name.clone())
            .or_insert_with(|| {
                let agent = credential.user_agent.as_deref().unwrap_or(fetch::MICROMESSENGER_UA);
                fetch::build_client(&self.config.http, Some(agent), true).unwrap_or_else(|_| self.anonymous.clone())
            })
            .clone()
    }

    fn host_slot(&self, host: &str) -> Arc<Semaphore> {
        self.host_slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(host.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.crawl.concurrency_per_host.max(1) as usize)))
            .clone()
    }

    /// Sends a request under the host's concurrency cap, with quick in-task retries of
    /// transient failures (full-jitter backoff, Retry-After honoured). Long waits come
    /// back as `Err((retry_at, message))` for the queue.
    pub(crate) async fn send(
        &self,
        class: &str,
        target: &str,
        host: &str,
        limit: (&str, &mpwatch_core::config::RateLimit),
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Fetched, (UnixSeconds, String)> {
        const QUICK_ATTEMPTS: u32 = 3;
        let slot = self.host_slot(host);
        let mut attempt = 0;
        loop {
            let (started, result) = {
                // The connection slot first, then the rate slot: a request never waits
                // for a connection after its rate slot came, so it leaves on time.
                let _permit = slot.acquire().await.map_err(|_| (self.now(), "shutting down".to_string()))?;
                self.limiter.acquire(limit.0, limit.1).await;
                (self.now(), fetch::fetch(build(), self.config.http.max_body_bytes).await)
            };
            // Answers the caller classifies (an article page, a list) are logged by the
            // caller with that class; failures are logged here.
            let result = result.map(|mut fetched| {
                fetched.sent_at = started;
                fetched
            });
            match &result {
                Ok(fetched) if fetched.status == 429 || fetched.status >= 500 => {
                    self.progress.outcome("http_error");
                    let bytes = Some(fetched.body.len() as u64);
                    self.log_fetch(
                        class,
                        target,
                        started,
                        Some(fetched.status),
                        "http_error",
                        bytes,
                        Some(fetched.elapsed),
                    )
                    .await;
                }
                Ok(_) => {}
                Err(error) => {
                    self.progress.outcome(error.outcome());
                    self.log_fetch(class, target, started, None, error.outcome(), None, None).await;
                }
            }
            let backoff =
                fetch::backoff(attempt, Duration::from_millis(250), Duration::from_secs(8), self.random_unit());
            let (delay, reason) = match result {
                Ok(fetched) if fetched.status == 429 || fetched.status >= 500 => {
                    (fetched.retry_after.unwrap_or(backoff), format!("HTTP {}", fetched.status))
                }
                Ok(fetched) => return Ok(fetched),
                Err(error) if error.is_transient() => (backoff, error.to_string()),
                // Size caps and redirect loops will not change in a few seconds.
                Err(error) => return Err((self.now() + 3600, error.to_string())),
            };
            attempt += 1;
            if attempt >= QUICK_ATTEMPTS || delay > Duration::from_secs(30) {
                return Err((self.now() + delay.as_secs().max(1) as i64, reason));
            }
            debug!(class, target, attempt, delay_ms = delay.as_millis() as u64, "retrying after {reason}");
            tokio::time::sleep(delay).await;
        }
    }

    /// Logs an answer with the outcome class the caller found in it.
    pub(crate) async fn log_answer(&self, class: &str, target: &str, fetched: &Fetched, outcome: &str) {
        self.progress.outcome(outcome);
        let bytes = Some(fetched.body.len() as u64);
        self.log_fetch(class, target, fetched.sent_at, Some(fetched.status), outcome, bytes, Some(fetched.elapsed))
            .await;
    }

    fn random_unit(&self) -> f64 {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        f64::from(nanos % 1_000_000) / 1_000_000.0
    }

    #[allow(clippy::too_many_arguments)]
    async fn log_fetch(
        &self,
        class: &str,
        target: &str,
        at: UnixSeconds,
        status: Option<u16>,
        outcome: &str,
        bytes: Option<u64>,
        elapsed: Option<Duration>,
    ) {
        let run = *self.run_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (class, target, outcome) = (class.to_string(), target.to_string(), outcome.to_string());
        let result = self
            .db
            .call(move |store| {
                store.write(|tx| {
                    tx.log_fetch(&FetchRecord {
                        crawl_run_id: run,
                        at,
                        url_class: &class,
                        target: Some(&target),
                        http_status: status,
                        outcome: &outcome,
                        bytes,
                        duration_ms: elapsed.map(|e| e.as_millis() as u64),
                    })
                })
            })
            .await;
        if let Err(error) = result {
            warn!(%error, "cannot write the fetch log");
        }
    }
}

/// Cooldown scopes.
const HOST: &str = "host";
pub(crate) const CREDENTIAL: &str = "credential";

impl Engine {
    /// The end of a running cooldown of `target`, if any.
    pub(crate) async fn cooling_until(&self, scope: &str, target: &str) -> Result<Option<UnixSeconds>, CrawlError> {
        let now = self.now();
        let key = (scope.to_string(), target.to_string());
        if let Some(until) = self.cooldown_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return Ok((*until > now).then_some(*until));
        }
        let (scope, target) = key.clone();
        let record = self.db.call(move |store| store.cooldown(&scope, &target)).await?;
        let until = record.map_or(0, |c| c.until);
        self.cooldown_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, until);
        Ok((until > now).then_some(until))
    }

    /// Enters (or extends) a cooldown after an anti-crawl signal: 15 min, then double
    /// on each signal that follows the previous rest closely, up to the maximum.
    pub(crate) async fn enter_cooldown(
        &self,
        scope: &str,
        target: &str,
        reason: &str,
    ) -> Result<UnixSeconds, CrawlError> {
        let now = self.now();
        let (s, t) = (scope.to_string(), target.to_string());
        let previous = self.db.call(move |store| store.cooldown(&s, &t)).await?;
        let initial = self.config.crawl.cooldown_initial.as_secs() as i64;
        let max = self.config.crawl.cooldown_max.as_secs() as i64;
        let level = match &previous {
            // Still cooling (another task saw the same signal): keep the current rest.
            Some(c) if c.until > now => return Ok(c.until),
            // A signal soon after the last rest: the server is still unhappy.
            Some(c) if now - c.until < (c.until - c.started_at).max(initial) * 2 => c.level + 1,
            _ => 1,
        };
        let length = initial.saturating_mul(1i64 << (level - 1).clamp(0, 20)).min(max);
        let cooldown = Cooldown {
            scope: scope.to_string(),
            target: target.to_string(),
            until: now + length,
            level,
            reason: Some(reason.to_string()),
            started_at: now,
        };
        let until = cooldown.until;
        self.db.call(move |store| store.write(|tx| tx.set_cooldown(&cooldown))).await?;
        self.cooldown_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((scope.to_string(), target.to_string()), until);
        self.progress.cooldowns.fetch_add(1, Ordering::Relaxed);
        warn!(
            event = "cooldown",
            scope,
            target,
            level,
            seconds = length,
            reason,
            "anti-crawl signal: {scope} {target} rests for {length} s"
        );
        Ok(until)
    }

    /// Runs until `options.until`: schedules discovery, pages and ladder rungs, then
    /// processes due work items concurrently.
    pub async fn run(self: &Arc<Self>, options: &CrawlOptions) -> Result<CrawlSummary, CrawlError> {
        let started = std::time::Instant::now();
        let now = self.now();
        let reclaimed = self.db.call(move |store| store.write(|tx| tx.reclaim_leases(holder_alive, now))).await?;
        if reclaimed > 0 {
            info!(reclaimed, "took back work leased by a crawler that stopped");
        }
        let trigger = options.trigger;
        let run_id = self.db.call(move |store| store.write(|tx| tx.start_run(trigger, "crawl", now))).await?;
        *self.run_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(run_id);
        let span = info_span!("crawl", run = run_id);
        let result = self.run_loop(options).instrument(span).await;
        let counts = self.progress.counts();
        let queued = self.db.call(|store| store.open_work()).await?;
        let outcomes = self.progress.outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let run_result = match &result {
            Err(_) => RunResult::Failed,
            Ok(()) if counts.failures > 0 => RunResult::Partial,
            Ok(()) => RunResult::Ok,
        };
        let message = result.as_ref().err().map(|e| e.to_string());
        let finished = self.now();
        let db_message = message.clone();
        self.db
            .call(move |store| {
                store.write(|tx| tx.finish_run(run_id, &counts, run_result, db_message.as_deref(), finished))
            })
            .await?;
        result?;
        Ok(CrawlSummary {
            run_id,
            counts,
            outcomes,
            cooldowns: self.progress.cooldowns.load(Ordering::Relaxed),
            queued,
            result: run_result.as_str().to_string(),
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }

    async fn run_loop(self: &Arc<Self>, options: &CrawlOptions) -> Result<(), CrawlError> {
        self.schedule(options).await?;
        let mut last_discovery = self.now();
        let workers = (self.config.crawl.concurrency_per_host.max(1) as usize) * 2;
        let mut tasks: tokio::task::JoinSet<Result<(), CrawlError>> = tokio::task::JoinSet::new();
        loop {
            let now = self.now();
            if let Until::Time(end) = options.until {
                if now >= end {
                    break;
                }
                if now - last_discovery >= options.rediscover_every {
                    self.schedule(options).await?;
                    last_discovery = now;
                }
            }
            let mut kinds: Vec<&'static str> = Vec::new();
            if options.pages {
                kinds.extend([DISCOVER, PAGE]);
            }
            if options.metrics && self.pool.any_available(now) {
                kinds.push(METRICS);
            }
            let free = workers.saturating_sub(tasks.len());
            let items = if free == 0 || kinds.is_empty() {
                Vec::new()
            } else {
                let lease_until = now + self.config.crawl.lease.as_secs() as i64;
                let holder = self.holder.clone();
                let kinds_owned = kinds.clone();
                self.db
                    .call(move |store| {
                        store.write(|tx| tx.lease_work_as(&kinds_owned, free, lease_until, now, Some(&holder)))
                    })
                    .await?
            };
            if items.is_empty() {
                if let Some(done) = tasks.join_next().await {
                    done.map_err(|e| CrawlError::Task(e.to_string()))??;
                    continue;
                }
                match options.until {
                    Until::Idle => break,
                    Until::Time(end) => {
                        let next = self.db.call(move |store| store.next_due(&kinds)).await?.unwrap_or(end).min(end);
                        self.sleep_until(next.max(now + 1)).await;
                    }
                }
                continue;
            }
            self.progress.leased.fetch_add(items.len() as u64, Ordering::Relaxed);
            for item in items {
                let engine = Arc::clone(self);
                let options = options.clone();
                tasks.spawn(async move { engine.process(item, &options).await });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| CrawlError::Task(e.to_string()))??;
        }
        Ok(())
    }

    /// Sleeps in real time until the clock reads `at` (or a short poll interval, so a
    /// clock that jumps is noticed).
    async fn sleep_until(&self, at: UnixSeconds) {
        let rate = self.clock.rate();
        let wait = if rate > 0.0 {
            Duration::from_secs_f64(((at - self.now()).max(0) as f64 / rate).min(0.25))
        } else {
            Duration::from_millis(50)
        };
        tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
    }

    /// Queues discovery for every source, the `--url`s, page re-checks and due ladder rungs.
    async fn schedule(&self, options: &CrawlOptions) -> Result<(), CrawlError> {
        let now = self.now();
        let accounts = options.accounts.clone();
        let sources = self.db.call(move |store| store.active_sources(&accounts)).await?;
        let urls = options.urls.clone();
        let pages = options.pages;
        let recheck_before = now - 86_400;
        let max_rung = self.rungs.iter().copied().max().unwrap_or(0);
        let candidates = if options.metrics {
            self.db.call(move |store| store.metrics_candidates(now, max_rung + 86_400)).await?
        } else {
            Vec::new()
        };
        let rungs = self.rungs.clone();
        self.db
            .call(move |store| {
                let rechecks =
                    if pages { store.articles_to_recheck(recheck_before, now - 30 * 86_400)? } else { Vec::new() };
                store.write(|tx| {
                    if pages {
                        for (source, _) in &sources {
                            // A failing source waits for its retry time; the others go now.
                            let at = source
                                .next_retry_at
                                .filter(|_| source.consecutive_failures > 0)
                                .unwrap_or(now)
                                .max(now);
                            tx.enqueue(DISCOVER, &source.id.to_string(), 10, at, now)?;
                        }
                        for url in &urls {
                            tx.enqueue(PAGE, url, 20, now, now)?;
                        }
                        for (_, url) in &rechecks {
                            tx.enqueue(PAGE, url, 0, now, now)?;
                        }
                    }
                    for candidate in &candidates {
                        for (rung, at) in ladder(&rungs, candidate.published_at, now, &candidate.rungs_taken) {
                            tx.enqueue(METRICS, &format!("{}:{rung}", candidate.id), 5, at, now)?;
                        }
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Processes one leased item and records its outcome.
    async fn process(&self, item: WorkItem, options: &CrawlOptions) -> Result<(), CrawlError> {
        let span = info_span!("item", kind = %item.kind, target = %item.target, attempt = item.attempts);
        let outcome = async {
            match item.kind.as_str() {
                DISCOVER => self.discover(&item, options).await,
                PAGE => self.page(&item).await,
                METRICS => self.metrics(&item).await,
                other => Ok(Outcome::Fail(format!("unknown work kind {other}"))),
            }
        }
        .instrument(span)
        .await?;
        self.progress.processed.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        let max_attempts = i64::from(self.config.crawl.max_attempts);
        let id = item.id;
        match outcome {
            Outcome::Done => Ok(()),
            Outcome::Retry(at, error) if item.attempts < max_attempts => {
                self.progress.failures.fetch_add(1, Ordering::Relaxed);
                debug!(item = id, "will retry: {error}");
                self.db.call(move |store| store.write(|tx| tx.retry_work(id, at, &error, now))).await
            }
            Outcome::Retry(_, error) | Outcome::Fail(error) => {
                self.progress.failures.fetch_add(1, Ordering::Relaxed);
                warn!(item = id, kind = %item.kind, "gave up: {error}");
                self.db.call(move |store| store.write(|tx| tx.fail_work(id, &error, now))).await
            }
            Outcome::Postpone(at, reason) => {
                self.db.call(move |store| store.write(|tx| tx.postpone_work(id, at, &reason, now))).await
            }
        }
    }
}

/// The ladder rung that stands for "first sight": an article found before its first
/// rung gets one snapshot right away, so a crawl always knows every article's counts.
pub const FIRST_SIGHT: i64 = 0;

/// The rung a snapshot taken at `age` fills: the largest rung not after it, or
/// [`FIRST_SIGHT`] before the first one.
pub fn rung_for_age(rungs: &[i64], age: i64) -> i64 {
    rungs.iter().copied().filter(|r| *r <= age).max().unwrap_or(FIRST_SIGHT)
}

/// The ladder rungs of an article to queue at `now`: the current rung (the largest
/// whose age has passed) if nothing at or after it was taken yet (missed rungs before it
/// are skipped, never invented), or the first-sight rung when no rung has passed yet,
/// and every future rung at its due time.
pub fn ladder(rungs: &[i64], published_at: UnixSeconds, now: UnixSeconds, taken: &[i64]) -> Vec<(i64, UnixSeconds)> {
    let age = now - published_at;
    let latest_taken = taken.iter().copied().max();
    let mut out = Vec::new();
    match rungs.iter().copied().filter(|r| *r <= age).max() {
        Some(current) if latest_taken.is_none_or(|t| t < current) => out.push((current, now)),
        None if taken.is_empty() => out.push((FIRST_SIGHT, now)),
        _ => {}
    }
    for rung in rungs.iter().copied().filter(|r| *r > age) {
        if !taken.contains(&rung) {
            out.push((rung, published_at + rung));
        }
    }
    out
}

/// The article record a parsed page gives (`None` for pages without one: verification,
/// expired, unknown, or a gone article whose key is not known).
pub fn record_from_page(page: &ArticlePage, fallback_key: Option<&ArticleKey>, target: &str) -> Option<ArticleRecord> {
    let key = page.key().or_else(|| fallback_key.cloned())?;
    let status = match page.kind {
        PageKind::Deleted => ArticleStatus::Deleted,
        PageKind::Blocked => ArticleStatus::Blocked,
        PageKind::Unavailable => ArticleStatus::Unavailable,
        kind if kind.is_article() => ArticleStatus::Ok,
        _ => return None,
    };
    let sn = page.sn.clone().or_else(|| match ArticleUrl::parse(target) {
        Ok(ArticleUrl::Permanent { sn, .. }) => sn,
        _ => None,
    });
    let short_url = page.short_url.clone().or_else(|| match ArticleUrl::parse(target) {
        Ok(short @ ArticleUrl::Short { .. }) => Some(short.canonical()),
        _ => None,
    });
    Some(ArticleRecord {
        url: canonical_url(&key, sn.as_deref()),
        key: Some(key),
        sn,
        short_url,
        title: page.title.clone(),
        digest: page.digest.clone(),
        author: page.author.clone(),
        published_at: page.published_at,
        kind: page.article_kind(),
        copyright: page.copyright,
        original_account: page.original_account.clone(),
        original_url: page.original_url.clone(),
        source_url: page.source_url.clone(),
        cover_url: page.cover_url.clone(),
        comment_id: page.comment_id.clone(),
        content_text: page.content_text.clone(),
        word_count: page.kind.is_article().then_some(page.text_chars as i64),
        image_count: page.kind.is_article().then_some(page.image_urls.len() as i64),
        status,
        status_reason: page.reason.clone(),
    })
}

fn listed_record(listed: &ListedArticle) -> Option<ArticleRecord> {
    Some(ArticleRecord {
        key: Some(listed.key.clone()?),
        sn: listed.sn.clone(),
        url: listed.url.clone(),
        title: listed.title.clone(),
        digest: listed.digest.clone(),
        author: listed.author.clone(),
        published_at: listed.published_at,
        cover_url: listed.cover_url.clone(),
        copyright: listed.copyright,
        source_url: listed.source_url.clone(),
        status: ArticleStatus::Pending,
        ..ArticleRecord::default()
    })
}

impl Engine {
    /// Handles a page item: fetch, parse, store (with the ladder and the acknowledgement
    /// in the same transaction).
    async fn page(&self, item: &WorkItem) -> Result<Outcome, CrawlError> {
        let target = item.target.clone();
        let host = self.wechat_host();
        if let Some(until) = self.cooling_until(HOST, &host).await? {
            return Ok(Outcome::Postpone(until, format!("host {host} cooling down")));
        }
        let parsed_target = ArticleUrl::parse(&target).ok();
        let known = match &parsed_target {
            Some(ArticleUrl::Short { .. }) => {
                let short = target.clone();
                self.db.call(move |store| store.article_by_short_url(&short)).await?.map(|a| a.key())
            }
            Some(url) => url.key().cloned(),
            None => None,
        };
        let url = self.wechat_url(&Self::path_of(&target));
        let key = format!("{host}:article_page");
        let limit = (key.as_str(), &self.config.rate_limits.article_page);
        let fetched = match self.send("article_page", &target, &host, limit, || self.anonymous.get(&url)).await {
            Ok(fetched) => fetched,
            Err((at, error)) => return Ok(Outcome::Retry(at, error)),
        };
        let page = mpwatch_wechat::parse_page(&fetched.body);
        let captcha = fetched.final_url.contains("wappoc_appmsgcaptcha");
        self.log_answer("article_page", &target, &fetched, if captcha { "verification" } else { page.kind.as_str() })
            .await;
        if page.kind == PageKind::Verification || captcha {
            // Slow down, and record nothing about the article.
            let until = self.enter_cooldown(HOST, &host, "verification page").await?;
            return Ok(Outcome::Postpone(until, "verification page".into()));
        }
        if fetched.status >= 400 {
            return Ok(Outcome::Retry(self.now() + 3600, format!("HTTP {}", fetched.status)));
        }
        self.clear_cooldown_after_success(HOST, &host).await?;
        let Some(record) = record_from_page(&page, known.as_ref(), &target) else {
            return Ok(match page.kind {
                PageKind::Expired => Outcome::Fail("the link has expired".into()),
                // Gone before we ever knew its key: nothing to store, nothing to retry.
                PageKind::Deleted | PageKind::Blocked | PageKind::Unavailable => {
                    info!(url = %target, kind = page.kind.as_str(), "article gone before it was stored");
                    let (id, now) = (item.id, self.now());
                    self.db.call(move |store| store.write(|tx| tx.complete_work(id, now))).await?;
                    Outcome::Done
                }
                _ => Outcome::Retry(self.now() + 3600, format!("not an article page ({})", page.kind.as_str())),
            });
        };
        let now = self.now();
        let rungs = self.rungs.clone();
        let id = item.id;
        let archive = self.config.crawl.archive_raw_pages.then(|| {
            let compressed = zstd::encode_all(fetched.body.as_ref(), 3).unwrap_or_default();
            (compressed, fetched.body.len())
        });
        let learned = page
            .key()
            .map(|key| (key.biz, page.account_name.clone(), page.account_username.clone(), page.account_alias.clone()));
        let locator = target.clone();
        let (article_id, outcome) = self
            .db
            .call(move |store| {
                store.write(|tx| {
                    if let Some((biz, nickname, username, alias)) = &learned {
                        tx.learn_account(biz, nickname.as_deref(), username.as_deref(), alias.as_deref(), Some(&locator), now)?;
                    }
                    // An article only listed so far counts as new when its page arrives.
                    let was_listed = match &record.key {
                        Some(key) => tx.article_status(key)? == Some(ArticleStatus::Pending),
                        None => false,
                    };
                    let (article_id, outcome) = tx.upsert_article(&record, now)?;
                    let outcome = if was_listed { UpsertOutcome::Inserted } else { outcome };
                    if record.status == ArticleStatus::Ok
                        && let Some(published) = record.published_at
                    {
                        let taken: Vec<i64> = tx
                            .connection()
                            .prepare_cached("SELECT rung_seconds FROM metric_snapshots WHERE article_id = ?1 AND rung_seconds IS NOT NULL")
                            .and_then(|mut s| s.query_map([article_id], |row| row.get(0)).and_then(|rows| rows.collect()))
                            .map_err(|source| StoreError::Sqlite { context: "reading ladder".into(), source })?;
                        for (rung, at) in ladder(&rungs, published, now, &taken) {
                            tx.enqueue(METRICS, &format!("{article_id}:{rung}"), 5, at, now)?;
                        }
                    }
                    if let Some((compressed, size)) = &archive {
                        tx.insert_raw_page(article_id, &record.url, now, *size, compressed)?;
                    }
                    tx.complete_work(id, now)?;
                    Ok((article_id, outcome))
                })
            })
            .await?;
        match outcome {
            UpsertOutcome::Inserted => {
                self.progress.new.fetch_add(1, Ordering::Relaxed);
            }
            UpsertOutcome::Updated { status_changed, .. } => {
                self.progress.updated.fetch_add(1, Ordering::Relaxed);
                if status_changed {
                    info!(article = article_id, status = page.kind.as_str(), "article status changed");
                }
            }
            UpsertOutcome::Unchanged => {}
        }
        Ok(Outcome::Done)
    }

    async fn clear_cooldown_after_success(&self, scope: &str, target: &str) -> Result<(), CrawlError> {
        let key = (scope.to_string(), target.to_string());
        let had = self
            .cooldown_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .is_some_and(|u| *u > 0);
        if had {
            let (s, t) = key.clone();
            self.db.call(move |store| store.write(|tx| tx.clear_cooldown(&s, &t))).await?;
            self.cooldown_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, 0);
            info!(scope, target, "working again after a cooldown");
        }
        Ok(())
    }

    /// Handles a metrics item: one `getappmsgext` call with a pooled credential.
    async fn metrics(&self, item: &WorkItem) -> Result<Outcome, CrawlError> {
        let Some((article_id, rung)) =
            item.target.split_once(':').and_then(|(a, r)| Some((a.parse::<i64>().ok()?, r.parse::<i64>().ok()?)))
        else {
            return Ok(Outcome::Fail(format!("bad metrics target {}", item.target)));
        };
        let Some(article) = self.db.call(move |store| store.article_by_id(article_id)).await? else {
            return Ok(Outcome::Fail("article no longer stored".into()));
        };
        let id = item.id;
        let now = self.now();
        let published = article.published_at.unwrap_or(now);
        let next_rung = self.rungs.iter().copied().filter(|r| *r > rung).min();
        if article.status != ArticleStatus::Ok || next_rung.is_some_and(|next| now - published >= next) {
            // Gone, or a later rung is already due and will take the counts.
            self.db.call(move |store| store.write(|tx| tx.complete_work(id, now))).await?;
            return Ok(Outcome::Done);
        }
        let host = self.wechat_host();
        loop {
            let now = self.now();
            let Some(credential) = self.pool.acquire(now) else {
                return Ok(Outcome::Postpone(now + 60, "pending credentials".into()));
            };
            if let Some(until) = self.cooling_until(CREDENTIAL, &credential.name).await? {
                self.pool.cool(&credential.name, until);
                continue;
            }
            let limit_key = format!("credential:{}:count_api", credential.name);
            let client = self.client_for(&credential);
            let url = self.wechat_url(&format!(
                "/mp/getappmsgext?appmsg_token={}&x5=0&f=json&uin={}&key={}&pass_ticket={}",
                credential.appmsg_token.expose(),
                credential.uin.expose(),
                credential.key.expose(),
                credential.pass_ticket.expose()
            ));
            let form = [
                ("__biz", article.biz.to_string()),
                ("mid", article.mid.to_string()),
                ("sn", article.sn.clone().unwrap_or_default()),
                ("idx", article.idx.to_string()),
                ("comment_id", article.comment_id.clone().unwrap_or_default()),
                ("appmsg_type", "9".to_string()),
                ("is_only_read", "1".to_string()),
                ("is_temp_url", "0".to_string()),
            ];
            let cookie = credential.cookie.as_ref().map(|c| c.expose().to_string());
            let log_target = article.url.clone();
            let fetched = match self
                .send("count_api", &log_target, &host, (&limit_key, &self.config.rate_limits.count_api), || {
                    let request = client.post(&url).form(&form);
                    match &cookie {
                        Some(cookie) => request.header(reqwest::header::COOKIE, cookie),
                        None => request,
                    }
                })
                .await
            {
                Ok(fetched) => fetched,
                Err((at, error)) => return Ok(Outcome::Retry(at, error)),
            };
            let body = String::from_utf8_lossy(&fetched.body).into_owned();
            let answer = match api::parse_appmsgext(&body) {
                Ok(answer) => answer,
                Err(_) if mpwatch_wechat::parse_page(&fetched.body).kind == PageKind::Verification => {
                    self.log_answer("count_api", &log_target, &fetched, "verification").await;
                    let until = self.enter_cooldown(HOST, &host, "verification page on count API").await?;
                    return Ok(Outcome::Postpone(until, "verification page".into()));
                }
                Err(error) => return Ok(Outcome::Retry(self.now() + 300, error.to_string())),
            };
            match answer.outcome {
                ApiOutcome::Ok => {
                    self.log_answer("count_api", &log_target, &fetched, "ok").await;
                    self.clear_cooldown_after_success(CREDENTIAL, &credential.name).await?;
                    let Some(counts) = answer.counts else {
                        return Ok(Outcome::Retry(self.now() + 300, "answer without counts".into()));
                    };
                    let observed_at = self.now();
                    // The rung is decided by the true age at observation: on a fast clock
                    // (or a slow answer) the age may have crossed into the next window.
                    let rung = rung_for_age(&self.rungs, observed_at - published);
                    let snapshot = Snapshot {
                        observed_at,
                        rung_seconds: Some(rung),
                        reads: counts.reads,
                        reads_capped: counts.reads_capped,
                        likes: counts.likes,
                        wows: counts.wows,
                        shares: counts.shares,
                        comments: counts.comments,
                        source: "getappmsgext".into(),
                    };
                    let inserted = self
                        .db
                        .call(move |store| {
                            store.write(|tx| {
                                let inserted = tx.insert_snapshot(article_id, &snapshot)?;
                                tx.complete_work(id, observed_at)?;
                                Ok(inserted)
                            })
                        })
                        .await?;
                    if inserted.is_some() {
                        self.progress.snapshots.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(Outcome::Done);
                }
                ApiOutcome::SessionExpired { .. } => {
                    self.log_answer("count_api", &log_target, &fetched, "expired_credential").await;
                    self.pool.mark_expired(&credential.name);
                }
                ApiOutcome::FrequencyControl { code } => {
                    self.log_answer("count_api", &log_target, &fetched, "throttled").await;
                    let until = self
                        .enter_cooldown(CREDENTIAL, &credential.name, &format!("frequency control ({code})"))
                        .await?;
                    self.pool.cool(&credential.name, until);
                }
                other => return Ok(Outcome::Retry(self.now() + 600, format!("{other:?}"))),
            }
        }
    }

    /// Handles a discover item: asks one source for article URLs.
    async fn discover(&self, item: &WorkItem, options: &CrawlOptions) -> Result<Outcome, CrawlError> {
        let Ok(source_id) = item.target.parse::<i64>() else {
            return Ok(Outcome::Fail(format!("bad source id {}", item.target)));
        };
        let Some((source, biz)) = self.db.call(move |store| store.source(source_id)).await? else {
            return Ok(Outcome::Fail("source no longer exists".into()));
        };
        self.progress.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(source.account_id);
        let span = info_span!("source", kind = %source.kind, account = source.account_id);
        let result = async {
            match source.kind {
                SourceKind::Manual => sources::Manual.discover(self, &source, biz.as_ref(), options.backfill).await,
                SourceKind::Feed => sources::Feed.discover(self, &source, biz.as_ref(), options.backfill).await,
                SourceKind::ProfileExt => {
                    sources::ProfileExt.discover(self, &source, biz.as_ref(), options.backfill).await
                }
                SourceKind::MpBackend => {
                    sources::MpBackend.discover(self, &source, biz.as_ref(), options.backfill).await
                }
            }
        }
        .instrument(span)
        .await?;
        let now = self.now();
        let id = item.id;
        match result {
            Err(SourceFailure::Wait(at, reason)) => Ok(Outcome::Postpone(at, reason)),
            Err(SourceFailure::Broken(retry_at, error)) => {
                warn!(source = source.id, kind = %source.kind, "source failed: {error}");
                let message = error.clone();
                self.db
                    .call(move |store| {
                        store.write(|tx| {
                            tx.record_source_outcome(source_id, Err(&message), Some(retry_at), now)?;
                            tx.complete_work(id, now)
                        })
                    })
                    .await?;
                self.progress.failures.fetch_add(1, Ordering::Relaxed);
                Ok(Outcome::Done)
            }
            Ok(found) => {
                self.progress.found.fetch_add(found.len() as u64, Ordering::Relaxed);
                let rediscover = now + options.rediscover_every;
                self.db
                    .call(move |store| {
                        store.write(|tx| {
                            for entry in found.iter() {
                                match entry {
                                    Found::Listed(listed) => {
                                        let Some(record) = listed_record(listed) else {
                                            tx.enqueue(PAGE, &listed.url, 10, now, now)?;
                                            continue;
                                        };
                                        tx.upsert_article(&record, now)?;
                                        // New, or listed before but never fetched: fetch it.
                                        if let Some(key) = &record.key
                                            && tx.article_status(key)? == Some(ArticleStatus::Pending)
                                        {
                                            tx.enqueue(PAGE, &record.url, 10, now, now)?;
                                        }
                                    }
                                    Found::Url(url) => {
                                        if !tx.url_fetched(url)? {
                                            tx.enqueue(PAGE, url.as_str(), 10, now, now)?;
                                        }
                                    }
                                }
                            }
                            tx.record_source_outcome(source_id, Ok(()), Some(rediscover), now)?;
                            tx.complete_work(id, now)
                        })
                    })
                    .await?;
                Ok(Outcome::Done)
            }
        }
    }
}

/// What a source found.
#[derive(Debug)]
pub(crate) enum Found {
    /// An article with what its list says.
    Listed(Box<ListedArticle>),
    /// Only a URL (short link, feed item without a key).
    Url(String),
}

/// Why a source gave nothing.
#[derive(Debug)]
pub(crate) enum SourceFailure {
    /// It could not be asked now (no credential, cooldown); not its fault.
    Wait(UnixSeconds, String),
    /// It failed; its health drops and it is tried again then.
    Broken(UnixSeconds, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNGS: [i64; 4] = [3600, 6 * 3600, 86_400, 2 * 86_400];

    #[test]
    fn ladder_takes_the_current_rung_and_schedules_the_rest() {
        // Published 2 h ago, nothing taken: the 1 h rung now, the others at their time.
        assert_eq!(
            ladder(&RUNGS, 0, 7200, &[]),
            vec![(3600, 7200), (6 * 3600, 6 * 3600), (86_400, 86_400), (2 * 86_400, 2 * 86_400)]
        );
        // Down for a day: the 6 h and 1 h rungs are skipped, not invented.
        assert_eq!(ladder(&RUNGS, 0, 30 * 3600, &[]), vec![(86_400, 30 * 3600), (2 * 86_400, 2 * 86_400)]);
        // Already taken: nothing for the current rung.
        assert_eq!(
            ladder(&RUNGS, 0, 7200, &[3600]),
            vec![(6 * 3600, 6 * 3600), (86_400, 86_400), (2 * 86_400, 2 * 86_400)]
        );
        // Too young for any rung: a first-sight snapshot now, once.
        assert_eq!(
            ladder(&RUNGS, 0, 60, &[]),
            vec![(0, 60), (3600, 3600), (6 * 3600, 6 * 3600), (86_400, 86_400), (2 * 86_400, 2 * 86_400)]
        );
        assert_eq!(ladder(&RUNGS, 0, 120, &[0]).len(), 4);
    }
}
