//! Two-factor sign-in in a real browser (headless Chromium over WebDriver, see
//! `webdriver.rs`): a client that requires a second factor leads a new user
//! to enrol TOTP (the QR code must render under the page's CSP; the code is
//! computed here from the key read off the page), then the user signs in with
//! a TOTP code, and once with a recovery code, which does not work twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openidconnect::url::form_urlencoded;
use serde_json::json;
use valet_core::mfa::totp;

use crate::harness::*;
use crate::webdriver::{Browser, CallbackListener, browser_missing};

const USERNAME: &str = "mfa-alice";
const PASSWORD: &str = "Tr0ub4dor&3 horse";

/// RFC 4648 base32 (no padding) back to bytes.
fn base32_decode(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.trim().bytes() {
        let value = alphabet.iter().position(|a| *a == c).unwrap() as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Opens an authorization request for `client_id` in `browser`, answered at a
/// fresh callback listener (a loopback redirect URI matches any port), and
/// signs in with the password.
fn start(browser: &Browser, issuer: &str, client_id: &str) -> CallbackListener {
    let callback = CallbackListener::start();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback.port);
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid"),
            ("state", "s"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    browser.navigate(&format!("{issuer}/authorize?{query}"));
    let username = browser.find("input#username");
    browser.send_keys(&username, USERNAME);
    let password = browser.find("input#password");
    browser.send_keys(&password, PASSWORD);
    browser.click(&browser.find("form button[type=submit]"));
    callback
}

/// A browser with a profile of its own (no cookies from the rounds before).
fn fresh_browser(dir: &std::path::Path, round: &str) -> Browser {
    let own = dir.join(round);
    std::fs::create_dir_all(&own).unwrap();
    Browser::start(&own)
}

fn lands(callback: &CallbackListener) {
    let line = callback.request_line(Duration::from_secs(30));
    assert!(
        line.starts_with("GET /callback?") && line.contains("code="),
        "{line}"
    );
}

#[test]
fn chromium_enrols_totp_then_signs_in_with_a_code_and_a_recovery_code() {
    if browser_missing("mfa_e2e") {
        return;
    }
    let (dir, server) = serve_fresh("mfa-browser");
    let issuer = format!("http://127.0.0.1:{}", server.port);
    create_user(&dir, USERNAME, "mfa-alice@example.test", PASSWORD);
    let mut command = valet(&dir);
    command.args(["client", "create", "--name", "Photo App"]);
    command.args(["--redirect-uri", "http://127.0.0.1:1/callback"]);
    command.args(["--skip-consent", "--require-mfa", "--json"]);
    let client_id = stdout_json(&run_ok(command))["client_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Enrolment: the QR code is drawn, the key and ten recovery codes shown.
    let mut browser = fresh_browser(&dir, "enrol");
    let callback = start(&browser, &issuer, &client_id);
    let code_field = browser.find("#enrol-form input#totp-code");
    let qr_width = browser.execute(
        "const img = document.querySelector('p.qr img'); return img.complete ? img.naturalWidth : -1;",
        json!([]),
    );
    assert!(
        qr_width.as_i64().unwrap() > 0,
        "the QR code renders: {qr_width}"
    );
    let secret = base32_decode(&browser.text(&browser.find("#totp-secret")));
    assert_eq!(secret.len(), 20);
    let recovery = browser.execute(
        "return Array.from(document.querySelectorAll('#recovery-codes code')).map(c => c.textContent);",
        json!([]),
    );
    let recovery: Vec<String> = serde_json::from_value(recovery).unwrap();
    assert_eq!(recovery.len(), 10);
    browser.save_screenshot_if_asked("totp-enrol");
    let step = totp::step_at(now());
    browser.send_keys(&code_field, &totp::code_at(&secret, step));
    browser.click(&browser.find("#enrol-submit"));
    lands(&callback);
    browser.quit();

    // Sign-in with a code (the next step's: one step of drift is accepted, and
    // the step enrolment used is spent).
    let mut browser = fresh_browser(&dir, "totp");
    let callback = start(&browser, &issuer, &client_id);
    let code_field = browser.find("#totp-form input#totp-code");
    browser.save_screenshot_if_asked("second-factor");
    browser.send_keys(&code_field, &totp::code_at(&secret, step + 1));
    browser.click(&browser.find("#totp-submit"));
    lands(&callback);
    browser.quit();

    // Sign-in with a recovery code, once.
    for attempt in 0..2 {
        let mut browser = fresh_browser(&dir, &format!("recovery-{attempt}"));
        let callback = start(&browser, &issuer, &client_id);
        browser.click(&browser.find("details.other summary"));
        let field = browser.find("input#recovery-code");
        browser.send_keys(&field, &recovery[0]);
        browser.click(&browser.find("#recovery-submit"));
        if attempt == 0 {
            lands(&callback);
        } else {
            let error = browser.find("#factor-error");
            assert!(
                browser.text(&error).contains("used already"),
                "{}",
                browser.text(&error)
            );
        }
        browser.quit();
    }
}
