//! mpwatch's SQLite store: one file shared with users' own tools (sqlite3, Python,
//! DuckDB, Datasette), so its schema is a public interface (`docs/schema.md`).
//!
//! - [`Store::open`] applies the forward-only migrations in `migrations/` (tracked with
//!   `PRAGMA user_version`) and sets WAL, `busy_timeout`, foreign keys and
//!   `synchronous = NORMAL` on the connection.
//! - Reads are methods on [`Store`]; every write goes through [`Store::write`], which
//!   runs a short `BEGIN IMMEDIATE` transaction and hands a [`Tx`] to the closure, so
//!   several writes (an article upsert and the acknowledgement of its queue item, say)
//!   commit together or not at all.
//! - Upserts are idempotent: writing the same record twice leaves the same rows.
//!
//! ```
//! # fn main() -> Result<(), mpwatch_store::StoreError> {
//! use mpwatch_store::{Store, StoreOptions, accounts::NewAccount};
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = Store::open(&dir.path().join("m.db"), &StoreOptions::default())?;
//! let biz = mpwatch_core::Biz::parse("MzA5MjkzMTA1Mw==").unwrap();
//! let added = store.write(|tx| tx.add_account(&NewAccount::with_biz(biz), 1_700_000_000))?;
//! assert!(added.created);
//! assert_eq!(store.list_accounts(None)?.len(), 1);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod accounts;
pub mod articles;
pub mod cooldowns;
pub mod maintenance;
mod migrations;
pub mod queue;
pub mod runs;
pub mod service;
pub mod stats;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub use migrations::{LATEST_SCHEMA_VERSION, MIGRATIONS};

/// Errors from the store. Outcomes such as "already present" are return values, not
/// errors; these are what stops the work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed while doing `context`.
    #[error("{context}: {source}")]
    Sqlite {
        /// What the store was doing.
        context: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer mpwatch.
    #[error(
        "database {path} has schema version {found}, written by a newer mpwatch; this mpwatch ({app_version}) supports schema versions up to {supported}: upgrade mpwatch"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The file's `user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
        /// This build's version.
        app_version: &'static str,
    },
    /// A lookup found nothing.
    #[error("{0}")]
    NotFound(String),
    /// A lookup matched several rows where one was needed.
    #[error("{0}")]
    Ambiguous(String),
    /// A value read from the database is not one mpwatch writes.
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    /// The database directory could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Adds a description of the operation to a SQLite error.
pub(crate) trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| StoreError::Sqlite { context: context(), source })
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// SQLite `busy_timeout`: how long to wait for another connection's lock.
    pub busy_timeout: Duration,
    /// Create the file (and its directory) if missing.
    pub create: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { busy_timeout: mpwatch_core::config::DEFAULT_BUSY_TIMEOUT, create: true }
    }
}

/// An open mpwatch database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if allowed) the database, configures the connection and applies
    /// pending migrations. Fails with [`StoreError::NewerSchema`] on a file written by a
    /// newer mpwatch.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store> {
        if options.create
            && let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty() && !dir.exists())
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { path: dir.to_path_buf(), source })?;
        }
        let mut flags =
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        if options.create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let describe = || format!("opening database {}", path.display());
        let mut conn = Connection::open_with_flags(path, flags).context(describe)?;
        configure(&conn, options.busy_timeout).context(describe)?;
        migrations::migrate(&mut conn, path)?;
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the file (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        migrations::user_version(&self.conn).context(|| "reading schema version".into())
    }

    /// Runs `f` in one short write transaction (`BEGIN IMMEDIATE`): everything it writes
    /// commits together, or nothing does if it returns an error.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context(|| "starting a write transaction".into())?;
        let tx = Tx { tx };
        let value = f(&tx)?;
        tx.tx.commit().context(|| "committing".into())?;
        Ok(value)
    }

    /// Runs `f` in one read transaction, so every query in it sees the same snapshot
    /// of the database even while other connections commit.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = self.conn.unchecked_transaction().context(|| "starting a read transaction".into())?;
        let value = f(&tx)?;
        tx.finish().context(|| "ending a read transaction".into())?;
        Ok(value)
    }

    /// The underlying connection, for queries the store does not wrap (read-only use).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// A write transaction; every write operation of the store is a method of `Tx`.
#[derive(Debug)]
pub struct Tx<'c> {
    tx: rusqlite::Transaction<'c>,
}

impl Tx<'_> {
    /// The connection inside the transaction.
    pub fn connection(&self) -> &Connection {
        &self.tx
    }
}

fn configure(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    // journal_mode answers with a row; WAL lets readers (users' tools) work while we write.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "SQLite refused WAL mode; concurrent readers may block writes");
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    Ok(())
}
