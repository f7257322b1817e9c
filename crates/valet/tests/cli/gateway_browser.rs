//! `valet gateway` in Chromium: sign-in through the gateway, the example app
//! calling an API behind `valet guard`, no token where scripts can see it, the
//! cookie's flags, a cross-site POST refused, a refresh after the access token
//! expires without a reload, and logout cutting the API off.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use crate::gateway::{PASSWORD, SESSION_COOKIE, setup_with};
use crate::webdriver::{Browser, browser_missing};

/// Runs `script` in the page as an async function body and returns what it resolves to.
fn run_async(browser: &Browser, script: &str) -> Value {
    let wrapped = format!(
        "const done = arguments[arguments.length - 1];\
         (async () => {{ {script} }})().then(done, (error) => done('error: ' + error));"
    );
    browser.session_call(
        "POST",
        "/execute/async",
        Some(json!({ "script": wrapped, "args": [] })),
    )
}

const GET_ORDERS: &str = "const reply = await fetch('/api/orders'); \
     return { status: reply.status, body: await reply.text() };";

#[test]
fn chromium_uses_the_example_app_through_the_gateway() {
    if browser_missing("gateway_browser") {
        return;
    }
    let app = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/gateway-spa");
    let setup = setup_with(3, &["--static", app]);
    let base = format!("http://127.0.0.1:{}", setup.gateway.port);
    let mut browser = Browser::start(&setup.dir);
    browser.navigate(&format!("{base}/"));
    let login = browser.find("button#login");
    assert_eq!(browser.text(&login), "Sign in");
    browser.click(&login);
    let username = browser.find("input#username");
    browser.send_keys(&username, "ada");
    let password = browser.find("input#password");
    browser.send_keys(&password, PASSWORD);
    browser.click(&browser.find("form button[type=submit]"));
    browser.wait_for_url(&format!("{base}/"), Duration::from_secs(30));
    let who = browser.find("#who");
    crate::harness::eventually("the app to show the user", || {
        browser.text(&who).starts_with("Signed in as")
    });

    // The cookie, as the browser stores it: HttpOnly, Secure (accepted from
    // http://127.0.0.1), SameSite=Lax, Path=/, host-only.
    let cookies = browser.session_call("GET", "/cookie", None);
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|cookie| cookie["name"] == SESSION_COOKIE)
        .unwrap_or_else(|| panic!("no session cookie in {cookies}"))
        .clone();
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["secure"], true, "{session}");
    assert_eq!(session["sameSite"], "Lax", "{session}");
    assert_eq!(session["path"], "/", "{session}");
    // Scripts see no cookie and no token anywhere.
    let visible = browser.execute(
        "return [document.cookie, JSON.stringify(Object.assign({}, localStorage)), \
         JSON.stringify(Object.assign({}, sessionStorage))];",
        json!([]),
    );
    assert_eq!(visible, json!(["", "{}", "{}"]));

    // The app calls the API behind the guard; the gateway adds the token.
    let reply = run_async(&browser, GET_ORDERS);
    assert_eq!(reply["status"], 200, "{reply}");
    let seen: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(seen["subject"], setup.user_id.as_str());

    // After the 3-second access token expires, the next call still passes,
    // in the same page (no reload: the marker survives).
    browser.execute("window.marker = 'same page'; return null;", json!([]));
    std::thread::sleep(Duration::from_secs(4));
    let reply = run_async(&browser, GET_ORDERS);
    assert_eq!(reply["status"], 200, "after expiry: {reply}");
    assert_eq!(
        browser.execute("return window.marker;", json!([])),
        "same page"
    );

    // A POST without the header is refused, and so is one from another origin
    // (the API's own page here) that cannot send it.
    let hits = setup.api.hits.load(Ordering::SeqCst);
    let plain = run_async(
        &browser,
        "const reply = await fetch('/api/orders', { method: 'POST' }); return reply.status;",
    );
    assert_eq!(plain, 403);
    assert_eq!(setup.api.hits.load(Ordering::SeqCst), hits);
    browser.navigate(&format!("http://127.0.0.1:{}/elsewhere", setup.api.port));
    // The page load itself (and its favicon) reached the API directly: count from here.
    std::thread::sleep(Duration::from_millis(500));
    let hits = setup.api.hits.load(Ordering::SeqCst);
    let cross = run_async(
        &browser,
        &format!(
            "await fetch('{base}/api/orders', {{ method: 'POST', mode: 'no-cors', credentials: 'include' }}); return 'sent';"
        ),
    );
    assert_eq!(cross, "sent");
    assert_eq!(
        setup.api.hits.load(Ordering::SeqCst),
        hits,
        "nothing reached the API"
    );

    // Logging out through the app ends API access.
    browser.navigate(&format!("{base}/"));
    let out = run_async(
        &browser,
        "const reply = await fetch('/bff/logout', { method: 'POST', headers: { 'X-Valet-CSRF': '1' } }); \
         return await reply.json();",
    );
    assert!(
        out["logout_url"]
            .as_str()
            .is_some_and(|url| url.contains("id_token_hint=")),
        "{out}"
    );
    let reply = run_async(&browser, GET_ORDERS);
    assert_eq!(reply["status"], 401, "{reply}");
    browser.quit();
}
