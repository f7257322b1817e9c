//! Branding and languages in a real browser: headless Chromium signs in and
//! consents on the German pages that `ui_locales=de` asks for, with the
//! operator's product name and accent colour, and lands on the callback.
//!
//! Needs Debian's `chromium` and `chromium-driver` (see `webdriver.rs`).

use std::time::Duration;

use openidconnect::url::form_urlencoded;
use serde_json::json;

use crate::harness::*;
use crate::webdriver::{Browser, CallbackListener, browser_missing};

#[test]
fn chromium_signs_in_on_the_german_pages() {
    if browser_missing("i18n_e2e") {
        return;
    }
    let dir = temp_dir("i18n-browser");
    let port = free_port();
    let mut command = valet(&dir);
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("VALET_PRODUCT_NAME", "Acme ID")
        .env("VALET_BRAND_COLOR", "#0b5d1e");
    let server = Server::start(command, port, dir.join("serve.log"));
    let issuer = format!("http://127.0.0.1:{}", server.port);
    create_user(&dir, "anna", "anna@example.test", "Tr0ub4dor&3 horse");
    let callback = CallbackListener::start();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback.port);
    let (client_id, _) = create_web_client(&dir, "Fotoalbum", &redirect_uri);
    let challenge = valet_jose::b64url(valet_jose::sha256(b"a verifier of no importance here"));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid email"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("ui_locales", "fr-FR de"),
        ])
        .finish();

    let mut browser = Browser::start(&dir);
    browser.navigate(&format!("{issuer}/authorize?{query}"));
    let username = browser.find("input#username");
    let page = |browser: &Browser| {
        browser.execute(
            "return [document.documentElement.lang, document.querySelector('h1').textContent, \
             document.querySelector('header.brand').textContent, \
             getComputedStyle(document.querySelector('form button[type=submit]')).backgroundColor];",
            json!([]),
        )
    };
    assert_eq!(
        page(&browser),
        json!(["de", "Anmelden", "Acme ID", "rgb(11, 93, 30)"])
    );
    browser.save_screenshot_if_asked("login-de");
    browser.send_keys(&username, "anna");
    let password = browser.find("input#password");
    browser.send_keys(&password, "Tr0ub4dor&3 horse");
    let sign_in = browser.find("form button[type=submit]");
    assert_eq!(browser.text(&sign_in), "Anmelden");
    browser.click(&sign_in);

    let allow = browser.find("button[name=decision][value=allow]");
    assert_eq!(browser.text(&allow), "Erlauben");
    assert_eq!(page(&browser)[1], json!("Fotoalbum erlauben?"));
    browser.click(&allow);
    let landed = browser.wait_for_url(&redirect_uri, Duration::from_secs(30));
    assert!(landed.contains("code="), "{landed}");
    browser.quit();
}
