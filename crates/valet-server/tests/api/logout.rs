//! RP-initiated logout.

use axum::http::StatusCode;

use valet_test_support::api::*;

#[tokio::test]
async fn logout_with_id_token_hint_ends_the_session_and_revokes_its_tokens() {
    let app = TestApp::new().await;
    let (client, mut browser, tokens) = alice_signed_in(&app, "openid offline_access").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let path = format!(
        "/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye%201",
        encode("https://app.example.test/bye")
    );
    let reply = browser.get(&app, &path).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert_eq!(
        reply.header("location"),
        Some("https://app.example.test/bye?state=bye%201")
    );
    assert!(!browser.cookies.contains_key("__Host-valet-session"));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    app.token(
        &client,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await
    .assert_error(400, "invalid_grant");
    assert_eq!(
        app.introspect(&client, tokens["access_token"].as_str().unwrap())
            .await["active"],
        false
    );
    // Signed out: the next authorization asks for the password again.
    let page = browser.authorize(&app, &client, "").await;
    assert!(page.text().contains("name=\"password\""));
}

#[tokio::test]
async fn logout_without_a_hint_asks_and_a_cross_site_post_cannot_sign_out() {
    let app = TestApp::new().await;
    let (client, mut browser, _) = alice_signed_in(&app, "openid offline_access").await;
    let page = browser.get(&app, "/logout").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Sign out?"));
    // A forged POST without the browser's CSRF value changes nothing.
    let mut forged = browser.clone();
    forged.cookies.retain(|name, _| name.contains("session"));
    let reply = forged.post(&app, "/logout", "confirm=yes&csrf=guess").await;
    assert!(reply.text().contains("Sign out?"));
    let still = browser.authorize(&app, &client, "").await;
    assert_eq!(still.status, StatusCode::SEE_OTHER, "still signed in");
    // The real confirmation works.
    let csrf = form_field(&page.text(), "csrf").unwrap();
    let done = browser
        .post(&app, "/logout", &format!("confirm=yes&csrf={csrf}"))
        .await;
    assert!(
        done.text().contains("You are signed out"),
        "{}",
        done.text()
    );
}

#[tokio::test]
async fn unregistered_post_logout_redirect_uri_is_never_followed() {
    let app = TestApp::new().await;
    let (client, mut browser, tokens) = alice_signed_in(&app, "openid offline_access").await;
    for path in [
        format!(
            "/logout?client_id={}&post_logout_redirect_uri={}",
            client.id,
            encode("https://evil.example/")
        ),
        format!(
            "/logout?post_logout_redirect_uri={}",
            encode("https://app.example.test/bye")
        ),
        format!(
            "/logout?id_token_hint={}&post_logout_redirect_uri={}",
            tokens["id_token"].as_str().unwrap(),
            encode("https://app.example.test/bye/extra")
        ),
        "/logout?id_token_hint=forged.token.here".to_owned(),
    ] {
        let reply = browser.get(&app, &path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(reply.header("location").is_none());
    }
}
