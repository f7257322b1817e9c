//! Audit events: each security-relevant step of a flow leaves one record, with
//! the user, the client and the caller's address.

use axum::http::StatusCode;
use serde_json::json;
use valet_core::audit::{AuditEvent, AuditFilter, AuditKind};

use valet_test_support::api::*;

const PEER: &str = "198.51.100.20:50000";

async fn events(app: &TestApp, filter: AuditFilter) -> Vec<AuditEvent> {
    app.server.flush_audit().await.unwrap();
    app.store
        .audit_events(&AuditFilter {
            limit: 1_000,
            ..filter
        })
        .await
        .unwrap()
}

fn kinds(events: &[AuditEvent]) -> Vec<&str> {
    events.iter().rev().map(|e| e.event.as_str()).collect()
}

#[tokio::test]
async fn a_browser_flow_leaves_its_trail() {
    let app = TestApp::new().await;
    let alice = app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::default();

    // One wrong password, then the right one, consent, code and refresh.
    let page = browser
        .get(
            &app,
            &authorize_path(&client.id, &pkce, "openid offline_access", ""),
        )
        .await;
    let wrong = browser
        .post(
            &app,
            "/login",
            &login_form(&page, "alice", "not her password"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let params = sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid offline_access", ""),
        "alice",
    )
    .await;
    let tokens = redeem(&app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let first = tokens.json()["refresh_token"].as_str().unwrap().to_owned();
    let body = format!("grant_type=refresh_token&refresh_token={first}");
    let refreshed = app
        .post_from(PEER, "/token", Some(&client), &[], &body)
        .await;
    assert_eq!(refreshed.status, StatusCode::OK);
    // The rotated token again: reuse, from the same address.
    app.post_from(PEER, "/token", Some(&client), &[], &body)
        .await
        .assert_error(400, "invalid_grant");

    let trail = events(
        &app,
        AuditFilter {
            user_id: Some(alice.clone()),
            ..AuditFilter::default()
        },
    )
    .await;
    // alice was made through the admin service, as `valet user create` does:
    // that is her oldest record.
    let (created, trail) = trail.split_last().unwrap();
    assert_eq!(created.event, AuditKind::UserCreated);
    assert_eq!(created.detail["via"], "cli");
    assert_eq!(
        kinds(trail),
        [
            "login.failed",
            "login.succeeded",
            "consent.granted",
            "token.issued",
            "token.issued",
            "refresh_token.reused",
        ]
    );
    assert!(
        trail
            .iter()
            .all(|e| e.client_id.as_deref() == Some(client.id.as_str()))
    );
    let by_kind = |kind: &'static str| trail.iter().rev().filter(move |e| e.event.as_str() == kind);
    let issued: Vec<_> = by_kind("token.issued").collect();
    assert_eq!(issued[0].detail["grant_type"], "authorization_code");
    assert_eq!(issued[0].detail["scope"], "offline_access openid");
    assert_eq!(issued[1].detail["grant_type"], "refresh_token");
    assert_eq!(issued[1].address.as_deref(), Some("198.51.100.20"));
    let reuse = by_kind("refresh_token.reused").next().unwrap();
    assert_eq!(reuse.detail["action"], "revoked the grant");
    assert_eq!(reuse.address.as_deref(), Some("198.51.100.20"));
    let consent = by_kind("consent.granted").next().unwrap();
    assert_eq!(consent.detail["scope"], "offline_access openid");
    // Nothing secret in any record: no password, code or token.
    let text = serde_json::to_string(&trail).unwrap();
    for secret in [PASSWORD, "not her password", &params["code"], &first] {
        assert!(!text.contains(secret), "{secret} in the audit trail");
    }
}

#[tokio::test]
async fn an_unknown_login_is_recorded_without_a_user() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    let mut browser = Browser::default();
    let page = browser.authorize(&app, &client, "").await;
    browser
        .post(&app, "/login", &login_form(&page, "mallory", "guess"))
        .await;
    let trail = events(
        &app,
        AuditFilter {
            event: Some(AuditKind::LoginFailed),
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].user_id, None);
    assert!(!serde_json::to_string(&trail).unwrap().contains("mallory"));
}

#[tokio::test]
async fn client_credentials_tokens_are_counted_not_recorded_one_by_one() {
    let app = TestApp::new().await;
    let service = app.service().await;
    for _ in 0..5 {
        let reply = app
            .client_credentials_from(PEER, &service, &[], "&scope=read")
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let access = app.access_token(&service).await;
    let revoked = app
        .post_from(
            PEER,
            "/revoke",
            Some(&service),
            &[],
            &format!("token={access}"),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let wrong = service.with_secret("wrong");
    app.client_credentials_from(PEER, &wrong, &[], "")
        .await
        .assert_error(401, "invalid_client");

    let trail = events(
        &app,
        AuditFilter {
            client_id: Some(service.id.clone()),
            ..AuditFilter::default()
        },
    )
    .await;
    let issued: Vec<_> = trail
        .iter()
        .filter(|e| e.event.as_str() == "token.issued")
        .collect();
    // Two groups: five tokens for scope read from PEER, one for the default
    // scope from an unknown address.
    assert_eq!(issued.len(), 2, "{issued:?}");
    let from_peer = issued
        .iter()
        .find(|e| e.address.as_deref() == Some("198.51.100.20"))
        .unwrap();
    assert_eq!(from_peer.detail["count"], json!(5));
    assert_eq!(from_peer.detail["scope"], "read");
    assert_eq!(from_peer.detail["grant_type"], "client_credentials");
    let revoked: Vec<_> = trail
        .iter()
        .filter(|e| e.event.as_str() == "token.revoked")
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].detail["token_type"], "access_token");
    assert_eq!(revoked[0].user_id, None);
    assert_eq!(
        kinds(&trail)
            .iter()
            .filter(|k| **k == "client_auth.failed")
            .count(),
        1
    );
    // The queue is empty after a flush.
    assert_eq!(app.server.flush_audit().await.unwrap(), 0);
}

/// An attacker's failures cost one record per source and flush, not one per
/// request; another source's stay apart.
#[tokio::test]
async fn repeated_failures_are_coalesced_per_source() {
    let app = TestApp::new().await;
    let service = app.service().await;
    let wrong = service.with_secret("wrong");
    for _ in 0..40 {
        let reply = app.client_credentials_from(PEER, &wrong, &[], "").await;
        assert!(
            matches!(reply.status.as_u16(), 401 | 429),
            "{}",
            reply.text()
        );
    }
    app.client_credentials_from("198.51.100.21:50000", &wrong, &[], "")
        .await
        .assert_error(401, "invalid_client");
    let trail = events(
        &app,
        AuditFilter {
            client_id: Some(service.id.clone()),
            ..AuditFilter::default()
        },
    )
    .await;
    let of = |event: &str, address: &str| -> Vec<_> {
        trail
            .iter()
            .filter(|e| e.event.as_str() == event && e.address.as_deref() == Some(address))
            .collect()
    };
    // The throttle refuses the address after its first failures; both the
    // failures and the refusals are one record each, with the count.
    let failed = of("client_auth.failed", "198.51.100.20");
    let throttled = of("client_auth.throttled", "198.51.100.20");
    assert_eq!(failed.len(), 1, "{trail:?}");
    assert_eq!(throttled.len(), 1, "{trail:?}");
    let failed_count = failed[0].detail["count"].as_u64().unwrap();
    let throttled_count = throttled[0].detail["count"].as_u64().unwrap();
    assert!(failed_count > 1, "{failed:?}");
    assert_eq!(failed_count + throttled_count, 40);
    let other = of("client_auth.failed", "198.51.100.21");
    assert_eq!(other.len(), 1, "{trail:?}");
    assert_eq!(other[0].detail["count"], json!(1));

    // The next flush interval starts new groups.
    app.client_credentials_from("198.51.100.21:50000", &wrong, &[], "")
        .await
        .assert_error(401, "invalid_client");
    let later = events(
        &app,
        AuditFilter {
            event: Some(AuditKind::ClientAuthFailed),
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(later.len(), 3, "{later:?}");
}
