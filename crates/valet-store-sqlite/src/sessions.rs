//! The consent upsert on SQLite; the rest of the SessionStore is shared (see
//! `shared`).

use super::*;

/// The consent upsert's conflict clause: the union keeps the scopes already
/// allowed in their order, then the new ones (`excluded.scopes`) in the order
/// given, each once.
macro_rules! merge_consent {
    () => {
        "ON CONFLICT (user_id, client_id) DO UPDATE SET \
           scopes = (SELECT json_group_array(value ORDER BY part, position) FROM ( \
                       SELECT value, 0 AS part, key AS position FROM json_each(consents.scopes) \
                       UNION ALL \
                       SELECT value, 1, key FROM json_each(excluded.scopes) \
                       WHERE value NOT IN (SELECT value FROM json_each(consents.scopes)))), \
           updated_at = excluded.updated_at"
    };
}
pub(crate) use merge_consent;

/// Adds `scopes` to what the user allowed the client: one statement, so one
/// round trip and no transaction of its own. The union keeps the scopes already
/// allowed in their order, then the new ones in the order given, each once.
pub(super) async fn add_consent_to(
    writer: &SqlitePool,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let mut once = Vec::with_capacity(scopes.len());
    union_into(&mut once, scopes);
    sqlx::query(concat!(
        "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4) ",
        merge_consent!()
    ))
    .bind(user_id)
    .bind(client_id)
    .bind(to_json(&once)?)
    .bind(now)
    .execute(writer)
    .await
    .map_err(query_error)?;
    Ok(())
}
