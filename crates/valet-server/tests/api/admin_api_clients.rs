//! `/admin/v1/clients` end to end: register, page, read, change, rotate,
//! delete; errors name the field; every change is audited with `via=api` and
//! the calling client as `actor`.

use axum::http::StatusCode;
use serde_json::{Value, json};
use valet_core::Clock;
use valet_core::audit::{AuditEvent, AuditFilter, AuditKind};

use crate::admin_api::{admin_client, admin_token, assert_api_error, call};
use valet_test_support::api::*;

async fn last_event(app: &TestApp, kind: AuditKind) -> AuditEvent {
    app.store
        .audit_events(&AuditFilter {
            event: Some(kind),
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {kind} event"))
}

fn web_app() -> Value {
    json!({
        "name": "Photo App",
        "redirect_uris": [WEB_REDIRECT],
        "scopes": ["photos:read"],
    })
}

#[tokio::test]
async fn a_client_is_registered_changed_rotated_and_deleted_through_the_api() {
    let app = TestApp::new().await;
    let admin = admin_client(&app, &["admin:read", "admin:write"]).await;
    let token = app.access_token(&admin).await;

    let reply = call(&app, Some(&token), "POST", "/clients", Some(web_app())).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let created = reply.json();
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["client"]["type"], "confidential");
    assert!(created["client"].get("secret_hash").is_none());
    let event = last_event(&app, AuditKind::ClientCreated).await;
    assert_eq!(event.client_id.as_deref(), Some(id.as_str()));
    assert_eq!(event.detail["via"], "api");
    assert_eq!(event.detail["actor"], admin.id.as_str());

    // The secret works at the token endpoint... (a web app has no
    // client_credentials grant: the error is about the grant, not the client)
    let reply = app
        .token(
            &TestClient {
                id: id.clone(),
                secret: secret.clone(),
            },
            "grant_type=client_credentials",
        )
        .await;
    reply.assert_error(400, "unauthorized_client");

    let reply = call(&app, Some(&token), "GET", &format!("/clients/{id}"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["redirect_uris"], json!([WEB_REDIRECT]));

    let reply = call(
        &app,
        Some(&token),
        "PATCH",
        &format!("/clients/{id}"),
        Some(json!({
            "redirect_uris": [WEB_REDIRECT, "https://app.example.test/other"],
            "access_token_ttl": 300,
            "allowed_origins": ["https://app.example.test"],
        })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let updated = reply.json();
    assert_eq!(updated["client"]["access_token_ttl"], 300);
    assert_eq!(
        updated["changed"],
        json!(["redirect_uris", "allowed_origins", "access_token_ttl"])
    );
    let event = last_event(&app, AuditKind::ClientUpdated).await;
    assert_eq!(event.detail["via"], "api");
    assert_eq!(event.detail["actor"], admin.id.as_str());
    // `null` drops the override.
    let reply = call(
        &app,
        Some(&token),
        "PATCH",
        &format!("/clients/{id}"),
        Some(json!({"access_token_ttl": null})),
    )
    .await;
    assert_eq!(reply.json()["client"]["access_token_ttl"], Value::Null);

    let reply = call(
        &app,
        Some(&token),
        "POST",
        &format!("/clients/{id}/secret"),
        Some(json!({"overlap_seconds": 60})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let rotated = reply.json();
    assert_ne!(rotated["client_secret"], secret.as_str());
    assert_eq!(rotated["previous_secret_valid_until"], app.clock.now() + 60);
    let event = last_event(&app, AuditKind::ClientSecretRotated).await;
    assert_eq!(event.detail["actor"], admin.id.as_str());

    let reply = call(
        &app,
        Some(&token),
        "DELETE",
        &format!("/clients/{id}"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(app.store.get_client(&id).await.unwrap().is_none());
    let event = last_event(&app, AuditKind::ClientDeleted).await;
    assert_eq!(event.detail["via"], "api");
    for (method, path) in [
        ("GET", format!("/clients/{id}")),
        ("PATCH", format!("/clients/{id}")),
        ("DELETE", format!("/clients/{id}")),
        ("POST", format!("/clients/{id}/secret")),
    ] {
        let reply = call(&app, Some(&token), method, &path, Some(json!({}))).await;
        assert_api_error(&reply, 404, "not_found", None);
    }
}

#[tokio::test]
async fn invalid_client_settings_name_the_field_and_change_nothing() {
    let app = TestApp::new().await;
    let token = admin_token(&app).await;
    let mut bad = web_app();
    bad["redirect_uris"] = json!([WEB_REDIRECT, "http://evil.example/cb"]);
    let reply = call(&app, Some(&token), "POST", "/clients", Some(bad)).await;
    assert_api_error(&reply, 400, "invalid_request", Some("redirect_uris[1]"));
    let reply = call(&app, Some(&token), "GET", "/clients", None).await;
    assert_eq!(
        reply.json()["items"].as_array().unwrap().len(),
        1,
        "only the admin client"
    );

    let id = call(&app, Some(&token), "POST", "/clients", Some(web_app()))
        .await
        .json()["client"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.store.get_client(&id).await.unwrap().unwrap();
    for (change, field) in [
        (
            json!({"scopes": ["photos:read", "bad\"scope"]}),
            "scopes[1]",
        ),
        (json!({"redirect_uris": []}), "redirect_uris"),
        (json!({"access_token_ttl": 999_999}), "access_token_ttl"),
        (
            json!({"allowed_origins": ["not an origin"]}),
            "allowed_origins[0]",
        ),
    ] {
        let reply = call(
            &app,
            Some(&token),
            "PATCH",
            &format!("/clients/{id}"),
            Some(change),
        )
        .await;
        assert_api_error(&reply, 400, "invalid_request", Some(field));
    }
    let reply = call(
        &app,
        Some(&token),
        "POST",
        &format!("/clients/{id}/secret"),
        Some(json!({"overlap_seconds": -1})),
    )
    .await;
    assert_api_error(&reply, 400, "invalid_request", Some("overlap_seconds"));
    assert_eq!(app.store.get_client(&id).await.unwrap().unwrap(), before);
}

#[tokio::test]
async fn clients_are_listed_in_pages_in_a_stable_order() {
    clients_listed_in_pages(&TestApp::new().await).await;
}

#[tokio::test]
async fn clients_are_listed_in_pages_in_a_stable_order_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    clients_listed_in_pages(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

/// Pages come from the store by position; a bad limit or cursor is refused.
async fn clients_listed_in_pages(app: &TestApp) {
    let token = admin_token(app).await;
    for i in 0..6 {
        let mut new = web_app();
        new["name"] = json!(format!("app {i}"));
        app.clock.advance(1);
        let reply = call(app, Some(&token), "POST", "/clients", Some(new)).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let mut names = Vec::new();
    let mut path = "/clients?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = call(app, Some(&token), "GET", &path, None).await.json();
        pages += 1;
        assert!(page["items"].as_array().unwrap().len() <= 3);
        for client in page["items"].as_array().unwrap() {
            names.push(client["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/clients?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected = vec!["admin automation".to_owned()];
    expected.extend((0..6).map(|i| format!("app {i}")));
    assert_eq!(names, expected);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=zzz", "cursor"),
    ] {
        let reply = call(app, Some(&token), "GET", &format!("/clients?{query}"), None).await;
        assert_api_error(&reply, 400, "invalid_request", Some(field));
    }
    let reply = call(app, Some(&token), "GET", "/clients?limit=many", None).await;
    assert_api_error(&reply, 400, "invalid_request", None);
}
