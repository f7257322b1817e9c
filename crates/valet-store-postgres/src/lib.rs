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
//!
//! The writes on the token path (code redemption, refresh rotation, the records of
//! issued tokens, new grants) go through group commit
//! ([`valet_store_sql::batch`]): a few committers each take what queued while the
//! previous batch ran and commit it in one transaction, each write in a savepoint
//! of its own. A batch holds the row locks of all its writes until it commits, so
//! a revocation (which locks the grants it revokes) may wait for a whole batch;
//! should two batches, or a batch and a revocation of several grants, lock the same
//! grants in opposite orders, PostgreSQL's deadlock detection fails one statement
//! after `deadlock_timeout`, and only that write answers an error.

mod grants;
mod mfa;
mod sessions;
mod shared;
mod status;
mod users;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, SqlSafeStr, Transaction};
use valet_core::audit::{AuditEvent, AuditFilter, AuditKind};
use valet_core::store::{
    AuditStore, AuthorizationCode, Client, ClientStore, CodeFamily, CodeRedemption, Consent,
    FormStore, FormWrite, FormWritten, Grant, GrantStore, InitialAccessToken, KeyInsert, KeyStore,
    MAX_ACCESS_TOKEN_TTL, MailOutcome, OutboxMail, OutboxStore, PasskeyRecord, PasskeyStore,
    RefreshFamily, RefreshToken, RegistrationStore, RevocationStore, RevokedToken, Rotation,
    Session, SessionStore, SingleUse, SingleUseKind, SingleUseStore, StatusRevocation, StatusStore,
    Store, StoreError, StoredKey, Upstream, UpstreamKind, UpstreamLink, UpstreamStore, User,
    UserStore,
};
use valet_store_sql::batch::GroupCommit;
use valet_store_sql::{
    backend, finish, from_json, from_names, get, names_json, parse_name, query_error, to_json,
    union_into,
};

/// Connections per node.
const MAX_CONNECTIONS: u32 = 10;
/// How long a call waits for a free connection before it fails.
/// Group commit's committers: while one batch commits, the next fills and runs on
/// another connection.
const COMMITTERS: usize = 4;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Session advisory lock held while creating the schema and migrating it: ASCII
/// "valetmig". sqlx's migrator takes its own lock (per database) inside it as well.
const MIGRATION_LOCK: i64 = 0x7661_6c65_746d_6967;

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Group commit of the token path's writes, on connections of `pool`.
    commits: GroupCommit<Postgres>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date. Tables
    /// live in the first schema of the connection's `search_path`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        Self::connect_with(options, None).await
    }

    /// Like [`PostgresStore::connect`], but only if Valet's schema is already in
    /// the database (pending migrations are applied); `None` if it is not, and
    /// then nothing is created. For every command but the ones that may create a
    /// store.
    pub async fn connect_existing(url: &str) -> Result<Option<Self>, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        Self::connect_inner(options, None, false).await
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
        Self::connect_inner(options, schema, true)
            .await?
            .ok_or_else(|| StoreError::Backend("the schema was not created".into()))
    }

    async fn connect_inner(
        options: PgConnectOptions,
        schema: Option<&str>,
        create: bool,
    ) -> Result<Option<Self>, StoreError> {
        let options = valet_store_sql::quiet_statements(options).application_name("valet");

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
        let migrated = migrate(&mut conn, schema, create).await;
        if migrated.is_err() {
            conn.close_on_drop();
        }
        drop(conn);
        if migrated? {
            Ok(Some(Self {
                commits: GroupCommit::start(pool.clone(), None, COMMITTERS),
                pool,
            }))
        } else {
            pool.close().await;
            Ok(None)
        }
    }

    /// Transactions group commit has committed since the store opened, and the
    /// writes they held.
    pub fn group_commit_counts(&self) -> (u64, u64) {
        self.commits.counts()
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates `schema` if needed and applies pending migrations, holding
/// [`MIGRATION_LOCK`] throughout (`CREATE SCHEMA IF NOT EXISTS` alone is not safe
/// when several nodes run it at once). Without `create`, a database (or schema)
/// that Valet has never migrated is left alone and `false` returned.
async fn migrate(
    conn: &mut PgConnection,
    schema: Option<&str>,
    create: bool,
) -> Result<bool, StoreError> {
    advisory(conn, "SELECT pg_advisory_lock($1)").await?;
    if !create && !has_migrations_table(conn).await? {
        advisory(conn, "SELECT pg_advisory_unlock($1)").await?;
        return Ok(false);
    }
    if let Some(schema) = schema {
        create_schema_if_missing(conn, schema).await?;
    }
    // `run_direct` is what `run` calls; `run(&mut conn)` itself makes the future
    // fail the `Send` check ("implementation of `Acquire` is not general enough").
    migrator()
        .run_direct(None, &mut *conn, false)
        .await
        .map_err(backend)?;
    advisory(conn, "SELECT pg_advisory_unlock($1)").await?;
    Ok(true)
}

/// Takes or releases [`MIGRATION_LOCK`] (`sql` names the function).
async fn advisory(conn: &mut PgConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::query(sql)
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Whether Valet's schema is there: sqlx's migration table is. `to_regclass`
/// resolves the name through the `search_path`, as every query of the store does.
async fn has_migrations_table(conn: &mut PgConnection) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)
}

/// `schema` is a checked plain identifier.
async fn create_schema_if_missing(conn: &mut PgConnection, schema: &str) -> Result<(), StoreError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
    if !exists {
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

/// The schema's migrations, in order: version, description, SQL. The same
/// numbers as SQLite's, in `migrations/`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "browser flows",
        include_str!("../migrations/0002_browser_flows.sql"),
    ),
    (
        3,
        "status list",
        include_str!("../migrations/0003_status_list.sql"),
    ),
    (
        4,
        "grant resources",
        include_str!("../migrations/0004_grant_resources.sql"),
    ),
    (
        5,
        "audit events",
        include_str!("../migrations/0005_audit_events.sql"),
    ),
    (
        6,
        "client secrets and introspection",
        include_str!("../migrations/0006_client_secrets_and_introspection.sql"),
    ),
    (
        7,
        "operations",
        include_str!("../migrations/0007_operations.sql"),
    ),
    (8, "records", include_str!("../migrations/0008_records.sql")),
    (
        9,
        "mail outbox",
        include_str!("../migrations/0009_mail_outbox.sql"),
    ),
    (
        10,
        "second factors",
        include_str!("../migrations/0010_second_factors.sql"),
    ),
    (
        11,
        "passkeys",
        include_str!("../migrations/0011_passkeys.sql"),
    ),
    (
        12,
        "client allowed origins",
        include_str!("../migrations/0012_client_allowed_origins.sql"),
    ),
    (
        13,
        "client require pushed authorization requests",
        include_str!("../migrations/0013_client_require_par.sql"),
    ),
    (
        14,
        "dpop binding",
        include_str!("../migrations/0014_dpop_binding.sql"),
    ),
    (
        15,
        "client keys and token exchange",
        include_str!("../migrations/0015_client_keys_and_token_exchange.sql"),
    ),
    (
        16,
        "dynamic clients",
        include_str!("../migrations/0016_dynamic_clients.sql"),
    ),
    (
        17,
        "client sealed secret",
        include_str!("../migrations/0017_client_sealed_secret.sql"),
    ),
    (
        18,
        "upstreams",
        include_str!("../migrations/0018_upstreams.sql"),
    ),
    (
        19,
        "client response encryption",
        include_str!("../migrations/0019_client_response_encryption.sql"),
    ),
    (
        20,
        "user admin role",
        include_str!("../migrations/0020_user_admin.sql"),
    ),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Starts a transaction (PostgreSQL locks rows as statements touch them).
async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    pool.begin().await.map_err(backend)
}

fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
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
