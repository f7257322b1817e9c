//! RFC 7662 introspection.

use serde_json::json;
use valet_jose::{Algorithm, SigningKey};

use crate::common::*;

#[tokio::test]
async fn a_live_token_is_active_with_its_claims() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let token = app.access_token(&client).await;
    let reply = app
        .post("/introspect", Some(&client), &format!("token={token}"))
        .await;
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], client.id.as_str());
    assert_eq!(body["sub"], client.id.as_str());
    assert_eq!(body["iss"], ISSUER);
    assert_eq!(body["aud"], API);
    assert_eq!(body["scope"], "read write");
    assert_eq!(body["exp"], START + 600);
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn expired_garbage_and_foreign_tokens_are_inactive() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let token = app.access_token(&client).await;

    let (foreign_key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let foreign = foreign_key
        .sign_jwt("at+jwt", &json!({"iss": ISSUER, "sub": "x", "client_id": client.id, "jti": "j", "exp": START + 600}))
        .unwrap();
    let (header, payload) = {
        let mut parts = token.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let unsigned = format!("{header}.{payload}.");
    for bad in [
        foreign.as_str(),
        "garbage",
        "a.b.c",
        unsigned.as_str(),
        &"x".repeat(20_000),
    ] {
        assert_eq!(
            app.introspect(&client, bad).await,
            json!({"active": false}),
            "{bad:.40}"
        );
    }
    app.clock.advance(600);
    assert_eq!(
        app.introspect(&client, &token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn tokens_of_a_deleted_client_are_inactive() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let resource_server = app.service().await;
    let token = app.access_token(&client).await;
    app.store.delete_client(&client.id, app.server.now()).await.unwrap();
    app.clock.advance(6);
    assert_eq!(
        app.introspect(&resource_server, &token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn introspection_requires_an_authenticated_client() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let token = app.access_token(&client).await;
    app.post("/introspect", None, &format!("token={token}"))
        .await
        .assert_error(401, "invalid_client");
    app.post("/introspect", Some(&client), "")
        .await
        .assert_error(400, "invalid_request");
}
