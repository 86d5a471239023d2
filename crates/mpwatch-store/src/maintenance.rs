//! Housekeeping for a long-running database: old fetch-log rows, finished work items
//! and alerts go (in small transactions, so that readers and the crawler never wait
//! long), articles a stopped crawl left waiting enter the full-text index, the
//! planner's statistics are refreshed (SQLite's `PRAGMA optimize`,
//! PostgreSQL's `ANALYZE`), and SQLite's WAL is checkpointed and truncated.

use crate::sql::params;
use mpwatch_core::time::UnixSeconds;
use serde::Serialize;

use crate::{Context as _, Result, Store};

/// Rows deleted per transaction.
const DELETE_BATCH: usize = 5_000;

/// What maintenance did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceSummary {
    /// Fetch-log rows older than the cut-off, deleted.
    pub fetch_log_deleted: usize,
    /// Finished work items (done, failed) older than the cut-off, deleted.
    pub work_items_deleted: usize,
    /// Alerts older than the cut-off, deleted.
    pub alerts_deleted: usize,
    /// Articles added to the full-text index (left waiting by a crawl that was stopped
    /// or killed before its end).
    pub indexed_for_search: usize,
    /// Stopped before the end (the service was stopping).
    pub stopped_early: bool,
    /// WAL frames checkpointed into the database file.
    pub wal_frames_checkpointed: i64,
    /// Whether another connection kept the checkpoint from completing.
    pub checkpoint_busy: bool,
}

impl Store {
    /// Deletes fetch-log rows, finished work items and alerts from before `before`,
    /// indexes the articles waiting for the full-text index, runs `PRAGMA optimize`
    /// and a `wal_checkpoint(TRUNCATE)`. `keep_going` is asked
    /// between batches: a stopping service does not wait for a long prune.
    pub fn maintain(&mut self, before: UnixSeconds, keep_going: &dyn Fn() -> bool) -> Result<MaintenanceSummary> {
        let mut summary = MaintenanceSummary::default();
        let prunes = [
            "DELETE FROM fetch_log WHERE id IN (SELECT id FROM fetch_log WHERE at < ?1 ORDER BY at LIMIT ?2)",
            // Named: without statistics SQLite took an index keyed by state (schema
            // v8 had one) and sorted every finished item for each batch.
            "DELETE FROM work_queue WHERE id IN (SELECT id FROM work_queue INDEXED BY work_queue_finished
                WHERE state IN ('done', 'failed') AND updated_at < ?1 ORDER BY updated_at LIMIT ?2)",
            "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE at < ?1 ORDER BY at LIMIT ?2)",
        ];
        for (n, sql) in prunes.iter().enumerate() {
            loop {
                if !keep_going() {
                    summary.stopped_early = true;
                    return Ok(summary);
                }
                let deleted = self.write(|tx| {
                    tx.connection()
                        .execute(sql, params![before, DELETE_BATCH as i64])
                        .context(|| "pruning old rows".into())
                })?;
                match n {
                    0 => summary.fetch_log_deleted += deleted,
                    1 => summary.work_items_deleted += deleted,
                    _ => summary.alerts_deleted += deleted,
                }
                if deleted < DELETE_BATCH {
                    break;
                }
            }
        }
        if !keep_going() {
            summary.stopped_early = true;
            return Ok(summary);
        }
        if self.connection().is_postgres() {
            // PostgreSQL's autovacuum keeps statistics and space; its log is its own.
            self.connection().execute_batch("ANALYZE").context(|| "running ANALYZE".into())?;
            return Ok(summary);
        }
        let (indexed, stopped) = self.index_all_for_search_while(keep_going)?;
        summary.indexed_for_search = indexed;
        if stopped {
            summary.stopped_early = true;
            return Ok(summary);
        }
        self.connection().execute_batch("PRAGMA optimize").context(|| "running PRAGMA optimize".into())?;
        let (busy, _log_frames, checkpointed): (i64, i64, i64) = self
            .connection()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .context(|| "checkpointing the WAL".into())?;
        summary.wal_frames_checkpointed = checkpointed.max(0);
        summary.checkpoint_busy = busy != 0;
        Ok(summary)
    }
}
