//! Client-secret guessing at the client-authenticated endpoints is throttled
//! per address, and the address is read through trusted proxies only.

use axum::http::StatusCode;

use valet_test_support::api::*;

const ATTACKER: &str = "203.0.113.66:40000";
const HONEST: &str = "198.51.100.7:40000";

/// Fails client authentication from `peer` `times` times, each answered 401.
async fn guess(
    app: &TestApp,
    peer: &str,
    headers: &[(&str, &str)],
    client: &TestClient,
    times: usize,
) {
    for i in 0..times {
        let wrong = client.with_secret(&format!("guess-{i}"));
        let reply = app.client_credentials_from(peer, &wrong, headers, "").await;
        reply.assert_error(401, "invalid_client");
    }
}

#[tokio::test]
async fn secret_guessing_is_throttled_while_the_honest_client_keeps_working() {
    let app = TestApp::new().await;
    let service = app.service().await;
    guess(&app, ATTACKER, &[], &service, 20).await;

    // The 21st attempt from the attacker's address is refused before its secret
    // is looked at: even the right secret gets 429, so the answer tells nothing.
    for (path, client) in [
        ("/token", service.with_secret("guess-21")),
        ("/token", service.with_secret(&service.secret)),
        ("/introspect", service.with_secret("guess-22")),
        ("/revoke", service.with_secret("guess-23")),
    ] {
        let reply = app
            .post_from(
                ATTACKER,
                path,
                Some(&client),
                &[],
                "grant_type=client_credentials&token=x",
            )
            .await;
        reply.assert_error(429, "invalid_client");
        let wait: i64 = reply.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=300).contains(&wait), "{path}: Retry-After {wait}");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }

    // The service itself, from its own address, is unaffected.
    let reply = app.client_credentials_from(HONEST, &service, &[], "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // Five minutes after the first guess the window has slid past it.
    app.clock.advance(301);
    let reply = app
        .client_credentials_from(ATTACKER, &service, &[], "")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn guesses_for_unknown_clients_count_too() {
    let app = TestApp::new().await;
    let service = app.service().await;
    let nobody = TestClient {
        id: "no-such-client".into(),
        secret: "x".into(),
    };
    guess(&app, ATTACKER, &[], &nobody, 20).await;
    app.client_credentials_from(ATTACKER, &service, &[], "")
        .await
        .assert_error(429, "invalid_client");
}

#[tokio::test]
async fn a_forged_forwarded_for_does_not_escape_the_throttle() {
    // No trusted proxies: the header is the attacker's own words.
    let app = TestApp::new().await;
    let service = app.service().await;
    for i in 0..20 {
        let forged = format!("192.0.2.{i}");
        guess(&app, ATTACKER, &[("x-forwarded-for", &forged)], &service, 1).await;
    }
    app.client_credentials_from(
        ATTACKER,
        &service,
        &[("x-forwarded-for", "192.0.2.200")],
        "",
    )
    .await
    .assert_error(429, "invalid_client");
}

#[tokio::test]
async fn behind_a_trusted_balancer_each_client_address_counts_alone() {
    let mut app = TestApp::new().await;
    app.trust_proxies(&["10.0.0.0/8"]);
    let service = app.service().await;
    const BALANCER: &str = "10.0.0.5:50000";
    // The attacker prepends a forged hop; the balancer appends the real one.
    let attacker_hops = [("x-forwarded-for", "192.0.2.1, 203.0.113.66")];
    guess(&app, BALANCER, &attacker_hops, &service, 20).await;
    app.client_credentials_from(BALANCER, &service, &attacker_hops, "")
        .await
        .assert_error(429, "invalid_client");
    // Another forged hop changes nothing: the rightmost untrusted one counts.
    app.client_credentials_from(
        BALANCER,
        &service,
        &[("x-forwarded-for", "192.0.2.99, 203.0.113.66")],
        "",
    )
    .await
    .assert_error(429, "invalid_client");
    // The honest service behind the same balancer gets its token.
    let reply = app
        .client_credentials_from(
            BALANCER,
            &service,
            &[("x-forwarded-for", "198.51.100.7")],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn behind_a_trusted_balancer_login_guessing_is_counted_per_client_address() {
    let mut app = TestApp::new().await;
    app.trust_proxies(&["10.0.0.0/8"]);
    app.user("bob").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    const BALANCER: &str = "10.0.0.5:50000";
    // Twenty failures for twenty accounts from one address behind the balancer.
    let attacker_hop = [("x-forwarded-for", "203.0.113.66")];
    let mut attacker = Browser::default();
    for i in 0..20 {
        let page = attacker.authorize(&app, &client, "").await;
        let body = login_form(&page, &format!("victim{i}"), "guess-guess");
        let reply = attacker
            .post_from(&app, BALANCER, "/login", &attacker_hop, &body)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    }
    let page = attacker.authorize(&app, &client, "").await;
    let body = login_form(&page, "victim99", "guess-guess");
    let reply = attacker
        .post_from(&app, BALANCER, "/login", &attacker_hop, &body)
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.header("retry-after").is_some());

    // Bob, through the same balancer from his own address, signs in.
    let mut bob = Browser::default();
    let page = bob.authorize(&app, &client, "").await;
    let body = login_form(&page, "bob", PASSWORD);
    let reply = bob
        .post_from(
            &app,
            BALANCER,
            "/login",
            &[("x-forwarded-for", "198.51.100.7")],
            &body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
}
