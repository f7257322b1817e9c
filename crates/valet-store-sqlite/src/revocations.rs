//! RevocationStore on SQLite: revoked access tokens.

use super::*;

// ---------------------------------------------------------------------------------
// Revocations

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn insert_revocation(&self, revoked: &RevokedToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(&revoked.jti)
        .bind(&revoked.client_id)
        .bind(revoked.expires_at)
        .bind(revoked.revoked_at)
        .execute(&self.writer)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let found = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.reader)
            .await
            .map_err(query_error)?;
        Ok(found.is_some())
    }

    async fn purge_revocations(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        // A bounded batch, oldest first, so a large backlog never holds the write
        // lock for long.
        let deleted = sqlx::query(
            "DELETE FROM revoked_tokens WHERE jti IN \
             (SELECT jti FROM revoked_tokens WHERE expires_at < ? ORDER BY expires_at LIMIT ?)",
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(deleted)
    }
}
