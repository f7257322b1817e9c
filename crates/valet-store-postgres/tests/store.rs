//! The PostgreSQL store against the shared conformance suite, plus concurrent
//! start-up. Needs `VALET_TEST_DATABASE_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); without it the tests say so loudly
//! and pass, unless `VALET_REQUIRE_POSTGRES=1` (as in CI), where they fail.
//!
//! Every test works in a fresh schema of its own and drops it at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

use std::future::Future;
use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use valet_core::store::{
    Client, ClientStore, Grant, GrantStore, Interaction, SingleUseStore, StatusStore, Store,
    StoreError,
};
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};
use valet_store_conformance as conformance;
use valet_store_postgres::PostgresStore;

fn database_url() -> Option<String> {
    match std::env::var("VALET_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("VALET_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("VALET_REQUIRE_POSTGRES=1 but VALET_TEST_DATABASE_URL is not set")
        }
        _ => {
            // Straight to stderr, past the test harness's output capture, once.
            static ONCE: Once = Once::new();
            ONCE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: VALET_TEST_DATABASE_URL is not set; \
                     PostgreSQL store tests did not run"
                );
            });
            None
        }
    }
}

fn unique_schema(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "valet_test_{label}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `test` with a fresh schema name, then drops the schema whether the test
/// passed or not (a panic is re-raised afterwards).
async fn with_schema<F, Fut>(url: &str, label: &str, test: F)
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let schema = unique_schema(label);
    let outcome = tokio::spawn(test(url.to_owned(), schema.clone())).await;

    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(url) = database_url() else { return };
    with_schema(&url, "conformance", |url, schema| async move {
        let store = PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap();
        conformance::run_all(&store).await;
        store.close().await;
    })
    .await;
}

/// The suite twice on one schema, across a reconnect: nothing depends on fresh
/// tables, and migrating an up-to-date schema is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_twice_on_one_schema() {
    let Some(url) = database_url() else { return };
    with_schema(&url, "twice", |url, schema| async move {
        for _ in 0..2 {
            let store = PostgresStore::connect_with_schema(&url, &schema)
                .await
                .unwrap();
            conformance::run_all(&store).await;
            store.close().await;
        }
    })
    .await;
}

/// Three nodes starting at once on an empty schema: all come up, the schema is
/// migrated once, and they see each other's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_start_on_fresh_schema() {
    let Some(url) = database_url() else { return };
    with_schema(&url, "concurrent", |url, schema| async move {
        let (a, b, c) = tokio::join!(
            PostgresStore::connect_with_schema(&url, &schema),
            PostgresStore::connect_with_schema(&url, &schema),
            PostgresStore::connect_with_schema(&url, &schema),
        );
        let stores = [a.unwrap(), b.unwrap(), c.unwrap()];
        for store in &stores {
            store.ping().await.unwrap();
        }

        let client = client("shared");
        stores[0].insert_client(&client).await.unwrap();
        for store in &stores {
            assert_eq!(
                store.get_client(&client.client_id).await.unwrap(),
                Some(client.clone())
            );
        }

        let mut conn = PgConnection::connect(&url).await.unwrap();
        let applied: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{schema}\"._sqlx_migrations"
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(applied, 20, "each migration applied exactly once");
        conn.close().await.unwrap();

        for store in &stores {
            store.close().await;
        }
    })
    .await;
}

/// The tables live in the requested schema, not in `public`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_live_in_the_schema() {
    let Some(url) = database_url() else { return };
    with_schema(&url, "placement", |url, schema| async move {
        let store = PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap();
        store.close().await;

        let mut conn = PgConnection::connect(&url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = $1 ORDER BY table_name",
        )
        .bind(&schema)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            tables,
            [
                "_sqlx_migrations",
                "audit_events",
                "authorization_codes",
                "clients",
                "consents",
                "grant_access_tokens",
                "grants",
                "initial_access_tokens",
                "mail_outbox",
                "meta",
                "passkeys",
                "recovery_codes",
                "refresh_tokens",
                "revoked_tokens",
                "sessions",
                "signing_keys",
                "single_use",
                "status_allocator",
                "status_blocks",
                "status_revocations",
                "totp_credentials",
                "upstream_links",
                "upstreams",
                "users",
            ]
        );
        conn.close().await.unwrap();
    })
    .await;
}

/// `connect` puts the tables in the first schema of the URL's `search_path`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_follows_the_url_search_path() {
    let Some(url) = database_url() else { return };
    with_schema(&url, "plain", |url, schema| async move {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut conn)
            .await
            .unwrap();

        let separator = if url.contains('?') { '&' } else { '?' };
        let store =
            PostgresStore::connect(&format!("{url}{separator}options[search_path]={schema}"))
                .await
                .unwrap();
        let client = client("plain");
        store.insert_client(&client).await.unwrap();
        store.close().await;

        let name: String = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT name FROM \"{schema}\".clients WHERE client_id = 'plain'"
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(name, client.name);
        conn.close().await.unwrap();
    })
    .await;
}

/// A schema created before 0002 upgrades in place: its clients read back with the
/// defaults of the browser-flow settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_0001_keeps_clients() {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};

    let Some(url) = database_url() else { return };
    with_schema(&url, "upgrade", |url, schema| async move {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(format!("SET search_path TO \"{schema}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
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
             ('old-secret', 'Old secret', '\\x01'::bytea, '[]', '[]', \
             '[\"client_credentials\"]', '[]', '[]', 60, 5, 6)",
        )
        .execute(&mut conn)
        .await
        .unwrap();

        let store = PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap();
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
        for (column, value) in [
            ("grant_types", "'[\"implicit\"]'"),
            ("token_endpoint_auth_methods", "'[\"tls_client_auth\"]'"),
            ("id_token_signed_response_alg", "'HS256'"),
        ] {
            sqlx::query(AssertSqlSafe(format!(
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
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE clients SET {column} = (SELECT {column} FROM clients WHERE client_id = 'old') \
                 WHERE client_id = 'old-secret'"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
        conn.close().await.unwrap();
        store.close().await;
    })
    .await;
}

/// A schema created before 0003 upgrades in place: its grants read back without a
/// status index, and the status list starts at index 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_0002_keeps_grants() {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};

    let Some(url) = database_url() else { return };
    with_schema(&url, "upgrade_0002", |url, schema| async move {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(format!("SET search_path TO \"{schema}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
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
             VALUES ('u', 'user', NULL, FALSE, NULL, NULL, NULL, NULL, FALSE, 5, 6)",
            "INSERT INTO grants (grant_id, client_id, user_id, scope, sid, auth_time, amr, \
             created_at, expires_at, revoked_at) \
             VALUES ('g', 'old', 'u', '[\"openid\"]', 'sid', 7, '[\"pwd\"]', 8, 9, NULL)",
            "INSERT INTO interactions (interaction_id, payload, expires_at) \
             VALUES ('ix', '{\"stage\":1}', 100)",
        ] {
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();

        let store = PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap();
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
        // Migration 0008 moved the pending interaction to the single-use records.
        assert_eq!(
            store.get_interaction("ix", 99).await.unwrap(),
            Some(Interaction {
                interaction_id: "ix".to_owned(),
                payload: r#"{"stage":1}"#.to_owned(),
                expires_at: 100,
            })
        );
        assert!(store.delete_interaction("ix").await.unwrap());
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn bad_schema_names_are_refused() {
    // Refused before any connection is made, so no database is needed.
    for schema in ["", "Public", "a;b", "x\"y", "1abc"] {
        assert!(
            PostgresStore::connect_with_schema("postgres://nobody@127.0.0.1:1/none", schema)
                .await
                .is_err(),
            "{schema:?}"
        );
    }
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
