//! The consent upsert on PostgreSQL; the rest of the SessionStore is shared (see
//! `shared`).

use super::*;

/// What an insert into `consents` does when the pair has a consent already: the
/// union of the scopes, computed in SQL (the scopes already allowed in their
/// order, then the new ones in the order given, each once).
macro_rules! merge_consent {
    () => {
        "ON CONFLICT (user_id, client_id) DO UPDATE SET \
           scopes = (SELECT COALESCE(array_to_json(array_agg(value ORDER BY part, position)), '[]')::text \
                     FROM (SELECT value, 0 AS part, position \
                           FROM json_array_elements_text(consents.scopes::json) \
                                WITH ORDINALITY AS allowed (value, position) \
                           UNION ALL \
                           SELECT value, 1, position \
                           FROM json_array_elements_text(excluded.scopes::json) \
                                WITH ORDINALITY AS added (value, position) \
                           WHERE value NOT IN \
                                 (SELECT json_array_elements_text(consents.scopes::json))) AS merged), \
           updated_at = excluded.updated_at"
    };
}
pub(crate) use merge_consent;

/// Adds `scopes` to what the user allowed the client: one statement, so no
/// transaction of its own.
pub(super) async fn add_consent_to(
    pool: &PgPool,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    add_consent_in(&mut conn, user_id, client_id, scopes, now).await
}

/// Adds `scopes` to what the user allowed the client, in one upsert
/// (`merge_consent!`). Concurrent calls for one pair serialize on its row
/// (`ON CONFLICT DO UPDATE` merges into the latest committed version), so none
/// is lost.
pub(super) async fn add_consent_in(
    conn: &mut PgConnection,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let mut once = Vec::with_capacity(scopes.len());
    union_into(&mut once, scopes);
    sqlx::query(concat!(
        "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ",
        merge_consent!()
    ))
    .bind(user_id)
    .bind(client_id)
    .bind(to_json(&once)?)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}
