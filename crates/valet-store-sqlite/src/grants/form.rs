//! A sign-in form's writes ([`FormWrite`]) on SQLite: one query, so one
//! hand-off to the writer's thread, run in the group commit's transaction.
//!
//! The interaction's change comes first; each statement after it runs only if
//! the statement before it changed a row (SQLite's `changes()`), so a refused
//! change writes nothing. The grant is also held to its user being enabled,
//! and its code to the grant. The old session is deleted last, and only if the
//! new one was stored. Parameters are plain `?`: sqlx numbers them on across
//! the query's statements, so [`form_sql`] and [`write_form_in`]'s binds go in
//! the same order.

use valet_core::store::{FormWrite, FormWritten, InteractionChange};

use valet_store_sql::form::{FormValues, written};

use super::*;
use crate::sessions::merge_consent;

/// What the interaction's change and the grant's insert return when they
/// change a row.
const INTERACTION_CHANGED: &str = "interaction";
const GRANT_STORED: &str = "grant";

pub(super) async fn write_form_in(
    conn: &mut SqliteConnection,
    write: &FormWrite,
) -> Result<FormWritten, StoreError> {
    let sql = form_sql(write);
    if sql.is_empty() {
        return Ok(FormWritten::Written);
    }
    let values = FormValues::of(write)?;
    let query = bind_form(sqlx::query(AssertSqlSafe(sql)), write, &values)?;
    let rows = query.fetch_all(&mut *conn).await.map_err(query_error)?;
    let mut changed = Vec::with_capacity(rows.len());
    for row in &rows {
        changed.push(get::<String, _>(row, "changed")?);
    }
    let said = |what: &str| changed.iter().any(|c| c == what);
    Ok(written(
        write,
        said(INTERACTION_CHANGED),
        said(GRANT_STORED),
    ))
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments>;

/// Binds the write's values in the order of [`form_sql`]'s parameters.
fn bind_form<'q>(
    mut query: SqliteQuery<'q>,
    write: &'q FormWrite,
    values: &'q FormValues,
) -> Result<SqliteQuery<'q>, StoreError> {
    let interaction = SingleUseKind::Interaction.as_str();
    let change_key = &values.change_key;
    query = match &write.interaction {
        Some(InteractionChange::Remember(record)) => query
            .bind(interaction)
            .bind(change_key)
            .bind(&record.payload)
            .bind(record.expires_at),
        Some(InteractionChange::Update(record)) => query
            .bind(&record.payload)
            .bind(interaction)
            .bind(change_key),
        Some(InteractionChange::Complete(_)) => query.bind(interaction).bind(change_key),
        None => query,
    };
    if let Some(start) = &write.session {
        query = bind_session(query, &start.session, &values.amr);
    }
    if let Some(next) = &write.next {
        query = bind_next_interaction(query, &values.next_key, next);
    }
    if let Some(consent) = &write.consent {
        query = query
            .bind(&consent.user_id)
            .bind(&consent.client_id)
            .bind(&values.scopes)
            .bind(consent.now)
            .bind(consent.now);
    }
    if let Some((grant, code)) = &write.grant {
        query = bind_code(bind_grant(query, grant)?.bind(&grant.user_id), code)?;
    }
    if let Some(start) = &write.session
        && let Some(old) = &start.ends
    {
        query = query.bind(old).bind(&start.session.session_hash);
    }
    Ok(query)
}

/// The query's statements, in the order [`write_form_in`] binds them.
fn form_sql(write: &FormWrite) -> String {
    let mut sql = String::new();
    match &write.interaction {
        Some(InteractionChange::Remember(_)) => sql.push_str(
            "INSERT INTO single_use (kind, key, payload, expires_at, consumed) \
             VALUES (?, ?, ?, ?, FALSE) ON CONFLICT (kind, key) DO NOTHING \
             RETURNING 'interaction' AS changed;",
        ),
        Some(InteractionChange::Update(_)) => sql.push_str(
            "UPDATE single_use SET payload = ? \
             WHERE kind = ? AND key = ? AND NOT consumed RETURNING 'interaction' AS changed;",
        ),
        Some(InteractionChange::Complete(_)) => sql.push_str(
            "UPDATE single_use SET consumed = TRUE \
             WHERE kind = ? AND key = ? AND NOT consumed RETURNING 'interaction' AS changed;",
        ),
        None => {}
    }
    // What each statement after the first runs under: that the one before it
    // changed a row. (An upsert's `SELECT` needs a `WHERE` in any case.)
    let mut gate = if write.interaction.is_some() {
        "changes() = 1"
    } else {
        "true"
    };
    if write.session.is_some() {
        sql.push_str(&format!(
            "INSERT INTO sessions \
             (session_hash, sid, user_id, auth_time, amr, created_at, expires_at) \
             SELECT ?, ?, ?, ?, ?, ?, ? WHERE {gate};"
        ));
        gate = "changes() = 1";
    }
    if write.next.is_some() {
        sql.push_str(&format!(
            "INSERT INTO single_use (kind, key, payload, expires_at, consumed) \
             SELECT ?, ?, ?, ?, FALSE WHERE {gate};"
        ));
        gate = "changes() = 1";
    }
    if write.consent.is_some() {
        sql.push_str(&format!(
            "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
             SELECT ?, ?, ?, ?, ? WHERE {gate} {};",
            merge_consent!()
        ));
        gate = "changes() = 1";
    }
    if write.grant.is_some() {
        sql.push_str(&format!(
            concat!(
                "INSERT INTO grants (",
                grant_columns!(),
                ") SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE {gate} \
                 AND EXISTS (SELECT 1 FROM users WHERE user_id = ? AND NOT disabled) \
                 RETURNING 'grant' AS changed;",
                "INSERT INTO authorization_codes (",
                code_columns!(),
                ") SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() = 1;"
            ),
            gate = gate
        ));
    }
    if write.session.as_ref().is_some_and(|s| s.ends.is_some()) {
        sql.push_str(
            "DELETE FROM sessions WHERE session_hash = ? \
             AND EXISTS (SELECT 1 FROM sessions WHERE session_hash = ?);",
        );
    }
    sql
}
