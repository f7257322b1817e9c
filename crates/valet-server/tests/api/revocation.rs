//! RFC 7009 revocation.

use serde_json::json;

use valet_test_support::api::*;

#[tokio::test]
async fn a_revoked_token_is_inactive_at_once() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let token = app.access_token(&client).await;
    let reply = app
        .post(
            "/revoke",
            Some(&client),
            &format!("token={token}&token_type_hint=access_token"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.body.is_empty());
    assert_eq!(
        app.introspect(&client, &token).await,
        json!({"active": false})
    );
    // Revoking again is fine.
    let reply = app
        .post("/revoke", Some(&client), &format!("token={token}"))
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn unknown_tokens_answer_200() {
    let app = TestApp::new().await;
    let client = app.service().await;
    for token in ["nonsense", "a.b.c", "vrt_unknown"] {
        let reply = app
            .post("/revoke", Some(&client), &format!("token={token}"))
            .await;
        assert_eq!(reply.status, 200, "{token}");
    }
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let app = TestApp::new().await;
    let owner = app.service().await;
    let attacker = app.service().await;
    let token = app.access_token(&owner).await;
    app.post("/revoke", Some(&attacker), &format!("token={token}"))
        .await
        .assert_error(400, "unauthorized_client");
    assert_eq!(app.introspect(&owner, &token).await["active"], true);
}

#[tokio::test]
async fn revocation_requires_client_authentication() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let token = app.access_token(&client).await;
    app.post("/revoke", None, &format!("token={token}"))
        .await
        .assert_error(401, "invalid_client");
    assert_eq!(app.introspect(&client, &token).await["active"], true);
}

#[tokio::test]
async fn revocation_records_are_purged_after_expiry() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let token = app.access_token(&client).await;
    app.post("/revoke", Some(&client), &format!("token={token}"))
        .await;
    let (_, claims) = decode_jwt(&token);
    let jti = claims["jti"].as_str().unwrap();
    assert!(app.store.is_revoked(jti).await.unwrap());
    app.clock.advance(601);
    app.server.maintain().await.unwrap();
    assert!(!app.store.is_revoked(jti).await.unwrap());
}
