//! The app in process: the router over a real store (SQLite, or PostgreSQL in a
//! fresh schema) with a clock the tests move, driven with `oneshot` (no sockets);
//! its clients, users and replies.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use serde_json::{Map, Value};
use tower::ServiceExt as _;
use valet_core::admin::{Actor, Admin, NewClient, NewUser};
use valet_core::store::Store;
use valet_core::{AuthorizationServer, Clock, ManualClock, Settings};
use valet_jose::MasterKey;
use valet_server::{AppState, TrustedProxies, app, install_metrics};
use valet_store_sqlite::SqliteStore;

use crate::postgres::{drop_schema, fresh_schema, test_database_url};
use crate::temp::temp_dir;

pub const ISSUER: &str = "https://id.example.test";
pub const API: &str = "https://api.example.test";
pub const START: i64 = 1_800_000_000;

/// The real time, Unix seconds.
fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

pub struct TestApp {
    pub router: Router,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
    pub server: Arc<AuthorizationServer>,
    pub dir: PathBuf,
}

pub struct TestClient {
    pub id: String,
    pub secret: String,
}

impl TestClient {
    /// The same client id presented with another secret.
    pub fn with_secret(&self, secret: &str) -> TestClient {
        TestClient {
            id: self.id.clone(),
            secret: secret.to_owned(),
        }
    }
}

pub fn settings() -> Settings {
    Settings::new(ISSUER)
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_settings(settings()).await
    }

    pub async fn with_settings(settings: Settings) -> Self {
        let dir = temp_dir("app");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.join("valet.db")).await.unwrap());
        Self::on_store(settings, store, dir).await
    }

    /// The same app on PostgreSQL, in a fresh schema; `None` (after a loud skip) when
    /// `VALET_TEST_DATABASE_URL` is not set.
    pub async fn on_postgres() -> Option<(Self, String)> {
        Self::on_postgres_with(settings()).await
    }

    /// [`Self::on_postgres`] with these settings.
    pub async fn on_postgres_with(settings: Settings) -> Option<(Self, String)> {
        let url = test_database_url("API test on PostgreSQL")?;
        let schema = fresh_schema("valet_api");
        let store = valet_store_postgres::PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap();
        let app = Self::on_store(settings, Arc::new(store), temp_dir("pg-app")).await;
        Some((app, schema))
    }

    /// Drops the schema [`Self::on_postgres`] made.
    pub async fn drop_postgres_schema(schema: &str) {
        drop_schema(schema).await;
    }

    async fn on_store(settings: Settings, store: Arc<dyn Store>, dir: PathBuf) -> Self {
        Self::on_store_at(settings, store, dir, START).await
    }

    /// The app on SQLite served over HTTP on a loopback port, for clients in
    /// other processes (Node.js): its issuer is `http://127.0.0.1:PORT`, and its
    /// clock follows the real one (those clients check token times against it).
    /// The server runs until the test's runtime ends.
    pub async fn listening() -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let dir = temp_dir("listening-app");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.join("valet.db")).await.unwrap());
        let app = Self::on_store_at(Settings::new(issuer.clone()), store, dir, real_now()).await;
        let clock = Arc::clone(&app.clock);
        tokio::spawn(async move {
            loop {
                clock.set(real_now());
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        });
        let service = app
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        (app, issuer)
    }

    async fn on_store_at(
        settings: Settings,
        store: Arc<dyn Store>,
        dir: PathBuf,
        start: i64,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(start));
        let server = AuthorizationServer::start(
            settings,
            Arc::clone(&store),
            MasterKey::generate().unwrap(),
            Arc::clone(&clock) as Arc<dyn Clock>,
        )
        .await
        .unwrap();
        valet_server::metadata_documents::attach_document_fetcher(&server);
        let server = Arc::new(server);
        Self {
            router: router(&server, TrustedProxies::default()),
            clock,
            store,
            server,
            dir,
        }
    }

    /// Serves behind load balancers in `networks`, whose `X-Forwarded-For` is
    /// believed.
    pub fn trust_proxies(&mut self, networks: &[&str]) {
        let networks = networks.iter().map(|net| net.parse().unwrap()).collect();
        self.router = router(&self.server, TrustedProxies::new(networks));
    }

    /// A form POST from the TCP peer `peer`, with Basic authentication when
    /// `client` is given and any extra headers.
    pub async fn post_from(
        &self,
        peer: &str,
        path: &str,
        client: Option<&TestClient>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = form_request(path, client, headers, body);
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        self.send(request).await
    }

    /// A client_credentials token request from the TCP peer `peer`; `extra` is
    /// appended to the form body (`&scope=read`).
    pub async fn client_credentials_from(
        &self,
        peer: &str,
        client: &TestClient,
        headers: &[(&str, &str)],
        extra: &str,
    ) -> Reply {
        let body = format!("grant_type=client_credentials{extra}");
        self.post_from(peer, "/token", Some(client), headers, &body)
            .await
    }

    /// The admin service on this app's store and clock, as the CLI uses it.
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(
            self.store.as_ref(),
            self.clock.as_ref(),
            self.server.hasher(),
            3600,
            Actor::cli(),
        )
        .with_master_key(self.server.master_key())
    }

    pub async fn client(&self, new: NewClient) -> TestClient {
        let registered = self.admin().register_client(new).await.unwrap();
        TestClient {
            id: registered.client.client_id,
            secret: registered
                .secret
                .map(|s| s.expose().to_owned())
                .unwrap_or_default(),
        }
    }

    /// A confidential client_credentials client for `API` with scopes read, write.
    pub async fn service(&self) -> TestClient {
        self.client(service_client()).await
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: body.to_vec(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// A form POST with Basic authentication when `client` is given.
    pub async fn post(&self, path: &str, client: Option<&TestClient>, body: &str) -> Reply {
        self.send(form_request(path, client, &[], body)).await
    }

    /// GET /userinfo, with `token` as a Bearer token when given.
    pub async fn userinfo(&self, token: Option<&str>) -> Reply {
        let mut request = Request::get("/userinfo");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    pub async fn token(&self, client: &TestClient, body: &str) -> Reply {
        self.post("/token", Some(client), body).await
    }

    /// Issues a client_credentials token and returns it.
    pub async fn access_token(&self, client: &TestClient) -> String {
        let reply = self.token(client, "grant_type=client_credentials").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn introspect(&self, client: &TestClient, token: &str) -> Value {
        let reply = self
            .post("/introspect", Some(client), &format!("token={token}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()
    }
}

/// The app's router over `server`, believing `X-Forwarded-For` from
/// `trusted_proxies`.
fn router(server: &Arc<AuthorizationServer>, trusted_proxies: TrustedProxies) -> Router {
    app(Arc::new(AppState {
        server: Arc::clone(server),
        metrics: install_metrics().unwrap(),
        trusted_proxies,
    }))
}

/// A form POST request, with Basic authentication when `client` is given and
/// any extra headers.
pub fn form_request(
    path: &str,
    client: Option<&TestClient>,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Body> {
    let mut request =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(client) = client {
        request = request.header(header::AUTHORIZATION, basic(&client.id, &client.secret));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

pub fn service_client() -> NewClient {
    NewClient {
        name: "billing service".into(),
        scopes: vec!["read".into(), "write".into()],
        audiences: vec![API.into(), "https://other.example.test".into()],
        ..NewClient::default()
    }
}

pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 6749 §5.2 error body with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        let body = self.json();
        assert_eq!(body["error"], code, "{body}");
        if let Some(description) = body.get("error_description") {
            let text = description.as_str().unwrap();
            assert!(
                valet_protocol::error::is_valid_description(text),
                "bad description {text:?}"
            );
        }
    }
}

/// The (unverified) header and claims of a JWT.
pub fn decode_jwt(token: &str) -> (Map<String, Value>, Map<String, Value>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let segment = |s: &str| {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap();
        serde_json::from_slice::<Map<String, Value>>(&bytes).unwrap()
    };
    (segment(parts[0]), segment(parts[1]))
}

pub const PASSWORD: &str = "correct horse battery staple";
pub const WEB_REDIRECT: &str = "https://app.example.test/callback";

impl TestApp {
    pub async fn user(&self, username: &str) -> String {
        let user = self
            .admin()
            .create_user(NewUser {
                username: username.into(),
                email: Some(format!("{username}@example.test")),
                email_verified: true,
                name: Some(format!("{username} Example")),
                given_name: Some(username.into()),
                family_name: Some("Example".into()),
                password: Some(valet_core::users::Password::new(PASSWORD.into())),
                admin: false,
            })
            .await
            .unwrap();
        user.user_id
    }

    /// A user with the admin role (the web console at `/admin`).
    pub async fn admin_user(&self, username: &str) -> String {
        let user_id = self.user(username).await;
        let update = valet_core::admin::UserUpdate {
            admin: Some(true),
            ..Default::default()
        };
        self.admin().update_user(&user_id, update).await.unwrap();
        user_id
    }

    /// A confidential web app with the code flow, refresh tokens and OIDC scopes.
    pub async fn web_client(&self, adjust: impl FnOnce(&mut NewClient)) -> TestClient {
        let mut new = NewClient {
            name: "Photo App".into(),
            redirect_uris: vec![WEB_REDIRECT.into()],
            post_logout_redirect_uris: vec!["https://app.example.test/bye".into()],
            scopes: vec!["photos:read".into()],
            ..NewClient::default()
        };
        adjust(&mut new);
        self.client(new).await
    }
}
