//! The run loop: take back dead crawlers' leases, schedule what is due (discovery,
//! `--url`s, page re-checks, ladder rungs), lease due items and hand each to its
//! handler concurrently, record what became of each, and close the run.

use std::sync::Arc;
use std::time::Duration;

use mpwatch_core::time::UnixSeconds;
use mpwatch_store::queue::WorkItem;
use mpwatch_store::runs::RunResult;
use tracing::{Instrument as _, debug, info, info_span, warn};

use crate::engine::{CrawlOptions, CrawlSummary, Engine, Until};
use crate::error::CrawlError;
use crate::ladder::ladder;
use crate::progress::Progress;
use crate::work::{DISCOVER, METRICS, Outcome, PAGE};

/// How often the rate limiters forget idle keys (real time).
const LIMITER_HOUSEKEEPING: Duration = Duration::from_secs(600);

/// `<pid>@<host>`: who holds leases.
pub(crate) fn holder_name() -> String {
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

/// When a failed item is tried again: no earlier than its handler asked, and a random
/// part of an exponential backoff on its attempts later (30 s, doubling, up to 6 h),
/// so that many items failing together do not come back together.
fn spread_retry(now: UnixSeconds, asked: UnixSeconds, attempts: i64, rng: &mut impl rand::Rng) -> UnixSeconds {
    let ceiling = 30i64.saturating_mul(1 << attempts.clamp(0, 10)).min(6 * 3600);
    asked.max(now) + rng.random_range(ceiling / 2..=ceiling)
}

impl Engine {
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
        self.http.set_run(run_id);
        let span = info_span!("crawl", run = run_id);
        let result = self.run_loop(options).instrument(span).await;
        let counts = self.progress.counts();
        let queued = self.db.call(|store| store.open_work()).await?;
        let outcomes = self.progress.outcomes();
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
            cooldowns: self.progress.cooldowns.load(std::sync::atomic::Ordering::Relaxed),
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
        let mut last_housekeeping = tokio::time::Instant::now();
        loop {
            let now = self.now();
            if last_housekeeping.elapsed() >= LIMITER_HOUSEKEEPING {
                self.http.limiters.retain_recent();
                last_housekeeping = tokio::time::Instant::now();
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
            self.progress.leased.fetch_add(items.len() as u64, std::sync::atomic::Ordering::Relaxed);
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
        Progress::bump(&self.progress.processed);
        let now = self.now();
        let max_attempts = i64::from(self.config.crawl.max_attempts);
        let id = item.id;
        match outcome {
            Outcome::Done => Ok(()),
            Outcome::Retry(at, error) if item.attempts < max_attempts => {
                Progress::bump(&self.progress.failures);
                let at = spread_retry(now, at, item.attempts, &mut rand::rng());
                debug!(item = id, retry_at = at, "will retry: {error}");
                self.db.call(move |store| store.write(|tx| tx.retry_work(id, at, &error, now))).await
            }
            Outcome::Retry(_, error) | Outcome::Fail(error) => {
                Progress::bump(&self.progress.failures);
                warn!(item = id, kind = %item.kind, "gave up: {error}");
                self.db.call(move |store| store.write(|tx| tx.fail_work(id, &error, now))).await
            }
            Outcome::Postpone(at, reason) => {
                self.db.call(move |store| store.write(|tx| tx.postpone_work(id, at, &reason, now))).await
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
