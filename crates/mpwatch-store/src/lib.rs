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
pub mod nodes;
pub mod queue;
pub mod runs;
pub mod search_index;
pub mod service;
pub mod sql;
pub mod stats;
#[doc(hidden)]
pub mod test_database;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::OpenFlags;

pub use migrations::{LATEST_SCHEMA_VERSION, MIGRATIONS, POSTGRES_MIGRATIONS, migrate_postgres, postgres_version};
pub use sql::Connection;

/// Errors from the store. Outcomes such as "already present" are return values, not
/// errors; these are what stops the work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database (SQLite, or PostgreSQL: see [`sql::postgres_error`]) failed while
    /// doing `context`.
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
    /// No database at the path (read commands never create one).
    #[error("no database at {path}; create one with `mpwatch init` (or `mpwatch db migrate`)")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The PostgreSQL database has no mpwatch tables (read commands never create them).
    #[error("database {target} has no mpwatch tables; create them with `mpwatch --db URL db migrate`")]
    MissingPostgres {
        /// The database, without its password.
        target: String,
    },
    /// The PostgreSQL database's schema holds another program's tables.
    #[error(
        "database {target} is not an mpwatch database (its schema has {tables} tables of another program); mpwatch leaves it as it is: give mpwatch a database of its own, or a schema of its own (`?options=-csearch_path%3Dmpwatch` in the URL)"
    )]
    ForeignPostgres {
        /// The database, without its password.
        target: String,
        /// Its tables.
        tables: i64,
    },
    /// The file is another program's SQLite database.
    #[error(
        "{path} is not an mpwatch database (it has {tables} tables of another program); mpwatch leaves it as it is (`mpwatch db migrate --adopt` adds mpwatch's tables to it)"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its tables.
        tables: i64,
    },
    /// The file has an older schema and a read-only command cannot migrate it.
    #[error(
        "database {path} has schema version {found}; this mpwatch reads version {supported}: run `mpwatch db migrate`"
    )]
    Outdated {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// This build's version.
        supported: i64,
    },
    /// A lookup found nothing.
    #[error("{0}")]
    NotFound(String),
    /// A lookup matched several rows where one was needed.
    #[error("{0}")]
    Ambiguous(String),
    /// A group commit failed (see [`Store::write_group`]): each write of the group gets
    /// this copy of the group's error.
    #[error("{message}")]
    Group {
        /// The group's error, as it reads.
        message: String,
        /// The database was busy (see [`StoreError::is_busy`]).
        busy: bool,
    },
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

impl StoreError {
    /// Another connection held the lock longer than the busy timeout: the work can be
    /// tried again later.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Group { busy, .. } => *busy,
            StoreError::Sqlite { source: rusqlite::Error::SqliteFailure(error, _), .. } => {
                matches!(error.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            }
            StoreError::Sqlite { source, .. } => sql::postgres_error(source).is_some_and(sql::PostgresError::is_busy),
            _ => false,
        }
    }

    /// A copy for each write of a failed group: the same message and busy-ness.
    pub fn for_group_member(&self) -> StoreError {
        StoreError::Group { message: self.to_string(), busy: self.is_busy() }
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// SQLite `busy_timeout`: how long to wait for another connection's lock.
    pub busy_timeout: Duration,
    /// Create the file (and its directory) if missing.
    pub create: bool,
    /// Add mpwatch's tables to a SQLite file that has other tables (`db migrate --adopt`).
    pub adopt: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { busy_timeout: mpwatch_core::config::DEFAULT_BUSY_TIMEOUT, create: true, adopt: false }
    }
}

/// An open mpwatch database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// The file, or the PostgreSQL URL without its password (what messages show).
    path: PathBuf,
    /// How to open the database again (the URL with its password, if it has one).
    location: Location,
}

/// Where a database is, as given; its `Debug` never shows a password.
#[derive(Clone)]
struct Location(PathBuf);

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match postgres_url(&self.0) {
            Some(url) => f.write_str(&sql::redacted(url)),
            None => self.0.fmt(f),
        }
    }
}

impl Store {
    /// Opens (creating if allowed) the database, configures the connection and applies
    /// pending migrations. Fails with [`StoreError::NewerSchema`] on a file written by a
    /// newer mpwatch.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store> {
        if let Some(url) = postgres_url(path) {
            return Store::open_postgres(
                url,
                options.busy_timeout,
                if options.create { Open::Migrate } else { Open::MigrateExisting },
            );
        }
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
        if !options.create && !path.exists() {
            return Err(StoreError::Missing { path: path.to_path_buf() });
        }
        let describe = || format!("opening database {}", path.display());
        let mut conn = rusqlite::Connection::open_with_flags(path, flags).context(describe)?;
        conn.busy_timeout(options.busy_timeout).context(describe)?;
        // Before anything writes (WAL mode is a write): another program's file stays
        // byte-identical.
        if !options.adopt {
            let (version, tables) = schema_of(&conn).context(describe)?;
            if version == 0 && tables > 0 {
                return Err(StoreError::Foreign { path: path.to_path_buf(), tables });
            }
        }
        configure(&conn, options.busy_timeout).context(describe)?;
        migrations::migrate(&mut conn, path)?;
        Ok(Store { conn: Connection::Sqlite(conn), path: path.to_path_buf(), location: Location(path.to_path_buf()) })
    }

    /// Opens an existing database read-only, for commands that only read: it never
    /// creates, migrates or changes the file (not even its journal mode), and refuses a
    /// missing file, another program's file, and one whose schema is not this build's.
    pub fn open_read_only(path: &Path, busy_timeout: Duration) -> Result<Store> {
        if let Some(url) = postgres_url(path) {
            return Store::open_postgres(url, busy_timeout, Open::ReadOnly);
        }
        if !path.exists() {
            return Err(StoreError::Missing { path: path.to_path_buf() });
        }
        let describe = || format!("opening database {} read-only", path.display());
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = rusqlite::Connection::open_with_flags(path, flags).context(describe)?;
        conn.busy_timeout(busy_timeout).context(describe)?;
        let (version, tables) = schema_of(&conn).context(describe)?;
        match version {
            0 if tables > 0 => return Err(StoreError::Foreign { path: path.to_path_buf(), tables }),
            0 => return Err(StoreError::Missing { path: path.to_path_buf() }),
            found => require_this_schema(found, path)?,
        }
        conn.execute_batch("PRAGMA query_only = ON").context(describe)?;
        Ok(Store { conn: Connection::Sqlite(conn), path: path.to_path_buf(), location: Location(path.to_path_buf()) })
    }

    /// Opens a PostgreSQL database: migrates it when `migrate`, else requires this
    /// build's schema (and reads in read-only transactions).
    fn open_postgres(url: &str, busy_timeout: Duration, open: Open) -> Result<Store> {
        let target = sql::redacted(url);
        let conn = Connection::open_postgres(url, busy_timeout)
            .context(|| format!("connecting to PostgreSQL database {target}"))?;
        let Connection::Postgres(postgres) = &conn else { unreachable!("a PostgreSQL connection") };
        let path = PathBuf::from(&target);
        let on_thread = |error| StoreError::Sqlite { context: format!("opening {target}"), source: error };
        let found = postgres
            .with_client(|client| migrations::postgres_version(client).map_err(sql::wrap_postgres))
            .and_then(|found| found)
            .context(|| format!("reading the schema version of {target}"))?;
        if open == Open::Migrate || (open == Open::MigrateExisting && found > 0) {
            let named = target.clone();
            postgres.with_client(move |client| migrate_postgres(client, &named)).map_err(on_thread)??;
        } else {
            match found {
                0 => return Err(StoreError::MissingPostgres { target }),
                found => require_this_schema(found, &path)?,
            }
            if open == Open::ReadOnly {
                conn.execute_batch("SET default_transaction_read_only = on")
                    .context(|| format!("opening {target} read-only"))?;
            }
        }
        Ok(Store { conn, path, location: Location(PathBuf::from(url)) })
    }

    /// The database file (for PostgreSQL: its URL without the password).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another connection to the same database, read-only (see [`Store::open_read_only`]).
    pub fn open_read_only_again(&self, busy_timeout: Duration) -> Result<Store> {
        Store::open_read_only(&self.location.0, busy_timeout)
    }

    /// The schema version (`PRAGMA user_version`; on PostgreSQL the newest migration).
    pub fn schema_version(&self) -> Result<i64> {
        match &self.conn {
            Connection::Sqlite(conn) => migrations::user_version(conn).context(|| "reading schema version".into()),
            Connection::Postgres(postgres) => postgres
                .with_client(|client| migrations::postgres_version(client).map_err(sql::wrap_postgres))
                .and_then(|found| found)
                .context(|| "reading schema version".into()),
        }
    }

    /// Runs `f` in one short write transaction (`BEGIN IMMEDIATE`): everything it writes
    /// commits together, or nothing does if it returns an error.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction(true).context(|| "starting a write transaction".into())?;
        let tx = Tx { tx };
        let value = f(&tx)?;
        tx.tx.commit().context(|| "committing".into())?;
        Ok(value)
    }

    /// Runs several writes in one transaction (a group commit: one commit, and one copy
    /// of each changed page in the WAL, for all of them). One that fails leaves nothing
    /// of itself and the others stand. Each is then told the group's outcome.
    ///
    /// The writes first run one after another with nothing between them. Only when one
    /// fails is that transaction rolled back and the group run again, each write in a
    /// savepoint of its own: a savepoint copies every page a write touches into the
    /// statement journal before changing it, which took more than a third of a group's
    /// time (docs/benchmarks.md), and writes almost never fail.
    pub fn write_group(&mut self, mut writes: Vec<Box<dyn GroupWrite>>) {
        let mut a_write_failed = false;
        let optimistic = self.write(|tx| {
            for write in &mut writes {
                if !write.run(tx) {
                    a_write_failed = true;
                    return Err(StoreError::Group { message: "a write of the group failed".into(), busy: false });
                }
            }
            Ok(())
        });
        let outcome = match optimistic {
            Err(_) if a_write_failed => self.write_group_in_savepoints(&mut writes),
            other => other,
        };
        for write in writes {
            write.finish(outcome.as_ref().map(|_| ()));
        }
    }

    /// The group again, each write in a savepoint: one that fails is rolled back alone.
    fn write_group_in_savepoints(&mut self, writes: &mut [Box<dyn GroupWrite>]) -> Result<()> {
        self.write(|tx| {
            let conn = tx.connection();
            for write in writes.iter_mut() {
                conn.execute_batch("SAVEPOINT group_member").context(|| "starting a savepoint".into())?;
                let kept = write.run(tx);
                if !kept && conn.is_autocommit() {
                    // SQLite ended the whole transaction itself (it does after a full disk
                    // or an I/O error): the group fails, with this write's error.
                    return Err(write.failure().unwrap_or_else(|| StoreError::Group {
                        message: "a write failed and SQLite rolled back its group's transaction".into(),
                        busy: false,
                    }));
                }
                let end = if kept { "RELEASE group_member" } else { "ROLLBACK TO group_member; RELEASE group_member" };
                conn.execute_batch(end).context(|| "ending a savepoint".into())?;
            }
            Ok(())
        })
    }

    /// Runs `f` in one read transaction, so every query in it sees the same snapshot
    /// of the database even while other connections commit.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction(false).context(|| "starting a read transaction".into())?;
        let value = f(&tx)?;
        tx.commit().context(|| "ending a read transaction".into())?;
        Ok(value)
    }

    /// The underlying connection, for queries the store does not wrap (read-only use).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// SQLite's plan for `sql` (the text of each `EXPLAIN QUERY PLAN` step), its
    /// parameters bound to NULL: what the tests that hold a statement to index reads
    /// assert on.
    pub fn query_plan(&self, sql: &str) -> Result<Vec<String>> {
        let context = || format!("planning {sql}");
        let Some(conn) = self.conn.sqlite() else {
            return Err(StoreError::NotFound("query plans are SQLite's (use EXPLAIN on PostgreSQL)".into()));
        };
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).context(context)?;
        let nulls = vec![rusqlite::types::Null; statement.parameter_count()];
        statement
            .query_map(rusqlite::params_from_iter(nulls), |row| row.get::<_, String>(3))
            .and_then(|rows| rows.collect())
            .context(context)
    }
}

/// One write of a group commit ([`Store::write_group`]).
pub trait GroupWrite: Send {
    /// Does its writes inside the group's transaction; `false` (it failed) rolls back
    /// its own writes only. It may run twice: when a write of its group failed, the
    /// whole transaction is rolled back and every write runs again in a new one, so it
    /// must do nothing but write through `tx` and keep its result.
    fn run(&mut self, tx: &Tx<'_>) -> bool;
    /// The group's outcome: committed (`Ok`), or rolled back with this error.
    fn finish(self: Box<Self>, committed: std::result::Result<(), &StoreError>);
    /// A copy of its error, after a `run` that failed.
    fn failure(&self) -> Option<StoreError> {
        None
    }
}

/// A write transaction; every write operation of the store is a method of `Tx`.
#[derive(Debug)]
pub struct Tx<'c> {
    tx: sql::Transaction<'c>,
}

impl Tx<'_> {
    /// The connection inside the transaction.
    pub fn connection(&self) -> &Connection {
        &self.tx
    }
}

/// `user_version` and the number of tables of an open file.
fn schema_of(conn: &rusqlite::Connection) -> rusqlite::Result<(i64, i64)> {
    let version = migrations::user_version(conn)?;
    let tables = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [],
        |row| row.get(0),
    )?;
    Ok((version, tables))
}

/// Fails unless `found` (a database's schema version, not 0) is the one this build
/// reads: newer is refused, older must be migrated first.
pub fn require_this_schema(found: i64, path: &Path) -> Result<()> {
    if found > LATEST_SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: LATEST_SCHEMA_VERSION,
            app_version: env!("CARGO_PKG_VERSION"),
        });
    }
    if found < LATEST_SCHEMA_VERSION {
        return Err(StoreError::Outdated { path: path.to_path_buf(), found, supported: LATEST_SCHEMA_VERSION });
    }
    Ok(())
}

/// How [`Store::open_postgres`] treats the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// Create it or apply pending migrations.
    Migrate,
    /// Apply pending migrations to an existing schema; refuse a database without one
    /// (a SQLite file that does not exist is not created either).
    MigrateExisting,
    /// This build's schema only, in read-only transactions.
    ReadOnly,
}

/// The PostgreSQL URL `path` holds, if it holds one.
fn postgres_url(path: &Path) -> Option<&str> {
    path.to_str().filter(|text| mpwatch_core::config::is_postgres_url(text))
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// The page cache of a connection.
const CACHE_KIB: i64 = 8 * 1024;

fn configure(conn: &rusqlite::Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    // Every statement the store runs more than once is prepared once and reused
    // (`execute_cached`): parsing SQL was a quarter of a busy service's CPU. The set is
    // about 120 statements; rusqlite's default cache of 16 would thrash.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // journal_mode answers with a row; WAL lets readers (users' tools) work while we write.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "SQLite refused WAL mode; concurrent readers may block writes");
    }
    // An 8 MiB page cache: every commit of a growing database walks the cache's hash
    // table, so a larger one slows small write transactions (snapshot ingest: 179k rows/s
    // at 8 MiB, 160k at 32 MiB), and `index --full` on the synthetic year took the same
    // time with either (13.7-15.0 s against 14.3-16.8 s).
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{CACHE_KIB};
         PRAGMA wal_autocheckpoint = 16384; PRAGMA temp_store = MEMORY;"
    ))?;
    Ok(())
}
