//! `mpwatch db stats`: row counts, file size, schema version.

use serde::Serialize;

use crate::{Context as _, Result, Store};

/// The tables users see, in the order `db stats` prints them.
pub const TABLES: &[&str] = &[
    "accounts",
    "account_groups",
    "account_sources",
    "articles",
    "metric_snapshots",
    "crawl_runs",
    "fetch_log",
    "work_queue",
    "cooldowns",
    "raw_pages",
    "index_periods",
    "index_values",
    "index_state",
    "service_jobs",
    "crawler_lock",
    "credential_leases",
    "crawl_requests",
    "alerts",
    "credential_states",
    "schema_migrations",
];

/// A summary of the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbStats {
    /// The file.
    pub path: String,
    /// `PRAGMA user_version`.
    pub schema_version: i64,
    /// Main file bytes.
    pub file_bytes: u64,
    /// Write-ahead log bytes (not yet checkpointed).
    pub wal_bytes: u64,
    /// Rows per table.
    pub tables: Vec<(String, i64)>,
}

impl Store {
    /// Counts rows in every table, in one consistent read.
    pub fn stats(&self) -> Result<DbStats> {
        let tables = self.read(|conn| {
            TABLES
                .iter()
                .map(|table| {
                    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))
                        .map(|count| (table.to_string(), count))
                        .context(|| format!("counting {table}"))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let (file_bytes, wal_bytes) = self.disk_usage()?;
        Ok(DbStats {
            path: self.path().display().to_string(),
            schema_version: self.schema_version()?,
            file_bytes,
            wal_bytes,
            tables,
        })
    }

    /// Bytes on disk: the file and its write-ahead log (SQLite), or the database's
    /// size as PostgreSQL counts it (`pg_database_size`; no log of its own).
    pub fn disk_usage(&self) -> Result<(u64, u64)> {
        if self.connection().is_postgres() {
            let bytes: i64 = self
                .connection()
                .query_row("SELECT CAST(pg_database_size(current_database()) AS BIGINT)", [], |row| row.get(0))
                .context(|| "reading the database's size".into())?;
            return Ok((u64::try_from(bytes).unwrap_or(0), 0));
        }
        let size = |suffix: &str| {
            let mut path = self.path().as_os_str().to_owned();
            path.push(suffix);
            std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        };
        Ok((size(""), size("-wal")))
    }
}
