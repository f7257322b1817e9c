//! The authorization code flow in a real browser: headless Chromium, driven over
//! the W3C WebDriver protocol by `chromedriver`, signs in and consents on
//! `valet serve`'s own pages and lands on a callback listener; the test then
//! redeems the code like a confidential client.
//!
//! Needs Debian's `chromium` and `chromium-driver` (see `webdriver.rs`).
//! `VALET_UPDATE_SCREENSHOTS=1` also saves the login page to
//! `docs/screenshots/login.png`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use openidconnect::url::{Url, form_urlencoded};
use serde_json::{Value, json};

use crate::harness::*;
use crate::webdriver::{Browser, CallbackListener, browser_missing};

const USERNAME: &str = "browser-alice";
const PASSWORD: &str = "Tr0ub4dor&3 horse";
const SCOPE: &str = "openid profile email offline_access";

#[test]
fn chromium_signs_in_consents_and_the_code_is_redeemed() {
    if browser_missing("browser_e2e") {
        return;
    }

    let (dir, server) = serve_fresh("browser");
    let port = server.port;
    let issuer = format!("http://127.0.0.1:{port}");
    let user_id = create_user(&dir, USERNAME, "browser-alice@example.test", PASSWORD);
    let callback = CallbackListener::start();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback.port);
    let (client_id, client_secret) = create_web_client(&dir, "Photo App", &redirect_uri);

    let verifier = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());
    let challenge = valet_jose::b64url(valet_jose::sha256(verifier.as_bytes()));
    let state = valet_jose::b64url(valet_jose::random_bytes::<16>().unwrap());
    let nonce = valet_jose::b64url(valet_jose::random_bytes::<16>().unwrap());
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", SCOPE),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .finish();

    let mut browser = Browser::start(&dir);
    browser.navigate(&format!("{issuer}/authorize?{query}"));
    let username = browser.find("input#username");
    let screenshot = browser.screenshot();
    assert!(screenshot.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    if std::env::var("VALET_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots/login.png");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &screenshot).unwrap();
    }
    browser.send_keys(&username, USERNAME);
    let password = browser.find("input#password");
    browser.send_keys(&password, PASSWORD);
    let sign_in = browser.find("form button[type=submit]");
    assert_eq!(browser.text(&sign_in), "Sign in");
    browser.click(&sign_in);

    let allow = browser.find("button[name=decision][value=allow]");
    assert_eq!(browser.text(&allow), "Allow");
    // Signed in, yet no script on the page can read the session or CSRF cookie.
    let script_cookies = browser.execute("return document.cookie;", json!([]));
    assert_eq!(script_cookies, json!(""), "HttpOnly cookies only");
    browser.click(&allow);

    let landed = browser.wait_for_url(&redirect_uri, Duration::from_secs(30));
    let request_line = callback.request_line(Duration::from_secs(30));
    assert!(
        request_line.starts_with("GET /callback?") && request_line.ends_with(" HTTP/1.1"),
        "{request_line}"
    );
    assert!(request_line.contains("code="), "{request_line}");
    let params: HashMap<String, String> = Url::parse(&landed)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(params["state"], state);
    assert_eq!(params["iss"], issuer, "RFC 9207 issuer identification");
    browser.quit();

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
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let tokens = reply.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("vrt_")
    );
    let (at_header, at_claims) = decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(at_header["typ"], "at+jwt");
    assert_eq!(at_claims["sub"], user_id.as_str());
    assert_eq!(at_claims["client_id"], client_id.as_str());
    let (id_header, id_claims) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_header["alg"], "RS256");
    assert_eq!(id_claims["iss"], issuer.as_str());
    assert_eq!(id_claims["sub"], user_id.as_str());
    assert_eq!(id_claims["aud"], client_id.as_str());
    assert_eq!(id_claims["nonce"], nonce.as_str());

    // The code was consumed.
    let replay = server.post_form("/token", Some((&client_id, &client_secret)), &body);
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(replay.json()["error"], "invalid_grant");
}

fn decode_jwt(jwt: &str) -> (Value, Value) {
    let part = |index: usize| -> Value {
        let segment = jwt.split('.').nth(index).unwrap();
        serde_json::from_slice(&valet_jose::b64url_decode(segment).unwrap()).unwrap()
    };
    (part(0), part(1))
}
