//! A sign-in form's writes ([`FormWrite`]) on PostgreSQL, in the group
//! commit's transaction: one statement, its parts data-modifying CTEs.
//!
//! The interaction's change comes first: every other part selects its row from
//! the change's result (`changed`), so a refused change writes nothing. The grant
//! is also held to its user being enabled, and its code selects from the grant.
//! The old session is deleted only if the new one was stored.
//!
//! Lock order: a consent's row is locked only after the key-share locks on its
//! user and client, taken by a statement of their own before the form's. Deleting
//! a client or a user locks its row, then its consents (by cascade); the upsert
//! of the consent would otherwise lock the consent's row first and its user and
//! client only in the foreign-key checks at the end of the statement, which could
//! deadlock against such a deletion.

use std::fmt::Write as _;

use valet_core::store::{FormWrite, FormWritten, InteractionChange};

use valet_store_sql::form::{FormValues, written};

use super::*;
use crate::sessions::merge_consent;

pub(super) async fn write_form_in(
    conn: &mut PgConnection,
    write: &FormWrite,
) -> Result<FormWritten, StoreError> {
    let Some(sql) = form_sql(write) else {
        return Ok(FormWritten::Written);
    };
    if let Some(consent) = &write.consent {
        sqlx::query(
            "SELECT 1 FROM users u, clients c \
             WHERE u.user_id = $1 AND c.client_id = $2 FOR KEY SHARE",
        )
        .bind(&consent.user_id)
        .bind(&consent.client_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    }
    let values = FormValues::of(write)?;
    let row = bind_form(sqlx::query(AssertSqlSafe(sql)), write, &values)?
        .fetch_one(&mut *conn)
        .await
        .map_err(query_error)?;
    let changed = get::<i64, _>(&row, "changed")? > 0;
    let granted = get::<i64, _>(&row, "granted")? > 0;
    Ok(written(write, changed, granted))
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, <Postgres as sqlx::Database>::Arguments>;

/// Binds the write's values in the order of [`form_sql`]'s parameters.
fn bind_form<'q>(
    mut query: PgQuery<'q>,
    write: &'q FormWrite,
    values: &'q FormValues,
) -> Result<PgQuery<'q>, StoreError> {
    let interaction = SingleUseKind::Interaction.as_str();
    if let Some(change) = &write.interaction {
        query = query.bind(interaction).bind(&values.change_key);
        query = match change {
            InteractionChange::Remember(record) => {
                query.bind(&record.payload).bind(record.expires_at)
            }
            InteractionChange::Update(record) => query.bind(&record.payload),
            InteractionChange::Complete(_) => query,
        };
    }
    if let Some(start) = &write.session {
        query = bind_session(query, &start.session, &values.amr);
        if let Some(old) = &start.ends {
            query = query.bind(old);
        }
    }
    if let Some(next) = &write.next {
        query = bind_next_interaction(query, &values.next_key, next);
    }
    if let Some(consent) = &write.consent {
        query = query
            .bind(&consent.user_id)
            .bind(&consent.client_id)
            .bind(&values.scopes)
            .bind(consent.now);
    }
    if let Some((grant, code)) = &write.grant {
        query = bind_code(bind_grant(query, grant)?, code)?;
    }
    Ok(query)
}

/// The parameters `$first` to `$first + count - 1`, comma separated.
fn parameters(first: &mut usize, count: usize) -> String {
    let mut list = String::new();
    for n in *first..*first + count {
        let _ = write!(list, "{}${n}", if list.is_empty() { "" } else { ", " });
    }
    *first += count;
    list
}

/// The statement, in the order [`bind_form`] binds its parameters; `None` for
/// a write with nothing to store.
fn form_sql(write: &FormWrite) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut n = 1;
    if let Some(change) = &write.interaction {
        parts.push(change_part(change, &mut n));
    }
    // Every part after the change selects from it, so it stores a row only if
    // the change took.
    let gated = if write.interaction.is_some() {
        " FROM changed"
    } else {
        ""
    };
    if let Some(start) = &write.session {
        parts.push(format!(
            "started AS (INSERT INTO sessions \
             (session_hash, sid, user_id, auth_time, amr, created_at, expires_at) \
             SELECT {}{gated} RETURNING 1)",
            parameters(&mut n, 7)
        ));
        if start.ends.is_some() {
            parts.push(format!(
                "ended AS (DELETE FROM sessions WHERE session_hash = {} \
                 AND EXISTS (SELECT 1 FROM started))",
                parameters(&mut n, 1)
            ));
        }
    }
    if write.next.is_some() {
        parts.push(format!(
            "next AS (INSERT INTO single_use (kind, key, payload, expires_at, consumed) \
             SELECT {}, FALSE{gated})",
            parameters(&mut n, 4)
        ));
    }
    if write.consent.is_some() {
        let (user, client, scopes, now) = (n, n + 1, n + 2, n + 3);
        n += 4;
        parts.push(format!(
            "consented AS (INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
             SELECT ${user}, ${client}, ${scopes}, ${now}, ${now}{gated} {})",
            merge_consent!()
        ));
    }
    if write.grant.is_some() {
        parts.push(grant_part(gated, &mut n));
    }
    if parts.is_empty() {
        return None;
    }
    let count_of = |present: bool, part: &str| {
        if present {
            format!("(SELECT count(*) FROM {part})")
        } else {
            "1".to_owned()
        }
    };
    Some(format!(
        "WITH {} SELECT {}::BIGINT AS changed, {}::BIGINT AS granted",
        parts.join(", "),
        count_of(write.interaction.is_some(), "changed"),
        count_of(write.grant.is_some(), "granted"),
    ))
}

/// The interaction's change, `changed`: one row if it took. Its parameters
/// start at `$1`.
fn change_part(change: &InteractionChange, n: &mut usize) -> String {
    match change {
        InteractionChange::Remember(_) => format!(
            "changed AS (INSERT INTO single_use (kind, key, payload, expires_at, consumed) \
             VALUES ({}, FALSE) ON CONFLICT (kind, key) DO NOTHING RETURNING 1)",
            parameters(n, 4)
        ),
        InteractionChange::Update(_) => {
            *n += 3;
            "changed AS (UPDATE single_use SET payload = $3 \
             WHERE kind = $1 AND key = $2 AND NOT consumed RETURNING 1)"
                .to_owned()
        }
        InteractionChange::Complete(_) => {
            *n += 2;
            "changed AS (UPDATE single_use SET consumed = TRUE \
             WHERE kind = $1 AND key = $2 AND NOT consumed RETURNING 1)"
                .to_owned()
        }
    }
}

/// The grant, `granted` (only for an enabled user), and its code, which
/// selects from it.
fn grant_part(gated: &str, n: &mut usize) -> String {
    // `grant_columns!` is grant_id, client_id, user_id, …
    let user = *n + 2;
    let grant = parameters(n, 12);
    let code = parameters(n, 12);
    format!(
        concat!(
            "granted AS (INSERT INTO grants (",
            grant_columns!(),
            ") SELECT {grant}{gated} \
             WHERE EXISTS (SELECT 1 FROM users WHERE user_id = ${user} AND NOT disabled) \
             RETURNING 1), \
             coded AS (INSERT INTO authorization_codes (",
            code_columns!(),
            ") SELECT {code} FROM granted)"
        ),
        grant = grant,
        gated = gated,
        user = user,
        code = code
    )
}
