//! Attacks on the browser flow, from the outside: each test asserts the attack
//! fails. Redirect URI tampering (RFC 9700 §4.1), CSRF on the consent and logout
//! forms (RFC 6749 §10.12), and user enumeration through login timing.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use valet_test_support::api::*;

/// A second registered URI, so that an omitted (or empty, RFC 6749 §3.1)
/// `redirect_uri` cannot fall back to the only registered one (§3.1.2.3).
const SECOND_REDIRECT: &str = "https://app.example.test/second";

/// `redirect_uri` values that must not match `WEB_REDIRECT`
/// (`https://app.example.test/callback`), each with what it tries. Values are
/// as the server decodes them; the tests percent-encode them into the request.
const TAMPERED: &[(&str, &str)] = &[
    ("other host", "https://evil.example/callback"),
    ("subdomain", "https://evil.app.example.test/callback"),
    (
        "registered host as a prefix",
        "https://app.example.test.evil.example/callback",
    ),
    ("prefix of the path", "https://app.example.test/call"),
    ("prefix: the origin", "https://app.example.test"),
    (
        "prefix: the origin and a slash",
        "https://app.example.test/",
    ),
    (
        "added path segment",
        "https://app.example.test/callback/evil",
    ),
    (
        "dot-dot out of the path",
        "https://app.example.test/callback/../evil",
    ),
    (
        "dot-dot into the path",
        "https://app.example.test/evil/../callback",
    ),
    (
        "percent-encoded letter",
        "https://app.example.test/c%61llback",
    ),
    (
        "percent-encoded slash",
        "https://app.example.test%2Fcallback",
    ),
    (
        "percent-encoded dot-dot",
        "https://app.example.test/callback/%2E%2E/evil",
    ),
    ("trailing slash", "https://app.example.test/callback/"),
    (
        "added query",
        "https://app.example.test/callback?next=https://evil.example",
    ),
    ("empty query", "https://app.example.test/callback?"),
    ("fragment", "https://app.example.test/callback#evil"),
    ("empty fragment", "https://app.example.test/callback#"),
    ("scheme change", "http://app.example.test/callback"),
    ("scheme case", "HTTPS://app.example.test/callback"),
    ("host case", "https://APP.example.test/callback"),
    (
        "default port added",
        "https://app.example.test:443/callback",
    ),
    ("other port", "https://app.example.test:8443/callback"),
    ("userinfo", "https://user@app.example.test/callback"),
    (
        "registered host as userinfo",
        "https://app.example.test@evil.example/callback",
    ),
    (
        "backslash",
        "https://app.example.test\\@evil.example/callback",
    ),
    (
        "backslash path",
        "https://evil.example\\app.example.test/callback",
    ),
    ("javascript", "javascript:alert(1)"),
    (
        "javascript with the host",
        "javascript://app.example.test/callback%0Aalert(1)",
    ),
    ("data", "data:text/html,<script>alert(1)</script>"),
    (
        "NUL inside",
        "https://app.example.test/callback\0.evil.example",
    ),
    ("NUL at the end", "https://app.example.test/callback\0"),
    ("encoded NUL", "https://app.example.test/callback%00"),
    (
        "CRLF header injection",
        "https://app.example.test/callback\r\nSet-Cookie: a=b",
    ),
    ("leading space", " https://app.example.test/callback"),
    ("trailing space", "https://app.example.test/callback "),
    ("look-alike host", "https://\u{430}pp.example.test/callback"),
    ("empty value", ""),
];

/// Percent-encoded query suffixes that tamper with `redirect_uri` in other ways.
fn tampered_queries() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = TAMPERED
        .iter()
        .map(|(what, uri)| ((*what).to_owned(), format!("&redirect_uri={}", encode(uri))))
        .collect();
    cases.push(("omitted".into(), String::new()));
    cases.push((
        "registered and evil, repeated".into(),
        format!(
            "&redirect_uri={}&redirect_uri={}",
            encode(WEB_REDIRECT),
            encode("https://evil.example/callback")
        ),
    ));
    cases
}

/// An authorization request (query or form body) with this redirect part.
fn authorization_request(client_id: &str, pkce: &Pkce, redirect: &str, extra: &str) -> String {
    format!(
        "response_type=code&client_id={client_id}{redirect}&scope=openid&state=s1&nonce=n1&code_challenge={}&code_challenge_method=S256{extra}",
        pkce.challenge
    )
}

/// The same request with the registered `redirect_uri`, untampered.
fn registered_request(client_id: &str, pkce: &Pkce) -> String {
    let redirect = format!("&redirect_uri={}", encode(WEB_REDIRECT));
    authorization_request(client_id, pkce, &redirect, "")
}

/// The one right answer to an untrusted redirect URI: an HTML error page, and no
/// way back to the client.
fn assert_error_page(reply: &Reply, case: &str) {
    let text = reply.text();
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{case}: {text}");
    assert!(
        reply.header("location").is_none(),
        "{case}: redirected to {:?}",
        reply.header("location")
    );
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{case}: {:?}",
        reply.header("content-type")
    );
    assert!(
        text.contains("redirect_uri") || text.contains("Invalid request"),
        "{case}: not the error page: {text}"
    );
    // Neither a form_post auto-submitting form nor anything carrying a code.
    assert!(!text.contains("name=\"code\""), "{case}: {text}");
    assert!(
        !text.contains("<script>alert"),
        "{case}: value reflected: {text}"
    );
    assert_no_internals(&text, case);
}

async fn client_with_two_redirects(app: &TestApp, skip_consent: bool) -> TestClient {
    app.web_client(|c| {
        c.redirect_uris = vec![WEB_REDIRECT.into(), SECOND_REDIRECT.into()];
        c.skip_consent = skip_consent;
    })
    .await
}

/// Signs alice in through the normal flow with consent remembered, and checks
/// that the browser now goes straight back with a code for a good request.
async fn signed_in_browser(app: &TestApp, client: &TestClient) -> Browser {
    app.user("alice").await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let good = format!("/authorize?{}", registered_request(&client.id, &pkce));
    let params = sign_in_and_allow(app, &mut browser, &good, "alice").await;
    assert!(params.contains_key("code"));
    let again = browser.get(app, &good).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text());
    assert!(location_params(&again).contains_key("code"));
    browser
}

#[tokio::test]
async fn tampered_redirect_uri_before_login_shows_an_error_page() {
    let app = TestApp::new().await;
    let client = client_with_two_redirects(&app, false).await;
    let pkce = Pkce::new();
    for (case, redirect) in tampered_queries() {
        // prompt=none errors are redirected for a verified URI: not for these.
        for extra in ["", "&prompt=none", "&response_mode=form_post"] {
            let mut browser = Browser::default();
            let path = format!(
                "/authorize?{}",
                authorization_request(&client.id, &pkce, &redirect, extra)
            );
            let reply = browser.get(&app, &path).await;
            assert_error_page(&reply, &format!("{case} {extra}"));
            assert!(browser.cookies.is_empty(), "{case}: {:?}", browser.cookies);
        }
    }
    // With a single registered URI, an empty value is an omitted one (RFC 6749
    // §3.1) and the registered URI is used (§3.1.2.3): nowhere else to go.
    let single = app.web_client(|_| {}).await;
    let reply = Browser::default()
        .get(
            &app,
            &format!(
                "/authorize?{}",
                authorization_request(&single.id, &pkce, "&redirect_uri=", "&prompt=none")
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert!(
        reply
            .header("location")
            .unwrap()
            .starts_with(&format!("{WEB_REDIRECT}?"))
    );
}

#[tokio::test]
async fn tampered_redirect_uri_with_a_signed_in_consented_user_shows_an_error_page() {
    let app = TestApp::new().await;
    let client = client_with_two_redirects(&app, false).await;
    let mut browser = signed_in_browser(&app, &client).await;
    let pkce = Pkce::new();
    for (case, redirect) in tampered_queries() {
        for extra in ["", "&prompt=none", "&response_mode=form_post"] {
            let path = format!(
                "/authorize?{}",
                authorization_request(&client.id, &pkce, &redirect, extra)
            );
            let reply = browser.get(&app, &path).await;
            assert_error_page(&reply, &format!("signed in, {case} {extra}"));
        }
    }
    // Still signed in and consented: the tampering was refused, not the session.
    let good = format!("/authorize?{}", registered_request(&client.id, &pkce));
    assert_eq!(browser.get(&app, &good).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn tampered_redirect_uri_in_a_post_to_authorize_shows_an_error_page() {
    let app = TestApp::new().await;
    let client = client_with_two_redirects(&app, true).await;
    let mut signed_in = signed_in_browser(&app, &client).await;
    let pkce = Pkce::new();
    for (case, redirect) in tampered_queries() {
        for extra in ["", "&prompt=none", "&response_mode=form_post"] {
            let body = authorization_request(&client.id, &pkce, &redirect, extra);
            let reply = Browser::default().post(&app, "/authorize", &body).await;
            assert_error_page(&reply, &format!("POST, {case} {extra}"));
            let reply = signed_in.post(&app, "/authorize", &body).await;
            assert_error_page(&reply, &format!("POST signed in, {case} {extra}"));
        }
    }
    // The same POST with the registered URI goes straight back with a code.
    let body = registered_request(&client.id, &pkce);
    let reply = signed_in.post(&app, "/authorize", &body).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert!(location_params(&reply).contains_key("code"));
}

/// A browser signed in as `username`, at the consent page.
async fn at_consent(app: &TestApp, client: &TestClient, username: &str) -> (Browser, Reply) {
    let mut browser = Browser::default();
    let page = browser.authorize(app, client, "").await;
    let body = login_form(&page, username, PASSWORD);
    let consent = browser.post(app, "/login", &body).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    assert!(consent.text().contains("name=\"decision\""));
    (browser, consent)
}

#[tokio::test]
async fn consent_form_without_the_browsers_csrf_value_is_refused_and_grants_nothing() {
    let app = TestApp::new().await;
    let alice = app.user("alice").await;
    app.user("mallory").await;
    let client = app.web_client(|_| {}).await;
    let (mut victim, consent) = at_consent(&app, &client, "alice").await;
    let (_, attackers_consent) = at_consent(&app, &client, "mallory").await;
    let html = consent.text();
    let interaction = form_field(&html, "interaction").unwrap();
    let csrf = form_field(&html, "csrf").unwrap();
    let attackers_html = attackers_consent.text();
    let attackers_interaction = form_field(&attackers_html, "interaction").unwrap();
    let attackers_csrf = form_field(&attackers_html, "csrf").unwrap();
    assert_ne!(csrf, attackers_csrf);
    let wrong = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());

    let forged = [
        (
            "no CSRF value",
            format!("interaction={interaction}&decision=allow"),
        ),
        (
            "empty CSRF value",
            format!("interaction={interaction}&csrf=&decision=allow"),
        ),
        (
            "wrong CSRF value",
            format!("interaction={interaction}&csrf={wrong}&decision=allow"),
        ),
        (
            "another browser's CSRF value",
            format!("interaction={interaction}&csrf={attackers_csrf}&decision=allow"),
        ),
        (
            "another browser's CSRF value, deny",
            format!("interaction={interaction}&csrf={attackers_csrf}&decision=deny"),
        ),
        (
            "two CSRF values",
            format!("interaction={interaction}&csrf={csrf}&csrf={wrong}&decision=allow"),
        ),
        (
            "another browser's whole form",
            format!("interaction={attackers_interaction}&csrf={attackers_csrf}&decision=allow"),
        ),
    ];
    for (case, body) in &forged {
        let reply = victim.post(&app, "/consent", body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{case}: {}",
            reply.text()
        );
        assert!(reply.header("location").is_none(), "{case}");
        assert!(!reply.text().contains("name=\"code\""), "{case}");
        assert_no_internals(&reply.text(), case);
    }
    // The right value posted from a browser without the CSRF cookie (a
    // cross-site POST whose cookies were not sent, or another browser).
    let mut no_cookie = victim.clone();
    no_cookie.cookies.retain(|name, _| !name.contains("csrf"));
    let reply = no_cookie
        .post(
            &app,
            "/consent",
            &format!("interaction={interaction}&csrf={csrf}&decision=allow"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(reply.header("location").is_none());

    // Nothing was granted or remembered...
    let granted = app.store.get_consent(&alice, &client.id).await.unwrap();
    assert!(granted.is_empty(), "{granted:?}");
    let again = victim.authorize(&app, &client, "").await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert!(
        again.text().contains("name=\"decision\""),
        "consent asked again"
    );
    // ...and the forgeries did not use up the real form, which still works.
    let reply = victim
        .post(&app, "/consent", &consent_form(&consent, "allow"))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert!(location_params(&reply).contains_key("code"));
}

#[tokio::test]
async fn logout_confirmation_without_the_browsers_csrf_value_does_not_sign_out() {
    let app = TestApp::new().await;
    let (client, mut browser, _) = alice_signed_in(&app, "openid").await;
    let page = browser.get(&app, "/logout").await;
    let csrf = form_field(&page.text(), "csrf").unwrap();
    // The attacker's own browser, signed in, gets a confirmation form of its own.
    app.user("mallory").await;
    let mut other = Browser::default();
    sign_in_and_allow(
        &app,
        &mut other,
        &authorize_path(&client.id, &Pkce::new(), "openid", ""),
        "mallory",
    )
    .await;
    let others_csrf = form_field(&other.get(&app, "/logout").await.text(), "csrf").unwrap();
    assert_ne!(csrf, others_csrf);
    for (case, body) in [
        ("no CSRF value", "confirm=yes".to_owned()),
        (
            "wrong CSRF value",
            "confirm=yes&csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ),
        (
            "another browser's CSRF value",
            format!("confirm=yes&csrf={others_csrf}"),
        ),
    ] {
        // The browser's own cookies (session and CSRF) are sent along.
        let reply = browser.post(&app, "/logout", &body).await;
        assert!(
            reply.text().contains("Sign out?"),
            "{case}: {}",
            reply.text()
        );
        assert!(
            browser.cookies.contains_key("__Host-valet-session"),
            "{case}"
        );
        let still = browser.authorize(&app, &client, "").await;
        assert_eq!(
            still.status,
            StatusCode::SEE_OTHER,
            "{case}: still signed in"
        );
    }
}

/// One failed login, timed: a fresh login page, then the POST (only the POST is
/// timed). Each attempt comes from its own address so the per-address throttle
/// stays out of the way; each account fails once, under its limit.
async fn timed_failed_login(app: &TestApp, client: &TestClient, login: &str, peer: u8) -> Duration {
    let mut browser = Browser::default();
    let page = browser.authorize(app, client, "").await;
    let body = login_form(&page, login, "not the password");
    let peer = format!("198.51.100.{peer}:4711");
    let started = Instant::now();
    let reply = browser.post_from(app, &peer, "/login", &[], &body).await;
    let elapsed = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{login}: {}",
        reply.text()
    );
    elapsed
}

#[tokio::test]
async fn failed_logins_take_about_as_long_for_existing_and_unknown_users() {
    const N: u8 = 8;
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    for i in 0..=N {
        app.user(&format!("member{i}")).await;
    }
    // Warm-up, not counted: the first hashes pay for allocation and caches.
    timed_failed_login(&app, &client, "member0", 0).await;
    timed_failed_login(&app, &client, "stranger0", 0).await;
    let (mut existing, mut unknown) = (Duration::ZERO, Duration::ZERO);
    // Interleaved, so load on the machine weighs on both kinds alike.
    for i in 1..=N {
        existing += timed_failed_login(&app, &client, &format!("member{i}"), i).await;
        unknown += timed_failed_login(&app, &client, &format!("stranger{i}"), 100 + i).await;
    }
    let existing = existing.as_secs_f64() * 1000.0 / f64::from(N);
    let unknown = unknown.as_secs_f64() * 1000.0 / f64::from(N);
    let ratio = existing / unknown;
    println!(
        "failed login, mean of {N}: existing user {existing:.1} ms, unknown user {unknown:.1} ms, ratio {ratio:.2}"
    );
    // Gross timing only: one argon2 verification either way (a dummy hash for an
    // unknown user) makes the two alike; loose bounds keep a loaded box green.
    assert!(
        (0.5..2.0).contains(&ratio),
        "existing {existing:.1} ms vs unknown {unknown:.1} ms"
    );
}
