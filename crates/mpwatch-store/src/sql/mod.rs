//! One connection type for both backends: SQLite (rusqlite, the default, unchanged) and
//! PostgreSQL (the synchronous `postgres` client), with rusqlite's shape (`execute`,
//! `query_row`, `prepare_cached`, `query_map`, rows read with `row.get(i)` into any
//! `FromSql` type), so the store's statements are written once.
//!
//! - Statements are written in SQLite's dialect, kept to what PostgreSQL also accepts;
//!   [`translate`] rewrites the few differences that are pure form (`?N` placeholders,
//!   `INDEXED BY`, two-argument `max`/`min`, `INSERT OR IGNORE`). What differs in
//!   meaning is written per backend where it is used (`Connection::is_postgres`).
//! - Values travel as SQLite's five types: a PostgreSQL parameter is bound from
//!   rusqlite's `ToSql` value with the type PostgreSQL inferred for it, and a
//!   PostgreSQL column is read back as the SQLite value it stands for (BIGINT and
//!   BOOLEAN as INTEGER, DOUBLE PRECISION as REAL, TEXT, BYTEA as BLOB).
//! - Errors are `rusqlite::Error` on both backends, so the store's error handling is
//!   one: a PostgreSQL error travels as `ToSqlConversionFailure` (rusqlite's one
//!   variant that holds any error) holding a [`PostgresError`] (its message and
//!   SQLSTATE); [`postgres_error`] finds it.

mod postgres_backend;
pub mod translate;

use std::fmt;

use postgres_backend::{Postgres, PostgresRows};
pub use postgres_backend::{PostgresError, client_config, wrap as wrap_postgres};
pub use rusqlite::types::{FromSql, ToSql, ValueRef};
pub use rusqlite::{OptionalExtension, Result, params};

/// The PostgreSQL error inside `error`, if it is one.
pub fn postgres_error(error: &rusqlite::Error) -> Option<&PostgresError> {
    match error {
        rusqlite::Error::ToSqlConversionFailure(inner) => inner.downcast_ref::<PostgresError>(),
        _ => None,
    }
}

/// Parameters of a statement: rusqlite's `params![...]`, an array of values (`[id]`,
/// `[]`) or a tuple of up to six.
pub trait Params {
    /// Calls `f` with the parameters as a slice.
    fn with_slice<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R;
}

impl Params for &[&dyn ToSql] {
    fn with_slice<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
}

impl Params for [&(dyn ToSql + Send + Sync); 0] {
    fn with_slice<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
}

impl Params for &Vec<&dyn ToSql> {
    fn with_slice<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
}

macro_rules! array_params {
    ($($n:literal)*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn with_slice<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
                let refs: [&dyn ToSql; $n] = self.each_ref().map(|value| value as &dyn ToSql);
                f(&refs)
            }
        }
    )*};
}
array_params!(1 2 3 4 5 6 7 8);

macro_rules! tuple_params {
    ($(($($name:ident),+))*) => {$(
        impl<$($name: ToSql),+> Params for ($($name,)+) {
            #[allow(non_snake_case)]
            fn with_slice<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
                let ($($name,)+) = &self;
                f(&[$($name as &dyn ToSql),+])
            }
        }
    )*};
}
tuple_params!((A)(A, B)(A, B, C)(A, B, C, D)(A, B, C, D, E)(A, B, C, D, E, F));

/// Parameters from an iterator of values (rusqlite's `params_from_iter`).
pub fn params_from_iter<T: ToSql, I: IntoIterator<Item = T>>(values: I) -> ParamsFromIter<T> {
    ParamsFromIter(values.into_iter().collect())
}

/// See [`params_from_iter`].
#[derive(Debug)]
pub struct ParamsFromIter<T>(Vec<T>);

impl<T: ToSql> Params for ParamsFromIter<T> {
    fn with_slice<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        let refs: Vec<&dyn ToSql> = self.0.iter().map(|value| value as &dyn ToSql).collect();
        f(&refs)
    }
}

/// A database connection: a SQLite file or a PostgreSQL database.
pub enum Connection {
    /// rusqlite's connection, as it always was.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL client with its prepared statements (boxed: it is the larger).
    Postgres(Box<Postgres>),
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Connection::Sqlite(conn) => conn.fmt(f),
            Connection::Postgres(conn) => conn.fmt(f),
        }
    }
}

impl Connection {
    /// Connects to PostgreSQL at `url` (which may hold a password: errors never show it);
    /// row locks are waited for up to `busy_timeout`.
    pub fn open_postgres(url: &str, busy_timeout: std::time::Duration) -> Result<Connection> {
        Postgres::connect(url, busy_timeout).map(|postgres| Connection::Postgres(Box::new(postgres)))
    }

    /// Whether this is a PostgreSQL connection.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Connection::Postgres(_))
    }

    /// The SQLite connection, when this is one.
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Connection::Sqlite(conn) => Some(conn),
            Connection::Postgres(_) => None,
        }
    }

    /// Runs one statement, returning the rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        params.with_slice(|params| match self {
            Connection::Sqlite(conn) => conn.execute(sql, params),
            Connection::Postgres(conn) => conn.execute(sql, params),
        })
    }

    /// [`Connection::execute`] through the statement cache: prepared once per connection.
    pub fn execute_cached(&self, sql: &str, params: impl Params) -> Result<usize> {
        params.with_slice(|params| match self {
            Connection::Sqlite(conn) => conn.prepare_cached(sql)?.execute(params),
            Connection::Postgres(conn) => conn.execute(sql, params),
        })
    }

    /// Runs several statements without parameters (DDL, savepoints, transactions).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Connection::Sqlite(conn) => conn.execute_batch(sql),
            Connection::Postgres(conn) => conn.execute_batch(sql),
        }
    }

    /// The first row of a query, through `f`; `QueryReturnedNoRows` without one.
    pub fn query_row<T, F>(&self, sql: &str, params: impl Params, f: F) -> Result<T>
    where
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        params.with_slice(|params| match self {
            Connection::Sqlite(conn) => conn.query_row(sql, params, |row| f(&Row::Sqlite(row))),
            Connection::Postgres(conn) => {
                let rows = conn.query(sql, params)?;
                match rows.first() {
                    Some(values) => f(&Row::Postgres(values)),
                    None => Err(rusqlite::Error::QueryReturnedNoRows),
                }
            }
        })
    }

    /// Prepares a statement (for SQLite; PostgreSQL prepares through the cache).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        match self {
            Connection::Sqlite(conn) => {
                conn.prepare(sql).map(|statement| Statement::Sqlite(SqliteStatement::Plain(statement)))
            }
            Connection::Postgres(conn) => Ok(Statement::Postgres { conn, sql: sql.to_string() }),
        }
    }

    /// Prepares a statement once per connection and reuses it.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        match self {
            Connection::Sqlite(conn) => {
                conn.prepare_cached(sql).map(|statement| Statement::Sqlite(SqliteStatement::Cached(statement)))
            }
            Connection::Postgres(conn) => Ok(Statement::Postgres { conn, sql: sql.to_string() }),
        }
    }

    /// The id of the last row inserted on this connection (PostgreSQL: `lastval()`,
    /// the last identity value this session drew; 0 before any).
    pub fn last_insert_rowid(&self) -> i64 {
        match self {
            Connection::Sqlite(conn) => conn.last_insert_rowid(),
            Connection::Postgres(conn) => conn.last_value(),
        }
    }

    /// Whether no transaction is open.
    pub fn is_autocommit(&self) -> bool {
        match self {
            Connection::Sqlite(conn) => conn.is_autocommit(),
            Connection::Postgres(conn) => !conn.in_transaction(),
        }
    }

    /// Starts a transaction: on SQLite `BEGIN IMMEDIATE` when `write` (take the write
    /// lock now) else `BEGIN DEFERRED`; on PostgreSQL `BEGIN` (READ COMMITTED, rows
    /// locked as they are written).
    pub fn transaction(&self, write: bool) -> Result<Transaction<'_>> {
        match self {
            Connection::Sqlite(_) => {
                self.execute_batch(if write { "BEGIN IMMEDIATE" } else { "BEGIN DEFERRED" })?;
            }
            Connection::Postgres(conn) => conn.begin(write)?,
        }
        Ok(Transaction { conn: self, finished: false })
    }
}

/// A transaction; it rolls back when dropped without [`Transaction::commit`].
pub struct Transaction<'c> {
    conn: &'c Connection,
    finished: bool,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction").finish_non_exhaustive()
    }
}

impl Transaction<'_> {
    /// Commits.
    pub fn commit(mut self) -> Result<()> {
        let committed = match self.conn {
            Connection::Sqlite(conn) => conn.execute_batch("COMMIT"),
            Connection::Postgres(conn) => conn.end("COMMIT"),
        };
        // A COMMIT that failed may leave SQLite's transaction open (busy, a full
        // disk): dropping `self` unfinished rolls it back.
        self.finished = committed.is_ok();
        committed
    }

    /// Rolls back.
    pub fn rollback(mut self) -> Result<()> {
        self.finished = true;
        self.roll_back()
    }

    fn roll_back(&self) -> Result<()> {
        match self.conn {
            // SQLite may have ended the transaction itself (a full disk): nothing to undo.
            Connection::Sqlite(conn) if conn.is_autocommit() => Ok(()),
            Connection::Sqlite(conn) => conn.execute_batch("ROLLBACK"),
            Connection::Postgres(conn) => conn.end("ROLLBACK"),
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.roll_back();
        }
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// A prepared statement.
pub enum Statement<'c> {
    /// rusqlite's statement (from the connection's cache or not).
    Sqlite(SqliteStatement<'c>),
    /// A statement of the PostgreSQL connection (prepared once, through its cache).
    Postgres {
        /// The connection.
        conn: &'c Postgres,
        /// The statement as written (SQLite's dialect).
        sql: String,
    },
}

/// rusqlite's statement, prepared once or taken from the connection's cache.
pub enum SqliteStatement<'c> {
    /// Prepared for this use.
    Plain(rusqlite::Statement<'c>),
    /// From the connection's cache (goes back to it when dropped).
    Cached(rusqlite::CachedStatement<'c>),
}

impl<'c> std::ops::Deref for SqliteStatement<'c> {
    type Target = rusqlite::Statement<'c>;

    fn deref(&self) -> &rusqlite::Statement<'c> {
        match self {
            SqliteStatement::Plain(statement) => statement,
            SqliteStatement::Cached(statement) => statement,
        }
    }
}

impl std::ops::DerefMut for SqliteStatement<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            SqliteStatement::Plain(statement) => statement,
            SqliteStatement::Cached(statement) => statement,
        }
    }
}

impl Statement<'_> {
    /// Runs it, returning the rows it changed.
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        params.with_slice(|params| match self {
            Statement::Sqlite(statement) => statement.execute(params),
            Statement::Postgres { conn, sql } => conn.execute(sql, params),
        })
    }

    /// The first row, through `f`.
    pub fn query_row<T, F>(&mut self, params: impl Params, f: F) -> Result<T>
    where
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        params.with_slice(|params| match self {
            Statement::Sqlite(statement) => statement.query_row(params, |row| f(&Row::Sqlite(row))),
            Statement::Postgres { conn, sql } => match conn.query(sql, params)?.first() {
                Some(values) => f(&Row::Postgres(values)),
                None => Err(rusqlite::Error::QueryReturnedNoRows),
            },
        })
    }

    /// Every row through `f`, lazily on SQLite (rows are read as the iterator is).
    pub fn query_map<T, F>(&mut self, params: impl Params, mut f: F) -> Result<MappedRows<'_, T, F>>
    where
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        params.with_slice(move |params| match self {
            Statement::Sqlite(statement) => Ok(MappedRows::Sqlite { rows: statement.query(params)?, map: f }),
            Statement::Postgres { conn, sql } => {
                let rows = conn.query(sql, params)?;
                let mapped: Vec<Result<T>> = rows.iter().map(|values| f(&Row::Postgres(values))).collect();
                Ok(MappedRows::Postgres(mapped.into_iter()))
            }
        })
    }

    /// The rows, to walk with [`Rows::next`].
    pub fn query(&mut self, params: impl Params) -> Result<Rows<'_>> {
        params.with_slice(move |params| match self {
            Statement::Sqlite(statement) => statement.query(params).map(Rows::Sqlite),
            Statement::Postgres { conn, sql } => Ok(Rows::Postgres(PostgresRows::new(conn.query(sql, params)?))),
        })
    }

    /// Whether the query returns a row.
    pub fn exists(&mut self, params: impl Params) -> Result<bool> {
        params.with_slice(|params| match self {
            Statement::Sqlite(statement) => statement.exists(params),
            Statement::Postgres { conn, sql } => Ok(!conn.query(sql, params)?.is_empty()),
        })
    }

    /// The number of columns it returns.
    pub fn column_count(&mut self) -> usize {
        match self {
            Statement::Sqlite(statement) => statement.column_count(),
            Statement::Postgres { conn, sql } => conn.column_count(sql).unwrap_or(0),
        }
    }

    /// The number of parameters it takes.
    pub fn parameter_count(&mut self) -> usize {
        match self {
            Statement::Sqlite(statement) => statement.parameter_count(),
            Statement::Postgres { conn, sql } => conn.parameter_count(sql).unwrap_or(0),
        }
    }
}

/// The rows of [`Statement::query_map`], each through the mapping function.
pub enum MappedRows<'s, T, F> {
    /// rusqlite's rows, mapped as they are read.
    Sqlite {
        /// The rows.
        rows: rusqlite::Rows<'s>,
        /// The mapping function.
        map: F,
    },
    /// PostgreSQL's rows, read whole and mapped.
    Postgres(std::vec::IntoIter<Result<T>>),
}

impl<T, F: FnMut(&Row<'_>) -> Result<T>> Iterator for MappedRows<'_, T, F> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        match self {
            MappedRows::Sqlite { rows, map } => match rows.next() {
                Ok(Some(row)) => Some(map(&Row::Sqlite(row))),
                Ok(None) => None,
                Err(error) => Some(Err(error)),
            },
            MappedRows::Postgres(rows) => rows.next(),
        }
    }
}

/// The rows of [`Statement::query`].
pub enum Rows<'s> {
    /// rusqlite's rows.
    Sqlite(rusqlite::Rows<'s>),
    /// PostgreSQL's rows, read whole.
    Postgres(PostgresRows),
}

impl Rows<'_> {
    /// The next row, if any.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self {
            Rows::Sqlite(rows) => rows.next().map(|row| row.map(Row::Sqlite)),
            Rows::Postgres(rows) => Ok(rows.next().map(Row::Postgres)),
        }
    }
}

/// A column position (a trait of one implementation, so that `row.get(0)` infers
/// `usize` as with rusqlite).
pub trait RowIndex {
    /// The 0-based position.
    fn position(self) -> usize;
}

impl RowIndex for usize {
    fn position(self) -> usize {
        self
    }
}

/// A row of a result.
pub enum Row<'r> {
    /// rusqlite's row.
    Sqlite(&'r rusqlite::Row<'r>),
    /// A PostgreSQL row, as SQLite values.
    Postgres(&'r [rusqlite::types::Value]),
}

impl Row<'_> {
    /// Column `index` as `T`, converted as rusqlite converts SQLite values.
    pub fn get<I: RowIndex, T: FromSql>(&self, index: I) -> Result<T> {
        let index = index.position();
        match self {
            Row::Sqlite(row) => row.get(index),
            Row::Postgres(values) => {
                let value = values.get(index).ok_or(rusqlite::Error::InvalidColumnIndex(index))?;
                T::column_result(ValueRef::from(value)).map_err(|error| match error {
                    rusqlite::types::FromSqlError::InvalidType => {
                        rusqlite::Error::InvalidColumnType(index, format!("column {index}"), value.data_type())
                    }
                    other => rusqlite::Error::FromSqlConversionFailure(index, value.data_type(), Box::new(other)),
                })
            }
        }
    }

    /// Column `index` as SQLite's value.
    pub fn get_ref(&self, index: usize) -> Result<ValueRef<'_>> {
        match self {
            Row::Sqlite(row) => row.get_ref(index),
            Row::Postgres(values) => {
                values.get(index).map(ValueRef::from).ok_or(rusqlite::Error::InvalidColumnIndex(index))
            }
        }
    }
}

/// A PostgreSQL URL as errors and logs show it: the password replaced by `***`, both in
/// the user information (`user:secret@host`: everything up to the first `@` is user
/// information, as the client reads it, so a password may hold `/` or `?`) and as any
/// parameter whose name, percent-decoded, contains `password`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let rest = match rest.split_once('@') {
        Some((userinfo, after)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{after}"),
            None => format!("{userinfo}@{after}"),
        },
        None => rest.to_string(),
    };
    let (head, query) = match rest.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (rest.as_str(), None),
    };
    match query {
        Some(query) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if percent_decoded(key).to_ascii_lowercase().contains("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{scheme}://{head}?{}", pairs.join("&"))
        }
        None => format!("{scheme}://{head}"),
    }
}

/// `%XX` escapes decoded (bytes that do not make UTF-8 are kept as they are written).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[at] == b'%'
            && let (Some(high), Some(low)) =
                (bytes.get(at + 1).copied().and_then(hex), bytes.get(at + 2).copied().and_then(hex))
        {
            out.push((high * 16 + low) as u8);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// Refuses, with one line that shows no password, a database setting that is neither a
/// SQLite file path nor a `postgres://` URL but would be taken for a file named after
/// it: a URL of another scheme (a typo of `postgres://`, `sqlite://`) or libpq's
/// key=value form (`host=db user=u password=...`).
pub fn check_database_setting(database: &str) -> std::result::Result<(), String> {
    if mpwatch_core::config::is_postgres_url(database) {
        return Ok(());
    }
    if let Some((scheme, _)) = database.split_once("://")
        && !scheme.contains('/')
    {
        return Err(format!(
            "the database {} has the scheme {scheme}://, which mpwatch does not know: give a SQLite file path or a postgres:// URL",
            redacted(database)
        ));
    }
    if database.contains('=') && database.split_whitespace().count() > 1 {
        return Err(
            "the database looks like a key=value connection string; give PostgreSQL as a URL: postgresql://USER@HOST/DATABASE"
                .into(),
        );
    }
    Ok(())
}

/// `url` with its scheme in lower case: the client knows `postgres://` and
/// `postgresql://` only in lower case, and mpwatch accepts any case.
pub fn normalized_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            ("postgres://ana:s3cret@db.example:5432/mpwatch", "postgres://ana:***@db.example:5432/mpwatch"),
            ("postgres://ana:s3cret@db.example", "postgres://ana:***@db.example"),
            (
                "postgresql://ana@db/mpwatch?password=s3cret&sslmode=disable",
                "postgresql://ana@db/mpwatch?password=***&sslmode=disable",
            ),
            ("postgresql:///mpwatch?host=/tmp/pg&user=postgres", "postgresql:///mpwatch?host=/tmp/pg&user=postgres"),
            ("postgres://a:s3cret/x@h/db", "postgres://a:***@h/db"),
            ("postgres://a:s3cret?x@h/db", "postgres://a:***@h/db"),
            ("postgres://a:p@ss@h/db", "postgres://a:***@ss@h/db"),
            ("postgres://h/db?pass%77ord=s3cret&sslpassword=s3cret", "postgres://h/db?pass%77ord=***&sslpassword=***"),
        ] {
            assert_eq!(redacted(url), shown);
            assert!(!redacted(url).contains("s3cret"));
        }
    }
}
