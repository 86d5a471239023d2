//! The PostgreSQL side of [`super::Connection`].

use std::collections::HashMap;
use std::fmt;
use std::sync::mpsc;

use postgres::types::{IsNull, Kind, ToSql as PgToSql, Type};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use super::Result;
use super::translate::translate;

type Params<'p> = &'p [&'p dyn rusqlite::ToSql];

/// A PostgreSQL error as the store reports it: the server's message (and detail), its
/// SQLSTATE, and what the store was running. Carried inside
/// `rusqlite::Error::ToSqlConversionFailure` (the one variant of rusqlite's error that
/// holds any error; see [`super::postgres_error`]) so both backends share one error type.
#[derive(Debug)]
pub struct PostgresError {
    /// One line: the message and detail.
    pub message: String,
    /// The SQLSTATE code, when the server sent one.
    pub code: Option<String>,
}

impl fmt::Display for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgreSQL: {}", self.message)
    }
}

impl std::error::Error for PostgresError {}

impl PostgresError {
    /// Another transaction held or changed what this one needed (a serialization
    /// failure, a deadlock, a lock timeout, a unique row it inserted first): the work
    /// can be tried again, as with SQLite's busy.
    pub fn is_busy(&self) -> bool {
        // 23505: another node inserted the same row (an article, an account) between
        // this one's read and its insert; tried again, the read finds it.
        matches!(self.code.as_deref(), Some("40001" | "40P01" | "55P03" | "23505"))
    }
}

/// A PostgreSQL client error as the store's (rusqlite's) error type.
pub fn wrap(error: postgres::Error) -> rusqlite::Error {
    let (message, code) = match error.as_db_error() {
        Some(db) => (
            match db.detail() {
                Some(detail) => format!("{} ({detail})", db.message()),
                None => db.message().to_string(),
            },
            Some(db.code().code().to_string()),
        ),
        None => {
            let message = match std::error::Error::source(&error) {
                Some(cause) => format!("{error}: {cause}"),
                None => error.to_string(),
            };
            (message, error.code().map(|code| code.code().to_string()))
        }
    };
    rusqlite::Error::ToSqlConversionFailure(Box::new(PostgresError { message, code }))
}

/// `error` of the statement `sql`, which the debug log shows (`-vv`).
fn failed(sql: &str, error: postgres::Error) -> rusqlite::Error {
    let error = wrap(error);
    tracing::debug!(sql, %error, "PostgreSQL statement failed");
    error
}

fn unsupported(message: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(PostgresError { message, code: None }))
}

/// How long connecting may take unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Prepared statements kept per connection; beyond it the cache starts again (dynamic
/// statements of feeds, search and exports would otherwise pile up on the server).
const STATEMENT_CACHE: usize = 512;

/// The client's settings for `url`: its scheme in lower case (the client knows only
/// that), a connect timeout unless the URL sets one, and `lock_timeout` =
/// `busy_timeout` added to the URL's own `options` (a search_path, say).
pub fn client_config(
    url: &str,
    busy_timeout: std::time::Duration,
) -> std::result::Result<postgres::Config, postgres::Error> {
    let mut config: postgres::Config = super::normalized_url(url).parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let options = format!("{} -c lock_timeout={}", config.get_options().unwrap_or(""), busy_timeout.as_millis());
    config.options(options.trim());
    Ok(config)
}

/// A job for the connection's thread.
type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// A PostgreSQL connection. The `postgres` client drives its socket with a runtime of
/// its own, which must never run inside another runtime (the crawler's): so the client
/// lives on a thread of its own, and each call hands it a job and waits for the answer
/// (blocking the caller's thread as a SQLite call does, and nothing else).
pub struct Postgres {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the connection's thread holds: the client, its prepared statements (by the SQL
/// as written) and whether a transaction is open.
pub(crate) struct Session {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    in_transaction: bool,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which drops the client there.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Postgres {
    /// Connects (giving up after [`CONNECT_TIMEOUT`]); a row lock another session holds
    /// is waited for up to `busy_timeout`, then the statement fails as busy (as with
    /// SQLite's busy timeout).
    pub(crate) fn connect(url: &str, busy_timeout: std::time::Duration) -> Result<Postgres> {
        let config = client_config(url, busy_timeout).map_err(wrap)?;
        let (jobs, receiver) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("mpwatch-postgres".into())
            .spawn(move || {
                let client = match config.connect(postgres::NoTls) {
                    Ok(client) => {
                        let _ = ready.send(Ok(()));
                        client
                    }
                    Err(error) => {
                        let _ = ready.send(Err(wrap(error)));
                        return;
                    }
                };
                let mut session = Session { client, statements: HashMap::new(), in_transaction: false };
                for job in receiver {
                    job(&mut session);
                }
            })
            .map_err(|error| unsupported(format!("cannot start the PostgreSQL connection's thread: {error}")))?;
        match connected.recv() {
            Ok(Ok(())) => Ok(Postgres { jobs: Some(jobs), thread: Some(thread) }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => Err(unsupported("the PostgreSQL connection's thread ended".into())),
        }
    }

    /// Runs `job` on the connection's thread and returns its answer.
    fn run<T: Send + 'static>(&self, job: impl FnOnce(&mut Session) -> T + Send + 'static) -> Result<T> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |session| {
            let _ = answer.send(job(session));
        });
        let gone = || unsupported("the PostgreSQL connection's thread ended".into());
        self.jobs.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())?;
        answered.recv().map_err(|_| gone())
    }

    /// The client, for what needs PostgreSQL itself (migrations, leases).
    pub fn with_client<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
    ) -> Result<T> {
        self.run(move |session| f(&mut session.client))
    }

    pub(crate) fn execute(&self, sql: &str, params: Params<'_>) -> Result<usize> {
        let (sql, values) = (sql.to_string(), owned_params(params)?);
        self.run(move |session| {
            let statement = session.statement(&sql, &values)?;
            let bound = bind(&statement, values)?;
            let changed = session.client.execute(&statement, &refs(&bound)).map_err(|error| failed(&sql, error))?;
            Ok(usize::try_from(changed).unwrap_or(usize::MAX))
        })?
    }

    pub(crate) fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Vec<Value>>> {
        let (sql, values) = (sql.to_string(), owned_params(params)?);
        self.run(move |session| {
            let statement = session.statement(&sql, &values)?;
            let bound = bind(&statement, values)?;
            let rows = session.client.query(&statement, &refs(&bound)).map_err(|error| failed(&sql, error))?;
            rows.iter().map(values_of).collect()
        })?
    }

    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        let translated = translate(sql);
        self.run(move |session| session.client.batch_execute(&translated).map_err(wrap))?
    }

    /// Starts a transaction: READ COMMITTED for writes (rows are locked as they are
    /// written), REPEATABLE READ for reads (every query sees one snapshot, as a SQLite
    /// read transaction does). One job on the connection's thread, which keeps whether
    /// a transaction is open.
    pub(crate) fn begin(&self, write: bool) -> Result<()> {
        self.run(move |session| {
            if session.in_transaction {
                // PostgreSQL would only warn, and the inner commit would end the outer work.
                return Err(unsupported("a transaction inside a transaction".into()));
            }
            let begin = if write { "BEGIN" } else { "BEGIN ISOLATION LEVEL REPEATABLE READ" };
            session.client.batch_execute(begin).map_err(wrap)?;
            session.in_transaction = true;
            Ok(())
        })?
    }

    /// Ends the transaction with `how` (`COMMIT` or `ROLLBACK`).
    pub(crate) fn end(&self, how: &'static str) -> Result<()> {
        self.run(move |session| {
            session.in_transaction = false;
            session.client.batch_execute(how).map_err(wrap)
        })?
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.run(|session| session.in_transaction).unwrap_or(false)
    }

    pub(crate) fn last_value(&self) -> i64 {
        self.run(|session| {
            // lastval() fails before the session drew any sequence value: 0, as SQLite says.
            let guarded = session.in_transaction && session.client.batch_execute("SAVEPOINT last_value").is_ok();
            let value = session.client.query_one("SELECT lastval()", &[]).and_then(|row| row.try_get(0)).ok();
            if guarded {
                let _ = session.client.batch_execute(if value.is_some() {
                    "RELEASE last_value"
                } else {
                    "ROLLBACK TO last_value; RELEASE last_value"
                });
            }
            value.unwrap_or(0)
        })
        .unwrap_or(0)
    }

    pub(crate) fn column_count(&self, sql: &str) -> Result<usize> {
        let sql = sql.to_string();
        self.run(move |session| Ok(session.statement(&sql, &[])?.columns().len()))?
    }

    pub(crate) fn parameter_count(&self, sql: &str) -> Result<usize> {
        let sql = sql.to_string();
        self.run(move |session| Ok(session.statement(&sql, &[])?.params().len()))?
    }
}

impl Session {
    /// The prepared statement for `sql`. PostgreSQL infers each parameter's type from
    /// where it is used; when it cannot (a parameter unused in this variant of a
    /// statement, or only tested with `IS NULL`), the types come from the values bound
    /// the first time: a value's own type, and for a NULL first PostgreSQL's inference,
    /// then TEXT (SQLite takes anything anywhere). Statements whose parameters need a
    /// type in every case say it with `CAST(?N AS ...)`.
    fn statement(&mut self, sql: &str, values: &[Value]) -> Result<postgres::Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let translated = translate(sql);
        let unspecified = Type::new("unspecified".into(), 0, Kind::Pseudo, "pg_catalog".into());
        let typed = |null: &Type| -> Vec<Type> {
            values
                .iter()
                .map(|value| match value {
                    Value::Integer(_) => Type::INT8,
                    Value::Real(_) => Type::FLOAT8,
                    Value::Text(_) => Type::TEXT,
                    Value::Blob(_) => Type::BYTEA,
                    Value::Null => null.clone(),
                })
                .collect()
        };
        let attempts = [Vec::new(), typed(&unspecified), typed(&Type::TEXT)];
        let mut outcome = None;
        for types in &attempts {
            let prepared = self.prepare_guarded(&translated, types);
            let retry = matches!(&prepared, Err(error) if [
                postgres::error::SqlState::INDETERMINATE_DATATYPE,
                postgres::error::SqlState::AMBIGUOUS_PARAMETER,
            ]
            .iter()
            .any(|code| error.code() == Some(code)));
            outcome = Some(prepared);
            if !retry {
                break;
            }
        }
        let statement = match outcome {
            Some(Ok(statement)) => statement,
            Some(Err(error)) => return Err(failed(sql, error)),
            None => unreachable!("at least one attempt"),
        };
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Prepares `sql`; inside a transaction in a savepoint, because a failed prepare
    /// aborts the transaction around it.
    fn prepare_guarded(
        &mut self,
        sql: &str,
        types: &[Type],
    ) -> std::result::Result<postgres::Statement, postgres::Error> {
        if self.in_transaction {
            self.client.batch_execute("SAVEPOINT mpwatch_prepare")?;
        }
        let prepared = self.client.prepare_typed(sql, types);
        if self.in_transaction {
            self.client.batch_execute(if prepared.is_ok() {
                "RELEASE SAVEPOINT mpwatch_prepare"
            } else {
                "ROLLBACK TO SAVEPOINT mpwatch_prepare; RELEASE SAVEPOINT mpwatch_prepare"
            })?;
        }
        prepared
    }
}

/// The parameters as owned SQLite values, to hand to the connection's thread.
fn owned_params(params: Params<'_>) -> Result<Vec<Value>> {
    params
        .iter()
        .map(|param| match param.to_sql()? {
            ToSqlOutput::Borrowed(value) => Ok(owned(value)),
            ToSqlOutput::Owned(value) => Ok(value),
            _ => Err(unsupported("a parameter type PostgreSQL cannot take".into())),
        })
        .collect()
}

fn bind(statement: &postgres::Statement, values: Vec<Value>) -> Result<Vec<Bound>> {
    let expected = statement.params().len();
    if expected != values.len() {
        return Err(rusqlite::Error::InvalidParameterCount(values.len(), expected));
    }
    Ok(values.into_iter().map(Bound).collect())
}

fn refs(bound: &[Bound]) -> Vec<&(dyn PgToSql + Sync)> {
    bound.iter().map(|value| value as &(dyn PgToSql + Sync)).collect()
}

/// A PostgreSQL row as the SQLite values it stands for.
fn values_of(row: &postgres::Row) -> Result<Vec<Value>> {
    (0..row.len())
        .map(|at| {
            let ty = row.columns()[at].type_();
            let value = match *ty {
                Type::INT8 => row.try_get::<_, Option<i64>>(at).map(|v| v.map(Value::Integer)),
                Type::INT4 => row.try_get::<_, Option<i32>>(at).map(|v| v.map(|v| Value::Integer(v.into()))),
                Type::INT2 => row.try_get::<_, Option<i16>>(at).map(|v| v.map(|v| Value::Integer(v.into()))),
                Type::BOOL => row.try_get::<_, Option<bool>>(at).map(|v| v.map(|v| Value::Integer(v.into()))),
                Type::FLOAT8 => row.try_get::<_, Option<f64>>(at).map(|v| v.map(Value::Real)),
                Type::FLOAT4 => row.try_get::<_, Option<f32>>(at).map(|v| v.map(|v| Value::Real(v.into()))),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                    row.try_get::<_, Option<String>>(at).map(|v| v.map(Value::Text))
                }
                Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(at).map(|v| v.map(Value::Blob)),
                _ => {
                    return Err(unsupported(format!(
                        "column {} is of type {ty}, which the store does not read (cast it to BIGINT, DOUBLE PRECISION or TEXT)",
                        row.columns()[at].name()
                    )));
                }
            };
            value.map(|value| value.unwrap_or(Value::Null)).map_err(wrap)
        })
        .collect()
}

/// A SQLite value bound to a PostgreSQL parameter of the type PostgreSQL inferred for
/// it, converted as SQLite's type affinity would (an integer into a text parameter
/// becomes its decimal text, 0/1 into a boolean).
#[derive(Debug)]
struct Bound(Value);

impl PgToSql for Bound {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let mismatch = || format!("cannot bind {:?} to a PostgreSQL {ty} parameter", self.0.data_type());
        match (&self.0, ty.kind()) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (_, Kind::Array(_)) => Err(mismatch().into()),
            (Value::Integer(v), _) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => v.to_string().to_sql(ty, out),
                _ => Err(mismatch().into()),
            },
            (Value::Real(v), _) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => Err(mismatch().into()),
            },
            (Value::Text(v), _) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => v.to_sql(ty, out),
                Type::INT8 => v.parse::<i64>()?.to_sql(ty, out),
                _ => Err(mismatch().into()),
            },
            (Value::Blob(v), _) => match *ty {
                Type::BYTEA => v.to_sql(ty, out),
                _ => Err(mismatch().into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// The rows of a PostgreSQL query, read whole.
pub struct PostgresRows {
    rows: std::vec::IntoIter<Vec<Value>>,
    current: Option<Vec<Value>>,
}

impl PostgresRows {
    pub(crate) fn new(rows: Vec<Vec<Value>>) -> PostgresRows {
        PostgresRows { rows: rows.into_iter(), current: None }
    }

    pub(crate) fn next(&mut self) -> Option<&[Value]> {
        self.current = self.rows.next();
        self.current.as_deref()
    }
}

fn owned(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Integer(v),
        ValueRef::Real(v) => Value::Real(v),
        ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => Value::Blob(v.to_vec()),
    }
}
