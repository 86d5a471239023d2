//! The run loop: take back dead crawlers' leases, schedule what is due (discovery,
//! `--url`s, page re-checks, ladder rungs), lease due items and hand each to its
//! handler concurrently, record what became of each, and close the run.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpwatch_core::time::UnixSeconds;
use mpwatch_store::queue::WorkItem;
use mpwatch_store::runs::RunResult;
use mpwatch_store::search_index::{SEARCH_INDEX_BATCH, Waiting};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info, info_span, warn};

use crate::engine::{CrawlOptions, CrawlSummary, Engine, Until};
use crate::error::CrawlError;
use crate::holder::{HEARTBEAT_STALE_AFTER, holder_alive_given};
use crate::ladder::ladder;
use crate::progress::Progress;
use crate::work::metrics::{RUNG_PRIORITY, rung_target};
use crate::work::{DISCOVER, METRICS, Outcome, PAGE, RECHECK_AFTER};
use crate::worker_slot::{self, WAITING_PER_SLOT};

/// How often the rate limiters forget idle keys (real time).
const LIMITER_HOUSEKEEPING: Duration = Duration::from_secs(600);
/// How often a running run writes its counts so far (real time).
const COUNTS_EVERY: Duration = Duration::from_secs(5);
/// A run adds the articles it fetched to the full-text index once it has stored this
/// many pages since it last did ([`SEARCH_INDEX_BATCH`], one batch)...
const SEARCH_INDEX_AFTER_PAGES: u64 = SEARCH_INDEX_BATCH as u64;
/// ...or this long after (real time), so that a slow crawl's articles are found by a
/// search within minutes.
const SEARCH_INDEX_EVERY: Duration = Duration::from_secs(300);
/// Runs `write` up to `attempts` times while it fails as busy, pausing a short random
/// while (longer each time) between attempts. For a blocking thread.
fn retrying_busy<T>(
    attempts: u64,
    mut write: impl FnMut() -> Result<T, mpwatch_store::StoreError>,
) -> Result<T, mpwatch_store::StoreError> {
    let mut attempt = 1;
    loop {
        match write() {
            Err(error) if error.is_busy() && attempt < attempts => {
                std::thread::sleep(Duration::from_millis(busy_pause_ms(attempt)));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// How often a write that fails as busy is tried on PostgreSQL, where busy means a
/// deadlock with another node's commit or a lock wait that ran out. (On SQLite busy
/// means another program held the lock for the whole busy timeout: once is enough.)
const BUSY_ATTEMPTS_ON_POSTGRES: u64 = 5;

/// A random pause before attempt `attempt + 1` of a write that failed as busy.
fn busy_pause_ms(attempt: u64) -> u64 {
    use rand::Rng as _;
    rand::rng().random_range(20..200u64) * attempt
}

/// How many ladder rungs a run's scheduling writes per transaction: a rolled-back
/// slice (a deadlock on PostgreSQL) costs little to write again.
const RUNGS_PER_TRANSACTION: usize = 500;
/// How long an item whose write failed as busy waits before it is tried again.
const DEFERRED_AGAIN_AFTER: UnixSeconds = 2;
/// How many items a lease takes beyond the free slots, in workers: they wait in the
/// run for a slot, each lease serves more items, and the crawl's leases cost the disk
/// a third as much (docs/benchmarks.md). With the default concurrency that is 12 items
/// ahead (16 with the simulator's), a minute at the count API's default rate, well
/// within a lease (`crawl.lease`, 10 min); one whose lease runs out first is not
/// started.
const LEASE_AHEAD: usize = 3;

/// When a failed item is tried again: no earlier than its handler asked, and a random
/// part of an exponential backoff on its attempts later (30 s, doubling, up to 6 h),
/// so that many items failing together do not come back together.
fn spread_retry(now: UnixSeconds, asked: UnixSeconds, attempts: i64, rng: &mut impl rand::Rng) -> UnixSeconds {
    let ceiling = 30i64.saturating_mul(1 << attempts.clamp(0, 10)).min(6 * 3600);
    asked.max(now) + rng.random_range(ceiling / 2..=ceiling)
}

/// What one run counts into: its row in `crawl_runs` and its live counters. Several
/// runs may share one engine (the service runs a job and an ad-hoc crawl at once) and
/// so its rate limits.
#[derive(Debug)]
pub(crate) struct RunScope {
    /// Its row in `crawl_runs`.
    pub(crate) id: i64,
    /// Its counters.
    pub(crate) progress: Arc<Progress>,
}

/// The items a run has leased and not finished, to give back if it is stopped.
type InFlight = Arc<Mutex<HashSet<i64>>>;
/// A run's work items being processed.
type Tasks = tokio::task::JoinSet<Result<(), CrawlError>>;

impl Engine {
    /// Runs until `options.until`: schedules discovery, pages and ladder rungs, then
    /// processes due work items concurrently.
    pub async fn run(self: &Arc<Self>, options: &CrawlOptions) -> Result<CrawlSummary, CrawlError> {
        self.run_with(options, Arc::new(Progress::default()), &CancellationToken::new()).await
    }

    /// [`Engine::run`], counting into `progress` (readable while it runs) and stopping
    /// when `stop` is cancelled: no new work is leased, work in flight gets
    /// `[service] stop_timeout` to finish, what is left is given back to the queue
    /// untried, and the run is recorded `interrupted` with its counts.
    pub async fn run_with(
        self: &Arc<Self>,
        options: &CrawlOptions,
        progress: Arc<Progress>,
        stop: &CancellationToken,
    ) -> Result<CrawlSummary, CrawlError> {
        let started = std::time::Instant::now();
        let now = self.now();
        // Holders on other hosts (other nodes) live while their node's lock is fresh.
        let live_elsewhere: HashSet<String> = self
            .db
            .call(move |store| store.nodes(now))
            .await?
            .into_iter()
            .filter(|node| now - node.lock.heartbeat_at < HEARTBEAT_STALE_AFTER)
            .map(|node| node.lock.holder)
            .collect();
        let (reclaimed, closed) = self
            .db
            .write(move |tx| {
                let alive = |holder: &str| holder_alive_given(holder, &live_elsewhere);
                Ok((tx.reclaim_leases(alive, now)?, tx.close_dead_runs(alive, now)?))
            })
            .await?;
        if reclaimed > 0 {
            info!(reclaimed, "took back work leased by a crawler that stopped");
        }
        if closed > 0 {
            info!(closed, "closed runs left open by a crawler that was killed");
        }
        let (trigger, job, holder, request) =
            (options.trigger, options.job.clone(), self.holder.clone(), options.request_id);
        let run_id = self
            .db
            .write(move |tx| {
                let run_id = tx.start_run(trigger, &job, Some(&holder), now)?;
                if let Some(request) = request {
                    tx.crawl_request_run(request, run_id)?;
                }
                Ok(run_id)
            })
            .await?;
        let scope = Arc::new(RunScope { id: run_id, progress: progress.clone() });
        let span = info_span!("crawl", run = run_id, job = %options.job);
        let result = self.run_loop(&scope, options, stop).instrument(span).await;
        self.http.flush_fetch_log().await;
        // The articles whose page has come (at most about a batch since the last one).
        // Listed articles still without their page wait for it: another run may be
        // fetching it now (the service's metrics runs end every few minutes beside a
        // discovery), and indexing their listing text first would cost a segment for
        // each when the page replaces it. Maintenance indexes those that stay waiting.
        self.index_for_search(Waiting::Fetched).await;
        let counts = progress.counts();
        let hosts_down = progress.hosts_down();
        let run_result = match &result {
            Err(_) => RunResult::Failed,
            Ok(()) if stop.is_cancelled() => RunResult::Interrupted,
            Ok(()) if counts.failures > 0 || !hosts_down.is_empty() => RunResult::Partial,
            Ok(()) => RunResult::Ok,
        };
        let unreachable = (!hosts_down.is_empty()).then(|| {
            let hosts: Vec<String> = hosts_down
                .iter()
                .map(|(host, until)| format!("{host} (its work waits until {})", mpwatch_core::time::rfc3339(*until)))
                .collect();
            format!("unreachable: {}", hosts.join(", "))
        });
        let message = match &result {
            Err(error) => Some(error.to_string()),
            Ok(()) if stop.is_cancelled() => Some("stopped by a signal".to_string()),
            Ok(()) => unreachable,
        };
        let finished = self.now();
        let db_message = message.clone();
        if let Some(message) = &message
            && !hosts_down.is_empty()
        {
            warn!("{message}");
        }
        self.db.write(move |tx| tx.finish_run(run_id, &counts, run_result, db_message.as_deref(), finished)).await?;
        result?;
        // Only for the summary: a failure to count is no reason to fail the run.
        let queued = self.db.call(|store| store.open_work()).await.unwrap_or(0);
        Ok(CrawlSummary {
            run_id,
            counts,
            outcomes: progress.outcomes(),
            cooldowns: progress.cooldowns.load(std::sync::atomic::Ordering::Relaxed),
            queued,
            result: run_result.as_str().to_string(),
            message,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// The loop, and what happens to work in flight when it ends: waited for, given
    /// `stop_timeout` after a stop, or (on an error) abandoned and given back.
    async fn run_loop(
        self: &Arc<Self>,
        scope: &Arc<RunScope>,
        options: &CrawlOptions,
        stop: &CancellationToken,
    ) -> Result<(), CrawlError> {
        let mut tasks: Tasks = tokio::task::JoinSet::new();
        let in_flight: InFlight = Arc::default();
        match self.drive(scope, options, stop, &mut tasks, &in_flight).await {
            Ok(()) if stop.is_cancelled() => self.wind_down(tasks, &in_flight).await,
            Ok(()) => Ok(()),
            Err(error) => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                if let Err(release_error) = self.release(&in_flight).await {
                    warn!(error = %release_error, "cannot give unfinished work back to the queue");
                }
                Err(error)
            }
        }
    }

    async fn drive(
        self: &Arc<Self>,
        scope: &Arc<RunScope>,
        options: &CrawlOptions,
        stop: &CancellationToken,
        tasks: &mut Tasks,
        in_flight: &InFlight,
    ) -> Result<(), CrawlError> {
        self.schedule(options).await?;
        let mut last_discovery = self.now();
        let workers = (self.config.crawl.concurrency_per_host.max(1) as usize) * 2;
        let slots = Arc::new(Semaphore::new(workers));
        // Items leased ahead, waiting for a slot (already in `in_flight`), with the
        // end of their lease.
        let mut ready: VecDeque<(WorkItem, UnixSeconds)> = VecDeque::new();
        // When a lease last found less due than it wanted: (group commits then, clock).
        let mut drained_at: Option<(u64, UnixSeconds)> = None;
        let mut idle = false;
        let mut last_housekeeping = tokio::time::Instant::now();
        let mut last_counts = tokio::time::Instant::now();
        let mut last_renewal = tokio::time::Instant::now();
        // Pages stored when the run last added articles to the full-text index, and when.
        let mut search_indexed = (0, tokio::time::Instant::now());
        while !stop.is_cancelled() {
            let now = self.now();
            if last_renewal.elapsed() >= self.renew_leases_every() {
                self.renew_leases(in_flight, &ready, now).await?;
                last_renewal = tokio::time::Instant::now();
            }
            if last_housekeeping.elapsed() >= LIMITER_HOUSEKEEPING {
                self.http.limiters.retain_recent();
                last_housekeeping = tokio::time::Instant::now();
            }
            if last_counts.elapsed() >= COUNTS_EVERY {
                self.http.flush_fetch_log().await;
                // So that a run killed without a trace still shows what it did.
                let (id, counts) = (scope.id, scope.progress.counts());
                match self.db.write(move |tx| tx.update_run_counts(id, &counts)).await {
                    Err(error) if error.is_busy() => warn!("cannot write the run's counts so far: {error}"),
                    other => other?,
                }
                last_counts = tokio::time::Instant::now();
            }
            let pages = scope.progress.pages_stored();
            if pages >= search_indexed.0 + SEARCH_INDEX_AFTER_PAGES
                || (pages > search_indexed.0 && search_indexed.1.elapsed() >= SEARCH_INDEX_EVERY)
            {
                self.index_for_search(Waiting::Fetched).await;
                search_indexed = (pages, tokio::time::Instant::now());
            }
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
            // While the host rests for this node, its pages are left to other nodes
            // (or to when the rest ends).
            let host_rests_until = if options.pages { self.page_host_rests_until().await? } else { None };
            if options.pages {
                kinds.push(DISCOVER);
                if host_rests_until.is_none() {
                    kinds.push(PAGE);
                }
            }
            // Likewise metrics while none of this node's credential sets is usable.
            let credentials_rest_until =
                if options.metrics { self.pool.next_available(now).filter(|at| *at > now) } else { None };
            if options.metrics && self.pool.any_available(now) {
                kinds.push(METRICS);
            }
            let rest_ends = host_rests_until.into_iter().chain(credentials_rest_until).min();
            // Items leased ahead take the slots that came free; one whose lease ran out
            // meanwhile (the rate limits were slower than the lease) is left to be
            // leased again, by this run or another.
            while !ready.is_empty() {
                let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                let Some((item, lease_until)) = ready.pop_front() else { break };
                if lease_until <= self.now() {
                    in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&item.id);
                    continue;
                }
                self.dispatch(scope, options, tasks, in_flight, item, permit);
            }
            // Leasing is a write of its own: lease when half the slots are free, for
            // them and LEASE_AHEAD workers' worth ahead (a lease for every few items
            // was a sixth of what a crawl wrote to the WAL).
            let free = slots.available_permits();
            let room = (workers * WAITING_PER_SLOT).saturating_sub(tasks.len());
            // After a lease found less due than it wanted, more is due only once a
            // commit queued it or the clock moved on: leasing before would find as
            // little.
            let drained = drained_at.is_some_and(|(commits, at)| self.db.commits() == commits && now <= at);
            let lease_now =
                ready.is_empty() && (tasks.is_empty() || (free * 2 >= workers && room * 2 >= workers && !drained));
            // An idle run (a metrics run serving the ladder) checks with a read whether
            // anything is due before it takes a write lock to lease.
            let nothing_due = idle && tasks.is_empty() && {
                let kinds = kinds.clone();
                self.db.call(move |store| store.next_due(&kinds)).await?.is_none_or(|due| due > now)
            };
            let lease_until = now + self.config.crawl.lease.as_secs() as i64;
            let items = if !lease_now || kinds.is_empty() || nothing_due {
                Vec::new()
            } else {
                let wanted = (free + LEASE_AHEAD * workers).min(room);
                let commits = self.db.commits();
                let holder = self.holder.clone();
                let kinds_owned = kinds.clone();
                let leased = self
                    .db
                    // Not a group member: dispatching waits on it, so it commits at once.
                    .call(move |store| {
                        store.write(|tx| tx.lease_work_as(&kinds_owned, wanted, lease_until, now, Some(&holder)))
                    })
                    .await;
                match leased {
                    Ok(items) => {
                        drained_at = (items.len() < wanted).then_some((commits, now));
                        items
                    }
                    // Another program held the write lock past the busy timeout: work
                    // in flight goes on, and leasing is tried again.
                    Err(error) if error.is_busy() => {
                        warn!("cannot lease work: {error}; trying again");
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            };
            idle = items.is_empty() && tasks.is_empty() && ready.is_empty();
            if items.is_empty() {
                if !tasks.is_empty() || !ready.is_empty() {
                    // Leased items wait for a slot; with none leased ahead and work due,
                    // half the slots coming free is worth a lease; an item finishing may
                    // queue more.
                    let waiting_for_slot = !ready.is_empty();
                    let short_of_slots = ready.is_empty() && !lease_now && room * 2 >= workers && !drained;
                    tokio::select! {
                        done = tasks.join_next() => {
                            if let Some(done) = done {
                                done.map_err(|e| CrawlError::Task(e.to_string()))??;
                            }
                        }
                        _ = slots.acquire(), if waiting_for_slot => {}
                        _ = slots.acquire_many(workers.div_ceil(2) as u32), if short_of_slots => {}
                        // Drained: the clock moving on may make more due.
                        () = self.sleep_until(now + 1), if drained => {}
                        () = stop.cancelled() => {}
                    }
                    continue;
                }
                match options.until {
                    Until::Idle => {
                        // In a cluster another node's discovery may still queue pages:
                        // the run stays for them (or for its lease to end, if that node
                        // died), so that every node shares the work a fire brings.
                        if let Some(lease_end) = self.discovery_elsewhere(options).await? {
                            tokio::select! {
                                () = self.sleep_until(lease_end.min(now + 1)) => {}
                                () = stop.cancelled() => {}
                            }
                            continue;
                        }
                        break;
                    }
                    Until::Time(end) => {
                        let next = self.db.call(move |store| store.next_due(&kinds)).await?.unwrap_or(end).min(end);
                        let next = rest_ends.map_or(next, |rested| next.min(rested));
                        tokio::select! {
                            () = self.sleep_until(next.max(now + 1)) => {}
                            () = stop.cancelled() => {}
                        }
                    }
                }
                continue;
            }
            scope.progress.leased.fetch_add(items.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let mut leased = in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // An item of this run whose lease ran out while it was in flight comes back
            // from the expired leases: its new lease covers it, and it is not taken twice.
            ready.extend(items.into_iter().filter(|item| leased.insert(item.id)).map(|item| (item, lease_until)));
        }
        if stop.is_cancelled() {
            return Ok(());
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| CrawlError::Task(e.to_string()))??;
        }
        if !ready.is_empty() {
            // The run's time is up before every item leased ahead got a slot: what is
            // left in flight now is those, untried.
            self.release(in_flight).await?;
        }
        Ok(())
    }

    /// In a cluster, for a run that fetches pages: the end of the earliest lease of a
    /// discovery item another holder has.
    async fn discovery_elsewhere(&self, options: &CrawlOptions) -> Result<Option<UnixSeconds>, CrawlError> {
        if self.node.is_empty() || !options.pages {
            return Ok(None);
        }
        let holder = self.holder.clone();
        self.db.call(move |store| store.leased_elsewhere(DISCOVER, &holder)).await
    }

    /// Starts processing a leased item in `slot`.
    fn dispatch(
        self: &Arc<Self>,
        scope: &Arc<RunScope>,
        options: &CrawlOptions,
        tasks: &mut Tasks,
        in_flight: &InFlight,
        item: WorkItem,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let slot = worker_slot::Slot::new(permit, self.db.working());
        let (engine, scope, in_flight) = (Arc::clone(self), Arc::clone(scope), in_flight.clone());
        let options = options.clone();
        tasks.spawn(async move {
            let id = item.id;
            let result = worker_slot::holding(slot, engine.process(&scope, item, &options)).await;
            in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
            match result {
                // Its effect was not written: deferred, not failed. It is tried again
                // in a few seconds (if that write fails too, once its lease runs out).
                Err(error) if error.is_busy() => {
                    warn!(item = id, "deferred: {error}");
                    let (holder, now) = (engine.holder.clone(), engine.now());
                    let reason = format!("deferred: {error}");
                    let postponed = engine
                        .write_retrying(move |tx| {
                            tx.postpone_work(id, Some(&holder), now + DEFERRED_AGAIN_AFTER, &reason, now).map(drop)
                        })
                        .await;
                    if let Err(error) = postponed {
                        warn!(item = id, "stays leased until its lease runs out: {error}");
                    }
                    Ok(())
                }
                other => other,
            }
        });
    }

    /// After a stop: in-flight work gets the stop timeout to finish; then it is
    /// abandoned (every write is a transaction: nothing is half-written) and its items
    /// go back to the queue untried.
    async fn wind_down(&self, mut tasks: Tasks, in_flight: &InFlight) -> Result<(), CrawlError> {
        let grace = self.config.service.stop_timeout;
        let finished = tokio::time::timeout(grace, async {
            while let Some(done) = tasks.join_next().await {
                if let Ok(Err(error)) = done {
                    warn!(%error, "work failed while stopping");
                }
            }
        })
        .await;
        if finished.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        self.release(in_flight).await
    }

    /// How often the leases of items being worked on are renewed: three times a lease.
    fn renew_leases_every(&self) -> Duration {
        (self.config.crawl.lease / 3).max(Duration::from_secs(1))
    }

    /// Renews the leases of the items being worked on (in flight, not waiting in
    /// `ready`), so that no other node takes over work this one is doing. Items
    /// waiting for a slot are left to run out: another node may do them sooner.
    async fn renew_leases(
        &self,
        in_flight: &InFlight,
        ready: &VecDeque<(WorkItem, UnixSeconds)>,
        now: UnixSeconds,
    ) -> Result<(), CrawlError> {
        let waiting: HashSet<i64> = ready.iter().map(|(item, _)| item.id).collect();
        let working: Vec<i64> = in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|id| !waiting.contains(id))
            .copied()
            .collect();
        if working.is_empty() {
            return Ok(());
        }
        let (holder, until) = (self.holder.clone(), now + self.config.crawl.lease.as_secs() as i64);
        match self.db.write_now(move |tx| tx.renew_leases(&working, &holder, until)).await {
            Err(error) if error.is_busy() => warn!("cannot renew the leases of work in progress: {error}"),
            other => {
                other?;
            }
        }
        Ok(())
    }

    /// A small write that matters (giving work back), through the group commit: the
    /// async twin of [`retrying_busy`], tried up to [`BUSY_ATTEMPTS_ON_POSTGRES`] times
    /// in a cluster.
    async fn write_retrying<T: Send + 'static>(
        &self,
        write: impl Fn(&mpwatch_store::Tx<'_>) -> Result<T, mpwatch_store::StoreError> + Clone + Send + 'static,
    ) -> Result<T, CrawlError> {
        let attempts = if self.node.is_empty() { 1 } else { BUSY_ATTEMPTS_ON_POSTGRES };
        let mut attempt = 1;
        loop {
            match self.db.write(write.clone()).await {
                Err(error) if error.is_busy() && attempt < attempts => {
                    tokio::time::sleep(Duration::from_millis(busy_pause_ms(attempt))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Adds articles waiting for the full-text index to it, a batch per transaction
    /// (`mpwatch_store::search_index`). Not fatal when it fails: they stay noted for
    /// the next try.
    async fn index_for_search(&self, which: Waiting) {
        let mut indexed = 0;
        loop {
            match self.db.write(move |tx| tx.index_for_search(SEARCH_INDEX_BATCH, which)).await {
                Ok(batch) => {
                    indexed += batch;
                    if batch < SEARCH_INDEX_BATCH {
                        break;
                    }
                }
                Err(error) => {
                    warn!("cannot add articles to the full-text index yet (they wait for the next try): {error}");
                    break;
                }
            }
        }
        if indexed > 0 {
            debug!(indexed, "added articles to the full-text index");
        }
    }

    /// Gives the items still in flight back to the queue, untried.
    async fn release(&self, in_flight: &InFlight) -> Result<(), CrawlError> {
        let left: Vec<i64> =
            in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().copied().collect();
        if !left.is_empty() {
            let now = self.now();
            let released = self.write_retrying(move |tx| tx.release_work(&left, now)).await?;
            info!(released, "gave unfinished work back to the queue");
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
        // A metrics-only run asks no source.
        let sources =
            if options.pages { self.db.call(move |store| store.active_sources(&accounts)).await? } else { Vec::new() };
        let urls = options.urls.clone();
        let pages = options.pages;
        let recheck_before = now - RECHECK_AFTER;
        let max_rung = self.rungs.iter().copied().max().unwrap_or(0);
        let candidates = if options.metrics {
            self.db.call(move |store| store.metrics_candidates(now, max_rung + 86_400)).await?
        } else {
            Vec::new()
        };
        let rungs = self.rungs.clone();
        let adhoc = options.trigger == mpwatch_core::CrawlTrigger::Adhoc;
        self.db
            .call(move |store| {
                let rechecks =
                    if pages { store.articles_to_recheck(recheck_before, now - 30 * 86_400)? } else { Vec::new() };
                // On PostgreSQL a transaction may deadlock with another node's commit
                // (and be rolled back whole); it is tried again.
                let attempts = if store.connection().is_postgres() { BUSY_ATTEMPTS_ON_POSTGRES } else { 1 };
                if pages {
                    retrying_busy(attempts, || {
                        store.write(|tx| {
                            for (source, _) in &sources {
                                // In scheduled runs a failing source waits for its retry time;
                                // an ad-hoc crawl (someone asked for it now, after fixing
                                // something, say) asks every source at once.
                                let at = source
                                    .next_retry_at
                                    .filter(|_| source.consecutive_failures > 0 && !adhoc)
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
                            tx.rearm_unfetched_pages(now)?;
                            Ok(())
                        })
                    })?;
                }
                if candidates.is_empty() {
                    return Ok(());
                }
                // The ladders: taking a rung queues the next one, so nearly every rung is
                // already waiting and writing it again would change nothing but lock
                // its row (on PostgreSQL, until commit, against other nodes' commits).
                // Only the rest is written, in one order on every node, a slice per
                // transaction.
                let open = store.open_items(METRICS)?;
                let mut rungs_to_queue: Vec<(UnixSeconds, String)> = candidates
                    .iter()
                    .flat_map(|candidate| {
                        ladder(&rungs, candidate.published_at, now, &candidate.rungs_taken)
                            .into_iter()
                            .map(|(rung, at)| (at, rung_target(candidate.id, rung)))
                    })
                    .filter(|(at, target)| match open.get(target) {
                        Some(Some(due)) => due > at,
                        Some(None) => false,
                        None => true,
                    })
                    .collect();
                rungs_to_queue.sort_unstable();
                for slice in rungs_to_queue.chunks(RUNGS_PER_TRANSACTION) {
                    retrying_busy(attempts, || {
                        store.write(|tx| {
                            for (at, target) in slice {
                                tx.enqueue(METRICS, target, RUNG_PRIORITY, *at, now)?;
                            }
                            Ok(())
                        })
                    })?;
                }
                Ok(())
            })
            .await
    }

    /// Processes one leased item and records its outcome.
    async fn process(&self, scope: &RunScope, item: WorkItem, options: &CrawlOptions) -> Result<(), CrawlError> {
        let span = info_span!("item", kind = %item.kind, target = %item.target, attempt = item.attempts);
        let outcome = async {
            match item.kind.as_str() {
                DISCOVER => self.discover(scope, &item, options).await,
                PAGE => self.page(scope, &item).await,
                METRICS => self.metrics(scope, &item).await,
                other => Ok(Outcome::Fail(format!("unknown work kind {other}"))),
            }
        }
        .instrument(span)
        .await?;
        Progress::bump(&scope.progress.processed);
        let now = self.now();
        let max_attempts = i64::from(self.config.crawl.max_attempts);
        let (id, holder) = (item.id, self.holder.clone());
        match outcome {
            Outcome::Done => Ok(()),
            Outcome::Retry(at, error) if item.attempts < max_attempts => {
                Progress::bump(&scope.progress.failures);
                let at = spread_retry(now, at, item.attempts, &mut rand::rng());
                debug!(item = id, retry_at = at, "will retry: {error}");
                self.db.write(move |tx| tx.retry_work(id, Some(&holder), at, &error, now).map(drop)).await
            }
            Outcome::Retry(_, error) | Outcome::Fail(error) => {
                Progress::bump(&scope.progress.failures);
                warn!(item = id, kind = %item.kind, "gave up: {error}");
                self.db.write(move |tx| tx.fail_work(id, Some(&holder), &error, now).map(drop)).await
            }
            Outcome::Postpone(at, reason) => {
                self.db.write(move |tx| tx.postpone_work(id, Some(&holder), at, &reason, now).map(drop)).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn retries_of_items_failing_together_are_spread_out() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let now = 1_000_000;
        let times: Vec<UnixSeconds> = (0..100).map(|_| spread_retry(now, now + 1, 1, &mut rng)).collect();
        let distinct: std::collections::BTreeSet<_> = times.iter().collect();
        assert!(distinct.len() >= 20, "{} distinct retry times of 100", distinct.len());
        assert!(times.iter().all(|t| (now + 1 + 30..=now + 1 + 60).contains(t)), "{times:?}");
        // Never earlier than the handler asked (a server's Retry-After), and capped.
        assert!(spread_retry(now, now + 7200, 0, &mut rng) >= now + 7200);
        assert!(spread_retry(now, now, 60, &mut rng) <= now + 6 * 3600);
    }
}
