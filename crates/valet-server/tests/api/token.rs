//! The token endpoint: client_credentials, client authentication, and every way a
//! request can be wrong.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use valet_core::admin::NewClient;
use valet_protocol::token::TokenEndpointAuthMethod;

use valet_test_support::api::*;

#[tokio::test]
async fn client_credentials_issues_an_rfc9068_access_token() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let reply = app
        .token(&client, "grant_type=client_credentials&scope=read")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "read");
    assert!(
        body.get("refresh_token").is_none(),
        "RFC 6749 §4.4.3: no refresh token"
    );

    let (header, claims) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["iat"], START);
    assert_eq!(claims["exp"], START + 600);
    assert_eq!(claims["scope"], "read");
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 22));
    let mut names: Vec<&String> = claims.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "scope",
            "status",
            "sub"
        ]
    );
}

#[tokio::test]
async fn client_secret_post_works_and_each_token_is_unique() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        client.id, client.secret
    );
    let first = app.post("/token", None, &body).await;
    let second = app.post("/token", None, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let (_, a) = decode_jwt(first.json()["access_token"].as_str().unwrap());
    let (_, b) = decode_jwt(second.json()["access_token"].as_str().unwrap());
    assert_ne!(a["jti"], b["jti"]);
    // No scope asked: everything the client is registered for.
    assert_eq!(a["scope"], "read write");
}

#[tokio::test]
async fn bad_credentials_are_invalid_client_with_a_challenge() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let wrong = TestClient {
        id: client.id.clone(),
        secret: format!("{}x", client.secret),
    };
    let unknown = TestClient {
        id: "nobody".into(),
        secret: client.secret.clone(),
    };
    for who in [&wrong, &unknown] {
        let reply = app.token(who, "grant_type=client_credentials").await;
        reply.assert_error(401, "invalid_client");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Basic realm=\"valet\"")
        );
        assert_eq!(
            reply.json()["error_description"],
            "client authentication failed"
        );
        assert!(!reply.text().contains(&client.secret));
    }
    // No credentials at all.
    app.post("/token", None, "grant_type=client_credentials")
        .await
        .assert_error(401, "invalid_client");
    // Secret in the body for a confidential client that then omits it.
    app.post(
        "/token",
        None,
        &format!("grant_type=client_credentials&client_id={}", client.id),
    )
    .await
    .assert_error(401, "invalid_client");
    // Malformed Basic header.
    let request = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, "Basic %%%")
        .body(Body::from("grant_type=client_credentials"))
        .unwrap();
    app.send(request).await.assert_error(401, "invalid_client");
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_refused() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let body = format!(
        "grant_type=client_credentials&client_secret={}",
        client.secret
    );
    app.token(&client, &body)
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn malformed_requests_get_precise_errors() {
    let app = TestApp::new().await;
    let client = app.service().await;
    app.token(
        &client,
        "grant_type=client_credentials&grant_type=client_credentials",
    )
    .await
    .assert_error(400, "invalid_request");
    app.token(
        &client,
        "grant_type=client_credentials&scope=read&scope=write",
    )
    .await
    .assert_error(400, "invalid_request");
    app.token(&client, "scope=read")
        .await
        .assert_error(400, "invalid_request");
    for grant in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        // The device grant's short name is for operators, not the wire.
        "device_code",
    ] {
        app.token(&client, &format!("grant_type={grant}"))
            .await
            .assert_error(400, "unsupported_grant_type");
    }
    // Not a form.
    let request = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, basic(&client.id, &client.secret))
        .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
        .unwrap();
    app.send(request).await.assert_error(400, "invalid_request");
    // Too large.
    let huge = format!("grant_type=client_credentials&pad={}", "a".repeat(100_000));
    let reply = app.token(&client, &huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn garbage_bodies_never_cause_a_server_error() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..300 {
        let len = (round * 7) % 400;
        let body: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed & 0xff) as u8
            })
            .collect();
        let request = Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic(&client.id, &client.secret))
            .body(Body::from(body))
            .unwrap();
        let reply = app.send(request).await;
        assert!(
            reply.status.is_client_error() || reply.status == StatusCode::OK,
            "{}",
            reply.status
        );
        assert!(reply.json()["error"].is_string() || reply.json()["access_token"].is_string());
    }
}

#[tokio::test]
async fn get_is_refused() {
    let app = TestApp::new().await;
    let reply = app.get("/token?grant_type=client_credentials").await;
    reply.assert_error(405, "invalid_request");
    assert_eq!(reply.header("allow"), Some("POST"));
}

#[tokio::test]
async fn scope_must_be_within_the_registration() {
    let app = TestApp::new().await;
    let client = app.service().await;
    app.token(&client, "grant_type=client_credentials&scope=read%20admin")
        .await
        .assert_error(400, "invalid_scope");
    app.token(&client, "grant_type=client_credentials&scope=%22quoted%22")
        .await
        .assert_error(400, "invalid_scope");
}

#[tokio::test]
async fn resource_selects_the_audience() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let reply = app
        .token(
            &client,
            "grant_type=client_credentials&resource=https%3A%2F%2Fother.example.test",
        )
        .await;
    let (_, claims) = decode_jwt(reply.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://other.example.test");

    let both = "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.test&resource=https%3A%2F%2Fother.example.test";
    let (_, claims) = decode_jwt(
        app.token(&client, both).await.json()["access_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        claims["aud"],
        serde_json::json!([API, "https://other.example.test"])
    );

    app.token(
        &client,
        "grant_type=client_credentials&resource=https%3A%2F%2Fevil.example",
    )
    .await
    .assert_error(400, "invalid_target");
}

#[tokio::test]
async fn lifetime_is_per_client_and_capped() {
    let mut settings = settings();
    settings.access_token_max_ttl = 900;
    let app = TestApp::with_settings(settings).await;
    let short = app
        .client(NewClient {
            access_token_ttl: Some(60),
            ..service_client()
        })
        .await;
    assert_eq!(
        app.token(&short, "grant_type=client_credentials")
            .await
            .json()["expires_in"],
        60
    );
    // Registered when the maximum was higher: capped at issuance.
    let long = app
        .client(NewClient {
            access_token_ttl: Some(3000),
            ..service_client()
        })
        .await;
    let reply = app.token(&long, "grant_type=client_credentials").await;
    assert_eq!(reply.json()["expires_in"], 900);
    let (_, claims) = decode_jwt(reply.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["exp"], START + 900);
}

#[tokio::test]
async fn clients_not_registered_for_the_grant_are_refused() {
    let app = TestApp::new().await;
    let web = app
        .client(NewClient {
            name: "web".into(),
            redirect_uris: vec!["https://app.example.test/cb".into()],
            ..NewClient::default()
        })
        .await;
    app.token(&web, "grant_type=client_credentials")
        .await
        .assert_error(400, "unauthorized_client");
    let spa = app
        .client(NewClient {
            name: "spa".into(),
            public: true,
            redirect_uris: vec!["https://spa.example.test/cb".into()],
            ..NewClient::default()
        })
        .await;
    app.post(
        "/token",
        None,
        &format!("grant_type=client_credentials&client_id={}", spa.id),
    )
    .await
    .assert_error(400, "unauthorized_client");
}

#[tokio::test]
async fn a_deleted_client_stops_getting_tokens() {
    let mut settings = settings();
    settings.client_cache_ttl = 5;
    let app = TestApp::with_settings(settings).await;
    let client = app.service().await;
    app.access_token(&client).await;
    assert!(
        app.store
            .delete_client(&client.id, app.server.now())
            .await
            .unwrap()
    );
    app.clock.advance(5);
    app.token(&client, "grant_type=client_credentials")
        .await
        .assert_error(401, "invalid_client");
}

/// A copy of `client` under a new id, registered only for `methods`.
async fn registered_for(
    app: &TestApp,
    client: &TestClient,
    methods: &[TokenEndpointAuthMethod],
) -> TestClient {
    let mut record = app.store.get_client(&client.id).await.unwrap().unwrap();
    record.client_id = format!("{}-only", client.id);
    record.token_endpoint_auth_methods = methods.to_vec();
    app.store.insert_client(&record).await.unwrap();
    TestClient {
        id: record.client_id,
        secret: client.secret.clone(),
    }
}

#[tokio::test]
async fn registered_clients_record_their_auth_methods() {
    let app = TestApp::new().await;
    let service = app.service().await;
    let public = app
        .client(NewClient {
            name: "spa".into(),
            public: true,
            redirect_uris: vec!["https://spa.example.test/cb".into()],
            ..NewClient::default()
        })
        .await;
    let methods = async |id: &str| {
        app.store
            .get_client(id)
            .await
            .unwrap()
            .unwrap()
            .token_endpoint_auth_methods
    };
    // Confidential clients may send the secret either way, as before the
    // method was recorded; a public client is `none`, not "no secret".
    assert_eq!(
        methods(&service.id).await,
        [
            TokenEndpointAuthMethod::ClientSecretBasic,
            TokenEndpointAuthMethod::ClientSecretPost
        ]
    );
    assert_eq!(methods(&public.id).await, [TokenEndpointAuthMethod::None]);
}

/// RFC 6749 §2.3.1: a client registered for `client_secret_basic` that sends its
/// (right) secret in the body is refused, and the other way round.
#[tokio::test]
async fn a_secret_sent_by_an_unregistered_method_is_invalid_client() {
    let app = TestApp::new().await;
    let service = app.service().await;
    let basic_only = registered_for(
        &app,
        &service,
        &[TokenEndpointAuthMethod::ClientSecretBasic],
    )
    .await;
    let in_body = |client: &TestClient| {
        format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            client.id, client.secret
        )
    };
    let refused = app.post("/token", None, &in_body(&basic_only)).await;
    refused.assert_error(401, "invalid_client");
    assert_eq!(
        refused.json()["error_description"],
        "this client is not registered for client_secret_post: send its secret with HTTP \
         Basic authentication"
    );
    assert!(!refused.text().contains(&basic_only.secret));
    let allowed = app
        .token(&basic_only, "grant_type=client_credentials")
        .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text());

    let other = app.service().await;
    let post_only =
        registered_for(&app, &other, &[TokenEndpointAuthMethod::ClientSecretPost]).await;
    let refused = app.token(&post_only, "grant_type=client_credentials").await;
    refused.assert_error(401, "invalid_client");
    assert_eq!(
        refused.json()["error_description"],
        "this client is not registered for client_secret_basic: send its secret in the \
         request body"
    );
    let allowed = app.post("/token", None, &in_body(&post_only)).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text());
}
