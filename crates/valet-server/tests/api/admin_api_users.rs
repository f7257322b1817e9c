//! `/admin/v1/users` end to end: create, page, read, change, disable, enable,
//! unlock, reset second factors, sessions, delete; audited with the actor.

use axum::http::StatusCode;
use serde_json::json;
use valet_core::audit::{AuditFilter, AuditKind};

use crate::admin_api::{admin_client, admin_token, assert_api_error, call};
use valet_test_support::api::*;

#[tokio::test]
async fn a_user_is_created_changed_and_deleted_through_the_api() {
    let app = TestApp::new().await;
    let admin = admin_client(&app, &["admin:read", "admin:write"]).await;
    let token = app.access_token(&admin).await;

    let reply = call(
        &app,
        Some(&token),
        "POST",
        "/users",
        Some(json!({"username": "bob", "email": "bob@example.test", "password": PASSWORD})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let user = reply.json();
    assert_eq!(user["has_password"], true);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let id = user["user_id"].as_str().unwrap().to_owned();

    // By id, username or email.
    for key in [id.as_str(), "bob", "bob@example.test"] {
        let reply = call(&app, Some(&token), "GET", &format!("/users/{key}"), None).await;
        assert_eq!(reply.json()["user_id"], id.as_str());
    }

    let reply = call(
        &app,
        Some(&token),
        "PATCH",
        "/users/bob",
        Some(json!({"name": "Bob Example", "email": "robert@example.test"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["user"]["email"], "robert@example.test");
    assert_eq!(reply.json()["changed"], json!(["email", "name"]));
    let events = app
        .store
        .audit_events(&AuditFilter {
            user_id: Some(id.clone()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let updated = events
        .iter()
        .find(|event| event.event == AuditKind::UserUpdated)
        .expect("user.updated");
    assert_eq!(updated.detail["via"], "api");
    assert_eq!(updated.detail["actor"], admin.id.as_str());
    assert_eq!(updated.detail["changed"], "email name");

    for (path, disabled) in [("/users/bob/disable", true), ("/users/bob/enable", false)] {
        let reply = call(&app, Some(&token), "POST", path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.json()["user"]["disabled"], disabled);
        assert_eq!(
            app.store.get_user(&id).await.unwrap().unwrap().disabled,
            disabled
        );
    }
    let reply = call(&app, Some(&token), "POST", "/users/bob/unlock", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = call(&app, Some(&token), "POST", "/users/bob/mfa/reset", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["removed"], false);

    let reply = call(&app, Some(&token), "DELETE", "/users/bob", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(app.store.get_user(&id).await.unwrap().is_none());
    for (method, path) in [
        ("GET", "/users/bob"),
        ("PATCH", "/users/bob"),
        ("DELETE", "/users/bob"),
        ("POST", "/users/bob/disable"),
        ("POST", "/users/bob/enable"),
        ("POST", "/users/bob/unlock"),
        ("POST", "/users/bob/mfa/reset"),
        ("GET", "/users/bob/sessions"),
        ("DELETE", "/users/bob/sessions"),
    ] {
        let reply = call(&app, Some(&token), method, path, Some(json!({}))).await;
        assert_api_error(&reply, 404, "not_found", None);
    }
}

#[tokio::test]
async fn invalid_users_name_the_field() {
    let app = TestApp::new().await;
    let token = admin_token(&app).await;
    app.user("carol").await;
    for (body, status, error, field) in [
        (
            json!({"username": "", "email": "x@example.test"}),
            400,
            "invalid_request",
            "username",
        ),
        (
            json!({"username": "dave", "email": "not-an-email"}),
            400,
            "invalid_request",
            "email",
        ),
        (
            json!({"username": "dave", "password": "short"}),
            400,
            "invalid_request",
            "password",
        ),
        (json!({"username": "carol"}), 409, "conflict", "username"),
    ] {
        let reply = call(&app, Some(&token), "POST", "/users", Some(body)).await;
        assert_api_error(&reply, status, error, Some(field));
    }
    let reply = call(
        &app,
        Some(&token),
        "PATCH",
        "/users/carol",
        Some(json!({"email": "bad"})),
    )
    .await;
    assert_api_error(&reply, 400, "invalid_request", Some("email"));
}

#[tokio::test]
async fn users_are_listed_in_pages() {
    users_listed_in_pages(&TestApp::new().await).await;
}

#[tokio::test]
async fn users_are_listed_in_pages_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    users_listed_in_pages(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

/// Pages come from the store in the stable order; a page that ends exactly
/// at the last user has no `next_cursor`.
async fn users_listed_in_pages(app: &TestApp) {
    let token = admin_token(app).await;
    for name in ["u1", "u2", "u3"] {
        app.clock.advance(1);
        app.user(name).await;
    }
    let exact = call(app, Some(&token), "GET", "/users?limit=3", None)
        .await
        .json();
    assert_eq!(exact["items"].as_array().unwrap().len(), 3);
    assert!(exact["next_cursor"].is_null(), "{exact}");
    let first = call(app, Some(&token), "GET", "/users?limit=2", None)
        .await
        .json();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = call(
        app,
        Some(&token),
        "GET",
        &format!("/users?limit=2&cursor={cursor}"),
        None,
    )
    .await
    .json();
    let names: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|user| user["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["u1", "u2", "u3"]);
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn ending_a_user_s_sessions_signs_them_out_and_revokes_their_tokens() {
    let app = TestApp::new().await;
    let (client, mut browser, tokens) = alice_signed_in(&app, "openid offline_access").await;
    let admin = admin_client(&app, &["admin:read", "admin:write"]).await;
    let token = app.access_token(&admin).await;

    let reply = call(&app, Some(&token), "GET", "/users/alice/sessions", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let sessions = reply.json()["items"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].get("session_hash").is_none());

    let reply = call(&app, Some(&token), "DELETE", "/users/alice/sessions", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), json!({"sessions": 1, "grants": 1}));

    // Her access token is revoked, her refresh token dead, her browser signed out.
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&client, access).await["active"], false);
    let reply = app
        .token(
            &client,
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                tokens["refresh_token"].as_str().unwrap()
            ),
        )
        .await;
    reply.assert_error(400, "invalid_grant");
    let reply = call(&app, Some(&token), "GET", "/users/alice/sessions", None).await;
    assert_eq!(reply.json()["items"], json!([]));
    let page = browser
        .get(
            &app,
            &authorize_path(&client.id, &Pkce::new(), "openid", ""),
        )
        .await;
    assert!(page.text().contains("name=\"password\""), "signed out");
    let logout = app
        .store
        .audit_events(&AuditFilter {
            event: Some(AuditKind::Logout),
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(logout[0].detail["via"], "api");
    assert_eq!(logout[0].detail["actor"], admin.id.as_str());
}
