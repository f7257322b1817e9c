//! The console's users, keys and audit pages from the outside: signing a
//! user out everywhere stops their refresh token, disabling and the admin role
//! (never one's own), key rotation and retirement, and paging.

use axum::http::StatusCode;
use valet_core::audit::{AuditFilter, AuditKind};

use valet_test_support::api::*;

use super::console::{OWN_ORIGIN, console_signed_in, form, post};

#[tokio::test]
async fn signing_a_user_out_everywhere_stops_their_refresh_token() {
    let app = TestApp::new().await;
    let root = app.admin_user("root").await;
    let (client, _, tokens) = alice_signed_in(&app, "openid offline_access photos:read").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let alice = app
        .store
        .find_user_by_login("alice")
        .await
        .unwrap()
        .unwrap()
        .user_id;
    let mut browser = console_signed_in(&app, "root").await;
    let users = browser.get(&app, "/admin/users?q=ALICE%40example").await;
    assert!(
        users.text().contains("alice@example.test"),
        "{}",
        users.text()
    );
    assert!(
        !users.text().contains("root@example.test"),
        "{}",
        users.text()
    );
    let page = browser
        .get(&app, &format!("/admin/user?user_id={alice}"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let body = format!("{}&user_id={alice}", form(&page, "end_sessions", &[]));
    let done = post(
        &app,
        &mut browser,
        "/admin/user",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(
        done.text().contains("1 grant(s) revoked"),
        "{}",
        done.text()
    );
    let refreshed = app
        .token(
            &client,
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
        )
        .await;
    refreshed.assert_error(400, "invalid_grant");
    let events = app
        .store
        .audit_events(&AuditFilter {
            event: Some(AuditKind::Logout),
            user_id: Some(alice.clone()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events[0].detail["via"], "console");
    assert_eq!(events[0].detail["actor"], root.as_str());

    let body = format!("{}&user_id={alice}", form(&page, "disable", &[]));
    let done = post(
        &app,
        &mut browser,
        "/admin/user",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(done.text().contains("id=\"user-status\">disabled<"));
    let stored = app.store.get_user(&alice).await.unwrap().unwrap();
    assert!(stored.disabled);

    let body = format!("{}&user_id={alice}", form(&page, "grant_admin", &[]));
    let done = post(
        &app,
        &mut browser,
        "/admin/user",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(app.store.get_user(&alice).await.unwrap().unwrap().admin);
    // An operator cannot lock themselves out.
    let body = format!("{}&user_id={root}", form(&page, "revoke_admin", &[]));
    let refused = post(
        &app,
        &mut browser,
        "/admin/user",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app.store.get_user(&root).await.unwrap().unwrap().admin);
}

#[tokio::test]
async fn keys_show_their_states_and_rotate() {
    let app = TestApp::new().await;
    app.admin_user("root").await;
    let mut browser = console_signed_in(&app, "root").await;
    let page = browser.get(&app, "/admin/keys").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(
        page.text().contains("class=\"key-state\">signing<"),
        "{}",
        page.text()
    );
    let body = form(&page, "rotate", &[("alg", "ES256")]);
    let rotated = post(
        &app,
        &mut browser,
        "/admin/keys",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    assert!(
        rotated.text().contains("class=\"key-state\">pending<"),
        "{}",
        rotated.text()
    );
    let again = post(
        &app,
        &mut browser,
        "/admin/keys",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let bad = form(&page, "rotate", &[("alg", "none")]);
    let refused = post(
        &app,
        &mut browser,
        "/admin/keys",
        &[("origin", OWN_ORIGIN)],
        &bad,
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The signing key cannot be retired; the pending one can (the page offers it).
    let keys = app.store.list_keys().await.unwrap();
    let now = app.server.now();
    let es256 = |signing: bool| {
        keys.iter()
            .find(|k| {
                k.alg.to_string() == "ES256"
                    && k.activates_at.is_some_and(|at| (at <= now) == signing)
            })
            .unwrap()
            .kid
            .clone()
    };
    let body = form(&page, "retire", &[("kid", &es256(true))]);
    let refused = post(
        &app,
        &mut browser,
        "/admin/keys",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());
    let pending = es256(false);
    assert!(
        rotated
            .text()
            .contains(&format!("name=\"kid\" value=\"{pending}\""))
    );
    let body = form(&page, "retire", &[("kid", &pending)]);
    let retired = post(
        &app,
        &mut browser,
        "/admin/keys",
        &[("origin", OWN_ORIGIN)],
        &body,
    )
    .await;
    assert_eq!(retired.status, StatusCode::OK, "{}", retired.text());
    assert!(
        retired.text().contains("retired: it leaves the key set at"),
        "{}",
        retired.text()
    );
}

#[tokio::test]
async fn users_and_audit_events_come_fifty_a_page() {
    let app = TestApp::new().await;
    app.admin_user("root").await;
    for i in 0..55 {
        // Users are listed oldest first.
        app.clock.advance(1);
        app.admin()
            .create_user(valet_core::admin::NewUser {
                username: format!("user{i:02}"),
                email: Some(format!("user{i:02}@example.test")),
                ..valet_core::admin::NewUser::default()
            })
            .await
            .unwrap();
    }
    let mut browser = console_signed_in(&app, "root").await;
    let first = browser.get(&app, "/admin/users?q=user").await;
    let html = first.text();
    assert!(html.contains("55 users found."), "{html}");
    assert!(html.contains("user00@example.test") && html.contains("user49@example.test"));
    assert!(!html.contains("user50@example.test"), "{html}");
    assert!(html.contains("offset=50\" rel=\"next\""), "{html}");
    assert!(!html.contains("rel=\"prev\""), "{html}");
    let second = browser.get(&app, "/admin/users?q=user&offset=50").await;
    let html = second.text();
    assert!(html.contains("user54@example.test") && !html.contains("user49@example.test"));
    assert!(html.contains("offset=0\" rel=\"prev\""), "{html}");

    // Newest first: the last user created tops the first page.
    let events = browser.get(&app, "/admin/audit?event=user.created").await;
    let html = events.text();
    let newest = html.find("username=user54").unwrap();
    let older = html.find("username=user53").unwrap();
    assert!(newest < older);
    assert!(!html.contains("username=user04"), "{html}");
    let older_page = browser
        .get(&app, "/admin/audit?event=user.created&offset=50")
        .await;
    assert!(older_page.text().contains("username=user04"));
    let unknown = browser.get(&app, "/admin/audit?event=no.such").await;
    assert!(unknown.text().contains("No event type is called"));
}

#[tokio::test]
async fn the_user_search_ignores_case_and_takes_wildcards_literally() {
    user_search(&TestApp::new().await).await;
}

#[tokio::test]
async fn the_user_search_ignores_case_and_takes_wildcards_literally_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    user_search(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

/// The search runs in the store: `%` and `_` in it match only themselves.
async fn user_search(app: &TestApp) {
    app.admin_user("root").await;
    for (username, email) in [
        ("ann_lee", "ann@example.test"),
        ("annalee", "AnnaLee@Example.TEST"),
        ("bob", "bob@example.test"),
    ] {
        app.admin()
            .create_user(valet_core::admin::NewUser {
                username: username.into(),
                email: Some(email.into()),
                ..valet_core::admin::NewUser::default()
            })
            .await
            .unwrap();
    }
    let mut browser = console_signed_in(app, "root").await;
    for (q, found, missing) in [
        ("ANN", &["ann_lee", "annalee"][..], &["bob"][..]),
        ("_", &["ann_lee"][..], &["annalee", "bob"][..]),
        ("annalee@example", &["annalee"][..], &["ann_lee"][..]),
        ("%", &[][..], &["ann_lee", "annalee", "bob"][..]),
    ] {
        let html = browser
            .get(
                app,
                &format!("/admin/users?q={}", valet_protocol::encode_component(q)),
            )
            .await
            .text();
        let expected = match found.len() {
            1 => "1 user found.".to_owned(),
            n => format!("{n} users found."),
        };
        assert!(html.contains(&expected), "{q}: {html}");
        for name in found {
            assert!(
                html.contains(&format!(">{name}<")),
                "{q} finds {name}: {html}"
            );
        }
        for name in missing {
            assert!(
                !html.contains(&format!(">{name}<")),
                "{q} misses {name}: {html}"
            );
        }
    }
}
