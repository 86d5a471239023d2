//! Forward-only migrations tracked with `PRAGMA user_version`.
//!
//! rusqlite 0.43 and the current rusqlite_migration / refinery releases need different
//! rusqlite versions (each links its own SQLite, so they cannot coexist); the few lines
//! here do the same job: each migration runs in its own `BEGIN IMMEDIATE` transaction
//! together with the `user_version` bump, so a crash leaves either the old or the new
//! schema, and two processes opening the same file at once apply each step once.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::{Context as _, Result, StoreError};

/// Every migration, in order: (version, SQL). Never edit a released entry; append.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_crawler.sql")),
    (3, include_str!("../migrations/0003_indices.sql")),
    (4, include_str!("../migrations/0004_service.sql")),
    (5, include_str!("../migrations/0005_list_paging.sql")),
    (6, include_str!("../migrations/0006_queue_due.sql")),
    (7, include_str!("../migrations/0007_index_window.sql")),
    (8, include_str!("../migrations/0008_snapshots_by_time_article.sql")),
    (9, include_str!("../migrations/0009_queue_pending.sql")),
    (10, include_str!("../migrations/0010_silent_accounts_unranked.sql")),
    (11, include_str!("../migrations/0011_views_for_every_sql_tool.sql")),
    (12, include_str!("../migrations/0012_articles_fts.sql")),
    (13, include_str!("../migrations/0013_missing_counts.sql")),
    (14, include_str!("../migrations/0014_article_bodies.sql")),
];

/// The schema version this build writes.
pub const LATEST_SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let newer = |found| StoreError::NewerSchema {
        path: path.to_path_buf(),
        found,
        supported: LATEST_SCHEMA_VERSION,
        app_version: env!("CARGO_PKG_VERSION"),
    };
    let current = user_version(conn).context(|| format!("reading schema version of {}", path.display()))?;
    if current > LATEST_SCHEMA_VERSION {
        return Err(newer(current));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        let describe = || format!("applying migration {version} to {}", path.display());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context(describe)?;
        // Another process may have migrated while we waited for the lock.
        let now_at = user_version(&tx).context(describe)?;
        if now_at > LATEST_SCHEMA_VERSION {
            return Err(newer(now_at));
        }
        if now_at >= *version {
            continue;
        }
        tx.execute_batch(sql).context(describe)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at, mpwatch_version) VALUES (?1, ?2, ?3)",
            (version, mpwatch_core::time::now_unix(), env!("CARGO_PKG_VERSION")),
        )
        .context(describe)?;
        tx.pragma_update(None, "user_version", version).context(describe)?;
        tx.commit().context(describe)?;
        tracing::info!(version, path = %path.display(), "applied schema migration");
    }
    Ok(())
}
