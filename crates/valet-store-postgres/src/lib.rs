//! Valet's PostgreSQL store, for running several Valet nodes on one database.
//!
//! Nodes keep no state of their own, so everything that must agree across nodes is
//! decided by the database: a unique `(alg, generation)` picks one winner among
//! concurrent key rotations, conditional updates under row locks pick one winner
//! among concurrent code redemptions and refresh rotations (see the note on locking
//! above the grant store), one allocator row hands out disjoint blocks of status
//! list indices, an advisory lock makes the order of status revocations their
//! commit order (see the note above the status store), and migrations run under an
//! advisory lock so that nodes starting together apply them once.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row, SqlSafeStr, Transaction};
use valet_core::audit::{AuditEvent, AuditFilter};
use valet_core::store::{
    AuditStore, AuthorizationCode, Client, ClientStore, CodeRedemption, Grant, GrantStore,
    Interaction, KeyInsert, KeyStore, MAX_ACCESS_TOKEN_TTL, RefreshToken, RevocationStore,
    RevokedToken, Rotation, Session, SessionStore, StatusRevocation, StatusStore, Store,
    StoreError, StoredKey, User, UserStore,
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

        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(backend)?;
        // Migrate on the connection the pool just opened (each new connection costs
        // a TLS handshake, a good part of the start-up time). If anything fails,
        // the connection is closed instead of going back to the pool, so the
        // session, and with it the advisory lock, ends.
        let mut conn = pool.acquire().await.map_err(backend)?;
        let migrated = migrate(&mut conn, schema).await;
        if migrated.is_err() {
            conn.close_on_drop();
        }
        drop(conn);
        migrated?;
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

/// Commits on success and rolls back on failure, so that no row lock outlives the
/// call (a dropped transaction would only roll back when its connection is next
/// used).
async fn finish<T>(
    tx: Transaction<'static, Postgres>,
    outcome: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match outcome {
        Ok(value) => {
            tx.commit().await.map_err(query_error)?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "PostgreSQL rollback failed");
            }
            Err(err)
        }
    }
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
         grant_types, scopes, audiences, access_token_ttl, skip_consent, \
         refresh_grace_seconds, id_token_signed_response_alg, created_at, updated_at"
    };
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
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
        .bind(client.skip_consent)
        .bind(client.refresh_grace_seconds)
        .bind(client.id_token_signed_response_alg.as_deref())
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

    /// Also deletes everything issued to the client (consents, grants and their
    /// descendants), first revoking the live access tokens of its grants.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = delete_client_in(&mut tx, client_id).await;
        finish(tx, outcome).await
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

// ---------------------------------------------------------------------------------
// Users

macro_rules! user_columns {
    () => {
        "user_id, username, email, email_verified, name, given_name, family_name, \
         password_hash, disabled, created_at, updated_at"
    };
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        // Any of the three unique keys (user_id, username, lower(email)) taken is
        // a unique violation, which `query_error` turns into `Conflict`.
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
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
        .execute(&self.pool)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    /// Emails compare with ASCII case folding (`lower` under the "C" collation,
    /// as SQLite does), whatever the database's locale.
    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        // At most one user has the username and at most one the email; when they
        // differ, the username match wins. `lower($1 COLLATE "C")` matches the
        // expression of the `users_email` index.
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username = $1 OR lower(email) = lower($1::text COLLATE \"C\") \
             ORDER BY (username = $1) DESC LIMIT 1"
        ))
        .bind(login)
        .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
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
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE user_id = $3")
                .bind(password_hash)
                .bind(now)
                .bind(user_id)
                .execute(&self.pool)
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
            sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE user_id = $3")
                .bind(disabled)
                .bind(now)
                .bind(user_id)
                .execute(&self.pool)
                .await
                .map_err(query_error)?
                .rows_affected();
        Ok(updated > 0)
    }

    /// Sessions, consents and grants (with their codes, refresh tokens and access
    /// token records) go by cascade; the live access tokens of the user's grants
    /// are revoked first.
    async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = delete_user_in(&mut tx, user_id).await;
        finish(tx, outcome).await
    }
}

async fn delete_user_in(conn: &mut PgConnection, user_id: &str) -> Result<bool, StoreError> {
    revoke_access_tokens_before_delete(conn, Owner::User(user_id)).await?;
    let deleted = sqlx::query("DELETE FROM users WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?
        .rows_affected();
    Ok(deleted > 0)
}

async fn delete_client_in(conn: &mut PgConnection, client_id: &str) -> Result<bool, StoreError> {
    revoke_access_tokens_before_delete(conn, Owner::Client(client_id)).await?;
    let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?
        .rows_affected();
    Ok(deleted > 0)
}

fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
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
impl SessionStore for PostgresStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO sessions (",
            session_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&session.session_hash)
        .bind(&session.sid)
        .bind(&session.user_id)
        .bind(session.auth_time)
        .bind(to_json(&session.amr)?)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
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
            " FROM sessions WHERE session_hash = $1 AND expires_at > $2"
        ))
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    /// Returns the session whether or not it had expired.
    async fn delete_session(&self, session_hash: &[u8]) -> Result<Option<Session>, StoreError> {
        sqlx::query(concat!(
            "DELETE FROM sessions WHERE session_hash = $1 RETURNING ",
            session_columns!()
        ))
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    async fn delete_sessions_of_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(deleted)
    }

    async fn insert_interaction(&self, interaction: &Interaction) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO interactions (interaction_id, payload, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&interaction.interaction_id)
        .bind(&interaction.payload)
        .bind(interaction.expires_at)
        .execute(&self.pool)
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
             WHERE interaction_id = $1 AND expires_at > $2",
        )
        .bind(interaction_id)
        .bind(now)
        .fetch_optional(&self.pool)
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
        let updated = sqlx::query("UPDATE interactions SET payload = $1 WHERE interaction_id = $2")
            .bind(&interaction.payload)
            .bind(&interaction.interaction_id)
            .execute(&self.pool)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(updated > 0)
    }

    async fn delete_interaction(&self, interaction_id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM interactions WHERE interaction_id = $1")
            .bind(interaction_id)
            .execute(&self.pool)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error)?;
        match row {
            Some(row) => from_json(&row, "scopes"),
            None => Ok(Vec::new()),
        }
    }

    /// The stored list keeps its order; new scopes are appended once each.
    /// Concurrent calls for one pair serialize on its row, so none is lost.
    async fn add_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = add_consent_in(&mut tx, user_id, client_id, scopes, now).await;
        finish(tx, outcome).await
    }

    async fn purge_sessions(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = purge_sessions_in(&mut tx, now, limit).await;
        finish(tx, outcome).await
    }
}

async fn add_consent_in(
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

async fn purge_sessions_in(
    conn: &mut PgConnection,
    now: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE session_hash IN \
         (SELECT session_hash FROM sessions WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    let interactions = sqlx::query(
        "DELETE FROM interactions WHERE interaction_id IN \
         (SELECT interaction_id FROM interactions WHERE expires_at < $1 \
          ORDER BY expires_at LIMIT $2)",
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    Ok(sessions + interactions)
}

fn session_from_row(row: &PgRow) -> Result<Session, StoreError> {
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

fn interaction_from_row(row: &PgRow) -> Result<Interaction, StoreError> {
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
//
// Locking (READ COMMITTED): a revocation takes the grant's row lock with its first
// statement, and rotation and `record_access_token` take a share lock on the grant
// before anything else. So a revocation waits for a rotation or a recording in
// progress and then, statement by statement, sees what it committed (the successor
// token, the new jti); and one that starts after the revocation sees the grant
// revoked. Locks are always taken grant first, then its tokens, then (to revoke a
// status index) the status revocation lock (see the token status list below).

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
impl GrantStore for PostgresStore {
    async fn insert_grant_with_code(
        &self,
        grant: &Grant,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = insert_grant_with_code_in(&mut tx, grant, code).await;
        finish(tx, outcome).await
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM grants WHERE grant_id = $1"
        ))
        .bind(grant_id)
        .fetch_optional(&self.pool)
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
            " FROM grants WHERE status_idx = $1 ORDER BY created_at LIMIT 1"
        ))
        .bind(status_idx)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(grant_from_row)
        .transpose()
    }

    /// A live, unconsumed code of a live grant is consumed by one conditional
    /// `UPDATE`: concurrent callers queue on the row lock and, once the first has
    /// committed, find `consumed_at` set when PostgreSQL re-checks the condition.
    /// Otherwise a consumed code is `Replayed` whatever its expiry or its grant's
    /// state, and anything else is `Unknown`.
    async fn redeem_code(&self, code_hash: &[u8], now: i64) -> Result<CodeRedemption, StoreError> {
        let consumed = sqlx::query(concat!(
            "UPDATE authorization_codes SET consumed_at = $1 \
             WHERE code_hash = $2 AND consumed_at IS NULL AND expires_at > $1 \
             AND EXISTS (SELECT 1 FROM grants g WHERE g.grant_id = authorization_codes.grant_id \
                         AND g.revoked_at IS NULL AND g.expires_at > $1) \
             RETURNING ",
            code_columns!()
        ))
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error)?;
        if let Some(row) = consumed {
            return Ok(CodeRedemption::Redeemed(code_from_row(&row)?));
        }

        // A fresh statement, after any winner committed: it sees `consumed_at`.
        let stored = sqlx::query(concat!(
            "SELECT ",
            code_columns!(),
            " FROM authorization_codes WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = record_access_token_in(&mut tx, grant_id, jti, expires_at).await;
        finish(tx, outcome).await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        insert_refresh_token_in(&self.pool, token).await
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &[u8],
        successor: &RefreshToken,
        sealed_successor: &[u8],
        access_token: Option<(&str, i64)>,
        now: i64,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
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
            " FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = purge_grants_in(&mut tx, now, limit).await;
        finish(tx, outcome).await
    }
}

impl PostgresStore {
    async fn revoke(&self, which: GrantsOf<'_>, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
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
    conn: &mut PgConnection,
    grant: &Grant,
    code: &AuthorizationCode,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO grants (",
        grant_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
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
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
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
    conn: &mut PgConnection,
    grant_id: &str,
    jti: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    // Waits for a revocation of the grant in progress, and holds off one that
    // starts now until this commits (see the locking note above).
    sqlx::query("SELECT 1 FROM grants WHERE grant_id = $1 FOR SHARE")
        .bind(grant_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    sqlx::query(
        "INSERT INTO grant_access_tokens (grant_id, jti, expires_at) VALUES ($1, $2, $3) \
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
         SELECT $1, client_id, $2, revoked_at FROM grants \
         WHERE grant_id = $3 AND revoked_at IS NOT NULL \
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
    E: sqlx::Executor<'e, Database = Postgres>,
{
    sqlx::query(concat!(
        "INSERT INTO refresh_tokens (",
        refresh_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
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

/// Concurrent calls for one token all take the share lock on its grant, then race
/// for the token's row lock in the conditional `UPDATE`. The winner updates and
/// inserts its successor; the others wait for it to commit, find `rotated_at` set
/// when PostgreSQL re-checks the condition, and read the token back with a fresh
/// statement, which sees the winner's rotation.
async fn rotate_refresh_token_in(
    conn: &mut PgConnection,
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
          (SELECT grant_id FROM refresh_tokens WHERE token_hash = $1) FOR SHARE"
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
        "UPDATE refresh_tokens SET rotated_at = $1, sealed_successor = $2 \
         WHERE token_hash = $3 AND rotated_at IS NULL AND expires_at > $1 RETURNING ",
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
        " FROM refresh_tokens WHERE token_hash = $1"
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

/// Revokes the not-yet-revoked grants selected by `which`; returns how many. Each
/// step is its own statement, so each sees what a rotation or recording that held
/// the grant's lock before the first one committed. The status index of each (if
/// it has one) is revoked until its last access token has expired, unless that
/// moment has passed already, as unexpired jtis are; last, so that the status lock
/// is held only until the commit.
async fn revoke_in(
    conn: &mut PgConnection,
    which: GrantsOf<'_>,
    now: i64,
) -> Result<u64, StoreError> {
    let (sql, key) = match which {
        GrantsOf::Grant(id) => (
            "UPDATE grants SET revoked_at = $1 \
             WHERE grant_id = $2 AND revoked_at IS NULL RETURNING grant_id, status_idx",
            id,
        ),
        GrantsOf::Session(sid) => (
            "UPDATE grants SET revoked_at = $1 \
             WHERE sid = $2 AND revoked_at IS NULL RETURNING grant_id, status_idx",
            sid,
        ),
        GrantsOf::User(user_id) => (
            "UPDATE grants SET revoked_at = $1 \
             WHERE user_id = $2 AND revoked_at IS NULL RETURNING grant_id, status_idx",
            user_id,
        ),
        GrantsOf::Client(client_id) => (
            "UPDATE grants SET revoked_at = $1 \
             WHERE client_id = $2 AND revoked_at IS NULL RETURNING grant_id, status_idx",
            client_id,
        ),
    };
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(sql)
        .bind(now)
        .bind(key)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_error)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let any_status_idx = rows.iter().any(|(_, status_idx)| status_idx.is_some());
    let revoked: Vec<String> = rows.into_iter().map(|(grant_id, _)| grant_id).collect();

    sqlx::query(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
         SELECT a.jti, g.client_id, a.expires_at, $1 \
         FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
         WHERE a.grant_id = ANY($2) AND a.expires_at > $1 \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(now)
    .bind(&revoked)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = ANY($1)")
        .bind(&revoked)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    sqlx::query("DELETE FROM authorization_codes WHERE grant_id = ANY($1) AND consumed_at IS NULL")
        .bind(&revoked)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    if any_status_idx {
        lock_status_revocations(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + $2, $1 FROM grants \
             WHERE grant_id = ANY($3) AND status_idx IS NOT NULL AND expires_at + $2 > $1 \
             ORDER BY status_idx",
        )
        .bind(now)
        .bind(MAX_ACCESS_TOKEN_TTL)
        .bind(&revoked)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    }
    Ok(u64::try_from(revoked.len()).unwrap_or(u64::MAX))
}

/// Before a user or client is deleted (and its grants with it, by cascade): locks
/// its not-yet-revoked grants, so no access token can be recorded under them any
/// more, then revokes their recorded access tokens and their status indices (those
/// of revoked grants were revoked with the grant), each index until the grant's
/// last access token has expired, as [`GrantStore::revoke_grant`] does. The deletes
/// take no `now`, so the informational `revoked_at` comes from the database clock
/// and no expiry filter is applied (records of expired tokens are purged like any
/// other). This is the only clock the store reads, and nothing is decided by it.
async fn revoke_access_tokens_before_delete(
    conn: &mut PgConnection,
    owner: Owner<'_>,
) -> Result<(), StoreError> {
    let (lock, revoke, revoke_status, key) = match owner {
        Owner::User(user_id) => (
            "SELECT status_idx FROM grants WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY grant_id FOR UPDATE",
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             SELECT a.jti, g.client_id, a.expires_at, \
                    floor(extract(epoch FROM statement_timestamp()))::bigint \
             FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
             WHERE g.user_id = $1 AND g.revoked_at IS NULL \
             ON CONFLICT (jti) DO NOTHING",
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + $2, \
                    floor(extract(epoch FROM statement_timestamp()))::bigint \
             FROM grants \
             WHERE user_id = $1 AND revoked_at IS NULL AND status_idx IS NOT NULL \
             ORDER BY status_idx",
            user_id,
        ),
        Owner::Client(client_id) => (
            "SELECT status_idx FROM grants WHERE client_id = $1 AND revoked_at IS NULL \
             ORDER BY grant_id FOR UPDATE",
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             SELECT a.jti, g.client_id, a.expires_at, \
                    floor(extract(epoch FROM statement_timestamp()))::bigint \
             FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
             WHERE g.client_id = $1 AND g.revoked_at IS NULL \
             ON CONFLICT (jti) DO NOTHING",
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + $2, \
                    floor(extract(epoch FROM statement_timestamp()))::bigint \
             FROM grants \
             WHERE client_id = $1 AND revoked_at IS NULL AND status_idx IS NOT NULL \
             ORDER BY status_idx",
            client_id,
        ),
    };
    let status_indices: Vec<Option<i64>> = sqlx::query_scalar(lock)
        .bind(key)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_error)?;
    sqlx::query(revoke)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    if status_indices.iter().any(Option::is_some) {
        lock_status_revocations(&mut *conn).await?;
        sqlx::query(revoke_status)
            .bind(key)
            .bind(MAX_ACCESS_TOKEN_TTL)
            .execute(&mut *conn)
            .await
            .map_err(query_error)?;
    }
    Ok(())
}

async fn purge_grants_in(conn: &mut PgConnection, now: i64, limit: u32) -> Result<u64, StoreError> {
    // Two nodes purging at once may pick the same rows; the second delete then
    // finds fewer, which is harmless.
    let limit = i64::from(limit);
    let mut purged = 0;
    for sql in [
        "DELETE FROM authorization_codes WHERE code_hash IN \
         (SELECT code_hash FROM authorization_codes WHERE expires_at < $1 \
          ORDER BY expires_at LIMIT $2)",
        "DELETE FROM refresh_tokens WHERE token_hash IN \
         (SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 \
          ORDER BY expires_at LIMIT $2)",
        "DELETE FROM grant_access_tokens WHERE (grant_id, jti) IN \
         (SELECT grant_id, jti FROM grant_access_tokens WHERE expires_at < $1 \
          ORDER BY expires_at LIMIT $2)",
        "DELETE FROM grants WHERE grant_id IN \
         (SELECT grant_id FROM grants WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
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

fn grant_from_row(row: &PgRow) -> Result<Grant, StoreError> {
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

fn code_from_row(row: &PgRow) -> Result<AuthorizationCode, StoreError> {
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

fn refresh_from_row(row: &PgRow) -> Result<RefreshToken, StoreError> {
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
// Indices come from the one-row `status_allocator`: a reservation moves it forward
// by the block's size with one `UPDATE ... RETURNING`, so concurrent reservations
// queue on its row lock and get disjoint, contiguous blocks. Revoked ranges are
// half-open, `[start, end_idx)`.
//
// Ordering of `seq`: a poller reads `seq > last seen` and must never miss a row.
// An identity column alone does not ensure that: transaction A draws 7, B draws 8
// and commits, a poll sees 8 and moves past 7, then A commits 7, never to be seen.
// So every insert into `status_revocations` first takes `lock_status_revocations`
// (a transaction-level lock held until commit or rollback) and draws its seq under
// it: whoever draws a seq has seen every smaller one committed or rolled back, and
// a poll sees a prefix of the seq order. Every transaction takes it after its
// grant row locks and takes no row lock after it, except a user or client deletion,
// which locked the live grants concerned first; so it adds no deadlock.
// `purge_status` never deletes the newest revocation, so `last_status_seq` (the
// highest committed seq) never goes back.

macro_rules! status_revocation_columns {
    () => {
        "seq, start, end_idx, expires_at, revoked_at"
    };
}

/// First key of the two-key advisory lock that orders inserts into
/// `status_revocations` (ASCII "VSLS"); the second is the table's OID, so each
/// schema has its own lock.
const STATUS_SEQ_LOCK: i32 = 0x5653_4c53;

/// Takes the lock that makes seq order commit order (see the note above). An
/// advisory lock rather than `LOCK TABLE ... IN SHARE ROW EXCLUSIVE MODE`: that
/// mode conflicts with the one (auto)vacuum and analyze take, so every revocation
/// would stall behind a vacuum of the table (up to `deadlock_timeout` for
/// autovacuum, the whole run for a manual one); the advisory lock only meets other
/// writers of revocations.
async fn lock_status_revocations(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, 'status_revocations'::regclass::oid::int)")
        .bind(STATUS_SEQ_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    Ok(())
}

#[async_trait]
impl StatusStore for PostgresStore {
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = reserve_status_block_in(&mut tx, client_id, size, valid_until, now).await;
        finish(tx, outcome).await
    }

    /// An unknown block (never reserved, or purged) is left alone.
    async fn extend_status_block(&self, start: i64, valid_until: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE status_blocks SET valid_until = GREATEST(valid_until, $1) WHERE start = $2",
        )
        .bind(valid_until)
        .bind(start)
        .execute(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = revoke_status_range_in(&mut tx, start, end, expires_at, now).await;
        finish(tx, outcome).await
    }

    /// One range per block, `[start, start + size)`, revoked until the block's
    /// `valid_until`.
    async fn revoke_status_blocks_of_client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = revoke_status_blocks_of_client_in(&mut tx, client_id, now).await;
        finish(tx, outcome).await
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
              WHERE start < $1 AND end_idx > $2 AND expires_at > $3 ORDER BY seq"
        ))
        .bind(end)
        .bind(start)
        .bind(now)
        .fetch_all(&self.pool)
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
            " FROM status_revocations WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error)?
        .iter()
        .map(status_revocation_from_row)
        .collect()
    }

    /// The highest committed seq (not the identity's last value, which may belong
    /// to a transaction still in flight).
    async fn last_status_seq(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM status_revocations")
            .fetch_one(&self.pool)
            .await
            .map_err(query_error)
    }

    /// `(lowest start, highest end)` over the live blocks: the span is half-open.
    async fn live_status_span(&self, now: i64) -> Result<Option<(i64, i64)>, StoreError> {
        let (low, high): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT min(start), max(start + size) FROM status_blocks WHERE valid_until > $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(query_error)?;
        Ok(low.zip(high))
    }

    /// Revocations that expired before `now`, except the newest one (so that
    /// `last_status_seq` never goes back), and blocks whose `valid_until` is before
    /// `now` and that no revocation expiring at `now` or later overlaps; oldest
    /// first. Deleting needs no lock: a poller only ever misses expired rows.
    async fn purge_status(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = purge_status_in(&mut tx, now, limit).await;
        finish(tx, outcome).await
    }
}

async fn reserve_status_block_in(
    conn: &mut PgConnection,
    client_id: &str,
    size: i64,
    valid_until: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let start: i64 = sqlx::query_scalar(
        "UPDATE status_allocator SET next_idx = next_idx + $1 WHERE id = 1 \
         RETURNING next_idx - $1",
    )
    .bind(size)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error)?
    .ok_or_else(|| StoreError::Corrupt("the status_allocator row is missing".to_owned()))?;
    sqlx::query(
        "INSERT INTO status_blocks (start, size, client_id, valid_until, reserved_at) \
         VALUES ($1, $2, $3, $4, $5)",
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

async fn revoke_status_range_in(
    conn: &mut PgConnection,
    start: i64,
    end: i64,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    lock_status_revocations(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(start)
    .bind(end)
    .bind(expires_at)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}

async fn revoke_status_blocks_of_client_in(
    conn: &mut PgConnection,
    client_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    lock_status_revocations(&mut *conn).await?;
    let revoked = sqlx::query(
        "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
         SELECT start, start + size, valid_until, $1 FROM status_blocks \
         WHERE client_id = $2 AND valid_until > $1 ORDER BY start",
    )
    .bind(now)
    .bind(client_id)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    Ok(revoked)
}

async fn purge_status_in(conn: &mut PgConnection, now: i64, limit: u32) -> Result<u64, StoreError> {
    // Revocations first, so a block they held can go in the same call. Two nodes
    // purging at once may pick the same rows; the second delete then finds fewer.
    let limit = i64::from(limit);
    let revocations = sqlx::query(
        "DELETE FROM status_revocations WHERE seq IN \
         (SELECT seq FROM status_revocations WHERE expires_at < $1 \
          AND seq < (SELECT max(seq) FROM status_revocations) \
          ORDER BY expires_at LIMIT $2)",
    )
    .bind(now)
    .bind(limit)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    let blocks = sqlx::query(
        "DELETE FROM status_blocks WHERE start IN \
         (SELECT b.start FROM status_blocks b WHERE b.valid_until < $1 \
          AND NOT EXISTS (SELECT 1 FROM status_revocations r \
                          WHERE r.start < b.start + b.size AND r.end_idx > b.start \
                          AND r.expires_at >= $1) \
          ORDER BY b.valid_until LIMIT $2)",
    )
    .bind(now)
    .bind(limit)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    Ok(revocations + blocks)
}

fn status_revocation_from_row(row: &PgRow) -> Result<StatusRevocation, StoreError> {
    Ok(StatusRevocation {
        seq: get(row, "seq")?,
        start: get(row, "start")?,
        end: get(row, "end_idx")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
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
// Audit trail

async fn append_audit_events_in(
    conn: &mut PgConnection,
    events: &[AuditEvent],
    details: &[String],
) -> Result<(), StoreError> {
    for (event, detail) in events.iter().zip(details) {
        sqlx::query(
            "INSERT INTO audit_events (at, event, user_id, client_id, address, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
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
impl AuditStore for PostgresStore {
    async fn append_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        // Serialized before the transaction opens, so only the inserts can fail in it.
        let details = events
            .iter()
            .map(|event| serde_json::to_string(&event.detail))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = append_audit_events_in(&mut tx, events, &details).await;
        finish(tx, outcome).await
    }

    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        // Only fixed fragments make up the SQL; every value is bound.
        let mut sql = String::from(
            "SELECT at, event, user_id, client_id, address, detail FROM audit_events WHERE at >= $1",
        );
        let mut values: Vec<&str> = Vec::new();
        for (column, value) in [
            ("user_id", filter.user_id.as_deref()),
            ("client_id", filter.client_id.as_deref()),
            ("event", filter.event.as_deref()),
        ] {
            if let Some(value) = value {
                values.push(value);
                sql.push_str(&format!(" AND {column} = ${}", values.len() + 1));
            }
        }
        sql.push_str(&format!(
            " ORDER BY at DESC, id DESC LIMIT ${}",
            values.len() + 2
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(filter.since.unwrap_or(i64::MIN));
        for value in values {
            query = query.bind(value);
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(query_error)?;
        rows.iter().map(audit_event).collect()
    }

    async fn purge_audit_events(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
        // A bounded batch, oldest first: never one long delete.
        let deleted = sqlx::query(
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE at < $1 ORDER BY at, id LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(deleted)
    }
}

fn audit_event(row: &PgRow) -> Result<AuditEvent, StoreError> {
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
