//! The consent upsert on SQLite; the rest of the SessionStore is shared (see
//! `shared`).

use super::*;

/// Adds `scopes` to what the user allowed the client, in the caller's transaction.
/// One writer at a time, so a read-merge-write is never lost.
pub(super) async fn add_consent_in(
    conn: &mut SqliteConnection,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT scopes FROM consents WHERE user_id = ? AND client_id = ?")
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_error)?;
    let mut merged = match &row {
        Some(row) => from_json(row, "scopes")?,
        None => Vec::new(),
    };
    union_into(&mut merged, scopes);
    sqlx::query(
        "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4) \
         ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = ?3, updated_at = ?4",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(to_json(&merged)?)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}
