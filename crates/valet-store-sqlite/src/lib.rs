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
//! The writes on the token path (code redemption, refresh rotation, the records of
//! issued tokens, new grants) go through group commit
//! ([`valet_store_sql::batch`]): what queues while a transaction commits is
//! committed together in the next one, so many requests share one fsync.
//!
//! The database file is created with mode `0600` before SQLite opens it; SQLite
//! gives its `-wal` and `-shm` files the mode of the database file.

mod grants;
mod mfa;
mod sessions;
mod shared;
mod status;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, SqlSafeStr, Sqlite, Transaction};
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
    /// Group commit of the token path's writes, on `writer`.
    commits: GroupCommit<Sqlite>,
    /// Reads; the same pool as `writer` for an in-memory database.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing, with mode `0600`) the database file at `path`
    /// and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    /// Opens the database file at `path` only if it exists (and brings its schema
    /// up to date); `None` if there is no such file. For every command but the
    /// ones that may create a store.
    pub async fn open_existing(path: &Path) -> Result<Option<Self>, StoreError> {
        if !path.is_file() {
            return Ok(None);
        }
        Self::open(path).await.map(Some)
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
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(backend)?;
        let options = valet_store_sql::quiet_statements(options)
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
            commits: GroupCommit::start(pool.clone(), Some(BEGIN_WRITE), 1),
            writer: pool.clone(),
            reader: pool,
        })
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        create_private_file(options.get_filename())?;
        let options = valet_store_sql::quiet_statements(options)
            .create_if_missing(false)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full);

        // The writer opens first and switches the file to WAL (a persistent setting
        // that needs an exclusive lock); readers then need not touch it.
        let writer = connect_writer(options.clone().journal_mode(SqliteJournalMode::Wal)).await?;
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
        Ok(Self {
            commits: GroupCommit::start(writer.clone(), Some(BEGIN_WRITE), 1),
            writer,
            reader,
        })
    }

    /// Transactions group commit has committed since the store opened, and the
    /// writes they held.
    pub fn group_commit_counts(&self) -> (u64, u64) {
        self.commits.counts()
    }

    /// Closes every connection; with WAL, the last one checkpoints and removes the
    /// `-wal` and `-shm` files.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The writer's pool. Switching a new file to WAL needs an exclusive lock, and
/// SQLite answers `SQLITE_BUSY` at once, without its busy handler, while another
/// process holds the file (`valet serve` and a CLI command opening a new data
/// directory together): retried here for up to the busy timeout.
async fn connect_writer(options: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let connected = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await;
        match connected {
            Err(sqlx::Error::Database(err))
                if is_busy(err.code().as_deref()) && started.elapsed() < BUSY_TIMEOUT =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            connected => return connected.map_err(backend),
        }
    }
}

/// Whether `code`, an extended result code as sqlx reports it, is one of
/// `SQLITE_BUSY`'s (the primary code is its low byte).
fn is_busy(code: Option<&str>) -> bool {
    const SQLITE_BUSY: i32 = 5;
    code.and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == SQLITE_BUSY)
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

/// Every migration, in order: version, description, SQL.
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

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let migrator = Migrator::with_migrations(
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
    );
    // sqlx takes no lock around migrations on SQLite, so two processes opening a
    // new file at once (`valet serve` and a CLI command) would both see a
    // migration pending and the second would fail applying it again. Under
    // SQLite's write lock, held from the check to the commit, the second waits
    // (busy timeout) and finds everything applied. Each migration runs in a
    // savepoint of this transaction: if one fails, the schema stays as it was
    // before this open.
    let mut tx = pool.begin_with(BEGIN_WRITE).await.map_err(backend)?;
    migrator
        .run_direct(None, &mut *tx, false)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

/// Starts a write transaction on the writer. `BEGIN IMMEDIATE` takes SQLite's
/// write lock up front, so a transaction that reads before it writes never has to
/// upgrade its lock (which another process holding it would make fail at once).
async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin_with(BEGIN_WRITE).await.map_err(backend)
}

const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// `synchronous`, `foreign_keys` and `busy_timeout` are per connection: check
    /// them on connections of both pools.
    #[tokio::test]
    async fn connection_pragmas() {
        let path = temp_database("pragmas");
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
        remove_database(&path);
    }

    /// `valet serve` and a CLI command started together on a new data directory
    /// both open, and so migrate, the same new file: each must find the schema
    /// either untouched or complete, never apply a migration the other applied.
    #[tokio::test]
    async fn concurrent_opens_of_a_new_file_migrate_once() {
        let path = temp_database("concurrent-migrations");
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteStore::open(&path).await })
            })
            .collect();
        let mut stores = Vec::new();
        for (index, open) in opens.into_iter().enumerate() {
            match open.await.unwrap() {
                Ok(store) => stores.push(store),
                Err(err) => panic!("open {index} failed: {err}"),
            }
        }
        let store = stores.first().unwrap();
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        let expected: Vec<i64> = MIGRATIONS.iter().map(|&(version, ..)| version).collect();
        assert_eq!(applied, expected);
        for store in &stores {
            store.close().await;
        }
        remove_database(&path);
    }

    #[test]
    fn busy_codes_are_recognized_with_their_extended_forms() {
        for busy in ["5", "261", "517", "773"] {
            assert!(is_busy(Some(busy)), "{busy}");
        }
        for other in [None, Some("6"), Some("1"), Some("2067"), Some("not a code")] {
            assert!(!is_busy(other), "{other:?}");
        }
    }

    fn temp_database(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "valet-store-unit-{name}-{}-{}.db",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ))
    }

    fn remove_database(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.to_path_buf().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}
