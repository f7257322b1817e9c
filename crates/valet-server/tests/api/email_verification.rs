//! Email verification by mail, from the outside: `email_verified` in UserInfo
//! turns true only once the link's form is sent (opening the link changes
//! nothing), the link works once, and not after the address or the password
//! changed, nor as a password reset link. On SQLite and PostgreSQL.

use axum::http::StatusCode;
use valet_core::admin::{NewUser, UserUpdate};
use valet_core::users::Password;

use super::password_reset::{Mailbox, link_token, reset_settings};
use valet_test_support::api::*;

async fn on_both_stores(test: impl AsyncFn(&TestApp)) {
    test(&TestApp::with_settings(reset_settings()).await).await;
    if let Some((app, schema)) = TestApp::on_postgres_with(reset_settings()).await {
        test(&app).await;
        TestApp::drop_postgres_schema(&schema).await;
    }
}

/// A user whose address is not verified yet; returns the user id.
async fn unverified_bob(app: &TestApp) -> String {
    app.admin()
        .create_user(NewUser {
            username: "bob".into(),
            email: Some("bob@example.test".into()),
            email_verified: false,
            password: Some(Password::new(PASSWORD.into())),
            ..NewUser::default()
        })
        .await
        .unwrap()
        .user_id
}

/// Sends the verification mail and returns its link's token.
async fn mailed_token(app: &TestApp, user_id: &str) -> String {
    assert!(app.server.send_email_verification(user_id).await.unwrap());
    let sent = Mailbox::default().deliver(app).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "bob@example.test");
    assert!(
        sent[0]
            .body
            .contains(&format!("{ISSUER}/verify-email?token="))
    );
    link_token(&sent[0])
}

/// Opens the link and presses the button.
async fn confirm(app: &TestApp, token: &str) -> Reply {
    let mut browser = Browser::default();
    let page = browser
        .get(app, &format!("/verify-email?token={}", encode(token)))
        .await;
    if page.status != StatusCode::OK {
        return page;
    }
    let csrf = form_field(&page.text(), "csrf").unwrap();
    browser
        .post(
            app,
            "/verify-email",
            &format!("csrf={csrf}&token={}", encode(token)),
        )
        .await
}

async fn verified(app: &TestApp, user_id: &str) -> bool {
    app.store
        .get_user(user_id)
        .await
        .unwrap()
        .unwrap()
        .email_verified
}

#[tokio::test]
async fn email_verified_turns_true_only_once_the_link_is_confirmed() {
    on_both_stores(async |app: &TestApp| {
        let user_id = unverified_bob(app).await;
        let client = app.web_client(|c| c.skip_consent = true).await;
        let pkce = Pkce::new();
        let mut browser = Browser::default();
        let path = authorize_path(&client.id, &pkce, "openid email", "");
        let params = sign_in_and_allow(app, &mut browser, &path, "bob").await;
        let tokens = redeem(app, &client, &params["code"], &pkce.verifier)
            .await
            .json();
        let access_token = tokens["access_token"].as_str().unwrap().to_owned();
        let email_verified =
            async || app.userinfo(Some(&access_token)).await.json()["email_verified"].clone();
        assert_eq!(email_verified().await, false);

        let token = mailed_token(app, &user_id).await;
        // Opening the link, twice (a mail scanner, then the user), changes nothing.
        for _ in 0..2 {
            let page = Browser::default()
                .get(app, &format!("/verify-email?token={token}"))
                .await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(page.text().contains("Confirm"));
        }
        assert!(!verified(app, &user_id).await);
        assert_eq!(email_verified().await, false);

        let done = confirm(app, &token).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert!(verified(app, &user_id).await);
        assert_eq!(email_verified().await, true);

        // Once only.
        let replay = confirm(app, &token).await;
        assert_eq!(replay.status, StatusCode::BAD_REQUEST);
        // Nothing left to send for a verified address.
        assert!(app.server.send_email_verification(&user_id).await.unwrap());
        assert!(Mailbox::default().deliver(app).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_changed_address_or_password_voids_the_link() {
    on_both_stores(async |app: &TestApp| {
        let user_id = unverified_bob(app).await;
        let token = mailed_token(app, &user_id).await;
        app.admin()
            .update_user(
                &user_id,
                UserUpdate {
                    email: Some(Some("robert@example.test".into())),
                    ..UserUpdate::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(confirm(app, &token).await.status, StatusCode::BAD_REQUEST);
        assert!(!verified(app, &user_id).await);

        app.admin()
            .update_user(
                &user_id,
                UserUpdate {
                    email: Some(Some("bob@example.test".into())),
                    ..UserUpdate::default()
                },
            )
            .await
            .unwrap();
        let token = mailed_token(app, &user_id).await;
        app.admin()
            .set_user_password(&user_id, &Password::new("a changed passphrase".into()))
            .await
            .unwrap();
        assert_eq!(confirm(app, &token).await.status, StatusCode::BAD_REQUEST);
        assert!(!verified(app, &user_id).await);
    })
    .await;
}

#[tokio::test]
async fn a_verification_link_is_not_a_reset_link() {
    on_both_stores(async |app: &TestApp| {
        let user_id = unverified_bob(app).await;
        let token = mailed_token(app, &user_id).await;
        let page = Browser::default()
            .get(app, &format!("/reset/confirm?token={token}"))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        // Still a good verification link.
        assert_eq!(confirm(app, &token).await.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn the_operator_can_verify_an_address() {
    let app = TestApp::new().await;
    let user_id = unverified_bob(&app).await;
    let record = app.admin().verify_email("bob").await.unwrap();
    assert!(record.email_verified);
    assert!(verified(&app, &user_id).await);
}
