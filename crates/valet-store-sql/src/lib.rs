//! The SQL both store backends share, written once.
//!
//! Both SQLite and PostgreSQL read the numbered placeholders `$1, $2, …` (sqlx
//! binds SQLite's `$NNN` by number), keep lists as JSON text and hashes as bytes
//! (`BLOB` / `BYTEA`, both `Vec<u8>`), and decode `bool` from their boolean
//! columns, so most statements are the same text on both. They live here:
//! - helpers generic over sqlx's `Row` and `Database` traits (row decoding,
//!   encodings, error mapping, commit or roll back), monomorphised per backend;
//! - [`shared_stores!`], which stamps the store implementations whose SQL is the
//!   same into a backend, with its concrete types: no `Any` driver, no dynamic
//!   dispatch, no cost at run time.
//!
//! What genuinely differs stays in each backend, visibly: transactions (SQLite's
//! `BEGIN IMMEDIATE` on one writer, PostgreSQL's row locks with `FOR UPDATE` and
//! advisory locks), and the grant, user, session and status list stores, whose
//! locking decides their correctness.

pub mod batch;
pub mod form;
mod grants;
mod mfa;
mod outbox;
mod passkeys;
mod status;
mod stores;
mod upstreams;

use sqlx::{ColumnIndex, ConnectOptions, Database, Decode, Row, Transaction, Type};
use valet_core::store::StoreError;

/// How long a statement may take before it is logged, at `warn`.
pub const SLOW_STATEMENT: std::time::Duration = std::time::Duration::from_secs(1);

/// Connection options that log a slow statement at `warn` (after
/// [`SLOW_STATEMENT`]) and every statement only at `trace`, under `sqlx::query`.
/// sqlx logs every statement at `debug` by default, and the background work (the
/// status list feed four times a second, the audit flush, key reloads) would
/// fill a `VALET_LOG=debug` log with SQL; `VALET_LOG=info,sqlx::query=trace`
/// shows what statements a request runs.
pub fn quiet_statements<O: ConnectOptions>(options: O) -> O {
    options
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT)
}

/// A column of `row`, decoded; a value that does not decode is corrupt.
pub fn get<'r, T, R>(row: &'r R, column: &str) -> Result<T, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(column)
        .map_err(|err| StoreError::Corrupt(format!("column {column}: {err}")))
}

/// A list of strings, stored as JSON text.
pub fn to_json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(backend)
}

/// Reads a list stored by [`to_json`].
pub fn from_json<R>(row: &R, column: &str) -> Result<Vec<String>, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let text: String = get(row, column)?;
    serde_json::from_str(&text)
        .map_err(|err| StoreError::Corrupt(format!("column {column}: {err}")))
}

/// A list of typed values, stored as the JSON list of their names.
pub fn names_json<T: Copy>(list: &[T], name: fn(T) -> &'static str) -> Result<String, StoreError> {
    let names: Vec<&str> = list.iter().map(|value| name(*value)).collect();
    serde_json::to_string(&names).map_err(backend)
}

/// Reads a list stored by [`names_json`]; an unknown name is corrupt.
pub fn from_names<R, T>(
    row: &R,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    from_json(row, column)?
        .iter()
        .map(|name| parse_name(column, name, &parse))
        .collect()
}

/// Reads a stored name back into its type; an unknown name is corrupt.
pub fn parse_name<T>(
    column: &str,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(name)
        .ok_or_else(|| StoreError::Corrupt(format!("column {column}: unknown value {name:?}")))
}

/// Appends to `list` each of `more` it does not hold yet, in order.
pub fn union_into(list: &mut Vec<String>, more: &[String]) {
    for item in more {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

/// A driver error as a store error: a unique violation is a `Conflict`.
pub fn query_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => backend(err),
    }
}

/// A status block of `size` indices can be reserved (a caller's bug otherwise).
pub fn check_block_size(size: i64) -> Result<(), StoreError> {
    if size < 1 {
        return Err(StoreError::Backend(
            format!("status block size must be positive, got {size}").into(),
        ));
    }
    Ok(())
}

/// `[start, end)` is a range of status list indices (a caller's bug otherwise).
pub fn check_status_range(start: i64, end: i64) -> Result<(), StoreError> {
    if start < 0 || end <= start {
        return Err(StoreError::Backend(
            format!("invalid status range [{start}, {end})").into(),
        ));
    }
    Ok(())
}

pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(err))
}

/// Commits `tx` when `outcome` is `Ok`, rolls it back otherwise.
pub async fn finish<DB: Database, T>(
    tx: Transaction<'static, DB>,
    outcome: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match outcome {
        Ok(value) => {
            tx.commit().await.map_err(query_error)?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, database = DB::NAME, "rollback failed");
            }
            Err(err)
        }
    }
}
