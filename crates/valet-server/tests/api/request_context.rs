//! The request context: every response names its request in `X-Request-Id`
//! (Valet's own id, or a trusted proxy's), and the audit records of a sign-in
//! name the same id.

use axum::http::StatusCode;
use valet_core::audit::{AuditFilter, AuditKind};

use valet_test_support::api::*;

const BALANCER: &str = "10.0.0.1:40000";
const STRANGER: &str = "203.0.113.9:50000";

fn request_id(reply: &Reply) -> String {
    reply
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id on a {} reply", reply.status))
        .to_owned()
}

/// `{8 hex digits}-{hex counter}`.
fn is_valets_own(id: &str) -> bool {
    let (prefix, counter) = id.split_once('-').unwrap_or_default();
    prefix.len() == 8
        && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        && !counter.is_empty()
        && counter.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn every_response_carries_its_own_request_id() {
    let app = TestApp::new().await;
    let service = app.service().await;
    let replies = [
        app.get("/.well-known/openid-configuration").await,
        app.get("/.well-known/openid-configuration").await,
        app.token(&service, "grant_type=client_credentials").await,
        app.token(&service, "grant_type=password").await,
        app.get("/no-such-path").await,
        app.get("/token").await,
    ];
    let ids: Vec<String> = replies.iter().map(request_id).collect();
    assert!(ids.iter().all(|id| is_valets_own(id)), "{ids:?}");
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    let prefixes: Vec<_> = ids.iter().map(|id| id.split('-').next()).collect();
    assert!(prefixes.windows(2).all(|pair| pair[0] == pair[1]));
}

#[tokio::test]
async fn a_request_id_is_kept_only_from_a_trusted_proxy() {
    let mut app = TestApp::new().await;
    app.trust_proxies(&["10.0.0.0/8"]);
    let service = app.service().await;
    let from = |peer, id| {
        let (app, service) = (&app, &service);
        async move {
            app.client_credentials_from(peer, service, &[("x-request-id", id)], "")
                .await
        }
    };
    let kept = from(BALANCER, "lb-7f3a:0001").await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(request_id(&kept), "lb-7f3a:0001");
    // A client cannot name its own request, and a proxy's id that could break
    // a log line or a header is not kept.
    for (peer, id) in [
        (STRANGER, "lb-7f3a:0001"),
        (BALANCER, "a b"),
        (BALANCER, "x\"y"),
        (BALANCER, &"a".repeat(65)),
        (BALANCER, ""),
    ] {
        let replaced = from(peer, id).await;
        assert!(is_valets_own(&request_id(&replaced)), "{peer} {id:?}");
    }
}

#[tokio::test]
async fn sign_in_and_consent_records_name_their_request() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = Browser::default();
    let page = browser.authorize(&app, &client, "").await;
    let wrong = browser
        .post(
            &app,
            "/login",
            &login_form(&page, "alice", "not her password"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let login = browser
        .post(&app, "/login", &login_form(&page, "alice", PASSWORD))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let allowed = browser
        .post(&app, "/consent", &consent_form(&login, "allow"))
        .await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER);

    app.server.flush_audit().await.unwrap();
    let recorded = |kind| {
        let store = &app.store;
        async move {
            let events = store
                .audit_events(&AuditFilter {
                    event: Some(kind),
                    limit: 10,
                    ..AuditFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(events.len(), 1, "{kind:?}");
            events[0].detail["request_id"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(recorded(AuditKind::LoginFailed).await, request_id(&wrong));
    assert_eq!(
        recorded(AuditKind::LoginSucceeded).await,
        request_id(&login)
    );
    assert_eq!(
        recorded(AuditKind::ConsentGranted).await,
        request_id(&allowed)
    );
}
