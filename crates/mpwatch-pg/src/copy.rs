//! `mpwatch db copy`: a whole history from one database to another, SQLite or
//! PostgreSQL either way, verified before it commits.
//!
//! - The source is read in one snapshot (a SQLite read transaction, a PostgreSQL
//!   `REPEATABLE READ` read-only transaction), row by row: memory stays flat.
//! - The destination is written in one transaction (binary `COPY` into PostgreSQL, one
//!   prepared `INSERT` into SQLite), so a failure leaves it as it was; it must be new or
//!   hold no data.
//! - Before committing, every table of the destination is read back and compared with
//!   what was read from the source: the row count and a checksum ([`Digest`]). A
//!   mismatch rolls everything back.
//!
//! Not copied: `schema_migrations` (each database records its own), `crawler_lock` and
//! `credential_leases` (live processes' locks and leases), and the FTS5 index
//! `articles_fts` (SQLite builds it from the copied articles in the copy's transaction). `local_days` is made by the migrations on both sides: it is
//! compared, not copied.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::{Context as _, OpenMode, PgError, PgStore, Result};

/// A table `db copy` moves.
#[derive(Debug, Clone, Copy)]
pub struct CopiedTable {
    /// Its name.
    pub name: &'static str,
    /// It has an identity `id` column whose sequence must continue after the copy.
    pub identity: bool,
    /// The migrations fill it on both backends: compared, never copied.
    pub made_by_migrations: bool,
}

const fn table(name: &'static str, identity: bool) -> CopiedTable {
    CopiedTable { name, identity, made_by_migrations: false }
}

/// Every table `db copy` moves, in an order where each reference points at a table
/// copied before it.
pub const TABLES: &[CopiedTable] = &[
    table("accounts", true),
    table("account_groups", false),
    table("account_sources", true),
    table("articles", true),
    table("article_bodies", false),
    table("metric_snapshots", true),
    table("raw_pages", true),
    table("crawl_runs", true),
    table("fetch_log", true),
    table("work_queue", true),
    table("cooldowns", false),
    table("index_periods", false),
    table("index_values", false),
    table("index_state", false),
    table("service_jobs", false),
    table("crawl_requests", true),
    table("alerts", true),
    table("credential_states", false),
    CopiedTable { name: "local_days", identity: false, made_by_migrations: true },
];

/// One end of a copy: a SQLite file or a PostgreSQL URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (it may hold a password: shown only redacted).
    Postgres(String),
}

impl Endpoint {
    /// A database setting as an endpoint: a `postgres://` URL, else a file path.
    pub fn parse(database: &str) -> Endpoint {
        if crate::is_postgres_url(database) {
            Endpoint::Postgres(database.to_string())
        } else {
            Endpoint::Sqlite(PathBuf::from(database))
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Sqlite(path) => write!(f, "{}", path.display()),
            Endpoint::Postgres(url) => f.write_str(&crate::redacted(url)),
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What a copy moved, table by table.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// Each table: rows and checksum, equal on both sides.
    pub tables: Vec<TableReport>,
}

/// One table of a [`CopyReport`].
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// The table.
    pub table: &'static str,
    /// Its rows (on both sides).
    pub rows: u64,
    /// Its checksum (on both sides), in hex.
    pub checksum: String,
    /// Made by the migrations on both sides: compared, not copied.
    pub compared_only: bool,
}

/// Copies every table of `from` into `to` (see the module documentation). `to` is
/// created (a SQLite file) or migrated (PostgreSQL) first; it must hold no data.
pub fn copy(from: &Endpoint, to: &Endpoint, busy_timeout: Duration) -> Result<CopyReport> {
    if from == to {
        return Err(PgError::Copy(format!("db copy needs two databases; --from and --to both name {from}")));
    }
    let columns = reference_columns()?;
    in_snapshot(from, busy_timeout, |source| copy_into(source, to, &columns, busy_timeout))
}

/// Runs `f` on `database` read in one snapshot: a SQLite read transaction, or a
/// PostgreSQL `REPEATABLE READ` read-only one.
fn in_snapshot<T>(
    database: &Endpoint,
    busy_timeout: Duration,
    f: impl FnOnce(&mut dyn Side) -> Result<T>,
) -> Result<T> {
    match database {
        Endpoint::Sqlite(path) => {
            let store = mpwatch_store::Store::open_read_only(path, busy_timeout)?;
            let tx = sqlite_of(store.connection(), path)?
                .unchecked_transaction()
                .map_err(|error| sqlite_error(error, &format!("reading {}", path.display())))?;
            f(&mut SqliteSide { conn: &tx, name: path.display().to_string() })
        }
        Endpoint::Postgres(url) => {
            let mut store = PgStore::open(url, OpenMode::Existing)?;
            let name = store.target().to_string();
            let mut tx = store
                .client()
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .context(|| format!("reading {name}"))?;
            f(&mut PgSide { tx: &mut tx, name })
        }
    }
}

/// The destination half of [`copy`]: opens `to`, copies and verifies in one
/// transaction, commits.
fn copy_into(source: &mut dyn Side, to: &Endpoint, columns: &Columns, busy_timeout: Duration) -> Result<CopyReport> {
    match to {
        Endpoint::Sqlite(path) => {
            let existed = path.exists();
            let result = copy_into_sqlite(source, path, columns, busy_timeout);
            if result.is_err() && !existed {
                // The file was made for this copy: leave nothing behind.
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.as_os_str().to_owned();
                    file.push(suffix);
                    let _ = std::fs::remove_file(PathBuf::from(file));
                }
            }
            result
        }
        Endpoint::Postgres(url) => {
            let mut store = PgStore::open(url, OpenMode::Migrate)?;
            let name = store.target().to_string();
            let mut tx = store.client().transaction().context(|| format!("writing {name}"))?;
            let report = {
                let mut destination = PgSide { tx: &mut tx, name: name.clone() };
                transfer(source, &mut destination, columns)?
            };
            tx.commit().context(|| format!("committing the copy into {name}"))?;
            Ok(report)
        }
    }
}

fn copy_into_sqlite(
    source: &mut dyn Side,
    path: &Path,
    columns: &Columns,
    busy_timeout: Duration,
) -> Result<CopyReport> {
    let options = mpwatch_store::StoreOptions { busy_timeout, create: true, adopt: false };
    let mut store = mpwatch_store::Store::open(path, &options)?;
    let name = path.display().to_string();
    // The copy's own error, kept whole: the store's closure can only return a StoreError.
    let mut failure = None;
    let outcome = store.write(|tx| {
        let conn = tx
            .connection()
            .sqlite()
            .ok_or_else(|| mpwatch_store::StoreError::NotFound(format!("{name} is not a SQLite file")))?;
        let mut destination = SqliteSide { conn, name: name.clone() };
        let report = transfer(source, &mut destination, columns).map_err(|error| {
            let message = error.to_string();
            failure = Some(error);
            // Any error rolls the write transaction back.
            mpwatch_store::StoreError::Corrupt(message)
        })?;
        // The copied articles wait for the full-text index: built in the same
        // transaction, so the copy commits whole or not at all.
        tx.index_for_search(usize::MAX, mpwatch_store::search_index::Waiting::All)?;
        Ok(report)
    });
    outcome.map_err(|error| failure.take().unwrap_or(PgError::Sqlite(error)))
}

/// Checks the destination is empty, copies each table, reads each back and compares.
fn transfer(source: &mut dyn Side, destination: &mut dyn Side, columns: &Columns) -> Result<CopyReport> {
    for table in TABLES {
        let wanted = &columns[table.name];
        source.check_columns(table.name, wanted)?;
        destination.check_columns(table.name, wanted)?;
        if !table.made_by_migrations {
            let rows = destination.count(table.name)?;
            if rows > 0 {
                return Err(PgError::Copy(format!(
                    "{} already holds data ({}: {rows} rows); db copy writes only into a new or empty database",
                    destination.name(),
                    table.name
                )));
            }
        }
    }
    let mut tables = Vec::new();
    for table in TABLES {
        let wanted = &columns[table.name];
        let from = if table.made_by_migrations {
            digest_of(source, table.name, wanted)?
        } else {
            let mut from = Digest::default();
            let mut writer = destination.writer(table, wanted)?;
            source.each_row(table.name, wanted, &mut |row| {
                from.add(row);
                writer.write(row)
            })?;
            writer.finish()?;
            if table.identity {
                destination.continue_ids(table.name)?;
            }
            from
        };
        let to = digest_of(destination, table.name, wanted)?;
        if from != to {
            return Err(PgError::Copy(format!(
                "{} differs after the copy: {} rows, checksum {} in {}; {} rows, checksum {} in {}; nothing was committed",
                table.name,
                from.rows,
                from.hex(),
                source.name(),
                to.rows,
                to.hex(),
                destination.name()
            )));
        }
        tracing::info!(table = table.name, rows = from.rows, "copied");
        tables.push(TableReport {
            table: table.name,
            rows: from.rows,
            checksum: from.hex(),
            compared_only: table.made_by_migrations,
        });
    }
    Ok(CopyReport { tables })
}

/// Row counts and checksums of every copied table of one database, read in one
/// snapshot: what `db copy` compares, for checking two databases by hand.
pub fn checksums(database: &Endpoint, busy_timeout: Duration) -> Result<Vec<TableReport>> {
    let columns = reference_columns()?;
    in_snapshot(database, busy_timeout, |side| {
        TABLES
            .iter()
            .map(|table| {
                let wanted = &columns[table.name];
                side.check_columns(table.name, wanted)?;
                let digest = digest_of(side, table.name, wanted)?;
                Ok(TableReport {
                    table: table.name,
                    rows: digest.rows,
                    checksum: digest.hex(),
                    compared_only: table.made_by_migrations,
                })
            })
            .collect()
    })
}

/// The row count and checksum of `table` on `side`.
fn digest_of(side: &mut dyn Side, table: &str, columns: &[(String, Kind)]) -> Result<Digest> {
    let mut digest = Digest::default();
    side.each_row(table, columns, &mut |row| {
        digest.add(row);
        Ok(())
    })?;
    Ok(digest)
}

/// A column's type, as the SQLite schema declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Real,
    Text,
    Blob,
}

impl Kind {
    fn postgres(self) -> Type {
        match self {
            Kind::Integer => Type::INT8,
            Kind::Real => Type::FLOAT8,
            Kind::Text => Type::TEXT,
            Kind::Blob => Type::BYTEA,
        }
    }
}

/// Each copied table's columns (name, type) in the reference schema.
type Columns = BTreeMap<&'static str, Vec<(String, Kind)>>;

/// The columns of the SQLite schema of this build, from the migrations applied to an
/// in-memory database: the reference both sides are checked against.
fn reference_columns() -> Result<Columns> {
    let describe = |error| sqlite_error(error, "building the reference schema");
    let conn = rusqlite::Connection::open_in_memory().map_err(describe)?;
    for (_, sql) in mpwatch_store::MIGRATIONS {
        conn.execute_batch(sql).map_err(describe)?;
    }
    TABLES
        .iter()
        .map(|table| {
            let mut statement = conn
                .prepare(&format!("SELECT name, type FROM pragma_table_info('{}')", table.name))
                .map_err(describe)?;
            let columns = statement
                .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(describe)?;
            let columns = columns
                .into_iter()
                .map(|(name, declared)| {
                    let kind = match declared.to_ascii_uppercase().as_str() {
                        "INTEGER" => Kind::Integer,
                        "REAL" => Kind::Real,
                        "TEXT" => Kind::Text,
                        "BLOB" => Kind::Blob,
                        other => {
                            return Err(PgError::Corrupt(format!("{}.{name} is declared {other}", table.name)));
                        }
                    };
                    Ok((name, kind))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((table.name, columns))
        })
        .collect()
}

/// The SQLite connection of a store opened on a file path.
fn sqlite_of<'s>(conn: &'s mpwatch_store::Connection, path: &Path) -> Result<&'s rusqlite::Connection> {
    conn.sqlite().ok_or_else(|| PgError::Copy(format!("{} is not a SQLite file", path.display())))
}

fn sqlite_error(source: rusqlite::Error, context: &str) -> PgError {
    PgError::Sqlite(mpwatch_store::StoreError::Sqlite { context: context.to_string(), source })
}

/// One value of a row, as both backends hold it.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(value) => value.to_sql(ty, out),
            Value::Real(value) => value.to_sql(ty, out),
            Value::Text(value) => value.to_sql(ty, out),
            Value::Blob(value) => value.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [Type::INT8, Type::FLOAT8, Type::TEXT, Type::BYTEA].contains(ty)
    }

    to_sql_checked!();
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(value) => ValueRef::Integer(*value),
            Value::Real(value) => ValueRef::Real(*value),
            Value::Text(value) => ValueRef::Text(value.as_bytes()),
            Value::Blob(value) => ValueRef::Blob(value),
        }))
    }
}

/// A table's row count and checksum: the wrapping sum of each row's SHA-256 (over its
/// values, each tagged with its type), so it does not depend on the order the rows are
/// read in (the two backends order text differently) and needs no sort.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Digest {
    rows: u64,
    sum: [u64; 4],
}

impl Digest {
    fn add(&mut self, row: &[Value]) {
        let mut hash = Sha256::new();
        for value in row {
            match value {
                Value::Null => hash.update([0]),
                Value::Integer(value) => {
                    hash.update([1]);
                    hash.update(value.to_le_bytes());
                }
                Value::Real(value) => {
                    hash.update([2]);
                    hash.update(value.to_bits().to_le_bytes());
                }
                Value::Text(value) => {
                    hash.update([3]);
                    hash.update((value.len() as u64).to_le_bytes());
                    hash.update(value.as_bytes());
                }
                Value::Blob(value) => {
                    hash.update([4]);
                    hash.update((value.len() as u64).to_le_bytes());
                    hash.update(value);
                }
            }
        }
        let hash = hash.finalize();
        for (lane, chunk) in self.sum.iter_mut().zip(hash.chunks_exact(8)) {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(chunk);
            *lane = lane.wrapping_add(u64::from_le_bytes(bytes));
        }
        self.rows += 1;
    }

    fn hex(&self) -> String {
        self.sum.iter().map(|lane| format!("{lane:016x}")).collect()
    }
}

/// One database inside a transaction, as a copy reads and writes it.
trait Side {
    /// The database as messages name it.
    fn name(&self) -> &str;
    /// Fails unless `table` has exactly these column names, with types that hold them.
    fn check_columns(&mut self, table: &str, columns: &[(String, Kind)]) -> Result<()>;
    /// Rows in `table`.
    fn count(&mut self, table: &str) -> Result<i64>;
    /// Calls `each` with every row of `table`, its values in the order of `columns`.
    fn each_row(
        &mut self,
        table: &str,
        columns: &[(String, Kind)],
        each: &mut dyn FnMut(&[Value]) -> Result<()>,
    ) -> Result<()>;
    /// A writer of rows into `table`.
    fn writer<'s>(&'s mut self, table: &CopiedTable, columns: &[(String, Kind)]) -> Result<Box<dyn RowWriter + 's>>;
    /// Moves the identity sequence of `table` past its largest id (PostgreSQL).
    fn continue_ids(&mut self, table: &str) -> Result<()>;
}

/// Writes rows into one table.
trait RowWriter {
    fn write(&mut self, row: &[Value]) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<()>;
}

fn column_list(columns: &[(String, Kind)]) -> String {
    columns.iter().map(|(name, _)| format!("\"{name}\"")).collect::<Vec<_>>().join(", ")
}

fn mismatch(name: &str, table: &str, found: &[(String, String)], columns: &[(String, Kind)]) -> PgError {
    let wanted: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let found: Vec<String> = found.iter().map(|(name, ty)| format!("{name} {ty}")).collect();
    PgError::Copy(format!(
        "table {table} of {name} is not the one of schema version {}: it has columns [{}], mpwatch's are [{}]",
        mpwatch_store::LATEST_SCHEMA_VERSION,
        found.join(", "),
        wanted.join(", ")
    ))
}

struct SqliteSide<'c> {
    conn: &'c rusqlite::Connection,
    name: String,
}

impl SqliteSide<'_> {
    fn error(&self, table: &str, what: &str) -> impl Fn(rusqlite::Error) -> PgError {
        let context = format!("{what} {table} in {}", self.name);
        move |error| sqlite_error(error, &context)
    }
}

impl Side for SqliteSide<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn check_columns(&mut self, table: &str, columns: &[(String, Kind)]) -> Result<()> {
        let mut statement = self
            .conn
            .prepare(&format!("SELECT name, type FROM pragma_table_info('{table}')"))
            .map_err(self.error(table, "reading the columns of"))?;
        let found = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.error(table, "reading the columns of"))?;
        let same =
            found.len() == columns.len() && found.iter().zip(columns).all(|((name, _), (wanted, _))| name == wanted);
        if same { Ok(()) } else { Err(mismatch(&self.name, table, &found, columns)) }
    }

    fn count(&mut self, table: &str) -> Result<i64> {
        self.conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))
            .map_err(self.error(table, "counting the rows of"))
    }

    fn each_row(
        &mut self,
        table: &str,
        columns: &[(String, Kind)],
        each: &mut dyn FnMut(&[Value]) -> Result<()>,
    ) -> Result<()> {
        let failed = self.error(table, "reading");
        let mut statement =
            self.conn.prepare(&format!("SELECT {} FROM {table}", column_list(columns))).map_err(&failed)?;
        let mut rows = statement.query([]).map_err(&failed)?;
        let mut values = Vec::with_capacity(columns.len());
        while let Some(row) = rows.next().map_err(&failed)? {
            values.clear();
            for (at, (column, kind)) in columns.iter().enumerate() {
                use rusqlite::types::ValueRef;
                let value = match (row.get_ref(at).map_err(&failed)?, kind) {
                    (ValueRef::Null, _) => Value::Null,
                    (ValueRef::Integer(value), Kind::Integer) => Value::Integer(value),
                    (ValueRef::Integer(value), Kind::Real) => Value::Real(value as f64),
                    (ValueRef::Real(value), Kind::Real) => Value::Real(value),
                    (ValueRef::Text(text), Kind::Text) => Value::Text(
                        String::from_utf8(text.to_vec())
                            .map_err(|_| PgError::Corrupt(format!("{table}.{column} holds text that is not UTF-8")))?,
                    ),
                    (ValueRef::Blob(blob), Kind::Blob) => Value::Blob(blob.to_vec()),
                    (found, _) => {
                        return Err(PgError::Corrupt(format!(
                            "{table}.{column} of {} holds a {:?} where mpwatch writes {kind:?} (another program wrote it?)",
                            self.name,
                            found.data_type()
                        )));
                    }
                };
                values.push(value);
            }
            each(&values)?;
        }
        Ok(())
    }

    fn writer<'s>(&'s mut self, table: &CopiedTable, columns: &[(String, Kind)]) -> Result<Box<dyn RowWriter + 's>> {
        let placeholders = vec!["?"; columns.len()].join(", ");
        let sql = format!("INSERT INTO {} ({}) VALUES ({placeholders})", table.name, column_list(columns));
        let statement = self.conn.prepare(&sql).map_err(self.error(table.name, "writing"))?;
        Ok(Box::new(SqliteWriter { statement, context: format!("writing {} in {}", table.name, self.name) }))
    }

    fn continue_ids(&mut self, _table: &str) -> Result<()> {
        // SQLite's next rowid is always the largest plus one.
        Ok(())
    }
}

struct SqliteWriter<'c> {
    statement: rusqlite::Statement<'c>,
    context: String,
}

impl RowWriter for SqliteWriter<'_> {
    fn write(&mut self, row: &[Value]) -> Result<()> {
        self.statement.execute(rusqlite::params_from_iter(row)).map_err(|error| sqlite_error(error, &self.context))?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

struct PgSide<'t, 'c> {
    tx: &'t mut postgres::Transaction<'c>,
    name: String,
}

impl Side for PgSide<'_, '_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn check_columns(&mut self, table: &str, columns: &[(String, Kind)]) -> Result<()> {
        let rows = self
            .tx
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                &[&table],
            )
            .context(|| format!("reading the columns of {table} in {}", self.name))?;
        let found = rows
            .iter()
            .map(|row| Ok((row.try_get::<_, String>(0)?, row.try_get::<_, String>(1)?)))
            .collect::<std::result::Result<Vec<_>, postgres::Error>>()
            .context(|| format!("reading the columns of {table} in {}", self.name))?;
        let holds = |found: &str, kind: Kind| match kind {
            Kind::Integer => found == "bigint",
            Kind::Real => found == "double precision",
            Kind::Text => found == "text",
            Kind::Blob => found == "bytea",
        };
        let same = found.len() == columns.len()
            && found.iter().zip(columns).all(|((name, ty), (wanted, kind))| name == wanted && holds(ty, *kind));
        if same { Ok(()) } else { Err(mismatch(&self.name, table, &found, columns)) }
    }

    fn count(&mut self, table: &str) -> Result<i64> {
        self.tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .and_then(|row| row.try_get(0))
            .context(|| format!("counting the rows of {table} in {}", self.name))
    }

    fn each_row(
        &mut self,
        table: &str,
        columns: &[(String, Kind)],
        each: &mut dyn FnMut(&[Value]) -> Result<()>,
    ) -> Result<()> {
        let name = self.name.clone();
        let failed = || format!("reading {table} in {name}");
        let sql = format!("SELECT {} FROM {table}", column_list(columns));
        let mut rows = self.tx.query_raw(&sql, std::iter::empty::<i64>()).context(failed)?;
        let mut values = Vec::with_capacity(columns.len());
        while let Some(row) = rows.next().context(failed)? {
            values.clear();
            for (at, (_, kind)) in columns.iter().enumerate() {
                let value = match kind {
                    Kind::Integer => row.try_get::<_, Option<i64>>(at).map(|v| v.map_or(Value::Null, Value::Integer)),
                    Kind::Real => row.try_get::<_, Option<f64>>(at).map(|v| v.map_or(Value::Null, Value::Real)),
                    Kind::Text => row.try_get::<_, Option<String>>(at).map(|v| v.map_or(Value::Null, Value::Text)),
                    Kind::Blob => row.try_get::<_, Option<Vec<u8>>>(at).map(|v| v.map_or(Value::Null, Value::Blob)),
                }
                .context(failed)?;
                values.push(value);
            }
            each(&values)?;
        }
        Ok(())
    }

    fn writer<'s>(&'s mut self, table: &CopiedTable, columns: &[(String, Kind)]) -> Result<Box<dyn RowWriter + 's>> {
        let context = format!("writing {} in {}", table.name, self.name);
        let sql = format!("COPY {} ({}) FROM STDIN (FORMAT binary)", table.name, column_list(columns));
        let sink = self.tx.copy_in(&sql).context(|| context.clone())?;
        let types: Vec<Type> = columns.iter().map(|(_, kind)| kind.postgres()).collect();
        let writer = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
        Ok(Box::new(PgWriter { writer, context }))
    }

    fn continue_ids(&mut self, table: &str) -> Result<()> {
        self.tx
            .execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} HAVING count(*) > 0"
                ),
                &[],
            )
            .context(|| format!("continuing the ids of {table} in {}", self.name))?;
        Ok(())
    }
}

struct PgWriter<'a> {
    writer: postgres::binary_copy::BinaryCopyInWriter<'a>,
    context: String,
}

impl RowWriter for PgWriter<'_> {
    fn write(&mut self, row: &[Value]) -> Result<()> {
        let context = &self.context;
        self.writer.write_raw(row.iter()).context(|| context.clone())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let context = self.context;
        self.writer.finish().map(|_| ()).context(|| context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_schema_has_every_copied_table() {
        let columns = reference_columns().expect("reference schema");
        for table in TABLES {
            assert!(!columns[table.name].is_empty(), "{} has no columns", table.name);
        }
        assert_eq!(columns["index_state"].last().map(|(name, _)| name.as_str()), Some("accounts_fingerprint"));
    }

    #[test]
    fn the_checksum_ignores_row_order_and_sees_every_value() {
        let rows = [
            vec![Value::Integer(1), Value::Text("环球科学".into()), Value::Null],
            vec![Value::Integer(2), Value::Real(0.5), Value::Blob(vec![0, 1])],
        ];
        let mut forward = Digest::default();
        rows.iter().for_each(|row| forward.add(row));
        let mut backward = Digest::default();
        rows.iter().rev().for_each(|row| backward.add(row));
        assert_eq!(forward, backward);
        let mut changed = Digest::default();
        changed.add(&rows[0]);
        changed.add(&[Value::Integer(2), Value::Real(0.5000000001), Value::Blob(vec![0, 1])]);
        assert_ne!(forward, changed);
        // A NULL is not an empty text, nor 0.
        let mut null = Digest::default();
        null.add(&[Value::Null]);
        let mut empty = Digest::default();
        empty.add(&[Value::Text(String::new())]);
        assert_ne!(null, empty);
    }
}
