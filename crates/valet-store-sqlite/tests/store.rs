//! The SQLite store against the shared conformance suite, plus what is specific to
//! SQLite: file modes, journal mode, reopening.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use valet_core::store::{
    AuthorizationCode, Client, ClientStore, Grant, GrantStore, RefreshToken, RevocationStore,
    Rotation, StatusStore, StoreError, User, UserStore,
};
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};
use valet_store_conformance as conformance;
use valet_store_sqlite::SqliteStore;

/// A database path in the temp dir, removed (with `-wal` and `-shm`) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "valet-store-test-{label}-{}-{nanos}-{}.db",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Self(std::env::temp_dir().join(name))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.0.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for path in [self.0.clone(), self.sibling("-wal"), self.sibling("-shm")] {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_file() {
    let db = TempDb::new("conformance");
    let path = db.path().to_owned();
    // Spawned, which also proves the store's futures are `Send + 'static`-friendly.
    tokio::spawn(async move {
        let store = SqliteStore::open(&path).await.unwrap();
        conformance::run_all(&store).await;
        store.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_url() {
    let db = TempDb::new("url");
    let url = format!("sqlite://{}", db.path().display());
    let store = SqliteStore::open_url(&url).await.unwrap();
    conformance::run_all(&store).await;
    store.close().await;
}

#[tokio::test]
async fn conformance_in_memory() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    conformance::run_all(&store).await;
}

/// The suite twice on one database: nothing depends on a fresh file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_twice_on_one_file() {
    let db = TempDb::new("twice");
    let store = SqliteStore::open(db.path()).await.unwrap();
    conformance::run_all(&store).await;
    store.close().await;
    let store = SqliteStore::open(db.path()).await.unwrap();
    conformance::run_all(&store).await;
    store.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_private_and_journal_is_wal() {
    use std::os::unix::fs::PermissionsExt;

    let db = TempDb::new("modes");
    let store = SqliteStore::open(db.path()).await.unwrap();
    // A write makes sure the WAL exists and has been written to.
    store.insert_client(&client("modes")).await.unwrap();

    for path in [db.path().to_owned(), db.sibling("-wal"), db.sibling("-shm")] {
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{} has mode {:o}",
            path.display(),
            mode
        );
    }
    store.close().await;

    // The journal mode is persistent in the file: check it from a plain connection.
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.path().display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn data_survives_reopening() {
    let db = TempDb::new("reopen");
    let store = SqliteStore::open(db.path()).await.unwrap();
    let client = client("reopen");
    store.insert_client(&client).await.unwrap();
    store.close().await;

    // Reopening runs the migrations again: they must see themselves applied.
    let store = SqliteStore::open(db.path()).await.unwrap();
    assert_eq!(
        store.get_client(&client.client_id).await.unwrap(),
        Some(client)
    );
    store.close().await;
}

/// A database created before 0002 upgrades in place: its clients read back with
/// the defaults of the browser-flow settings.
#[tokio::test]
async fn upgrade_from_0001_keeps_clients() {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use sqlx::{Connection, SqlSafeStr};

    let db = TempDb::new("upgrade");
    std::fs::File::create(db.path()).unwrap();
    let url = format!("sqlite://{}", db.path().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    Migrator::with_migrations(vec![Migration::new(
        1,
        "initial".into(),
        MigrationType::Simple,
        include_str!("../migrations/0001_initial.sql").into_sql_str(),
        false,
    )])
    .run_direct(None, &mut conn, false)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO clients (client_id, name, secret_hash, redirect_uris, \
         post_logout_redirect_uris, grant_types, scopes, audiences, access_token_ttl, \
         created_at, updated_at) VALUES ('old', 'Old', NULL, '[]', '[]', \
         '[\"client_credentials\"]', '[]', '[]', 60, 5, 6), \
         ('old-secret', 'Old secret', X'01', '[]', '[]', \
         '[\"client_credentials\"]', '[]', '[]', 60, 5, 6)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let store = SqliteStore::open(db.path()).await.unwrap();
    assert_eq!(
        store.get_client("old").await.unwrap(),
        Some(Client {
            client_id: "old".to_owned(),
            name: "Old".to_owned(),
            token_endpoint_auth_methods: vec![TokenEndpointAuthMethod::None],
            secret_hash: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            allowed_origins: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: vec![],
            audiences: vec![],
            access_token_ttl: Some(60),
            skip_consent: false,
            require_mfa: false,
            require_pushed_authorization_requests: false,
            refresh_grace_seconds: 0,
            id_token_signed_response_alg: None,
            created_at: 5,
            updated_at: 6,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            introspect_any: false,
            dpop_bound_access_tokens: false,
            jwks: None,
            jwks_uri: None,
            token_exchange_audiences: Vec::new(),
            registration_token_hash: None,
            metadata_expires_at: None,
            sealed_secret: None,
            id_token_encryption: None,
            userinfo_signed_response_alg: None,
            userinfo_encryption: None,
        })
    );
    // Migration 0008: a client with a secret may send it either way, as before.
    assert_eq!(
        store
            .get_client("old-secret")
            .await
            .unwrap()
            .unwrap()
            .token_endpoint_auth_methods,
        [
            TokenEndpointAuthMethod::ClientSecretBasic,
            TokenEndpointAuthMethod::ClientSecretPost
        ]
    );
    // A stored name the code does not know is a corrupt record, not a string.
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (column, value) in [
        ("grant_types", "'[\"implicit\"]'"),
        ("token_endpoint_auth_methods", "'[\"tls_client_auth\"]'"),
        ("id_token_signed_response_alg", "'HS256'"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE clients SET {column} = {value} WHERE client_id = 'old-secret'"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        assert!(
            matches!(
                store.get_client("old-secret").await,
                Err(StoreError::Corrupt(message)) if message.contains(column)
            ),
            "{column}"
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE clients SET {column} = (SELECT {column} FROM clients WHERE client_id = 'old') \
             WHERE client_id = 'old-secret'"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
    store.close().await;
}

/// A database created before 0003 upgrades in place: its grants read back without
/// a status index, and the status list starts at index 0.
#[tokio::test]
async fn upgrade_from_0002_keeps_grants() {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use sqlx::{Connection, SqlSafeStr};

    let db = TempDb::new("upgrade-0002");
    std::fs::File::create(db.path()).unwrap();
    let url = format!("sqlite://{}", db.path().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    Migrator::with_migrations(vec![
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
    ])
    .run_direct(None, &mut conn, false)
    .await
    .unwrap();
    for statement in [
        "INSERT INTO clients (client_id, name, secret_hash, redirect_uris, \
         post_logout_redirect_uris, grant_types, scopes, audiences, access_token_ttl, \
         created_at, updated_at) VALUES ('old', 'Old', NULL, '[]', '[]', \
         '[\"authorization_code\"]', '[]', '[]', NULL, 5, 6)",
        "INSERT INTO users (user_id, username, email, email_verified, name, given_name, \
         family_name, password_hash, disabled, created_at, updated_at) \
         VALUES ('u', 'user', NULL, 0, NULL, NULL, NULL, NULL, 0, 5, 6)",
        "INSERT INTO grants (grant_id, client_id, user_id, scope, sid, auth_time, amr, \
         created_at, expires_at, revoked_at) \
         VALUES ('g', 'old', 'u', '[\"openid\"]', 'sid', 7, '[\"pwd\"]', 8, 9, NULL)",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = SqliteStore::open(db.path()).await.unwrap();
    assert_eq!(
        store.get_grant("g").await.unwrap(),
        Some(Grant {
            grant_id: "g".to_owned(),
            client_id: "old".to_owned(),
            user_id: "u".to_owned(),
            scope: vec!["openid".to_owned()],
            sid: Some("sid".to_owned()),
            auth_time: 7,
            amr: vec!["pwd".to_owned()],
            created_at: 8,
            expires_at: 9,
            revoked_at: None,
            status_idx: None,
            resources: vec![],
        })
    );
    assert_eq!(
        store.reserve_status_block("old", 4, 10, 5).await.unwrap(),
        Some(0)
    );
    assert_eq!(
        store.reserve_status_block("old", 1, 10, 5).await.unwrap(),
        Some(4)
    );
    assert_eq!(store.last_status_seq().await.unwrap(), 0);
    store.close().await;
}

/// Group commit: writes issued while a transaction commits share the next one.
/// Sixty-four access-token records sent at once take far fewer transactions than
/// writes, and every one of them is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_transactions() {
    const WRITES: u64 = 64;
    let db = TempDb::new("group-commit");
    let store = std::sync::Arc::new(SqliteStore::open(db.path()).await.unwrap());
    store.insert_client(&client("batched")).await.unwrap();
    store.insert_user(&user("batched-user")).await.unwrap();
    let (grant, code) = grant_with_code("batched", "batched-user");
    store.insert_grant_with_code(&grant, &code).await.unwrap();
    let (batches_before, writes_before) = store.group_commit_counts();

    let tasks: Vec<_> = (0..WRITES)
        .map(|i| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .record_issued("batched-grant", &format!("jti-{i}"), i64::MAX / 2, None)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let (batches, writes) = store.group_commit_counts();
    assert_eq!(writes - writes_before, WRITES, "every write was committed");
    let transactions = batches - batches_before;
    assert!(
        transactions < WRITES / 2,
        "{WRITES} concurrent writes took {transactions} transactions"
    );
    // Each of them is recorded: revoking the grant revokes all 64.
    assert!(store.revoke_grant("batched-grant", 3).await.unwrap());
    for i in 0..WRITES {
        assert!(store.is_revoked(&format!("jti-{i}")).await.unwrap());
    }
    store.close().await;
}

/// Batches that hold a write failing half-way (a rotation whose successor's hash
/// is taken: the token row is updated, then the insert fails) are run again with
/// a savepoint per write: each failed rotation leaves its token as it was, and
/// every other write of those batches is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failing_half_way_undoes_only_itself() {
    const FAMILIES: usize = 48;
    let db = TempDb::new("half-way");
    let store = std::sync::Arc::new(SqliteStore::open(db.path()).await.unwrap());
    store.insert_client(&client("half")).await.unwrap();
    store.insert_user(&user("half-user")).await.unwrap();
    let (grant, code) = grant_with_code("half", "half-user");
    store.insert_grant_with_code(&grant, &code).await.unwrap();
    let token = |name: String| RefreshToken {
        token_hash: name.into_bytes(),
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        scope: grant.scope.clone(),
        created_at: 1,
        expires_at: i64::MAX / 2,
        rotated_at: None,
        sealed_successor: None,
        dpop_jkt: None,
    };
    let taken = token("taken".to_owned());
    store.insert_refresh_token(&taken).await.unwrap();
    for i in 0..FAMILIES {
        store
            .insert_refresh_token(&token(format!("presented-{i}")))
            .await
            .unwrap();
    }
    let (batches_before, _) = store.group_commit_counts();

    // Every third rotation clashes with `taken`.
    let failing = |i: usize| i.is_multiple_of(3);
    let tasks: Vec<_> = (0..FAMILIES)
        .map(|i| {
            let store = std::sync::Arc::clone(&store);
            let presented = format!("presented-{i}").into_bytes();
            let successor = if failing(i) {
                taken.clone()
            } else {
                token(format!("successor-{i}"))
            };
            let jti = format!("jti-{i}");
            tokio::spawn(async move {
                store
                    .rotate_refresh_token(&presented, &successor, None, Some((&jti, 5)), 2)
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }

    let (batches, _) = store.group_commit_counts();
    assert!(
        batches - batches_before < FAMILIES as u64 / 2,
        "the rotations shared transactions ({} for {FAMILIES})",
        batches - batches_before
    );
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let presented = store
            .get_refresh_token(format!("presented-{i}").as_bytes())
            .await
            .unwrap()
            .unwrap();
        if failing(i) {
            assert!(
                matches!(outcome, Err(StoreError::Conflict)),
                "{i}: {outcome:?}"
            );
            assert_eq!(
                presented.rotated_at, None,
                "{i}: a failed rotation is undone"
            );
        } else {
            assert!(matches!(outcome, Ok(Rotation::Rotated { .. })), "{i}");
            assert_eq!(presented.rotated_at, Some(2), "{i}");
            let successor = store
                .get_refresh_token(format!("successor-{i}").as_bytes())
                .await
                .unwrap();
            assert!(successor.is_some(), "{i}: the successor is stored");
        }
    }
    // Only the good rotations' access tokens were recorded: revoking the grant
    // revokes those.
    assert!(store.revoke_grant(&grant.grant_id, 3).await.unwrap());
    for i in 0..FAMILIES {
        let revoked = store.is_revoked(&format!("jti-{i}")).await.unwrap();
        assert_eq!(revoked, !failing(i), "{i}");
    }
    store.close().await;
}

/// Group commit's committer runs on the runtime the store was opened on; a store
/// used on another runtime once that one is gone (as tools and tests do) starts a
/// new committer there, and its writes still commit.
#[test]
fn writes_outlive_the_runtime_that_opened_the_store() {
    let db = TempDb::new("runtimes");
    let first = tokio::runtime::Runtime::new().unwrap();
    let store = first.block_on(SqliteStore::open(db.path())).unwrap();
    first.block_on(async {
        store.insert_client(&client("runtimes")).await.unwrap();
        store.insert_user(&user("runtimes-user")).await.unwrap();
    });
    drop(first);
    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let (grant, code) = grant_with_code("runtimes", "runtimes-user");
        store.insert_grant_with_code(&grant, &code).await.unwrap();
        assert_eq!(store.get_grant(&grant.grant_id).await.unwrap(), Some(grant));
        store.close().await;
    });
}

#[tokio::test]
async fn in_memory_urls_are_refused() {
    assert!(SqliteStore::open_url("sqlite::memory:").await.is_err());
}

fn client(client_id: &str) -> Client {
    Client {
        client_id: client_id.to_owned(),
        name: "Test".to_owned(),
        token_endpoint_auth_methods: vec![TokenEndpointAuthMethod::ClientSecretBasic],
        secret_hash: Some(vec![1; 32]),
        redirect_uris: vec!["https://app.example/cb".to_owned()],
        post_logout_redirect_uris: vec![],
        allowed_origins: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: vec!["openid".to_owned()],
        audiences: vec![],
        access_token_ttl: None,
        skip_consent: false,
        require_mfa: false,
        require_pushed_authorization_requests: false,
        refresh_grace_seconds: 0,
        id_token_signed_response_alg: None,
        created_at: 1,
        updated_at: 1,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        introspect_any: false,
        dpop_bound_access_tokens: false,
        jwks: None,
        jwks_uri: None,
        token_exchange_audiences: Vec::new(),
        registration_token_hash: None,
        metadata_expires_at: None,
        sealed_secret: None,
        id_token_encryption: None,
        userinfo_signed_response_alg: None,
        userinfo_encryption: None,
    }
}

fn user(user_id: &str) -> User {
    User {
        user_id: user_id.to_owned(),
        username: user_id.to_owned(),
        email: None,
        email_verified: false,
        name: None,
        given_name: None,
        family_name: None,
        password_hash: None,
        disabled: false,
        created_at: 1,
        updated_at: 1,
        admin: false,
    }
}

fn grant_with_code(client_id: &str, user_id: &str) -> (Grant, AuthorizationCode) {
    let grant = Grant {
        grant_id: format!("{client_id}-grant"),
        client_id: client_id.to_owned(),
        user_id: user_id.to_owned(),
        scope: vec!["openid".to_owned()],
        sid: None,
        auth_time: 1,
        amr: vec!["pwd".to_owned()],
        created_at: 1,
        expires_at: i64::MAX / 2,
        revoked_at: None,
        status_idx: None,
        resources: vec![],
    };
    let code = AuthorizationCode {
        code_hash: format!("{client_id}-code").into_bytes(),
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: String::new(),
        code_challenge: "challenge".to_owned(),
        nonce: None,
        scope: grant.scope.clone(),
        resources: vec![],
        created_at: 1,
        expires_at: 2,
        consumed_at: None,
        dpop_jkt: None,
    };
    (grant, code)
}
