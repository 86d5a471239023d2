//! `mpwatch run`: the scheduler loop. It takes the crawler lock, runs each job at its
//! fires (never overlapping itself), starts ad-hoc requests handed over by `mpwatch
//! crawl`, keeps systemd informed (READY, WATCHDOG, STATUS, STOPPING), reloads its
//! configuration on request, and stops gracefully: no new work, work in flight
//! finishes or goes back to the queue, every run recorded with its counts.
//!
//! How the schedule and the snapshot ladder meet: a `metrics` job's run starts with the
//! service, lasts until the job's next fire and takes each ladder rung as it falls due in
//! between (the engine
//! sleeps until the next due item), so a snapshot due at 14:03 is taken at 14:03 even
//! with metrics fired every 5 minutes. A `discover` job runs until nothing is due; the
//! articles it finds get their first-sight rung at once, which the metrics run picks up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mpwatch_core::config::{Config, JobKind, ScheduleEntry};
use mpwatch_core::secrets::Secrets;
use mpwatch_core::time::{Clock, UnixSeconds};
use mpwatch_core::{CrawlTrigger, schedule::ScheduleError};
use mpwatch_crawl::alerts::{AlertKind, Alerts};
use mpwatch_crawl::db::Db;
use mpwatch_crawl::holder::{holder_alive, holder_name, node_name};
use mpwatch_crawl::{CrawlError, CrawlOptions, Engine, Progress, RequestTotals, Until};
use mpwatch_store::nodes::{LockOutcome, NodeClaim};
use mpwatch_store::service::CrawlRequest;
use mpwatch_store::{Store, StoreError, StoreOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::jobs::{FireDecision, Job, decide, jobs_of};
use crate::lock::lock_holder_alive;
use crate::notify::Notifier;
use crate::runs::{
    Finished, RequestOptions, blocking_job, crawl_finished, index_job, maintenance_job, random_up_to, sleep_clock,
};

/// How long a fire waits for the previous run of the same job to end (clock seconds).
const OVERLAP_GRACE: i64 = 60;
/// Consecutive failed ticks (about one a second) before the service gives up.
const MAX_FAILING_TICKS: u32 = 60;
/// How often the lock's heartbeat and status are written (real time).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// What stops the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The crawl engine failed.
    #[error(transparent)]
    Crawl(#[from] CrawlError),
    /// A schedule could not be read (config validation catches this first).
    #[error("schedule: {0}")]
    Schedule(#[from] ScheduleError),
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {address}: {source}")]
    Listen {
        /// `[service] metrics_listen`.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Another live process took the crawler lock while this one was paused.
    #[error("another mpwatch ({holder}) took over the crawler lock; stopping so that only one process fetches")]
    LostLock {
        /// Its `<pid>@<host>`.
        holder: String,
    },
    /// Another service crawls this database (as this node).
    #[error("another mpwatch service ({holder}) is running on this database{}; stop it first", as_node(.node))]
    AlreadyRunning {
        /// Its `<pid>@<host>`.
        holder: String,
        /// The node it runs as (`''` on SQLite).
        node: String,
    },
}

/// How a node shows in a message: nothing on SQLite (one node).
fn as_node(node: &str) -> String {
    if node.is_empty() {
        String::new()
    } else {
        format!(" as node {node:?} (another `[node] name` starts another node)")
    }
}

/// What the binary tells the service (from signals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGTERM / SIGINT: stop gracefully.
    Stop,
    /// SIGHUP: reload the configuration and secrets.
    Reload,
}

/// Loads a fresh configuration and secrets (for SIGHUP); the error is one line.
pub type Reloader = Box<dyn Fn() -> Result<(Config, Secrets), String> + Send + Sync>;

/// What the service needs to start.
pub struct ServiceSetup {
    /// The validated configuration.
    pub config: Config,
    /// Credentials.
    pub secrets: Secrets,
    /// The database file.
    pub db_path: std::path::PathBuf,
    /// The clock (the system clock; the demo's accelerated one).
    pub clock: Arc<dyn Clock>,
    /// How to reload on SIGHUP.
    pub reload: Reloader,
}

/// One job, its next fire and its run in flight.
struct Slot {
    job: Job,
    next: Option<UnixSeconds>,
    waiting_fire: Option<UnixSeconds>,
    /// The waiting fire is a start-up one (catch-up, first start): no jitter delay.
    at_once: bool,
    running: Option<JoinHandle<Finished>>,
}

/// The running service.
struct Service {
    config: Arc<Config>,
    secrets: Secrets,
    db_path: std::path::PathBuf,
    clock: Arc<dyn Clock>,
    db: Db,
    engine: Arc<Engine>,
    alerts: Alerts,
    totals: Arc<RequestTotals>,
    holder: String,
    /// This process's node (`''` on SQLite) and egress.
    node: String,
    egress: String,
    slots: Vec<Slot>,
    requests: HashMap<i64, JoinHandle<Finished>>,
    /// Runs of jobs removed by a reload, still going.
    retired: Vec<(String, JoinHandle<Finished>)>,
    stop: CancellationToken,
}

/// Runs the service until `Control::Stop`. Returns once everything in flight ended (or
/// was given back) and the lock is released.
pub async fn run(
    setup: ServiceSetup,
    mut control: mpsc::Receiver<Control>,
    mut notifier: Notifier,
) -> Result<(), ServiceError> {
    let ServiceSetup { config, secrets, db_path, clock, reload } = setup;
    let options = StoreOptions { busy_timeout: config.store.busy_timeout, create: true, adopt: false };
    let db = Db::new(Store::open(&db_path, &options)?);
    let holder = holder_name();
    let node = node_name(&config, db.call(|store| Ok(store.connection().is_postgres())).await?);
    let egress = config.egress();
    let mut ready_sent = false;
    // The crawler lock: one process fetches at a time per node.
    loop {
        let (me, name, through, clock_now) = (holder.clone(), node.clone(), egress.clone(), clock.now());
        let outcome = db
            .call(move |store| {
                store.write(|tx| {
                    let claim = NodeClaim { node: &name, holder: &me, role: "service", egress: &through };
                    tx.take_crawler_lock(&claim, |lock| lock_holder_alive(lock, clock_now), clock_now)
                })
            })
            .await?;
        match outcome {
            LockOutcome::Taken => break,
            LockOutcome::Held(lock) if lock.role == "service" => {
                return Err(ServiceError::AlreadyRunning { holder: lock.holder, node: lock.node });
            }
            LockOutcome::Held(lock) => {
                // Ready (config and database are fine); the work waits for the lock.
                let waiting = format!("waiting for a foreground crawl ({}) to finish", lock.holder);
                if !ready_sent {
                    notifier.ready(&waiting);
                    ready_sent = true;
                } else {
                    notifier.status(&waiting);
                }
                notifier.watchdog();
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    message = control.recv() => if matches!(message, Some(Control::Stop) | None) { return Ok(()) },
                }
            }
        }
    }
    let (now, cluster) = (clock.now(), !node.is_empty());
    let (closed, requeued) = db
        .call(move |store| {
            store.write(|tx| Ok((tx.close_dead_runs(holder_alive, now)?, tx.requeue_running_requests(cluster)?)))
        })
        .await?;
    if closed + requeued > 0 {
        info!(closed_runs = closed, requeued_requests = requeued, "cleaned up after a process that was killed");
    }
    let config = Arc::new(config);
    let (alerts, _dispatcher) =
        crate::alerts::spawn(config.alerts.clone(), secrets.webhook.clone(), db.clone(), clock.clone());
    let totals = Arc::new(RequestTotals::default());
    let engine = Arc::new(
        Engine::new(Store::open(&db_path, &options)?, (*config).clone(), secrets.clone(), clock.clone())?
            .with_alerts(alerts.clone())
            .with_request_totals(totals.clone()),
    );
    let stop = CancellationToken::new();
    if let Some(listen) = config.service.metrics_listen {
        let metrics_db = Db::new(Store::open(&db_path, &options)?);
        crate::metrics::serve(listen, metrics_db, totals.clone(), clock.clone(), stop.clone())
            .await
            .map_err(|source| ServiceError::Listen { address: listen, source })?;
    }
    let mut service = Service {
        config,
        secrets,
        db_path,
        clock,
        db,
        engine,
        alerts,
        totals,
        holder,
        node,
        egress,
        slots: Vec::new(),
        requests: HashMap::new(),
        retired: Vec::new(),
        stop,
    };
    service.plan_jobs(true).await?;
    if ready_sent {
        notifier.status(&service.status_line());
    } else {
        notifier.ready(&service.status_line());
    }
    info!(jobs = service.slots.len(), "service started: {}", service.status_line());
    let result = service.main_loop(&mut control, &mut notifier, &reload).await;
    notifier.stopping();
    info!("stopping: no new work; work in flight finishes or goes back to the queue");
    service.shut_down().await;
    result
}

impl Service {
    /// (Re)builds the job slots from the config. At start, a fire missed while the
    /// service was down runs once (`catch_up = "once"`) or is recorded as skipped.
    async fn plan_jobs(&mut self, at_start: bool) -> Result<(), ServiceError> {
        let jobs = jobs_of(&self.config)?;
        let states = self.db.call(|store| store.job_states()).await?;
        let now = self.clock.now();
        let mut old: HashMap<String, Slot> =
            std::mem::take(&mut self.slots).into_iter().map(|slot| (slot.job.entry.name.clone(), slot)).collect();
        for job in jobs {
            let name = job.entry.name.clone();
            let mut slot = match old.remove(&name) {
                // A reload keeps a run in flight, a waiting fire, and a fire that is due
                // and not handled yet.
                Some(previous) => {
                    let next = match previous.next {
                        Some(due) if due <= now => Some(due),
                        _ => job.next_after(now),
                    };
                    Slot { next, job, ..previous }
                }
                None => Slot { next: job.next_after(now), job, waiting_fire: None, at_once: false, running: None },
            };
            if at_start {
                let last = states.iter().find(|s| s.name == name).and_then(|s| s.last_fire_at);
                let plan = slot.job.at_start(last, now);
                slot.next = plan.next;
                if let Some(fire) = plan.catch_up {
                    match last {
                        Some(_) => {
                            info!(job = %name, "a fire was missed while the service was down: running it once now")
                        }
                        None => info!(job = %name, "first start on this database: running the job once now"),
                    }
                    slot.waiting_fire = Some(fire);
                    slot.at_once = true;
                } else if slot.job.entry.job == JobKind::Metrics {
                    // The ladder is served from the start, not from the first fire.
                    slot.waiting_fire = Some(now);
                    slot.at_once = true;
                }
                if let Some(fire) = plan.skipped {
                    let kind = slot.job.entry.job.as_str();
                    let (n, k) = (name.clone(), kind.to_string());
                    self.db
                        .call(move |store| {
                            store.write(|tx| {
                                tx.job_skipped(&n, &k, fire, "missed while the service was down (catch_up = none)")
                            })
                        })
                        .await?;
                }
            }
            self.slots.push(slot);
        }
        for (name, slot) in old {
            if let Some(running) = slot.running {
                info!(job = %name, "job removed from the config; its run in flight finishes");
                self.retired.push((name, running));
            }
        }
        let names: Vec<String> = self.slots.iter().map(|slot| slot.job.entry.name.clone()).collect();
        let now = self.clock.now();
        self.db
            .call(move |store| {
                store.write(|tx| {
                    if at_start {
                        tx.interrupt_running_jobs(now)?;
                    }
                    tx.remove_jobs_except(&names)
                })
            })
            .await?;
        self.record_next_fires(None).await
    }

    /// Records the next fire of the slots at `only` (all slots when `None`): a tick
    /// writes the few that fired, not every job of a config with thousands.
    async fn record_next_fires(&self, only: Option<&[usize]>) -> Result<(), ServiceError> {
        let chosen: Vec<&Slot> = match only {
            Some(indexes) => indexes.iter().filter_map(|&i| self.slots.get(i)).collect(),
            None => self.slots.iter().collect(),
        };
        if chosen.is_empty() {
            return Ok(());
        }
        let next: Vec<(String, String, Option<UnixSeconds>)> = chosen
            .into_iter()
            .map(|slot| (slot.job.entry.name.clone(), slot.job.entry.job.as_str().to_string(), slot.next))
            .collect();
        self.db
            .call(move |store| {
                store.write(|tx| {
                    for (name, kind, next) in &next {
                        tx.job_next_fire(name, kind, *next)?;
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(())
    }

    async fn main_loop(
        &mut self,
        control: &mut mpsc::Receiver<Control>,
        notifier: &mut Notifier,
        reload: &Reloader,
    ) -> Result<(), ServiceError> {
        let mut last_heartbeat = tokio::time::Instant::now() - HEARTBEAT_EVERY;
        let mut failing_ticks = 0u32;
        loop {
            notifier.watchdog();
            match self.tick_work(notifier, &mut last_heartbeat).await {
                Ok(()) => failing_ticks = 0,
                Err(error @ ServiceError::LostLock { .. }) => return Err(error),
                // A busy or briefly unavailable database (a long checkpoint, a backup)
                // is waited out; only a lasting failure stops the service.
                Err(error) => {
                    failing_ticks += 1;
                    warn!(%error, failing_ticks, "service tick failed; trying again");
                    if failing_ticks >= MAX_FAILING_TICKS {
                        return Err(error);
                    }
                }
            }
            let wait = self.tick(notifier);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                message = control.recv() => match message {
                    Some(Control::Reload) => self.reload(notifier, reload).await,
                    Some(Control::Stop) | None => return Ok(()),
                },
            }
        }
    }

    /// One round: record what ended, start what is due, start handed-over crawls,
    /// heartbeat.
    async fn tick_work(
        &mut self,
        notifier: &mut Notifier,
        last_heartbeat: &mut tokio::time::Instant,
    ) -> Result<(), ServiceError> {
        self.collect_finished().await?;
        let fired = self.fire_due_jobs().await?;
        self.start_requests().await?;
        self.record_next_fires(Some(&fired)).await?;
        if last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
            let status = self.status_line();
            notifier.status(&status);
            let (holder, node, now) = (self.holder.clone(), self.node.clone(), self.clock.now());
            let still_ours = self
                .db
                .call(move |store| store.write(|tx| tx.heartbeat_crawler_lock(&node, &holder, Some(&status), now)))
                .await?;
            if !still_ours {
                // Taken over while our heartbeat was stale (the process was paused?).
                // Take it back only from a dead holder; never fetch beside a live one.
                let (holder, node, egress, now) =
                    (self.holder.clone(), self.node.clone(), self.egress.clone(), self.clock.now());
                let outcome = self
                    .db
                    .call(move |store| {
                        store.write(|tx| {
                            let claim = NodeClaim { node: &node, holder: &holder, role: "service", egress: &egress };
                            tx.take_crawler_lock(&claim, |lock| lock_holder_alive(lock, now), now)
                        })
                    })
                    .await?;
                if let LockOutcome::Held(lock) = outcome {
                    return Err(ServiceError::LostLock { holder: lock.holder });
                }
                warn!("took the crawler lock back from a process that stopped");
            }
            *last_heartbeat = tokio::time::Instant::now();
        }
        Ok(())
    }

    /// How long to sleep: until the next fire (in real time on a fast clock), at most a
    /// second (requests start within 2 s) and at most the watchdog's half interval.
    fn tick(&self, notifier: &Notifier) -> Duration {
        let now = self.clock.now();
        let next_fire = self.slots.iter().filter_map(|slot| slot.next).min();
        let mut wait = Duration::from_secs(1);
        if let Some(next) = next_fire {
            let rate = self.clock.rate();
            if rate > 0.0 {
                wait = wait.min(Duration::from_secs_f64((next - now).max(0) as f64 / rate));
            }
        }
        if self.slots.iter().any(|slot| slot.waiting_fire.is_some()) {
            wait = wait.min(Duration::from_millis(100));
        }
        if let Some(every) = notifier.watchdog_every() {
            wait = wait.min(every);
        }
        wait.max(Duration::from_millis(10))
    }

    /// Records the runs that ended, one log line each.
    async fn collect_finished(&mut self) -> Result<(), ServiceError> {
        let now = self.clock.now();
        for slot in &mut self.slots {
            if !slot.running.as_ref().is_some_and(JoinHandle::is_finished) {
                continue;
            }
            let Some(handle) = slot.running.take() else { continue };
            let finished = handle.await.unwrap_or_else(|error| Finished {
                result: "failed".into(),
                message: Some(format!("the job's task died: {error}")),
                run_id: None,
                line: String::new(),
            });
            let name = slot.job.entry.name.clone();
            if finished.result == "failed" {
                let why = finished.message.as_deref().unwrap_or("unknown error");
                self.alerts.raise(AlertKind::JobFailed, &name, format!("job {name} failed: {why}"));
            } else {
                info!("job {name} {}: {}", finished.result, finished.line);
            }
            let recorded = self
                .db
                .call(move |store| {
                    store.write(|tx| {
                        tx.job_finished(&name, &finished.result, finished.message.as_deref(), finished.run_id, now)
                    })
                })
                .await;
            if let Err(error) = recorded {
                warn!(%error, "cannot record how a job's run ended");
            }
        }
        let done: Vec<i64> = self.requests.iter().filter(|(_, h)| h.is_finished()).map(|(id, _)| *id).collect();
        for id in done {
            let Some(handle) = self.requests.remove(&id) else { continue };
            let finished = handle.await.unwrap_or_else(|error| Finished {
                result: "failed".into(),
                message: Some(format!("the crawl's task died: {error}")),
                run_id: None,
                line: String::new(),
            });
            info!("ad-hoc crawl #{id} {}: {}", finished.result, finished.line);
            // Stopped with the service: it runs again at the next start.
            let requeue = finished.result == "interrupted";
            let state = if matches!(finished.result.as_str(), "ok" | "partial") { "done" } else { "failed" };
            let message = finished.message.clone().or(Some(finished.line.clone()));
            let recorded = self
                .db
                .call(move |store| {
                    store.write(|tx| match requeue {
                        true => tx.requeue_crawl_request(id),
                        false => tx.finish_crawl_request(id, state, message.as_deref(), now),
                    })
                })
                .await;
            if let Err(error) = recorded {
                warn!(%error, request = id, "cannot record how an ad-hoc crawl ended");
            }
        }
        let (done, going): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.retired).into_iter().partition(|(_, h)| h.is_finished());
        self.retired = going;
        for (name, handle) in done {
            if let Ok(finished) = handle.await {
                info!("removed job {name} {}: {}", finished.result, finished.line);
            }
        }
        Ok(())
    }

    /// Starts the jobs whose fire came. Returns the slots that fired.
    async fn fire_due_jobs(&mut self) -> Result<Vec<usize>, ServiceError> {
        let now = self.clock.now();
        let mut fired = Vec::new();
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if let Some(next) = slot.next
                && next <= now
            {
                slot.at_once = false;
                if let Some(older) = slot.waiting_fire.replace(next) {
                    let (name, kind) = (slot.job.entry.name.clone(), slot.job.entry.job.as_str().to_string());
                    warn!(job = %name, "a fire was still waiting when the next came: skipped");
                    self.db
                        .call(move |store| {
                            store.write(|tx| {
                                tx.job_skipped(&name, &kind, older, "still waiting when the next fire came")
                            })
                        })
                        .await?;
                }
                slot.next = slot.job.next_after(now.max(next));
                fired.push(index);
            }
            let Some(fire) = slot.waiting_fire else { continue };
            match decide(slot.running.is_some(), fire, now, OVERLAP_GRACE) {
                FireDecision::WaitForPrevious => {}
                FireDecision::Skip => {
                    slot.waiting_fire = None;
                    let (name, kind) = (slot.job.entry.name.clone(), slot.job.entry.job.as_str());
                    warn!(job = %name, "skipped a fire: the previous run is still going");
                    let kind = kind.to_string();
                    self.db
                        .call(move |store| {
                            store.write(|tx| tx.job_skipped(&name, &kind, fire, "the previous run was still going"))
                        })
                        .await?;
                }
                FireDecision::Start => {
                    slot.waiting_fire = None;
                    let jitter = if std::mem::take(&mut slot.at_once) { Duration::ZERO } else { slot.job.entry.jitter };
                    let entry = slot.job.entry.clone();
                    let until_next = slot.next;
                    let (name, kind) = (entry.name.clone(), entry.job.as_str().to_string());
                    // On a cluster every node crawls (they share the queue), but the
                    // database's own jobs run once per fire, on the node that claims it.
                    let once_per_cluster =
                        !self.node.is_empty() && matches!(entry.job, JobKind::Index | JobKind::Maintenance);
                    let ours = self
                        .db
                        .call(move |store| {
                            store.write(|tx| {
                                if once_per_cluster {
                                    tx.claim_job_fire(&name, &kind, fire, now)
                                } else {
                                    tx.job_started(&name, &kind, fire, None, now).map(|()| true)
                                }
                            })
                        })
                        .await?;
                    if !ours {
                        info!(job = %entry.name, "another node runs this fire");
                        continue;
                    }
                    let handle = self.spawn_job(entry, until_next, jitter).await?;
                    self.slots[index].running = Some(handle);
                }
            }
        }
        Ok(fired)
    }

    /// Resolves a job's account or group filter to account ids.
    async fn accounts_of(&self, entry: &ScheduleEntry) -> Result<Vec<i64>, ServiceError> {
        let (account, group) = (entry.account.clone(), entry.group.clone());
        Ok(self
            .db
            .call(move |store| {
                let mut ids = Vec::new();
                if let Some(account) = &account {
                    ids.push(store.resolve_account(account)?.id);
                }
                if let Some(group) = &group {
                    ids.extend(store.group_account_ids(group)?);
                }
                Ok(ids)
            })
            .await?)
    }

    async fn spawn_job(
        &self,
        entry: ScheduleEntry,
        until_next: Option<UnixSeconds>,
        jitter: Duration,
    ) -> Result<JoinHandle<Finished>, ServiceError> {
        let stop = self.stop.child_token();
        let jitter = random_up_to(jitter);
        let clock = self.clock.clone();
        match entry.job {
            JobKind::Discover | JobKind::Metrics => {
                let accounts = match self.accounts_of(&entry).await {
                    Ok(ids) => ids,
                    Err(error) => {
                        let message = format!("cannot resolve the job's accounts: {error}");
                        return Ok(tokio::spawn(async move {
                            Finished {
                                result: "failed".into(),
                                message: Some(message),
                                run_id: None,
                                line: String::new(),
                            }
                        }));
                    }
                };
                if (entry.account.is_some() || entry.group.is_some()) && accounts.is_empty() {
                    return Ok(tokio::spawn(async move {
                        Finished {
                            result: "failed".into(),
                            message: Some("the job's account or group matches no account".into()),
                            run_id: None,
                            line: String::new(),
                        }
                    }));
                }
                let metrics = entry.job == JobKind::Metrics;
                let options = CrawlOptions {
                    accounts,
                    pages: !metrics,
                    metrics,
                    trigger: CrawlTrigger::Schedule,
                    // A metrics run serves the ladder until the job's next fire.
                    until: match (metrics, until_next) {
                        (true, Some(next)) => Until::Time(next),
                        _ => Until::Idle,
                    },
                    job: entry.name.clone(),
                    ..CrawlOptions::default()
                };
                let engine = self.engine.clone();
                Ok(tokio::spawn(async move {
                    if !sleep_clock(&clock, jitter, &stop).await {
                        return Finished {
                            result: "interrupted".into(),
                            message: None,
                            run_id: None,
                            line: "stopped before it began".into(),
                        };
                    }
                    crawl_finished(engine.run_with(&options, Arc::new(Progress::default()), &stop).await)
                }))
            }
            JobKind::Index => {
                let (db_path, config) = (self.db_path.clone(), self.config.clone());
                let now = clock.now();
                Ok(tokio::task::spawn_blocking(move || blocking_job(|| index_job(&db_path, &config, now))))
            }
            JobKind::Maintenance => {
                let (db_path, config) = (self.db_path.clone(), self.config.clone());
                let now = clock.now();
                Ok(tokio::task::spawn_blocking(move || {
                    blocking_job(|| maintenance_job(&db_path, &config, now, &|| !stop.is_cancelled()))
                }))
            }
        }
    }

    /// Starts the ad-hoc requests handed over by `mpwatch crawl`.
    async fn start_requests(&mut self) -> Result<(), ServiceError> {
        loop {
            if !self.db.call(|store| store.crawl_request_pending()).await? {
                return Ok(());
            }
            let now = self.clock.now();
            let Some(request) = self.db.call(move |store| store.write(|tx| tx.take_crawl_request(now))).await? else {
                return Ok(());
            };
            let id = request.id;
            info!(request = id, by = request.requested_by.as_deref().unwrap_or("?"), "starting an ad-hoc crawl");
            let handle = self.spawn_request(request);
            self.requests.insert(id, handle);
        }
    }

    fn spawn_request(&self, request: CrawlRequest) -> JoinHandle<Finished> {
        let parsed: Result<RequestOptions, _> = serde_json::from_str(&request.options);
        let engine = self.engine.clone();
        let stop = self.stop.child_token();
        tokio::spawn(async move {
            let options = match parsed {
                Ok(options) => options,
                Err(error) => {
                    return Finished {
                        result: "failed".into(),
                        message: Some(format!("unreadable request options: {error}")),
                        run_id: None,
                        line: String::new(),
                    };
                }
            };
            let options = CrawlOptions {
                accounts: options.accounts,
                urls: options.urls,
                pages: options.pages,
                metrics: options.metrics,
                backfill: options.backfill,
                trigger: CrawlTrigger::Adhoc,
                until: Until::Idle,
                job: "crawl".into(),
                request_id: Some(request.id),
                ..CrawlOptions::default()
            };
            crawl_finished(engine.run_with(&options, Arc::new(Progress::default()), &stop).await)
        })
    }

    /// SIGHUP: a new configuration and secrets for new runs and the jobs. Anything that
    /// fails keeps the old ones (and says why); runs in flight finish with the
    /// configuration they started with, but take the new credential sets: a run that
    /// waits for a usable set (every one expired) must not wait for good.
    async fn reload(&mut self, notifier: &Notifier, reload: &Reloader) {
        notifier.reloading();
        match self.try_reload(reload).await {
            Ok(()) => info!(jobs = self.slots.len(), "configuration reloaded"),
            Err(error) => warn!("configuration not reloaded, keeping the old one: {error}"),
        }
        notifier.reloaded();
    }

    async fn try_reload(&mut self, reload: &Reloader) -> Result<(), String> {
        let (config, secrets) = reload()?;
        jobs_of(&config).map_err(|e| e.to_string())?;
        let options = StoreOptions { busy_timeout: config.store.busy_timeout, create: true, adopt: false };
        let store = Store::open(&self.db_path, &options).map_err(|e| e.to_string())?;
        let (alerts, _dispatcher) =
            crate::alerts::spawn(config.alerts.clone(), secrets.webhook.clone(), self.db.clone(), self.clock.clone());
        // The rate limiters carry over when the limits are the same, so that runs in
        // flight and new ones share them.
        let mut engine = Engine::new(store, config.clone(), secrets.clone(), self.clock.clone())
            .map_err(|e| e.to_string())?
            .with_alerts(alerts.clone())
            .with_request_totals(self.totals.clone());
        if config.rate_limits == self.config.rate_limits {
            engine = engine.with_rate_limiters_of(&self.engine);
        }
        let (previous_config, previous_secrets) = (self.config.clone(), self.secrets.clone());
        self.config = Arc::new(config);
        self.secrets = secrets;
        if let Err(error) = self.plan_jobs(false).await {
            self.config = previous_config;
            self.secrets = previous_secrets;
            return Err(error.to_string());
        }
        self.alerts = alerts;
        self.engine.credentials().replace_sets(self.secrets.client.clone());
        self.engine = Arc::new(engine);
        Ok(())
    }

    /// What it is doing, for STATUS= and `crawler_lock.status`.
    fn status_line(&self) -> String {
        let running: Vec<&str> =
            self.slots.iter().filter(|slot| slot.running.is_some()).map(|slot| slot.job.entry.name.as_str()).collect();
        let mut parts = Vec::new();
        if running.is_empty() && self.requests.is_empty() {
            parts.push("idle".to_string());
        } else {
            if !running.is_empty() {
                parts.push(format!("running {}", running.join(", ")));
            }
            if !self.requests.is_empty() {
                parts.push(format!("{} ad-hoc crawl(s)", self.requests.len()));
            }
        }
        if let Some(slot) = self.slots.iter().filter(|s| s.next.is_some()).min_by_key(|s| s.next) {
            let zone = mpwatch_core::schedule::time_zone(self.config.job_timezone(&slot.job.entry)).ok();
            let when = slot
                .next
                .and_then(|t| jiff::Timestamp::from_second(t).ok())
                .zip(zone)
                .map(|(t, zone)| t.to_zoned_datetime(zone).strftime("%H:%M:%S").to_string())
                .unwrap_or_default();
            parts.push(format!("next {} at {when}", slot.job.entry.name));
        }
        parts.join("; ")
    }

    /// Stops every run (each gets `stop_timeout` for its requests in flight), records
    /// how each ended and releases the lock.
    async fn shut_down(&mut self) {
        self.stop.cancel();
        let deadline = self.config.service.stop_timeout + Duration::from_secs(2);
        let all_done = tokio::time::timeout(deadline, async {
            loop {
                let busy = self.slots.iter().any(|s| s.running.as_ref().is_some_and(|h| !h.is_finished()))
                    || self.requests.values().any(|h| !h.is_finished())
                    || self.retired.iter().any(|(_, h)| !h.is_finished());
                if !busy {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let all_stopped = all_done.is_ok();
        if !all_stopped {
            warn!("some work did not stop in time; its items stay leased until the next start reclaims them");
        }
        if let Err(error) = self.collect_finished().await {
            warn!(%error, "cannot record how the last runs ended");
        }
        // Once every run has ended, what this process still has leased (items leased
        // ahead whose lease ran out while they waited) goes back to the queue now.
        let (holder, node, now) = (self.holder.clone(), self.node.clone(), self.clock.now());
        let released = self
            .db
            .call(move |store| {
                store.write(|tx| {
                    let released = if all_stopped { tx.release_leases_of(&holder, now)? } else { 0 };
                    tx.release_crawler_lock(&node, &holder)?;
                    Ok(released)
                })
            })
            .await;
        match released {
            Ok(0) => {}
            Ok(released) => info!(released, "gave back work leased ahead"),
            Err(error) => warn!(%error, "cannot release the crawler lock"),
        }
    }
}
