//! The mail flows in a real browser (headless Chromium over WebDriver) against
//! `valet serve` delivering to a real SMTP server (aiosmtpd): sign up → mail →
//! verify; sign in, then reset → mail → new password, after which the old
//! session's refresh token is refused; the used reset link is refused when
//! opened again; an email change on the account page takes effect only once
//! the link mailed to the new address is confirmed.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use openidconnect::url::{Url, form_urlencoded};

use crate::harness::*;
use crate::mail::{SmtpSink, reset_token};
use crate::webdriver::{Browser, CallbackListener, browser_missing};

const NEW_PASSWORD: &str = "a fresh passphrase, typed twice";

/// `valet serve` with mail to the sink on `smtp_port`, reset and registration on.
fn serve_with_mail(dir: &Path, smtp_port: u16) -> Server {
    let port = free_port();
    let mut command = valet(dir);
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("VALET_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("VALET_MAIL_FROM", "Valet <valet@example.test>")
        .env("VALET_PASSWORD_RESET", "true")
        .env("VALET_REGISTRATION", "open");
    Server::start(command, port, dir.join("serve.log"))
}

/// After a click that submits a form, the heading of the page it leads to
/// (which says `role="status"`; the form's page does not, so a heading of the
/// old page is never read while the next one loads).
fn next_heading(browser: &Browser) -> String {
    browser.find("p[role=status]");
    let heading = browser.find("h1");
    browser.text(&heading)
}

/// Waits for the `count`-th message and returns it.
fn nth_message(sink: &SmtpSink, count: usize) -> String {
    eventually("the mail", || sink.messages().len() >= count);
    sink.messages()[count - 1].clone()
}

fn user_json(dir: &Path, user: &str) -> serde_json::Value {
    let mut command: Command = valet(dir);
    command.args(["user", "show", user, "--json"]);
    stdout_json(&run_ok(command))
}

#[test]
fn chromium_signs_up_and_verifies_by_mail() {
    if browser_missing("mail_browser sign-up") || !SmtpSink::available("mail_browser sign-up") {
        return;
    }
    let dir = temp_dir("mail-browser-signup");
    let smtp_port = free_port();
    let sink = SmtpSink::start(smtp_port, &dir.join("inbox"));
    let server = serve_with_mail(&dir, smtp_port);
    let issuer = format!("http://127.0.0.1:{}", server.port);

    let mut browser = Browser::start(&dir);
    browser.navigate(&format!("{issuer}/register"));
    for (field, value) in [
        ("input#username", "browser-carol"),
        ("input#email", "carol@example.test"),
        ("input#password", NEW_PASSWORD),
        ("input#confirmation", NEW_PASSWORD),
    ] {
        let input = browser.find(field);
        browser.send_keys(&input, value);
    }
    browser.save_screenshot_if_asked("register");
    let submit = browser.find("form button[type=submit]");
    browser.click(&submit);
    assert_eq!(next_heading(&browser), "Check your mail");
    assert_eq!(user_json(&dir, "browser-carol")["email_verified"], false);

    let mail = nth_message(&sink, 1);
    assert!(mail.contains("carol@example.test"), "{mail}");
    let token = reset_token(&mail);
    browser.navigate(&format!("{issuer}/verify-email?token={token}"));
    let confirm = browser.find("form button[type=submit]");
    assert_eq!(browser.text(&confirm), "Confirm");
    // Opening the link changed nothing yet.
    assert_eq!(user_json(&dir, "browser-carol")["email_verified"], false);
    browser.click(&confirm);
    assert_eq!(next_heading(&browser), "Email address confirmed");
    assert_eq!(user_json(&dir, "browser-carol")["email_verified"], true);
    browser.quit();
}

#[test]
fn chromium_resets_a_password_by_mail_and_the_old_session_dies() {
    if browser_missing("mail_browser reset") || !SmtpSink::available("mail_browser reset") {
        return;
    }
    let dir = temp_dir("mail-browser-reset");
    let smtp_port = free_port();
    let sink = SmtpSink::start(smtp_port, &dir.join("inbox"));
    let server = serve_with_mail(&dir, smtp_port);
    let issuer = format!("http://127.0.0.1:{}", server.port);
    create_user(
        &dir,
        "browser-dan",
        "dan@example.test",
        crate::load::PASSWORD,
    );
    let callback = CallbackListener::start();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback.port);
    let (client_id, client_secret) = create_web_client(&dir, "Photo App", &redirect_uri);

    // Signed in, with a refresh token.
    let verifier = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());
    let challenge = valet_jose::b64url(valet_jose::sha256(verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid offline_access"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let mut browser = Browser::start(&dir);
    browser.navigate(&format!("{issuer}/authorize?{query}"));
    let forgot = browser.find("a[href$='/reset']");
    assert_eq!(browser.text(&forgot), "Forgot password?");
    let username = browser.find("input#username");
    browser.send_keys(&username, "browser-dan");
    let password = browser.find("input#password");
    browser.send_keys(&password, crate::load::PASSWORD);
    let sign_in = browser.find("form button[type=submit]");
    browser.click(&sign_in);
    let allow = browser.find("button[name=decision][value=allow]");
    browser.click(&allow);
    let landed = browser.wait_for_url(&redirect_uri, Duration::from_secs(30));
    let _ = callback.request_line(Duration::from_secs(30));
    let params: HashMap<String, String> = Url::parse(&landed)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
        ])
        .finish();
    let tokens = server.post_form("/token", Some((&client_id, &client_secret)), &body);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let refresh_token = tokens.json()["refresh_token"].as_str().unwrap().to_owned();

    // Forgot the password: ask by email.
    browser.navigate(&format!("{issuer}/reset"));
    let login = browser.find("input#login");
    browser.send_keys(&login, "dan@example.test");
    browser.save_screenshot_if_asked("reset");
    let send = browser.find("form button[type=submit]");
    browser.click(&send);
    assert_eq!(next_heading(&browser), "Check your mail");
    let token = reset_token(&nth_message(&sink, 1));

    let link = format!("{issuer}/reset/confirm?token={token}");
    browser.navigate(&link);
    for field in ["input#password", "input#confirmation"] {
        let input = browser.find(field);
        browser.send_keys(&input, NEW_PASSWORD);
    }
    let set = browser.find("form button[type=submit]");
    browser.click(&set);
    assert_eq!(next_heading(&browser), "Password changed");

    // The session's grant is revoked: its refresh token is refused.
    let refresh = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ])
        .finish();
    let refused = server.post_form("/token", Some((&client_id, &client_secret)), &refresh);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["error"], "invalid_grant");

    // The link is used up.
    browser.navigate(&link);
    let heading = browser.find("h1");
    assert_eq!(browser.text(&heading), "Link invalid or expired");
    // The browser's session ended: the next authorization asks for the password.
    browser.navigate(&format!("{issuer}/authorize?{query}"));
    browser.find("input#password");
    browser.quit();
    assert!(!server.log_text().contains(&token), "no link in the log");
}

#[test]
fn chromium_changes_the_email_on_the_account_page_through_the_new_address() {
    if browser_missing("mail_browser email change")
        || !SmtpSink::available("mail_browser email change")
    {
        return;
    }
    let dir = temp_dir("mail-browser-email-change");
    let smtp_port = free_port();
    let sink = SmtpSink::start(smtp_port, &dir.join("inbox"));
    let server = serve_with_mail(&dir, smtp_port);
    let issuer = format!("http://127.0.0.1:{}", server.port);
    create_user(
        &dir,
        "browser-erin",
        "erin@example.test",
        crate::load::PASSWORD,
    );

    let mut browser = Browser::start(&dir);
    browser.navigate(&format!("{issuer}/account"));
    browser.send_keys(&browser.find("input#username"), "browser-erin");
    browser.send_keys(&browser.find("input#password"), crate::load::PASSWORD);
    browser.click(&browser.find("form button[type=submit]"));
    assert_eq!(browser.text(&browser.find("#email")), "erin@example.test");
    browser.save_screenshot_if_asked("account");
    browser.send_keys(&browser.find("input#new_email"), "erin.new@example.test");
    browser.send_keys(&browser.find("input#email_password"), crate::load::PASSWORD);
    browser.click(&browser.find("#email-form button[type=submit]"));
    let notice = browser.text(&browser.find("#notice"));
    assert!(notice.contains("sent to the new address"), "{notice}");
    assert_eq!(
        user_json(&dir, "browser-erin")["email"],
        "erin@example.test"
    );

    nth_message(&sink, 2);
    let messages = sink.messages();
    let link = messages
        .iter()
        .find(|m| m.contains("erin.new@example.test") && m.contains("?token="))
        .expect("a link to the new address");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("To: erin@example.test") && !m.contains("?token=")),
        "a notice without a link to the current address: {messages:?}"
    );
    let token = reset_token(link);
    browser.navigate(&format!("{issuer}/verify-email?token={token}"));
    browser.click(&browser.find("form button[type=submit]"));
    assert_eq!(next_heading(&browser), "Email address confirmed");
    let user = user_json(&dir, "browser-erin");
    assert_eq!(user["email"], "erin.new@example.test");
    assert_eq!(user["email_verified"], true);
    browser.quit();
    assert!(!server.log_text().contains(&token), "no link in the log");
}
