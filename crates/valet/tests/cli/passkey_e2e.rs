//! Passkeys in a real browser: headless Chromium with a virtual WebAuthn
//! authenticator (W3C WebAuthn Level 2 §11.3, over WebDriver) registers a
//! passkey on `/account/passkeys`, then, signed out, signs in with it alone and
//! the code's ID token says how (`amr`); signed out again, the password is
//! followed by the passkey as a second factor.
//!
//! The issuer is `http://localhost:PORT`: WebAuthn needs a secure context and a
//! domain name as relying party id, and `localhost` is both.

use std::collections::HashMap;
use std::time::Duration;

use openidconnect::url::{Url, form_urlencoded};
use serde_json::Value;

use crate::harness::*;
use crate::webdriver::{Browser, CallbackListener, browser_missing};

const USERNAME: &str = "passkey-alice";
const PASSWORD: &str = "Tr0ub4dor&3 horse";
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn chromium_registers_a_passkey_and_signs_in_with_it_alone() {
    if browser_missing("passkey_e2e") {
        return;
    }
    let dir = temp_dir("passkey-e2e");
    let port = free_port();
    let issuer = format!("http://localhost:{port}");
    let mut command = valet(&dir);
    command.args([
        "serve",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--issuer",
        &issuer,
    ]);
    let server = Server::start(command, port, dir.join("serve.log"));
    let user_id = create_user(&dir, USERNAME, "passkey-alice@example.test", PASSWORD);
    let callback = CallbackListener::start();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback.port);
    let (client_id, client_secret) = create_web_client(&dir, "Photo App", &redirect_uri);

    let mut browser = Browser::start(&dir);
    let authenticator = browser.add_virtual_authenticator();

    // 1. Sign in with the password (and allow the app), then register a passkey.
    let (verifier, url) = authorize_url(&issuer, &client_id, &redirect_uri);
    browser.navigate(&url);
    browser.send_keys(&browser.find("input#username"), USERNAME);
    browser.send_keys(&browser.find("input#password"), PASSWORD);
    browser.click(&browser.find("form button[type=submit]"));
    browser.click(&browser.find("button[name=decision][value=allow]"));
    browser.wait_for_url(&redirect_uri, WAIT);
    callback.request_line(WAIT);
    let _ = verifier;

    browser.navigate(&format!("{issuer}/account/passkeys"));
    browser.send_keys(&browser.find("input#passkey-name"), "Virtual laptop");
    browser.click(&browser.find("button#add-passkey-button"));
    browser.wait_for_text("Virtual laptop", WAIT);
    browser.save_screenshot_if_asked("passkeys");
    let credentials = browser.virtual_credentials(&authenticator);
    assert_eq!(
        credentials.as_array().map(Vec::len),
        Some(1),
        "{credentials}"
    );
    assert_eq!(credentials[0]["isResidentCredential"], true, "discoverable");
    // The account page counts it and links to the passkeys page.
    browser.navigate(&format!("{issuer}/account"));
    assert_eq!(
        browser.text(&browser.find("#passkeys")),
        "1 passkey registered. Manage passkeys"
    );
    browser.click(&browser.find("a#passkeys-link"));
    browser.wait_for_url(&format!("{issuer}/account/passkeys"), WAIT);

    // 2. Signed out, sign in with the passkey alone: no username, no password.
    browser.delete_cookies();
    let second = CallbackListener::start_on(callback.port);
    let (verifier, url) = authorize_url(&issuer, &client_id, &redirect_uri);
    browser.navigate(&url);
    browser.click(&browser.find("button#passkey-button"));
    let landed = browser.wait_for_url(&redirect_uri, WAIT);
    second.request_line(WAIT);

    // 3. Signed out again (cookies are deleted for the page's site: Valet's),
    // the password now asks for the passkey as a second factor.
    browser.navigate(&format!("{issuer}/healthz"));
    browser.delete_cookies();
    let third = CallbackListener::start_on(callback.port);
    let (_, url) = authorize_url(&issuer, &client_id, &redirect_uri);
    browser.navigate(&url);
    browser.send_keys(&browser.find("input#username"), USERNAME);
    browser.send_keys(&browser.find("input#password"), PASSWORD);
    browser.click(&browser.find("form button[type=submit]"));
    browser.wait_for_text("Confirm it is you", WAIT);
    browser.click(&browser.find("button#passkey-button"));
    browser.wait_for_url(&redirect_uri, WAIT);
    third.request_line(WAIT);
    browser.quit();

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
    let reply = server.post_form("/token", Some((&client_id, &client_secret)), &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id_token = reply.json()["id_token"].as_str().unwrap().to_owned();
    let claims: Value = serde_json::from_slice(
        &valet_jose::b64url_decode(id_token.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], user_id.as_str());
    let amr = &claims["amr"];
    assert!(
        amr[0] == "hwk" || amr[0] == "swk",
        "a key's proof of possession: {amr}"
    );
    assert_eq!(amr[1], "user");
    assert_eq!(amr[2], "mfa");
}

/// A fresh authorization request: the PKCE verifier and the URL.
fn authorize_url(issuer: &str, client_id: &str, redirect_uri: &str) -> (String, String) {
    let verifier = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());
    let challenge = valet_jose::b64url(valet_jose::sha256(verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    (verifier, format!("{issuer}/authorize?{query}"))
}
