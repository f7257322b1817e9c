//! Valet's embedded SQLite store, the default backend.
//!
//! One database file in WAL mode with `synchronous = FULL`, so a committed write
//! survives a crash (a token in a response is a token the store honours). Writes go
//! through a single connection, so they queue in the pool instead of spinning on
//! SQLite's busy handler; reads use a small pool of their own, which WAL lets run
//! alongside the writer.
//!
//! The database file is created with mode `0600` before SQLite opens it; SQLite
//! gives its `-wal` and `-shm` files the mode of the database file.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};
use valet_core::store::{
    Client, ClientStore, KeyInsert, KeyStore, RevocationStore, RevokedToken, Store, StoreError,
    StoredKey,
};

/// Connections for reads. Writes are serialized by SQLite anyway and use one
/// connection of their own.
const MAX_READERS: u32 = 8;
/// How long a statement waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// One connection: every write.
    writer: SqlitePool,
    /// Reads; the same pool as `writer` for an in-memory database.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing, with mode `0600`) the database file at `path`
    /// and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    /// Like [`SqliteStore::open`], for a `sqlite://path` URL. In-memory URLs are
    /// refused: use [`SqliteStore::open_in_memory`].
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(StoreError::Backend(
                "in-memory SQLite URLs are not supported; use a file path".into(),
            ));
        }
        Self::open_with(SqliteConnectOptions::from_str(url).map_err(backend)?).await
    }

    /// A private in-memory database, for tests. It lives as long as the store and
    /// uses a single connection.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(backend)?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // The database disappears with its last connection: keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(backend)?;
        migrate(&pool).await?;
        Ok(Self {
            writer: pool.clone(),
            reader: pool,
        })
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        create_private_file(options.get_filename())?;
        let options = options
            .create_if_missing(false)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full);

        // The writer opens first and switches the file to WAL (a persistent setting
        // that needs an exclusive lock); readers then need not touch it.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone().journal_mode(SqliteJournalMode::Wal))
            .await
            .map_err(backend)?;
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&writer)
            .await
            .map_err(backend)?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                %journal_mode,
                path = %options.get_filename().display(),
                "SQLite could not switch the database to WAL mode; readers will block writers"
            );
        }
        migrate(&writer).await?;

        let reader = SqlitePoolOptions::new()
            .max_connections(MAX_READERS)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(backend)?;
        Ok(Self { writer, reader })
    }

    /// Closes every connection; with WAL, the last one checkpoints and removes the
    /// `-wal` and `-shm` files.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Creates the database file with mode `0600` if it does not exist, so that SQLite
/// (which copies the mode to `-wal` and `-shm`) never makes anything readable by
/// others. An existing file is left as it is, with a warning if others can read it.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)
                    .map_err(backend)?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format_args!("{:o}", mode & 0o777),
                        "the database file is accessible to other users; chmod 600 it"
                    );
                }
            }
            Ok(())
        }
        Err(err) => Err(backend(err)),
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let migrator = Migrator::with_migrations(vec![Migration::new(
        1,
        "initial".into(),
        MigrationType::Simple,
        include_str!("../migrations/0001_initial.sql").into_sql_str(),
        false,
    )]);
    migrator.run(pool).await.map_err(backend)
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
impl ClientStore for SqliteStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO NOTHING"
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

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM clients WHERE client_id = ?")
            .bind(client_id)
            .execute(&self.writer)
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
        let updated =
            sqlx::query("UPDATE clients SET secret_hash = ?, updated_at = ? WHERE client_id = ? AND secret_hash IS NOT NULL")
                .bind(secret_hash)
                .bind(updated_at)
                .bind(client_id)
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
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

// ---------------------------------------------------------------------------------
// Signing keys

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(&self, key: &StoredKey) -> Result<KeyInsert, StoreError> {
        // No conflict target: a taken `kid` and a taken `(alg, generation)` both
        // leave the table as it is.
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, generation, public_jwk, sealed_private_key, \
             created_at, activates_at, publish_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
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
        .execute(&self.writer)
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
        .fetch_all(&self.reader)
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
        let updated = sqlx::query("UPDATE signing_keys SET activates_at = ? WHERE kid = ?")
            .bind(activates_at)
            .bind(kid)
            .execute(&self.writer)
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
             WHEN publish_until IS NULL OR publish_until > ?1 THEN ?1 \
             ELSE publish_until END \
             WHERE kid = ?2",
        )
        .bind(publish_until)
        .bind(kid)
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(updated > 0)
    }

    async fn delete_unpublished_keys(&self, now: i64) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM signing_keys WHERE publish_until < ?")
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(deleted)
    }
}

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

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(query_error)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Encoding and errors

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column)
        .map_err(|err| StoreError::Corrupt(format!("column {column}: {err}")))
}

fn to_json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(backend)
}

fn from_json(row: &SqliteRow, column: &str) -> Result<Vec<String>, StoreError> {
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
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// `synchronous`, `foreign_keys` and `busy_timeout` are per connection: check
    /// them on connections of both pools.
    #[tokio::test]
    async fn connection_pragmas() {
        let path = std::env::temp_dir().join(format!(
            "valet-store-unit-pragmas-{}-{}.db",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let store = SqliteStore::open(&path).await.unwrap();
        for pool in [&store.writer, &store.reader] {
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(synchronous, 2, "synchronous = FULL");
            let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(foreign_keys, 1, "foreign_keys = ON");
            let busy_timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(busy_timeout, 5_000, "busy_timeout = 5 s");
            let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(journal_mode, "wal");
        }
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}
