//! Request objects (RFC 9101, JAR) at `/authorize`: the client signs the
//! request's parameters with one of its registered keys and sends them in the
//! `request` parameter. Only the object's parameters count (§6.3); a tampered,
//! unsigned, expired or foreign object is refused on a page and nothing is
//! redirected, on SQLite and PostgreSQL.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use valet_jose::{Algorithm, SigningKey, b64url};

use crate::client_jwt::jwks_of;
use valet_test_support::api::*;

fn now(app: &TestApp) -> i64 {
    use valet_core::Clock as _;
    app.clock.now()
}

/// A web client (no consent page) with a registered key for request objects.
async fn jar_client(app: &TestApp) -> (TestClient, SigningKey) {
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks = jwks_of(&[&key]);
    let client = app
        .web_client(|c| {
            c.skip_consent = true;
            c.jwks = Some(jwks);
        })
        .await;
    (client, key)
}

/// The claims of a request object for an openid sign-in by `client_id`.
fn request_claims(client_id: &str, pkce: &Pkce, now: i64) -> Map<String, Value> {
    json!({
        "iss": client_id,
        "aud": ISSUER,
        "exp": now + 60,
        "iat": now,
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": WEB_REDIRECT,
        "scope": "openid photos:read",
        "state": "signed state",
        "nonce": "signed nonce",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "max_age": 3600,
    })
    .as_object()
    .unwrap()
    .clone()
}

/// `/authorize` with only `client_id` and `request` besides `extra`.
fn path_with(client_id: &str, request: &str, extra: &str) -> String {
    format!("/authorize?client_id={client_id}&request={request}{extra}")
}

async fn signed_request_signs_in(app: &TestApp) {
    app.user("alice").await;
    let (client, key) = jar_client(app).await;
    let pkce = Pkce::new();
    let object = key
        .sign_jwt(
            "oauth-authz-req+jwt",
            &request_claims(&client.id, &pkce, now(app)),
        )
        .unwrap();
    // Outside parameters that differ from the object's are not used (§6.3).
    let path = path_with(
        &client.id,
        &object,
        "&state=outer&scope=openid%20admin&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
    );
    let mut browser = Browser::default();
    let params = sign_in_and_allow(app, &mut browser, &path, "alice").await;
    assert_eq!(params["state"], "signed state");
    assert_eq!(params["iss"], ISSUER);
    let tokens = redeem(app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let tokens = tokens.json();
    assert_eq!(tokens["scope"], "openid photos:read");
    let (_, id_token) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["nonce"], "signed nonce");

    // A typ of plain JWT is accepted too; an error after the object verified
    // goes back to the redirect URI inside it, with its state.
    let mut bad_scope = request_claims(&client.id, &Pkce::new(), now(app));
    bad_scope.insert("scope".into(), json!("openid admin"));
    let reply = app
        .get(&path_with(
            &client.id,
            &key.sign_jwt("JWT", &bad_scope).unwrap(),
            "",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    let params = location_params(&reply);
    assert_eq!(params["error"], "invalid_scope");
    assert_eq!(params["state"], "signed state");
}

/// Each bad object is refused on a 400 page: the redirect URI it names is not
/// trusted, so nothing is sent anywhere.
async fn bad_request_objects_are_refused(app: &TestApp) {
    let (client, key) = jar_client(app).await;
    let (other, other_key) = jar_client(app).await;
    let secret_only = app.web_client(|_| {}).await;
    let at = now(app);
    let pkce = Pkce::new();
    let good = request_claims(&client.id, &pkce, at);
    let signed = |claims: &Map<String, Value>| key.sign_jwt("oauth-authz-req+jwt", claims).unwrap();
    let changed = |name: &str, value: Value| {
        let mut claims = good.clone();
        claims.insert(name.into(), value);
        claims
    };
    let without = |name: &str| {
        let mut claims = good.clone();
        claims.remove(name);
        claims
    };
    let genuine = signed(&good);
    let mut parts = genuine.split('.');
    let (header, _, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let evil_payload = b64url(
        serde_json::to_vec(&changed("redirect_uri", json!("https://evil.example/cb"))).unwrap(),
    );
    let none_header = b64url(br#"{"alg":"none","typ":"oauth-authz-req+jwt"}"#);
    let good_payload = b64url(serde_json::to_vec(&good).unwrap());

    let cases: Vec<(&str, String, String)> = vec![
        (
            "redirect_uri changed after signing",
            client.id.clone(),
            format!("{header}.{evil_payload}.{signature}"),
        ),
        (
            "unsigned (alg none)",
            client.id.clone(),
            format!("{none_header}.{good_payload}."),
        ),
        (
            "signed by another client's key",
            client.id.clone(),
            other_key.sign_jwt("oauth-authz-req+jwt", &good).unwrap(),
        ),
        (
            "another client's object presented as this client's",
            client.id.clone(),
            other_key
                .sign_jwt("oauth-authz-req+jwt", &request_claims(&other.id, &pkce, at))
                .unwrap(),
        ),
        (
            "client_id inside differs from outside",
            other.id.clone(),
            signed(&good),
        ),
        (
            "iss another client",
            client.id.clone(),
            signed(&changed("iss", json!(other.id))),
        ),
        (
            "aud another server",
            client.id.clone(),
            signed(&changed("aud", json!("https://evil.example"))),
        ),
        (
            "expired",
            client.id.clone(),
            signed(&changed("exp", json!(at - 1))),
        ),
        ("no exp", client.id.clone(), signed(&without("exp"))),
        (
            "exp a day away",
            client.id.clone(),
            signed(&changed("exp", json!(at + 86_400))),
        ),
        (
            "a request inside",
            client.id.clone(),
            signed(&changed("request", json!("x.y.z"))),
        ),
        (
            "typ of an access token",
            client.id.clone(),
            key.sign_jwt("at+jwt", &good).unwrap(),
        ),
        (
            "a client without keys",
            secret_only.id.clone(),
            key.sign_jwt(
                "oauth-authz-req+jwt",
                &request_claims(&secret_only.id, &pkce, at),
            )
            .unwrap(),
        ),
    ];
    for (what, outer_client, object) in cases {
        let reply = app.get(&path_with(&outer_client, &object, "")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.text()
        );
        assert!(reply.header("location").is_none(), "{what}");
        assert!(
            reply.text().contains("Invalid request object"),
            "{what}: {}",
            reply.text()
        );
        assert_no_internals(&reply.text(), what);
    }
    // Without a client_id outside the object (RFC 9101 §5).
    let reply = app
        .get(&format!("/authorize?request={}", signed(&good)))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.header("location").is_none());

    // The genuine object still works.
    let reply = app.get(&path_with(&client.id, &genuine, "")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.text().contains("name=\"password\""));
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

on_both_stores!(signed_request_signs_in, bad_request_objects_are_refused);

/// The request object's `ui_locales` chooses the pages' language (RFC 9101
/// §6.3: only the object's parameters are used); one outside it does not.
#[tokio::test]
async fn a_request_objects_ui_locales_chooses_the_language() {
    let app = TestApp::new().await;
    let (client, key) = jar_client(&app).await;
    let mut claims = request_claims(&client.id, &Pkce::new(), now(&app));
    claims.insert("ui_locales".into(), json!("de-CH en"));
    let object = key.sign_jwt("oauth-authz-req+jwt", &claims).unwrap();
    let mut browser = Browser::default();
    let page = browser
        .get(&app, &path_with(&client.id, &object, "&ui_locales=en"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    assert!(
        html.contains("<html lang=\"de\">") && html.contains("<h1>Anmelden</h1>"),
        "{html}"
    );
    assert_eq!(
        browser
            .cookies
            .get("__Host-valet-locale")
            .map(String::as_str),
        Some("de")
    );

    // An object without ui_locales: the one outside it does not count.
    let plain = request_claims(&client.id, &Pkce::new(), now(&app));
    let object = key.sign_jwt("oauth-authz-req+jwt", &plain).unwrap();
    let page = Browser::default()
        .get(&app, &path_with(&client.id, &object, "&ui_locales=de"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("<h1>Sign in</h1>"), "{}", page.text());
}
