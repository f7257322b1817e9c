//! The web console from the outside (clients; users, keys and audit in
//! `console_users`): its sign-in lands back on `/admin`; only
//! an admin gets in; each change works and is audited with the operator; and
//! a change without the page's CSRF value, from another origin, with a stale
//! sign-in or with an invalid value changes nothing.

use axum::http::StatusCode;
use valet_core::audit::{AuditFilter, AuditKind};

use valet_test_support::api::*;

pub(super) const OWN_ORIGIN: &str = ISSUER;

/// A browser signed in to the console as `username` (through `/admin`, which
/// sends it to the sign-in, which sends it back).
pub(super) async fn console_signed_in(app: &TestApp, username: &str) -> Browser {
    let mut browser = Browser::default();
    let start = browser.get(app, "/admin").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.text());
    assert_eq!(
        start.header("location"),
        Some(&*format!("{ISSUER}/admin/sign-in"))
    );
    let login = browser.get(app, "/admin/sign-in").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    assert!(login.text().contains("name=\"password\""));
    let done = browser
        .post(app, "/login", &login_form(&login, username, PASSWORD))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_eq!(done.header("location"), Some(&*format!("{ISSUER}/admin")));
    browser
}

/// A console form POST with the browser's cookies and the given headers.
pub(super) async fn post(
    app: &TestApp,
    browser: &mut Browser,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let cookies = browser.cookie_header();
    let mut all = vec![("cookie", cookies.as_str())];
    all.extend_from_slice(headers);
    let reply = app.send(form_request(path, None, &all, body)).await;
    browser.absorb(&reply);
    reply
}

/// A form of `page` for `action`, with its CSRF value and `fields`.
pub(super) fn form(page: &Reply, action: &str, fields: &[(&str, &str)]) -> String {
    let csrf = form_field(&page.text(), "csrf").unwrap();
    let mut body = format!("csrf={}&action={action}", encode(&csrf));
    for (name, value) in fields {
        body.push_str(&format!("&{name}={}", encode(value)));
    }
    body
}

/// The edit form of a client's page, as the page fills it, with `changes`.
fn edit_form(page: &Reply, client_id: &str, changes: &[(&str, &str)]) -> String {
    let mut fields: Vec<(&str, &str)> = vec![
        ("client_id", client_id),
        ("name", "Photo App"),
        ("redirect_uris", WEB_REDIRECT),
        ("post_logout_redirect_uris", "https://app.example.test/bye"),
        ("scopes", "photos:read"),
    ];
    for (name, value) in changes {
        fields.retain(|(n, _)| n != name);
        fields.push((name, value));
    }
    form(page, "update", &fields)
}

async fn redirect_uris(app: &TestApp, client_id: &str) -> Vec<String> {
    app.store
        .get_client(client_id)
        .await
        .unwrap()
        .unwrap()
        .redirect_uris
}

async fn client_page(app: &TestApp, browser: &mut Browser, client_id: &str) -> Reply {
    let page = browser
        .get(app, &format!("/admin/client?client_id={client_id}"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    page
}

#[tokio::test]
async fn without_a_session_the_console_leads_to_the_sign_in_and_back() {
    let app = TestApp::new().await;
    app.admin_user("root").await;
    let mut stranger = Browser::default();
    for path in [
        "/admin",
        "/admin/clients",
        "/admin/users",
        "/admin/keys",
        "/admin/audit",
    ] {
        let reply = stranger.get(&app, path).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            reply.header("location"),
            Some(&*format!("{ISSUER}/admin/sign-in"))
        );
    }
    // A form without a session changes nothing and leads to the sign-in.
    let anonymous = post(
        &app,
        &mut stranger,
        "/admin/user",
        &[("origin", OWN_ORIGIN)],
        "csrf=x&action=disable&user_id=root",
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    let root = app.store.find_user_by_login("root").await.unwrap().unwrap();
    assert!(!root.disabled);
    let mut browser = console_signed_in(&app, "root").await;
    let home = browser.get(&app, "/admin").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(
        home.header("location"),
        Some(&*format!("{ISSUER}/admin/clients"))
    );
    let page = browser.get(&app, "/admin/clients").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("id=\"operator\">root<"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test]
async fn a_user_without_the_admin_role_is_refused() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = Browser::default();
    let login = browser.get(&app, "/admin/sign-in").await;
    let done = browser
        .post(&app, "/login", &login_form(&login, "alice", PASSWORD))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    for path in [
        "/admin",
        "/admin/clients",
        "/admin/users",
        "/admin/keys",
        "/admin/audit",
    ] {
        let reply = browser.get(&app, path).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert!(reply.text().contains("may not use the admin console"));
    }
    // Her own session's CSRF value (the account page's) does not help.
    let account = browser.get(&app, "/account").await;
    let body = format!(
        "{}&client_id={}&redirect_uris=https%3A%2F%2Fevil.example%2Fcb&name=x",
        form(&account, "update", &[]),
        client.id
    );
    let reply = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(redirect_uris(&app, &client.id).await, vec![WEB_REDIRECT]);
}

#[tokio::test]
async fn an_admin_edits_a_client_and_the_audit_trail_names_them() {
    let app = TestApp::new().await;
    let root = app.admin_user("root").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = console_signed_in(&app, "root").await;
    let list = browser.get(&app, "/admin/clients").await;
    assert!(list.text().contains(&client.id), "{}", list.text());
    let page = client_page(&app, &mut browser, &client.id).await;
    assert!(page.text().contains(&escaped(WEB_REDIRECT)));

    let moved = "https://app.example.test/new-callback";
    let body = edit_form(&page, &client.id, &[("redirect_uris", moved)]);
    let saved = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
    assert!(
        saved.text().contains("Saved (redirect_uris)"),
        "{}",
        saved.text()
    );
    assert_eq!(redirect_uris(&app, &client.id).await, vec![moved]);

    let events = app
        .store
        .audit_events(&AuditFilter {
            event: Some(AuditKind::ClientUpdated),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_id.as_deref(), Some(client.id.as_str()));
    assert_eq!(events[0].detail["via"], "console");
    assert_eq!(events[0].detail["actor"], root.as_str());

    // The audit page shows it, filtered by the operator.
    let audit = browser
        .get(
            &app,
            &format!("/admin/audit?event=client.updated&actor={root}"),
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.text().contains("via=console"), "{}", audit.text());
    let nobody = browser.get(&app, "/admin/audit?actor=someone-else").await;
    assert!(nobody.text().contains("No events match."));

    // The actor filter is the store's: newer records by others do not push
    // the operator's change out of reach.
    let now = valet_core::Clock::now(app.clock.as_ref());
    let newer: Vec<_> = (0..1_100)
        .map(|_| valet_core::audit::AuditEvent::new(AuditKind::TokenIssued, now))
        .collect();
    app.store.append_audit_events(&newer).await.unwrap();
    let audit = browser
        .get(&app, &format!("/admin/audit?actor={root}"))
        .await;
    assert!(audit.text().contains("via=console"), "{}", audit.text());
}

#[tokio::test]
async fn a_form_without_this_sessions_csrf_value_changes_nothing() {
    let app = TestApp::new().await;
    app.admin_user("root").await;
    app.admin_user("other").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = console_signed_in(&app, "root").await;
    let mut other = console_signed_in(&app, "other").await;
    let page = client_page(&app, &mut browser, &client.id).await;
    let others_page = client_page(&app, &mut other, &client.id).await;
    let change = [("redirect_uris", "https://app.example.test/moved")];

    let body = edit_form(&page, &client.id, &change);
    let without = body.replacen("csrf=", "not-csrf=", 1);
    let refused = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &without,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let wrong = edit_form(&others_page, &client.id, &change);
    let refused = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &wrong,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text().contains("could not be verified"));
    assert_eq!(redirect_uris(&app, &client.id).await, vec![WEB_REDIRECT]);
}

#[tokio::test]
async fn a_form_from_another_origin_changes_nothing() {
    let app = TestApp::new().await;
    app.admin_user("root").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = console_signed_in(&app, "root").await;
    let page = client_page(&app, &mut browser, &client.id).await;
    let body = edit_form(
        &page,
        &client.id,
        &[("redirect_uris", "https://app.example.test/moved")],
    );
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "https://id.example.test.evil.example")],
        vec![("origin", "null")],
        vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![],
    ] {
        let refused = post(&app, &mut browser, "/admin/client", &headers, &body).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(redirect_uris(&app, &client.id).await, vec![WEB_REDIRECT]);
    }
    // A same-origin form under the no-referrer policy: `Origin: null`, and
    // the browser's own Sec-Fetch-Site.
    let headers = [("origin", "null"), ("sec-fetch-site", "same-origin")];
    let saved = post(&app, &mut browser, "/admin/client", &headers, &body).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
}

#[tokio::test]
async fn an_invalid_value_is_shown_at_its_field_and_changes_nothing() {
    let app = TestApp::new().await;
    app.admin_user("root").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = console_signed_in(&app, "root").await;
    let page = client_page(&app, &mut browser, &client.id).await;
    let body = edit_form(
        &page,
        &client.id,
        &[(
            "redirect_uris",
            "https://app.example.test/ok\nhttp://evil.example/cb",
        )],
    );
    let refused = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text();
    assert!(html.contains("redirect_uris[1]"), "{html}");
    assert!(
        html.contains(
            "name=\"redirect_uris\" aria-invalid=\"true\" aria-describedby=\"redirect_uris-error\""
        ),
        "{html}"
    );
    assert!(html.contains("id=\"redirect_uris-error\""), "{html}");
    // The form shows what was sent, to correct it.
    assert!(html.contains(&escaped("http://evil.example/cb")), "{html}");
    assert_eq!(redirect_uris(&app, &client.id).await, vec![WEB_REDIRECT]);

    let body = edit_form(&page, &client.id, &[("access_token_ttl", "ten")]);
    let refused = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .contains("access_token_ttl: must be a whole number")
    );
}

#[tokio::test]
async fn a_change_needs_a_recent_sign_in() {
    let app = TestApp::new().await;
    app.admin_user("root").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = console_signed_in(&app, "root").await;
    let page = client_page(&app, &mut browser, &client.id).await;
    app.clock.advance(16 * 60);
    // Reading still works; a change is sent to sign in again.
    client_page(&app, &mut browser, &client.id).await;
    let body = edit_form(
        &page,
        &client.id,
        &[("redirect_uris", "https://app.example.test/moved")],
    );
    let again = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(
        again.header("location"),
        Some(&*format!("{ISSUER}/admin/sign-in"))
    );
    assert_eq!(redirect_uris(&app, &client.id).await, vec![WEB_REDIRECT]);
    // The sign-in asks for the password even though the session lives.
    let login = browser.get(&app, "/admin/sign-in").await;
    assert!(
        login.text().contains("name=\"password\""),
        "{} {:?}",
        login.status,
        login.header("location")
    );
    let done = browser
        .post(&app, "/login", &login_form(&login, "root", PASSWORD))
        .await;
    assert_eq!(done.header("location"), Some(&*format!("{ISSUER}/admin")));
    let page = client_page(&app, &mut browser, &client.id).await;
    let body = edit_form(
        &page,
        &client.id,
        &[("redirect_uris", "https://app.example.test/moved")],
    );
    let saved = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
}

#[tokio::test]
async fn a_client_is_registered_shown_its_secret_once_rotated_and_deleted() {
    let app = TestApp::new().await;
    app.admin_user("root").await;
    let mut browser = console_signed_in(&app, "root").await;
    let page = browser.get(&app, "/admin/clients/new").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let body = form(
        &page,
        "create",
        &[
            ("type", "confidential"),
            ("name", "Billing"),
            ("redirect_uris", "https://billing.example.test/cb"),
            ("scopes", "openid billing:read"),
        ],
    );
    let created = post(
        &app,
        &mut browser,
        "/admin/clients",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let html = created.text();
    let client_id = between(&html, "id=\"client-id\">", "<");
    let secret = between(&html, "id=\"client-secret\">", "<");
    let client = TestClient {
        id: client_id.clone(),
        secret: secret.clone(),
    };
    let token = app.token(&client, "grant_type=client_credentials").await;
    // Authenticated (a web app may not use client credentials: not 401).
    assert_ne!(token.status, StatusCode::UNAUTHORIZED, "{}", token.text());
    let shown = client_page(&app, &mut browser, &client_id).await;
    assert!(!shown.text().contains(&secret));

    let body = format!(
        "{}&client_id={client_id}",
        form(&shown, "rotate_secret", &[("overlap_seconds", "0")])
    );
    let rotated = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    let new_secret = between(&rotated.text(), "id=\"client-secret\">", "<");
    assert_ne!(new_secret, secret);

    let body = format!("{}&client_id={client_id}", form(&shown, "delete", &[]));
    let refused = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app.store.get_client(&client_id).await.unwrap().is_some());
    let body = format!(
        "{}&client_id={client_id}",
        form(&shown, "delete", &[("confirm", "on")])
    );
    let deleted = post(
        &app,
        &mut browser,
        "/admin/client",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.text());
    assert!(app.store.get_client(&client_id).await.unwrap().is_none());
}

/// `text` as the templates escape it.
fn escaped(text: &str) -> String {
    text.replace('/', "&#x2f;")
}

fn between(html: &str, start: &str, end: &str) -> String {
    let from = html.find(start).unwrap() + start.len();
    let to = from + html[from..].find(end).unwrap();
    html[from..to].to_owned()
}
