//! The PostgreSQL side of [`super::Connection`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

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
    /// Another transaction held what this one needed (a serialization failure, a
    /// deadlock, a lock timeout): the work can be tried again, as with SQLite's busy.
    pub fn is_busy(&self) -> bool {
        matches!(self.code.as_deref(), Some("40001" | "40P01" | "55P03"))
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

fn unsupported(message: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(PostgresError { message, code: None }))
}

/// A PostgreSQL connection with its prepared statements (by the SQL as written).
pub struct Postgres {
    client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    in_transaction: Cell<bool>,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

impl Postgres {
    pub(crate) fn connect(url: &str) -> Result<Postgres> {
        let config: postgres::Config = url.parse().map_err(wrap)?;
        let client = config.connect(postgres::NoTls).map_err(wrap)?;
        Ok(Postgres { client: RefCell::new(client), statements: RefCell::default(), in_transaction: Cell::new(false) })
    }

    /// The client, for what needs PostgreSQL itself (leases, copies).
    pub fn with_client<T>(&self, f: impl FnOnce(&mut postgres::Client) -> T) -> T {
        f(&mut self.client.borrow_mut())
    }

    /// The prepared statement for `sql`. PostgreSQL infers each parameter's type from
    /// where it is used; when it cannot (a parameter unused in this variant of a
    /// statement, or only tested with `IS NULL`), the types come from the values bound
    /// the first time: a value's own type, and for a NULL first PostgreSQL's inference,
    /// then TEXT (SQLite takes anything anywhere). Statements whose parameters need a
    /// type in every case say it with `CAST(?N AS ...)`.
    fn statement(&self, sql: &str, params: Params<'_>) -> Result<postgres::Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let translated = translate(sql);
        let unspecified = Type::new("unspecified".into(), 0, Kind::Pseudo, "pg_catalog".into());
        let typed = |null: &Type| -> Vec<Type> {
            params
                .iter()
                .map(|param| match param.to_sql() {
                    Ok(ToSqlOutput::Borrowed(ValueRef::Integer(_)) | ToSqlOutput::Owned(Value::Integer(_))) => {
                        Type::INT8
                    }
                    Ok(ToSqlOutput::Borrowed(ValueRef::Real(_)) | ToSqlOutput::Owned(Value::Real(_))) => Type::FLOAT8,
                    Ok(ToSqlOutput::Borrowed(ValueRef::Text(_)) | ToSqlOutput::Owned(Value::Text(_))) => Type::TEXT,
                    Ok(ToSqlOutput::Borrowed(ValueRef::Blob(_)) | ToSqlOutput::Owned(Value::Blob(_))) => Type::BYTEA,
                    _ => null.clone(),
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
            Some(Err(error)) => return Err(wrap(error)),
            None => unreachable!("at least one attempt"),
        };
        self.statements.borrow_mut().insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Prepares `sql`; inside a transaction in a savepoint, because a failed prepare
    /// aborts the transaction around it.
    fn prepare_guarded(&self, sql: &str, types: &[Type]) -> std::result::Result<postgres::Statement, postgres::Error> {
        let mut client = self.client.borrow_mut();
        let guarded = self.in_transaction.get();
        if guarded {
            client.batch_execute("SAVEPOINT mpwatch_prepare")?;
        }
        let prepared = client.prepare_typed(sql, types);
        if guarded {
            client.batch_execute(if prepared.is_ok() {
                "RELEASE SAVEPOINT mpwatch_prepare"
            } else {
                "ROLLBACK TO SAVEPOINT mpwatch_prepare; RELEASE SAVEPOINT mpwatch_prepare"
            })?;
        }
        prepared
    }

    fn bind(statement: &postgres::Statement, params: Params<'_>) -> Result<Vec<Bound>> {
        let types = statement.params();
        if types.len() != params.len() {
            return Err(rusqlite::Error::InvalidParameterCount(params.len(), types.len()));
        }
        params
            .iter()
            .map(|param| {
                Ok(Bound(match param.to_sql()? {
                    ToSqlOutput::Borrowed(value) => owned(value),
                    ToSqlOutput::Owned(value) => value,
                    _ => return Err(unsupported("a parameter type PostgreSQL cannot take".into())),
                }))
            })
            .collect()
    }

    pub(crate) fn execute(&self, sql: &str, params: Params<'_>) -> Result<usize> {
        let statement = self.statement(sql, params)?;
        let bound = Self::bind(&statement, params)?;
        let refs: Vec<&(dyn PgToSql + Sync)> = bound.iter().map(|value| value as &(dyn PgToSql + Sync)).collect();
        let changed = self.client.borrow_mut().execute(&statement, &refs).map_err(wrap)?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    pub(crate) fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Vec<Value>>> {
        let statement = self.statement(sql, params)?;
        let bound = Self::bind(&statement, params)?;
        let refs: Vec<&(dyn PgToSql + Sync)> = bound.iter().map(|value| value as &(dyn PgToSql + Sync)).collect();
        let rows = self.client.borrow_mut().query(&statement, &refs).map_err(wrap)?;
        rows.iter().map(values_of).collect()
    }

    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        let translated = translate(sql);
        self.client.borrow_mut().batch_execute(&translated).map_err(wrap)
    }

    /// Starts a transaction: READ COMMITTED for writes (rows are locked as they are
    /// written), REPEATABLE READ for reads (every query sees one snapshot, as a SQLite
    /// read transaction does).
    pub(crate) fn begin(&self, write: bool) -> Result<()> {
        self.execute_batch(if write { "BEGIN" } else { "BEGIN ISOLATION LEVEL REPEATABLE READ" })?;
        self.in_transaction.set(true);
        Ok(())
    }

    pub(crate) fn end(&self, how: &str) -> Result<()> {
        self.in_transaction.set(false);
        self.execute_batch(how)
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.in_transaction.get()
    }

    pub(crate) fn last_value(&self) -> i64 {
        // lastval() fails before the session drew any sequence value: 0, as SQLite says.
        let mut client = self.client.borrow_mut();
        let saved =
            if self.in_transaction.get() { client.batch_execute("SAVEPOINT last_value").is_ok() } else { false };
        let value = client.query_one("SELECT lastval()", &[]).and_then(|row| row.try_get(0)).ok();
        if saved {
            let _ = client.batch_execute(if value.is_some() {
                "RELEASE last_value"
            } else {
                "ROLLBACK TO last_value; RELEASE last_value"
            });
        }
        value.unwrap_or(0)
    }

    pub(crate) fn column_count(&self, sql: &str) -> Result<usize> {
        Ok(self.statement(sql, &[])?.columns().len())
    }

    pub(crate) fn parameter_count(&self, sql: &str) -> Result<usize> {
        Ok(self.statement(sql, &[])?.params().len())
    }
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
