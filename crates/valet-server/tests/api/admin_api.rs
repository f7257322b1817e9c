//! The admin HTTP API (`/admin/v1`): who may call it. Every route refuses a
//! missing, bad, expired or revoked token, a token for another audience, one
//! without the admin scope, and a read-only token trying to write; the
//! resources' own tests are in `admin_api_*.rs`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use valet_core::Clock;
use valet_core::admin::NewClient;
use valet_core::endpoint::admin_api::admin_audience;

use valet_test_support::api::*;

/// An admin client with `scopes`, for the admin audience.
pub async fn admin_client(app: &TestApp, scopes: &[&str]) -> TestClient {
    app.client(NewClient {
        name: "admin automation".into(),
        scopes: scopes.iter().map(|&scope| scope.to_owned()).collect(),
        audiences: vec![admin_audience(ISSUER)],
        ..NewClient::default()
    })
    .await
}

/// A token with both admin scopes.
pub async fn admin_token(app: &TestApp) -> String {
    let client = admin_client(app, &["admin:read", "admin:write"]).await;
    app.access_token(&client).await
}

/// A request to the API with `token` as a Bearer token and `body` as JSON.
pub async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("/admin/v1{path}"));
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    app.send(request.body(body).unwrap()).await
}

/// Asserts the API's JSON error: status, `error`, and `field` when given.
pub fn assert_api_error(reply: &Reply, status: u16, error: &str, field: Option<&str>) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["field"].as_str(), field, "{body}");
}

/// Every route, with whether it changes something.
const ROUTES: &[(&str, &str, bool)] = &[
    ("GET", "/clients", false),
    ("POST", "/clients", true),
    ("GET", "/clients/x", false),
    ("PATCH", "/clients/x", true),
    ("DELETE", "/clients/x", true),
    ("POST", "/clients/x/secret", true),
    ("GET", "/users", false),
    ("POST", "/users", true),
    ("GET", "/users/x", false),
    ("PATCH", "/users/x", true),
    ("DELETE", "/users/x", true),
    ("POST", "/users/x/disable", true),
    ("POST", "/users/x/enable", true),
    ("POST", "/users/x/unlock", true),
    ("POST", "/users/x/mfa/reset", true),
    ("GET", "/users/x/sessions", false),
    ("DELETE", "/users/x/sessions", true),
    ("GET", "/keys", false),
    ("POST", "/keys/rotate", true),
    ("POST", "/keys/import", true),
    ("POST", "/keys/x/retire", true),
    ("GET", "/grants?user=x", false),
    ("DELETE", "/grants?user=x", true),
    ("DELETE", "/grants/x", true),
    ("GET", "/audit", false),
];

fn assert_challenge(reply: &Reply, status: u16, error: &str, route: &str) {
    assert_eq!(reply.status.as_u16(), status, "{route}: {}", reply.text());
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer "), "{route}: {challenge}");
    assert!(challenge.contains(error), "{route}: {challenge}");
    assert_eq!(reply.json()["error"], error, "{route}");
}

#[tokio::test]
async fn every_route_refuses_a_missing_or_bad_token() {
    let app = TestApp::new().await;
    for (method, path, _) in ROUTES {
        let route = format!("{method} {path}");
        let reply = call(&app, None, method, path, Some(serde_json::json!({}))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{route}");
        assert!(
            reply
                .header("www-authenticate")
                .unwrap_or_default()
                .starts_with("Bearer"),
            "{route}"
        );
        let reply = call(&app, Some("not-a-token"), method, path, None).await;
        assert_challenge(&reply, 401, "invalid_token", &route);
    }
}

#[tokio::test]
async fn every_route_checks_audience_and_scope() {
    let app = TestApp::new().await;
    // A token for another API, with scopes of its own: invalid here.
    let service = app.service().await;
    let other_audience = app.access_token(&service).await;
    // A token for the admin audience without an admin scope.
    let no_scope = app
        .access_token(&admin_client(&app, &["metrics"]).await)
        .await;
    let read_only = app
        .access_token(&admin_client(&app, &["admin:read"]).await)
        .await;
    let write_only = app
        .access_token(&admin_client(&app, &["admin:write"]).await)
        .await;
    for (method, path, writes) in ROUTES {
        let route = format!("{method} {path}");
        let reply = call(&app, Some(&other_audience), method, path, None).await;
        assert_challenge(&reply, 401, "invalid_token", &route);
        let reply = call(&app, Some(&no_scope), method, path, None).await;
        assert_challenge(&reply, 403, "insufficient_scope", &route);
        let (refused, allowed) = if *writes {
            (&read_only, &write_only)
        } else {
            (&write_only, &read_only)
        };
        let reply = call(&app, Some(refused), method, path, None).await;
        assert_challenge(&reply, 403, "insufficient_scope", &route);
        // With the right scope the request gets past the token check.
        let reply = call(&app, Some(allowed), method, path, None).await;
        assert!(
            ![401, 403].contains(&reply.status.as_u16()),
            "{route}: {}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn an_expired_or_revoked_token_is_refused() {
    let app = TestApp::new().await;
    let client = admin_client(&app, &["admin:read", "admin:write"]).await;
    let token = app.access_token(&client).await;
    assert_eq!(
        call(&app, Some(&token), "GET", "/clients", None)
            .await
            .status,
        200
    );

    // Revoked (RFC 7009) by its client: refused at once.
    let reply = app
        .post("/revoke", Some(&client), &format!("token={token}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = call(&app, Some(&token), "GET", "/clients", None).await;
    assert_challenge(&reply, 401, "invalid_token", "revoked");

    // Expired.
    let token = app.access_token(&client).await;
    app.clock.advance(3601);
    let reply = call(&app, Some(&token), "GET", "/clients", None).await;
    assert_challenge(&reply, 401, "invalid_token", "expired");
}

#[tokio::test]
async fn a_deleted_admin_client_s_token_stops_working() {
    let app = TestApp::new().await;
    let token = admin_token(&app).await;
    let other = admin_client(&app, &["admin:read", "admin:write"]).await;
    let other_token = app.access_token(&other).await;
    let reply = call(
        &app,
        Some(&token),
        "DELETE",
        &format!("/clients/{}", other.id),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    let reply = call(&app, Some(&other_token), "GET", "/clients", None).await;
    assert_challenge(&reply, 401, "invalid_token", "deleted client");
}

#[tokio::test]
async fn a_dpop_bound_token_needs_its_proof() {
    let app = TestApp::new().await;
    let client = app
        .client(NewClient {
            name: "bound admin".into(),
            scopes: vec!["admin:read".into()],
            audiences: vec![admin_audience(ISSUER)],
            dpop_bound_access_tokens: true,
            ..NewClient::default()
        })
        .await;
    let key = DpopKey::es256();
    let now = app.clock.now();
    let proof = key.proof("POST", &format!("{ISSUER}/token"), now, None);
    let reply = app
        .send(form_request(
            "/token",
            Some(&client),
            &[("dpop", &proof)],
            "grant_type=client_credentials",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();

    // As a Bearer token: refused (RFC 9449 §7.2).
    let reply = call(&app, Some(&token), "GET", "/keys", None).await;
    assert_challenge(&reply, 401, "invalid_token", "bearer");

    let url = format!("{ISSUER}/admin/v1/keys");
    let send = |proof: String| {
        let token = token.clone();
        let app = &app;
        async move {
            let request = Request::get("/admin/v1/keys")
                .header(header::AUTHORIZATION, format!("DPoP {token}"))
                .header("dpop", proof)
                .body(Body::empty())
                .unwrap();
            app.send(request).await
        }
    };
    // A proof for another URL, or by another key: refused.
    let reply = send(key.proof(
        "GET",
        &format!("{ISSUER}/admin/v1/users"),
        now,
        Some(&token),
    ))
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    let reply = send(DpopKey::es256().proof("GET", &url, now, Some(&token))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    // The right proof: accepted.
    let reply = send(key.proof("GET", &url, now, Some(&token))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn unknown_paths_and_malformed_bodies_are_json_errors() {
    let app = TestApp::new().await;
    let token = admin_token(&app).await;
    let reply = call(&app, Some(&token), "GET", "/nothing-here", None).await;
    assert_api_error(&reply, 404, "not_found", None);
    let request = Request::post("/admin/v1/clients")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from("{not json"))
        .unwrap();
    let reply = app.send(request).await;
    assert_api_error(&reply, 400, "invalid_request", None);
    let reply = call(
        &app,
        Some(&token),
        "POST",
        "/clients",
        Some(serde_json::json!({"name": "x", "no_such_setting": true})),
    )
    .await;
    assert_api_error(&reply, 400, "invalid_request", None);
    assert!(
        reply.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("no_such_setting")
    );
}
