//! Token exchange (RFC 8693) for delegation: a service that received a token
//! exchanges it for one to call the next API, within its registered policy.
//! The new token keeps the subject, names the actors in a nested `act` claim,
//! never outlives its subject token and dies with its grant; exchanges outside
//! the policy are refused with the §2.2.2 codes. SQLite and PostgreSQL.

use axum::http::StatusCode;
use serde_json::json;
use valet_core::admin::{AdminError, NewClient};

use valet_test_support::api::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const DOWNSTREAM: &str = "https://downstream.example.test";
const FINAL: &str = "https://final.example.test";

/// A service allowed to exchange tokens into `audiences`.
async fn exchanger(app: &TestApp, audiences: &[&str], scopes: &[&str]) -> TestClient {
    app.client(NewClient {
        name: "exchanging service".into(),
        grant_types: vec!["token_exchange".into()],
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        token_exchange_audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        ..NewClient::default()
    })
    .await
}

async fn exchange(app: &TestApp, client: &TestClient, subject: &str, extra: &str) -> Reply {
    app.token(
        client,
        &format!(
            "grant_type={}&subject_token={subject}&subject_token_type={}{extra}",
            encode(GRANT),
            encode(ACCESS_TOKEN_TYPE)
        ),
    )
    .await
}

/// A front service whose client_credentials tokens are for `audience`.
async fn front_service(app: &TestApp, audience: &str) -> (TestClient, String) {
    let front = app
        .client(NewClient {
            audiences: vec![audience.to_owned()],
            ..service_client()
        })
        .await;
    let reply = app
        .token(&front, "grant_type=client_credentials&scope=read%20write")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    (front, token)
}

async fn delegation_chain(app: &TestApp) {
    let last = exchanger(app, &[FINAL], &["read"]).await;
    let middle = exchanger(app, &[&last.id, DOWNSTREAM], &["read", "write"]).await;
    let (front, subject) = front_service(app, &middle.id).await;
    let (_, subject_claims) = decode_jwt(&subject);

    let reply = exchange(
        app,
        &middle,
        &subject,
        &format!("&audience={}&scope=read", encode(&last.id)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    assert!(body.get("refresh_token").is_none());
    let first = body["access_token"].as_str().unwrap().to_owned();
    let (header, claims) = decode_jwt(&first);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], front.id.as_str(), "the subject stays");
    assert_eq!(claims["client_id"], middle.id.as_str());
    assert_eq!(claims["aud"], last.id.as_str());
    assert_eq!(claims["act"], json!({ "sub": middle.id }));
    assert_eq!(
        claims["status"], subject_claims["status"],
        "revoked with its subject"
    );
    assert!(claims["exp"].as_i64() <= subject_claims["exp"].as_i64());

    // The next service exchanges again: the actors nest, latest outermost (§4.1).
    let reply = exchange(app, &last, &first, "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let second = reply.json()["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = decode_jwt(&second);
    assert_eq!(claims["aud"], FINAL, "no audience asked: the first allowed");
    assert_eq!(claims["scope"], "read");
    assert_eq!(
        claims["act"],
        json!({ "sub": last.id, "act": { "sub": middle.id } })
    );
    let introspected = app.introspect(&last, &second).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["act"]["act"]["sub"], middle.id.as_str());

    // With an actor token, its subject is the actor.
    let (actor_client, actor_token) = front_service(app, &middle.id).await;
    let reply = exchange(
        app,
        &middle,
        &subject,
        &format!(
            "&actor_token={actor_token}&actor_token_type={}&resource={}",
            encode(ACCESS_TOKEN_TYPE),
            encode(DOWNSTREAM)
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let (_, claims) = decode_jwt(reply.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["act"], json!({ "sub": actor_client.id }));
    assert_eq!(claims["aud"], DOWNSTREAM);
}

/// Exchanges outside the policy or with bad tokens change nothing and answer
/// with the code RFC 8693 §2.2.2 names.
async fn refusals(app: &TestApp) {
    let middle = exchanger(app, &[DOWNSTREAM], &["read"]).await;
    let stranger = exchanger(app, &[DOWNSTREAM], &["read"]).await;
    let (front, subject) = front_service(app, &middle.id).await;

    for (what, client, token, extra, status, code) in [
        (
            "a forbidden audience",
            &middle,
            subject.as_str(),
            format!("&audience={}", encode(API)),
            400,
            "invalid_target",
        ),
        (
            "a forbidden resource",
            &middle,
            subject.as_str(),
            format!("&resource={}", encode(API)),
            400,
            "invalid_target",
        ),
        (
            "more scope than the client has",
            &middle,
            subject.as_str(),
            "&scope=read%20write".to_owned(),
            400,
            "invalid_scope",
        ),
        (
            "a token meant for another service",
            &stranger,
            subject.as_str(),
            String::new(),
            400,
            "invalid_request",
        ),
        (
            "not a token",
            &middle,
            "not-a-token",
            String::new(),
            400,
            "invalid_request",
        ),
        (
            "a refresh token asked for",
            &middle,
            subject.as_str(),
            format!(
                "&requested_token_type={}",
                encode("urn:ietf:params:oauth:token-type:refresh_token")
            ),
            400,
            "invalid_request",
        ),
        (
            "an actor token that is not one",
            &middle,
            subject.as_str(),
            format!(
                "&actor_token=x.y.z&actor_token_type={}",
                encode(ACCESS_TOKEN_TYPE)
            ),
            400,
            "invalid_request",
        ),
    ] {
        let reply = exchange(app, client, token, &extra).await;
        assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.text());
        reply.assert_error(status, code);
    }
    // Without the subject token's type.
    app.token(
        &middle,
        &format!("grant_type={}&subject_token={subject}", encode(GRANT)),
    )
    .await
    .assert_error(400, "invalid_request");
    // A client not registered for the grant (off by default).
    exchange(app, &front, &subject, "")
        .await
        .assert_error(400, "unauthorized_client");

    // Expiry: the new token never outlives the subject; an expired subject is refused.
    let (_, subject_claims) = decode_jwt(&subject);
    let left = 100;
    let exp = subject_claims["exp"].as_i64().unwrap();
    {
        use valet_core::Clock as _;
        app.clock.advance(exp - left - app.clock.now());
    }
    let reply = exchange(app, &middle, &subject, "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.json()["expires_in"].as_i64().unwrap() <= left);
    app.clock.advance(left);
    exchange(app, &middle, &subject, "")
        .await
        .assert_error(400, "invalid_request");
}

/// A revoked subject token cannot be exchanged, and revoking a user's grant
/// revokes the tokens exchanged from its access tokens.
async fn revoked_subjects(app: &TestApp) {
    let middle = exchanger(app, &[DOWNSTREAM], &["read", "photos:read"]).await;
    let (front, subject) = front_service(app, &middle.id).await;
    let reply = app
        .post("/revoke", Some(&front), &format!("token={subject}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    exchange(app, &middle, &subject, "")
        .await
        .assert_error(400, "invalid_request");

    // alice signs in to a web app whose tokens are for the middle service.
    app.user("alice").await;
    let web = app
        .web_client(|c| {
            c.skip_consent = true;
            c.audiences = vec![middle.id.clone()];
        })
        .await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        app,
        &mut browser,
        &authorize_path(
            &web.id,
            &pkce,
            "openid photos:read",
            &format!("&resource={}", encode(&middle.id)),
        ),
        "alice",
    )
    .await;
    let tokens = redeem(app, &web, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let tokens = tokens.json();
    let user_token = tokens["access_token"].as_str().unwrap().to_owned();
    let reply = exchange(app, &middle, &user_token, "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let exchanged = reply.json()["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = decode_jwt(&exchanged);
    let (_, user_claims) = decode_jwt(&user_token);
    assert_eq!(claims["sub"], user_claims["sub"], "still alice");
    assert_eq!(claims["scope"], "photos:read", "only what both hold");
    assert_eq!(app.introspect(&middle, &exchanged).await["active"], true);

    // alice's app revokes her access token, and with it the grant (its status
    // list entry, which the exchanged token shares).
    let reply = app
        .post("/revoke", Some(&web), &format!("token={user_token}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    exchange(app, &middle, &user_token, "")
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(app.introspect(&middle, &exchanged).await["active"], false);
}

/// The status list bit of `token` (what guards check), after publishing changes.
async fn status_bit(app: &TestApp, token: &str) -> u8 {
    use std::io::Read as _;
    app.server
        .poll_status_changes(std::time::Duration::ZERO)
        .await
        .unwrap();
    let (_, claims) = decode_jwt(token);
    let reference = &claims["status"]["status_list"];
    let idx = usize::try_from(reference["idx"].as_i64().unwrap()).unwrap();
    let path = reference["uri"]
        .as_str()
        .unwrap()
        .strip_prefix(ISSUER)
        .unwrap();
    let list = app.get(path).await.text();
    let (_, list) = decode_jwt(&list);
    let compressed =
        valet_jose::b64url_decode(list["status_list"]["lst"].as_str().unwrap()).unwrap();
    let mut bits = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .read_to_end(&mut bits)
        .unwrap();
    (bits[idx / 8] >> (idx % 8)) & 1
}

/// Guards see an exchanged token through its subject's status list entry:
/// revoking the subject revokes it; the exchanging client revoking the
/// exchanged token does not touch the subject's entry (introspection still
/// says it is inactive).
async fn status_follows_the_subject(app: &TestApp) {
    let middle = exchanger(app, &[DOWNSTREAM], &["read"]).await;
    let (front, subject) = front_service(app, &middle.id).await;
    let exchanged = |reply: Reply| {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["access_token"].as_str().unwrap().to_owned()
    };
    let first = exchanged(exchange(app, &middle, &subject, "").await);
    let reply = app
        .post("/revoke", Some(&middle), &format!("token={first}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.introspect(&middle, &first).await["active"], false);
    assert_eq!(
        status_bit(app, &subject).await,
        0,
        "the subject is not the middle's to revoke"
    );
    assert_eq!(app.introspect(&front, &subject).await["active"], true);

    let second = exchanged(exchange(app, &middle, &subject, "").await);
    assert_eq!(status_bit(app, &second).await, 0);
    let reply = app
        .post("/revoke", Some(&front), &format!("token={subject}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        status_bit(app, &second).await,
        1,
        "revoked with its subject at guards"
    );
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn on_sqlite() {
                super::$name(&TestApp::new().await).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some((app, schema)) = TestApp::on_postgres().await else {
                    return;
                };
                super::$name(&app).await;
                TestApp::drop_postgres_schema(&schema).await;
            }
        }
    )*};
}

on_both_stores!(
    delegation_chain,
    refusals,
    revoked_subjects,
    status_follows_the_subject,
);

#[tokio::test]
async fn the_policy_is_checked_at_registration() {
    let app = TestApp::new().await;
    let refused = |new: NewClient| {
        let app = &app;
        async move {
            match app.admin().register_client(new).await {
                Err(AdminError::Invalid(error)) => error.to_string(),
                other => panic!("accepted: {other:?}"),
            }
        }
    };
    let no_audiences = refused(NewClient {
        name: "x".into(),
        grant_types: vec![GRANT.into()],
        ..NewClient::default()
    })
    .await;
    assert!(
        no_audiences.contains("token exchange audience"),
        "{no_audiences}"
    );
    let no_grant = refused(NewClient {
        token_exchange_audiences: vec![DOWNSTREAM.into()],
        ..service_client()
    })
    .await;
    assert!(no_grant.contains("token_exchange grant"), "{no_grant}");
    let public = refused(NewClient {
        name: "x".into(),
        public: true,
        redirect_uris: vec![WEB_REDIRECT.into()],
        grant_types: vec!["authorization_code".into(), "token_exchange".into()],
        token_exchange_audiences: vec![DOWNSTREAM.into()],
        ..NewClient::default()
    })
    .await;
    assert!(public.contains("public client"), "{public}");
    let spaced = refused(NewClient {
        name: "x".into(),
        grant_types: vec![GRANT.into()],
        token_exchange_audiences: vec!["a b".into()],
        ..NewClient::default()
    })
    .await;
    assert!(
        spaced.starts_with("token_exchange_audiences[0]"),
        "{spaced}"
    );
    assert!(app.admin().list_clients().await.unwrap().is_empty());
}
