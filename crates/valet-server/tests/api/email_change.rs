//! Email change on the account page, from the outside: the address does not
//! change until the link mailed to the new address is confirmed; then it is
//! the account's, verified, in UserInfo. The link works once and not after a
//! password change; the current address gets a notice without a link; a form
//! without the CSRF value or with a wrong password changes nothing and mails
//! nothing; an address another account has gets the same answer (its owner
//! gets a note, not a link). On SQLite and PostgreSQL.

use axum::http::StatusCode;
use valet_core::mail::Message;
use valet_core::users::Password;

use super::account::{account_form, element_text, signed_in};
use super::password_reset::{Mailbox, audit_events, link_token, reset_settings};
use valet_test_support::api::*;

const NEW_EMAIL: &str = "alice.new@example.test";

async fn on_both_stores(test: impl AsyncFn(&TestApp)) {
    test(&TestApp::with_settings(reset_settings()).await).await;
    if let Some((app, schema)) = TestApp::on_postgres_with(reset_settings()).await {
        test(&app).await;
        TestApp::drop_postgres_schema(&schema).await;
    }
}

/// Asks for `new_email` on alice's account page with `password`.
async fn ask(app: &TestApp, new_email: &str, password: &str) -> Reply {
    let (mut browser, page) = signed_in(app, "alice").await;
    let form = account_form(
        &page,
        "email",
        &[("new_email", new_email), ("current_password", password)],
    );
    browser.post(app, "/account", &form).await
}

/// The address and whether it is verified, as stored.
async fn email_of(app: &TestApp, user_id: &str) -> (Option<String>, bool) {
    let user = app.store.get_user(user_id).await.unwrap().unwrap();
    (user.email, user.email_verified)
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

/// The mail to `to` among `sent`.
fn mail_to<'a>(sent: &'a [Message], to: &str) -> &'a Message {
    sent.iter()
        .find(|message| message.to == to)
        .unwrap_or_else(|| panic!("no mail to {to}"))
}

/// Asks for the change and returns the new address's link token, checking
/// the notice to the current address.
async fn mailed_link(app: &TestApp) -> String {
    let asked = ask(app, NEW_EMAIL, PASSWORD).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
    let sent = Mailbox::default().deliver(app).await;
    assert_eq!(sent.len(), 2, "a link and a notice");
    let notice = mail_to(&sent, "alice@example.test");
    assert!(!notice.body.contains("token="), "no link in the notice");
    assert!(notice.subject.contains("being changed"));
    let link = mail_to(&sent, NEW_EMAIL);
    assert!(link.body.contains(&format!("{ISSUER}/verify-email?token=")));
    link_token(link)
}

#[tokio::test]
async fn the_address_changes_only_once_the_new_one_is_confirmed() {
    on_both_stores(async |app: &TestApp| {
        let user_id = app.user("alice").await;
        let client = app.web_client(|c| c.skip_consent = true).await;
        let pkce = Pkce::new();
        let mut browser = Browser::default();
        let path = authorize_path(&client.id, &pkce, "openid email", "");
        let params = sign_in_and_allow(app, &mut browser, &path, "alice").await;
        let tokens = redeem(app, &client, &params["code"], &pkce.verifier)
            .await
            .json();
        let access_token = tokens["access_token"].as_str().unwrap().to_owned();
        let userinfo = async || app.userinfo(Some(&access_token)).await.json();

        let token = mailed_link(app).await;
        let before = (Some("alice@example.test".to_owned()), true);
        assert_eq!(email_of(app, &user_id).await, before);
        assert_eq!(userinfo().await["email"], "alice@example.test");
        // Opening the link changes nothing yet.
        let opened = Browser::default()
            .get(app, &format!("/verify-email?token={token}"))
            .await;
        assert_eq!(opened.status, StatusCode::OK);
        assert_eq!(email_of(app, &user_id).await, before);

        let done = confirm(app, &token).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(
            email_of(app, &user_id).await,
            (Some(NEW_EMAIL.to_owned()), true)
        );
        let claims = userinfo().await;
        assert_eq!(claims["email"], NEW_EMAIL);
        assert_eq!(claims["email_verified"], true);
        let (_, page) = signed_in(app, "alice").await;
        assert_eq!(element_text(&page.text(), "email"), NEW_EMAIL);

        // Once only.
        let replay = confirm(app, &token).await;
        assert_eq!(replay.status, StatusCode::BAD_REQUEST);
        let events = audit_events(app).await;
        for kind in ["user.updated", "user.email_verified"] {
            assert!(
                events.iter().any(|e| e.event.as_str() == kind),
                "{kind} audited"
            );
        }
        for event in &events {
            let json = serde_json::to_string(&event).unwrap();
            assert!(!json.contains(&token), "no link in the audit trail");
        }
    })
    .await;
}

#[tokio::test]
async fn a_link_made_before_a_password_change_fails() {
    on_both_stores(async |app: &TestApp| {
        let user_id = app.user("alice").await;
        let token = mailed_link(app).await;
        app.admin()
            .set_user_password(&user_id, &Password::new("a changed passphrase".into()))
            .await
            .unwrap();
        assert_eq!(confirm(app, &token).await.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            email_of(app, &user_id).await,
            (Some("alice@example.test".to_owned()), true)
        );
    })
    .await;
}

#[tokio::test]
async fn without_the_csrf_value_or_the_right_password_nothing_happens() {
    on_both_stores(async |app: &TestApp| {
        let user_id = app.user("alice").await;
        let (mut browser, _) = signed_in(app, "alice").await;
        let forged = format!(
            "action=email&new_email={}&current_password={}",
            encode(NEW_EMAIL),
            encode(PASSWORD)
        );
        let refused = browser.post(app, "/account", &forged).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());

        let wrong = ask(app, NEW_EMAIL, "not the password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text());
        assert!(wrong.text().contains("current password is not right"));

        assert!(Mailbox::default().deliver(app).await.is_empty(), "no mail");
        assert_eq!(
            email_of(app, &user_id).await,
            (Some("alice@example.test".to_owned()), true)
        );
    })
    .await;
}

#[tokio::test]
async fn an_address_of_another_account_gets_the_same_answer() {
    on_both_stores(async |app: &TestApp| {
        let user_id = app.user("alice").await;
        app.user("carol").await;
        let free = ask(app, NEW_EMAIL, PASSWORD).await;
        let _ = Mailbox::default().deliver(app).await;
        let taken = ask(app, "carol@example.test", PASSWORD).await;
        assert_eq!(free.status, StatusCode::OK);
        assert_eq!(taken.status, free.status);
        assert_eq!(
            element_text(&taken.text(), "notice"),
            element_text(&free.text(), "notice")
        );

        let sent = Mailbox::default().deliver(app).await;
        assert_eq!(sent.len(), 2, "a note and a notice, as for a free address");
        let note = mail_to(&sent, "carol@example.test");
        assert!(!note.body.contains("token="), "no link to take the address");
        assert!(note.subject.contains("Someone tried"));
        assert!(!mail_to(&sent, "alice@example.test").body.contains("token="));
        assert_eq!(
            email_of(app, &user_id).await,
            (Some("alice@example.test".to_owned()), true)
        );
    })
    .await;
}

/// Both mails speak the language of the page the change was asked on (here
/// the browser's German), though the link's is written later by the sender;
/// the German link works.
#[tokio::test]
async fn the_mails_speak_the_language_of_the_request() {
    let app = TestApp::with_settings(reset_settings()).await;
    let user_id = app.user("alice").await;
    let (browser, page) = signed_in(&app, "alice").await;
    let form = account_form(
        &page,
        "email",
        &[("new_email", NEW_EMAIL), ("current_password", PASSWORD)],
    );
    let cookies = browser.cookie_header();
    let headers = [("cookie", cookies.as_str()), ("accept-language", "de")];
    let asked = app
        .send(form_request("/account", None, &headers, &form))
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
    let sent = Mailbox::default().deliver(&app).await;
    assert_eq!(sent.len(), 2, "a link and a notice");
    let notice = mail_to(&sent, "alice@example.test");
    assert_eq!(notice.subject, "Ihre E-Mail-Adresse wird geändert");
    assert!(notice.body.starts_with("Hallo "), "{}", notice.body);
    let link = mail_to(&sent, NEW_EMAIL);
    assert_eq!(link.subject, "Neue E-Mail-Adresse bestätigen");
    assert!(link.body.contains("innerhalb von"), "{}", link.body);
    assert!(!link.body.contains("Hello"), "{}", link.body);
    let confirmed = confirm(&app, &link_token(link)).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text());
    assert_eq!(
        email_of(&app, &user_id).await,
        (Some(NEW_EMAIL.to_owned()), true)
    );
}
