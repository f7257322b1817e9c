//! `client_secret_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9): a
//! client registered for it MACs a short-lived assertion with HS256 and its
//! secret, which Valet keeps sealed under the master key. Replays, wrong or
//! borrowed secrets, other algorithms and the secret sent as itself are refused
//! with `invalid_client`, on SQLite and PostgreSQL (the sealed secret and the
//! `jti` records live in the store).

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use valet_core::admin::{AdminError, NewClient};
use valet_jose::{Algorithm, SigningKey, b64url};

use crate::client_jwt::{claims, with_assertion};
use valet_test_support::api::*;

/// A client_credentials service registered for `client_secret_jwt`.
async fn secret_jwt_client(app: &TestApp) -> TestClient {
    let client = app
        .client(NewClient {
            token_endpoint_auth_method: Some("client_secret_jwt".into()),
            ..service_client()
        })
        .await;
    assert!(
        client.secret.starts_with("vcs_"),
        "a client_secret_jwt client gets a secret"
    );
    client
}

/// A JWS over `claims` with `header`, MACed with HS256 and `secret`.
fn hs256(secret: &str, header: Value, claims: &Map<String, Value>) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string()),
        b64url(Value::Object(claims.clone()).to_string())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mac = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(mac))
}

fn mac_assertion(client: &TestClient, now: i64) -> String {
    hs256(
        &client.secret,
        json!({ "alg": "HS256", "typ": "JWT" }),
        &claims(&client.id, now),
    )
}

fn now(app: &TestApp) -> i64 {
    use valet_core::Clock as _;
    app.clock.now()
}

fn description(reply: &Reply) -> String {
    reply.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Tokens at /token, /introspect and /revoke; a replayed `jti` is refused.
async fn token_introspect_revoke_and_replay(app: &TestApp) {
    let client = secret_jwt_client(app).await;
    let signed = mac_assertion(&client, now(app));
    let reply = with_assertion(app, "/token", &signed, "grant_type=client_credentials").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let (_, token_claims) = decode_jwt(&token);
    assert_eq!(token_claims["client_id"], client.id.as_str());

    let replay = with_assertion(app, "/token", &signed, "grant_type=client_credentials").await;
    replay.assert_error(401, "invalid_client");
    assert!(
        description(&replay).contains("already used"),
        "{}",
        replay.text()
    );

    let introspected = with_assertion(
        app,
        "/introspect",
        &mac_assertion(&client, now(app)),
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

    // The endpoint URL as aud (OIDC Core §9) works too.
    let mut to_endpoint = claims(&client.id, now(app));
    to_endpoint.insert("aud".into(), json!(format!("{ISSUER}/revoke")));
    let revoked = with_assertion(
        app,
        "/revoke",
        &hs256(&client.secret, json!({ "alg": "HS256" }), &to_endpoint),
        &format!("token={token}"),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    let after = with_assertion(
        app,
        "/introspect",
        &mac_assertion(&client, now(app)),
        &format!("token={token}"),
    )
    .await;
    assert_eq!(after.json()["active"], false);
}

/// Every forgery fails: a wrong secret, another client's secret, `none`, an
/// asymmetric signature, an expired or over-long assertion, the secret itself.
async fn forgeries_are_refused(app: &TestApp) {
    let client = secret_jwt_client(app).await;
    let other = secret_jwt_client(app).await;
    let refused = |assertion: String| async move {
        let reply =
            with_assertion(app, "/token", &assertion, "grant_type=client_credentials").await;
        reply.assert_error(401, "invalid_client");
        description(&reply)
    };

    let wrong = refused(hs256(
        "vcs_not-the-secret-at-all-not-the-secret-at-all",
        json!({ "alg": "HS256" }),
        &claims(&client.id, now(app)),
    ))
    .await;
    assert!(wrong.contains("does not verify"), "{wrong}");
    // Another registered client's secret does not authenticate this one.
    let borrowed = refused(hs256(
        &other.secret,
        json!({ "alg": "HS256" }),
        &claims(&client.id, now(app)),
    ))
    .await;
    assert!(borrowed.contains("does not verify"), "{borrowed}");

    let none = format!(
        "{}.{}.",
        b64url(json!({ "alg": "none" }).to_string()),
        b64url(Value::Object(claims(&client.id, now(app))).to_string())
    );
    let reply = with_assertion(app, "/token", &none, "grant_type=client_credentials").await;
    reply.assert_error(401, "invalid_client");
    let none_mac = format!("{none}AAAA");
    let none_alg = refused(none_mac).await;
    assert!(none_alg.contains("HS256"), "{none_alg}");

    let (rsa, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
    let rs256 = refused(rsa.sign_jwt("JWT", &claims(&client.id, now(app))).unwrap()).await;
    assert!(rs256.contains("HS256"), "{rs256}");

    // HS512 with the right secret: not the registered algorithm.
    let hs512_input = format!(
        "{}.{}",
        b64url(json!({ "alg": "HS512" }).to_string()),
        b64url(Value::Object(claims(&client.id, now(app))).to_string())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, client.secret.as_bytes());
    let hs512 = refused(format!(
        "{hs512_input}.{}",
        b64url(aws_lc_rs::hmac::sign(&key, hs512_input.as_bytes()))
    ))
    .await;
    assert!(hs512.contains("HS256"), "{hs512}");

    // The claim rules are private_key_jwt's.
    let mut expired = claims(&client.id, now(app));
    expired.insert("exp".into(), json!(now(app) - 1));
    let expired = refused(hs256(&client.secret, json!({ "alg": "HS256" }), &expired)).await;
    assert!(expired.contains("expired"), "{expired}");
    let mut long = claims(&client.id, now(app));
    long.insert("exp".into(), json!(now(app) + 3600));
    let long = refused(hs256(&client.secret, json!({ "alg": "HS256" }), &long)).await;
    assert!(long.contains("too long"), "{long}");
    let mut no_jti = claims(&client.id, now(app));
    no_jti.remove("jti");
    refused(hs256(&client.secret, json!({ "alg": "HS256" }), &no_jti)).await;
    let mut wrong_aud = claims(&client.id, now(app));
    wrong_aud.insert("aud".into(), json!("https://elsewhere.example"));
    refused(hs256(&client.secret, json!({ "alg": "HS256" }), &wrong_aud)).await;

    // The secret itself, by Basic or in the body: not the registered method.
    let basic = app.token(&client, "grant_type=client_credentials").await;
    basic.assert_error(401, "invalid_client");
    assert!(
        description(&basic).contains("client_secret_jwt"),
        "{}",
        basic.text()
    );
    let post = app
        .post(
            "/token",
            None,
            &format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                client.id,
                encode(&client.secret)
            ),
        )
        .await;
    post.assert_error(401, "invalid_client");
    // Nothing at all.
    let bare = app
        .post(
            "/token",
            None,
            &format!("grant_type=client_credentials&client_id={}", client.id),
        )
        .await;
    bare.assert_error(401, "invalid_client");
    assert!(
        description(&bare).contains("client_secret_jwt"),
        "{}",
        bare.text()
    );

    // A secret client cannot MAC an assertion with its secret instead.
    let secret_client = app.service().await;
    let not_registered = refused(mac_assertion(&secret_client, now(app))).await;
    assert!(
        not_registered.contains("not registered"),
        "{not_registered}"
    );

    // After all that, the honest client still works.
    let ok = with_assertion(
        app,
        "/token",
        &mac_assertion(&client, now(app)),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

/// The stored row holds the secret sealed, never in the clear; a rotation
/// re-seals (without overlap) and the old secret stops at once.
async fn stored_sealed_and_rotated(app: &TestApp) {
    let client = secret_jwt_client(app).await;
    let stored = app.store.get_client(&client.id).await.unwrap().unwrap();
    let sealed = stored.sealed_secret.clone().expect("a sealed secret");
    let plain = client.secret.as_bytes();
    assert!(!sealed.windows(plain.len()).any(|window| window == plain));
    // Nor its base64url body, in case it were stored decoded.
    let body = client.secret.trim_start_matches("vcs_").as_bytes();
    assert!(!sealed.windows(body.len()).any(|window| window == body));
    assert_eq!(
        app.admin()
            .get_client(&client.id)
            .await
            .unwrap()
            .token_endpoint_auth_methods,
        ["client_secret_jwt"]
    );

    assert!(matches!(
        app.admin().rotate_client_secret(&client.id, 3600).await,
        Err(AdminError::Invalid(_))
    ));
    let rotated = app
        .admin()
        .rotate_client_secret(&client.id, 0)
        .await
        .unwrap();
    assert_eq!(rotated.previous_valid_until, None);
    let fresh = client.with_secret(rotated.secret.expose());
    let resealed = app.store.get_client(&client.id).await.unwrap().unwrap();
    assert_ne!(resealed.sealed_secret, Some(sealed));
    let new_ok = with_assertion(
        app,
        "/token",
        &mac_assertion(&fresh, now(app)),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(new_ok.status, StatusCode::OK, "{}", new_ok.text());
    with_assertion(
        app,
        "/token",
        &mac_assertion(&client, now(app)),
        "grant_type=client_credentials",
    )
    .await
    .assert_error(401, "invalid_client");

    // A sealed secret copied into another client's row does not open there
    // (the client id is bound as associated data): an assertion for the copy,
    // MACed with the original's secret, is refused.
    let copy = valet_core::store::Client {
        client_id: format!("{}-copy", client.id),
        ..resealed.clone()
    };
    app.store.insert_client(&copy).await.unwrap();
    let stolen = TestClient {
        id: copy.client_id.clone(),
        secret: fresh.secret.clone(),
    };
    let reply = with_assertion(
        app,
        "/token",
        &mac_assertion(&stolen, now(app)),
        "grant_type=client_credentials",
    )
    .await;
    reply.assert_error(401, "invalid_client");
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
    token_introspect_revoke_and_replay,
    forgeries_are_refused,
    stored_sealed_and_rotated,
);

#[tokio::test]
async fn public_clients_and_registration_cannot_use_it() {
    let app = TestApp::new().await;
    let public = app
        .admin()
        .register_client(NewClient {
            public: true,
            grant_types: vec!["authorization_code".into()],
            redirect_uris: vec![WEB_REDIRECT.into()],
            token_endpoint_auth_method: Some("client_secret_jwt".into()),
            ..service_client()
        })
        .await;
    assert!(matches!(public, Err(AdminError::Invalid(_))), "{public:?}");

    // Dynamic registration does not offer it (the secret would have to be
    // sealed by an endpoint anyone may call): refused, nothing stored.
    let app = TestApp::with_settings(crate::client_registration::dynamic_settings(
        valet_core::config::ClientRegistration::Open,
    ))
    .await;
    let mut metadata = crate::client_registration::web_app();
    metadata["token_endpoint_auth_method"] = json!("client_secret_jwt");
    let reply = crate::client_registration::register(&app, None, &metadata).await;
    reply.assert_error(400, "invalid_client_metadata");
    assert!(
        description(&reply).contains("client_secret_jwt"),
        "{}",
        reply.text()
    );
    assert!(app.admin().list_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn discovery_lists_client_secret_jwt() {
    let app = TestApp::new().await;
    let metadata = app.get("/.well-known/openid-configuration").await.json();
    for member in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = metadata[member].as_array().unwrap();
        assert!(methods.contains(&json!("client_secret_jwt")), "{member}");
    }
    for member in [
        "token_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
    ] {
        assert_eq!(
            metadata[member],
            json!(["ES256", "RS256", "EdDSA", "HS256"]),
            "{member}"
        );
    }
    // Request objects stay signed with the client's keys (never HMAC).
    assert_eq!(
        metadata["request_object_signing_alg_values_supported"],
        json!(["ES256", "RS256", "EdDSA"])
    );
}

/// openid-client 6 (over oauth4webapi), configured from discovery with its
/// `ClientSecretJwt` client authentication, gets a client_credentials token.
const OPENID_CLIENT_SECRET_JWT: &str = r#"
import * as client from 'openid-client';
// `node -e` puts the arguments right after the executable.
const [issuer, clientId, secret, skew] = process.argv.slice(1);
const config = await client.discovery(
  new URL(issuer), clientId, { [client.clockSkew]: Number(skew) }, client.ClientSecretJwt(secret),
  { execute: [client.allowInsecureRequests] });
const tokens = await client.clientCredentialsGrant(config, { scope: 'read' });
console.log(JSON.stringify({ access_token: tokens.access_token, scope: tokens.scope }));
"#;

#[tokio::test]
async fn openid_client_authenticates_with_client_secret_jwt() {
    if !node_package_available("openid-client", "openid-client with ClientSecretJwt") {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::with_settings(valet_core::Settings::new(issuer.clone())).await;
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let skew = (now(&app) - real_now).to_string();
    let client = secret_jwt_client(&app).await;
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
    let (script_issuer, client_id, secret) =
        (issuer.clone(), client.id.clone(), client.secret.clone());
    let out = tokio::task::spawn_blocking(move || {
        run_node_script(
            OPENID_CLIENT_SECRET_JWT,
            &[&script_issuer, &client_id, &secret, &skew],
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
}
