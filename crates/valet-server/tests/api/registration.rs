//! Self-registration from the outside: closed by default; open, it creates an
//! unverified user and mails a verification link; a taken email gets the very
//! answer a fresh one gets (and its owner a note), a taken username is said;
//! weak passwords are refused. On SQLite and PostgreSQL.

use axum::http::StatusCode;
use valet_core::Settings;
use valet_core::config::Registration;

use super::password_reset::{Mailbox, link_token, reset_settings};
use valet_test_support::api::*;

fn open_settings() -> Settings {
    let mut settings = reset_settings();
    settings.registration = Registration::Open;
    settings
}

async fn on_both_stores(test: impl AsyncFn(&TestApp)) {
    test(&TestApp::with_settings(open_settings()).await).await;
    if let Some((app, schema)) = TestApp::on_postgres_with(open_settings()).await {
        test(&app).await;
        TestApp::drop_postgres_schema(&schema).await;
    }
}

async fn register(app: &TestApp, username: &str, email: &str, password: &str) -> Reply {
    let mut browser = Browser::default();
    let page = browser.get(app, "/register").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let csrf = form_field(&page.text(), "csrf").unwrap();
    browser
        .post(
            app,
            "/register",
            &format!(
                "csrf={csrf}&username={}&email={}&password={}&confirmation={}",
                encode(username),
                encode(email),
                encode(password),
                encode(password)
            ),
        )
        .await
}

/// Status and body with the per-response nonce taken out.
fn comparable(reply: &Reply) -> (StatusCode, String) {
    let nonce = reply
        .header("content-security-policy")
        .and_then(|csp| csp.split("'nonce-").nth(1))
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_default()
        .to_owned();
    (reply.status, reply.text().replace(&nonce, "N"))
}

#[tokio::test]
async fn sign_up_then_verify_by_mail_then_sign_in() {
    on_both_stores(async |app: &TestApp| {
        let reply = register(app, "carol", "carol@example.test", "a long new passphrase").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert!(reply.text().contains("Check your mail"));
        let user = app
            .store
            .find_user_by_login("carol")
            .await
            .unwrap()
            .unwrap();
        assert!(!user.email_verified);
        assert!(user.password_hash.unwrap().starts_with("$argon2id$"));

        let sent = Mailbox::default().deliver(app).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "carol@example.test");
        let token = link_token(&sent[0]);
        let mut browser = Browser::default();
        let page = browser
            .get(app, &format!("/verify-email?token={token}"))
            .await;
        let csrf = form_field(&page.text(), "csrf").unwrap();
        let done = browser
            .post(app, "/verify-email", &format!("csrf={csrf}&token={token}"))
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert!(
            app.store
                .find_user_by_login("carol")
                .await
                .unwrap()
                .unwrap()
                .email_verified
        );
        assert!(
            valet_core::users::authenticate(
                app.store.as_ref(),
                app.server.hasher(),
                "carol",
                "a long new passphrase"
            )
            .await
            .is_ok()
        );
    })
    .await;
}

#[tokio::test]
async fn a_taken_email_gets_the_same_answer_and_its_owner_a_note() {
    on_both_stores(async |app: &TestApp| {
        app.user("alice").await;
        let fresh = register(app, "dave", "dave@example.test", "a long new passphrase").await;
        let taken = register(
            app,
            "mallory",
            "ALICE@example.test",
            "a long new passphrase",
        )
        .await;
        assert_eq!(comparable(&fresh), comparable(&taken));
        assert!(
            app.store
                .find_user_by_login("mallory")
                .await
                .unwrap()
                .is_none()
        );
        let sent = Mailbox::default().deliver(app).await;
        assert_eq!(sent.len(), 2);
        let note = sent.iter().find(|m| m.to == "ALICE@example.test").unwrap();
        assert!(note.body.contains("someone tried"), "{}", note.body);
        assert!(!note.body.contains("?token="), "no link in the note");
    })
    .await;
}

#[tokio::test]
async fn a_taken_username_is_said_and_weak_passwords_are_refused() {
    on_both_stores(async |app: &TestApp| {
        app.user("alice").await;
        let taken = register(app, "alice", "other@example.test", "a long new passphrase").await;
        assert_eq!(taken.status, StatusCode::CONFLICT);
        assert!(taken.text().contains("username is taken"));
        for (password, why) in [
            ("short", "at least 8"),
            ("password123", "most common"),
            ("erin-secret", "username or email"),
        ] {
            let reply = register(app, "erin", "erin@example.test", password).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{password}");
            assert!(reply.text().contains(why), "{password}: {}", reply.text());
        }
        assert!(
            app.store
                .find_user_by_login("erin")
                .await
                .unwrap()
                .is_none()
        );
        assert!(app.store.list_mail(10).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn registration_is_closed_by_default() {
    let app = TestApp::with_settings(reset_settings()).await;
    assert_eq!(app.get("/register").await.status, StatusCode::NOT_FOUND);
    let reply = Browser::default()
        .post(
            &app,
            "/register",
            "username=x&email=x%40example.test&password=aaaaaaaaaa&confirmation=aaaaaaaaaa",
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let mut settings = valet_test_support::app::settings();
    settings.registration = Registration::Open;
    assert!(
        settings
            .validate()
            .is_err_and(|e| e.contains("registration") && e.contains("smtp_url"))
    );
}

fn invite_settings() -> Settings {
    let mut settings = reset_settings();
    settings.registration = Registration::Invite;
    settings
}

/// The token of the invitation link in a mail.
fn invite_token(message: &valet_core::mail::Message) -> String {
    let start = message.body.find("?invite=").expect("a link") + "?invite=".len();
    message.body[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn by_invitation_only_the_invited_address_registers_once() {
    let apps = [
        Some((TestApp::with_settings(invite_settings()).await, None)),
        TestApp::on_postgres_with(invite_settings())
            .await
            .map(|(app, schema)| (app, Some(schema))),
    ];
    for (app, schema) in apps.into_iter().flatten() {
        let app = &app;
        // Without an invitation there is no form.
        assert_eq!(app.get("/register").await.status, StatusCode::BAD_REQUEST);
        app.server.invite("frank@example.test").await.unwrap();
        let sent = Mailbox::default().deliver(app).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "frank@example.test");
        let invite = invite_token(&sent[0]);

        let mut browser = Browser::default();
        let page = browser
            .get(app, &format!("/register?invite={invite}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert!(page.text().contains("value=\"frank@example.test\""));
        let csrf = form_field(&page.text(), "csrf").unwrap();
        // The email typed is ignored: the invitation's address is registered.
        let body = format!(
            "csrf={csrf}&invite={invite}&username=frank&email=other%40example.test&password={p}&confirmation={p}",
            p = encode("a long new passphrase")
        );
        let done = browser.post(app, "/register", &body).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        let user = app
            .store
            .find_user_by_login("frank")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.email.as_deref(), Some("frank@example.test"));

        // Used up.
        let again = browser
            .post(
                app,
                "/register",
                &body.replace("username=frank", "username=frank2"),
            )
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        assert!(
            app.store
                .find_user_by_login("frank2")
                .await
                .unwrap()
                .is_none()
        );
        if let Some(schema) = schema {
            TestApp::drop_postgres_schema(&schema).await;
        }
    }
}
