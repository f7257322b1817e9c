//! Valet's PostgreSQL store, for running several Valet nodes on one database.
//!
//! Nodes keep no state of their own, so everything that must agree across nodes is
//! decided by the database: a unique `(alg, generation)` picks one winner among
//! concurrent key rotations, and migrations run under an advisory lock so that nodes
//! starting together apply them once.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row, SqlSafeStr};
use valet_core::store::{
    Client, ClientStore, KeyInsert, KeyStore, RevocationStore, RevokedToken, Store, StoreError,
    StoredKey,
};

/// Connections per node.
const MAX_CONNECTIONS: u32 = 10;
/// How long a call waits for a free connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Session advisory lock held while creating the schema and migrating it: ASCII
/// "valetmig". sqlx's migrator takes its own lock (per database) inside it as well.
const MIGRATION_LOCK: i64 = 0x7661_6c65_746d_6967;

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date. Tables
    /// live in the first schema of the connection's `search_path`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        Self::connect_with(options, None).await
    }

    /// Like [`PostgresStore::connect`], with every table in `schema` (created if
    /// missing): each pooled connection gets it as its `search_path`. For tests and
    /// for sharing one database between deployments. The name must be a lowercase
    /// SQL identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        if !is_plain_identifier(schema) {
            return Err(StoreError::Backend(
                format!("invalid schema name {schema:?}: use [a-z_][a-z0-9_]*").into(),
            ));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(backend)?
            .options([("search_path", schema)]);
        Self::connect_with(options, Some(schema)).await
    }

    async fn connect_with(
        options: PgConnectOptions,
        schema: Option<&str>,
    ) -> Result<Self, StoreError> {
        let options = options.application_name("valet");

        // Migrate on a connection of its own, closed afterwards: if anything fails,
        // the session (and with it the advisory locks) ends instead of going back to
        // the pool still holding them.
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(backend)?;
        let migrated = migrate(&mut conn, schema).await;
        let closed = conn.close().await.map_err(backend);
        migrated?;
        closed?;

        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(backend)?;
        Ok(Self { pool })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates `schema` if needed and applies pending migrations, holding
/// [`MIGRATION_LOCK`] throughout (`CREATE SCHEMA IF NOT EXISTS` alone is not safe
/// when several nodes run it at once).
async fn migrate(conn: &mut PgConnection, schema: Option<&str>) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;

    if let Some(schema) = schema {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(schema)
                .fetch_one(&mut *conn)
                .await
                .map_err(backend)?;
        if !exists {
            // `schema` is a checked plain identifier.
            sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
    }

    let migrator = Migrator::with_migrations(vec![Migration::new(
        1,
        "initial".into(),
        MigrationType::Simple,
        include_str!("../migrations/0001_initial.sql").into_sql_str(),
        false,
    )]);
    // `run_direct` is what `run` calls; `run(&mut conn)` itself makes the future
    // fail the `Send` check ("implementation of `Acquire` is not general enough").
    migrator
        .run_direct(None, &mut *conn, false)
        .await
        .map_err(backend)?;

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
}

// ---------------------------------------------------------------------------------
// Clients

macro_rules! client_columns {
    () => {
        "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, \
         grant_types, scopes, audiences, access_token_ttl, created_at, updated_at"
    };
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (client_id) DO NOTHING"
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
        .bind(client.created_at)
        .bind(client.updated_at)
        .execute(&self.pool)
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
            " FROM clients WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await
        .map_err(query_error)?
        .iter()
        .map(client_from_row)
        .collect()
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        updated_at: i64,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE client_id = $3 AND secret_hash IS NOT NULL",
        )
        .bind(secret_hash)
        .bind(updated_at)
        .bind(client_id)
        .execute(&self.pool)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(updated > 0)
    }
}

fn client_from_row(row: &PgRow) -> Result<Client, StoreError> {
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
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

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
        .bind(&key.alg)
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
                alg: get(row, "alg")?,
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
}

// ---------------------------------------------------------------------------------
// Revocations

#[async_trait]
impl RevocationStore for PostgresStore {
    async fn insert_revocation(&self, revoked: &RevokedToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(&revoked.jti)
        .bind(&revoked.client_id)
        .bind(revoked.expires_at)
        .bind(revoked.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let found = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error)?;
        Ok(found.is_some())
    }

    async fn purge_revocations(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        // A bounded batch, oldest first, so a large backlog never makes one long
        // transaction. Two nodes purging at once may pick the same rows; the second
        // delete then finds fewer, which is harmless.
        let deleted = sqlx::query(
            "DELETE FROM revoked_tokens WHERE jti IN \
             (SELECT jti FROM revoked_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(deleted)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(query_error)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Encoding and errors

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|err| StoreError::Corrupt(format!("column {column}: {err}")))
}

fn to_json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(backend)
}

fn from_json(row: &PgRow, column: &str) -> Result<Vec<String>, StoreError> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text)
        .map_err(|err| StoreError::Corrupt(format!("column {column}: {err}")))
}

fn query_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => backend(err),
    }
}

fn backend(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(err))
}

#[cfg(test)]
mod tests {
    use super::is_plain_identifier;

    #[test]
    fn schema_names() {
        for ok in ["valet", "_t", "valet_test_0123", &"a".repeat(63)] {
            assert!(is_plain_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "0abc",
            "Valet",
            "a-b",
            "a\"b",
            "a b",
            "public;drop",
            &"a".repeat(64),
        ] {
            assert!(!is_plain_identifier(bad), "{bad}");
        }
    }
}
