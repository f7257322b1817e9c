//! RFC 7662 introspection.

use serde_json::json;
use valet_jose::{Algorithm, SigningKey};

use valet_test_support::api::*;

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
    app.store
        .delete_client(&client.id, app.server.now())
        .await
        .unwrap();
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

/// RFC 7662 §2.1/§2.2: a confidential client sees a live token's claims only if
/// the token was issued to it, names it in `aud`, or it holds the introspection
/// permission; to any other client the token is `{"active": false}`, exactly as
/// an unknown one (nothing tells that it exists).
#[tokio::test]
async fn only_the_owner_an_audience_or_a_permitted_client_sees_a_token() {
    let app = TestApp::new().await;
    let resource_server = app.service().await;
    let owner = app
        .client(valet_core::admin::NewClient {
            audiences: vec![API.into(), resource_server.id.clone()],
            ..service_client()
        })
        .await;
    let bystander = app.service().await;
    let auditor = app
        .client(valet_core::admin::NewClient {
            introspect_any: true,
            ..service_client()
        })
        .await;
    let for_api = app.access_token(&owner).await;
    let for_resource_server = app
        .token(
            &owner,
            &format!(
                "grant_type=client_credentials&resource={}",
                encode(&resource_server.id)
            ),
        )
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let inactive = json!({"active": false});
    assert_eq!(app.introspect(&bystander, &for_api).await, inactive);
    assert_eq!(
        app.introspect(&bystander, &for_resource_server).await,
        inactive
    );
    assert_eq!(app.introspect(&resource_server, &for_api).await, inactive);
    assert_eq!(
        app.introspect(&bystander, "not-a-token").await,
        inactive,
        "the same answer as for garbage"
    );

    assert_eq!(app.introspect(&owner, &for_api).await["active"], true);
    let seen = app.introspect(&resource_server, &for_resource_server).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["aud"], resource_server.id.as_str());
    assert_eq!(app.introspect(&auditor, &for_api).await["active"], true);
    assert_eq!(
        app.introspect(&auditor, &for_resource_server).await["client_id"],
        owner.id.as_str()
    );
}

/// A refresh token is seen only by the client it was issued to (it has no
/// audience) or a permitted client.
#[tokio::test]
async fn another_clients_refresh_token_is_inactive() {
    let app = TestApp::new().await;
    let (client, _, tokens) = alice_signed_in(&app, "openid offline_access").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let bystander = app.service().await;
    let auditor = app
        .client(valet_core::admin::NewClient {
            introspect_any: true,
            ..service_client()
        })
        .await;
    assert_eq!(
        app.introspect(&bystander, refresh_token).await,
        json!({"active": false})
    );
    assert_eq!(app.introspect(&client, refresh_token).await["active"], true);
    assert_eq!(
        app.introspect(&auditor, refresh_token).await["token_type"],
        "refresh_token"
    );
}
