//! Crawl runs and the fetch log: what mpwatch did, for status pages and users' queries.

use crate::sql::params;
use mpwatch_core::CrawlTrigger;
use mpwatch_core::time::UnixSeconds;
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
    /// Opens a run record and returns its id. `holder` (`<pid>@<host>`) lets a later
    /// process close the run if this one dies.
    pub fn start_run(&self, trigger: CrawlTrigger, job: &str, holder: Option<&str>, now: UnixSeconds) -> Result<i64> {
        self.connection()
            .execute_cached(
                "INSERT INTO crawl_runs (trigger, job, started_at, holder) VALUES (?1, ?2, ?3, ?4)",
                params![trigger.as_str(), job, now, holder],
            )
            .context(|| "recording crawl run".into())?;
        Ok(self.connection().last_insert_rowid())
    }

    /// Writes a running run's totals so far (so that a killed run keeps its counts).
    pub fn update_run_counts(&self, id: i64, counts: &RunCounts) -> Result<()> {
        self.connection()
            .execute_cached(
                "UPDATE crawl_runs SET accounts = ?2, articles_found = ?3, articles_new = ?4, articles_updated = ?5,
                    snapshots = ?6, failures = ?7
                 WHERE id = ?1 AND result = 'running'",
                params![
                    id,
                    counts.accounts,
                    counts.articles_found,
                    counts.articles_new,
                    counts.articles_updated,
                    counts.snapshots,
                    counts.failures
                ],
            )
            .context(|| format!("updating crawl run #{id}"))?;
        Ok(())
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
            .execute_cached(
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
            .prepare_cached(
                "INSERT INTO fetch_log (crawl_run_id, at, url_class, target, http_status, outcome, bytes, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    record.crawl_run_id,
                    record.at,
                    record.url_class,
                    record.target,
                    record.http_status,
                    record.outcome,
                    record.bytes.map(|b| b as i64),
                    record.duration_ms.map(|d| d as i64)
                ])
            })
            .context(|| "writing fetch log".into())?;
        Ok(())
    }
}

/// A crawl run as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    /// Row id.
    pub id: i64,
    /// `schedule`, `adhoc`, `demo`.
    pub trigger: String,
    /// The job (`crawl`, a schedule name, ...).
    pub job: String,
    /// Started.
    pub started_at: UnixSeconds,
    /// Finished, once it has.
    pub finished_at: Option<UnixSeconds>,
    /// Totals (so far, while running).
    pub counts: RunCounts,
    /// `running`, `ok`, `partial`, `failed`, `interrupted`.
    pub result: String,
    /// Why it failed or stopped.
    pub message: Option<String>,
}

impl crate::Store {
    /// Requests of a run by outcome class, from the fetch log.
    pub fn run_outcomes(&self, run_id: i64) -> Result<std::collections::BTreeMap<String, u64>> {
        self.connection()
            .prepare_cached("SELECT outcome, count(*) FROM fetch_log WHERE crawl_run_id = ?1 GROUP BY outcome")
            .and_then(|mut s| {
                s.query_map([run_id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))?.collect()
            })
            .context(|| format!("reading the requests of crawl run #{run_id}"))
    }

    /// One crawl run.
    pub fn crawl_run(&self, id: i64) -> Result<Option<RunRecord>> {
        use rusqlite::OptionalExtension as _;
        self.connection()
            .query_row(
                "SELECT id, trigger, job, started_at, finished_at, accounts, articles_found, articles_new,
                        articles_updated, snapshots, failures, result, message
                 FROM crawl_runs WHERE id = ?1",
                [id],
                |row| {
                    Ok(RunRecord {
                        id: row.get(0)?,
                        trigger: row.get(1)?,
                        job: row.get(2)?,
                        started_at: row.get(3)?,
                        finished_at: row.get(4)?,
                        counts: RunCounts {
                            accounts: row.get(5)?,
                            articles_found: row.get(6)?,
                            articles_new: row.get(7)?,
                            articles_updated: row.get(8)?,
                            snapshots: row.get(9)?,
                            failures: row.get(10)?,
                        },
                        result: row.get(11)?,
                        message: row.get(12)?,
                    })
                },
            )
            .optional()
            .context(|| format!("reading crawl run #{id}"))
    }
}
