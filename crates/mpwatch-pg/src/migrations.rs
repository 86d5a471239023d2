//! Forward-only migrations on PostgreSQL, numbered as SQLite's: version N here means
//! the schema of SQLite's version N (PostgreSQL support begins at 14, in one step).
//!
//! Every migration runs in one transaction with its `schema_migrations` row, under a
//! transaction-scoped advisory lock, so nodes starting at once apply each step once and
//! a failure leaves the old schema (PostgreSQL's DDL is transactional).

use postgres::GenericClient;

use crate::{Context as _, PgError, PgStore, Result};

/// Every PostgreSQL migration, in order: (version, SQL). Never edit a released entry;
/// append one beside each new SQLite migration.
pub const MIGRATIONS: &[(i64, &str)] = &[(14, include_str!("../migrations/0014_schema.sql"))];

/// The schema version this build writes on PostgreSQL.
pub const LATEST_SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

// A schema version means the same tables on both backends: a SQLite migration without
// its PostgreSQL twin fails the build here.
const _: () = assert!(LATEST_SCHEMA_VERSION == mpwatch_store::LATEST_SCHEMA_VERSION);

/// The advisory lock that serializes migrations (any fixed number; "mpwatch" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_7077_6174_6368;

/// The newest applied migration; 0 when the schema has no `schema_migrations`. (Two
/// queries: a query naming a missing table fails when it is planned, whatever its CASE.)
pub(crate) fn schema_version(client: &mut impl GenericClient) -> Result<i64, postgres::Error> {
    let exists: bool = client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?.try_get(0)?;
    if !exists {
        return Ok(0);
    }
    client.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?.try_get(0)
}

pub(crate) fn migrate(store: &mut PgStore) -> Result<()> {
    let target = store.target.clone();
    let describe = |what: &str| format!("{what} of {target}");
    let client = store.client();
    let mut tx = client.transaction().context(|| describe("starting the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .context(|| describe("waiting for another node's migration"))?;
    let current = schema_version(&mut tx).context(|| describe("reading the schema version"))?;
    if current > LATEST_SCHEMA_VERSION {
        return Err(PgError::NewerSchema {
            target,
            found: current,
            supported: LATEST_SCHEMA_VERSION,
            app_version: env!("CARGO_PKG_VERSION"),
        });
    }
    if current == 0 {
        let tables: i64 = tx
            .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()", &[])
            .and_then(|row| row.try_get(0))
            .context(|| describe("listing the tables"))?;
        if tables > 0 {
            return Err(PgError::Foreign { target, tables });
        }
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        let step = || describe(&format!("applying migration {version}"));
        tx.batch_execute(sql).context(step)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at, mpwatch_version) VALUES ($1, $2, $3)",
            &[version, &mpwatch_core::time::now_unix(), &env!("CARGO_PKG_VERSION")],
        )
        .context(step)?;
        tracing::info!(version, database = %target, "applied schema migration");
    }
    tx.commit().context(|| describe("committing the migration"))
}
