//! `/admin/v1/grants`, `/admin/v1/keys` and `/admin/v1/audit` end to end: a
//! revocation through the API reaches the token status list as every other
//! revocation does; keys rotate, import and retire; the audit trail shows
//! API changes with `via=api` and the actor.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::admin_api::{admin_client, admin_token, assert_api_error, call};
use crate::status::{bit, fetch_list, status_of};
use valet_test_support::api::*;

async fn assert_revoked_on_the_status_list(app: &TestApp, access_token: &str) {
    app.server
        .poll_status_changes(std::time::Duration::ZERO)
        .await
        .unwrap();
    let (idx, uri) = status_of(access_token);
    assert_eq!(bit(&fetch_list(app, &uri).await, idx), 1, "status bit set");
}

#[tokio::test]
async fn grants_are_listed_and_revoked_by_user_client_or_id() {
    grants_listed_and_revoked(&TestApp::new().await).await;
}

#[tokio::test]
async fn grants_are_listed_and_revoked_by_user_client_or_id_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    grants_listed_and_revoked(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

async fn grants_listed_and_revoked(app: &TestApp) {
    let (client, _browser, tokens) = alice_signed_in(app, "openid offline_access").await;
    let token = admin_token(app).await;
    let access = tokens["access_token"].as_str().unwrap();

    let by_user = call(app, Some(&token), "GET", "/grants?user=alice", None).await;
    assert_eq!(by_user.status, StatusCode::OK, "{}", by_user.text());
    let items = by_user.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["client_id"], client.id.as_str());
    let grant_id = items[0]["grant_id"].as_str().unwrap().to_owned();
    let by_client = call(
        app,
        Some(&token),
        "GET",
        &format!("/grants?client={}", client.id),
        None,
    )
    .await
    .json();
    assert_eq!(by_client["items"], json!(items));

    for (query, status, error, field) in [
        ("", 400, "invalid_request", Some("user")),
        ("?user=nobody", 404, "not_found", None),
        ("?client=nothing", 404, "not_found", None),
        ("?limit=0&user=alice", 400, "invalid_request", Some("limit")),
    ] {
        let reply = call(app, Some(&token), "GET", &format!("/grants{query}"), None).await;
        assert_api_error(&reply, status, error, field);
    }

    let reply = call(
        app,
        Some(&token),
        "DELETE",
        &format!("/grants/{grant_id}"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(app.introspect(&client, access).await["active"], false);
    assert_revoked_on_the_status_list(app, access).await;
    let reply = call(
        app,
        Some(&token),
        "DELETE",
        &format!("/grants/{grant_id}"),
        None,
    )
    .await;
    assert_api_error(&reply, 404, "not_found", None);
    let reply = call(app, Some(&token), "GET", "/grants?user=alice", None).await;
    assert_eq!(reply.json()["items"], json!([]));
}

#[tokio::test]
async fn revoking_a_client_s_grants_reaches_the_status_list() {
    let app = TestApp::new().await;
    let (client, _browser, tokens) = alice_signed_in(&app, "openid offline_access").await;
    let admin = admin_client(&app, &["admin:read", "admin:write"]).await;
    let token = app.access_token(&admin).await;
    let access = tokens["access_token"].as_str().unwrap();

    let reply = call(
        &app,
        Some(&token),
        "DELETE",
        &format!("/grants?client={}", client.id),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["revoked_grants"], 1);
    assert_eq!(app.introspect(&client, access).await["active"], false);
    assert_revoked_on_the_status_list(&app, access).await;
    let refresh = app
        .token(
            &client,
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                tokens["refresh_token"].as_str().unwrap()
            ),
        )
        .await;
    refresh.assert_error(400, "invalid_grant");

    // The revocation is in the audit trail, with the actor.
    let reply = call(&app, Some(&token), "GET", "/audit?type=token.revoked", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let event = &reply.json()["items"][0];
    assert_eq!(event["client_id"], client.id.as_str());
    assert_eq!(event["detail"]["via"], "api");
    assert_eq!(event["detail"]["actor"], admin.id.as_str());
}

#[tokio::test]
async fn keys_are_listed_rotated_imported_and_retired() {
    let app = TestApp::new().await;
    let token = admin_token(&app).await;
    let keys = call(&app, Some(&token), "GET", "/keys", None).await;
    assert_eq!(keys.status, StatusCode::OK, "{}", keys.text());
    let before = keys.json()["items"].as_array().unwrap().len();
    assert!(before > 0);

    let reply = call(
        &app,
        Some(&token),
        "POST",
        "/keys/rotate",
        Some(json!({"alg": "ES256"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let kid = reply.json()["kid"].as_str().unwrap().to_owned();
    // A second rotation while that key is pending: a conflict on `alg`.
    let reply = call(
        &app,
        Some(&token),
        "POST",
        "/keys/rotate",
        Some(json!({"alg": "ES256"})),
    )
    .await;
    assert_api_error(&reply, 409, "conflict", Some("alg"));
    let reply = call(
        &app,
        Some(&token),
        "POST",
        "/keys/rotate",
        Some(json!({"alg": "HS256"})),
    )
    .await;
    assert_api_error(&reply, 400, "invalid_request", Some("alg"));

    let listed = call(&app, Some(&token), "GET", "/keys", None).await.json();
    let new_key = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .cloned()
        .unwrap();
    assert_eq!(new_key["state"], "pending");

    let reply = call(
        &app,
        Some(&token),
        "POST",
        &format!("/keys/{kid}/retire"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.json()["published_until"].as_i64().is_some());
    let reply = call(&app, Some(&token), "POST", "/keys/no-such-kid/retire", None).await;
    assert_api_error(&reply, 404, "not_found", None);

    let reply = call(
        &app,
        Some(&token),
        "POST",
        "/keys/import",
        Some(json!({"jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]}})),
    )
    .await;
    assert_api_error(&reply, 400, "invalid_request", Some("jwks"));

    let audit = call(
        &app,
        Some(&token),
        "GET",
        "/audit?type=key.created&limit=5",
        None,
    )
    .await
    .json();
    assert_eq!(audit["items"][0]["detail"]["kid"], kid.as_str());
    assert_eq!(audit["items"][0]["detail"]["via"], "api");
}

#[tokio::test]
async fn the_audit_query_filters_and_checks_its_parameters() {
    let app = TestApp::new().await;
    let admin = admin_client(&app, &["admin:read", "admin:write"]).await;
    let token = app.access_token(&admin).await;
    app.clock.advance(10);
    let since = valet_core::Clock::now(app.clock.as_ref());
    let reply = call(
        &app,
        Some(&token),
        "POST",
        "/users",
        Some(json!({"username": "erin"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);

    let reply = call(
        &app,
        Some(&token),
        "GET",
        &format!("/audit?since={since}"),
        None,
    )
    .await;
    let items: Vec<Value> = reply.json()["items"].as_array().unwrap().clone();
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|event| event["at"].as_i64().unwrap() >= since)
    );
    let created = items
        .iter()
        .find(|event| event["event"] == "user.created")
        .unwrap();
    assert_eq!(created["detail"]["actor"], admin.id.as_str());
    let by_user = call(&app, Some(&token), "GET", "/audit?user=erin", None)
        .await
        .json();
    assert_eq!(by_user["items"][0]["event"], "user.created");
    for (query, field) in [
        ("type=no.such", Some("type")),
        ("limit=0", Some("limit")),
        ("limit=1001", Some("limit")),
        ("since=yesterday", None),
        ("bogus=1", None),
    ] {
        let reply = call(&app, Some(&token), "GET", &format!("/audit?{query}"), None).await;
        assert_api_error(&reply, 400, "invalid_request", field);
    }
}

#[tokio::test]
async fn the_audit_query_filters_by_actor_and_until() {
    audit_by_actor_and_until(&TestApp::new().await).await;
}

#[tokio::test]
async fn the_audit_query_filters_by_actor_and_until_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    audit_by_actor_and_until(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

/// Two API clients each create a user at different times: `actor=` returns
/// only the records one of them caused, `until=` only those up to a time.
async fn audit_by_actor_and_until(app: &TestApp) {
    let first = admin_client(app, &["admin:read", "admin:write"]).await;
    let second = admin_client(app, &["admin:read", "admin:write"]).await;
    let (first_token, second_token) = (
        app.access_token(&first).await,
        app.access_token(&second).await,
    );
    let create = |token: String, username: &'static str| async move {
        let body = json!({ "username": username });
        let reply = call(app, Some(&token), "POST", "/users", Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    };
    app.clock.advance(10);
    create(first_token.clone(), "frank").await;
    let between = valet_core::Clock::now(app.clock.as_ref());
    app.clock.advance(10);
    create(second_token.clone(), "grace").await;
    create(first_token.clone(), "heidi").await;

    let audit = |query: String| {
        let token = first_token.clone();
        async move {
            let reply = call(app, Some(&token), "GET", &format!("/audit?{query}"), None).await;
            assert_eq!(reply.status, StatusCode::OK);
            reply.json()["items"].as_array().unwrap().clone()
        }
    };
    let by_first = audit(format!("actor={}", first.id)).await;
    assert!(
        by_first
            .iter()
            .all(|e| e["detail"]["actor"] == first.id.as_str())
    );
    assert_eq!(
        by_first
            .iter()
            .filter(|e| e["event"] == "user.created")
            .count(),
        2
    );
    let by_second = audit(format!("actor={}", second.id)).await;
    assert_eq!(by_second.len(), 1, "{by_second:?}");
    assert_eq!(by_second[0]["event"], "user.created");
    assert_eq!(by_second[0]["detail"]["actor"], second.id.as_str());

    let early = audit(format!("until={between}")).await;
    assert!(early.iter().all(|e| e["at"].as_i64().unwrap() <= between));
    assert_eq!(
        early
            .iter()
            .filter(|e| e["event"] == "user.created")
            .count(),
        1
    );
    let window = audit(format!(
        "actor={}&since={}&until={}",
        first.id,
        between + 1,
        between + 10
    ))
    .await;
    assert_eq!(window.len(), 1, "{window:?}");
    let nobody = audit("actor=no-such-client".to_owned()).await;
    assert!(nobody.is_empty());
    let reply = call(
        app,
        Some(&second_token),
        "GET",
        "/audit?until=tomorrow",
        None,
    )
    .await;
    assert_api_error(&reply, 400, "invalid_request", None);
}
