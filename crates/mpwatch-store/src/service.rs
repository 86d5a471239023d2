//! The service's state: scheduled jobs and their last fires (`service_jobs`), the
//! crawler lock that lets one process fetch at a time (`crawler_lock`), and ad-hoc
//! crawl requests handed to the running service (`crawl_requests`).

use mpwatch_core::time::UnixSeconds;
use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;

use crate::{Context as _, Result, Store, Tx};

/// Who holds the crawler lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrawlerLock {
    /// `<pid>@<host>`.
    pub holder: String,
    /// `service` or `crawl` (a foreground crawl).
    pub role: String,
    /// Since when.
    pub acquired_at: UnixSeconds,
    /// Last sign of life.
    pub heartbeat_at: UnixSeconds,
    /// What it is doing.
    pub status: Option<String>,
}

/// What trying to take the crawler lock gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// Taken (or already ours, or taken over from a dead holder).
    Taken,
    /// Held by a live process.
    Held(CrawlerLock),
}

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

const LOCK_COLUMNS: &str = "holder, role, acquired_at, heartbeat_at, status";
const JOB_COLUMNS: &str =
    "name, kind, last_fire_at, last_started_at, last_finished_at, last_result, last_message, last_run_id, next_fire_at";
const REQUEST_COLUMNS: &str =
    "id, requested_at, requested_by, options, state, run_id, started_at, finished_at, message";

fn lock_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CrawlerLock> {
    Ok(CrawlerLock {
        holder: row.get(0)?,
        role: row.get(1)?,
        acquired_at: row.get(2)?,
        heartbeat_at: row.get(3)?,
        status: row.get(4)?,
    })
}

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobState> {
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
    })
}

fn request_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CrawlRequest> {
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
    /// Takes the crawler lock for `holder` unless a live process (`is_alive`, which
    /// sees the holder and its last heartbeat) holds it; a dead holder's lock is taken
    /// over.
    pub fn take_crawler_lock(
        &self,
        holder: &str,
        role: &str,
        is_alive: impl Fn(&CrawlerLock) -> bool,
        now: UnixSeconds,
    ) -> Result<LockOutcome> {
        let current = self
            .connection()
            .query_row(&format!("SELECT {LOCK_COLUMNS} FROM crawler_lock WHERE id = 1"), [], lock_from_row)
            .optional()
            .context(|| "reading the crawler lock".into())?;
        if let Some(lock) = current
            && lock.holder != holder
            && is_alive(&lock)
        {
            return Ok(LockOutcome::Held(lock));
        }
        self.connection()
            .execute(
                "INSERT INTO crawler_lock (id, holder, role, acquired_at, heartbeat_at) VALUES (1, ?1, ?2, ?3, ?3)
                 ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, role = excluded.role,
                    acquired_at = CASE WHEN crawler_lock.holder = excluded.holder THEN crawler_lock.acquired_at
                                       ELSE excluded.acquired_at END,
                    heartbeat_at = excluded.heartbeat_at, status = NULL",
                params![holder, role, now],
            )
            .context(|| "taking the crawler lock".into())?;
        Ok(LockOutcome::Taken)
    }

    /// A sign of life of the lock's holder, with what it is doing.
    pub fn heartbeat_crawler_lock(&self, holder: &str, status: Option<&str>, now: UnixSeconds) -> Result<bool> {
        let updated = self
            .connection()
            .execute(
                "UPDATE crawler_lock SET heartbeat_at = ?2, status = ?3 WHERE id = 1 AND holder = ?1",
                params![holder, now, status],
            )
            .context(|| "refreshing the crawler lock".into())?;
        Ok(updated == 1)
    }

    /// Gives the lock back (if `holder` has it).
    pub fn release_crawler_lock(&self, holder: &str) -> Result<()> {
        self.connection()
            .execute("DELETE FROM crawler_lock WHERE id = 1 AND holder = ?1", params![holder])
            .context(|| "releasing the crawler lock".into())?;
        Ok(())
    }

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
                .execute(
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
            .execute(
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
            .execute(
                "UPDATE service_jobs SET last_finished_at = ?2, last_result = ?3, last_message = ?4,
                    last_run_id = coalesce(?5, last_run_id)
                 WHERE name = ?1",
                params![name, now, result, message, run_id],
            )
            .context(|| format!("recording the end of job {name}"))?;
        Ok(())
    }

    /// Records a fire that was not run (the job was still running, or catch-up is off).
    pub fn job_skipped(&self, name: &str, kind: &str, fire_at: UnixSeconds, why: &str) -> Result<()> {
        self.connection()
            .execute(
                "INSERT INTO service_jobs (name, kind, last_fire_at, last_message) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, last_fire_at = max(coalesce(last_fire_at, 0), excluded.last_fire_at),
                    last_message = excluded.last_message",
                params![name, kind, fire_at, why],
            )
            .context(|| format!("recording a skipped fire of job {name}"))?;
        Ok(())
    }

    /// Stores the next fire time the service computed for a job.
    pub fn job_next_fire(&self, name: &str, kind: &str, next: Option<UnixSeconds>) -> Result<()> {
        self.connection()
            .execute(
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
            .execute(
                "INSERT INTO crawl_requests (requested_at, requested_by, options) VALUES (?1, ?2, ?3)",
                params![now, requested_by, options],
            )
            .context(|| "recording a crawl request".into())?;
        Ok(self.connection().last_insert_rowid())
    }

    /// Takes the oldest pending request (it becomes `running`).
    pub fn take_crawl_request(&self, now: UnixSeconds) -> Result<Option<CrawlRequest>> {
        let request = self
            .connection()
            .query_row(
                &format!("SELECT {REQUEST_COLUMNS} FROM crawl_requests WHERE state = 'pending' ORDER BY id LIMIT 1"),
                [],
                request_from_row,
            )
            .optional()
            .context(|| "reading crawl requests".into())?;
        let Some(mut request) = request else { return Ok(None) };
        self.connection()
            .execute(
                "UPDATE crawl_requests SET state = 'running', started_at = ?2 WHERE id = ?1",
                params![request.id, now],
            )
            .context(|| format!("starting crawl request #{}", request.id))?;
        request.state = "running".into();
        request.started_at = Some(now);
        Ok(Some(request))
    }

    /// Links a request to its crawl run.
    pub fn crawl_request_run(&self, id: i64, run_id: i64) -> Result<()> {
        self.connection()
            .execute("UPDATE crawl_requests SET run_id = ?2 WHERE id = ?1", params![id, run_id])
            .context(|| format!("linking crawl request #{id}"))?;
        Ok(())
    }

    /// Records how a request ended (`done`, `failed`, `cancelled`).
    pub fn finish_crawl_request(&self, id: i64, state: &str, message: Option<&str>, now: UnixSeconds) -> Result<()> {
        self.connection()
            .execute(
                "UPDATE crawl_requests SET state = ?2, message = ?3, finished_at = ?4 WHERE id = ?1",
                params![id, state, message, now],
            )
            .context(|| format!("finishing crawl request #{id}"))?;
        Ok(())
    }

    /// Requests a previous service left `running` (it was killed) go back to pending.
    pub fn requeue_running_requests(&self) -> Result<usize> {
        self.connection()
            .execute("UPDATE crawl_requests SET state = 'pending', started_at = NULL WHERE state = 'running'", [])
            .context(|| "requeueing crawl requests".into())
    }
}

impl Store {
    /// Who holds the crawler lock, if anyone.
    pub fn crawler_lock(&self) -> Result<Option<CrawlerLock>> {
        self.connection()
            .query_row(&format!("SELECT {LOCK_COLUMNS} FROM crawler_lock WHERE id = 1"), [], lock_from_row)
            .optional()
            .context(|| "reading the crawler lock".into())
    }

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
