//! `valet gateway`, the backend-for-frontend, against a real Valet and an API
//! behind `valet guard`: sign-in through the gateway, API calls with the token
//! injected, refresh after expiry, CSRF refusals, logout, back-channel logout,
//! and sessions shared by two gateways through Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::*;

const AUDIENCE: &str = "https://api.example.test";
pub const PASSWORD: &str = "gateway test password";
pub const SESSION_COOKIE: &str = "__Host-valet-gateway";

/// An API that echoes what reached it.
pub struct Api {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

fn api() -> Api {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: axum::body::Bytes| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let header = |name: &str| {
                    headers
                        .get(name)
                        .map(|v| v.to_str().unwrap_or_default().to_owned())
                };
                // A cookie of the API's own, which must not reach the browser.
                (
                    [(axum::http::header::SET_COOKIE, "api-session=leaked; Path=/")],
                    axum::Json(serde_json::json!({
                        "method": method.as_str(),
                        "target": uri.to_string(),
                        "subject": header("x-valet-subject"),
                        "cookie": header("cookie"),
                        "csrf": header("x-valet-csrf"),
                        "authorization": header("authorization"),
                        "forwarded_for": header("x-forwarded-for"),
                        "host": header("host"),
                        "body_length": body.len(),
                        "body_sha256": valet_jose::b64url(valet_jose::sha256(&body)),
                    })),
                )
            }
        },
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    Api {
        port,
        hits,
        _runtime: runtime,
    }
}

/// Valet with a user and the gateway's client, the API behind `valet guard`,
/// and the gateway in front of both.
pub struct Setup {
    pub dir: std::path::PathBuf,
    pub valet: Server,
    pub guard: Server,
    pub gateway: Server,
    pub api: Api,
    pub client_id: String,
    pub client_secret: String,
    pub user_id: String,
}

pub fn setup(access_token_ttl: u32) -> Setup {
    setup_with(access_token_ttl, &[])
}

/// [`setup`] with more options for the gateway.
pub fn setup_with(access_token_ttl: u32, gateway_options: &[&str]) -> Setup {
    let dir = temp_dir("gateway");
    let valet_port = free_port();
    let mut command = valet(&dir);
    command.args(["serve", "--bind", &format!("127.0.0.1:{valet_port}")]);
    let valet_server = Server::start(command, valet_port, dir.join("serve.log"));
    let issuer = format!("http://127.0.0.1:{valet_port}");
    // The gateway's address goes into the client's redirect URI long before the
    // gateway starts: hold the port until then, so the fake API or another test
    // cannot be given it meanwhile.
    let gateway_reservation = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway_port = gateway_reservation.local_addr().unwrap().port();
    let public_url = format!("http://127.0.0.1:{gateway_port}");
    let ttl = access_token_ttl.to_string();
    let (client_id, client_secret) = create_client_with(
        valet(&dir),
        &[],
        &[
            "--name",
            "Gateway",
            "--redirect-uri",
            &format!("{public_url}/bff/callback"),
            "--post-logout-redirect-uri",
            &format!("{public_url}/"),
            "--audience",
            AUDIENCE,
            "--skip-consent",
            "--access-token-ttl",
            &ttl,
        ],
    );
    let user_id = create_user(&dir, "ada", "ada@example.test", PASSWORD);
    let api = api();
    let guard_port = free_port();
    let mut command = valet(&dir);
    command.args([
        "guard",
        "--issuer",
        &issuer,
        "--audience",
        AUDIENCE,
        "--upstream",
        &format!("http://127.0.0.1:{}", api.port),
        "--bind",
        &format!("127.0.0.1:{guard_port}"),
    ]);
    let guard = Server::start_unready(command, guard_port, dir.join("guard.log"));
    eventually("the guard to load the issuer's keys", || {
        http(guard_port, "GET", "/.well-known/valet-guard/ready", &[], "")
            .is_ok_and(|reply| reply.status == 200)
    });
    drop(gateway_reservation);
    let gateway = start_gateway(
        &dir,
        gateway_port,
        &issuer,
        &client_id,
        &client_secret,
        guard_port,
        gateway_options,
    );
    Setup {
        dir,
        valet: valet_server,
        guard,
        gateway,
        api,
        client_id,
        client_secret,
        user_id,
    }
}

/// The Redis of the shared-session test, or `None` after a loud skip; panics
/// instead when `VALET_REQUIRE_REDIS` is set (CI).
fn redis_available() -> bool {
    if std::net::TcpStream::connect("127.0.0.1:6379").is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("VALET_REQUIRE_REDIS").is_none(),
        "VALET_REQUIRE_REDIS is set but nothing answers at 127.0.0.1:6379"
    );
    skip("no Redis at 127.0.0.1:6379; the gateway's shared session test did not run");
    false
}

fn start_gateway(
    dir: &std::path::Path,
    port: u16,
    issuer: &str,
    client_id: &str,
    client_secret: &str,
    guard_port: u16,
    extra: &[&str],
) -> Server {
    let mut command = valet(dir);
    command
        .env("VALET_GATEWAY_CLIENT_SECRET", client_secret)
        .args([
            "gateway",
            "--issuer",
            issuer,
            "--client-id",
            client_id,
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--api",
            &format!("/api=http://127.0.0.1:{guard_port}"),
        ])
        .args(extra);
    Server::start_unready(command, port, dir.join(format!("gateway-{port}.log")))
}

/// A browser: cookies by name, sending `Origin` and the CSRF header when asked.
#[derive(Default)]
pub struct Browser {
    pub jar: CookieJar,
}

impl Browser {
    pub fn send(
        &mut self,
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
    ) -> Reply {
        let mut all: Vec<(&str, String)> = headers.to_vec();
        if !self.jar.0.is_empty() {
            let cookies: Vec<String> = self.jar.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
            all.push(("Cookie", cookies.join("; ")));
        }
        let reply = http(port, method, path, &all, "").unwrap();
        for (header, set_cookie) in &reply.headers {
            if !header.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = set_cookie.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || set_cookie.contains("Max-Age=0") {
                self.jar.0.remove(name.trim());
            } else {
                self.jar
                    .0
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        reply
    }

    /// A same-origin script's state-changing call.
    pub fn post(&mut self, port: u16, path: &str) -> Reply {
        let origin = format!("http://127.0.0.1:{port}");
        self.send(
            port,
            "POST",
            path,
            &[("Origin", origin), ("X-Valet-CSRF", "1".into())],
        )
    }
}

/// Signs in through the gateway as a browser would: /bff/login, Valet's login
/// form, the callback. Returns the Set-Cookie header of the session.
pub fn sign_in(setup: &Setup, browser: &mut Browser, return_to: &str) -> String {
    let gateway = setup.gateway.port;
    let start = browser.send(
        gateway,
        "GET",
        &format!("/bff/login?returnTo={return_to}"),
        &[],
    );
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = start.header("location").unwrap().to_owned();
    let login_cookie = start.header("set-cookie").unwrap();
    assert!(
        login_cookie.starts_with("__Host-valet-gateway-login="),
        "{login_cookie}"
    );
    let path = authorize
        .split_once(&format!("127.0.0.1:{}", setup.valet.port))
        .unwrap()
        .1;
    let login = browser.jar.send(setup.valet.port, "GET", path, "");
    assert_eq!(login.status, 200, "{}", login.body);
    let body = form_body(&[
        (
            "interaction",
            &form_field(&login.body, "interaction").unwrap(),
        ),
        ("csrf", &form_field(&login.body, "csrf").unwrap()),
        ("username", "ada"),
        ("password", PASSWORD),
    ]);
    let back = browser.jar.send(setup.valet.port, "POST", "/login", &body);
    assert_eq!(back.status, 303, "{}", back.body);
    let callback = back.header("location").unwrap().to_owned();
    let callback_path = callback
        .split_once(&format!("127.0.0.1:{gateway}"))
        .unwrap()
        .1;
    let done = browser.send(gateway, "GET", callback_path, &[]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some(return_to));
    done.headers
        .iter()
        .find(|(name, value)| {
            name.eq_ignore_ascii_case("set-cookie") && value.starts_with(SESSION_COOKIE)
        })
        .map(|(_, value)| value.clone())
        .expect("a session cookie")
}

#[test]
fn sign_in_call_the_api_refresh_and_log_out() {
    let setup = setup(3);
    let gateway = setup.gateway.port;
    let mut browser = Browser::default();
    // Not signed in: the API is not reached.
    let reply = browser.send(gateway, "GET", "/api/orders", &[]);
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(setup.api.hits.load(Ordering::SeqCst), 0);

    let cookie = sign_in(&setup, &mut browser, "/orders?page=2");
    for flag in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(
            cookie.split("; ").any(|attribute| attribute == flag),
            "{flag} missing: {cookie}"
        );
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let session_id = browser.jar.0[SESSION_COOKIE].clone();
    assert!(
        !session_id.contains('.'),
        "the cookie is an opaque id, not a token"
    );

    let user = browser.send(gateway, "GET", "/bff/user", &[]);
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(user.json()["sub"], setup.user_id.as_str());
    assert!(user.body.find("access_token").is_none(), "{}", user.body);

    // The API sees the user through the guard; the browser's cookie never reaches it.
    let reply = browser.send(gateway, "GET", "/api/orders?page=2", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = reply.json();
    assert_eq!(seen["subject"], setup.user_id.as_str());
    assert_eq!(seen["target"], "/orders?page=2");
    assert_eq!(seen["cookie"], serde_json::Value::Null);

    // After the 3-second access token expires, calls still pass: refreshed.
    std::thread::sleep(Duration::from_secs(4));
    let reply = browser.send(gateway, "GET", "/api/orders", &[]);
    assert_eq!(reply.status, 200, "after expiry: {}", reply.body);
    // Concurrent calls at expiry share one refresh (a second one would replay
    // the rotated refresh token and Valet would revoke the grant).
    std::thread::sleep(Duration::from_secs(4));
    let jar = browser.jar.clone();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let mut browser = Browser { jar: jar.clone() };
            std::thread::spawn(move || browser.send(gateway, "GET", "/api/orders", &[]).status)
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), 200);
    }
    let reply = browser.send(gateway, "GET", "/api/orders", &[]);
    assert_eq!(
        reply.status, 200,
        "the grant survived concurrent refreshes: {}",
        reply.body
    );

    // Log out: the API is no longer reachable with the old cookie.
    let out = browser.post(gateway, "/bff/logout");
    assert_eq!(out.status, 200, "{}", out.body);
    let logout_url = out.json()["logout_url"].as_str().unwrap().to_owned();
    assert!(
        logout_url.contains("/logout?id_token_hint="),
        "{logout_url}"
    );
    assert!(!browser.jar.has(SESSION_COOKIE));
    let mut old = Browser::default();
    old.jar.0.insert(SESSION_COOKIE.into(), session_id);
    assert_eq!(old.send(gateway, "GET", "/api/orders", &[]).status, 401);
    assert_eq!(old.send(gateway, "GET", "/bff/user", &[]).status, 401);
}

#[test]
fn state_changing_calls_need_the_header_and_the_origin() {
    let setup = setup(600);
    let gateway = setup.gateway.port;
    let mut browser = Browser::default();
    sign_in(&setup, &mut browser, "/");
    let hits = setup.api.hits.load(Ordering::SeqCst);
    let own = format!("http://127.0.0.1:{gateway}");
    for (what, headers) in [
        (
            "no header (a cross-site form)",
            vec![("Origin", "https://evil.example".to_owned())],
        ),
        ("no header, same origin", vec![("Origin", own.clone())]),
        (
            "header, other origin",
            vec![
                ("Origin", "https://evil.example".to_owned()),
                ("X-Valet-CSRF", "1".to_owned()),
            ],
        ),
        (
            "header, cross-site fetch",
            vec![
                ("Sec-Fetch-Site", "cross-site".to_owned()),
                ("X-Valet-CSRF", "1".to_owned()),
            ],
        ),
        ("header, no origin", vec![("X-Valet-CSRF", "1".to_owned())]),
        (
            "header, null origin",
            vec![
                ("Origin", "null".to_owned()),
                ("X-Valet-CSRF", "1".to_owned()),
            ],
        ),
    ] {
        for path in ["/api/orders", "/bff/logout"] {
            let reply = browser.send(gateway, "POST", path, &headers);
            assert_eq!(reply.status, 403, "{what} {path}: {}", reply.body);
        }
    }
    assert_eq!(
        setup.api.hits.load(Ordering::SeqCst),
        hits,
        "nothing reached the API"
    );
    let reply = browser.send(
        gateway,
        "POST",
        "/api/orders",
        &[("Origin", own.clone()), ("X-Valet-CSRF", "1".to_owned())],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["method"], "POST");
    let reply = browser.send(
        gateway,
        "DELETE",
        "/api/orders/1",
        &[
            ("Sec-Fetch-Site", "same-origin".to_owned()),
            ("X-Valet-CSRF", "1".to_owned()),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Still signed in: none of the refused logouts ended the session.
    assert_eq!(browser.send(gateway, "GET", "/bff/user", &[]).status, 200);
}

/// With an API straight behind the gateway (no guard to clean up after it): the
/// browser's `Cookie`, `Authorization`, smuggled identity and forwarding headers
/// never reach the API, the session's token does, the API's `Set-Cookie` never
/// reaches the browser, paths that could leave the API's base are refused before
/// anything is sent, and an API that is down answers 502.
#[test]
fn only_the_session_token_crosses_the_gateway() {
    let echo = api();
    let down = free_port();
    let setup = setup_with(
        600,
        &[
            "--api",
            &format!("/echo=http://127.0.0.1:{}/v1", echo.port),
            "--api",
            &format!("/down=http://127.0.0.1:{down}"),
        ],
    );
    let gateway = setup.gateway.port;
    let mut browser = Browser::default();
    sign_in(&setup, &mut browser, "/");
    let smuggled = [
        ("Authorization", "Bearer forged".to_owned()),
        ("X-Valet-Subject", "admin".to_owned()),
        ("X-Valet_Subject", "admin".to_owned()),
        ("X-Forwarded-For", "10.0.0.1".to_owned()),
    ];
    let reply = browser.send(gateway, "GET", "/echo/orders?page=2", &smuggled);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.header("set-cookie").is_none(), "{:?}", reply.headers);
    assert!(!browser.jar.has("api-session"));
    let seen = reply.json();
    assert_eq!(seen["target"], "/v1/orders?page=2");
    assert_eq!(seen["host"], format!("127.0.0.1:{}", echo.port).as_str());
    assert_eq!(seen["cookie"], serde_json::Value::Null);
    assert_eq!(seen["subject"], serde_json::Value::Null);
    assert_eq!(seen["forwarded_for"], serde_json::Value::Null);
    let authorization = seen["authorization"].as_str().unwrap();
    assert!(authorization.starts_with("Bearer "), "{authorization}");
    assert_ne!(authorization, "Bearer forged");

    let hits = echo.hits.load(Ordering::SeqCst);
    for path in [
        "/echo/%2e%2e/admin",
        "/echo/..;x/admin",
        "/echo/a%2f..%2fadmin",
        "/echo/a\\..\\admin",
    ] {
        let reply = browser.send(gateway, "GET", path, &[]);
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
    }
    assert_eq!(echo.hits.load(Ordering::SeqCst), hits, "nothing was sent");

    let reply = browser.send(gateway, "GET", "/down/orders", &[]);
    assert_eq!(reply.status, 502, "{}", reply.body);
    // The gateway still serves afterwards.
    let reply = browser.send(gateway, "GET", "/echo/orders", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// With several threads (`--threads`), each serving its own connections over
/// its own pool of API connections, a session is one session: calls from many
/// connections at the access token's expiry share one refresh, whichever
/// thread they land on, and a logout on one connection ends it on all.
#[test]
fn several_threads_share_sessions_and_their_refresh() {
    let setup = setup_with(3, &["--threads", "3"]);
    let gateway = setup.gateway.port;
    let mut browser = Browser::default();
    sign_in(&setup, &mut browser, "/");
    let session_id = browser.jar.0[SESSION_COOKIE].clone();
    // Connections are handed to the threads in turn: nine concurrent ones reach
    // all three, twice over the access token's lifetime.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(4));
        let handles: Vec<_> = (0..9)
            .map(|_| {
                let mut browser = Browser {
                    jar: browser.jar.clone(),
                };
                std::thread::spawn(move || {
                    let reply = browser.send(gateway, "GET", "/api/orders", &[]);
                    (reply.status, reply.json()["subject"].clone())
                })
            })
            .collect();
        for handle in handles {
            let (status, subject) = handle.join().unwrap();
            assert_eq!(status, 200);
            assert_eq!(subject, setup.user_id.as_str());
        }
    }
    let out = browser.post(gateway, "/bff/logout");
    assert_eq!(out.status, 200, "{}", out.body);
    for _ in 0..6 {
        let mut old = Browser::default();
        old.jar.0.insert(SESSION_COOKIE.into(), session_id.clone());
        assert_eq!(old.send(gateway, "GET", "/api/orders", &[]).status, 401);
    }
}

#[test]
fn a_thread_count_of_zero_is_refused() {
    let dir = temp_dir("gateway-threads");
    let output = valet(&dir)
        .env("VALET_GATEWAY_CLIENT_SECRET", "secret")
        .args([
            "gateway",
            "--issuer",
            "http://127.0.0.1:9",
            "--client-id",
            "gateway",
            "--threads",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--threads"), "{stderr}");
    assert!(stderr.contains("0 is not in 1..=1024"), "{stderr}");
}

/// Bodies reach the API whole: none for a GET, a small one (sent in one piece
/// with its length) and one over 64 KiB (streamed).
#[test]
fn request_bodies_reach_the_api_whole() {
    let setup = setup(600);
    let gateway = setup.gateway.port;
    let mut browser = Browser::default();
    sign_in(&setup, &mut browser, "/");
    let cookie = format!("{SESSION_COOKIE}={}", browser.jar.0[SESSION_COOKIE]);
    let origin = format!("http://127.0.0.1:{gateway}");
    let reply = http(
        gateway,
        "GET",
        "/api/orders",
        &[("Cookie", cookie.clone())],
        "",
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["body_length"], 0);
    let small = r#"{"item":"tea","count":2}"#.to_owned();
    let large = "x".repeat(100 * 1024 + 7);
    for body in [small, large] {
        let reply = http(
            gateway,
            "POST",
            "/api/orders",
            &[
                ("Cookie", cookie.clone()),
                ("Origin", origin.clone()),
                ("X-Valet-CSRF", "1".to_owned()),
                ("Content-Type", "application/json".to_owned()),
            ],
            &body,
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let echoed = reply.json();
        assert_eq!(echoed["body_length"], body.len());
        assert_eq!(
            echoed["body_sha256"],
            valet_jose::b64url(valet_jose::sha256(body.as_bytes()))
        );
    }
}

#[test]
fn a_forged_callback_and_open_redirects_are_refused() {
    let setup = setup(600);
    let gateway = setup.gateway.port;
    let mut browser = Browser::default();
    // A callback this browser did not start (login CSRF): refused.
    let reply = browser.send(gateway, "GET", "/bff/callback?code=x&state=y", &[]);
    assert_eq!(reply.status, 400, "{}", reply.body);
    // A started login with another state: refused.
    browser.send(gateway, "GET", "/bff/login", &[]);
    let reply = browser.send(gateway, "GET", "/bff/callback?code=x&state=forged", &[]);
    assert_eq!(reply.status, 400, "{}", reply.body);
    // returnTo never leaves the gateway.
    for evil in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
    ] {
        let mut browser = Browser::default();
        let cookie = sign_in_return(&setup, &mut browser, evil);
        assert_eq!(cookie, "/", "{evil}");
    }
}

/// Signs in with `returnTo` = `return_to` and answers where the gateway sent the browser.
fn sign_in_return(setup: &Setup, browser: &mut Browser, return_to: &str) -> String {
    let gateway = setup.gateway.port;
    let encoded = encode(return_to);
    let start = browser.send(
        gateway,
        "GET",
        &format!("/bff/login?returnTo={encoded}"),
        &[],
    );
    let authorize = start.header("location").unwrap().to_owned();
    let path = authorize
        .split_once(&format!("127.0.0.1:{}", setup.valet.port))
        .unwrap()
        .1;
    let login = browser.jar.send(setup.valet.port, "GET", path, "");
    let body = form_body(&[
        (
            "interaction",
            &form_field(&login.body, "interaction").unwrap(),
        ),
        ("csrf", &form_field(&login.body, "csrf").unwrap()),
        ("username", "ada"),
        ("password", PASSWORD),
    ]);
    let back = browser.jar.send(setup.valet.port, "POST", "/login", &body);
    let callback = back.header("location").unwrap().to_owned();
    let callback_path = callback
        .split_once(&format!("127.0.0.1:{gateway}"))
        .unwrap()
        .1;
    let done = browser.send(gateway, "GET", callback_path, &[]);
    done.header("location").unwrap().to_owned()
}

/// The test's key, published by Valet once imported (it keeps signing with its own).
/// A change to a logout token's claims.
type Adjust = dyn Fn(&mut serde_json::Map<String, serde_json::Value>);

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../valet-jose/tests/fixtures/private_jwks.json"
);

fn fixture_key() -> valet_jose::SigningKey {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let imported = valet_jose::import_jwk_set(&text).unwrap();
    let key = imported
        .iter()
        .find(|key| key.alg == valet_jose::Algorithm::Es256)
        .unwrap();
    valet_jose::SigningKey::from_der(key.alg, &key.kid, key.der.as_bytes()).unwrap()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_back_channel_logout_token_ends_the_session() {
    let setup = setup(600);
    let gateway = setup.gateway.port;
    let mut import = valet(&setup.dir);
    import.args(["key", "import", FIXTURE]);
    run_ok(import);
    let mut browser = Browser::default();
    sign_in(&setup, &mut browser, "/");
    let claims = browser.send(gateway, "GET", "/bff/user", &[]).json();
    let issuer = format!("http://127.0.0.1:{}", setup.valet.port);
    let key = fixture_key();
    let logout_token = |adjust: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>),
                        typ: &str| {
        let mut token = serde_json::json!({
            "iss": issuer,
            "aud": setup.client_id,
            "iat": unix_now(),
            "exp": unix_now() + 120,
            "jti": format!("{}", unix_now()),
            "sub": claims["sub"],
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        })
        .as_object()
        .unwrap()
        .clone();
        if let Some(sid) = claims.get("sid") {
            token.insert("sid".into(), sid.clone());
        }
        adjust(&mut token);
        let jws = key.sign_jwt(typ, &token).unwrap();
        form_body(&[("logout_token", &jws)])
    };
    let post = |body: String| {
        http(
            gateway,
            "POST",
            "/bff/backchannel-logout",
            &[(
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            )],
            &body,
        )
        .unwrap()
    };
    // Valet publishes the imported key within its reload period.
    eventually(
        "the gateway to accept a token signed with the imported key",
        || {
            post(logout_token(
                &|t| {
                    t.insert("aud".into(), "someone-else".into());
                },
                "logout+jwt",
            ))
            .status
                == 400
                && post(logout_token(
                    &|t| {
                        t.remove("sub");
                        t.remove("sid");
                        t.insert("sub".into(), "nobody".into());
                    },
                    "logout+jwt",
                ))
                .status
                    == 200
        },
    );
    // Refused, and the session lives on: another audience, an ID token's typ, no
    // event, a nonce, a stale iat, another issuer.
    let refused: Vec<(&str, Box<Adjust>, &str)> = vec![
        (
            "audience",
            Box::new(|t| {
                t.insert("aud".into(), "someone-else".into());
            }),
            "logout+jwt",
        ),
        ("typ", Box::new(|_| {}), "JWT"),
        (
            "event",
            Box::new(|t| {
                t.remove("events");
            }),
            "logout+jwt",
        ),
        (
            "nonce",
            Box::new(|t| {
                t.insert("nonce".into(), "n".into());
            }),
            "logout+jwt",
        ),
        (
            "iat",
            Box::new(|t| {
                t.insert("iat".into(), (unix_now() - 3600).into());
            }),
            "logout+jwt",
        ),
        (
            "issuer",
            Box::new(|t| {
                t.insert("iss".into(), "https://evil.example".into());
            }),
            "logout+jwt",
        ),
    ];
    for (what, adjust, typ) in refused {
        let reply = post(logout_token(&*adjust, typ));
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert_eq!(
            browser.send(gateway, "GET", "/bff/user", &[]).status,
            200,
            "{what}"
        );
    }
    let reply = post(logout_token(&|_| {}, "logout+jwt"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(browser.send(gateway, "GET", "/bff/user", &[]).status, 401);
    assert_eq!(browser.send(gateway, "GET", "/api/orders", &[]).status, 401);
}

#[test]
fn two_gateways_share_sessions_through_redis() {
    if !redis_available() {
        return;
    }
    let prefix = format!("valet-test-gateway-{}-{}:", std::process::id(), unix_now());
    let cookie_key = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());
    let redis_options = [
        "--session-store",
        "redis://127.0.0.1:6379/0",
        "--session-prefix",
        &prefix,
        "--cookie-key",
        &cookie_key,
    ];
    let setup = setup_with(600, &redis_options);
    let issuer = format!("http://127.0.0.1:{}", setup.valet.port);
    let second_port = free_port();
    let guard_port = setup.guard.port;
    let second = start_gateway(
        &setup.dir,
        second_port,
        &issuer,
        &setup.client_id,
        &setup.client_secret,
        guard_port,
        &redis_options,
    );
    let mut browser = Browser::default();
    sign_in(&setup, &mut browser, "/");
    // The session made by the first gateway works on the second.
    let user = browser.send(second_port, "GET", "/bff/user", &[]);
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(user.json()["sub"], setup.user_id.as_str());
    let reply = browser.send(second_port, "GET", "/api/orders", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["subject"], setup.user_id.as_str());
    // The first has the session opened (it made it, and serves a call with it)...
    let first = browser.send(setup.gateway.port, "GET", "/api/orders", &[]);
    assert_eq!(first.status, 200, "{}", first.body);
    // ...and logging out on the second ends it on the first, at its next request.
    let session_id = browser.jar.0[SESSION_COOKIE].clone();
    let origin = format!("http://127.0.0.1:{second_port}");
    let out = browser.send(
        second_port,
        "POST",
        "/bff/logout",
        &[("Origin", origin), ("X-Valet-CSRF", "1".into())],
    );
    assert_eq!(out.status, 200, "{}", out.body);
    let mut old = Browser::default();
    old.jar.0.insert(SESSION_COOKIE.into(), session_id);
    assert_eq!(
        old.send(setup.gateway.port, "GET", "/api/orders", &[])
            .status,
        401
    );
    assert_eq!(
        old.send(setup.gateway.port, "GET", "/bff/user", &[]).status,
        401
    );
    // A gateway with another cookie key cannot open the records.
    drop(second);
    let other_key = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());
    let third_port = free_port();
    let _third = start_gateway(
        &setup.dir,
        third_port,
        &issuer,
        &setup.client_id,
        &setup.client_secret,
        guard_port,
        &[
            "--session-store",
            "redis://127.0.0.1:6379/0",
            "--session-prefix",
            &prefix,
            "--cookie-key",
            &other_key,
        ],
    );
    let mut browser = Browser::default();
    sign_in(&setup, &mut browser, "/");
    assert_eq!(
        browser
            .send(setup.gateway.port, "GET", "/bff/user", &[])
            .status,
        200
    );
    assert_eq!(
        browser.send(third_port, "GET", "/bff/user", &[]).status,
        401
    );
}

#[test]
fn the_example_app_is_served_with_an_index_fallback() {
    let app = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/gateway-spa");
    let setup = setup_with(600, &["--static", app]);
    let gateway = setup.gateway.port;
    let mut browser = Browser::default();
    let index = browser.send(gateway, "GET", "/", &[]);
    assert_eq!(index.status, 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(index.body.contains("app.js"), "{}", index.body);
    let script = browser.send(gateway, "GET", "/app.js", &[]);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.body.contains("X-Valet-CSRF"));
    // The app's own routes, and paths that try to leave the directory, get the index.
    for path in [
        "/orders/42",
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2fCargo.toml",
    ] {
        let reply = browser.send(gateway, "GET", path, &[]);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.body, index.body, "{path}");
    }
}
