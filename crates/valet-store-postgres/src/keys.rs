//! KeyStore on PostgreSQL: signing keys.

use super::*;

// ---------------------------------------------------------------------------------
// Signing keys

#[async_trait]
impl KeyStore for PostgresStore {
    async fn insert_key(&self, key: &StoredKey) -> Result<KeyInsert, StoreError> {
        // No conflict target: a taken `kid` and a taken `(alg, generation)` both
        // leave the table as it is. A concurrent insert of the same generation
        // waits for the first one to commit, then does nothing.
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, generation, public_jwk, sealed_private_key, \
             created_at, activates_at, publish_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(key.generation)
        .bind(&key.public_jwk)
        .bind(&key.sealed_private_key)
        .bind(key.created_at)
        .bind(key.activates_at)
        .bind(key.publish_until)
        .execute(&self.pool)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(if inserted == 0 {
            KeyInsert::GenerationTaken
        } else {
            KeyInsert::Inserted
        })
    }

    async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        sqlx::query(
            "SELECT kid, alg, generation, public_jwk, sealed_private_key, created_at, \
             activates_at, publish_until FROM signing_keys ORDER BY alg, generation",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_error)?
        .iter()
        .map(|row| {
            Ok(StoredKey {
                kid: get(row, "kid")?,
                alg: parse_name("alg", &get::<String>(row, "alg")?, |alg| alg.parse().ok())?,
                generation: get(row, "generation")?,
                public_jwk: get(row, "public_jwk")?,
                sealed_private_key: get(row, "sealed_private_key")?,
                created_at: get(row, "created_at")?,
                activates_at: get(row, "activates_at")?,
                publish_until: get(row, "publish_until")?,
            })
        })
        .collect()
    }

    async fn set_key_activation(&self, kid: &str, activates_at: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE signing_keys SET activates_at = $1 WHERE kid = $2")
            .bind(activates_at)
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(updated > 0)
    }

    /// Returns whether the kid exists, whether or not its bound moved.
    async fn set_key_publish_until(
        &self,
        kid: &str,
        publish_until: i64,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE signing_keys SET publish_until = CASE \
             WHEN publish_until IS NULL OR publish_until > $1 THEN $1 \
             ELSE publish_until END \
             WHERE kid = $2",
        )
        .bind(publish_until)
        .bind(kid)
        .execute(&self.pool)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(updated > 0)
    }

    async fn delete_unpublished_keys(&self, now: i64) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM signing_keys WHERE publish_until < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(deleted)
    }

    async fn master_key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT value FROM meta WHERE name = 'master_key_check'")
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error)
    }

    async fn insert_master_key_check(&self, sealed: &[u8]) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO meta (name, value) VALUES ('master_key_check', $1) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(sealed)
        .execute(&self.pool)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(inserted > 0)
    }
}
