//! A guard started while its issuer is down: `Guard::start_in_background` answers 503
//! (`NotReady`, with `Retry-After`) until the metadata and keys load, keeps retrying, and
//! then verifies as usual; `Guard::new` keeps failing fast.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::response::Response;
use axum::routing::get;
use tower::ServiceExt;
use valet_guard::{Guard, GuardError, TokenError};

use super::support::*;

async fn get_orders(app: &Router, token: Option<&str>) -> Response {
    let mut request = Request::builder().uri("/orders");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body_json(response: Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn started_in_background_the_guard_is_unready_until_the_issuer_answers() {
    let issuer = FakeIssuer::start().await;
    issuer.set_down(true);
    let guard = Guard::start_in_background(issuer.config().build().unwrap()).unwrap();
    let app = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .layer(guard.layer());
    let token = issuer.token();

    assert!(!guard.is_ready());
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::NotReady
    );
    for sent in [Some(token.as_str()), None, Some("not.a.token")] {
        let response = get_orders(&app, sent).await;
        assert_eq!(response.status(), 503, "{sent:?}");
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(
            body_json(response).await,
            serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": "the issuer keys are not loaded yet, retry later"
            })
        );
    }
    // It keeps trying while the issuer is down.
    wait_until(Duration::from_secs(5), || {
        issuer.state.metadata_fetches.load(Ordering::SeqCst) >= 4
    })
    .await;
    assert!(!guard.is_ready());

    issuer.set_down(false);
    wait_until(Duration::from_secs(15), || guard.is_ready()).await;
    assert_eq!(guard.verify(&token).await.unwrap().subject(), "alice");
    assert_eq!(get_orders(&app, Some(&token)).await.status(), 200);
    assert_eq!(get_orders(&app, None).await.status(), 401);
    // Ready means subscribed too: a revocation arrives through the feed.
    issuer.wait_for_streams(1).await;
    issuer.revoke("0", 0, true);
    let revoked = tokio::time::timeout(Duration::from_secs(1), async {
        while guard.verify(&token).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(revoked.is_ok(), "the revocation did not arrive");
}

#[tokio::test]
async fn guard_new_still_fails_at_once_when_the_issuer_is_down() {
    let issuer = FakeIssuer::start().await;
    issuer.set_down(true);
    assert!(matches!(
        Guard::new(issuer.config().build().unwrap()).await,
        Err(GuardError::Discovery { .. })
    ));
    let started = Guard::new(issuer.config().build().unwrap());
    issuer.set_down(false);
    assert!(started.await.unwrap().is_ready());
}

#[test]
fn starting_in_the_background_needs_a_runtime() {
    let config = valet_guard::GuardConfig::builder("https://id.example", AUDIENCE)
        .build()
        .unwrap();
    assert!(matches!(
        Guard::start_in_background(config),
        Err(GuardError::NoRuntime)
    ));
}
