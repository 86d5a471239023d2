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
    (15, include_str!("../migrations/0015_nodes.sql")),
    (16, include_str!("../migrations/0016_search_index_in_batches.sql")),
];

/// The schema version this build writes.
pub const LATEST_SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The migrations of the same schema on PostgreSQL, numbered as SQLite's: version N
/// means the tables of SQLite's version N (PostgreSQL begins at 14, in one step).
/// Append one beside each new SQLite migration.
pub const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (14, include_str!("../migrations-postgres/0014_schema.sql")),
    (15, include_str!("../migrations-postgres/0015_nodes.sql")),
    (16, include_str!("../migrations-postgres/0016_search_index_in_batches.sql")),
];

// A schema version means the same tables on both backends: a SQLite migration without
// its PostgreSQL twin fails the build here.
const _: () = assert!(POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.len() - 1].0 == LATEST_SCHEMA_VERSION);

/// The advisory lock that serializes PostgreSQL migrations ("mpwatch" in ASCII).
const POSTGRES_MIGRATION_LOCK: i64 = 0x006d_7077_6174_6368;

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

/// The newest applied migration of a PostgreSQL database; 0 when it has no
/// `schema_migrations`. (Two queries: a query naming a missing table fails when it is
/// planned, whatever its CASE.)
pub fn postgres_version(client: &mut impl postgres::GenericClient) -> Result<i64, postgres::Error> {
    let exists: bool = client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?.try_get(0)?;
    if !exists {
        return Ok(0);
    }
    client.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?.try_get(0)
}

/// Creates or migrates the schema of a PostgreSQL database (`target` names it in
/// messages, without its password). Every step runs in one transaction with its
/// `schema_migrations` row, under a transaction-scoped advisory lock, so nodes starting
/// at once apply each step once and a failure leaves the old schema (PostgreSQL's DDL
/// is transactional). A database whose schema holds other tables is refused.
pub fn migrate_postgres(client: &mut postgres::Client, target: &str) -> Result<()> {
    let path = std::path::PathBuf::from(target);
    let fail = |what: String| {
        move |error: postgres::Error| StoreError::Sqlite {
            context: format!("{what} of {target}"),
            source: crate::sql::wrap_postgres(error),
        }
    };
    let mut tx = client.transaction().map_err(fail("starting the migration".into()))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&POSTGRES_MIGRATION_LOCK])
        .map_err(fail("waiting for another node's migration".into()))?;
    let current = postgres_version(&mut tx).map_err(fail("reading the schema version".into()))?;
    if current > LATEST_SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path,
            found: current,
            supported: LATEST_SCHEMA_VERSION,
            app_version: env!("CARGO_PKG_VERSION"),
        });
    }
    if current == 0 {
        let tables: i64 = tx
            .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()", &[])
            .and_then(|row| row.try_get(0))
            .map_err(fail("listing the tables".into()))?;
        if tables > 0 {
            return Err(StoreError::ForeignPostgres { target: target.to_string(), tables });
        }
    }
    for (version, sql) in POSTGRES_MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        tx.batch_execute(sql).map_err(fail(format!("applying migration {version}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at, mpwatch_version) VALUES ($1, $2, $3)",
            &[version, &mpwatch_core::time::now_unix(), &env!("CARGO_PKG_VERSION")],
        )
        .map_err(fail(format!("applying migration {version}")))?;
        tracing::info!(version, database = %target, "applied schema migration");
    }
    tx.commit().map_err(fail("committing the migration".into()))
}
