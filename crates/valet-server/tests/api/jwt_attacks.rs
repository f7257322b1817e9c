//! RFC 8725 attacks at Valet's own token-consuming endpoints: introspection,
//! UserInfo, revocation and the `id_token_hint` of logout. Each forgery is
//! refused, and the genuine token it was made from keeps working.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use valet_jose::{Algorithm, Clock, SigningKey, b64url};

use valet_test_support::api::*;

fn segments(token: &str) -> (String, String, String) {
    let mut parts = token.split('.').map(str::to_owned);
    (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    )
}

/// Tokens an attacker can make from a genuine one of type `typ` without the
/// signing key, each with what it tries.
fn forgeries(app: &TestApp, genuine: &str, typ: &str) -> Vec<(&'static str, String)> {
    let (header, payload, signature) = segments(genuine);
    let (header_json, claims) = decode_jwt(genuine);
    let kid = header_json["kid"].as_str().unwrap();
    let mut raised_claims = claims.clone();
    raised_claims.insert("sub".into(), json!("someone-else"));
    raised_claims.insert("scope".into(), json!("openid profile email admin"));
    let raised = b64url(serde_json::to_vec(&raised_claims).unwrap());

    let with_header = |fields: Value| b64url(serde_json::to_vec(&fields).unwrap());
    let none_header = with_header(json!({"alg": "none", "typ": typ, "kid": kid}));
    // Algorithm confusion: an HMAC keyed with the public key as published.
    let jwks: Value = serde_json::from_slice(&app.server.jwks()).unwrap();
    let public_jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap();
    let hs_header = with_header(json!({"alg": "HS256", "typ": typ, "kid": kid}));
    let hs_input = format!("{hs_header}.{raised}");
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        serde_json::to_string(public_jwk).unwrap().as_bytes(),
    );
    let hs_signature = b64url(aws_lc_rs::hmac::sign(&key, hs_input.as_bytes()));
    // A key of the attacker's own, announced under the genuine kid.
    let (foreign, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let foreign_token = foreign.sign_jwt(typ, &raised_claims).unwrap();
    let (_, foreign_payload, foreign_signature) = segments(&foreign_token);
    let jku_header = with_header(json!({
        "alg": header_json["alg"], "typ": typ, "kid": foreign.kid(),
        "jwk": foreign.public_jwk(), "jku": "https://evil.example/jwks"
    }));

    vec![
        ("alg none", format!("{none_header}.{raised}.")),
        (
            "alg none, signature kept",
            format!("{none_header}.{payload}.{signature}"),
        ),
        (
            "HS256 keyed with the public key",
            format!("{hs_input}.{hs_signature}"),
        ),
        (
            "foreign key under the genuine kid",
            format!("{header}.{foreign_payload}.{foreign_signature}"),
        ),
        (
            "embedded jwk and jku",
            format!("{jku_header}.{foreign_payload}.{foreign_signature}"),
        ),
        (
            "claims changed, signature kept",
            format!("{header}.{raised}.{signature}"),
        ),
        ("signature stripped", format!("{header}.{payload}.")),
        (
            "signature of another token",
            format!("{header}.{payload}.{}", b64url([7; 64])),
        ),
        ("four segments", format!("{genuine}.{signature}")),
        (
            "JSON serialization",
            json!({"protected": header, "payload": payload, "signature": signature}).to_string(),
        ),
        // Over the verifier's limit, under the form body's.
        (
            "oversized",
            format!(
                "{header}.{}.{signature}",
                "A".repeat(valet_jose::MAX_TOKEN_LEN)
            ),
        ),
    ]
}

/// Tokens signed with Valet's own current key but with claims it never issues
/// this way: what a leaked or confused token looks like.
fn misissued(app: &TestApp, genuine: &str, typ: &str) -> Vec<(&'static str, String)> {
    let (_, claims) = decode_jwt(genuine);
    let key = app
        .server
        .keyring()
        .signing_key(Algorithm::Es256, app.clock.now())
        .unwrap();
    let sign = |typ: &str, changes: &[(&str, Value)]| {
        let mut claims: Map<String, Value> = claims.clone();
        for (name, value) in changes {
            claims.insert((*name).into(), value.clone());
        }
        key.sign_jwt(typ, &claims).unwrap()
    };
    let other_typ = if typ == "JWT" { "at+jwt" } else { "JWT" };
    vec![
        (
            "another issuer",
            sign(typ, &[("iss", json!("https://evil.example"))]),
        ),
        ("the other token type", sign(other_typ, &[])),
    ]
}

#[tokio::test]
async fn forged_access_tokens_are_inactive_at_introspection_and_refused_at_userinfo() {
    let app = TestApp::new().await;
    let (client, _, tokens) = alice_signed_in(&app, "openid profile offline_access").await;
    let genuine = tokens["access_token"].as_str().unwrap();
    let mut attacks = forgeries(&app, genuine, "at+jwt");
    attacks.extend(misissued(&app, genuine, "at+jwt"));
    attacks.push((
        "the ID token",
        tokens["id_token"].as_str().unwrap().to_owned(),
    ));
    for (attack, token) in &attacks {
        let reply = app
            .post("/introspect", Some(&client), &format!("token={token}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{attack}");
        assert_eq!(
            reply.json(),
            json!({"active": false}),
            "introspection: {attack}"
        );

        let reply = app.userinfo(Some(token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "userinfo: {attack}");
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .contains("invalid_token"),
            "userinfo: {attack}"
        );
    }
    // Expired: the genuine token itself, later.
    app.clock.advance(601);
    assert_eq!(
        app.introspect(&client, genuine).await,
        json!({"active": false})
    );
    assert_eq!(
        app.userinfo(Some(genuine)).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.clock.advance(-601);
    // The genuine token still works.
    assert_eq!(app.introspect(&client, genuine).await["active"], true);
    assert_eq!(app.userinfo(Some(genuine)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn forged_tokens_revoke_nothing() {
    let app = TestApp::new().await;
    let (client, _, tokens) = alice_signed_in(&app, "openid profile offline_access").await;
    let genuine = tokens["access_token"].as_str().unwrap();
    // Every forgery carries the genuine token's jti and client_id.
    for (attack, token) in forgeries(&app, genuine, "at+jwt") {
        let reply = app
            .post("/revoke", Some(&client), &format!("token={token}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{attack}");
        assert_eq!(
            app.introspect(&client, genuine).await["active"],
            true,
            "revoked by {attack}"
        );
    }
    // A refresh token guessed in the right format revokes nothing either.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let guessed = format!("vrt_{}", "A".repeat(refresh.len() - 4));
    let reply = app
        .post("/revoke", Some(&client), &format!("token={guessed}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.introspect(&client, genuine).await["active"], true);
}

#[tokio::test]
async fn forged_id_token_hints_do_not_sign_anyone_out() {
    let app = TestApp::new().await;
    let (client, mut browser, tokens) =
        alice_signed_in(&app, "openid profile offline_access").await;
    let genuine = tokens["id_token"].as_str().unwrap();
    let mut attacks = forgeries(&app, genuine, "JWT");
    attacks.extend(misissued(&app, genuine, "JWT"));
    attacks.push((
        "the access token",
        tokens["access_token"].as_str().unwrap().to_owned(),
    ));
    for (attack, token) in &attacks {
        let path = format!("/logout?id_token_hint={}", encode(token));
        let reply = browser.get(&app, &path).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{attack}: {}",
            reply.text()
        );
        assert!(reply.header("location").is_none(), "{attack}");
    }
    // Still signed in: a silent authorization request gets a code.
    let params = location_params(&browser.authorize(&app, &client, "&prompt=none").await);
    assert!(params.contains_key("code"), "{params:?}");
}
