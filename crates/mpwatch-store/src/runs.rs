//! Crawl runs and the fetch log: what mpwatch did, for status pages and users' queries.

use mpwatch_core::CrawlTrigger;
use mpwatch_core::time::UnixSeconds;
use rusqlite::params;
use serde::Serialize;

use crate::{Context as _, Result, Tx};

/// Totals of a crawl run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    /// Accounts visited.
    pub accounts: i64,
    /// Articles seen in lists and feeds.
    pub articles_found: i64,
    /// Articles stored for the first time.
    pub articles_new: i64,
    /// Stored articles that changed.
    pub articles_updated: i64,
    /// Snapshots taken.
    pub snapshots: i64,
    /// Work items that failed (and were queued again or given up).
    pub failures: i64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    /// Everything worked.
    Ok,
    /// Some work failed and waits for a retry.
    Partial,
    /// Nothing could be done.
    Failed,
    /// Stopped before the end (signal).
    Interrupted,
}

impl RunResult {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Ok => "ok",
            RunResult::Partial => "partial",
            RunResult::Failed => "failed",
            RunResult::Interrupted => "interrupted",
        }
    }
}

/// One row of the fetch log. `target` must never contain a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRecord<'a> {
    /// The run, if any.
    pub crawl_run_id: Option<i64>,
    /// When the request started.
    pub at: UnixSeconds,
    /// `article_page`, `list_api`, `count_api`, `feed`, `robots`.
    pub url_class: &'a str,
    /// A canonical URL or a biz.
    pub target: Option<&'a str>,
    /// HTTP status, when a response came.
    pub http_status: Option<u16>,
    /// Classified outcome: `ok`, `deleted`, `verification`, `throttled`, `timeout`, ...
    pub outcome: &'a str,
    /// Body bytes.
    pub bytes: Option<u64>,
    /// Time taken.
    pub duration_ms: Option<u64>,
}

impl Tx<'_> {
    /// Opens a run record and returns its id.
    pub fn start_run(&self, trigger: CrawlTrigger, job: &str, now: UnixSeconds) -> Result<i64> {
        self.connection()
            .execute(
                "INSERT INTO crawl_runs (trigger, job, started_at) VALUES (?1, ?2, ?3)",
                params![trigger.as_str(), job, now],
            )
            .context(|| "recording crawl run".into())?;
        Ok(self.connection().last_insert_rowid())
    }

    /// Closes a run record with its totals.
    pub fn finish_run(
        &self,
        id: i64,
        counts: &RunCounts,
        result: RunResult,
        message: Option<&str>,
        now: UnixSeconds,
    ) -> Result<()> {
        self.connection()
            .execute(
                "UPDATE crawl_runs SET finished_at = ?2, accounts = ?3, articles_found = ?4, articles_new = ?5,
                    articles_updated = ?6, snapshots = ?7, failures = ?8, result = ?9, message = ?10
                 WHERE id = ?1",
                params![
                    id,
                    now,
                    counts.accounts,
                    counts.articles_found,
                    counts.articles_new,
                    counts.articles_updated,
                    counts.snapshots,
                    counts.failures,
                    result.as_str(),
                    message
                ],
            )
            .context(|| format!("finishing crawl run #{id}"))?;
        Ok(())
    }

    /// Appends to the fetch log.
    pub fn log_fetch(&self, record: &FetchRecord<'_>) -> Result<()> {
        self.connection()
            .execute(
                "INSERT INTO fetch_log (crawl_run_id, at, url_class, target, http_status, outcome, bytes, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    record.crawl_run_id,
                    record.at,
                    record.url_class,
                    record.target,
                    record.http_status,
                    record.outcome,
                    record.bytes.map(|b| b as i64),
                    record.duration_ms.map(|d| d as i64)
                ],
            )
            .context(|| "writing fetch log".into())?;
        Ok(())
    }
}
