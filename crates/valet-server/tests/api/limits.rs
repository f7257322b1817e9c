//! Resource limits from the outside, over real sockets where the accept loop is
//! the point: the cap on revocation push streams, their lifetime, the optional
//! credential for them, and the bound on open connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tower::ServiceExt as _;
use valet_core::Settings;
use valet_core::admin::NewClient;
use valet_core::config::StatusEventsAuth;
use valet_server::{AppState, ServeOptions, TrustedProxies, install_metrics};

use valet_test_support::api::*;

/// A TestApp's server on a loopback socket, stopped when dropped.
struct Served {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn serve(app: &TestApp, max_connections: usize) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(AppState {
        server: Arc::clone(&app.server),
        metrics: install_metrics().unwrap(),
        trusted_proxies: TrustedProxies::default(),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let options = ServeOptions {
        max_connections,
        ..ServeOptions::default()
    };
    tokio::spawn(valet_server::serve(listener, state, options, async move {
        let _ = stopped.await;
    }));
    Served { addr, _stop: stop }
}

/// A response read off a socket: status, head (lower-cased) and body.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn parse(text: &str) -> Self {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {text:?}"));
        Self {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        let marker = format!("\r\n{name}: ");
        let start = self.head.find(&marker)? + marker.len();
        self.head[start..].split("\r\n").next()
    }
}

/// Sends `request` on a fresh connection (`Connection: close`) and reads the
/// whole response.
async fn exchange(addr: SocketAddr, request: String) -> Raw {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut text = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut text))
        .await
        .expect("no answer in 20 s")
        .unwrap();
    Raw::parse(&String::from_utf8_lossy(&text))
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: id.example.test\r\nConnection: close\r\n{extra}\r\n")
}

/// Opens a push stream: the socket, and the response head once it is read.
async fn open_stream(addr: SocketAddr) -> (TcpStream, Raw) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(get("/statuslists/events", "").as_bytes())
        .await
        .unwrap();
    let mut text = Vec::new();
    let mut buffer = [0u8; 1024];
    while !text.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut buffer))
            .await
            .expect("no response head in 20 s")
            .unwrap();
        assert!(read > 0, "closed before the head: {text:?}");
        text.extend_from_slice(&buffer[..read]);
    }
    (socket, Raw::parse(&String::from_utf8_lossy(&text)))
}

async fn token_over_socket(addr: SocketAddr, client: &TestClient) -> Raw {
    let body = "grant_type=client_credentials";
    exchange(
        addr,
        format!(
            "POST /token HTTP/1.1\r\nHost: id.example.test\r\nConnection: close\r\nAuthorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            basic(&client.id, &client.secret),
            body.len()
        ),
    )
    .await
}

const CAP: usize = 3;
const LIFETIME: i64 = 5;

fn capped() -> Settings {
    let mut settings = settings();
    settings.status_events_max_streams = CAP;
    settings.status_events_max_lifetime = LIFETIME;
    settings
}

/// More streams than the cap: the extra one is refused cheaply with 503 and
/// `Retry-After`, health, readiness and the token endpoint keep answering, and
/// the streams end at their lifetime, freeing their slots.
async fn stream_cap_scenario(app: &TestApp) {
    let service = app.service().await;
    let served = serve(app, 64).await;
    let opened = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..CAP {
        let (socket, head) = open_stream(served.addr).await;
        assert_eq!(head.status, 200, "{}", head.head);
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        streams.push(socket);
    }
    assert_eq!(app.server.open_status_streams(), CAP);

    let extra = exchange(served.addr, get("/statuslists/events", "")).await;
    assert_eq!(extra.status, 503, "{}", extra.head);
    assert_eq!(extra.header("retry-after"), Some("10"));
    assert_eq!(extra.header("content-type"), Some("application/json"));
    assert!(
        extra.body.contains("\"error\":\"temporarily_unavailable\""),
        "{}",
        extra.body
    );

    let health = exchange(served.addr, get("/healthz", "")).await;
    assert_eq!(health.status, 200);
    let ready = exchange(served.addr, get("/readyz", "")).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let token = token_over_socket(served.addr, &service).await;
    assert_eq!(token.status, 200, "{}", token.body);
    assert!(token.body.contains("\"access_token\""));
    assert_eq!(app.server.open_status_streams(), CAP);

    // Each stream ends cleanly (the last chunk of its body) at its lifetime.
    for mut socket in streams {
        let mut text = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut text))
            .await
            .expect("the stream outlived its lifetime")
            .unwrap();
        assert!(
            text.ends_with(b"0\r\n\r\n"),
            "{:?}",
            String::from_utf8_lossy(&text)
        );
    }
    let lived = opened.elapsed();
    assert!(
        lived >= Duration::from_secs(LIFETIME as u64 - 1),
        "{lived:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.server.open_status_streams() > 0 {
        assert!(Instant::now() < deadline, "slots not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_again, head) = open_stream(served.addr).await;
    assert_eq!(head.status, 200, "a freed slot is taken again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_cap_keeps_health_and_token_answering_on_sqlite() {
    let app = TestApp::with_settings(capped()).await;
    stream_cap_scenario(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_cap_keeps_health_and_token_answering_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres_with(capped()).await else {
        return;
    };
    stream_cap_scenario(&app).await;
    drop(app);
    TestApp::drop_postgres_schema(&schema).await;
}

fn events_request(token: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/statuslists/events");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

/// A stream whose client goes away gives its slot back at once.
#[tokio::test]
async fn a_closed_stream_frees_its_slot() {
    let mut settings = settings();
    settings.status_events_max_streams = 1;
    let app = TestApp::with_settings(settings).await;
    let first = app
        .router
        .clone()
        .oneshot(events_request(None))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let refused = app.get("/statuslists/events").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("retry-after"), Some("10"));
    assert_eq!(app.server.open_status_streams(), 1);
    drop(first);
    assert_eq!(app.server.open_status_streams(), 0);
    let second = app
        .router
        .clone()
        .oneshot(events_request(None))
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);
}

/// With `status_events_auth = token`, only this server's own access tokens for
/// itself with scope `valet:status` open the stream (RFC 6750 §3.1 errors), and
/// refused callers never take a slot.
#[tokio::test]
async fn the_stream_credential_is_checked_before_the_cap() {
    let mut settings = settings();
    settings.status_events_auth = StatusEventsAuth::Token;
    settings.status_events_max_streams = 1;
    let app = TestApp::with_settings(settings).await;
    let guards = app
        .client(NewClient {
            name: "guards".into(),
            scopes: vec!["valet:status".into(), "read".into()],
            audiences: vec![ISSUER.into(), API.into()],
            ..NewClient::default()
        })
        .await;
    let token_for = |scope: &'static str, resource: &'static str| {
        let app = &app;
        let guards = &guards;
        async move {
            let reply = app
                .token(
                    guards,
                    &format!(
                        "grant_type=client_credentials&scope={scope}&resource={}",
                        encode(resource)
                    ),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            reply.json()["access_token"].as_str().unwrap().to_owned()
        }
    };
    let right = token_for("valet:status", ISSUER).await;
    let no_scope = token_for("read", ISSUER).await;
    let for_api = token_for("valet:status", API).await;

    for _ in 0..3 {
        let missing = app.send(events_request(None)).await;
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            missing.header("www-authenticate"),
            Some("Bearer realm=\"valet\"")
        );
    }
    for token in ["not-a-token", for_api.as_str()] {
        let invalid = app.send(events_request(Some(token))).await;
        assert_eq!(invalid.status, StatusCode::UNAUTHORIZED);
        assert!(
            invalid
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer realm=\"valet\", error=\"invalid_token\""),
            "{:?}",
            invalid.header("www-authenticate")
        );
    }
    let scopeless = app.send(events_request(Some(&no_scope))).await;
    assert_eq!(scopeless.status, StatusCode::FORBIDDEN);
    assert_eq!(
        scopeless.header("www-authenticate"),
        Some("Bearer realm=\"valet\", error=\"insufficient_scope\", scope=\"valet:status\"")
    );
    assert_eq!(app.server.open_status_streams(), 0);

    let stream = app
        .router
        .clone()
        .oneshot(events_request(Some(&right)))
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/event-stream"
    );
    // The cap still holds for callers with the right token.
    let full = app.send(events_request(Some(&right))).await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
    drop(stream);

    // A revoked token no longer opens it.
    let revoked = app
        .post("/revoke", Some(&guards), &format!("token={right}"))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let after = app.send(events_request(Some(&right))).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

/// At the connection bound new connections wait (they are not refused and the
/// server does not fall over); each is served as soon as an open one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_bound_wait_and_are_served_when_one_closes() {
    let app = TestApp::new().await;
    let served = serve(&app, 4).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(served.addr).await.unwrap());
    }
    // Let the loop accept them all.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = TcpStream::connect(served.addr).await.unwrap();
    waiting
        .write_all(get("/healthz", "").as_bytes())
        .await
        .unwrap();
    let mut text = Vec::new();
    let early =
        tokio::time::timeout(Duration::from_millis(500), waiting.read_to_end(&mut text)).await;
    assert!(early.is_err(), "answered beyond the bound: {text:?}");
    drop(idle.pop());
    tokio::time::timeout(Duration::from_secs(5), waiting.read_to_end(&mut text))
        .await
        .expect("not served after a connection closed")
        .unwrap();
    let reply = Raw::parse(&String::from_utf8_lossy(&text));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok\n");
}

/// Interactions in the store's single-use records table.
async fn interactions(app: &TestApp) -> i64 {
    let url = format!("sqlite://{}", app.dir.join("valet.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM single_use WHERE kind = 'interaction'")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    count
}

/// Anonymous authorization requests write nothing: the login form carries the
/// request sealed; the store hears of it once the user has signed in. The flow
/// is otherwise unchanged, and a login form completes once.
#[tokio::test]
async fn anonymous_authorization_requests_write_no_row() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    for _ in 0..25 {
        let page = Browser::default().authorize(&app, &client, "").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text().contains("name=\"password\""));
    }
    assert_eq!(interactions(&app).await, 0);

    // Sign-in, consent and code, as before.
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let page = browser
        .get(
            &app,
            &authorize_path(&client.id, &pkce, "openid", "&prompt=consent"),
        )
        .await;
    let wrong = browser
        .post(
            &app,
            "/login",
            &login_form(&page, "alice", "not her password"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(interactions(&app).await, 0);
    let login = login_form(&wrong, "alice", PASSWORD);
    let consent = browser.post(&app, "/login", &login).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    assert!(consent.text().contains("decision"));
    // The login form, completed, and the request awaiting consent.
    assert_eq!(interactions(&app).await, 2);
    // The same login form once more (from a copy of the browser, which keeps
    // its session): already completed.
    let replay = browser.clone().post(&app, "/login", &login).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.text().contains("Request expired"));
    let redirect = browser
        .post(&app, "/consent", &consent_form(&consent, "allow"))
        .await;
    assert_eq!(
        redirect.status,
        StatusCode::SEE_OTHER,
        "{}",
        redirect.text()
    );
    let params = location_params(&redirect);
    assert_eq!(params["state"], "xyz state");
    let tokens = redeem(&app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    // The consent form completes once.
    let again = browser
        .post(&app, "/consent", &consent_form(&consent, "allow"))
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    // Without consent: the code at sign-in, and the login form completes once.
    let trusted = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let page = browser.authorize(&app, &trusted, "").await;
    let login = login_form(&page, "alice", PASSWORD);
    let signed_in = browser.post(&app, "/login", &login).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text()
    );
    assert!(location_params(&signed_in).contains_key("code"));
    let replay = browser.post(&app, "/login", &login).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.text().contains("Request expired"));
}

/// A carried request cannot be altered, outlives nothing, and is bound to the
/// browser's CSRF value.
#[tokio::test]
async fn a_carried_request_is_sealed_expiring_and_bound_to_the_browser() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let page = browser.authorize(&app, &client, "").await;
    let carried = form_field(&page.text(), "interaction").unwrap();
    assert!(carried.starts_with("c2."), "{carried}");
    // Nothing of the request is readable in it.
    assert!(!carried.contains(&client.id) && !carried.contains("openid"));
    let login = login_form(&page, "alice", PASSWORD);

    // Any change to the sealed value: expired.
    let mut tampered = carried.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let reply = browser
        .post(&app, "/login", &login.replace(&carried, &tampered))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("Request expired"));

    // Another browser (another CSRF value): refused.
    let mut other = Browser::default();
    other.authorize(&app, &client, "").await;
    let reply = other.post(&app, "/login", &login).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // After the interaction lifetime: expired.
    app.clock.advance(app.server.settings().interaction_ttl + 1);
    let reply = browser.post(&app, "/login", &login).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("Request expired"));
    assert_eq!(interactions(&app).await, 0);
}

/// A carried request is sealed under a key of the current period (an hour at
/// the default interaction lifetime), which its sealed value names, so no key
/// seals for the life of the store; one sealed just before the period ends
/// still completes in the next.
#[tokio::test]
async fn a_carried_request_is_sealed_per_period_and_opens_across_the_turn() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let now = app.server.now();
    app.clock.advance(3600 - now.rem_euclid(3600) - 1);
    let mut browser = Browser::default();
    let page = browser.authorize(&app, &client, "").await;
    let carried = form_field(&page.text(), "interaction").unwrap();
    let sealed = valet_jose::b64url_decode(carried.strip_prefix("c2.").unwrap()).unwrap();
    let period = u64::try_from(app.server.now() / 3600).unwrap();
    assert_eq!(sealed[..8], period.to_be_bytes());
    // A value that claims the next period for the same ciphertext: refused.
    let mut moved = sealed.clone();
    moved[..8].copy_from_slice(&(period + 1).to_be_bytes());
    let moved = format!("c2.{}", valet_jose::b64url(&moved));
    let login = login_form(&page, "alice", PASSWORD);
    app.clock.advance(2);
    let reply = browser
        .clone()
        .post(&app, "/login", &login.replace(&carried, &moved))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("Request expired"));
    // In the next period the form completes.
    let reply = browser.post(&app, "/login", &login).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert!(location_params(&reply).contains_key("code"));
}

/// The largest request the parameter limits let through still signs in: `state`,
/// `nonce` and `login_hint` at 2 KiB each, of the characters that grow most in
/// the sealed JSON, with a long scope and many long resources. Its carried value
/// fits the carried limit, and its login form the form limit.
#[tokio::test]
async fn a_maximal_authorization_request_signs_in() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let scopes: Vec<String> = (0..40)
        .map(|i| format!("photos:a-rather-long-scope-name-{i:02}"))
        .collect();
    let audiences: Vec<String> = (0..8)
        .map(|i| format!("https://api-{i}.example.test/{}", "v".repeat(200)))
        .collect();
    let client = app
        .web_client(|c| {
            c.scopes = scopes.clone();
            c.audiences = audiences.clone();
        })
        .await;
    let state = "\"\\".repeat(1024);
    let nonce = "\\\"".repeat(1024);
    let login_hint = "\"".repeat(2048);
    assert_eq!(state.len(), 2048);
    let pkce = Pkce::new();
    let mut path = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&login_hint={}&code_challenge={}&code_challenge_method=S256",
        client.id,
        encode(WEB_REDIRECT),
        encode(&format!(
            "openid profile email offline_access {}",
            scopes.join(" ")
        )),
        encode(&state),
        encode(&nonce),
        encode(&login_hint),
        pkce.challenge,
    );
    for audience in &audiences {
        path.push_str(&format!("&resource={}", encode(audience)));
    }
    let mut browser = Browser::default();
    let page = browser.get(&app, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let carried = form_field(&page.text(), "interaction").unwrap();
    assert!(carried.len() <= 32 * 1024, "{}", carried.len());
    let login = login_form(&page, "alice", PASSWORD);
    // Room to spare under the form limit (64 KiB) for a long login and password.
    assert!(login.len() + 4 * 1024 <= 64 * 1024, "{}", login.len());
    let consent = browser.post(&app, "/login", &login).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    let redirect = browser
        .post(&app, "/consent", &consent_form(&consent, "allow"))
        .await;
    assert_eq!(
        redirect.status,
        StatusCode::SEE_OTHER,
        "{}",
        redirect.text()
    );
    let params = location_params(&redirect);
    assert_eq!(params["state"], state);
    let tokens = redeem(&app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
}

/// A request within the parameter limits whose carried value would still be
/// too long (control characters, which JSON escapes six-fold, or a resource
/// repeated many times) is refused at `/authorize` with `invalid_request`,
/// not shown a login form that could never complete.
#[tokio::test]
async fn a_request_too_large_to_carry_is_refused_before_the_login_form() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let audience = format!("https://api.example.test/{}", "v".repeat(200));
    let client = app
        .web_client(|c| c.audiences = vec![audience.clone()])
        .await;
    let control = encode(&"\u{1}".repeat(2048));
    let base = authorize_path(&client.id, &Pkce::new(), "openid", "");
    let too_long = [
        base.replace(
            "state=xyz%20state&nonce=n-0S6",
            &format!("state={control}&nonce={control}"),
        ) + &format!("&login_hint={control}"),
        base + &format!("&resource={}", encode(&audience)).repeat(150),
    ];
    for path in too_long {
        let reply = Browser::default().get(&app, &path).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
        let params = location_params(&reply);
        assert_eq!(params["error"], "invalid_request");
        assert_eq!(
            params["error_description"],
            "the authorization request is too large to carry through the sign-in; shorten state, nonce, login_hint, scope or resource"
        );
        assert_eq!(params["iss"], app.server.settings().issuer);
    }
}
