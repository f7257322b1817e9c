//! Client secret rotation with overlap (`valet client secret rotate --overlap`):
//! the new secret works at once, the old one until the overlap ends, then only
//! the new one; at most one previous secret.

use valet_core::admin::{AdminError, RotatedSecret};

use valet_test_support::api::*;

async fn rotate(app: &TestApp, client: &TestClient, overlap: i64) -> (TestClient, RotatedSecret) {
    let rotated = app
        .admin()
        .rotate_client_secret(&client.id, overlap)
        .await
        .unwrap();
    (client.with_secret(rotated.secret.expose()), rotated)
}

async fn works(app: &TestApp, client: &TestClient) -> bool {
    let reply = app.token(client, "grant_type=client_credentials").await;
    if reply.status.as_u16() == 401 {
        reply.assert_error(401, "invalid_client");
        return false;
    }
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    true
}

#[tokio::test]
async fn the_old_secret_works_until_the_overlap_ends() {
    let app = TestApp::new().await;
    let old = app.service().await;
    // This node caches the client with its old secret.
    assert!(works(&app, &old).await);

    let (new, rotated) = rotate(&app, &old, 3_600).await;
    assert_eq!(rotated.previous_valid_until, Some(START + 3_600));
    assert!(works(&app, &new).await, "the new secret works at once");
    assert!(works(&app, &old).await, "the old one still works");
    // Also at the introspection endpoint, which authenticates the same way.
    assert_eq!(
        app.post("/introspect", Some(&old), "token=x").await.status,
        200
    );

    app.clock.advance(3_599);
    assert!(
        works(&app, &old).await,
        "until the last second of the overlap"
    );
    app.clock.advance(1);
    assert!(!works(&app, &old).await, "then no more");
    assert!(works(&app, &new).await);
}

#[tokio::test]
async fn without_overlap_the_old_secret_stops() {
    let app = TestApp::new().await;
    let old = app.service().await;
    let (new, rotated) = rotate(&app, &old, 0).await;
    assert_eq!(rotated.previous_valid_until, None);
    assert!(works(&app, &new).await);
    assert!(!works(&app, &old).await);
}

#[tokio::test]
async fn only_one_previous_secret_is_kept() {
    let app = TestApp::new().await;
    let first = app.service().await;
    let (second, _) = rotate(&app, &first, 3_600).await;
    app.clock.advance(60);
    let (third, _) = rotate(&app, &second, 3_600).await;
    assert!(!works(&app, &first).await, "the oldest is dropped");
    assert!(works(&app, &second).await);
    assert!(works(&app, &third).await);
    let stored = app.store.get_client(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.previous_secret_expires_at, Some(START + 60 + 3_600));
}

#[tokio::test]
async fn a_bad_overlap_or_a_public_client_changes_nothing() {
    let app = TestApp::new().await;
    let client = app.service().await;
    for overlap in [-1, 30 * 86_400 + 1] {
        let refused = app
            .admin()
            .rotate_client_secret(&client.id, overlap)
            .await
            .unwrap_err();
        assert!(matches!(refused, AdminError::Invalid(_)), "{refused}");
        assert_eq!(
            refused.to_string(),
            "overlap_seconds: must be between 0 and 30 days"
        );
    }
    assert!(works(&app, &client).await);
    let public = app
        .client(valet_core::admin::NewClient {
            name: "spa".into(),
            public: true,
            redirect_uris: vec![WEB_REDIRECT.into()],
            ..Default::default()
        })
        .await;
    let refused = app
        .admin()
        .rotate_client_secret(&public.id, 60)
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!("no confidential client with id {}", public.id)
    );
}
