//! A disabled or deleted user gets no new token from any path: not from an
//! authorization in flight, not by redeeming a code issued before, not by
//! refreshing. Each test sets the flag the way a `valet user disable` racing
//! the request would leave it (the flag set, the grant not yet revoked), on
//! SQLite and on PostgreSQL.

use axum::http::StatusCode;

use valet_test_support::api::*;

/// Sets only the stored flag: what a concurrent `valet user disable` has done
/// when it has not yet reached the grant this request is working on.
async fn flag_disabled(app: &TestApp, user_id: &str) {
    assert!(
        app.store
            .set_user_disabled(user_id, true, app.server.now())
            .await
            .unwrap()
    );
}

async fn on_both_stores(test: impl AsyncFn(&TestApp)) {
    test(&TestApp::new().await).await;
    if let Some((app, schema)) = TestApp::on_postgres().await {
        test(&app).await;
        TestApp::drop_postgres_schema(&schema).await;
    }
}

async fn signed_in_to_consent(app: &TestApp) -> (String, TestClient, Browser, Reply, Pkce) {
    let user_id = app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let path = authorize_path(&client.id, &pkce, "openid offline_access", "");
    let page = browser.get(app, &path).await;
    let body = login_form(&page, "alice", PASSWORD);
    let consent = browser.post(app, "/login", &body).await;
    assert!(
        consent.text().contains("name=\"decision\""),
        "{}",
        consent.text()
    );
    (user_id, client, browser, consent, pkce)
}

#[tokio::test]
async fn disabled_between_login_and_consent_gets_no_code() {
    on_both_stores(async |app: &TestApp| {
        let (user_id, _, mut browser, consent, _) = signed_in_to_consent(app).await;
        app.admin().disable_user(&user_id).await.unwrap();
        let reply = browser
            .post(app, "/consent", &consent_form(&consent, "allow"))
            .await;
        assert!(
            reply
                .header("location")
                .is_none_or(|location| !location.contains("code=")),
            "no code: {} {:?}",
            reply.status,
            reply.header("location")
        );
    })
    .await;
}

/// A browser still holding the session of a user disabled since gets no code
/// (the flag alone, sessions not yet ended) on its next authorization.
#[tokio::test]
async fn a_signed_in_user_flagged_disabled_gets_no_code_on_the_next_authorization() {
    on_both_stores(async |app: &TestApp| {
        let user_id = app.user("alice").await;
        let client = app.web_client(|c| c.skip_consent = true).await;
        let mut browser = Browser::default();
        let pkce = Pkce::new();
        let path = authorize_path(&client.id, &pkce, "openid", "");
        let params = sign_in_and_allow(app, &mut browser, &path, "alice").await;
        assert!(params.contains_key("code"));
        // Signed in; the flag now set without the sessions being ended.
        flag_disabled(app, &user_id).await;
        let reply = browser.get(app, &path).await;
        let location = reply.header("location").unwrap_or_default().to_owned();
        assert!(!location.contains("code="), "{} {location}", reply.status);
    })
    .await;
}

#[tokio::test]
async fn disabled_after_the_code_was_issued_redemption_fails() {
    on_both_stores(async |app: &TestApp| {
        let (user_id, client, mut browser, consent, pkce) = signed_in_to_consent(app).await;
        let reply = browser
            .post(app, "/consent", &consent_form(&consent, "allow"))
            .await;
        let code = location_params(&reply)["code"].clone();
        flag_disabled(app, &user_id).await;
        let refused = redeem(app, &client, &code, &pkce.verifier).await;
        refused.assert_error(400, "invalid_grant");
        assert_eq!(
            refused.json()["error_description"],
            "the user's account is disabled or deleted"
        );
        // The grant is gone: enabling the user again does not revive the code.
        app.admin().enable_user(&user_id).await.unwrap();
        redeem(app, &client, &code, &pkce.verifier)
            .await
            .assert_error(400, "invalid_grant");
    })
    .await;
}

#[tokio::test]
async fn disabled_or_deleted_refresh_fails_and_revokes_the_grant() {
    on_both_stores(async |app: &TestApp| {
        let (client, _, tokens) = alice_signed_in(app, "openid offline_access").await;
        let user_id = app
            .store
            .find_user_by_login("alice")
            .await
            .unwrap()
            .unwrap()
            .user_id;
        let refresh = |token: String| {
            let client = &client;
            async move {
                app.token(
                    client,
                    &format!("grant_type=refresh_token&refresh_token={token}"),
                )
                .await
            }
        };
        let rotated = refresh(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
        let next = rotated.json()["refresh_token"].as_str().unwrap().to_owned();

        flag_disabled(app, &user_id).await;
        let refused = refresh(next.clone()).await;
        refused.assert_error(400, "invalid_grant");
        assert_eq!(
            refused.json()["error_description"],
            "the user's account is disabled or deleted"
        );
        // Revoked, not only refused: enabled again, the family stays dead and
        // its access token is inactive.
        app.admin().enable_user(&user_id).await.unwrap();
        refresh(next).await.assert_error(400, "invalid_grant");
        assert_eq!(
            app.introspect(&client, rotated.json()["access_token"].as_str().unwrap())
                .await,
            serde_json::json!({"active": false})
        );
    })
    .await;
}
