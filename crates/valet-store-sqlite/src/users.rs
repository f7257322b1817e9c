//! A client's deletion on SQLite; the rest of the UserStore is shared (see
//! `shared`).

use super::grants::{Owner, revoke_access_tokens_before_delete};
use super::status::revoke_status_blocks_of_client_in;
use super::*;

pub(super) async fn delete_client_in(
    conn: &mut SqliteConnection,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let exists = sqlx::query("SELECT 1 FROM clients WHERE client_id = ?")
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_error)?
        .is_some();
    if !exists {
        return Ok(false);
    }
    revoke_access_tokens_before_delete(conn, Owner::Client(client_id)).await?;
    revoke_status_blocks_of_client_in(conn, client_id, now).await?;
    let deleted = sqlx::query("DELETE FROM clients WHERE client_id = ?")
        .bind(client_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?
        .rows_affected();
    Ok(deleted > 0)
}
