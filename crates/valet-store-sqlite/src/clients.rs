//! ClientStore on SQLite.

use super::users::delete_client_in;
use super::*;

// ---------------------------------------------------------------------------------
// Clients

macro_rules! client_columns {
    () => {
        "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, \
         grant_types, scopes, audiences, access_token_ttl, skip_consent, \
         refresh_grace_seconds, id_token_signed_response_alg, created_at, updated_at, \
         previous_secret_hash, previous_secret_expires_at, introspect_any"
    };
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO NOTHING"
        ))
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(client.secret_hash.as_deref())
        .bind(to_json(&client.redirect_uris)?)
        .bind(to_json(&client.post_logout_redirect_uris)?)
        .bind(to_json(&client.grant_types)?)
        .bind(to_json(&client.scopes)?)
        .bind(to_json(&client.audiences)?)
        .bind(client.access_token_ttl)
        .bind(client.skip_consent)
        .bind(client.refresh_grace_seconds)
        .bind(client.id_token_signed_response_alg.as_deref())
        .bind(client.created_at)
        .bind(client.updated_at)
        .bind(client.previous_secret_hash.as_deref())
        .bind(client.previous_secret_expires_at)
        .bind(client.introspect_any)
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE client_id = ?"
        ))
        .bind(client_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(client_from_row)
        .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients ORDER BY created_at, client_id"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(query_error)?
        .iter()
        .map(client_from_row)
        .collect()
    }

    /// Also deletes everything issued to the client (consents, grants and their
    /// descendants), first revoking the live access tokens of its grants and its
    /// status list blocks. Writes are serialized on the writer connection, so a
    /// reservation either committed before (its block is revoked here) or runs
    /// after and finds no client.
    async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = delete_client_in(&mut tx, client_id, now).await;
        finish(tx, outcome).await
    }

    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        previous_until: Option<i64>,
        updated_at: i64,
    ) -> Result<bool, StoreError> {
        // SET expressions read the row as it was: the old secret becomes the previous.
        let updated = sqlx::query(
            "UPDATE clients SET \
               previous_secret_hash = CASE WHEN ?2 IS NULL THEN NULL ELSE secret_hash END, \
               previous_secret_expires_at = ?2, secret_hash = ?1, updated_at = ?3 \
             WHERE client_id = ?4 AND secret_hash IS NOT NULL",
        )
        .bind(secret_hash)
        .bind(previous_until)
        .bind(updated_at)
        .bind(client_id)
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(updated > 0)
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE clients SET name = ?1, redirect_uris = ?2, post_logout_redirect_uris = ?3, \
               scopes = ?4, audiences = ?5, access_token_ttl = ?6, skip_consent = ?7, \
               refresh_grace_seconds = ?8, id_token_signed_response_alg = ?9, \
               introspect_any = ?10, updated_at = ?11 \
             WHERE client_id = ?12",
        )
        .bind(&client.name)
        .bind(to_json(&client.redirect_uris)?)
        .bind(to_json(&client.post_logout_redirect_uris)?)
        .bind(to_json(&client.scopes)?)
        .bind(to_json(&client.audiences)?)
        .bind(client.access_token_ttl)
        .bind(client.skip_consent)
        .bind(client.refresh_grace_seconds)
        .bind(client.id_token_signed_response_alg.as_deref())
        .bind(client.introspect_any)
        .bind(client.updated_at)
        .bind(&client.client_id)
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(updated > 0)
    }
}

fn client_from_row(row: &SqliteRow) -> Result<Client, StoreError> {
    Ok(Client {
        client_id: get(row, "client_id")?,
        name: get(row, "name")?,
        secret_hash: get(row, "secret_hash")?,
        redirect_uris: from_json(row, "redirect_uris")?,
        post_logout_redirect_uris: from_json(row, "post_logout_redirect_uris")?,
        grant_types: from_json(row, "grant_types")?,
        scopes: from_json(row, "scopes")?,
        audiences: from_json(row, "audiences")?,
        access_token_ttl: get(row, "access_token_ttl")?,
        skip_consent: get(row, "skip_consent")?,
        refresh_grace_seconds: get(row, "refresh_grace_seconds")?,
        id_token_signed_response_alg: get(row, "id_token_signed_response_alg")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        previous_secret_hash: get(row, "previous_secret_hash")?,
        previous_secret_expires_at: get(row, "previous_secret_expires_at")?,
        introspect_any: get(row, "introspect_any")?,
    })
}
