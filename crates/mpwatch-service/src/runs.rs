//! What a job's or an ad-hoc request's run does and how its end is described: crawl
//! runs through the engine, the index and maintenance jobs on the blocking pool, the
//! options a request carries, the jitter sleep before a run.

use std::sync::Arc;
use std::time::Duration;

use mpwatch_core::config::Config;
use mpwatch_core::time::{Clock, UnixSeconds};
use mpwatch_crawl::{CrawlError, CrawlSummary};
use mpwatch_store::{Store, StoreOptions};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The options of an ad-hoc crawl, as stored in `crawl_requests.options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestOptions {
    /// Account ids (empty: all enabled accounts).
    #[serde(default)]
    pub accounts: Vec<i64>,
    /// Extra article URLs.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Discover and fetch pages.
    #[serde(default = "yes")]
    pub pages: bool,
    /// Take due snapshots.
    #[serde(default = "yes")]
    pub metrics: bool,
    /// Page lists all the way back.
    #[serde(default)]
    pub backfill: bool,
}

fn yes() -> bool {
    true
}

/// A job's or request's run, as it ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) result: String,
    pub(crate) message: Option<String>,
    pub(crate) run_id: Option<i64>,
    pub(crate) line: String,
}

/// A random delay of up to `max` (jobs' `jitter`).
pub(crate) fn random_up_to(max: Duration) -> Duration {
    if max.is_zero() { Duration::ZERO } else { max.mul_f64(rand::rng().random::<f64>()) }
}

/// Sleeps `span` of clock time (shorter in real time on a fast clock); false when
/// stopped first.
pub(crate) async fn sleep_clock(clock: &Arc<dyn Clock>, span: Duration, stop: &CancellationToken) -> bool {
    if span.is_zero() {
        return true;
    }
    let end = clock.now() + span.as_secs() as i64;
    while clock.now() < end {
        let rate = clock.rate();
        let wait = if rate > 0.0 {
            Duration::from_secs_f64(((end - clock.now()).max(0) as f64 / rate).clamp(0.005, 0.5))
        } else {
            Duration::from_millis(50)
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return false,
        }
    }
    true
}

pub(crate) fn crawl_finished(result: Result<CrawlSummary, CrawlError>) -> Finished {
    match result {
        Ok(summary) => {
            let c = summary.counts;
            Finished {
                line: format!(
                    "run #{}: {} accounts, {} articles found, {} new, {} updated, {} snapshots, {} failures, {} cooldowns, {} queued, {:.1} s",
                    summary.run_id,
                    c.accounts,
                    c.articles_found,
                    c.articles_new,
                    c.articles_updated,
                    c.snapshots,
                    c.failures,
                    summary.cooldowns,
                    summary.queued,
                    summary.duration_ms as f64 / 1000.0
                ),
                result: summary.result,
                message: None,
                run_id: Some(summary.run_id),
            }
        }
        Err(error) => {
            Finished { result: "failed".into(), message: Some(error.to_string()), run_id: None, line: String::new() }
        }
    }
}

pub(crate) fn blocking_job(body: impl FnOnce() -> Result<String, String>) -> Finished {
    match body() {
        Ok(line) => Finished { result: "ok".into(), message: None, run_id: None, line },
        Err(message) => Finished { result: "failed".into(), message: Some(message), run_id: None, line: String::new() },
    }
}

pub(crate) fn index_job(db_path: &std::path::Path, config: &Config, now: UnixSeconds) -> Result<String, String> {
    let options = StoreOptions { busy_timeout: config.store.busy_timeout, create: false, adopt: false };
    let mut store = Store::open(db_path, &options).map_err(|e| e.to_string())?;
    let rules = mpwatch_index::compute::Rules::from_config(config)
        .map_err(|error| format!("time zone {}: {error}", config.timezone))?;
    let summary = mpwatch_index::update(&mut store, &rules, mpwatch_index::Scope::Incremental, now)
        .map_err(|error| error.to_string())?;
    Ok(format!(
        "indices: {} periods recomputed, {} changed, {} rows written",
        summary.periods, summary.changed, summary.rows
    ))
}

pub(crate) fn maintenance_job(
    db_path: &std::path::Path,
    config: &Config,
    now: UnixSeconds,
    keep_going: &dyn Fn() -> bool,
) -> Result<String, String> {
    let options = StoreOptions { busy_timeout: config.store.busy_timeout, create: false, adopt: false };
    let mut store = Store::open(db_path, &options).map_err(|e| e.to_string())?;
    let cutoff = now - config.service.fetch_log_max_age.as_secs() as i64;
    let summary = store.maintain(cutoff, keep_going).map_err(|e| e.to_string())?;
    Ok(format!(
        "maintenance: pruned {} fetch-log rows, {} finished work items, {} alerts; {} articles added to the search index; {} WAL frames checkpointed{}{}",
        summary.fetch_log_deleted,
        summary.work_items_deleted,
        summary.alerts_deleted,
        summary.indexed_for_search,
        summary.wal_frames_checkpointed,
        if summary.checkpoint_busy { " (a reader kept the checkpoint from completing)" } else { "" },
        if summary.stopped_early { " (stopped early: the service is stopping)" } else { "" }
    ))
}
