//! The persistent work queue, the crawl frontier: `pending -> leased -> done | failed`.
//!
//! A worker leases items for a while; if it crashes, the lease expires and the item is
//! leased again. Acknowledging an item ([`Tx::complete_work`]) in the same transaction
//! as the write it produced makes each item's effect happen exactly once.

use mpwatch_core::QueueState;
use mpwatch_core::time::UnixSeconds;
use rusqlite::params;
use serde::Serialize;

use crate::{Context as _, Result, Store, Tx};

/// A queue item as a worker receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkItem {
    /// Row id.
    pub id: i64,
    /// What to do (`list`, `page`, `metrics`, ...).
    pub kind: String,
    /// What to do it to (a URL, a biz, an article id and rung, ...).
    pub target: String,
    /// Higher runs first.
    pub priority: i64,
    /// Attempts so far, including the current one.
    pub attempts: i64,
    /// Last failure.
    pub last_error: Option<String>,
}

impl Tx<'_> {
    /// Adds an item, or re-arms a finished one. A pending or leased item with the same
    /// kind and target is left alone except that it keeps the higher priority and the
    /// earlier start.
    pub fn enqueue(
        &self,
        kind: &str,
        target: &str,
        priority: i64,
        not_before: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<()> {
        self.connection()
            .execute(
                "INSERT INTO work_queue (kind, target, priority, not_before, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (kind, target) DO UPDATE SET
                    priority = max(priority, excluded.priority),
                    not_before = CASE WHEN state IN ('done', 'failed') THEN excluded.not_before
                                      ELSE min(not_before, excluded.not_before) END,
                    attempts = CASE WHEN state IN ('done', 'failed') THEN 0 ELSE attempts END,
                    last_error = CASE WHEN state IN ('done', 'failed') THEN NULL ELSE last_error END,
                    state = CASE WHEN state IN ('done', 'failed') THEN 'pending' ELSE state END,
                    updated_at = excluded.updated_at",
                params![kind, target, priority, not_before, now],
            )
            .context(|| format!("queueing {kind} {target}"))?;
        Ok(())
    }

    /// Queues again the page of every article listed but never fetched whose page item
    /// was given up (or is missing), so a fault that outlasted the retries leaves no
    /// hole once it clears. Waiting items keep their time. Returns the items re-armed.
    pub fn rearm_unfetched_pages(&self, now: UnixSeconds) -> Result<usize> {
        self.connection()
            .execute(
                "INSERT INTO work_queue (kind, target, priority, not_before, created_at, updated_at)
                 SELECT 'page', url, 10, ?1, ?1, ?1 FROM articles WHERE status = 'pending'
                 ON CONFLICT (kind, target) DO UPDATE SET
                    state = 'pending', attempts = 0, last_error = NULL,
                    not_before = excluded.not_before, updated_at = excluded.updated_at
                 WHERE work_queue.state IN ('done', 'failed')",
                [now],
            )
            .context(|| "queueing pages of articles never fetched".into())
    }

    /// Leases up to `limit` ready items of the given kinds (all kinds when empty):
    /// pending ones whose `not_before` has come, and leased ones whose lease expired.
    pub fn lease_work(
        &self,
        kinds: &[&str],
        limit: usize,
        lease_until: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<Vec<WorkItem>> {
        self.lease_work_as(kinds, limit, lease_until, now, None)
    }

    /// [`Tx::lease_work`], recording who holds the leases (`<pid>@<host>`), so that
    /// [`Tx::reclaim_leases`] can take back those of a process that died.
    pub fn lease_work_as(
        &self,
        kinds: &[&str],
        limit: usize,
        lease_until: UnixSeconds,
        now: UnixSeconds,
        holder: Option<&str>,
    ) -> Result<Vec<WorkItem>> {
        let kinds_json = serde_json_array(kinds);
        let mut statement = self
            .connection()
            .prepare_cached(
                "UPDATE work_queue SET state = 'leased', lease_until = ?1, attempts = attempts + 1, updated_at = ?2,
                    leased_by = ?5
                 WHERE id IN (
                    SELECT id FROM work_queue
                    WHERE ((state = 'pending' AND not_before <= ?2) OR (state = 'leased' AND lease_until <= ?2))
                      AND (?3 = '[]' OR kind IN (SELECT value FROM json_each(?3)))
                    ORDER BY priority DESC, not_before, id
                    LIMIT ?4)
                 RETURNING id, kind, target, priority, attempts, last_error",
            )
            .context(|| "leasing work".into())?;
        let mut items: Vec<WorkItem> = statement
            .query_map(params![lease_until, now, kinds_json, limit as i64, holder], |row| {
                Ok(WorkItem {
                    id: row.get(0)?,
                    kind: row.get(1)?,
                    target: row.get(2)?,
                    priority: row.get(3)?,
                    attempts: row.get(4)?,
                    last_error: row.get(5)?,
                })
            })
            .and_then(|rows| rows.collect())
            .context(|| "leasing work".into())?;
        // RETURNING gives rows in no particular order.
        items.sort_by_key(|item| (-item.priority, item.id));
        Ok(items)
    }

    /// Returns to `pending` every leased item whose holder `is_alive` says is gone
    /// (a crashed or killed crawler). Returns how many were taken back.
    pub fn reclaim_leases(&self, is_alive: impl Fn(&str) -> bool, now: UnixSeconds) -> Result<usize> {
        let conn = self.connection();
        let mut statement = conn
            .prepare("SELECT id, leased_by FROM work_queue WHERE state = 'leased'")
            .context(|| "reading leases".into())?;
        let leases: Vec<(i64, Option<String>)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .context(|| "reading leases".into())?;
        let mut reclaimed = 0;
        for (id, holder) in leases {
            if holder.as_deref().is_some_and(&is_alive) {
                continue;
            }
            reclaimed += conn
                .execute(
                    "UPDATE work_queue SET state = 'pending', lease_until = NULL, leased_by = NULL, updated_at = ?2
                     WHERE id = ?1",
                    params![id, now],
                )
                .context(|| format!("reclaiming work item #{id}"))?;
        }
        Ok(reclaimed)
    }

    /// Gives leased items back untried (a stop before they finished): pending again,
    /// due now, the attempt not counted.
    pub fn release_work(&self, ids: &[i64], now: UnixSeconds) -> Result<usize> {
        let mut released = 0;
        for id in ids {
            released += self
                .connection()
                .execute(
                    "UPDATE work_queue SET state = 'pending', lease_until = NULL, leased_by = NULL,
                        attempts = max(attempts - 1, 0), updated_at = ?2
                     WHERE id = ?1 AND state = 'leased'",
                    params![id, now],
                )
                .context(|| format!("releasing work item #{id}"))?;
        }
        Ok(released)
    }

    /// Marks an item done.
    pub fn complete_work(&self, id: i64, now: UnixSeconds) -> Result<()> {
        self.set_state(id, QueueState::Done, None, None, now)
    }

    /// Puts an item back to wait until `not_before`, recording why.
    pub fn retry_work(&self, id: i64, not_before: UnixSeconds, error: &str, now: UnixSeconds) -> Result<()> {
        self.set_state(id, QueueState::Pending, Some(not_before), Some(error), now)
    }

    /// Puts an item back to wait until `not_before` without counting the attempt (it was
    /// not tried: a cooldown, no credential).
    pub fn postpone_work(&self, id: i64, not_before: UnixSeconds, reason: &str, now: UnixSeconds) -> Result<()> {
        self.set_state(id, QueueState::Pending, Some(not_before), Some(reason), now)?;
        self.connection()
            .execute("UPDATE work_queue SET attempts = max(attempts - 1, 0) WHERE id = ?1", [id])
            .context(|| format!("updating work item #{id}"))?;
        Ok(())
    }

    /// Gives up on an item.
    pub fn fail_work(&self, id: i64, error: &str, now: UnixSeconds) -> Result<()> {
        self.set_state(id, QueueState::Failed, None, Some(error), now)
    }

    fn set_state(
        &self,
        id: i64,
        state: QueueState,
        not_before: Option<UnixSeconds>,
        error: Option<&str>,
        now: UnixSeconds,
    ) -> Result<()> {
        self.connection()
            .execute(
                "UPDATE work_queue SET state = ?2, lease_until = NULL, leased_by = NULL,
                    not_before = coalesce(?3, not_before),
                    last_error = coalesce(?4, last_error), updated_at = ?5
                 WHERE id = ?1",
                params![id, state.as_str(), not_before, error, now],
            )
            .context(|| format!("updating work item #{id}"))?;
        Ok(())
    }
}

/// A JSON array of strings, for `json_each` (the kinds are our own identifiers).
fn serde_json_array(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("\"{}\"", item.replace(['"', '\\'], ""))).collect();
    format!("[{}]", quoted.join(","))
}

impl Store {
    /// The earliest `not_before` of pending work (of the given kinds, all when empty).
    pub fn next_due(&self, kinds: &[&str]) -> Result<Option<UnixSeconds>> {
        self.connection()
            .query_row(
                "SELECT min(not_before) FROM work_queue
                 WHERE state = 'pending' AND (?1 = '[]' OR kind IN (SELECT value FROM json_each(?1)))",
                [serde_json_array(kinds)],
                |row| row.get(0),
            )
            .context(|| "reading the queue".into())
    }

    /// Work items not finished (pending or leased).
    pub fn open_work(&self) -> Result<i64> {
        self.connection()
            .query_row("SELECT count(*) FROM work_queue WHERE state IN ('pending', 'leased')", [], |row| row.get(0))
            .context(|| "counting work".into())
    }

    /// Items per state, for status displays.
    pub fn queue_counts(&self) -> Result<Vec<(QueueState, i64)>> {
        let mut statement = self
            .connection()
            .prepare("SELECT state, count(*) FROM work_queue GROUP BY state ORDER BY state")
            .context(|| "counting work".into())?;
        let rows: Vec<(String, i64)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .context(|| "counting work".into())?;
        Ok(rows.into_iter().filter_map(|(state, count)| Some((state.parse().ok()?, count))).collect())
    }
}
