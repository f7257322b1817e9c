//! `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9): a
//! client registered with its public keys signs a short-lived assertion instead
//! of sending a secret. Every forgery and replay is refused with
//! `invalid_client`, and the honest client keeps working, on SQLite and
//! PostgreSQL (the `jti` replay records live in the store).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use valet_core::admin::{AdminError, NewClient};
use valet_jose::{Algorithm, SigningKey, b64url};

use valet_test_support::api::*;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A JWK Set document holding the public halves of `keys`.
pub fn jwks_of(keys: &[&SigningKey]) -> String {
    json!({ "keys": keys.iter().map(|key| Value::Object(key.public_jwk().clone())).collect::<Vec<_>>() })
        .to_string()
}

/// A client_credentials service authenticating with `private_key_jwt`, and its key.
pub async fn key_client(
    app: &TestApp,
    adjust: impl FnOnce(&mut NewClient),
) -> (TestClient, SigningKey) {
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut new = NewClient {
        token_endpoint_auth_method: Some("private_key_jwt".into()),
        jwks: Some(jwks_of(&[&key])),
        ..service_client()
    };
    adjust(&mut new);
    let client = app.client(new).await;
    assert!(
        client.secret.is_empty(),
        "a private_key_jwt client gets no secret"
    );
    (client, key)
}

/// The claims of a good assertion by `client_id` at `now`.
pub fn claims(client_id: &str, now: i64) -> Map<String, Value> {
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": valet_jose::b64url(valet_jose::random_bytes::<16>().unwrap()),
    });
    claims.as_object().unwrap().clone()
}

pub fn assertion(key: &SigningKey, client_id: &str, now: i64) -> String {
    key.sign_jwt("JWT", &claims(client_id, now)).unwrap()
}

/// The form parameters of client authentication with `assertion`.
pub fn assertion_params(assertion: &str) -> String {
    format!(
        "client_assertion_type={}&client_assertion={assertion}",
        encode(ASSERTION_TYPE)
    )
}

/// A token request authenticated by `assertion` (no Basic header).
pub async fn with_assertion(app: &TestApp, path: &str, assertion: &str, body: &str) -> Reply {
    app.post(
        path,
        None,
        &format!("{body}&{}", assertion_params(assertion)),
    )
    .await
}

fn now(app: &TestApp) -> i64 {
    use valet_core::Clock as _;
    app.clock.now()
}

async fn token_and_replay(app: &TestApp) {
    let (client, key) = key_client(app, |_| {}).await;
    let signed = assertion(&key, &client.id, now(app));
    let reply = with_assertion(app, "/token", &signed, "grant_type=client_credentials").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let (_, token_claims) = decode_jwt(&token);
    assert_eq!(token_claims["client_id"], client.id.as_str());
    assert_eq!(token_claims["sub"], client.id.as_str());

    // The same assertion again: its jti was used.
    let replay = with_assertion(app, "/token", &signed, "grant_type=client_credentials").await;
    replay.assert_error(401, "invalid_client");
    assert!(
        replay.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    // Fresh assertions work at every client-authenticated endpoint, also naming
    // the endpoint (OIDC Core §9) instead of the issuer as aud.
    let introspected = with_assertion(
        app,
        "/introspect",
        &assertion(&key, &client.id, now(app)),
        &format!("token={token}"),
    )
    .await;
    assert_eq!(
        introspected.status,
        StatusCode::OK,
        "{}",
        introspected.text()
    );
    assert_eq!(introspected.json()["active"], true);
    let mut to_endpoint = claims(&client.id, now(app));
    to_endpoint.insert("aud".into(), json!([format!("{ISSUER}/revoke")]));
    let revoked = with_assertion(
        app,
        "/revoke",
        &key.sign_jwt("client-authentication+jwt", &to_endpoint)
            .unwrap(),
        &format!("token={token}"),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    let after = with_assertion(
        app,
        "/introspect",
        &assertion(&key, &client.id, now(app)),
        &format!("token={token}"),
    )
    .await;
    assert_eq!(after.json()["active"], false);

    // The jti is remembered until the assertion expires, and a replay after
    // that is refused because the assertion itself has expired.
    app.clock.advance(61);
    with_assertion(app, "/token", &signed, "grant_type=client_credentials")
        .await
        .assert_error(401, "invalid_client");
}

/// Forged and out-of-rule assertions, each refused with `invalid_client` (or
/// `invalid_request` for a malformed request); the genuine client still works.
async fn forgeries_are_refused(app: &TestApp) {
    let (client, key) = key_client(app, |_| {}).await;
    let (other, other_key) = key_client(app, |_| {}).await;
    let at = now(app);
    let signed = |claims: &Map<String, Value>| key.sign_jwt("JWT", claims).unwrap();
    let changed = |name: &str, value: Value| {
        let mut claims = claims(&client.id, at);
        claims.insert(name.into(), value);
        claims
    };
    let without = |name: &str| {
        let mut claims = claims(&client.id, at);
        claims.remove(name);
        claims
    };
    let good = claims(&client.id, at);
    let payload = b64url(serde_json::to_vec(&good).unwrap());
    let header = |value: Value| b64url(serde_json::to_vec(&value).unwrap());
    // alg none: no signature at all.
    let none = format!(
        "{}.{payload}.",
        header(json!({"alg": "none", "kid": key.kid()}))
    );
    // HS256 keyed with the client's public JWK as registered (algorithm confusion).
    let hs_input = format!(
        "{}.{payload}",
        header(json!({"alg": "HS256", "kid": key.kid()}))
    );
    let hmac_key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        serde_json::to_string(key.public_jwk()).unwrap().as_bytes(),
    );
    let hs = format!(
        "{hs_input}.{}",
        b64url(aws_lc_rs::hmac::sign(&hmac_key, hs_input.as_bytes()))
    );
    // Another client's key, under its own kid and under this client's kid.
    let by_other = other_key.sign_jwt("JWT", &good).unwrap();
    let other_token = other_key.sign_jwt("JWT", &good).unwrap();
    let mut parts = other_token.split('.');
    let _ = parts.next();
    let under_our_kid = format!(
        "{}.{}.{}",
        header(json!({"alg": "ES256", "typ": "JWT", "kid": key.kid()})),
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    // A genuine assertion with its claims changed afterwards.
    let genuine = signed(&good);
    let mut genuine_parts = genuine.split('.');
    let tampered = format!(
        "{}.{}.{}",
        genuine_parts.next().unwrap(),
        b64url(serde_json::to_vec(&changed("sub", json!(other.id))).unwrap()),
        genuine_parts.nth(1).unwrap()
    );

    let cases: Vec<(&str, String)> = vec![
        (
            "aud another server",
            signed(&changed("aud", json!("https://evil.example"))),
        ),
        ("aud missing", signed(&without("aud"))),
        ("expired", signed(&changed("exp", json!(at - 1)))),
        ("exp missing", signed(&without("exp"))),
        (
            "lives ten minutes",
            signed(&changed("exp", json!(at + 600))),
        ),
        ("iat long before exp", {
            let mut claims = changed("iat", json!(at - 400));
            claims.insert("exp".into(), json!(at + 30));
            signed(&claims)
        }),
        (
            "nbf in the future",
            signed(&changed("nbf", json!(at + 120))),
        ),
        ("jti missing", signed(&without("jti"))),
        (
            "iss another client",
            signed(&changed("iss", json!(other.id))),
        ),
        (
            "typ of an access token",
            key.sign_jwt("at+jwt", &good).unwrap(),
        ),
        ("alg none", none),
        ("HS256 keyed with the public key", hs),
        ("signed by another client's key", by_other),
        ("another client's key under this kid", under_our_kid),
        ("claims changed after signing", tampered),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (what, forged) in cases {
        let reply = with_assertion(app, "/token", &forged, "grant_type=client_credentials").await;
        assert_eq!(reply.status.as_u16(), 401, "{what}: {}", reply.text());
        reply.assert_error(401, "invalid_client");
        assert_no_internals(&reply.text(), what);
    }

    // A body client_id naming someone else than the assertion's sub.
    let reply = app
        .post(
            "/token",
            None,
            &format!(
                "grant_type=client_credentials&client_id={}&{}",
                other.id,
                assertion_params(&assertion(&key, &client.id, at))
            ),
        )
        .await;
    reply.assert_error(401, "invalid_client");
    // An assertion and a secret (Basic) at once: RFC 6749 §2.3 allows one method.
    let reply = app
        .post(
            "/token",
            Some(&client.with_secret("x")),
            &format!(
                "grant_type=client_credentials&{}",
                assertion_params(&assertion(&key, &client.id, at))
            ),
        )
        .await;
    reply.assert_error(400, "invalid_request");
    // Another assertion type.
    let reply = app
        .post(
            "/token",
            None,
            &format!(
                "grant_type=client_credentials&client_assertion_type=urn%3Aexample%3Asaml&client_assertion={}",
                assertion(&key, &client.id, at)
            ),
        )
        .await;
    reply.assert_error(401, "invalid_client");

    // The honest client is unaffected.
    let reply = with_assertion(
        app,
        "/token",
        &assertion(&key, &client.id, at),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// A client registered with a secret cannot authenticate with an assertion, and
/// a client registered for `private_key_jwt` cannot with a secret or without
/// any proof.
async fn methods_do_not_mix(app: &TestApp) {
    let secret_client = app.service().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let reply = with_assertion(
        app,
        "/token",
        &assertion(&key, &secret_client.id, now(app)),
        "grant_type=client_credentials",
    )
    .await;
    reply.assert_error(401, "invalid_client");
    assert!(
        reply.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("not registered for private_key_jwt"),
        "{}",
        reply.text()
    );
    // Even a secret client that registered keys (for request objects) keeps
    // authenticating with its secret only.
    let with_keys = app
        .client(NewClient {
            jwks: Some(jwks_of(&[&key])),
            ..service_client()
        })
        .await;
    with_assertion(
        app,
        "/token",
        &assertion(&key, &with_keys.id, now(app)),
        "grant_type=client_credentials",
    )
    .await
    .assert_error(401, "invalid_client");
    assert_eq!(
        app.token(&with_keys, "grant_type=client_credentials")
            .await
            .status,
        StatusCode::OK
    );

    let (key_only, _) = key_client(app, |_| {}).await;
    app.token(
        &key_only.with_secret("guess"),
        "grant_type=client_credentials",
    )
    .await
    .assert_error(401, "invalid_client");
    let reply = app
        .post(
            "/token",
            None,
            &format!("grant_type=client_credentials&client_id={}", key_only.id),
        )
        .await;
    reply.assert_error(401, "invalid_client");
    assert!(reply.text().contains("private_key_jwt"), "{}", reply.text());
}

/// Keys published at a `jwks_uri` are fetched, cached, and re-fetched when an
/// assertion names a `kid` the cached set lacks (the client rolled its key).
async fn keys_from_a_jwks_uri(app: &TestApp) {
    let (first, _) = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let published = Arc::new(Mutex::new(jwks_of(&[&first])));
    let fetches = Arc::new(Mutex::new(0_u32));
    let addr = serve_jwks(Arc::clone(&published), Arc::clone(&fetches)).await;
    let client = app
        .client(NewClient {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks_uri: Some(format!("http://{addr}/jwks.json")),
            ..service_client()
        })
        .await;
    for _ in 0..2 {
        let reply = with_assertion(
            app,
            "/token",
            &assertion(&first, &client.id, now(app)),
            "grant_type=client_credentials",
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(*fetches.lock().unwrap(), 1, "the set is cached");

    let (second, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    *published.lock().unwrap() = jwks_of(&[&second]);
    // Within the re-fetch interval an unknown kid is refused without a fetch.
    let early = with_assertion(
        app,
        "/token",
        &assertion(&second, &client.id, now(app)),
        "grant_type=client_credentials",
    )
    .await;
    early.assert_error(401, "invalid_client");
    app.clock.advance(31);
    let rolled = with_assertion(
        app,
        "/token",
        &assertion(&second, &client.id, now(app)),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.text());
    assert_eq!(*fetches.lock().unwrap(), 2);
    // The old key is gone from the published set.
    app.clock.advance(300);
    with_assertion(
        app,
        "/token",
        &assertion(&first, &client.id, now(app)),
        "grant_type=client_credentials",
    )
    .await
    .assert_error(401, "invalid_client");
}

/// Serves `published` at `/jwks.json` on a loopback port, counting fetches.
async fn serve_jwks(published: Arc<Mutex<String>>, fetches: Arc<Mutex<u32>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let published = Arc::clone(&published);
            let fetches = Arc::clone(&fetches);
            async move {
                *fetches.lock().unwrap() += 1;
                let body = published.lock().unwrap().clone();
                ([("content-type", "application/jwk-set+json")], body)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn on_sqlite() {
                super::$name(&TestApp::new().await).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some((app, schema)) = TestApp::on_postgres().await else {
                    return;
                };
                super::$name(&app).await;
                TestApp::drop_postgres_schema(&schema).await;
            }
        }
    )*};
}

on_both_stores!(
    token_and_replay,
    forgeries_are_refused,
    methods_do_not_mix,
    keys_from_a_jwks_uri,
);

#[tokio::test]
async fn registration_checks_keys_and_method() {
    let app = TestApp::new().await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let register = |adjust: fn(&mut NewClient, &SigningKey)| {
        let mut new = NewClient {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            ..service_client()
        };
        adjust(&mut new, &key);
        new
    };
    let refused = |new: NewClient| {
        let app = &app;
        async move {
            match app.admin().register_client(new).await {
                Err(AdminError::Invalid(error)) => error.to_string(),
                other => panic!("accepted: {other:?}"),
            }
        }
    };
    let no_keys = refused(register(|_, _| {})).await;
    assert!(no_keys.contains("jwks or jwks_uri"), "{no_keys}");
    let private = refused(register(|new, _| {
        let (key, der) = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let _ = der;
        let mut jwk = key.public_jwk().clone();
        jwk.insert(
            "d".into(),
            json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"),
        );
        new.jwks = Some(json!({ "keys": [jwk] }).to_string());
    }))
    .await;
    assert!(
        private.starts_with("jwks:") && private.contains("private"),
        "{private}"
    );
    let symmetric = refused(register(|new, _| {
        new.jwks = Some(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#.into());
    }))
    .await;
    assert!(symmetric.starts_with("jwks:"), "{symmetric}");
    let both = refused(register(|new, key| {
        new.jwks = Some(jwks_of(&[key]));
        new.jwks_uri = Some("https://client.example/jwks.json".into());
    }))
    .await;
    assert!(both.contains("not both"), "{both}");
    let plain_http = refused(register(|new, _| {
        new.jwks_uri = Some("http://client.example/jwks.json".into());
    }))
    .await;
    assert!(plain_http.starts_with("jwks_uri:"), "{plain_http}");
    let unknown = refused(register(|new, key| {
        new.token_endpoint_auth_method = Some("tls_client_auth".into());
        new.jwks = Some(jwks_of(&[key]));
    }))
    .await;
    assert!(unknown.contains("client_secret_jwt"), "{unknown}");
    let public = refused(register(|new, key| {
        new.public = true;
        new.grant_types = vec!["authorization_code".into()];
        new.redirect_uris = vec![WEB_REDIRECT.into()];
        new.jwks = Some(jwks_of(&[key]));
    }))
    .await;
    assert!(
        public.starts_with("token_endpoint_auth_method:"),
        "{public}"
    );

    // Nothing above was stored; a good registration shows its method and keys.
    assert!(app.admin().list_clients().await.unwrap().is_empty());
    let (client, _) = key_client(&app, |_| {}).await;
    let record = app.admin().get_client(&client.id).await.unwrap();
    assert_eq!(record.token_endpoint_auth_methods, ["private_key_jwt"]);
    assert_eq!(record.jwks.unwrap()["keys"].as_array().unwrap().len(), 1);
    // Its keys cannot be removed while it authenticates with them.
    let update = valet_core::admin::ClientUpdate {
        jwks: Some(None),
        ..Default::default()
    };
    assert!(matches!(
        app.admin().update_client(&client.id, update).await,
        Err(AdminError::Invalid(_))
    ));
}

#[tokio::test]
async fn discovery_lists_private_key_jwt() {
    let app = TestApp::new().await;
    let metadata = app.get("/.well-known/openid-configuration").await.json();
    for member in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = metadata[member].as_array().unwrap();
        assert!(methods.contains(&json!("private_key_jwt")), "{member}");
    }
    for member in [
        "token_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "request_object_signing_alg_values_supported",
    ] {
        let algs = metadata[member].as_array().unwrap();
        for alg in ["ES256", "RS256", "EdDSA"] {
            assert!(algs.contains(&json!(alg)), "{member}");
        }
        assert!(!algs.contains(&json!("none")), "{member}");
    }
}

// ---------------------------------------------------------------------------------
// Independent clients

/// Python jwcrypto (pyca/cryptography) makes an RS256 key and signs the
/// assertion; Valet knows only the public key it printed.
const JWCRYPTO_KEY: &str = r#"
import sys
from jwcrypto import jwk
key = jwk.JWK.generate(kty="RSA", size=2048, kid="py-rsa", alg="RS256", use="sig")
open(sys.argv[1], "w").write(key.export_private())
print('{"keys":[' + key.export_public() + ']}')
"#;

const JWCRYPTO_ASSERTION: &str = r#"
import json, sys, uuid
from jwcrypto import jwk, jwt
key = jwk.JWK.from_json(open(sys.argv[1]).read())
client_id, aud, now = sys.argv[2], sys.argv[3], int(sys.argv[4])
token = jwt.JWT(
    header={"alg": "RS256", "kid": key.key_id},
    claims={"iss": client_id, "sub": client_id, "aud": aud, "iat": now,
            "exp": now + 120, "jti": str(uuid.uuid4())},
)
token.make_signed_token(key)
print(token.serialize())
"#;

fn jwcrypto_available() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import jwcrypto"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var_os("VALET_REQUIRE_JWCRYPTO").is_none(),
            "VALET_REQUIRE_JWCRYPTO is set but python3 with jwcrypto is missing"
        );
        skip(
            "python3 with jwcrypto not found (pip install jwcrypto); the independent assertion did not run",
        );
    }
    found
}

fn python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn jwcrypto_assertion_authenticates_the_client() {
    if !jwcrypto_available() {
        return;
    }
    let app = TestApp::new().await;
    let key_path = app.dir.join("client-key.json");
    let key_path = key_path.to_str().unwrap();
    let jwks = python(JWCRYPTO_KEY, &[key_path]);
    let client = app
        .client(NewClient {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks: Some(jwks),
            ..service_client()
        })
        .await;
    let at = now(&app).to_string();
    for aud in [ISSUER.to_owned(), format!("{ISSUER}/token")] {
        let signed = python(JWCRYPTO_ASSERTION, &[key_path, &client.id, &aud, &at]);
        let reply = with_assertion(
            &app,
            "/token",
            &signed,
            "grant_type=client_credentials&scope=read",
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{aud}: {}", reply.text());
        assert_eq!(reply.json()["scope"], "read");
        // jwcrypto's assertion is single-use here too.
        with_assertion(&app, "/token", &signed, "grant_type=client_credentials")
            .await
            .assert_error(401, "invalid_client");
    }
}

/// Node's WebCrypto makes the client's P-256 key: the private JWK to sign with
/// and the public JWK to register.
const WEBCRYPTO_KEY: &str = r#"
const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
const privateJwk = { ...(await crypto.subtle.exportKey('jwk', pair.privateKey)), kid: 'node-key' };
const publicJwk = { ...(await crypto.subtle.exportKey('jwk', pair.publicKey)), kid: 'node-key', alg: 'ES256', use: 'sig' };
delete publicJwk.key_ops; delete publicJwk.ext;
console.log(JSON.stringify({ privateJwk, jwks: { keys: [publicJwk] } }));
"#;

/// openid-client 6 (over oauth4webapi), configured from discovery with its
/// `PrivateKeyJwt` client authentication, gets a client_credentials token from
/// Valet over a real socket.
const OPENID_CLIENT_PRIVATE_KEY_JWT: &str = r#"
import * as client from 'openid-client';
// `node -e` puts the arguments right after the executable.
const [issuer, clientId, privateJwk, skew] = process.argv.slice(1);
const jwk = JSON.parse(privateJwk);
const key = await crypto.subtle.importKey(
  'jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
const kid = jwk.kid;
const config = await client.discovery(
  new URL(issuer), clientId, { [client.clockSkew]: Number(skew) }, client.PrivateKeyJwt({ key, kid }),
  { execute: [client.allowInsecureRequests] });
const tokens = await client.clientCredentialsGrant(config, { scope: 'read' });
console.log(JSON.stringify({ access_token: tokens.access_token, scope: tokens.scope }));
"#;

#[tokio::test]
async fn openid_client_authenticates_with_private_key_jwt() {
    if !node_package_available("openid-client", "openid-client with PrivateKeyJwt") {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::with_settings(valet_core::Settings::new(issuer.clone())).await;
    // openid-client dates its assertions by the real clock plus this offset
    // (its clockSkew option): the app's clock is a test clock.
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let skew = (now(&app) - real_now).to_string();
    let generated = run_node_script(WEBCRYPTO_KEY, &[]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let generated: Value = serde_json::from_slice(&generated.stdout).unwrap();
    let client = app
        .client(NewClient {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks: Some(generated["jwks"].to_string()),
            ..service_client()
        })
        .await;
    let state = Arc::new(valet_server::AppState {
        server: Arc::clone(&app.server),
        metrics: valet_server::install_metrics().unwrap(),
        trusted_proxies: valet_server::TrustedProxies::default(),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(valet_server::serve(
        listener,
        state,
        valet_server::ServeOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let private_jwk = generated["privateJwk"].to_string();
    let script_issuer = issuer.clone();
    let client_id = client.id.clone();
    let out = tokio::task::spawn_blocking(move || {
        run_node_script(
            OPENID_CLIENT_PRIVATE_KEY_JWT,
            &[&script_issuer, &client_id, &private_jwk, &skew],
        )
    })
    .await
    .unwrap();
    let _ = stop.send(());
    assert!(
        out.status.success(),
        "openid-client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["scope"], "read");
    let (_, token_claims) = decode_jwt(reply["access_token"].as_str().unwrap());
    assert_eq!(token_claims["client_id"], client.id.as_str());
    assert_eq!(token_claims["iss"], issuer.as_str());
}

/// Bad assertions count towards the same per-address throttle as wrong
/// secrets: after 20, even a good one from that address gets 429.
#[tokio::test]
async fn assertion_guessing_is_throttled() {
    const ATTACKER: &str = "203.0.113.66:40000";
    let app = TestApp::new().await;
    let (client, key) = key_client(&app, |_| {}).await;
    let (stranger, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let body = |assertion: &str| {
        format!(
            "grant_type=client_credentials&{}",
            assertion_params(assertion)
        )
    };
    for _ in 0..20 {
        let forged = assertion(&stranger, &client.id, now(&app));
        app.post_from(ATTACKER, "/token", None, &[], &body(&forged))
            .await
            .assert_error(401, "invalid_client");
    }
    let good = assertion(&key, &client.id, now(&app));
    app.post_from(ATTACKER, "/token", None, &[], &body(&good))
        .await
        .assert_error(429, "invalid_client");
    // From its own address the client is unaffected, and the throttled
    // attempt did not use up the assertion's jti.
    let reply = app
        .post_from("198.51.100.7:40000", "/token", None, &[], &body(&good))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}
