//! Valet's embedded SQLite store, the default backend.
//!
//! One database file in WAL mode with `synchronous = FULL`, so a committed write
//! survives a crash (a token in a response is a token the store honours). Writes go
//! through a single connection, so they queue in the pool instead of spinning on
//! SQLite's busy handler; reads use a small pool of their own, which WAL lets run
//! alongside the writer. Because every write is on that one connection, a
//! conditional `UPDATE` (code redemption) or a `BEGIN IMMEDIATE` transaction
//! (refresh rotation, revocation) is enough to make concurrent callers agree on one
//! winner.
//!
//! The database file is created with mode `0600` before SQLite opens it; SQLite
//! gives its `-wal` and `-shm` files the mode of the database file.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, Sqlite, Transaction};
use valet_core::audit::{AuditEvent, AuditFilter};
use valet_core::store::{
    AuditStore, AuthorizationCode, Client, ClientStore, CodeRedemption, Grant, GrantStore,
    Interaction, KeyInsert, KeyStore, MAX_ACCESS_TOKEN_TTL, RefreshToken, RevocationStore,
    RevokedToken, Rotation, Session, SessionStore, StatusRevocation, StatusStore, Store,
    StoreError, StoredKey, User, UserStore,
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
    let migrator = Migrator::with_migrations(vec![
        Migration::new(
            1,
            "initial".into(),
            MigrationType::Simple,
            include_str!("../migrations/0001_initial.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "browser flows".into(),
            MigrationType::Simple,
            include_str!("../migrations/0002_browser_flows.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "status list".into(),
            MigrationType::Simple,
            include_str!("../migrations/0003_status_list.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            "grant resources".into(),
            MigrationType::Simple,
            include_str!("../migrations/0004_grant_resources.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            "audit events".into(),
            MigrationType::Simple,
            include_str!("../migrations/0005_audit_events.sql").into_sql_str(),
            false,
        ),
    ]);
    migrator.run(pool).await.map_err(backend)
}

/// Starts a write transaction on the writer. `BEGIN IMMEDIATE` takes SQLite's
/// write lock up front, so a transaction that reads before it writes never has to
/// upgrade its lock (which another process holding it would make fail at once).
async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)
}

/// Commits on success and rolls back on failure, so no transaction is left open on
/// the writer connection.
async fn finish<T>(
    tx: Transaction<'static, Sqlite>,
    outcome: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match outcome {
        Ok(value) => {
            tx.commit().await.map_err(query_error)?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "SQLite rollback failed");
            }
            Err(err)
        }
    }
}

// ---------------------------------------------------------------------------------
// Clients

macro_rules! client_columns {
    () => {
        "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, \
         grant_types, scopes, audiences, access_token_ttl, skip_consent, \
         refresh_grace_seconds, id_token_signed_response_alg, created_at, updated_at"
    };
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO NOTHING"
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
    /// descendants), first revoking the live access tokens of its grants.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = delete_client_in(&mut tx, client_id).await;
        finish(tx, outcome).await
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
        skip_consent: get(row, "skip_consent")?,
        refresh_grace_seconds: get(row, "refresh_grace_seconds")?,
        id_token_signed_response_alg: get(row, "id_token_signed_response_alg")?,
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

// ---------------------------------------------------------------------------------
// Users

macro_rules! user_columns {
    () => {
        "user_id, username, email, email_verified, name, given_name, family_name, \
         password_hash, disabled, created_at, updated_at"
    };
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        // Any of the three unique keys (user_id, username, lower(email)) taken is
        // a unique violation, which `query_error` turns into `Conflict`.
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&user.user_id)
        .bind(&user.username)
        .bind(user.email.as_deref())
        .bind(user.email_verified)
        .bind(user.name.as_deref())
        .bind(user.given_name.as_deref())
        .bind(user.family_name.as_deref())
        .bind(user.password_hash.as_deref())
        .bind(user.disabled)
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&self.writer)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE user_id = ?"
        ))
        .bind(user_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    /// Emails compare with ASCII case folding (SQLite's `lower`).
    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        // At most one user has the username and at most one the email; when they
        // differ, the username match wins.
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username = ?1 OR lower(email) = lower(?1) \
             ORDER BY username = ?1 DESC LIMIT 1"
        ))
        .bind(login)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, user_id"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(query_error)?
        .iter()
        .map(user_from_row)
        .collect()
    }

    async fn set_user_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE user_id = ?")
                .bind(password_hash)
                .bind(now)
                .bind(user_id)
                .execute(&self.writer)
                .await
                .map_err(query_error)?
                .rows_affected();
        Ok(updated > 0)
    }

    async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE user_id = ?")
                .bind(disabled)
                .bind(now)
                .bind(user_id)
                .execute(&self.writer)
                .await
                .map_err(query_error)?
                .rows_affected();
        Ok(updated > 0)
    }

    /// Sessions, consents and grants (with their codes, refresh tokens and access
    /// token records) go by cascade; the live access tokens of the user's grants
    /// are revoked first.
    async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = delete_user_in(&mut tx, user_id).await;
        finish(tx, outcome).await
    }
}

async fn delete_user_in(conn: &mut SqliteConnection, user_id: &str) -> Result<bool, StoreError> {
    revoke_access_tokens_before_delete(conn, Owner::User(user_id)).await?;
    let deleted = sqlx::query("DELETE FROM users WHERE user_id = ?")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?
        .rows_affected();
    Ok(deleted > 0)
}

async fn delete_client_in(
    conn: &mut SqliteConnection,
    client_id: &str,
) -> Result<bool, StoreError> {
    revoke_access_tokens_before_delete(conn, Owner::Client(client_id)).await?;
    let deleted = sqlx::query("DELETE FROM clients WHERE client_id = ?")
        .bind(client_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?
        .rows_affected();
    Ok(deleted > 0)
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        user_id: get(row, "user_id")?,
        username: get(row, "username")?,
        email: get(row, "email")?,
        email_verified: get(row, "email_verified")?,
        name: get(row, "name")?,
        given_name: get(row, "given_name")?,
        family_name: get(row, "family_name")?,
        password_hash: get(row, "password_hash")?,
        disabled: get(row, "disabled")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

// ---------------------------------------------------------------------------------
// Sessions, interactions, consent

macro_rules! session_columns {
    () => {
        "session_hash, sid, user_id, auth_time, amr, created_at, expires_at"
    };
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO sessions (",
            session_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&session.session_hash)
        .bind(&session.sid)
        .bind(&session.user_id)
        .bind(session.auth_time)
        .bind(to_json(&session.amr)?)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.writer)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    async fn get_session(
        &self,
        session_hash: &[u8],
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE session_hash = ? AND expires_at > ?"
        ))
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    /// Returns the session whether or not it had expired.
    async fn delete_session(&self, session_hash: &[u8]) -> Result<Option<Session>, StoreError> {
        sqlx::query(concat!(
            "DELETE FROM sessions WHERE session_hash = ? RETURNING ",
            session_columns!()
        ))
        .bind(session_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    async fn delete_sessions_of_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.writer)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(deleted)
    }

    async fn insert_interaction(&self, interaction: &Interaction) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO interactions (interaction_id, payload, expires_at) VALUES (?, ?, ?)",
        )
        .bind(&interaction.interaction_id)
        .bind(&interaction.payload)
        .bind(interaction.expires_at)
        .execute(&self.writer)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    async fn get_interaction(
        &self,
        interaction_id: &str,
        now: i64,
    ) -> Result<Option<Interaction>, StoreError> {
        sqlx::query(
            "SELECT interaction_id, payload, expires_at FROM interactions \
             WHERE interaction_id = ? AND expires_at > ?",
        )
        .bind(interaction_id)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(interaction_from_row)
        .transpose()
    }

    /// Replaces the payload only (`expires_at` stays as inserted). Without a `now`,
    /// "live" means not deleted: an expired but unpurged interaction still
    /// matches, and [`SessionStore::get_interaction`] keeps hiding it.
    async fn update_interaction(&self, interaction: &Interaction) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE interactions SET payload = ? WHERE interaction_id = ?")
            .bind(&interaction.payload)
            .bind(&interaction.interaction_id)
            .execute(&self.writer)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(updated > 0)
    }

    async fn delete_interaction(&self, interaction_id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM interactions WHERE interaction_id = ?")
            .bind(interaction_id)
            .execute(&self.writer)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE user_id = ? AND client_id = ?")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(query_error)?;
        match row {
            Some(row) => from_json(&row, "scopes"),
            None => Ok(Vec::new()),
        }
    }

    /// The stored list keeps its order; new scopes are appended once each.
    async fn add_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = add_consent_in(&mut tx, user_id, client_id, scopes, now).await;
        finish(tx, outcome).await
    }

    async fn purge_sessions(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = purge_sessions_in(&mut tx, now, limit).await;
        finish(tx, outcome).await
    }
}

async fn add_consent_in(
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

async fn purge_sessions_in(
    conn: &mut SqliteConnection,
    now: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE session_hash IN \
         (SELECT session_hash FROM sessions WHERE expires_at < ? ORDER BY expires_at LIMIT ?)",
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    let interactions = sqlx::query(
        "DELETE FROM interactions WHERE interaction_id IN \
         (SELECT interaction_id FROM interactions WHERE expires_at < ? \
          ORDER BY expires_at LIMIT ?)",
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    Ok(sessions + interactions)
}

fn session_from_row(row: &SqliteRow) -> Result<Session, StoreError> {
    Ok(Session {
        session_hash: get(row, "session_hash")?,
        sid: get(row, "sid")?,
        user_id: get(row, "user_id")?,
        auth_time: get(row, "auth_time")?,
        amr: from_json(row, "amr")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

fn interaction_from_row(row: &SqliteRow) -> Result<Interaction, StoreError> {
    Ok(Interaction {
        interaction_id: get(row, "interaction_id")?,
        payload: get(row, "payload")?,
        expires_at: get(row, "expires_at")?,
    })
}

// ---------------------------------------------------------------------------------
// Grants, codes, refresh tokens
//
// A grant is live while `revoked_at IS NULL AND expires_at > now`; a code or
// refresh token of a dead grant is never redeemed or rotated. Revocation deletes
// the grant's refresh tokens and unconsumed codes but keeps consumed codes, so a
// replay after revocation is still reported as `Replayed` until the code is purged.

macro_rules! grant_columns {
    () => {
        "grant_id, client_id, user_id, scope, sid, auth_time, amr, created_at, expires_at, \
         revoked_at, status_idx, resources"
    };
}

macro_rules! code_columns {
    () => {
        "code_hash, grant_id, client_id, redirect_uri, code_challenge, nonce, scope, \
         resources, created_at, expires_at, consumed_at"
    };
}

macro_rules! refresh_columns {
    () => {
        "token_hash, grant_id, client_id, scope, created_at, expires_at, rotated_at, \
         sealed_successor"
    };
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn insert_grant_with_code(
        &self,
        grant: &Grant,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = insert_grant_with_code_in(&mut tx, grant, code).await;
        finish(tx, outcome).await
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM grants WHERE grant_id = ?"
        ))
        .bind(grant_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(grant_from_row)
        .transpose()
    }

    async fn grant_by_status_idx(&self, status_idx: i64) -> Result<Option<Grant>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM grants WHERE status_idx = ? ORDER BY created_at LIMIT 1"
        ))
        .bind(status_idx)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(grant_from_row)
        .transpose()
    }

    /// A live, unconsumed code of a live grant is consumed by one conditional
    /// `UPDATE` (all writes queue on the single writer connection, so exactly one
    /// caller sees the row change). Otherwise a consumed code is `Replayed` whatever
    /// its expiry or its grant's state, and anything else is `Unknown`.
    async fn redeem_code(&self, code_hash: &[u8], now: i64) -> Result<CodeRedemption, StoreError> {
        let consumed = sqlx::query(concat!(
            "UPDATE authorization_codes SET consumed_at = ?1 \
             WHERE code_hash = ?2 AND consumed_at IS NULL AND expires_at > ?1 \
             AND EXISTS (SELECT 1 FROM grants g WHERE g.grant_id = authorization_codes.grant_id \
                         AND g.revoked_at IS NULL AND g.expires_at > ?1) \
             RETURNING ",
            code_columns!()
        ))
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(query_error)?;
        if let Some(row) = consumed {
            return Ok(CodeRedemption::Redeemed(code_from_row(&row)?));
        }

        let stored = sqlx::query(concat!(
            "SELECT ",
            code_columns!(),
            " FROM authorization_codes WHERE code_hash = ?"
        ))
        .bind(code_hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(code_from_row)
        .transpose()?;
        Ok(match stored {
            Some(code) if code.consumed_at.is_some() => CodeRedemption::Replayed(code),
            _ => CodeRedemption::Unknown,
        })
    }

    /// If the grant is already revoked, the `jti` is revoked at once (with the
    /// grant's `revoked_at`): a token minted while the grant was being revoked
    /// does not escape. An unknown grant is an error (foreign key).
    async fn record_access_token(
        &self,
        grant_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = record_access_token_in(&mut tx, grant_id, jti, expires_at).await;
        finish(tx, outcome).await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        insert_refresh_token_in(&self.writer, token).await
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &[u8],
        successor: &RefreshToken,
        sealed_successor: &[u8],
        access_token: Option<(&str, i64)>,
        now: i64,
    ) -> Result<Rotation, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = rotate_refresh_token_in(
            &mut tx,
            presented_hash,
            successor,
            sealed_successor,
            access_token,
            now,
        )
        .await;
        finish(tx, outcome).await
    }

    async fn get_refresh_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<RefreshToken>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            refresh_columns!(),
            " FROM refresh_tokens WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(refresh_from_row)
        .transpose()
    }

    /// "Live" here means not yet revoked: an expired grant that was never revoked
    /// is revoked too (its access tokens may outlive it) and counts as matched.
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
        self.revoke(GrantsOf::Grant(grant_id), now)
            .await
            .map(|count| count > 0)
    }

    async fn revoke_grants_of_session(&self, sid: &str, now: i64) -> Result<u64, StoreError> {
        self.revoke(GrantsOf::Session(sid), now).await
    }

    async fn revoke_grants_of_user(&self, user_id: &str, now: i64) -> Result<u64, StoreError> {
        self.revoke(GrantsOf::User(user_id), now).await
    }

    async fn revoke_grants_of_client(&self, client_id: &str, now: i64) -> Result<u64, StoreError> {
        self.revoke(GrantsOf::Client(client_id), now).await
    }

    /// Consumed codes go too once expired. Deleting a grant cascades to whatever
    /// of its descendants is left; those rows are not counted.
    async fn purge_grants(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = purge_grants_in(&mut tx, now, limit).await;
        finish(tx, outcome).await
    }
}

impl SqliteStore {
    async fn revoke(&self, which: GrantsOf<'_>, now: i64) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = revoke_in(&mut tx, which, now).await;
        finish(tx, outcome).await
    }
}

/// Which grants a revocation is about.
#[derive(Debug, Clone, Copy)]
enum GrantsOf<'a> {
    Grant(&'a str),
    Session(&'a str),
    User(&'a str),
    Client(&'a str),
}

/// Whose deletion cascades to grants.
#[derive(Debug, Clone, Copy)]
enum Owner<'a> {
    User(&'a str),
    Client(&'a str),
}

async fn insert_grant_with_code_in(
    conn: &mut SqliteConnection,
    grant: &Grant,
    code: &AuthorizationCode,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO grants (",
        grant_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&grant.grant_id)
    .bind(&grant.client_id)
    .bind(&grant.user_id)
    .bind(to_json(&grant.scope)?)
    .bind(grant.sid.as_deref())
    .bind(grant.auth_time)
    .bind(to_json(&grant.amr)?)
    .bind(grant.created_at)
    .bind(grant.expires_at)
    .bind(grant.revoked_at)
    .bind(grant.status_idx)
    .bind(to_json(&grant.resources)?)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    sqlx::query(concat!(
        "INSERT INTO authorization_codes (",
        code_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&code.code_hash)
    .bind(&code.grant_id)
    .bind(&code.client_id)
    .bind(&code.redirect_uri)
    .bind(&code.code_challenge)
    .bind(code.nonce.as_deref())
    .bind(to_json(&code.scope)?)
    .bind(to_json(&code.resources)?)
    .bind(code.created_at)
    .bind(code.expires_at)
    .bind(code.consumed_at)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}

async fn record_access_token_in(
    conn: &mut SqliteConnection,
    grant_id: &str,
    jti: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grant_access_tokens (grant_id, jti, expires_at) VALUES (?, ?, ?) \
         ON CONFLICT (grant_id, jti) DO NOTHING",
    )
    .bind(grant_id)
    .bind(jti)
    .bind(expires_at)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
         SELECT ?1, client_id, ?2, revoked_at FROM grants \
         WHERE grant_id = ?3 AND revoked_at IS NOT NULL \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at)
    .bind(grant_id)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}

async fn insert_refresh_token_in<'e, E>(executor: E, token: &RefreshToken) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(concat!(
        "INSERT INTO refresh_tokens (",
        refresh_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&token.token_hash)
    .bind(&token.grant_id)
    .bind(&token.client_id)
    .bind(to_json(&token.scope)?)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.rotated_at)
    .bind(token.sealed_successor.as_deref())
    .execute(executor)
    .await
    .map_err(query_error)?;
    Ok(())
}

/// Runs inside `BEGIN IMMEDIATE`: nothing else writes until it commits, so the
/// grant read first is still what it is when the token row changes.
async fn rotate_refresh_token_in(
    conn: &mut SqliteConnection,
    presented_hash: &[u8],
    successor: &RefreshToken,
    sealed_successor: &[u8],
    access_token: Option<(&str, i64)>,
    now: i64,
) -> Result<Rotation, StoreError> {
    let grant = sqlx::query(concat!(
        "SELECT ",
        grant_columns!(),
        " FROM grants WHERE grant_id = \
          (SELECT grant_id FROM refresh_tokens WHERE token_hash = ?)"
    ))
    .bind(presented_hash)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error)?
    .as_ref()
    .map(grant_from_row)
    .transpose()?;
    let Some(grant) = grant else {
        return Ok(Rotation::Unknown);
    };
    if grant.revoked_at.is_some() || grant.expires_at <= now {
        return Ok(Rotation::Unknown);
    }

    let rotated = sqlx::query(concat!(
        "UPDATE refresh_tokens SET rotated_at = ?1, sealed_successor = ?2 \
         WHERE token_hash = ?3 AND rotated_at IS NULL AND expires_at > ?1 RETURNING ",
        refresh_columns!()
    ))
    .bind(now)
    .bind(sealed_successor)
    .bind(presented_hash)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error)?;
    if let Some(row) = rotated {
        insert_refresh_token_in(&mut *conn, successor).await?;
        if let Some((jti, expires_at)) = access_token {
            record_access_token_in(&mut *conn, &grant.grant_id, jti, expires_at).await?;
        }
        // The row as it was: the update required `rotated_at IS NULL`, and the
        // sealed successor is only ever written together with it.
        let previous = RefreshToken {
            rotated_at: None,
            sealed_successor: None,
            ..refresh_from_row(&row)?
        };
        return Ok(Rotation::Rotated { previous, grant });
    }

    let stored = sqlx::query(concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_tokens WHERE token_hash = ?"
    ))
    .bind(presented_hash)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error)?
    .as_ref()
    .map(refresh_from_row)
    .transpose()?;
    Ok(match stored {
        Some(previous) if previous.rotated_at.is_some() && previous.expires_at > now => {
            Rotation::AlreadyRotated { previous, grant }
        }
        _ => Rotation::Unknown,
    })
}

/// Revokes the not-yet-revoked grants selected by `which`; returns how many. The
/// status index of each (if it has one) is revoked until its last access token
/// has expired, unless that moment has passed already, as unexpired jtis are.
async fn revoke_in(
    conn: &mut SqliteConnection,
    which: GrantsOf<'_>,
    now: i64,
) -> Result<u64, StoreError> {
    let (sql, key) = match which {
        GrantsOf::Grant(id) => (
            "UPDATE grants SET revoked_at = ?1 \
             WHERE grant_id = ?2 AND revoked_at IS NULL RETURNING grant_id",
            id,
        ),
        GrantsOf::Session(sid) => (
            "UPDATE grants SET revoked_at = ?1 \
             WHERE sid = ?2 AND revoked_at IS NULL RETURNING grant_id",
            sid,
        ),
        GrantsOf::User(user_id) => (
            "UPDATE grants SET revoked_at = ?1 \
             WHERE user_id = ?2 AND revoked_at IS NULL RETURNING grant_id",
            user_id,
        ),
        GrantsOf::Client(client_id) => (
            "UPDATE grants SET revoked_at = ?1 \
             WHERE client_id = ?2 AND revoked_at IS NULL RETURNING grant_id",
            client_id,
        ),
    };
    let revoked: Vec<String> = sqlx::query_scalar(sql)
        .bind(now)
        .bind(key)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_error)?;
    if revoked.is_empty() {
        return Ok(0);
    }
    // The ids as a JSON array, expanded by `json_each`: SQLite has no array binds.
    let ids = to_json(&revoked)?;

    sqlx::query(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
         SELECT a.jti, g.client_id, a.expires_at, ?1 \
         FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
         WHERE a.grant_id IN (SELECT value FROM json_each(?2)) AND a.expires_at > ?1 \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(now)
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    sqlx::query("DELETE FROM refresh_tokens WHERE grant_id IN (SELECT value FROM json_each(?))")
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    sqlx::query(
        "DELETE FROM authorization_codes \
         WHERE grant_id IN (SELECT value FROM json_each(?)) AND consumed_at IS NULL",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    sqlx::query(
        "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
         SELECT status_idx, status_idx + 1, expires_at + ?2, ?1 FROM grants \
         WHERE grant_id IN (SELECT value FROM json_each(?3)) AND status_idx IS NOT NULL \
         AND expires_at + ?2 > ?1 \
         ORDER BY status_idx",
    )
    .bind(now)
    .bind(MAX_ACCESS_TOKEN_TTL)
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(u64::try_from(revoked.len()).unwrap_or(u64::MAX))
}

/// Before a user or client is deleted (and its grants with it, by cascade):
/// revokes the recorded access tokens and the status indices of its
/// not-yet-revoked grants (those of revoked grants were revoked with the grant),
/// each index until the grant's last access token has expired, as
/// [`GrantStore::revoke_grant`] does. The deletes take no `now`, so the
/// informational `revoked_at` comes from the database clock and no expiry filter is
/// applied (records of expired tokens are purged like any other). This is the only
/// clock the store reads, and nothing is decided by it.
async fn revoke_access_tokens_before_delete(
    conn: &mut SqliteConnection,
    owner: Owner<'_>,
) -> Result<(), StoreError> {
    let (status_sql, key) = match owner {
        Owner::User(user_id) => (
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + ?2, unixepoch() FROM grants \
             WHERE user_id = ?1 AND revoked_at IS NULL AND status_idx IS NOT NULL \
             ORDER BY status_idx",
            user_id,
        ),
        Owner::Client(client_id) => (
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + ?2, unixepoch() FROM grants \
             WHERE client_id = ?1 AND revoked_at IS NULL AND status_idx IS NOT NULL \
             ORDER BY status_idx",
            client_id,
        ),
    };
    sqlx::query(status_sql)
        .bind(key)
        .bind(MAX_ACCESS_TOKEN_TTL)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;

    let (sql, key) = match owner {
        Owner::User(user_id) => (
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             SELECT a.jti, g.client_id, a.expires_at, unixepoch() \
             FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
             WHERE g.user_id = ? AND g.revoked_at IS NULL \
             ON CONFLICT (jti) DO NOTHING",
            user_id,
        ),
        Owner::Client(client_id) => (
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             SELECT a.jti, g.client_id, a.expires_at, unixepoch() \
             FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
             WHERE g.client_id = ? AND g.revoked_at IS NULL \
             ON CONFLICT (jti) DO NOTHING",
            client_id,
        ),
    };
    sqlx::query(sql)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    Ok(())
}

async fn purge_grants_in(
    conn: &mut SqliteConnection,
    now: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let limit = i64::from(limit);
    let mut purged = 0;
    for sql in [
        "DELETE FROM authorization_codes WHERE code_hash IN \
         (SELECT code_hash FROM authorization_codes WHERE expires_at < ?1 \
          ORDER BY expires_at LIMIT ?2)",
        "DELETE FROM refresh_tokens WHERE token_hash IN \
         (SELECT token_hash FROM refresh_tokens WHERE expires_at < ?1 \
          ORDER BY expires_at LIMIT ?2)",
        "DELETE FROM grant_access_tokens WHERE (grant_id, jti) IN \
         (SELECT grant_id, jti FROM grant_access_tokens WHERE expires_at < ?1 \
          ORDER BY expires_at LIMIT ?2)",
        "DELETE FROM grants WHERE grant_id IN \
         (SELECT grant_id FROM grants WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2)",
    ] {
        purged += sqlx::query(sql)
            .bind(now)
            .bind(limit)
            .execute(&mut *conn)
            .await
            .map_err(query_error)?
            .rows_affected();
    }
    Ok(purged)
}

fn grant_from_row(row: &SqliteRow) -> Result<Grant, StoreError> {
    Ok(Grant {
        grant_id: get(row, "grant_id")?,
        client_id: get(row, "client_id")?,
        user_id: get(row, "user_id")?,
        scope: from_json(row, "scope")?,
        sid: get(row, "sid")?,
        auth_time: get(row, "auth_time")?,
        amr: from_json(row, "amr")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
        status_idx: get(row, "status_idx")?,
        resources: from_json(row, "resources")?,
    })
}

fn code_from_row(row: &SqliteRow) -> Result<AuthorizationCode, StoreError> {
    Ok(AuthorizationCode {
        code_hash: get(row, "code_hash")?,
        grant_id: get(row, "grant_id")?,
        client_id: get(row, "client_id")?,
        redirect_uri: get(row, "redirect_uri")?,
        code_challenge: get(row, "code_challenge")?,
        nonce: get(row, "nonce")?,
        scope: from_json(row, "scope")?,
        resources: from_json(row, "resources")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        consumed_at: get(row, "consumed_at")?,
    })
}

fn refresh_from_row(row: &SqliteRow) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        token_hash: get(row, "token_hash")?,
        grant_id: get(row, "grant_id")?,
        client_id: get(row, "client_id")?,
        scope: from_json(row, "scope")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        rotated_at: get(row, "rotated_at")?,
        sealed_successor: get(row, "sealed_successor")?,
    })
}

// ---------------------------------------------------------------------------------
// Token status list
//
// Indices come from the one-row `status_allocator`, moved forward by the size of
// each block in the transaction that records the block. Revoked ranges are
// half-open, `[start, end_idx)`, numbered by an AUTOINCREMENT `seq`: writes are
// serialized on the writer connection, so seq order is commit order and a reader
// polling with `status_revocations_after` never misses a row. `purge_status` never
// deletes the newest revocation, so `last_status_seq` never goes back.

macro_rules! status_revocation_columns {
    () => {
        "seq, start, end_idx, expires_at, revoked_at"
    };
}

#[async_trait]
impl StatusStore for SqliteStore {
    /// A `size` below 1 is an error.
    async fn reserve_status_block(
        &self,
        client_id: &str,
        size: i64,
        valid_until: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        if size < 1 {
            return Err(StoreError::Backend(
                format!("status block size must be positive, got {size}").into(),
            ));
        }
        let mut tx = begin_write(&self.writer).await?;
        let outcome = reserve_status_block_in(&mut tx, client_id, size, valid_until, now).await;
        finish(tx, outcome).await
    }

    /// An unknown block (never reserved, or purged) is left alone.
    async fn extend_status_block(&self, start: i64, valid_until: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE status_blocks SET valid_until = max(valid_until, ?1) WHERE start = ?2")
            .bind(valid_until)
            .bind(start)
            .execute(&self.writer)
            .await
            .map_err(query_error)?;
        Ok(())
    }

    /// An empty range (`end <= start`) or a negative `start` is an error. Recording
    /// a range twice records it twice.
    async fn revoke_status_range(
        &self,
        start: i64,
        end: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        if start < 0 || end <= start {
            return Err(StoreError::Backend(
                format!("invalid status range [{start}, {end})").into(),
            ));
        }
        sqlx::query(
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(start)
        .bind(end)
        .bind(expires_at)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    /// One range per block, `[start, start + size)`, revoked until the block's
    /// `valid_until`; one statement, so one transaction.
    async fn revoke_status_blocks_of_client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let revoked = sqlx::query(
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT start, start + size, valid_until, ?1 FROM status_blocks \
             WHERE client_id = ?2 AND valid_until > ?1 ORDER BY start",
        )
        .bind(now)
        .bind(client_id)
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(revoked)
    }

    /// Oldest first.
    async fn status_revocations_between(
        &self,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Vec<StatusRevocation>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            status_revocation_columns!(),
            " FROM status_revocations \
              WHERE start < ?1 AND end_idx > ?2 AND expires_at > ?3 ORDER BY seq"
        ))
        .bind(end)
        .bind(start)
        .bind(now)
        .fetch_all(&self.reader)
        .await
        .map_err(query_error)?
        .iter()
        .map(status_revocation_from_row)
        .collect()
    }

    /// Expired revocations too, until they are purged.
    async fn status_revocations_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<StatusRevocation>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            status_revocation_columns!(),
            " FROM status_revocations WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(query_error)?
        .iter()
        .map(status_revocation_from_row)
        .collect()
    }

    async fn last_status_seq(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM status_revocations")
            .fetch_one(&self.reader)
            .await
            .map_err(query_error)
    }

    /// `(lowest start, highest end)` over the live blocks: the span is half-open.
    async fn live_status_span(&self, now: i64) -> Result<Option<(i64, i64)>, StoreError> {
        let (low, high): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT min(start), max(start + size) FROM status_blocks WHERE valid_until > ?",
        )
        .bind(now)
        .fetch_one(&self.reader)
        .await
        .map_err(query_error)?;
        Ok(low.zip(high))
    }

    /// Revocations that expired before `now`, except the newest one (so that
    /// `last_status_seq` never goes back), and blocks whose `valid_until` is before
    /// `now` and that no revocation expiring at `now` or later overlaps; oldest
    /// first.
    async fn purge_status(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = purge_status_in(&mut tx, now, limit).await;
        finish(tx, outcome).await
    }
}

async fn reserve_status_block_in(
    conn: &mut SqliteConnection,
    client_id: &str,
    size: i64,
    valid_until: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let start: i64 = sqlx::query_scalar(
        "UPDATE status_allocator SET next_idx = next_idx + ?1 WHERE id = 1 \
         RETURNING next_idx - ?1",
    )
    .bind(size)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error)?
    .ok_or_else(|| StoreError::Corrupt("the status_allocator row is missing".to_owned()))?;
    sqlx::query(
        "INSERT INTO status_blocks (start, size, client_id, valid_until, reserved_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(start)
    .bind(size)
    .bind(client_id)
    .bind(valid_until)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(start)
}

async fn purge_status_in(
    conn: &mut SqliteConnection,
    now: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let limit = i64::from(limit);
    // Revocations first, so a block they held can go in the same call.
    let revocations = sqlx::query(
        "DELETE FROM status_revocations WHERE seq IN \
         (SELECT seq FROM status_revocations WHERE expires_at < ?1 \
          AND seq < (SELECT max(seq) FROM status_revocations) \
          ORDER BY expires_at LIMIT ?2)",
    )
    .bind(now)
    .bind(limit)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    let blocks = sqlx::query(
        "DELETE FROM status_blocks WHERE start IN \
         (SELECT b.start FROM status_blocks b WHERE b.valid_until < ?1 \
          AND NOT EXISTS (SELECT 1 FROM status_revocations r \
                          WHERE r.start < b.start + b.size AND r.end_idx > b.start \
                          AND r.expires_at >= ?1) \
          ORDER BY b.valid_until LIMIT ?2)",
    )
    .bind(now)
    .bind(limit)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    Ok(revocations + blocks)
}

fn status_revocation_from_row(row: &SqliteRow) -> Result<StatusRevocation, StoreError> {
    Ok(StatusRevocation {
        seq: get(row, "seq")?,
        start: get(row, "start")?,
        end: get(row, "end_idx")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
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
// Audit trail

async fn append_audit_events_in(
    conn: &mut SqliteConnection,
    events: &[AuditEvent],
    details: &[String],
) -> Result<(), StoreError> {
    for (event, detail) in events.iter().zip(details) {
        sqlx::query(
            "INSERT INTO audit_events (at, event, user_id, client_id, address, detail) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(event.at)
        .bind(&event.event)
        .bind(event.user_id.as_deref())
        .bind(event.client_id.as_deref())
        .bind(event.address.as_deref())
        .bind(detail)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    }
    Ok(())
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        // Serialized before the transaction opens, so only the inserts can fail in it.
        let details = events
            .iter()
            .map(|event| serde_json::to_string(&event.detail))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        let mut tx = begin_write(&self.writer).await?;
        let outcome = append_audit_events_in(&mut tx, events, &details).await;
        finish(tx, outcome).await
    }

    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        // Only fixed fragments make up the SQL; every value is bound.
        let mut sql = String::from(
            "SELECT at, event, user_id, client_id, address, detail FROM audit_events WHERE at >= ?",
        );
        let mut values: Vec<&str> = Vec::new();
        for (column, value) in [
            ("user_id", filter.user_id.as_deref()),
            ("client_id", filter.client_id.as_deref()),
            ("event", filter.event.as_deref()),
        ] {
            if let Some(value) = value {
                values.push(value);
                sql.push_str(&format!(" AND {column} = ?"));
            }
        }
        sql.push_str(" ORDER BY at DESC, id DESC LIMIT ?");
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(filter.since.unwrap_or(i64::MIN));
        for value in values {
            query = query.bind(value);
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(&self.reader)
            .await
            .map_err(query_error)?;
        rows.iter().map(audit_event).collect()
    }

    async fn purge_audit_events(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
        // A bounded batch, oldest first: never one long delete.
        let deleted = sqlx::query(
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE at < ? ORDER BY at, id LIMIT ?)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(deleted)
    }
}

fn audit_event(row: &SqliteRow) -> Result<AuditEvent, StoreError> {
    let detail: String = get(row, "detail")?;
    Ok(AuditEvent {
        at: get(row, "at")?,
        event: get(row, "event")?,
        user_id: get(row, "user_id")?,
        client_id: get(row, "client_id")?,
        address: get(row, "address")?,
        detail: serde_json::from_str(&detail)
            .map_err(|err| StoreError::Corrupt(format!("column detail: {err}")))?,
    })
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

/// Appends to `list` each of `more` it does not hold yet, in order.
fn union_into(list: &mut Vec<String>, more: &[String]) {
    for item in more {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
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
