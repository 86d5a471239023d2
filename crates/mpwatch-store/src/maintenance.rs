//! Housekeeping for a long-running database: old fetch-log rows go (in small
//! transactions, so that readers and the crawler never wait long), SQLite refreshes its
//! planner statistics, and the WAL is checkpointed and truncated.

use mpwatch_core::time::UnixSeconds;
use rusqlite::params;
use serde::Serialize;

use crate::{Context as _, Result, Store};

/// Rows deleted per transaction.
const DELETE_BATCH: usize = 5_000;

/// What maintenance did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceSummary {
    /// Fetch-log rows older than the cut-off, deleted.
    pub fetch_log_deleted: usize,
    /// WAL frames checkpointed into the database file.
    pub wal_frames_checkpointed: i64,
    /// Whether another connection kept the checkpoint from completing.
    pub checkpoint_busy: bool,
}

impl Store {
    /// Deletes fetch-log rows from before `fetch_log_before`, runs `PRAGMA optimize`
    /// and a `wal_checkpoint(TRUNCATE)`.
    pub fn maintain(&mut self, fetch_log_before: UnixSeconds) -> Result<MaintenanceSummary> {
        let mut summary = MaintenanceSummary::default();
        loop {
            let deleted = self.write(|tx| {
                tx.connection()
                    .execute(
                        "DELETE FROM fetch_log WHERE id IN (SELECT id FROM fetch_log WHERE at < ?1 ORDER BY at LIMIT ?2)",
                        params![fetch_log_before, DELETE_BATCH as i64],
                    )
                    .context(|| "pruning the fetch log".into())
            })?;
            summary.fetch_log_deleted += deleted;
            if deleted < DELETE_BATCH {
                break;
            }
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
