//! The persistent work queue, the crawl frontier: `pending -> leased -> done | failed`.
//!
//! A worker leases items for a while; if it crashes, the lease expires and the item is
//! leased again. Acknowledging an item ([`Tx::complete_work`]) in the same transaction
//! as the write it produced makes each item's effect happen exactly once.

use std::collections::HashMap;

use crate::sql::{OptionalExtension as _, params};
use mpwatch_core::QueueState;
use mpwatch_core::time::UnixSeconds;
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
    /// Adds an item, or re-arms a finished one (with the new priority: a new request).
    /// A pending or leased item with the same kind and target is left alone except that
    /// it keeps the higher priority and the earlier start.
    pub fn enqueue(
        &self,
        kind: &str,
        target: &str,
        priority: i64,
        not_before: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<()> {
        self.connection()
            .execute_cached(
                "INSERT INTO work_queue (kind, target, priority, not_before, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (kind, target) DO UPDATE SET
                    priority = CASE WHEN work_queue.state IN ('done', 'failed') THEN excluded.priority
                                    ELSE max(work_queue.priority, excluded.priority) END,
                    not_before = CASE WHEN work_queue.state IN ('done', 'failed') THEN excluded.not_before
                                      ELSE min(work_queue.not_before, excluded.not_before) END,
                    attempts = CASE WHEN work_queue.state IN ('done', 'failed') THEN 0 ELSE work_queue.attempts END,
                    last_error = CASE WHEN work_queue.state IN ('done', 'failed') THEN NULL ELSE work_queue.last_error END,
                    state = CASE WHEN work_queue.state IN ('done', 'failed') THEN 'pending' ELSE work_queue.state END,
                    updated_at = excluded.updated_at",
                params![kind, target, priority, not_before, now],
            )
            .context(|| format!("queueing {kind} {target}"))?;
        Ok(())
    }

    /// Queues again, at a listed page's priority (10), the page of every article listed
    /// but never fetched whose page item was given up (or is missing), so a fault that
    /// outlasted the retries leaves no hole once it clears. Waiting items keep their
    /// time and are not touched (on PostgreSQL, not locked while another node works on
    /// them). Returns the items re-armed.
    pub fn rearm_unfetched_pages(&self, now: UnixSeconds) -> Result<usize> {
        self.connection()
            .execute_cached(
                "INSERT INTO work_queue (kind, target, priority, not_before, created_at, updated_at)
                 SELECT 'page', url, 10, ?1, ?1, ?1 FROM (SELECT DISTINCT url FROM articles WHERE status = 'pending') AS unfetched
                 WHERE url IS NOT NULL AND NOT EXISTS (
                     SELECT 1 FROM work_queue w WHERE w.kind = 'page' AND w.target = unfetched.url
                        AND w.state IN ('pending', 'leased'))
                 ON CONFLICT (kind, target) DO UPDATE SET
                    state = 'pending', attempts = 0, last_error = NULL, priority = excluded.priority,
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
    ///
    /// Items go by priority (higher first), then due time, then id. The cost grows with
    /// `limit` and the number of kinds and priority levels, never with the queue: each
    /// read is a range of the `work_queue_pending` index (kind, priority, not_before of
    /// pending items) or of the expired leases (`work_queue_lease_expiry`), with no sort.
    pub fn lease_work_as(
        &self,
        kinds: &[&str],
        limit: usize,
        lease_until: UnixSeconds,
        now: UnixSeconds,
        holder: Option<&str>,
    ) -> Result<Vec<WorkItem>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let kinds = if kinds.is_empty() {
            queue_kinds(self.connection())?
        } else {
            kinds.iter().map(|kind| kind.to_string()).collect()
        };
        if self.connection().is_postgres() {
            return self.lease_skip_locked(&kinds, limit, lease_until, now, holder);
        }
        let mut candidates = self.due_pending(&kinds, limit, now)?;
        candidates.extend(self.expired_leases(&kinds, now)?);
        candidates.sort_unstable_by_key(|&(priority, not_before, id)| (-priority, not_before, id));
        candidates.truncate(limit);
        let conn = self.connection();
        // The lease holds only if the item is still due when it is written: on
        // PostgreSQL another node may have leased it since it was read (its update
        // waits for that node's row lock, then finds the item leased and changes
        // nothing), so two nodes never hold one item. SQLite's write lock makes the
        // check always pass there.
        let mut lease = conn
            .prepare_cached(
                "UPDATE work_queue SET state = 'leased', lease_until = ?1, attempts = attempts + 1, updated_at = ?2,
                    leased_by = ?3
                 WHERE id = ?4 AND ((state = 'pending' AND not_before <= ?2) OR (state = 'leased' AND lease_until <= ?2))
                 RETURNING id, kind, target, priority, attempts, last_error",
            )
            .context(|| "leasing work".into())?;
        let mut leased = Vec::with_capacity(candidates.len());
        for &(_, _, id) in &candidates {
            let item = lease
                .query_row(params![lease_until, now, holder, id], item_from_row)
                .optional()
                .context(|| format!("leasing work item #{id}"))?;
            leased.extend(item);
        }
        Ok(leased)
    }

    /// [`Tx::lease_work_as`] on PostgreSQL, where several nodes lease at once: one
    /// statement picks the due items in order and locks them with `FOR UPDATE SKIP
    /// LOCKED`, so nodes leasing at the same moment take disjoint items without waiting
    /// for each other. It reads the due items (the partial indexes `work_queue_due` and
    /// `work_queue_lease_expiry`), never the future rungs.
    fn lease_skip_locked(
        &self,
        kinds: &[String],
        limit: usize,
        lease_until: UnixSeconds,
        now: UnixSeconds,
        holder: Option<&str>,
    ) -> Result<Vec<WorkItem>> {
        let kinds = serde_json::to_string(kinds).unwrap_or_else(|_| "[]".into());
        let mut items: Vec<WorkItem> = self
            .connection()
            .prepare_cached(
                "WITH picked AS (
                    SELECT id FROM work_queue
                    WHERE ((state = 'pending' AND not_before <= ?2) OR (state = 'leased' AND lease_until <= ?2))
                      AND kind IN (SELECT value FROM json_each(?4))
                    ORDER BY priority DESC, not_before, id
                    LIMIT ?5
                    FOR UPDATE SKIP LOCKED)
                 UPDATE work_queue SET state = 'leased', lease_until = ?1, attempts = work_queue.attempts + 1,
                    updated_at = ?2, leased_by = ?3
                 FROM picked WHERE work_queue.id = picked.id
                 RETURNING work_queue.id, work_queue.kind, work_queue.target, work_queue.priority,
                    work_queue.attempts, work_queue.last_error",
            )
            .and_then(|mut statement| {
                statement.query_map(params![lease_until, now, holder, kinds, limit as i64], item_from_row)?.collect()
            })
            .context(|| "leasing work".into())?;
        // RETURNING keeps no order: priority first, as on SQLite.
        items.sort_by_key(|item| (std::cmp::Reverse(item.priority), item.id));
        Ok(items)
    }

    /// Up to `limit` due pending items of each kind, as (priority, not_before, id):
    /// walked priority level by priority level (few), oldest first within a level.
    fn due_pending(&self, kinds: &[String], limit: usize, now: UnixSeconds) -> Result<Vec<(i64, i64, i64)>> {
        let conn = self.connection();
        let describe = || "finding due work".to_string();
        let mut highest_below = conn.prepare_cached(HIGHEST_PRIORITY_BELOW).context(describe)?;
        let mut due = conn.prepare_cached(DUE_AT_PRIORITY).context(describe)?;
        let mut found = Vec::new();
        for kind in kinds {
            let mut taken = 0;
            let mut level: Option<i64> =
                highest_below.query_row(params![kind, i64::MAX], |row| row.get(0)).context(describe)?;
            while let Some(priority) = level
                && taken < limit
            {
                let rows: Vec<(i64, i64)> = due
                    .query_map(params![kind, priority, now, (limit - taken) as i64], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .and_then(|rows| rows.collect())
                    .context(describe)?;
                taken += rows.len();
                found.extend(rows.into_iter().map(|(id, not_before)| (priority, not_before, id)));
                level = highest_below.query_row(params![kind, priority], |row| row.get(0)).context(describe)?;
            }
        }
        Ok(found)
    }

    /// Leased items of the kinds whose lease ran out.
    fn expired_leases(&self, kinds: &[String], now: UnixSeconds) -> Result<Vec<(i64, i64, i64)>> {
        let mut statement =
            self.connection().prepare_cached(EXPIRED_LEASES).context(|| "finding expired leases".into())?;
        let rows: Vec<(i64, String, i64, i64)> = statement
            .query_map(params![now], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
            .and_then(|rows| rows.collect())
            .context(|| "finding expired leases".into())?;
        Ok(rows
            .into_iter()
            .filter(|(_, kind, _, _)| kinds.contains(kind))
            .map(|(id, _, priority, not_before)| (priority, not_before, id))
            .collect())
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
                .execute_cached(
                    // Only if still held by the dead holder: on PostgreSQL another node
                    // may have finished or leased it again since it was read.
                    "UPDATE work_queue SET state = 'pending', lease_until = NULL, leased_by = NULL, updated_at = ?2
                     WHERE id = ?1 AND state = 'leased' AND leased_by IS NOT DISTINCT FROM ?3",
                    params![id, now, holder],
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
                .execute_cached(
                    "UPDATE work_queue SET state = 'pending', lease_until = NULL, leased_by = NULL,
                        attempts = max(attempts - 1, 0), updated_at = ?2
                     WHERE id = ?1 AND state = 'leased'",
                    params![id, now],
                )
                .context(|| format!("releasing work item #{id}"))?;
        }
        Ok(released)
    }

    /// Gives back every item `holder` still has leased, untried (a process that
    /// stops: besides the items it was working on, those it leased ahead and let run
    /// out). Returns how many.
    pub fn release_leases_of(&self, holder: &str, now: UnixSeconds) -> Result<usize> {
        self.connection()
            .execute_cached(
                "UPDATE work_queue SET state = 'pending', lease_until = NULL, leased_by = NULL,
                    attempts = max(attempts - 1, 0), updated_at = ?2
                 WHERE state = 'leased' AND leased_by = ?1",
                params![holder, now],
            )
            .context(|| format!("giving back the work leased by {holder}"))
    }

    /// Marks an item done. Like every acknowledgement below, it is written only while
    /// `holder` (as given to [`Tx::lease_work_as`]) still holds the item's lease: once
    /// it ran out and another node leased the item, that node's result counts (the
    /// effects are idempotent: an article by its key, one snapshot per rung). Returns
    /// whether it was written.
    pub fn complete_work(&self, id: i64, holder: Option<&str>, now: UnixSeconds) -> Result<bool> {
        self.set_state(id, holder, QueueState::Done, None, None, false, now)
    }

    /// Puts an item back to wait until `not_before`, recording why.
    pub fn retry_work(
        &self,
        id: i64,
        holder: Option<&str>,
        not_before: UnixSeconds,
        error: &str,
        now: UnixSeconds,
    ) -> Result<bool> {
        self.set_state(id, holder, QueueState::Pending, Some(not_before), Some(error), false, now)
    }

    /// Puts an item back to wait until `not_before` without counting the attempt (it was
    /// not tried: a cooldown, no credential).
    pub fn postpone_work(
        &self,
        id: i64,
        holder: Option<&str>,
        not_before: UnixSeconds,
        reason: &str,
        now: UnixSeconds,
    ) -> Result<bool> {
        self.set_state(id, holder, QueueState::Pending, Some(not_before), Some(reason), true, now)
    }

    /// Gives up on an item.
    pub fn fail_work(&self, id: i64, holder: Option<&str>, error: &str, now: UnixSeconds) -> Result<bool> {
        self.set_state(id, holder, QueueState::Failed, None, Some(error), false, now)
    }

    #[allow(clippy::too_many_arguments)] // One statement's parameters, named at each call.
    fn set_state(
        &self,
        id: i64,
        holder: Option<&str>,
        state: QueueState,
        not_before: Option<UnixSeconds>,
        error: Option<&str>,
        uncount_attempt: bool,
        now: UnixSeconds,
    ) -> Result<bool> {
        let written = self
            .connection()
            .execute_cached(
                "UPDATE work_queue SET state = ?2, lease_until = NULL, leased_by = NULL,
                    not_before = coalesce(?3, not_before),
                    last_error = coalesce(?4, last_error), updated_at = ?5,
                    attempts = CASE WHEN CAST(?7 AS BIGINT) = 1 THEN max(attempts - 1, 0) ELSE attempts END
                 WHERE id = ?1 AND state = 'leased' AND leased_by IS NOT DISTINCT FROM ?6",
                params![id, state.as_str(), not_before, error, now, holder, i64::from(uncount_attempt)],
            )
            .context(|| format!("updating work item #{id}"))?;
        if written == 0 {
            tracing::debug!(item = id, "not acknowledged: its lease ran out and another crawler has it");
        }
        Ok(written == 1)
    }
}

/// The next kind in the queue after `?1` (an index seek).
const NEXT_KIND: &str = "SELECT min(kind) FROM work_queue WHERE kind > ?1";
/// The highest priority below `?2` among pending items of kind `?1` (an index seek).
/// (`INDEXED BY` here and below: the planner must not pick another index with a range on
/// `not_before`, which would read every due item of the queue.)
const HIGHEST_PRIORITY_BELOW: &str = "SELECT max(priority) FROM work_queue INDEXED BY work_queue_pending
     WHERE kind = ?1 AND state = 'pending' AND priority < ?2";
/// Due pending items of one kind and priority, oldest first (an index range, no sort).
const DUE_AT_PRIORITY: &str = "SELECT id, not_before FROM work_queue INDEXED BY work_queue_pending
     WHERE kind = ?1 AND state = 'pending' AND priority = ?2 AND not_before <= ?3
     ORDER BY not_before, id LIMIT ?4";
/// The earliest pending item of kind `?1` and priority `?2` (an index seek).
const FIRST_AT_PRIORITY: &str = "SELECT min(not_before) FROM work_queue INDEXED BY work_queue_pending
     WHERE kind = ?1 AND state = 'pending' AND priority = ?2";
/// The end of the earliest lease (a seek in a partial index).
const FIRST_LEASE_END: &str =
    "SELECT min(lease_until) FROM work_queue INDEXED BY work_queue_lease_expiry WHERE state = 'leased'";
/// The end of the earliest lease of a kind held by another holder (the leases' partial
/// index: as many rows as crawlers have workers).
const LEASED_ELSEWHERE: &str = "SELECT min(lease_until) FROM work_queue INDEXED BY work_queue_lease_expiry
     WHERE state = 'leased' AND kind = ?1 AND leased_by IS DISTINCT FROM ?2";
/// Pending and leased items, each counted from its partial index.
const OPEN_WORK: &str = "SELECT (SELECT count(*) FROM work_queue INDEXED BY work_queue_pending WHERE state = 'pending')
     + (SELECT count(*) FROM work_queue INDEXED BY work_queue_lease_expiry WHERE state = 'leased')";
/// Leases that ran out (a range of a partial index). All of them: there are at most as
/// many leases as crawlers have workers, whatever the queue holds.
const EXPIRED_LEASES: &str = "SELECT id, kind, priority, not_before FROM work_queue INDEXED BY work_queue_lease_expiry
     WHERE state = 'leased' AND lease_until <= ?1";

/// A leased item from `RETURNING id, kind, target, priority, attempts, last_error`.
fn item_from_row(row: &crate::sql::Row<'_>) -> rusqlite::Result<WorkItem> {
    Ok(WorkItem {
        id: row.get(0)?,
        kind: row.get(1)?,
        target: row.get(2)?,
        priority: row.get(3)?,
        attempts: row.get(4)?,
        last_error: row.get(5)?,
    })
}

/// Every kind in the queue, one index seek each.
fn queue_kinds(conn: &crate::sql::Connection) -> Result<Vec<String>> {
    let mut next = conn.prepare_cached(NEXT_KIND).context(|| "reading the queue's kinds".into())?;
    let mut kinds: Vec<String> = Vec::new();
    while let Some(kind) = next
        .query_row([kinds.last().map_or("", String::as_str)], |row| row.get::<_, Option<String>>(0))
        .context(|| "reading the queue's kinds".into())?
    {
        kinds.push(kind);
    }
    Ok(kinds)
}

/// A JSON array of strings, for `json_each` in the reference query.
#[cfg(test)]
fn serde_json_array(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("\"{}\"", item.replace(['"', '\\'], ""))).collect();
    format!("[{}]", quoted.join(","))
}

/// The pending items of a kind with their due time, then its leased ones (`+kind`
/// keeps the leases on their partial index, not on every finished item of the kind).
const OPEN_ITEMS: &str = "SELECT target, not_before FROM work_queue WHERE kind = ?1 AND state = 'pending'
     UNION ALL
     SELECT target, NULL FROM work_queue WHERE state = 'leased' AND +kind = ?1";

impl Store {
    /// When work is next due: the earliest `not_before` of pending work (of the given
    /// kinds, all when empty), or the end of the earliest lease (of any kind: once it
    /// runs out, a dead crawler's item is anyone's). One index seek per kind and
    /// priority level, and one for the leases.
    pub fn next_due(&self, kinds: &[&str]) -> Result<Option<UnixSeconds>> {
        let describe = || "reading the queue".to_string();
        let kinds = if kinds.is_empty() {
            queue_kinds(self.connection())?
        } else {
            kinds.iter().map(|kind| kind.to_string()).collect()
        };
        let conn = self.connection();
        let mut highest_below = conn.prepare_cached(HIGHEST_PRIORITY_BELOW).context(describe)?;
        let mut first = conn.prepare_cached(FIRST_AT_PRIORITY).context(describe)?;
        let mut earliest: Option<UnixSeconds> =
            conn.query_row(FIRST_LEASE_END, [], |row| row.get(0)).context(describe)?;
        for kind in &kinds {
            let mut level: Option<i64> =
                highest_below.query_row(params![kind, i64::MAX], |row| row.get(0)).context(describe)?;
            while let Some(priority) = level {
                let at: Option<UnixSeconds> =
                    first.query_row(params![kind, priority], |row| row.get(0)).context(describe)?;
                if let Some(at) = at {
                    earliest = Some(earliest.map_or(at, |earliest| earliest.min(at)));
                }
                level = highest_below.query_row(params![kind, priority], |row| row.get(0)).context(describe)?;
            }
        }
        Ok(earliest)
    }

    /// The open items of `kind`, by target: a pending item with its due time, a leased
    /// one with `None`. What queueing an item again would leave unchanged, so a caller
    /// that queues many (a run re-arming every article's ladder) writes only the rest:
    /// on PostgreSQL every `enqueue` that meets an existing item locks its row until
    /// commit, and thousands of such no-op locks collide with other nodes' commits.
    /// Reads the kind's pending items (`work_queue_pending`) and the leases
    /// (`work_queue_lease_expiry`), never the finished items of the whole history.
    pub fn open_items(&self, kind: &str) -> Result<HashMap<String, Option<UnixSeconds>>> {
        let describe = || format!("reading open {kind} items");
        let mut statement = self.connection().prepare_cached(OPEN_ITEMS).context(describe)?;
        statement
            .query_map([kind], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .context(describe)
    }

    /// The end of the earliest lease of `kind` held by another than `holder`: another
    /// node at work on it (whose results may queue more work), or a dead one's (free
    /// once it ends). `None` when no one else holds one.
    pub fn leased_elsewhere(&self, kind: &str, holder: &str) -> Result<Option<UnixSeconds>> {
        self.connection()
            .query_row(LEASED_ELSEWHERE, params![kind, holder], |row| row.get(0))
            .context(|| format!("reading the leases of {kind} items"))
    }

    /// Work items not finished (pending or leased).
    pub fn open_work(&self) -> Result<i64> {
        self.connection().query_row(OPEN_WORK, [], |row| row.get(0)).context(|| "counting work".into())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use proptest::prelude::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("q.db"), &StoreOptions::default()).unwrap();
        (dir, store)
    }

    #[test]
    fn leasing_reads_index_ranges_and_never_sorts_the_queue() {
        let (_dir, store) = store();
        for (sql, index) in [
            (NEXT_KIND, "sqlite_autoindex_work_queue_1"),
            (HIGHEST_PRIORITY_BELOW, "work_queue_pending"),
            (DUE_AT_PRIORITY, "work_queue_pending"),
            (FIRST_AT_PRIORITY, "work_queue_pending"),
            (EXPIRED_LEASES, "work_queue_lease_expiry"),
        ] {
            let plan = store.query_plan(sql).unwrap().join("; ");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
            assert!(plan.starts_with("SEARCH work_queue") && plan.contains(index), "{sql}: {plan}");
        }
        let plan = store.query_plan(LEASED_ELSEWHERE).unwrap().join("; ");
        assert!(plan.contains("INDEX work_queue_lease_expiry") && !plan.contains("TEMP B-TREE"), "{plan}");
        // So does the list of open items of a kind.
        let plan = store.query_plan(OPEN_ITEMS).unwrap().join("; ");
        assert!(plan.contains("INDEX work_queue_pending") && plan.contains("INDEX work_queue_lease_expiry"), "{plan}");
        // Counting open work reads the two partial indexes: pending and leased items
        // only, however many finished ones the queue keeps.
        let plan = store.query_plan(OPEN_WORK).unwrap().join("; ");
        assert!(
            plan.contains("COVERING INDEX work_queue_pending") && plan.contains("INDEX work_queue_lease_expiry"),
            "{plan}"
        );
    }

    /// The order the lease promises, as one query over the whole queue (what leasing
    /// was before it read index ranges).
    fn reference(store: &Store, kinds: &[&str], limit: usize, now: i64) -> Vec<i64> {
        let mut statement = store
            .connection()
            .prepare(
                "SELECT id FROM work_queue
                 WHERE ((state = 'pending' AND not_before <= ?1) OR (state = 'leased' AND lease_until <= ?1))
                   AND kind IN (SELECT value FROM json_each(?2))
                 ORDER BY priority DESC, not_before, id LIMIT ?3",
            )
            .unwrap();
        statement
            .query_map(params![now, serde_json_array(kinds), limit as i64], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn leases_the_same_items_in_the_same_order_as_one_sorted_query(
            items in proptest::collection::vec((0usize..3, prop::sample::select(vec![0i64, 5, 10, 20]), 0i64..100, 0usize..4, 0i64..100), 0..120),
            limit in 1usize..20,
            now in 0i64..100,
            only_some in any::<bool>(),
        ) {
            let (_dir, mut store) = store();
            let all_kinds = ["discover", "metrics", "page"];
            store.write(|tx| {
                for (n, (kind, priority, not_before, state, lease_until)) in items.iter().enumerate() {
                    let state = ["pending", "pending", "leased", "done"][*state];
                    tx.connection().execute_cached(
                        "INSERT INTO work_queue (kind, target, priority, not_before, state, lease_until, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0)",
                        params![all_kinds[*kind], n.to_string(), priority, not_before, state, lease_until],
                    ).context(|| "inserting".into())?;
                }
                Ok(())
            }).unwrap();
            let kinds: Vec<&str> = if only_some { vec!["metrics", "page"] } else { Vec::new() };
            let expected = reference(&store, if kinds.is_empty() { &all_kinds } else { &kinds }, limit, now);
            let leased = store.write(|tx| tx.lease_work(&kinds, limit, now + 600, now)).unwrap();
            let ids: Vec<i64> = leased.iter().map(|item| item.id).collect();
            prop_assert_eq!(ids, expected);
        }
    }
}
