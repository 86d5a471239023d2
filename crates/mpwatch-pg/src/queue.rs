//! The work queue on PostgreSQL: the same table and states as SQLite's
//! (`pending -> leased -> done | failed`), leased by many nodes at once.
//!
//! A lease is one statement: the due items (pending ones whose time has come, leased
//! ones whose lease ran out) in order of priority, then due time, then id, locked with
//! `FOR UPDATE SKIP LOCKED` so that nodes leasing at the same moment take disjoint
//! items without waiting on each other, and marked leased by the node. Its cost grows
//! with the due items (two partial indexes, `work_queue_due` and
//! `work_queue_lease_expiry`), never with the future rungs of the history.
//!
//! Every change of a leased item names its node and holds only while the item is still
//! leased by it: a node whose lease ran out and was taken over cannot complete, retry
//! or release the item any more (it is fenced off), so each item's effect is the
//! taker's alone.

use mpwatch_core::time::UnixSeconds;
use mpwatch_store::queue::WorkItem;

use crate::{Context as _, PgStore, Result};

const LEASE: &str = "
    WITH picked AS (
        SELECT id FROM work_queue
        WHERE ((state = 'pending' AND not_before <= $1) OR (state = 'leased' AND lease_until <= $1))
          AND (cardinality($2::text[]) = 0 OR kind = ANY($2::text[]))
        ORDER BY priority DESC, not_before, id
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    )
    UPDATE work_queue w
    SET state = 'leased', lease_until = $4, attempts = w.attempts + 1, updated_at = $1, leased_by = $5
    FROM picked
    WHERE w.id = picked.id
    RETURNING w.id, w.kind, w.target, w.priority, w.attempts, w.last_error";

impl PgStore {
    /// Adds an item, or re-arms a finished one; a pending or leased item with the same
    /// kind and target keeps the higher priority and the earlier start (as on SQLite).
    pub fn enqueue(
        &mut self,
        kind: &str,
        target: &str,
        priority: i64,
        not_before: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<()> {
        self.client()
            .execute(
                "INSERT INTO work_queue (kind, target, priority, not_before, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (kind, target) DO UPDATE SET
                    priority = greatest(work_queue.priority, excluded.priority),
                    not_before = CASE WHEN work_queue.state IN ('done', 'failed') THEN excluded.not_before
                                      ELSE least(work_queue.not_before, excluded.not_before) END,
                    attempts = CASE WHEN work_queue.state IN ('done', 'failed') THEN 0 ELSE work_queue.attempts END,
                    last_error = CASE WHEN work_queue.state IN ('done', 'failed') THEN NULL ELSE work_queue.last_error END,
                    state = CASE WHEN work_queue.state IN ('done', 'failed') THEN 'pending' ELSE work_queue.state END,
                    updated_at = excluded.updated_at",
                &[&kind, &target, &priority, &not_before, &now],
            )
            .context(|| format!("queueing {kind} {target}"))?;
        Ok(())
    }

    /// Leases up to `limit` due items of the given kinds (all kinds when empty) to
    /// `node` until `lease_until`. Items another node is leasing at this moment are
    /// skipped, not waited for.
    pub fn lease_work(
        &mut self,
        node: &str,
        kinds: &[&str],
        limit: usize,
        lease_until: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<Vec<WorkItem>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .query(LEASE, &[&now, &kinds, &limit, &lease_until, &node])
            .context(|| format!("leasing work for node {node}"))?;
        let mut items = rows
            .iter()
            .map(|row| {
                Ok(WorkItem {
                    id: row.try_get(0)?,
                    kind: row.try_get(1)?,
                    target: row.try_get(2)?,
                    priority: row.try_get(3)?,
                    attempts: row.try_get(4)?,
                    last_error: row.try_get(5)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, postgres::Error>>()
            .context(|| format!("reading the work leased by node {node}"))?;
        // UPDATE ... RETURNING keeps no order: give them in the order they were picked.
        items.sort_by_key(|item| (std::cmp::Reverse(item.priority), item.id));
        Ok(items)
    }

    /// Marks an item done, if `node` still holds its lease. Returns whether it did:
    /// `false` means the lease ran out and another node took the item.
    pub fn complete_work(&mut self, node: &str, id: i64, now: UnixSeconds) -> Result<bool> {
        let changed = self
            .client()
            .execute(
                "UPDATE work_queue SET state = 'done', lease_until = NULL, leased_by = NULL, updated_at = $3
                 WHERE id = $1 AND state = 'leased' AND leased_by = $2",
                &[&id, &node, &now],
            )
            .context(|| format!("completing work item #{id}"))?;
        Ok(changed == 1)
    }

    /// Puts an item back to wait until `not_before` with the reason, if `node` still
    /// holds it; `counted` false gives the attempt back (it was not tried).
    pub fn retry_work(
        &mut self,
        node: &str,
        id: i64,
        not_before: UnixSeconds,
        error: &str,
        counted: bool,
        now: UnixSeconds,
    ) -> Result<bool> {
        let changed = self
            .client()
            .execute(
                "UPDATE work_queue SET state = 'pending', lease_until = NULL, leased_by = NULL,
                    not_before = $3, last_error = $4, updated_at = $5,
                    attempts = CASE WHEN $6 THEN attempts ELSE greatest(attempts - 1, 0) END
                 WHERE id = $1 AND state = 'leased' AND leased_by = $2",
                &[&id, &node, &not_before, &error, &now, &counted],
            )
            .context(|| format!("retrying work item #{id}"))?;
        Ok(changed == 1)
    }

    /// Gives up on an item, if `node` still holds it.
    pub fn fail_work(&mut self, node: &str, id: i64, error: &str, now: UnixSeconds) -> Result<bool> {
        let changed = self
            .client()
            .execute(
                "UPDATE work_queue SET state = 'failed', lease_until = NULL, leased_by = NULL,
                    last_error = $3, updated_at = $4
                 WHERE id = $1 AND state = 'leased' AND leased_by = $2",
                &[&id, &node, &error, &now],
            )
            .context(|| format!("failing work item #{id}"))?;
        Ok(changed == 1)
    }

    /// Gives every item `node` holds back untried (a stop before they finished):
    /// pending again, due now, the attempt not counted. Returns how many.
    pub fn release_work(&mut self, node: &str, now: UnixSeconds) -> Result<u64> {
        self.client()
            .execute(
                "UPDATE work_queue SET state = 'pending', lease_until = NULL, leased_by = NULL,
                    attempts = greatest(attempts - 1, 0), not_before = least(not_before, $2), updated_at = $2
                 WHERE state = 'leased' AND leased_by = $1",
                &[&node, &now],
            )
            .context(|| format!("releasing the work of node {node}"))
    }
}
