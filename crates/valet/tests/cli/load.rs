//! Client-side load with exact bookkeeping, for the crash tests (`durability.rs`
//! on SQLite, `cluster.rs` on PostgreSQL): every token a client was told about is
//! recorded, so that after a SIGKILL nothing it was told can go missing unnoticed.
//!
//! A request whose answer never arrived is *in doubt*: the server may or may not
//! have applied it. For a refresh, introspection of the refresh token the client
//! still holds tells which (a rotated token is inactive); [`Chain::recover`] then
//! retries the way a client must, with the last token it received.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use valet_jose::VerificationKeys;

use crate::harness::*;

pub const PASSWORD: &str = "correct horse battery staple";
/// Never visited: the code is read from the `Location` header.
pub const REDIRECT_URI: &str = "https://app.example.test/callback";
/// With `openid`, every refresh also mints an ID token (RS256).
pub const SCOPE: &str = "openid profile offline_access";

/// A confidential client's credentials.
#[derive(Clone, Debug)]
pub struct Creds {
    pub id: String,
    pub secret: String,
}

impl Creds {
    pub fn basic(&self) -> Option<(&str, &str)> {
        Some((&self.id, &self.secret))
    }
}

/// A web app with the code flow and refresh tokens; `grace` when it registered
/// `--refresh-grace-seconds`.
#[derive(Clone, Debug)]
pub struct WebApp {
    pub creds: Creds,
    pub grace: bool,
}

/// Registers a first-party web app (`--skip-consent`) through the CLI.
pub fn create_web_app(
    command: std::process::Command,
    global: &[&str],
    name: &str,
    grace_seconds: u32,
) -> WebApp {
    let grace = grace_seconds.to_string();
    let (id, secret) = create_client_with(
        command,
        global,
        &[
            "--name",
            name,
            "--redirect-uri",
            REDIRECT_URI,
            "--skip-consent",
            "--refresh-grace-seconds",
            &grace,
        ],
    );
    WebApp {
        creds: Creds { id, secret },
        grace: grace_seconds > 0,
    }
}

/// An authorization request (code, PKCE S256, `SCOPE`, state `s1`, nonce `n1`).
pub fn authorize_path(client_id: &str, pkce: &Pkce) -> String {
    let query = form_body(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", SCOPE),
        ("state", "s1"),
        ("nonce", "n1"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    format!("/authorize?{query}")
}

/// GET /authorize at `ports[0]`, the login form (if the browser has no session) to
/// `ports[1]`, the consent form (if asked) to `ports[2]`; the redirect's parameters.
pub fn authorize(
    jar: &mut CookieJar,
    ports: [u16; 3],
    client_id: &str,
    pkce: &Pkce,
    username: &str,
) -> HashMap<String, String> {
    let mut reply = jar.send(ports[0], "GET", &authorize_path(client_id, pkce), "");
    if reply.status == 200 && reply.body.contains("name=\"password\"") {
        let body = form_body(&[
            (
                "interaction",
                &form_field(&reply.body, "interaction").unwrap(),
            ),
            ("csrf", &form_field(&reply.body, "csrf").unwrap()),
            ("username", username),
            ("password", PASSWORD),
        ]);
        reply = jar.send(ports[1], "POST", "/login", &body);
    }
    if reply.status == 200 && reply.body.contains("name=\"decision\"") {
        let body = form_body(&[
            (
                "interaction",
                &form_field(&reply.body, "interaction").unwrap(),
            ),
            ("csrf", &form_field(&reply.body, "csrf").unwrap()),
            ("decision", "allow"),
        ]);
        reply = jar.send(ports[2], "POST", "/consent", &body);
    }
    assert_eq!(reply.status, 303, "{}", reply.body);
    location_params(&reply)
}

/// Redeems a code at `port`.
pub fn redeem(port: u16, creds: &Creds, code: &str, verifier: &str) -> Reply {
    let body = form_body(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
    ]);
    try_post_form(port, "/token", creds.basic(), &body).unwrap()
}

pub fn refresh(port: u16, creds: &Creds, token: &str) -> std::io::Result<Reply> {
    try_post_form(
        port,
        "/token",
        creds.basic(),
        &format!("grant_type=refresh_token&refresh_token={token}"),
    )
}

/// RFC 7662 introspection at `port`; panics unless the node answers 200.
pub fn introspect(port: u16, creds: &Creds, token: &str) -> Value {
    let reply = try_post_form(
        port,
        "/introspect",
        creds.basic(),
        &format!("token={token}"),
    )
    .unwrap_or_else(|e| panic!("introspection at {port}: {e}"));
    assert_eq!(reply.status, 200, "introspection at {port}: {}", reply.body);
    reply.json()
}

/// The (unverified) header and claims of a JWT.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let part = |index: usize| -> Value {
        let segment = token.split('.').nth(index).unwrap();
        serde_json::from_slice(&valet_jose::b64url_decode(segment).unwrap()).unwrap()
    };
    (part(0), part(1))
}

/// The JWKS a node publishes right now.
pub fn jwks(port: u16) -> (String, VerificationKeys) {
    let body = http(port, "GET", "/jwks.json", &[], "")
        .unwrap_or_else(|e| panic!("JWKS at {port}: {e}"))
        .body;
    let keys = VerificationKeys::from_jwk_set_json(&body)
        .unwrap_or_else(|e| panic!("JWKS at {port}: {e}: {body}"));
    (body, keys)
}

/// How a chain ended up, as far as the server is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainState {
    Live,
    /// Revoked by a reuse: with strict rotation, the retry after a lost answer
    /// that had been applied (RFC 9700 §4.14.2); or the final check.
    Revoked,
}

/// What a recovery found about the request whose answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The server had not rotated the token: the retry rotated it.
    NotApplied,
    /// Rotated, and the client has a grace window: the retry got the pair the lost
    /// answer carried.
    GraceReplay,
    /// Rotated, strict client: the retry was a reuse and revoked the family.
    StrictReuse,
}

/// One refresh token family (one sign-in) as its client sees it.
pub struct Chain {
    pub app: WebApp,
    /// Refresh tokens in the order received; the last is the one the client holds.
    pub refresh: Vec<String>,
    /// Access tokens received in this family.
    pub access: Vec<String>,
    /// A refresh with the last token was sent and its answer never arrived.
    pub in_doubt: bool,
    pub state: ChainState,
}

/// The outcome of one refresh attempt under load.
enum Step {
    Rotated,
    /// The node refused the connection: nothing was sent.
    NotSent,
    InDoubt,
}

impl Chain {
    /// Signs `username` in (authorize, login, consent at `ports` in turn) and
    /// redeems the code at `ports[0]`.
    pub fn start(jar: &mut CookieJar, ports: [u16; 3], app: &WebApp, username: &str) -> Chain {
        let pkce = Pkce::new();
        let params = authorize(jar, ports, &app.creds.id, &pkce, username);
        let reply = redeem(ports[0], &app.creds, &params["code"], &pkce.verifier);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let tokens = reply.json();
        Chain {
            app: app.clone(),
            refresh: vec![tokens["refresh_token"].as_str().unwrap().to_owned()],
            access: vec![tokens["access_token"].as_str().unwrap().to_owned()],
            in_doubt: false,
            state: ChainState::Live,
        }
    }

    pub fn last(&self) -> &str {
        self.refresh.last().unwrap()
    }

    fn accept(&mut self, tokens: &Value) {
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert!(
            !self.refresh.contains(&refresh),
            "a refresh token was handed out twice in one chain"
        );
        self.refresh.push(refresh);
        self.access
            .push(tokens["access_token"].as_str().unwrap().to_owned());
    }

    /// One refresh at `port`, which must succeed; the token response.
    pub fn rotate(&mut self, port: u16) -> Value {
        let reply = refresh(port, &self.app.creds, self.last()).unwrap();
        assert_eq!(reply.status, 200, "refresh at {port}: {}", reply.body);
        let tokens = reply.json();
        self.accept(&tokens);
        tokens
    }

    fn refresh_once(&mut self, port: u16) -> Step {
        match refresh(port, &self.app.creds, &self.refresh[self.refresh.len() - 1]) {
            Ok(reply) => {
                assert_eq!(reply.status, 200, "refresh at {port}: {}", reply.body);
                self.accept(&reply.json());
                Step::Rotated
            }
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => Step::NotSent,
            Err(_) => {
                self.in_doubt = true;
                Step::InDoubt
            }
        }
    }

    /// Refreshes at random nodes until `stop`, or until an answer is lost.
    pub fn run(&mut self, ports: &[u16], stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            match self.refresh_once(ports[random_below(ports.len())]) {
                Step::Rotated => {}
                Step::NotSent => std::thread::sleep(Duration::from_millis(5)),
                Step::InDoubt => return,
            }
        }
    }

    /// After a lost answer: finds out at `port` whether the server had rotated the
    /// token the client holds, then retries with it, as a client must.
    pub fn recover(&mut self, port: u16, introspector: &Creds) -> Recovery {
        assert!(self.in_doubt);
        self.in_doubt = false;
        let held = self.last().to_owned();
        let applied = introspect(port, introspector, &held)["active"] == false;
        let retry = refresh(port, &self.app.creds, &held).unwrap();
        if !applied {
            assert_eq!(retry.status, 200, "{}", retry.body);
            self.accept(&retry.json());
            return Recovery::NotApplied;
        }
        if self.app.grace {
            assert_eq!(
                retry.status, 200,
                "a retry within the grace window after a lost answer must succeed: {}",
                retry.body
            );
            let pair = retry.json();
            // Once more: the same pair again, so it is the one sealed in the store by
            // the lost request, not a second family.
            let again = refresh(port, &self.app.creds, &held).unwrap();
            assert_eq!(again.status, 200, "{}", again.body);
            assert_eq!(again.json()["refresh_token"], pair["refresh_token"]);
            assert_eq!(again.json()["access_token"], pair["access_token"]);
            self.accept(&pair);
            return Recovery::GraceReplay;
        }
        assert_eq!(retry.status, 400, "{}", retry.body);
        assert_eq!(retry.json()["error"], "invalid_grant");
        self.state = ChainState::Revoked;
        Recovery::StrictReuse
    }

    /// Without changing anything: the token the client holds is live, the ones it
    /// used before are not (the last three, or all with `full`), and every access
    /// token it received is active; for a revoked family, nothing is.
    pub fn check(&self, port: u16, introspector: &Creds, full: bool) {
        let live = self.state == ChainState::Live;
        let held = introspect(port, introspector, self.last());
        assert_eq!(
            held["active"], live,
            "the refresh token last received ({:?}) at {port}: {held}",
            self.state
        );
        let used = &self.refresh[..self.refresh.len() - 1];
        let skip = if full {
            0
        } else {
            used.len().saturating_sub(3)
        };
        for token in &used[skip..] {
            assert_eq!(
                introspect(port, introspector, token)["active"],
                false,
                "a rotated refresh token is still live"
            );
        }
        let skip = if full {
            0
        } else {
            self.access.len().saturating_sub(3)
        };
        for token in &self.access[skip..] {
            assert_eq!(
                introspect(port, introspector, token)["active"],
                live,
                "an access token of a {:?} family",
                self.state
            );
        }
    }

    /// Destructive, at the end: the held token works exactly once. Strict: a second
    /// use is refused and kills the family. Grace: a second use gets the same pair;
    /// once that pair's refresh token is used, the old one is refused.
    pub fn finish(&mut self, port: u16, other: u16, introspector: &Creds) {
        if self.state != ChainState::Live {
            return;
        }
        let held = self.last().to_owned();
        let first = refresh(port, &self.app.creds, &held).unwrap();
        assert_eq!(first.status, 200, "{}", first.body);
        let pair = first.json();
        let second = refresh(other, &self.app.creds, &held).unwrap();
        let successor = if self.app.grace {
            assert_eq!(second.status, 200, "{}", second.body);
            assert_eq!(second.json()["refresh_token"], pair["refresh_token"]);
            let next = refresh(
                port,
                &self.app.creds,
                pair["refresh_token"].as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(next.status, 200, "{}", next.body);
            let stale = refresh(other, &self.app.creds, &held).unwrap();
            assert_eq!(stale.status, 400, "{}", stale.body);
            assert_eq!(stale.json()["error"], "invalid_grant");
            next.json()
        } else {
            assert_eq!(second.status, 400, "{}", second.body);
            assert_eq!(second.json()["error"], "invalid_grant");
            pair.clone()
        };
        // Either way the reuse revoked the whole family.
        for token in [&successor["refresh_token"], &successor["access_token"]] {
            assert_eq!(
                introspect(port, introspector, token.as_str().unwrap())["active"],
                false
            );
        }
        self.state = ChainState::Revoked;
    }
}

/// client_credentials tokens from random nodes until `stop`; the tokens received.
pub fn issue_tokens(service: &Creds, ports: &[u16], stop: &AtomicBool) -> Vec<String> {
    let mut received = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let port = ports[random_below(ports.len())];
        match try_post_form(
            port,
            "/token",
            service.basic(),
            "grant_type=client_credentials",
        ) {
            Ok(reply) => {
                assert_eq!(reply.status, 200, "token at {port}: {}", reply.body);
                received.push(reply.json()["access_token"].as_str().unwrap().to_owned());
            }
            // Refused, or cut off by the kill: either way the client got no token.
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    received
}

/// Every token is active at introspection (at the nodes in turn) and verifies
/// against every node's JWKS; no two tokens share a status list index.
pub fn check_service_tokens(tokens: &[String], ports: &[u16], introspector: &Creds) {
    let keys: Vec<VerificationKeys> = ports.iter().map(|&port| jwks(port).1).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut indices = std::collections::HashSet::new();
    for (i, token) in tokens.iter().enumerate() {
        for set in &keys {
            set.verify(token, "at+jwt")
                .unwrap_or_else(|e| panic!("token {i} does not verify: {e}"));
        }
        let (_, claims) = jwt_parts(token);
        if claims["exp"].as_i64().unwrap() <= now {
            continue;
        }
        let port = ports[i % ports.len()];
        let answer = introspect(port, introspector, token);
        assert_eq!(answer["active"], true, "token {i} at {port}: {answer}");
        let idx = claims["status"]["status_list"]["idx"].as_i64().unwrap();
        assert!(indices.insert(idx), "status index {idx} handed out twice");
    }
}
