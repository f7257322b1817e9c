//! The authorization code flow with PKCE driven through the sign-in pages of the
//! app in process: authorize → login → consent → code → tokens.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::Value;

use crate::app::{PASSWORD, Reply, TestApp, TestClient, WEB_REDIRECT};
use crate::browser::{Browser, authorize_path, consent_form, encode, location_params, login_form};
use crate::pkce::Pkce;

/// Drives authorize → login → consent(allow) and returns the redirect's parameters.
pub async fn sign_in_and_allow(
    app: &TestApp,
    browser: &mut Browser,
    path: &str,
    username: &str,
) -> HashMap<String, String> {
    let page = browser.get(app, path).await;
    if page.status == StatusCode::SEE_OTHER {
        return location_params(&page);
    }
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let mut reply = if page.text().contains("name=\"password\"") {
        let body = login_form(&page, username, PASSWORD);
        browser.post(app, "/login", &body).await
    } else {
        page
    };
    if reply.text().contains("name=\"decision\"") {
        let body = consent_form(&reply, "allow");
        reply = browser.post(app, "/consent", &body).await;
    }
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    location_params(&reply)
}

/// alice signs in to a web app that skips consent, asking for `scope`; the app,
/// her browser and the token response of the code.
pub async fn alice_signed_in(app: &TestApp, scope: &str) -> (TestClient, Browser, Value) {
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        app,
        &mut browser,
        &authorize_path(&client.id, &pkce, scope, ""),
        "alice",
    )
    .await;
    let tokens = redeem(app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    (client, browser, tokens.json())
}

pub async fn redeem(app: &TestApp, client: &TestClient, code: &str, verifier: &str) -> Reply {
    app.token(
        client,
        &format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}",
            encode(code),
            encode(WEB_REDIRECT)
        ),
    )
    .await
}
