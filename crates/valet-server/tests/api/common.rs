use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

pub const ISSUER: &str = "https://id.example.test";
pub const API: &str = "https://api.example.test";
pub const START: i64 = 1_800_000_000;

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

pub fn temp_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "valet-api-{label}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
        let Some(url) = std::env::var("VALET_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var_os("VALET_REQUIRE_POSTGRES").is_none(),
                "VALET_REQUIRE_POSTGRES is set but VALET_TEST_DATABASE_URL is not"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: VALET_TEST_DATABASE_URL is not set; API test on PostgreSQL did not run"
            );
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!("valet_api_{}_{nanos}", std::process::id());
        let store = valet_store_postgres::PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap();
        let app = Self::on_store(settings, Arc::new(store), temp_dir("pg-app")).await;
        Some((app, schema))
    }

    pub async fn drop_postgres_schema(schema: &str) {
        let url = std::env::var("VALET_TEST_DATABASE_URL").unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&pool)
            .await
            .unwrap();
    }

    async fn on_store(settings: Settings, store: Arc<dyn Store>, dir: PathBuf) -> Self {
        let clock = Arc::new(ManualClock::new(START));
        let server = AuthorizationServer::start(
            settings,
            Arc::clone(&store),
            MasterKey::generate().unwrap(),
            Arc::clone(&clock) as Arc<dyn Clock>,
        )
        .await
        .unwrap();
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

/// A browser: remembers cookies between requests.
#[derive(Default, Clone)]
pub struct Browser {
    pub cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn absorb(&mut self, reply: &Reply) {
        for value in reply.headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn get(&mut self, app: &TestApp, path: &str) -> Reply {
        let request = Request::get(path).header(header::COOKIE, self.cookie_header());
        let reply = app.send(request.body(Body::empty()).unwrap()).await;
        self.absorb(&reply);
        reply
    }

    pub async fn post(&mut self, app: &TestApp, path: &str, body: &str) -> Reply {
        let cookies = self.cookie_header();
        let request = form_request(path, None, &[("cookie", &cookies)], body);
        let reply = app.send(request).await;
        self.absorb(&reply);
        reply
    }

    /// A form POST from the TCP peer `peer`, with this browser's cookies and any
    /// extra headers.
    pub async fn post_from(
        &mut self,
        app: &TestApp,
        peer: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let cookies = self.cookie_header();
        let mut all = vec![("cookie", cookies.as_str())];
        all.extend_from_slice(headers);
        let reply = app.post_from(peer, path, None, &all, body).await;
        self.absorb(&reply);
        reply
    }

    /// Opens a fresh openid authorization request for `client` (new PKCE pair);
    /// `extra` is appended to the query.
    pub async fn authorize(&mut self, app: &TestApp, client: &TestClient, extra: &str) -> Reply {
        let path = authorize_path(&client.id, &Pkce::new(), "openid", extra);
        self.get(app, &path).await
    }
}

/// The value of a hidden form field in a page.
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&#x2f;", "/")
            .replace("&amp;", "&"),
    )
}

/// The login form of `page`, filled in.
pub fn login_form(page: &Reply, username: &str, password: &str) -> String {
    let html = page.text();
    format!(
        "interaction={}&csrf={}&username={}&password={}",
        form_field(&html, "interaction").unwrap(),
        form_field(&html, "csrf").unwrap(),
        encode(username),
        encode(password)
    )
}

/// The consent form of `page`, answered with `decision` (`allow` or `deny`).
pub fn consent_form(page: &Reply, decision: &str) -> String {
    let html = page.text();
    format!(
        "interaction={}&csrf={}&decision={decision}",
        form_field(&html, "interaction").unwrap(),
        form_field(&html, "csrf").unwrap()
    )
}

pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Query parameters of a Location header.
pub fn location_params(reply: &Reply) -> std::collections::HashMap<String, String> {
    let location = reply
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {} {}", reply.status, reply.text()));
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

pub const PASSWORD: &str = "correct horse battery staple";
pub const WEB_REDIRECT: &str = "https://app.example.test/callback";

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());
        let challenge = valet_jose::b64url(valet_jose::sha256(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

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
            })
            .await
            .unwrap();
        user.user_id
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

pub fn authorize_path(client_id: &str, pkce: &Pkce, scope: &str, extra: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=xyz%20state&nonce=n-0S6&code_challenge={}&code_challenge_method=S256{extra}",
        encode(WEB_REDIRECT),
        encode(scope),
        pkce.challenge
    )
}

/// Drives authorize → login → consent(allow) and returns the redirect's parameters.
pub async fn sign_in_and_allow(
    app: &TestApp,
    browser: &mut Browser,
    path: &str,
    username: &str,
) -> std::collections::HashMap<String, String> {
    let page = browser.get(app, path).await;
    if page.status == StatusCode::SEE_OTHER {
        return location_params(&page);
    }
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let mut reply = if page.text().contains("name=\"password\"") {
        let body = login_form(&page, username, PASSWORD);
        browser.post(app, "/login", &body).await
    } else {
        page
    };
    if reply.text().contains("name=\"decision\"") {
        let body = consent_form(&reply, "allow");
        reply = browser.post(app, "/consent", &body).await;
    }
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    location_params(&reply)
}

/// alice signs in to a web app that skips consent, asking for `scope`; the app,
/// her browser and the token response of the code.
pub async fn alice_signed_in(app: &TestApp, scope: &str) -> (TestClient, Browser, Value) {
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        app,
        &mut browser,
        &authorize_path(&client.id, &pkce, scope, ""),
        "alice",
    )
    .await;
    let tokens = redeem(app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    (client, browser, tokens.json())
}

pub async fn redeem(app: &TestApp, client: &TestClient, code: &str, verifier: &str) -> Reply {
    app.token(
        client,
        &format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}",
            encode(code),
            encode(WEB_REDIRECT)
        ),
    )
    .await
}
