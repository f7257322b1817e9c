//! The account page in a real browser (headless Chromium over WebDriver, see
//! `webdriver.rs`): opening `/account` leads through the sign-in and back to
//! the page; the sessions are listed; a password change there signs out the
//! user's other browser, and the new password is the one that works.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;
use crate::webdriver::{Browser, browser_missing};

const USERNAME: &str = "account-alice";
const PASSWORD: &str = "Tr0ub4dor&3 horse";
const NEW_PASSWORD: &str = "correct horse battery staple";

/// A browser with a profile of its own.
fn fresh_browser(dir: &std::path::Path, round: &str) -> Browser {
    let own = dir.join(round);
    std::fs::create_dir_all(&own).unwrap();
    Browser::start(&own)
}

/// Opens the account page, signs in on the way, and waits to be back on it.
fn sign_in(browser: &Browser, issuer: &str, password: &str) {
    browser.navigate(&format!("{issuer}/account"));
    browser.send_keys(&browser.find("input#username"), USERNAME);
    browser.send_keys(&browser.find("input#password"), password);
    browser.click(&browser.find("form button[type=submit]"));
    browser.wait_for_url(&format!("{issuer}/account"), Duration::from_secs(30));
    // The sign-in page has the same address; the account page names the user.
    browser.find("strong#username");
}

fn session_count(browser: &Browser) -> i64 {
    browser
        .execute(
            "return document.querySelectorAll('#sessions li').length;",
            json!([]),
        )
        .as_i64()
        .unwrap()
}

#[test]
fn chromium_signs_in_to_the_account_page_and_changes_the_password() {
    if browser_missing("account_e2e") {
        return;
    }
    let (dir, server) = serve_fresh("account-browser");
    let issuer = format!("http://127.0.0.1:{}", server.port);
    create_user(&dir, USERNAME, "account-alice@example.test", PASSWORD);

    let mut other = fresh_browser(&dir, "other");
    sign_in(&other, &issuer, PASSWORD);
    let mut browser = fresh_browser(&dir, "main");
    sign_in(&browser, &issuer, PASSWORD);
    assert_eq!(browser.text(&browser.find("strong#username")), USERNAME);
    assert_eq!(
        session_count(&browser),
        2,
        "both browsers' sessions are listed"
    );

    browser.send_keys(&browser.find("input#current_password"), PASSWORD);
    browser.send_keys(&browser.find("input#new_password"), NEW_PASSWORD);
    browser.send_keys(&browser.find("input#new_password_again"), NEW_PASSWORD);
    browser.click(&browser.find("#password-form button[type=submit]"));
    let notice = browser.text(&browser.find("#notice"));
    assert!(notice.contains("Your password was changed"), "{notice}");
    assert_eq!(session_count(&browser), 1, "the other session ended");

    // The other browser is signed out: the page asks for the password again.
    other.navigate(&format!("{issuer}/account"));
    other.find("input#password");
    other.quit();

    // This browser stays signed in.
    browser.navigate(&format!("{issuer}/account"));
    assert_eq!(browser.text(&browser.find("strong#username")), USERNAME);
    browser.quit();

    let mut fresh = fresh_browser(&dir, "fresh");
    sign_in(&fresh, &issuer, NEW_PASSWORD);
    assert_eq!(fresh.text(&fresh.find("strong#username")), USERNAME);
    fresh.quit();
}
