//! DPoP-bound tokens (RFC 9449 §7) through the axum layer, and the protected resource
//! metadata (RFC 9728) with `resource_metadata` in challenges.

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use tower::ServiceExt;
use valet_guard::{Guard, VerifiedToken};
use valet_jose::{Algorithm, SigningKey, access_token_hash, b64url, jwk_thumbprint, random_bytes};

use super::support::*;

const ORDERS_URL: &str = "https://orders.example/orders";

/// A client's DPoP key.
struct ClientKey {
    key: SigningKey,
    jwk: Map<String, Value>,
}

impl ClientKey {
    fn new() -> Self {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut jwk = key.public_jwk().clone();
        jwk.remove("kid");
        jwk.remove("use");
        Self { key, jwk }
    }

    fn jkt(&self) -> String {
        jwk_thumbprint(&self.jwk).unwrap()
    }

    fn proof(&self, method: &str, url: &str, iat: i64, token: Option<&str>) -> String {
        let mut claims = json!({
            "jti": b64url(random_bytes::<16>().unwrap()),
            "htm": method, "htu": url, "iat": iat,
        });
        if let Some(token) = token {
            claims["ath"] = json!(access_token_hash(token));
        }
        self.key
            .sign_with_header(
                &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}),
                &claims,
            )
            .unwrap()
    }
}

async fn orders(token: VerifiedToken) -> String {
    format!("orders of {}", token.subject())
}

fn app(guard: Guard) -> Router {
    Router::new()
        .route("/orders", get(orders.layer(guard.require(["orders:read"]))))
        .merge(guard.metadata_router())
        .with_state(guard)
}

async fn send(app: &Router, authorization: &str, proofs: &[&str]) -> Response {
    send_to(app, "GET", "/orders", authorization, proofs).await
}

async fn send_to(
    app: &Router,
    method: &str,
    path: &str,
    authorization: &str,
    proofs: &[&str],
) -> Response {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, authorization);
    for proof in proofs {
        request = request.header("dpop", *proof);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn challenge(response: &Response) -> String {
    response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn guarded(issuer: &FakeIssuer) -> Router {
    let guard = issuer
        .guard_with(issuer.config().resource("https://orders.example"))
        .await;
    app(guard)
}

#[tokio::test]
async fn a_bound_token_with_a_fresh_proof_for_this_request_is_accepted_once() {
    let issuer = FakeIssuer::start().await;
    let app = guarded(&issuer).await;
    let key = ClientKey::new();
    let token = issuer.token_with(|c| c["cnf"] = json!({"jkt": key.jkt()}));
    let proof = key.proof("GET", ORDERS_URL, now(), Some(&token));

    let ok = send(&app, &format!("DPoP {token}"), &[&proof]).await;
    assert_eq!(ok.status(), StatusCode::OK);

    // The same proof again: a replay.
    let replay = send(&app, &format!("DPoP {token}"), &[&proof]).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    let text = challenge(&replay);
    assert!(
        text.starts_with("DPoP ") && text.contains("error=\"invalid_dpop_proof\""),
        "{text}"
    );
    assert!(text.contains("algs=\"ES256 RS256 EdDSA\""), "{text}");
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_refused() {
    let issuer = FakeIssuer::start().await;
    let app = guarded(&issuer).await;
    let key = ClientKey::new();
    let token = issuer.token_with(|c| c["cnf"] = json!({"jkt": key.jkt()}));
    let proof = key.proof("GET", ORDERS_URL, now(), Some(&token));
    // §7.2: even with a good proof alongside, the Bearer scheme is refused.
    let response = send(&app, &format!("Bearer {token}"), &[&proof]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let text = challenge(&response);
    assert!(
        text.starts_with("DPoP ") && text.contains("invalid_token"),
        "{text}"
    );
}

#[tokio::test]
async fn proofs_for_another_request_key_token_or_time_are_refused() {
    let issuer = FakeIssuer::start().await;
    let app = guarded(&issuer).await;
    let key = ClientKey::new();
    let token = issuer.token_with(|c| c["cnf"] = json!({"jkt": key.jkt()}));
    let now = now();
    let cases = [
        ("no proof", None),
        (
            "another method",
            Some(key.proof("POST", ORDERS_URL, now, Some(&token))),
        ),
        (
            "another path",
            Some(key.proof("GET", "https://orders.example/admin", now, Some(&token))),
        ),
        (
            "another host",
            Some(key.proof("GET", "https://evil.example/orders", now, Some(&token))),
        ),
        ("no ath", Some(key.proof("GET", ORDERS_URL, now, None))),
        (
            "another token's ath",
            Some(key.proof("GET", ORDERS_URL, now, Some("other"))),
        ),
        (
            "another key",
            Some(ClientKey::new().proof("GET", ORDERS_URL, now, Some(&token))),
        ),
        (
            "stale",
            Some(key.proof("GET", ORDERS_URL, now - 600, Some(&token))),
        ),
        (
            "future",
            Some(key.proof("GET", ORDERS_URL, now + 600, Some(&token))),
        ),
    ];
    for (name, proof) in cases {
        let proofs: Vec<&str> = proof.iter().map(String::as_str).collect();
        let response = send(&app, &format!("DPoP {token}"), &proofs).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            challenge(&response).contains("invalid_dpop_proof"),
            "{name}: {}",
            challenge(&response)
        );
    }
    // A proof whose query differs is still for this request (§4.3 point 9).
    let with_query = key.proof("GET", &format!("{ORDERS_URL}?page=2"), now, Some(&token));
    let response = send_to(
        &app,
        "GET",
        "/orders?page=3",
        &format!("DPoP {token}"),
        &[&with_query],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unbound_token_under_the_dpop_scheme_and_unknown_confirmations_are_refused() {
    let issuer = FakeIssuer::start().await;
    let app = guarded(&issuer).await;
    let key = ClientKey::new();
    let unbound = issuer.token();
    let proof = key.proof("GET", ORDERS_URL, now(), Some(&unbound));
    let response = send(&app, &format!("DPoP {unbound}"), &[&proof]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).contains("invalid_token"));
    // A mutual-TLS confirmation this guard cannot check is not a bearer token either.
    let mtls = issuer.token_with(|c| c["cnf"] = json!({"x5t#S256": "abc"}));
    let response = send(&app, &format!("Bearer {mtls}"), &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // An ordinary bearer token still works.
    let response = send(&app, &format!("Bearer {unbound}"), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn protected_resource_metadata_is_served_and_named_in_challenges() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer
        .guard_with(
            issuer
                .config()
                .resource("https://orders.example")
                .scopes_supported(["orders:read", "orders:write"]),
        )
        .await;
    let app = app(guard);
    let response = app
        .clone()
        .oneshot(
            Request::get("/.well-known/oauth-protected-resource")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let document: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(document["resource"], "https://orders.example");
    assert_eq!(document["authorization_servers"], json!([issuer.url]));
    assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    assert_eq!(
        document["scopes_supported"],
        json!(["orders:read", "orders:write"])
    );
    assert_eq!(
        document["dpop_signing_alg_values_supported"],
        json!(["ES256", "RS256", "EdDSA"])
    );

    // RFC 9728 §5.1: a 401 names the metadata document.
    let missing = app
        .clone()
        .oneshot(Request::get("/orders").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&missing),
        "Bearer realm=\"https://orders.example\", resource_metadata=\"https://orders.example/.well-known/oauth-protected-resource\""
    );
}
