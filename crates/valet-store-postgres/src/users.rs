//! A client's deletion on PostgreSQL; the rest of the UserStore is shared (see
//! `shared`).

use super::grants::{Owner, revoke_access_tokens_before_delete};
use super::status::revoke_status_blocks_of_client_in;
use super::*;

/// Locks the client's row first: a block reservation or extension takes a share
/// lock on it (see `reserve_status_block_in`), so one that started earlier commits
/// before the blocks are revoked below (each statement sees what committed before
/// it), and one that starts later waits and then finds no client.
pub(super) async fn delete_client_in(
    conn: &mut PgConnection,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let exists = sqlx::query("SELECT 1 FROM clients WHERE client_id = $1 FOR UPDATE")
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
    let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?
        .rows_affected();
    Ok(deleted > 0)
}
