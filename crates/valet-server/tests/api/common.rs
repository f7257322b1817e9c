use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use serde_json::{Map, Value};
use tower::ServiceExt as _;
use valet_core::clients::{NewClient, register};
use valet_core::store::Store;
use valet_core::{AuthorizationServer, Clock, ManualClock, Settings};
use valet_jose::MasterKey;
use valet_server::{AppState, app, install_metrics};
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
        let state = Arc::new(AppState {
            server: Arc::clone(&server),
            metrics: install_metrics().unwrap(),
        });
        Self {
            router: app(state),
            clock,
            store,
            server,
            dir,
        }
    }

    pub async fn client(&self, new: NewClient) -> TestClient {
        let registered = register(self.store.as_ref(), new, 3600, self.clock.now())
            .await
            .unwrap();
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
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(client) = client {
            request = request.header(header::AUTHORIZATION, basic(&client.id, &client.secret));
        }
        self.send(request.body(Body::from(body.to_owned())).unwrap())
            .await
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
