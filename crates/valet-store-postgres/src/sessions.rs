//! The consent upsert on PostgreSQL; the rest of the SessionStore is shared (see
//! `shared`).

use super::*;

/// Adds `scopes` to what the user allowed the client, in one transaction.
pub(super) async fn add_consent_to(
    pool: &PgPool,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = begin_write(pool).await?;
    let outcome = add_consent_in(&mut tx, user_id, client_id, scopes, now).await;
    finish(tx, outcome).await
}

/// Adds `scopes` to what the user allowed the client, in the caller's transaction.
/// Concurrent calls for one pair serialize on its row, so none is lost.
pub(super) async fn add_consent_in(
    conn: &mut PgConnection,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    // Make sure the row exists (a concurrent first insert waits for the other to
    // commit, then does nothing), then lock it for the read-merge-write.
    sqlx::query(
        "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
         VALUES ($1, $2, '[]', $3, $3) ON CONFLICT (user_id, client_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    let row =
        sqlx::query("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2 FOR UPDATE")
            .bind(user_id)
            .bind(client_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(query_error)?;
    let mut merged = from_json(&row, "scopes")?;
    union_into(&mut merged, scopes);
    sqlx::query(
        "UPDATE consents SET scopes = $1, updated_at = $2 WHERE user_id = $3 AND client_id = $4",
    )
    .bind(to_json(&merged)?)
    .bind(now)
    .bind(user_id)
    .bind(client_id)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}
