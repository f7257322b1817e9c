//! The extractor, `Guard::require` per route and `Guard::layer` for a router, driven with
//! `oneshot` like axum's own testing example.

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tower::ServiceExt;
use valet_guard::{Guard, VerifiedToken};

use super::support::*;

async fn whoami(token: VerifiedToken) -> String {
    format!("hello {}", token.subject())
}

async fn public() -> &'static str {
    "public"
}

/// The orders example's shape: a public route, a read route, a write route.
fn app(guard: Guard) -> Router {
    Router::new()
        .route("/public", get(public))
        .route("/me", get(whoami))
        .route(
            "/orders",
            get(whoami.layer(guard.require(["orders:read"])))
                .post(whoami.layer(guard.require(["orders:write"]))),
        )
        .with_state(guard)
}

async fn call(app: Router, path: &str, authorization: Option<&str>) -> Response {
    call_method(app, "GET", path, authorization).await
}

async fn call_method(
    app: Router,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> Response {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    app.oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn challenge(response: &Response) -> Option<String> {
    response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn json_body(response: Response) -> Value {
    serde_json::from_str(&text(response).await).unwrap()
}

#[tokio::test]
async fn a_missing_token_is_a_bare_401_challenge() {
    let issuer = FakeIssuer::start().await;
    let app = app(issuer.guard().await);
    for (path, authorization) in [
        ("/me", None),
        ("/orders", None),
        ("/me", Some("Basic YTpi")),
    ] {
        let response = call(app.clone(), path, authorization).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&response).as_deref(),
            Some("Bearer realm=\"https://orders.example\"")
        );
        assert_eq!(
            json_body(response).await,
            json!({"error_description": "a bearer token is required"})
        );
    }
    assert_eq!(text(call(app, "/public", None).await).await, "public");
}

#[tokio::test]
async fn an_invalid_token_is_401_invalid_token() {
    let issuer = FakeIssuer::start().await;
    let app = app(issuer.guard().await);
    let expired = issuer.token_with(|c| c["exp"] = (now() - 3600).into());
    let response = call(app.clone(), "/me", Some(&format!("Bearer {expired}"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response).as_deref(),
        Some(
            "Bearer realm=\"https://orders.example\", error=\"invalid_token\", \
             error_description=\"the access token expired\""
        )
    );
    assert_eq!(
        response.headers().get(header::CACHE_CONTROL).unwrap(),
        "no-store"
    );
    assert_eq!(
        json_body(response).await,
        json!({"error": "invalid_token", "error_description": "the access token expired"})
    );
    let response = call(app.clone(), "/orders", Some("Bearer not.a.token")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = text(response).await;
    assert!(!body.contains("not.a.token"), "the token is never echoed");
    issuer.revoke("0", 0, false);
    let fresh_guard = issuer.guard().await;
    let response = call(
        self::app(fresh_guard),
        "/me",
        Some(&format!("Bearer {}", issuer.token())),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).unwrap().contains("revoked"));
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let issuer = FakeIssuer::start().await;
    let app = app(issuer.guard().await);
    let token = issuer.token();
    let request = Request::builder()
        .uri("/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        challenge(&response)
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
}

#[tokio::test]
async fn a_missing_scope_is_403_insufficient_scope() {
    let issuer = FakeIssuer::start().await;
    let app = app(issuer.guard().await);
    let bearer = format!("Bearer {}", issuer.token());
    let response = call_method(app.clone(), "POST", "/orders", Some(&bearer)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&response).as_deref(),
        Some(
            "Bearer realm=\"https://orders.example\", error=\"insufficient_scope\", \
             error_description=\"the access token lacks a scope this resource requires\", \
             scope=\"orders:write\""
        )
    );
    assert_eq!(json_body(response).await["error"], "insufficient_scope");
    let writer = issuer.token_with(|c| c["scope"] = "orders:write".into());
    let response = call_method(app, "POST", "/orders", Some(&format!("Bearer {writer}"))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_with_its_subject() {
    let issuer = FakeIssuer::start().await;
    let app = app(issuer.guard().await);
    let bearer = format!("Bearer {}", issuer.token());
    for path in ["/me", "/orders"] {
        let response = call(app.clone(), path, Some(&bearer)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(text(response).await, "hello alice");
    }
    // The scheme is case-insensitive (RFC 7235 §2.1).
    let response = call(app, "/me", Some(&bearer.replace("Bearer", "bEaReR"))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// `guard.layer()` over a whole router: the token is verified once and handlers (even
/// with another state) find it in the extensions.
#[tokio::test]
async fn a_router_wide_layer_verifies_once_for_every_route() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let app = Router::new()
        .route(
            "/a",
            get(
                |token: axum::Extension<VerifiedToken>| async move { token.client_id().to_owned() },
            ),
        )
        .route(
            "/b",
            get(|| async { "scoped" }).layer(guard.require(["orders:read"])),
        )
        .route(
            "/c",
            get(|| async { "never" }).layer(guard.require(["admin"])),
        )
        .layer(guard.layer());
    let bearer = format!("Bearer {}", issuer.token());
    let response = call(app.clone(), "/a", Some(&bearer)).await;
    assert_eq!(text(response).await, "shop-frontend");
    assert_eq!(
        call(app.clone(), "/b", Some(&bearer)).await.status(),
        StatusCode::OK
    );
    let response = call(app.clone(), "/c", Some(&bearer)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&response).unwrap().ends_with("scope=\"admin\""));
    let response = call(app, "/a", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn status_unavailable_is_503_without_a_challenge() {
    let issuer = FakeIssuer::start().await;
    let app = app(issuer.guard().await);
    issuer.set_down(true);
    let response = call(app, "/me", Some(&format!("Bearer {}", issuer.token()))).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(challenge(&response), None);
    assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "5");
    assert_eq!(
        json_body(response).await["error"],
        "temporarily_unavailable"
    );
}
