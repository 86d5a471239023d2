//! The service's state: scheduled jobs and their last fires (`service_jobs`) and ad-hoc
//! crawl requests handed to the running service (`crawl_requests`). (Who crawls, the
//! crawler lock of each node, is [`crate::nodes`].)

use crate::sql::{OptionalExtension as _, params};
use mpwatch_core::time::UnixSeconds;
use serde::Serialize;

use crate::{Context as _, Result, Store, Tx};

/// A scheduled job's last fire and result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobState {
    /// The `[[schedule]]` name.
    pub name: String,
    /// `discover`, `metrics`, `index`, `maintenance`.
    pub kind: String,
    /// The scheduled time last handled (run or skipped).
    pub last_fire_at: Option<UnixSeconds>,
    /// When its last run started.
    pub last_started_at: Option<UnixSeconds>,
    /// When its last run finished.
    pub last_finished_at: Option<UnixSeconds>,
    /// `running`, `ok`, `partial`, `failed`, `interrupted`, `skipped`.
    pub last_result: Option<String>,
    /// Why, when it did not go well.
    pub last_message: Option<String>,
    /// Its last crawl run.
    pub last_run_id: Option<i64>,
    /// Its next fire, as the running service computed it.
    pub next_fire_at: Option<UnixSeconds>,
    /// When a run of it last ended `ok` or `partial`.
    pub last_success_at: Option<UnixSeconds>,
}

/// An ad-hoc crawl handed to the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrawlRequest {
    /// Row id.
    pub id: i64,
    /// When it was asked for.
    pub requested_at: UnixSeconds,
    /// Who asked.
    pub requested_by: Option<String>,
    /// The crawl's options, as JSON.
    pub options: String,
    /// `pending`, `running`, `done`, `failed`, `cancelled`.
    pub state: String,
    /// Its crawl run, once started.
    pub run_id: Option<i64>,
    /// When the service started it.
    pub started_at: Option<UnixSeconds>,
    /// When it ended.
    pub finished_at: Option<UnixSeconds>,
    /// How it ended.
    pub message: Option<String>,
}

const JOB_COLUMNS: &str = "name, kind, last_fire_at, last_started_at, last_finished_at, last_result, last_message, last_run_id, next_fire_at, last_success_at";
const REQUEST_COLUMNS: &str =
    "id, requested_at, requested_by, options, state, run_id, started_at, finished_at, message";

fn job_from_row(row: &crate::sql::Row<'_>) -> rusqlite::Result<JobState> {
    Ok(JobState {
        name: row.get(0)?,
        kind: row.get(1)?,
        last_fire_at: row.get(2)?,
        last_started_at: row.get(3)?,
        last_finished_at: row.get(4)?,
        last_result: row.get(5)?,
        last_message: row.get(6)?,
        last_run_id: row.get(7)?,
        next_fire_at: row.get(8)?,
        last_success_at: row.get(9)?,
    })
}

fn request_from_row(row: &crate::sql::Row<'_>) -> rusqlite::Result<CrawlRequest> {
    Ok(CrawlRequest {
        id: row.get(0)?,
        requested_at: row.get(1)?,
        requested_by: row.get(2)?,
        options: row.get(3)?,
        state: row.get(4)?,
        run_id: row.get(5)?,
        started_at: row.get(6)?,
        finished_at: row.get(7)?,
        message: row.get(8)?,
    })
}

impl Tx<'_> {
    /// Closes the runs left `running` by processes that are gone (killed, crashed):
    /// `interrupted`, with the counts they last wrote. Returns how many.
    pub fn close_dead_runs(&self, is_alive: impl Fn(&str) -> bool, now: UnixSeconds) -> Result<usize> {
        let running: Vec<(i64, Option<String>)> = self
            .connection()
            .prepare_cached("SELECT id, holder FROM crawl_runs WHERE result = 'running'")
            .and_then(|mut s| s.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
            .context(|| "reading running crawl runs".into())?;
        let mut closed = 0;
        for (id, holder) in running {
            if holder.as_deref().is_some_and(&is_alive) {
                continue;
            }
            closed += self
                .connection()
                .execute_cached(
                    "UPDATE crawl_runs SET result = 'interrupted', finished_at = ?2,
                        message = 'the process running it stopped without closing it (killed or crashed)'
                     WHERE id = ?1 AND result = 'running'",
                    params![id, now],
                )
                .context(|| format!("closing crawl run #{id}"))?;
        }
        Ok(closed)
    }

    /// Records that a job's fire at `fire_at` is being handled.
    pub fn job_started(
        &self,
        name: &str,
        kind: &str,
        fire_at: UnixSeconds,
        run_id: Option<i64>,
        now: UnixSeconds,
    ) -> Result<()> {
        self.connection()
            .execute_cached(
                "INSERT INTO service_jobs (name, kind, last_fire_at, last_started_at, last_result, last_message, last_run_id)
                 VALUES (?1, ?2, ?3, ?4, 'running', NULL, ?5)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, last_fire_at = excluded.last_fire_at,
                    last_started_at = excluded.last_started_at, last_finished_at = NULL,
                    last_result = 'running', last_message = NULL, last_run_id = excluded.last_run_id",
                params![name, kind, fire_at, now, run_id],
            )
            .context(|| format!("recording the start of job {name}"))?;
        Ok(())
    }

    /// Records the start of a job's run for the fire at `fire_at`, unless that fire (or
    /// a later one) was already started: by another node of a cluster, for the jobs
    /// that run once per fire in the whole cluster (index, maintenance). Returns whether
    /// this process runs it.
    pub fn claim_job_fire(&self, name: &str, kind: &str, fire_at: UnixSeconds, now: UnixSeconds) -> Result<bool> {
        let claimed = self
            .connection()
            .execute_cached(
                "INSERT INTO service_jobs (name, kind, last_fire_at, last_started_at, last_result, last_message, last_run_id)
                 VALUES (?1, ?2, ?3, ?4, 'running', NULL, NULL)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, last_fire_at = excluded.last_fire_at,
                    last_started_at = excluded.last_started_at, last_finished_at = NULL,
                    last_result = 'running', last_message = NULL, last_run_id = NULL
                 WHERE service_jobs.last_fire_at IS NULL OR service_jobs.last_fire_at < excluded.last_fire_at",
                params![name, kind, fire_at, now],
            )
            .context(|| format!("recording the start of job {name}"))?;
        Ok(claimed == 1)
    }

    /// Records how a job's run ended.
    pub fn job_finished(
        &self,
        name: &str,
        result: &str,
        message: Option<&str>,
        run_id: Option<i64>,
        now: UnixSeconds,
    ) -> Result<()> {
        self.connection()
            .execute_cached(
                "UPDATE service_jobs SET last_finished_at = ?2, last_result = ?3, last_message = ?4,
                    last_run_id = coalesce(?5, last_run_id),
                    last_success_at = CASE WHEN ?3 IN ('ok', 'partial') THEN ?2 ELSE last_success_at END
                 WHERE name = ?1",
                params![name, now, result, message, run_id],
            )
            .context(|| format!("recording the end of job {name}"))?;
        Ok(())
    }

    /// Records a fire that was not run (the job was still running, or catch-up is off).
    pub fn job_skipped(&self, name: &str, kind: &str, fire_at: UnixSeconds, why: &str) -> Result<()> {
        self.connection()
            .execute_cached(
                "INSERT INTO service_jobs (name, kind, last_fire_at, last_message) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, last_fire_at = max(coalesce(service_jobs.last_fire_at, 0), excluded.last_fire_at),
                    last_message = excluded.last_message",
                params![name, kind, fire_at, why],
            )
            .context(|| format!("recording a skipped fire of job {name}"))?;
        Ok(())
    }

    /// Stores the next fire time the service computed for a job.
    pub fn job_next_fire(&self, name: &str, kind: &str, next: Option<UnixSeconds>) -> Result<()> {
        self.connection()
            .execute_cached(
                "INSERT INTO service_jobs (name, kind, next_fire_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, next_fire_at = excluded.next_fire_at",
                params![name, kind, next],
            )
            .context(|| format!("recording the next fire of job {name}"))?;
        Ok(())
    }

    /// Asks the service for a crawl; returns the request id.
    pub fn add_crawl_request(&self, options: &str, requested_by: Option<&str>, now: UnixSeconds) -> Result<i64> {
        self.connection()
            .execute_cached(
                "INSERT INTO crawl_requests (requested_at, requested_by, options) VALUES (?1, ?2, ?3)",
                params![now, requested_by, options],
            )
            .context(|| "recording a crawl request".into())?;
        Ok(self.connection().last_insert_rowid())
    }

    /// Jobs left `running` by a service that was killed: `interrupted`.
    pub fn interrupt_running_jobs(&self, now: UnixSeconds) -> Result<usize> {
        self.connection()
            .execute_cached(
                "UPDATE service_jobs SET last_result = 'interrupted', last_finished_at = ?1,
                    last_message = 'the service stopped during the run'
                 WHERE last_result = 'running'",
                [now],
            )
            .context(|| "closing running jobs".into())
    }

    /// Forgets jobs no longer in the configuration.
    pub fn remove_jobs_except(&self, names: &[String]) -> Result<usize> {
        let names = serde_json::to_string(names).unwrap_or_else(|_| "[]".into());
        self.connection()
            .execute_cached("DELETE FROM service_jobs WHERE name NOT IN (SELECT value FROM json_each(?1))", [names])
            .context(|| "removing old jobs".into())
    }

    /// Puts a request back to wait (its run was stopped with the service).
    pub fn requeue_crawl_request(&self, id: i64) -> Result<()> {
        self.connection()
            .execute_cached("UPDATE crawl_requests SET state = 'pending', started_at = NULL WHERE id = ?1", [id])
            .context(|| format!("requeueing crawl request #{id}"))?;
        Ok(())
    }

    /// Takes the oldest pending request (it becomes `running`).
    pub fn take_crawl_request(&self, now: UnixSeconds) -> Result<Option<CrawlRequest>> {
        let request = self
            .connection()
            .query_row(
                // `state IN (...)` lets SQLite use the partial index crawl_requests_open
                // (it cannot tell that `state = 'pending'` implies its condition).
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM crawl_requests
                     WHERE state IN ('pending', 'running') AND state = 'pending' ORDER BY id LIMIT 1"
                ),
                [],
                request_from_row,
            )
            .optional()
            .context(|| "reading crawl requests".into())?;
        let Some(mut request) = request else { return Ok(None) };
        // Only if still pending: on PostgreSQL another service may have taken it since.
        let taken = self
            .connection()
            .execute_cached(
                "UPDATE crawl_requests SET state = 'running', started_at = ?2 WHERE id = ?1 AND state = 'pending'",
                params![request.id, now],
            )
            .context(|| format!("starting crawl request #{}", request.id))?;
        if taken == 0 {
            return Ok(None);
        }
        request.state = "running".into();
        request.started_at = Some(now);
        Ok(Some(request))
    }

    /// Links a request to its crawl run.
    pub fn crawl_request_run(&self, id: i64, run_id: i64) -> Result<()> {
        self.connection()
            .execute_cached("UPDATE crawl_requests SET run_id = ?2 WHERE id = ?1", params![id, run_id])
            .context(|| format!("linking crawl request #{id}"))?;
        Ok(())
    }

    /// Records how a request ended (`done`, `failed`, `cancelled`).
    pub fn finish_crawl_request(&self, id: i64, state: &str, message: Option<&str>, now: UnixSeconds) -> Result<()> {
        self.connection()
            .execute_cached(
                "UPDATE crawl_requests SET state = ?2, message = ?3, finished_at = ?4 WHERE id = ?1",
                params![id, state, message, now],
            )
            .context(|| format!("finishing crawl request #{id}"))?;
        Ok(())
    }

    /// Requests a previous service left `running` (it was killed) go back to pending.
    /// On a cluster (`cluster`), only those whose run was closed as the work of a dead
    /// process ([`Tx::close_dead_runs`] first): the others are another node's, alive.
    pub fn requeue_running_requests(&self, cluster: bool) -> Result<usize> {
        self.connection()
            .execute_cached(
                "UPDATE crawl_requests SET state = 'pending', started_at = NULL
                 WHERE state IN ('pending', 'running') AND state = 'running'
                    AND (CAST(?1 AS BIGINT) = 0 OR (run_id IS NOT NULL AND NOT EXISTS
                        (SELECT 1 FROM crawl_runs r WHERE r.id = crawl_requests.run_id AND r.result = 'running')))",
                [i64::from(cluster)],
            )
            .context(|| "requeueing crawl requests".into())
    }
}

impl Store {
    /// Every job the service has recorded, by name.
    pub fn job_states(&self) -> Result<Vec<JobState>> {
        self.connection()
            .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM service_jobs ORDER BY name"))
            .and_then(|mut s| s.query_map([], job_from_row)?.collect())
            .context(|| "reading service jobs".into())
    }

    /// One job's state.
    pub fn job_state(&self, name: &str) -> Result<Option<JobState>> {
        self.connection()
            .query_row(&format!("SELECT {JOB_COLUMNS} FROM service_jobs WHERE name = ?1"), [name], job_from_row)
            .optional()
            .context(|| format!("reading job {name}"))
    }

    /// One crawl request.
    pub fn crawl_request(&self, id: i64) -> Result<Option<CrawlRequest>> {
        self.connection()
            .query_row(&format!("SELECT {REQUEST_COLUMNS} FROM crawl_requests WHERE id = ?1"), [id], request_from_row)
            .optional()
            .context(|| format!("reading crawl request #{id}"))
    }

    /// Whether a request waits (a read, so that an idle service takes no write lock).
    pub fn crawl_request_pending(&self) -> Result<bool> {
        self.connection()
            .query_row(CRAWL_REQUEST_PENDING, [], |row| row.get(0))
            .context(|| "reading crawl requests".into())
    }

    /// Requests not finished yet, oldest first.
    pub fn open_crawl_requests(&self) -> Result<Vec<CrawlRequest>> {
        self.connection()
            .prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM crawl_requests WHERE state IN ('pending', 'running') ORDER BY id"
            ))
            .and_then(|mut s| s.query_map([], request_from_row)?.collect())
            .context(|| "reading crawl requests".into())
    }
}

/// An alert as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRecord {
    /// Row id.
    pub id: i64,
    /// When it was raised.
    pub at: UnixSeconds,
    /// `credential_expired`, `no_credentials`, `source_failing`, `job_failed`, `cooldown`.
    pub kind: String,
    /// What it is about.
    pub subject: String,
    /// One line.
    pub message: String,
    /// Webhooks that accepted it.
    pub delivered: i64,
    /// Not sent: the same alert went out shortly before.
    pub suppressed: bool,
}

/// A credential set's state, as the crawler last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialStateRecord {
    /// The label from the secrets file.
    pub name: String,
    /// `valid` or `expired`.
    pub state: String,
    /// Since when.
    pub since: UnixSeconds,
}

impl Tx<'_> {
    /// Records an alert; returns its id.
    pub fn record_alert(
        &self,
        kind: &str,
        subject: &str,
        message: &str,
        suppressed: bool,
        at: UnixSeconds,
    ) -> Result<i64> {
        self.connection()
            .execute_cached(
                "INSERT INTO alerts (at, kind, subject, message, suppressed) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![at, kind, subject, message, i64::from(suppressed)],
            )
            .context(|| "recording an alert".into())?;
        Ok(self.connection().last_insert_rowid())
    }

    /// Counts the webhooks that accepted an alert.
    pub fn alert_delivered(&self, id: i64, webhooks: i64) -> Result<()> {
        self.connection()
            .execute_cached("UPDATE alerts SET delivered = ?2 WHERE id = ?1", params![id, webhooks])
            .context(|| format!("recording delivery of alert #{id}"))?;
        Ok(())
    }

    /// Records a credential set's state when it changes.
    pub fn set_credential_state(&self, name: &str, state: &str, now: UnixSeconds) -> Result<()> {
        self.connection()
            .execute_cached(
                "INSERT INTO credential_states (name, state, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET state = excluded.state,
                    since = CASE WHEN credential_states.state = excluded.state THEN credential_states.since
                                 ELSE excluded.since END",
                params![name, state, now],
            )
            .context(|| format!("recording the state of credential set {name}"))?;
        Ok(())
    }
}

impl Store {
    /// When the same alert (kind and subject) last went out (not suppressed).
    pub fn last_alert_sent(&self, kind: &str, subject: &str) -> Result<Option<UnixSeconds>> {
        self.connection()
            .query_row(
                "SELECT max(at) FROM alerts WHERE kind = ?1 AND subject = ?2 AND suppressed = 0",
                params![kind, subject],
                |row| row.get(0),
            )
            .context(|| "reading alerts".into())
    }

    /// Alerts raised since `since`, newest first.
    pub fn alerts_since(&self, since: UnixSeconds) -> Result<Vec<AlertRecord>> {
        self.connection()
            .prepare_cached(
                "SELECT id, at, kind, subject, message, delivered, suppressed FROM alerts WHERE at >= ?1 ORDER BY at DESC, id DESC",
            )
            .and_then(|mut s| {
                s.query_map([since], |row| {
                    Ok(AlertRecord {
                        id: row.get(0)?,
                        at: row.get(1)?,
                        kind: row.get(2)?,
                        subject: row.get(3)?,
                        message: row.get(4)?,
                        delivered: row.get(5)?,
                        suppressed: row.get::<_, i64>(6)? != 0,
                    })
                })?
                .collect()
            })
            .context(|| "reading alerts".into())
    }

    /// Every credential set's recorded state.
    pub fn credential_states(&self) -> Result<Vec<CredentialStateRecord>> {
        self.connection()
            .prepare_cached("SELECT name, state, since FROM credential_states ORDER BY name")
            .and_then(|mut s| {
                s.query_map([], |row| {
                    Ok(CredentialStateRecord { name: row.get(0)?, state: row.get(1)?, since: row.get(2)? })
                })?
                .collect()
            })
            .context(|| "reading credential states".into())
    }
}

/// Open work of one kind in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// `discover`, `page`, `metrics`.
    pub kind: String,
    /// `pending`, `leased`, `failed`.
    pub state: String,
    /// How many.
    pub items: i64,
    /// The earliest `not_before` among them.
    pub next_due: Option<UnixSeconds>,
}

impl Store {
    /// Work not done, by kind and state (done items are not counted: their number grows
    /// with the history). Each state is read from its partial index.
    pub fn queue_depth(&self) -> Result<Vec<QueueDepth>> {
        self.connection()
            .prepare_cached(
                "SELECT kind, state, count(*), min(not_before) FROM (
                     SELECT kind, 'pending' AS state, not_before FROM work_queue INDEXED BY work_queue_pending
                      WHERE state = 'pending'
                     UNION ALL SELECT kind, state, not_before FROM work_queue INDEXED BY work_queue_lease_expiry
                      WHERE state = 'leased'
                     UNION ALL SELECT kind, 'failed' AS state, not_before FROM work_queue INDEXED BY work_queue_failed
                      WHERE state = 'failed') AS queued
                 GROUP BY kind, state ORDER BY kind, state",
            )
            .and_then(|mut s| {
                s.query_map([], |row| {
                    Ok(QueueDepth { kind: row.get(0)?, state: row.get(1)?, items: row.get(2)?, next_due: row.get(3)? })
                })?
                .collect()
            })
            .context(|| "reading the work queue".into())
    }

    /// Runs still `running`.
    pub fn running_runs(&self) -> Result<Vec<crate::runs::RunRecord>> {
        let ids: Vec<i64> = self
            .connection()
            .prepare_cached("SELECT id FROM crawl_runs WHERE result = 'running' ORDER BY id")
            .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
            .context(|| "reading running crawl runs".into())?;
        let mut runs = Vec::new();
        for id in ids {
            runs.extend(self.crawl_run(id)?);
        }
        Ok(runs)
    }
}

impl Store {
    /// Articles by status (for metrics). Counts every stored article: a scan of the
    /// `articles` table, cheap next to a crawl but growing with the history.
    pub fn articles_by_status(&self) -> Result<Vec<(String, i64)>> {
        self.connection()
            .prepare_cached("SELECT status, count(*) FROM articles GROUP BY status ORDER BY status")
            .and_then(|mut s| s.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
            .context(|| "counting articles".into())
    }

    /// The highest snapshot id: snapshots are append-only, so this counts the snapshots
    /// ever taken (a purged account's included) without a scan.
    pub fn snapshots_taken(&self) -> Result<i64> {
        self.connection()
            .query_row("SELECT coalesce(max(id), 0) FROM metric_snapshots", [], |row| row.get(0))
            .context(|| "reading snapshots".into())
    }
}

/// Runs every service tick (the table keeps every request ever made): through the
/// partial index of open requests.
const CRAWL_REQUEST_PENDING: &str =
    "SELECT EXISTS (SELECT 1 FROM crawl_requests WHERE state IN ('pending', 'running') AND state = 'pending')";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    /// The service's tick asks for handed-over crawls through the index of open ones.
    #[test]
    fn a_tick_looks_for_pending_requests_through_the_open_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("s.db"), &StoreOptions::default()).expect("store");
        let plan = store.query_plan(CRAWL_REQUEST_PENDING).expect("plan");
        assert!(plan.iter().any(|step| step.contains("crawl_requests_open")), "{plan:#?}");
        assert!(!plan.iter().any(|step| step.starts_with("SCAN crawl_requests")), "{plan:#?}");
    }
}
