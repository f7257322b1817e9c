//! Login lock-out is per account and address: an attacker's failures lock the
//! account only from the attacker's address, and `valet user unlock` (a stamp on
//! the user row) lifts a lock on a running server.

use axum::http::StatusCode;

use valet_test_support::api::*;

const ATTACKER: &str = "192.0.2.66:40000";
const ALICE_AT_HOME: &str = "198.51.100.7:50000";

async fn attempt(app: &TestApp, peer: &str, password: &str) -> Reply {
    let mut browser = Browser::default();
    let client = app.web_client(|c| c.skip_consent = true).await;
    let page = browser.authorize(app, &client, "").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let body = login_form(&page, "alice", password);
    browser.post_from(app, peer, "/login", &[], &body).await
}

#[tokio::test]
async fn an_attacker_elsewhere_cannot_lock_alice_out_and_unlock_lifts_a_lock() {
    let app = TestApp::new().await;
    let alice = app.user("alice").await;
    for _ in 0..5 {
        let reply = attempt(&app, ATTACKER, "guess-guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    }
    // The attacker's address is locked out of alice's account, even with the
    // right password...
    let reply = attempt(&app, ATTACKER, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.text().contains("Too many sign-in attempts"));
    // ...but alice, from her own address, signs in.
    let reply = attempt(&app, ALICE_AT_HOME, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert!(location_params(&reply).contains_key("code"));

    // `valet user unlock` writes this; the running server honours it at once.
    app.clock.advance(1);
    assert!(
        app.store
            .set_user_unlocked(&alice, app.server.now())
            .await
            .unwrap()
    );
    app.clock.advance(1);
    let reply = attempt(&app, ATTACKER, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
}

#[tokio::test]
async fn the_policy_is_configurable() {
    let mut settings = settings();
    settings.login_throttle.account_failures = 2;
    settings.login_throttle.window_seconds = 60;
    let app = TestApp::with_settings(settings).await;
    app.user("alice").await;
    for _ in 0..2 {
        let reply = attempt(&app, ATTACKER, "guess-guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let reply = attempt(&app, ATTACKER, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(retry_after, 60);
    // The window slides past the failures.
    app.clock.advance(60);
    let reply = attempt(&app, ATTACKER, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
}

/// A sign-in answered "busy" (the password hasher's queue full) was never
/// checked, so it does not count: whoever keeps the hasher busy (with correct
/// sign-ins of an account of their own) cannot lock real users out through
/// the busy pages they get, nor their whole address.
#[tokio::test]
async fn busy_answers_do_not_count_towards_a_lock_out() {
    let mut settings = settings();
    settings.password_hash_queue = 0;
    let app = TestApp::with_settings(settings).await;
    app.user("alice").await;
    let busy = app.server.hasher().occupy().await.unwrap();
    // More than the account limit (5), and enough to reach the address limit
    // (20) too.
    for i in 0..25 {
        let password = if i % 2 == 0 { PASSWORD } else { "guess-guess" };
        let reply = attempt(&app, ALICE_AT_HOME, password).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{i}: {}",
            reply.text()
        );
        assert!(
            reply
                .text()
                .contains("Too many people are signing in right now")
        );
    }
    drop(busy);
    let reply = attempt(&app, ALICE_AT_HOME, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert!(location_params(&reply).contains_key("code"));
    // Failures that were checked still count as before.
    for _ in 0..5 {
        let reply = attempt(&app, ALICE_AT_HOME, "guess-guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    }
    let reply = attempt(&app, ALICE_AT_HOME, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}
