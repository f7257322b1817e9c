//! A fake Valet (discovery, JWKS, status lists, the SSE revocation feed) and an attacker
//! server, both axum on random 127.0.0.1 ports, plus token minting helpers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use valet_guard::{Guard, GuardConfig, GuardConfigBuilder};
use valet_jose::{Algorithm, PrivateKeyDer, SigningKey, b64url};

pub const AUDIENCE: &str = "https://orders.example";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An ES256 key with its PKCS#8 DER, so tests can sign arbitrary headers.
pub struct Key {
    pub signing: SigningKey,
    der: PrivateKeyDer,
}

impl Key {
    pub fn es256() -> Key {
        let (signing, der) = SigningKey::generate(Algorithm::Es256).unwrap();
        Key { signing, der }
    }

    pub fn kid(&self) -> &str {
        self.signing.kid()
    }

    /// The same key pair under another `kid`.
    pub fn renamed(&self, kid: &str) -> SigningKey {
        SigningKey::from_der(Algorithm::Es256, kid, self.der.as_bytes()).unwrap()
    }

    /// A compact JWS with exactly this header and payload, signed with this key.
    pub fn sign_raw(&self, header: &Value, payload: &Value) -> String {
        self.sign_text(header, &payload.to_string())
    }

    /// A compact JWS whose payload is exactly `payload` (which need not be JSON).
    pub fn sign_text(&self, header: &Value, payload: &str) -> String {
        let input = format!("{}.{}", b64url(header.to_string()), b64url(payload));
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, self.der.as_bytes())
            .unwrap();
        let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(signature.as_ref()))
    }
}

/// One status list as the fake serves it.
pub struct FakeList {
    /// The raw bitstring (1 bit per index).
    pub bytes: Vec<u8>,
    pub ttl: u64,
    /// `exp` relative to signing time.
    pub exp_in: i64,
}

pub struct IssuerState {
    pub url: String,
    /// Signs access tokens and status lists; published.
    pub signer: Key,
    /// Public JWKs published in the JWKS.
    pub published: Mutex<Vec<Map<String, Value>>>,
    pub jwks_max_age: AtomicU64,
    pub down: AtomicBool,
    pub authorization_server_metadata: AtomicBool,
    pub metadata_issuer: Mutex<Option<String>>,
    pub lists: Mutex<HashMap<String, FakeList>>,
    /// Served instead of any status list, if set.
    pub list_override: Mutex<Option<String>>,
    pub sse_enabled: AtomicBool,
    pub sse_open: AtomicUsize,
    sse_kill: watch::Sender<u64>,
    events: broadcast::Sender<String>,
    pub metadata_fetches: AtomicUsize,
    pub jwks_fetches: AtomicUsize,
    pub list_fetches: AtomicUsize,
    pub list_accept: Mutex<Option<String>>,
    /// The bearer token `/statuslists/events` requires (401 otherwise), if any.
    pub stream_token: Mutex<Option<String>>,
    /// The `Authorization` header of every subscription attempt, in order.
    pub stream_auth: Mutex<Vec<Option<String>>>,
    /// When each accepted stream opened and (once it did) ended.
    pub stream_times: Mutex<Vec<(Instant, Option<Instant>)>>,
    /// Each stream ends cleanly after this many milliseconds (0: never).
    pub stream_lifetime_ms: AtomicU64,
    /// `(Authorization, body)` of every `/token` request, in order.
    pub token_requests: Mutex<Vec<(Option<String>, String)>>,
    /// The `expires_in` of the tokens `/token` issues (`tok-1`, `tok-2`, …).
    pub token_expires_in: AtomicU64,
    /// `/token` answers 401 `invalid_client` while set.
    pub token_refused: AtomicBool,
}

pub struct FakeIssuer {
    pub url: String,
    pub state: Arc<IssuerState>,
    server: JoinHandle<()>,
}

impl Drop for FakeIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeIssuer {
    /// A running fake with list `0` (1024 valid entries, ttl 1 hour) and the SSE feed on.
    pub async fn start() -> FakeIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let signer = Key::es256();
        let state = Arc::new(IssuerState {
            url: url.clone(),
            published: Mutex::new(vec![signer.signing.public_jwk().clone()]),
            signer,
            jwks_max_age: AtomicU64::new(3600),
            down: AtomicBool::new(false),
            authorization_server_metadata: AtomicBool::new(true),
            metadata_issuer: Mutex::new(None),
            lists: Mutex::new(HashMap::from([(
                "0".to_owned(),
                FakeList {
                    bytes: vec![0; 128],
                    ttl: 3600,
                    exp_in: 86_400,
                },
            )])),
            list_override: Mutex::new(None),
            sse_enabled: AtomicBool::new(true),
            sse_open: AtomicUsize::new(0),
            sse_kill: watch::channel(0).0,
            events: broadcast::channel(64).0,
            metadata_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
            list_fetches: AtomicUsize::new(0),
            list_accept: Mutex::new(None),
            stream_token: Mutex::new(None),
            stream_auth: Mutex::new(Vec::new()),
            stream_times: Mutex::new(Vec::new()),
            stream_lifetime_ms: AtomicU64::new(0),
            token_requests: Mutex::new(Vec::new()),
            token_expires_in: AtomicU64::new(3600),
            token_refused: AtomicBool::new(false),
        });
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(authorization_server_metadata),
            )
            .route(
                "/.well-known/openid-configuration",
                get(openid_configuration),
            )
            .route("/jwks", get(jwks))
            .route("/token", axum::routing::post(token))
            .route("/statuslists/events", get(events))
            .route("/statuslists/{name}", get(status_list))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeIssuer { url, state, server }
    }

    /// The claims of a valid access token: index 0 of list 0, scope `orders:read`.
    pub fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.url, "sub": "alice", "aud": AUDIENCE, "exp": now + 600, "iat": now,
            "jti": "jti-1", "client_id": "shop-frontend", "scope": "orders:read profile",
            "status": {"status_list": {"idx": 0, "uri": self.list_uri("0")}},
        })
    }

    pub fn list_uri(&self, name: &str) -> String {
        format!("{}/statuslists/{name}", self.url)
    }

    pub fn token(&self) -> String {
        self.token_with(|_| {})
    }

    pub fn token_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        self.state
            .signer
            .signing
            .sign_jwt("at+jwt", &claims)
            .unwrap()
    }

    /// Index `idx` of list `name` as the token's status.
    pub fn token_at(&self, name: &str, idx: u64) -> String {
        let uri = self.list_uri(name);
        self.token_with(|c| c["status"]["status_list"] = json!({"idx": idx, "uri": uri}))
    }

    pub fn config(&self) -> GuardConfigBuilder {
        GuardConfig::builder(self.url.clone(), AUDIENCE)
    }

    pub async fn guard(&self) -> Guard {
        self.guard_with(self.config()).await
    }

    /// A started guard, subscribed to the feed (if the feed is on), so that tests count
    /// fetches from a settled state.
    pub async fn guard_with(&self, config: GuardConfigBuilder) -> Guard {
        let before = self.state.sse_open.load(Ordering::SeqCst);
        let guard = Guard::new(config.build().unwrap()).await.unwrap();
        if self.state.sse_enabled.load(Ordering::SeqCst) && !self.state.down.load(Ordering::SeqCst)
        {
            wait_until(Duration::from_secs(5), || {
                self.state.sse_open.load(Ordering::SeqCst) > before
            })
            .await;
        }
        guard
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Sets the bit of `idx` in list `name`; announces it on the feed if `announce`.
    pub fn revoke(&self, name: &str, idx: usize, announce: bool) {
        {
            let mut lists = self.state.lists.lock().unwrap();
            let list = lists.get_mut(name).unwrap();
            list.bytes[idx / 8] |= 1 << (idx % 8);
        }
        if announce {
            self.announce(
                "revoked",
                &json!({"uri": self.list_uri(name), "idx": idx}).to_string(),
            );
        }
    }

    /// Sends one SSE event to every open stream.
    pub fn announce(&self, event: &str, data: &str) {
        let _ = self
            .state
            .events
            .send(format!("event: {event}\ndata: {data}\n\n"));
    }

    pub fn set_list(&self, name: &str, list: FakeList) {
        self.state
            .lists
            .lock()
            .unwrap()
            .insert(name.to_owned(), list);
    }

    /// Closes every open SSE stream; with `refuse`, new ones get 503.
    pub fn drop_event_streams(&self, refuse: bool) {
        self.state.sse_enabled.store(!refuse, Ordering::SeqCst);
        self.state
            .sse_kill
            .send_modify(|generation| *generation += 1);
    }

    /// Waits until `n` SSE streams are open.
    pub async fn wait_for_streams(&self, n: usize) {
        wait_until(Duration::from_secs(5), || {
            self.state.sse_open.load(Ordering::SeqCst) == n
        })
        .await;
    }

    /// From now on `/statuslists/events` requires `Authorization: Bearer {token}`.
    pub fn require_stream_token(&self, token: &str) {
        *self.state.stream_token.lock().unwrap() = Some(token.to_owned());
    }

    /// The `Authorization` header of every subscription attempt so far.
    pub fn stream_auth(&self) -> Vec<Option<String>> {
        self.state.stream_auth.lock().unwrap().clone()
    }

    /// `(Authorization, body)` of every `/token` request so far.
    pub fn token_requests(&self) -> Vec<(Option<String>, String)> {
        self.state.token_requests.lock().unwrap().clone()
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn list_fetches(&self) -> usize {
        self.state.list_fetches.load(Ordering::SeqCst)
    }

    /// A signed status list token for list `name` with these claims edited.
    pub fn list_token_with(&self, name: &str, edit: impl FnOnce(&mut Value)) -> String {
        let lists = self.state.lists.lock().unwrap();
        let list = &lists[name];
        let mut claims = list_claims(&self.url, name, list);
        edit(&mut claims);
        self.state
            .signer
            .signing
            .sign_jwt("statuslist+jwt", &claims)
            .unwrap()
    }
}

/// Polls `condition` every 10 ms; panics after `limit`.
pub async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn zlib(bytes: &[u8]) -> String {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    b64url(encoder.finish().unwrap())
}

fn list_claims(url: &str, name: &str, list: &FakeList) -> Value {
    let now = now();
    json!({
        "iss": url, "sub": format!("{url}/statuslists/{name}"), "iat": now,
        "exp": now + list.exp_in, "ttl": list.ttl,
        "status_list": {"bits": 1, "lst": zlib(&list.bytes)},
    })
}

fn unavailable() -> Response {
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

fn metadata(state: &IssuerState) -> Response {
    state.metadata_fetches.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let issuer = state
        .metadata_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| state.url.clone());
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/jwks", state.url),
        "token_endpoint": format!("{}/token", state.url),
        "status_list_aggregation_endpoint": format!("{}/statuslists", state.url),
        "valet_status_list_events_endpoint": format!("{}/statuslists/events", state.url),
    }))
    .into_response()
}

async fn authorization_server_metadata(State(state): State<Arc<IssuerState>>) -> Response {
    if !state.authorization_server_metadata.load(Ordering::SeqCst) {
        return StatusCode::NOT_FOUND.into_response();
    }
    metadata(&state)
}

async fn openid_configuration(State(state): State<Arc<IssuerState>>) -> Response {
    metadata(&state)
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let keys = state.published.lock().unwrap().clone();
    let max_age = state.jwks_max_age.load(Ordering::SeqCst);
    (
        [(header::CACHE_CONTROL, format!("public, max-age={max_age}"))],
        axum::Json(json!({ "keys": keys })),
    )
        .into_response()
}

async fn status_list(
    State(state): State<Arc<IssuerState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    state.list_fetches.fetch_add(1, Ordering::SeqCst);
    *state.list_accept.lock().unwrap() = headers
        .get(header::ACCEPT)
        .map(|v| v.to_str().unwrap().to_owned());
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let body = match state.list_override.lock().unwrap().clone() {
        Some(body) => body,
        None => {
            let lists = state.lists.lock().unwrap();
            let Some(list) = lists.get(&name) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            state
                .signer
                .signing
                .sign_jwt("statuslist+jwt", &list_claims(&state.url, &name, list))
                .unwrap()
        }
    };
    ([(header::CONTENT_TYPE, "application/statuslist+jwt")], body).into_response()
}

/// The client credentials grant, recording what it was sent (RFC 6749 §4.4).
async fn token(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let number = {
        let mut requests = state.token_requests.lock().unwrap();
        requests.push((authorization, body));
        requests.len()
    };
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    if state.token_refused.load(Ordering::SeqCst) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic")],
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "access_token": format!("tok-{number}"),
            "token_type": "Bearer",
            "expires_in": state.token_expires_in.load(Ordering::SeqCst),
            "scope": "valet:status",
        })),
    )
        .into_response()
}

/// Counts an open stream, and records when it ends.
struct OpenStream(Arc<IssuerState>, usize);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.sse_open.fetch_sub(1, Ordering::SeqCst);
        self.0.stream_times.lock().unwrap()[self.1].1 = Some(Instant::now());
    }
}

async fn events(State(state): State<Arc<IssuerState>>, headers: HeaderMap) -> Response {
    if state.down.load(Ordering::SeqCst) || !state.sse_enabled.load(Ordering::SeqCst) {
        return unavailable();
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    state
        .stream_auth
        .lock()
        .unwrap()
        .push(authorization.clone());
    if let Some(required) = state.stream_token.lock().unwrap().clone()
        && authorization != Some(format!("Bearer {required}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response();
    }
    state.sse_open.fetch_add(1, Ordering::SeqCst);
    let slot = {
        let mut times = state.stream_times.lock().unwrap();
        times.push((Instant::now(), None));
        times.len() - 1
    };
    let open = OpenStream(Arc::clone(&state), slot);
    let lifetime = match state.stream_lifetime_ms.load(Ordering::SeqCst) {
        0 => Duration::from_secs(86_400),
        ms => Duration::from_millis(ms),
    };
    let end = tokio::time::Instant::now() + lifetime;
    let receiver = state.events.subscribe();
    let mut kill = state.sse_kill.subscribe();
    kill.mark_unchanged();
    let hello = futures_util::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b": connected\n\n"))
    });
    let feed = futures_util::stream::unfold(
        (receiver, kill, open),
        move |(mut receiver, mut kill, open)| async move {
            loop {
                tokio::select! {
                    message = receiver.recv() => match message {
                        Ok(frame) => {
                            return Some((Ok::<_, Infallible>(Bytes::from(frame)), (receiver, kill, open)));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = kill.changed() => return None,
                    // The end of the stream's lifetime: a clean close.
                    _ = tokio::time::sleep_until(end) => return None,
                }
            }
        },
    );
    use futures_util::StreamExt;
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(hello.chain(feed)))
        .unwrap()
}

/// A server that counts every request it gets (for `jku`/`x5u`/status `uri` attacks).
pub struct Attacker {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Attacker {
    pub async fn start(jwks: Value) -> Attacker {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let app = Router::new().fallback(move || {
            let counter = Arc::clone(&counter);
            let jwks = jwks.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(jwks)
            }
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Attacker {
            url,
            requests,
            server,
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}
