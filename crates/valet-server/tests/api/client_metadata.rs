//! Client ID Metadata Documents from the outside: a client whose id is the URL
//! of its document signs users in (consent every time, the site shown); the
//! document is fetched once and cached within bounds; documents that lie about
//! their id, are too large, redirect, or sit at a private address (SSRF) are
//! refused before anything is fetched or stored. On SQLite and PostgreSQL.
//!
//! The documents are served on loopback by a small server in the test, with
//! the development escape hatch on (an http issuer); the address checks are
//! also tested with it off.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use valet_core::Settings;
use valet_core::dynamic_clients::document::{DocumentFetcher, FetchError, FetchedDocument};
use valet_test_support::api::*;

const LOOPBACK_ISSUER: &str = "http://127.0.0.1:9";

fn cimd_settings() -> Settings {
    let mut settings = Settings::new(LOOPBACK_ISSUER);
    settings.dynamic_clients.metadata_documents = true;
    settings.dynamic_clients.dangerous_metadata_allow_loopback = true;
    settings.dynamic_clients.metadata_min_ttl = 60;
    settings.dynamic_clients.metadata_max_ttl = 600;
    settings
}

/// Serves documents on 127.0.0.1; counts the fetches of `/client.json`.
struct DocumentServer {
    base: String,
    fetches: Arc<AtomicUsize>,
}

impl DocumentServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let document = |client_id: String| {
            json!({
                "client_id": client_id,
                "client_name": "Agent Smith",
                "redirect_uris": [WEB_REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "scope": "openid profile",
            })
        };
        let good = {
            let (base, fetches) = (base.clone(), Arc::clone(&fetches));
            move || {
                fetches.fetch_add(1, Ordering::SeqCst);
                let body = document(format!("{base}/client.json"));
                async move { ([("cache-control", "max-age=300")], axum::Json(body)) }
            }
        };
        let mismatch = {
            let base = base.clone();
            move || {
                let body = document(format!("{base}/client.json"));
                async move { axum::Json(body) }
            }
        };
        let big = {
            let base = base.clone();
            move || {
                let mut body = document(format!("{base}/big.json"));
                body["client_name"] = json!("x".repeat(6000));
                async move { axum::Json(body) }
            }
        };
        let skip = {
            let base = base.clone();
            move || {
                let mut body = document(format!("{base}/skip.json"));
                body["skip_consent"] = json!(true);
                async move { axum::Json(body) }
            }
        };
        let secret = {
            let base = base.clone();
            move || {
                let mut body = document(format!("{base}/secret.json"));
                body["token_endpoint_auth_method"] = json!("client_secret_basic");
                async move { axum::Json(body) }
            }
        };
        let redirect = {
            let base = base.clone();
            move || {
                let to = format!("{base}/client.json");
                async move { (StatusCode::FOUND, [("location", to)]).into_response() }
            }
        };
        let app = Router::new()
            .route("/client.json", get(good))
            .route("/mismatch.json", get(mismatch))
            .route("/big.json", get(big))
            .route("/skip.json", get(skip))
            .route("/secret.json", get(secret))
            .route("/redirect.json", get(redirect));
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, fetches }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

async fn on_both_stores(settings: impl Fn() -> Settings, test: impl AsyncFn(&TestApp)) {
    test(&TestApp::with_settings(settings()).await).await;
    if let Some((app, schema)) = TestApp::on_postgres_with(settings()).await {
        test(&app).await;
        TestApp::drop_postgres_schema(&schema).await;
    }
}

/// alice through authorize → login → consent for `client_id`; the consent
/// page and the code.
async fn authorize(app: &TestApp, browser: &mut Browser, client_id: &str, pkce: &Pkce) -> Reply {
    browser
        .get(
            app,
            &authorize_path(&encode(client_id), pkce, "openid profile", ""),
        )
        .await
}

async fn public_redeem(app: &TestApp, client_id: &str, code: &str, verifier: &str) -> Reply {
    app.post(
        "/token",
        None,
        &format!(
            "grant_type=authorization_code&client_id={}&code={}&redirect_uri={}&code_verifier={verifier}",
            encode(client_id),
            encode(code),
            encode(WEB_REDIRECT)
        ),
    )
    .await
}

#[tokio::test]
async fn a_client_known_by_its_document_signs_users_in() {
    on_both_stores(cimd_settings, async |app: &TestApp| {
        let documents = DocumentServer::start().await;
        let client_id = documents.url("/client.json");
        let discovery = app.get("/.well-known/openid-configuration").await.json();
        assert_eq!(discovery["client_id_metadata_document_supported"], true);
        app.user("alice").await;

        for round in 0..2 {
            let mut browser = Browser::default();
            let pkce = Pkce::new();
            let page = authorize(app, &mut browser, &client_id, &pkce).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text());
            let consent = browser
                .post(app, "/login", &login_form(&page, "alice", PASSWORD))
                .await;
            // Consent every time, with the site that published the document.
            let text = consent.text();
            assert!(text.contains("name=\"decision\""), "round {round}: {text}");
            assert!(text.contains("Agent Smith"));
            assert!(
                text.contains(&format!(
                    "<strong>{}</strong>",
                    documents.base.trim_start_matches("http://")
                )),
                "{text}"
            );
            let reply = browser
                .post(app, "/consent", &consent_form(&consent, "allow"))
                .await;
            let params = location_params(&reply);
            let tokens = public_redeem(app, &client_id, &params["code"], &pkce.verifier).await;
            assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
            let (_, claims) = decode_jwt(tokens.json()["access_token"].as_str().unwrap());
            assert_eq!(claims["client_id"], client_id.as_str());
        }
        // Fetched once: the copy lives 300 s (its max-age, within 60..600).
        assert_eq!(documents.fetches.load(Ordering::SeqCst), 1);
        let stored = app.admin().get_client(&client_id).await.unwrap();
        assert_eq!(stored.origin, "metadata_document");
        assert_eq!(stored.kind, "public");
        assert!(!stored.skip_consent);
        app.clock.advance(301);
        let mut browser = Browser::default();
        let page = authorize(app, &mut browser, &client_id, &Pkce::new()).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(documents.fetches.load(Ordering::SeqCst), 2);

        // Concurrent first uses of another app fetch once (single flight).
        let app2_fetches = documents.fetches.load(Ordering::SeqCst);
        app.clock.advance(301);
        let pkce = Pkce::new();
        let path = authorize_path(&encode(&client_id), &pkce, "openid", "");
        let (a, b, c) = tokio::join!(app.get(&path), app.get(&path), app.get(&path));
        for reply in [a, b, c] {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        }
        assert_eq!(documents.fetches.load(Ordering::SeqCst), app2_fetches + 1);
    })
    .await;
}

/// Each bad document: the authorization request shows the unknown-application
/// page, and nothing is stored.
#[tokio::test]
async fn bad_documents_are_refused() {
    on_both_stores(cimd_settings, async |app: &TestApp| {
        let documents = DocumentServer::start().await;
        for path in [
            "/mismatch.json",
            "/big.json",
            "/redirect.json",
            "/skip.json",
            "/secret.json",
            "/missing.json",
        ] {
            let client_id = documents.url(path);
            let page = app
                .get(&authorize_path(
                    &encode(&client_id),
                    &Pkce::new(),
                    "openid",
                    "",
                ))
                .await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(
                page.text().contains("not registered"),
                "{path}: {}",
                page.text()
            );
            assert!(app.admin().get_client(&client_id).await.is_err(), "{path}");
        }
        // The redirect was not followed.
        assert_eq!(documents.fetches.load(Ordering::SeqCst), 0);
        // Nor is a public client of such an id accepted at the token endpoint.
        public_redeem(app, &documents.url("/mismatch.json"), "x", &"a".repeat(43))
            .await
            .assert_error(401, "invalid_client");
    })
    .await;
}

/// Server-side request forgery: ids that point at private, link-local (cloud
/// metadata) or loopback addresses are not fetched. With the escape hatch on,
/// only loopback is allowed; off, loopback is refused too, also behind a name.
#[tokio::test]
async fn documents_at_private_addresses_are_not_fetched() {
    let refused = [
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/client.json",
        "https://192.168.1.1/client.json",
        "https://[fd00::1]/client.json",
        "https://[::ffff:10.0.0.1]/client.json",
        "http://10.0.0.1/client.json",
        "https://user@app.example/client.json",
    ];
    let app = TestApp::with_settings(cimd_settings()).await;
    for client_id in refused {
        let page = app
            .get(&authorize_path(
                &encode(client_id),
                &Pkce::new(),
                "openid",
                "",
            ))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{client_id}");
    }
    let documents = DocumentServer::start().await;
    let mut strict = settings();
    strict.dynamic_clients.metadata_documents = true;
    let app = TestApp::with_settings(strict).await;
    let port = documents.base.rsplit(':').next().unwrap().to_owned();
    for client_id in [
        documents.url("/client.json"),
        format!("https://127.0.0.1:{port}/client.json"),
        format!("https://localhost:{port}/client.json"),
    ] {
        let page = app
            .get(&authorize_path(
                &encode(&client_id),
                &Pkce::new(),
                "openid",
                "",
            ))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{client_id}");
    }
    assert_eq!(documents.fetches.load(Ordering::SeqCst), 0);
}

/// Switched off (the default), a URL is just an unknown client id: nothing is
/// fetched, and discovery does not offer documents.
#[tokio::test]
async fn documents_are_off_by_default() {
    let documents = DocumentServer::start().await;
    let mut settings = Settings::new(LOOPBACK_ISSUER);
    settings.dynamic_clients.dangerous_metadata_allow_loopback = true;
    let app = TestApp::with_settings(settings).await;
    let page = app
        .get(&authorize_path(
            &encode(&documents.url("/client.json")),
            &Pkce::new(),
            "openid",
            "",
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(documents.fetches.load(Ordering::SeqCst), 0);
    let discovery: Value = app.get("/.well-known/openid-configuration").await.json();
    assert!(
        discovery
            .get("client_id_metadata_document_supported")
            .is_none()
    );
}

#[test]
fn the_escape_hatch_is_refused_with_an_https_issuer() {
    let mut settings = settings();
    settings.dynamic_clients.dangerous_metadata_allow_loopback = true;
    let error = settings.validate().unwrap_err();
    assert!(
        error.contains("dangerous_client_metadata_allow_loopback"),
        "{error}"
    );
}

/// Documents served from memory, by URL: the SDK test below needs an https
/// client id, which the test cannot serve with a certificate Valet trusts.
/// The HTTP fetcher and its guards are tested above; this exercises the rest
/// of the path (checks, storage, caching, consent) with the real MCP SDK.
struct StaticDocuments {
    url: String,
    body: Vec<u8>,
    fetches: AtomicUsize,
}

#[async_trait::async_trait]
impl DocumentFetcher for StaticDocuments {
    async fn fetch(&self, url: &str) -> Result<FetchedDocument, FetchError> {
        if url != self.url {
            return Err(FetchError("no such document".to_owned()));
        }
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(FetchedDocument {
            body: self.body.clone(),
            max_age: Some(3600),
        })
    }
}

/// The MCP TypeScript SDK's `auth()`, unchanged, with a `clientMetadataUrl`:
/// it sees `client_id_metadata_document_supported` in Valet's metadata, uses
/// the URL as its client id without registering (registration is closed),
/// sends the user to authorize with PKCE and the MCP server as `resource`;
/// Valet fetches the document, the test signs alice in and allows (consent
/// shows the document's site), the SDK redeems the code and later refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_sdk_authorizes_with_a_metadata_document() {
    if !node_package_available(
        "@modelcontextprotocol/sdk",
        "the MCP SDK metadata document test",
    ) {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let mcp = format!("{origin}/mcp");
    let client_id = "https://agent.example/oauth/client.json";
    let mut settings = Settings::new(origin.clone());
    settings.dynamic_clients.metadata_documents = true;
    settings.dynamic_clients.audiences = vec![mcp.clone()];
    let documents = Arc::new(StaticDocuments {
        url: client_id.to_owned(),
        body: json!({
            "client_id": client_id,
            "client_name": "MCP agent",
            "redirect_uris": ["http://127.0.0.1:33418/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })
        .to_string()
        .into_bytes(),
        fetches: AtomicUsize::new(0),
    });
    let dir = temp_dir("mcp-cimd");
    let store: Arc<dyn valet_core::store::Store> = Arc::new(
        valet_store_sqlite::SqliteStore::open(&dir.join("valet.db"))
            .await
            .unwrap(),
    );
    let clock = Arc::new(valet_core::ManualClock::new(START));
    let server = valet_core::AuthorizationServer::start(
        settings,
        Arc::clone(&store),
        valet_jose::MasterKey::generate().unwrap(),
        Arc::clone(&clock) as Arc<dyn valet_core::Clock>,
    )
    .await
    .unwrap();
    server.use_document_fetcher(Arc::clone(&documents) as Arc<dyn DocumentFetcher>);
    let server = Arc::new(server);
    let router = valet_server::app(Arc::new(valet_server::AppState {
        server: Arc::clone(&server),
        metrics: valet_server::install_metrics().unwrap(),
        trusted_proxies: valet_server::TrustedProxies::default(),
    }));
    let app = TestApp {
        router: router.clone(),
        clock,
        store,
        server,
        dir: dir.clone(),
    };
    app.user("alice").await;
    let metadata = json!({
        "resource": mcp,
        "authorization_servers": [origin],
        "scopes_supported": ["openid", "offline_access"],
    });
    let router = router.route(
        "/.well-known/oauth-protected-resource/mcp",
        get(move || {
            let metadata = metadata.clone();
            async move { axum::Json(metadata) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let state = dir.join("sdk-state.json");
    std::fs::write(
        &state,
        json!({ "clientMetadataUrl": client_id }).to_string(),
    )
    .unwrap();
    let state_path = state.to_str().unwrap().to_owned();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let output = run_node_script(super::client_registration::MCP_SDK_CLIENT, &args);
            assert!(
                output.status.success(),
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice::<Value>(&output.stdout).unwrap()
        })
    };
    let first = run(vec![mcp.clone(), state_path.clone()]).await.unwrap();
    assert_eq!(first["result"], "REDIRECT", "{first}");
    assert_eq!(
        first["client_id"], client_id,
        "no registration: the URL is the id"
    );
    let path = first["url"]
        .as_str()
        .unwrap()
        .strip_prefix(&origin)
        .unwrap()
        .to_owned();
    assert!(
        path.contains(&format!("client_id={}", encode(client_id))),
        "{path}"
    );

    let mut browser = Browser::default();
    let page = browser.get(&app, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let consent = browser
        .post(&app, "/login", &login_form(&page, "alice", PASSWORD))
        .await;
    let text = consent.text();
    assert!(
        text.contains("MCP agent") && text.contains("<strong>agent.example</strong>"),
        "{text}"
    );
    let reply = browser
        .post(&app, "/consent", &consent_form(&consent, "allow"))
        .await;
    let code = location_params(&reply)["code"].clone();

    let second = run(vec![mcp.clone(), state_path.clone(), code])
        .await
        .unwrap();
    assert_eq!(second["result"], "AUTHORIZED", "{second}");
    let (_, claims) = decode_jwt(second["tokens"]["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["aud"], json!([mcp, origin]));
    let third = run(vec![mcp.clone(), state_path]).await.unwrap();
    assert_eq!(third["result"], "AUTHORIZED", "refreshed: {third}");
    // One fetch served the authorization, the code and the refresh.
    assert_eq!(documents.fetches.load(Ordering::SeqCst), 1);
    assert_eq!(
        app.admin().get_client(client_id).await.unwrap().origin,
        "metadata_document"
    );
}
