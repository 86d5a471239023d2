//! mpwatch on PostgreSQL, for a cluster of crawler nodes sharing one queue and one
//! history (issue 15). SQLite stays the default for one machine; a database setting
//! that is a `postgres://` or `postgresql://` URL selects this backend.
//!
//! - [`PgStore::open`] applies the store's PostgreSQL migrations
//!   (`mpwatch_store::POSTGRES_MIGRATIONS`): the schema of the same version as SQLite's,
//!   table by table (docs/schema.md, "PostgreSQL").
//! - What a cluster of nodes needs (a crawler lock per node, leases renewed while work
//!   is in progress, acknowledgements fenced by the lease holder, credential sets
//!   leased to one node at a time) is the store's, on both backends
//!   (`mpwatch_store::nodes`, `mpwatch_store::queue`).
//! - [`copy`] moves a whole history between SQLite and PostgreSQL (either way),
//!   verified by row counts and a checksum per table.
//!
//! The URL may hold a password: it never appears in an error or a log line, which name
//! the database by [`redacted`] only.
#![deny(missing_docs)]

pub mod copy;
#[doc(hidden)]
pub use mpwatch_store::test_database;

use std::fmt;

/// Errors from the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// PostgreSQL (or the connection to it) failed while doing `context`.
    #[error("{context}: {}", describe(error))]
    Postgres {
        /// What the store was doing.
        context: String,
        /// The client's error (described in the message, so not a second cause).
        error: postgres::Error,
    },
    /// The database setting is not a URL the client understands.
    #[error("cannot read the PostgreSQL URL {target}: {message}")]
    BadUrl {
        /// The URL without its password.
        target: String,
        /// Why.
        message: String,
    },
    /// A SQLite side of a copy failed.
    #[error(transparent)]
    Sqlite(#[from] mpwatch_store::StoreError),
    /// A copy found something that stops it (a destination with data, a mismatch).
    #[error("{0}")]
    Copy(String),
    /// A value read from the database is not one mpwatch writes.
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
}

/// The client's error as one line: its own text, and the server's message and detail
/// when the server sent one.
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => error.to_string(),
    }
}

/// The result type of this crate.
pub type Result<T, E = PgError> = std::result::Result<T, E>;

/// Adds a description of the operation to a client error.
pub(crate) trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, postgres::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|error| PgError::Postgres { context: context(), error })
    }
}

pub use mpwatch_core::config::is_postgres_url;

pub use mpwatch_store::sql::redacted;

/// How to open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the schema or apply pending migrations.
    Migrate,
    /// Use the schema as it is: refuse a database without mpwatch's tables or with
    /// another version (commands that only read never change a database).
    Existing,
}

/// An open mpwatch database on PostgreSQL: one connection.
pub struct PgStore {
    client: postgres::Client,
    target: String,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` and, with [`OpenMode::Migrate`], creates or migrates the
    /// schema; with [`OpenMode::Existing`], checks that it is this build's.
    pub fn open(url: &str, mode: OpenMode) -> Result<PgStore> {
        let target = redacted(url);
        let config = mpwatch_store::sql::client_config(url, mpwatch_core::config::DEFAULT_BUSY_TIMEOUT)
            .map_err(|error| PgError::BadUrl { target: target.clone(), message: describe(&error) })?;
        let client =
            config.connect(postgres::NoTls).context(|| format!("connecting to PostgreSQL database {target}"))?;
        let mut store = PgStore { client, target };
        match mode {
            OpenMode::Migrate => mpwatch_store::migrate_postgres(&mut store.client, &store.target)?,
            OpenMode::Existing => {
                let found = store.schema_version()?;
                if found == 0 {
                    return Err(mpwatch_store::StoreError::MissingPostgres { target: store.target.clone() }.into());
                }
                mpwatch_store::require_this_schema(found, std::path::Path::new(&store.target))?;
            }
        }
        Ok(store)
    }

    /// The database as errors show it (no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The schema version: the newest applied migration, 0 without mpwatch's tables.
    pub fn schema_version(&mut self) -> Result<i64> {
        mpwatch_store::postgres_version(&mut self.client)
            .context(|| format!("reading the schema version of {}", self.target))
    }

    /// The connection, for what the store does not wrap.
    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_postgres_urls_only() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("PostgreSQL:///mpwatch?host=/run/postgresql"));
        assert!(!is_postgres_url("mpwatch.db"));
        assert!(!is_postgres_url("./postgres://x"));
        assert!(!is_postgres_url("/var/lib/mpwatch/postgres.db"));
        assert!(!is_postgres_url(""));
    }
}
