//! Password reset by mail, from the outside: the request page answers the same
//! whether or not the account exists, the outbox holds one sealed row either
//! way, the sender mails a link only to a real account, the link's page
//! consumes nothing, and setting the password with it ends every session and
//! grant. The link works once, for its purpose only, and not after the
//! password changed. On SQLite and PostgreSQL.

use std::sync::Mutex;

use async_trait::async_trait;
use axum::http::StatusCode;
use valet_core::Settings;
use valet_core::config::MailSettings;
use valet_core::mail::{MailTransport, Message, SendError};
use valet_core::store::MailOutcome;

use valet_test_support::api::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

pub fn reset_settings() -> Settings {
    let mut settings = settings();
    settings.mail = Some(MailSettings {
        from: "Valet <valet@example.test>".to_owned(),
    });
    settings.password_reset = true;
    settings
}

async fn on_both_stores(test: impl AsyncFn(&TestApp)) {
    test(&TestApp::with_settings(reset_settings()).await).await;
    if let Some((app, schema)) = TestApp::on_postgres_with(reset_settings()).await {
        test(&app).await;
        TestApp::drop_postgres_schema(&schema).await;
    }
}

/// A transport that keeps what it is given (or refuses it, when told to).
#[derive(Default)]
pub struct Mailbox {
    pub messages: Mutex<Vec<Message>>,
    pub refuse: Mutex<Option<SendError>>,
}

#[async_trait]
impl MailTransport for Mailbox {
    async fn send(&self, _from: &str, message: &Message) -> Result<(), SendError> {
        match &*self.refuse.lock().unwrap() {
            Some(SendError::Temporary(why)) => return Err(SendError::Temporary(why.clone())),
            Some(SendError::Permanent(why)) => return Err(SendError::Permanent(why.clone())),
            None => {}
        }
        self.messages.lock().unwrap().push(message.clone());
        Ok(())
    }
}

impl Mailbox {
    /// Runs the sender once and returns what it sent.
    pub async fn deliver(&self, app: &TestApp) -> Vec<Message> {
        app.server.send_due_mail(self).await.unwrap();
        std::mem::take(&mut *self.messages.lock().unwrap())
    }
}

/// The token of the link in a mail.
pub fn link_token(message: &Message) -> String {
    let start = message.body.find("?token=").expect("a link") + "?token=".len();
    message.body[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Asks for a reset of `login` in a fresh browser.
async fn ask_reset(app: &TestApp, login: &str) -> Reply {
    let mut browser = Browser::default();
    let page = browser.get(app, "/reset").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let csrf = form_field(&page.text(), "csrf").unwrap();
    browser
        .post(
            app,
            "/reset",
            &format!("csrf={csrf}&login={}", encode(login)),
        )
        .await
}

/// Opens the link and sends the new password.
async fn use_link(app: &TestApp, token: &str, password: &str) -> Reply {
    let mut browser = Browser::default();
    let page = browser
        .get(app, &format!("/reset/confirm?token={}", encode(token)))
        .await;
    if page.status != StatusCode::OK {
        return page;
    }
    let csrf = form_field(&page.text(), "csrf").unwrap();
    browser
        .post(
            app,
            "/reset/confirm",
            &format!(
                "csrf={csrf}&token={}&password={}&confirmation={}",
                encode(token),
                encode(password),
                encode(password)
            ),
        )
        .await
}

/// Every audit record so far, newest first.
pub(super) async fn audit_events(app: &TestApp) -> Vec<valet_core::audit::AuditEvent> {
    app.server.flush_audit().await.unwrap();
    app.store
        .audit_events(&valet_core::audit::AuditFilter {
            limit: 1_000,
            ..valet_core::audit::AuditFilter::default()
        })
        .await
        .unwrap()
}

/// A reply with what differs per response taken out: the CSP nonce and the
/// CSRF value of a fresh browser.
fn without_nonce(reply: &Reply) -> (StatusCode, String, Vec<String>) {
    let text = reply.text();
    let nonce = reply
        .header("content-security-policy")
        .and_then(|csp| csp.split("'nonce-").nth(1))
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_default()
        .to_owned();
    let csrf = form_field(&text, "csrf").unwrap_or_else(|| "\u{0}".to_owned());
    let text = text.replace(&csrf, "C");
    let mut headers: Vec<String> = reply
        .headers
        .iter()
        .filter(|(name, _)| !["x-request-id", "date"].contains(&name.as_str()))
        .map(|(name, value)| {
            let value = value.to_str().unwrap().replace(&nonce, "N");
            format!("{name}: {}", value.replace(&csrf, "C"))
        })
        .collect();
    headers.sort();
    (reply.status, text.replace(&nonce, "N"), headers)
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_and_ends_every_session_and_grant() {
    on_both_stores(async |app: &TestApp| {
        let (client, mut signed_in, tokens) = alice_signed_in(app, "openid offline_access").await;
        let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        let mailbox = Mailbox::default();

        let asked = ask_reset(app, "alice@example.test").await;
        assert_eq!(asked.status, StatusCode::OK);
        assert!(asked.text().contains("Check your mail"), "{}", asked.text());
        let queued = app.store.list_mail(100).await.unwrap();
        assert_eq!(queued.len(), 1, "one row in the outbox");
        assert_eq!(queued[0].finished_at, None);
        let plain = String::from_utf8_lossy(&queued[0].sealed);
        assert!(!plain.contains("alice"), "sealed at rest");

        let sent = mailbox.deliver(app).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "alice@example.test");
        let token = link_token(&sent[0]);
        assert!(
            sent[0]
                .body
                .contains(&format!("{ISSUER}/reset/confirm?token="))
        );
        let row = app
            .store
            .get_mail(&queued[0].mail_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.outcome, Some(MailOutcome::Sent));
        assert!(row.sealed.is_empty(), "the body is deleted once sent");

        // Opening the link (as a mail scanner would) consumes nothing.
        for _ in 0..2 {
            let page = Browser::default()
                .get(app, &format!("/reset/confirm?token={token}"))
                .await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(page.text().contains("name=\"password\""));
        }
        let done = use_link(app, &token, NEW_PASSWORD).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert!(done.text().contains("Password changed"));

        // The old grant is revoked and the old session is gone.
        app.token(
            &client,
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                encode(&refresh_token)
            ),
        )
        .await
        .assert_error(400, "invalid_grant");
        let again = signed_in
            .get(app, &authorize_path(&client.id, &Pkce::new(), "openid", ""))
            .await;
        assert!(again.text().contains("name=\"password\""), "signed out");
        // The new password signs in; the old one does not.
        assert!(
            valet_core::users::authenticate(
                app.store.as_ref(),
                app.server.hasher(),
                "alice",
                NEW_PASSWORD
            )
            .await
            .is_ok()
        );
        assert!(
            valet_core::users::authenticate(
                app.store.as_ref(),
                app.server.hasher(),
                "alice",
                PASSWORD
            )
            .await
            .is_err()
        );
        let events = audit_events(app).await;
        assert!(
            events
                .iter()
                .any(|e| e.event.as_str() == "user.password_reset"),
            "audited"
        );
        for event in &events {
            let json = serde_json::to_string(&event).unwrap();
            assert!(!json.contains(&token), "no link in the audit trail");
        }
    })
    .await;
}

#[tokio::test]
async fn a_replayed_or_tampered_link_is_refused() {
    on_both_stores(async |app: &TestApp| {
        app.user("alice").await;
        let mailbox = Mailbox::default();
        ask_reset(app, "alice").await;
        let token = link_token(&mailbox.deliver(app).await[0]);
        assert_eq!(
            use_link(app, &token, NEW_PASSWORD).await.status,
            StatusCode::OK
        );

        let replay = use_link(app, &token, "yet another passphrase").await;
        assert_eq!(replay.status, StatusCode::BAD_REQUEST);
        assert!(replay.text().contains("invalid, expired or already used"));

        ask_reset(app, "alice").await;
        let fresh = link_token(&mailbox.deliver(app).await[0]);
        let mut tampered = fresh.clone().into_bytes();
        tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [tampered.as_str(), "", "x", &fresh[..42]] {
            let reply = use_link(app, bad, NEW_PASSWORD).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        // POSTing straight to the form with a tampered token fails too.
        let mut browser = Browser::default();
        let page = browser.get(app, "/reset").await;
        let csrf = form_field(&page.text(), "csrf").unwrap();
        let reply = browser
            .post(
                app,
                "/reset/confirm",
                &format!(
                    "csrf={csrf}&token={tampered}&password=abcdefghij&confirmation=abcdefghij"
                ),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        // The untouched one still works.
        assert_eq!(
            use_link(app, &fresh, "the final passphrase").await.status,
            StatusCode::OK
        );
    })
    .await;
}

#[tokio::test]
async fn a_password_change_voids_earlier_links() {
    on_both_stores(async |app: &TestApp| {
        let user_id = app.user("alice").await;
        let mailbox = Mailbox::default();
        ask_reset(app, "alice").await;
        let token = link_token(&mailbox.deliver(app).await[0]);
        app.admin()
            .set_user_password(
                &user_id,
                &valet_core::users::Password::new("changed by the operator".into()),
            )
            .await
            .unwrap();
        let reply = use_link(app, &token, NEW_PASSWORD).await;
        // The store still holds the record, so the page opens; the binding
        // refuses it when the form is sent.
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        assert!(
            valet_core::users::authenticate(
                app.store.as_ref(),
                app.server.hasher(),
                "alice",
                "changed by the operator"
            )
            .await
            .is_ok()
        );
    })
    .await;
}

#[tokio::test]
async fn a_reset_link_is_not_an_email_verification_link() {
    on_both_stores(async |app: &TestApp| {
        app.user("alice").await;
        let mailbox = Mailbox::default();
        ask_reset(app, "alice").await;
        let token = link_token(&mailbox.deliver(app).await[0]);
        assert!(
            !app.server
                .email_verification_link_is_live(&token, app.server.now())
                .await
                .unwrap()
        );
        // Still a good reset link.
        assert_eq!(
            use_link(app, &token, NEW_PASSWORD).await.status,
            StatusCode::OK
        );
    })
    .await;
}

#[tokio::test]
async fn known_and_unknown_accounts_get_identical_answers() {
    on_both_stores(async |app: &TestApp| {
        app.user("alice").await;
        let known = ask_reset(app, "alice").await;
        let unknown = ask_reset(app, "nobody@example.test").await;
        assert_eq!(without_nonce(&known), without_nonce(&unknown));
        // One row each, indistinguishable at rest; only the sender tells them apart.
        let rows = app.store.list_mail(100).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].sealed.len().abs_diff(rows[1].sealed.len()),
            "nobody@example.test".len().abs_diff("alice".len())
        );
        let mailbox = Mailbox::default();
        let sent = mailbox.deliver(app).await;
        assert_eq!(sent.len(), 1);
        let outcomes: Vec<_> = app
            .store
            .list_mail(100)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.outcome)
            .collect();
        assert!(outcomes.contains(&Some(MailOutcome::Dropped)));
        assert!(outcomes.contains(&Some(MailOutcome::Sent)));

        // Throttled alike, too.
        for _ in 0..4 {
            ask_reset(app, "alice").await;
            ask_reset(app, "nobody@example.test").await;
        }
        let known = ask_reset(app, "alice").await;
        let unknown = ask_reset(app, "nobody@example.test").await;
        assert_eq!(known.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(without_nonce(&known), without_nonce(&unknown));
    })
    .await;
}

#[tokio::test]
async fn a_request_without_the_form_s_csrf_value_queues_nothing() {
    on_both_stores(async |app: &TestApp| {
        app.user("alice").await;
        let reply = Browser::default()
            .post(
                app,
                "/reset",
                "login=alice&csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(app.store.list_mail(100).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_weak_or_mistyped_password_keeps_the_link_usable() {
    on_both_stores(async |app: &TestApp| {
        app.user("alice").await;
        let mailbox = Mailbox::default();
        ask_reset(app, "alice").await;
        let token = link_token(&mailbox.deliver(app).await[0]);
        let weak = use_link(app, &token, "short").await;
        assert_eq!(weak.status, StatusCode::BAD_REQUEST);
        assert!(
            weak.text().contains("at least 8 characters"),
            "{}",
            weak.text()
        );
        assert_eq!(
            use_link(app, &token, NEW_PASSWORD).await.status,
            StatusCode::OK
        );
    })
    .await;
}

#[tokio::test]
async fn reset_is_off_unless_switched_on() {
    let app = TestApp::new().await;
    assert_eq!(app.get("/reset").await.status, StatusCode::NOT_FOUND);
    let mut settings = settings();
    settings.password_reset = true;
    let refused = valet_core::AuthorizationServer::start(
        settings,
        std::sync::Arc::clone(&app.store),
        valet_jose::MasterKey::generate().unwrap(),
        std::sync::Arc::new(valet_core::SystemClock),
    )
    .await;
    let Err(error) = refused else {
        panic!("password_reset without mail was accepted");
    };
    assert!(error.to_string().contains("smtp_url"), "{error}");
}

#[tokio::test]
async fn failed_sends_back_off_then_give_up_with_an_audit_record() {
    let app = TestApp::with_settings(reset_settings()).await;
    app.user("alice").await;
    ask_reset(&app, "alice").await;
    let mailbox = Mailbox::default();
    *mailbox.refuse.lock().unwrap() = Some(SendError::Temporary("421 try later".into()));
    let mut waits = Vec::new();
    for _ in 0..valet_core::mail::MAX_ATTEMPTS {
        let before = app.server.now();
        assert!(mailbox.deliver(&app).await.is_empty());
        let row = app.store.list_mail(10).await.unwrap().remove(0);
        if row.finished_at.is_some() {
            break;
        }
        waits.push(row.next_attempt_at - before);
        app.clock.advance(row.next_attempt_at - before);
    }
    assert_eq!(&waits[..4], [30, 60, 120, 240]);
    let row = app.store.list_mail(10).await.unwrap().remove(0);
    assert_eq!(row.outcome, Some(MailOutcome::Failed));
    assert_eq!(row.attempts, valet_core::mail::MAX_ATTEMPTS);
    assert!(row.sealed.is_empty());
    let events = audit_events(&app).await;
    assert!(events.iter().any(|e| e.event.as_str() == "mail.failed"));

    // The same link mailed after an outage: the mail waits, and nothing is lost.
    ask_reset(&app, "alice").await;
    *mailbox.refuse.lock().unwrap() = Some(SendError::Temporary("connection refused".into()));
    assert!(mailbox.deliver(&app).await.is_empty());
    *mailbox.refuse.lock().unwrap() = None;
    app.clock.advance(30);
    assert_eq!(mailbox.deliver(&app).await.len(), 1);
}
