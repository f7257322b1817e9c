//! The web console in a real browser: headless Chromium signs in to `/admin`
//! as a user given the admin role by `valet user update --admin`, edits a
//! client's redirect URI, signs a user out everywhere (their refresh token stops
//! working) and disables them, and views the key states and audit events.
//! Every page is checked for WCAG AA contrast (4.5:1 for text) in both the
//! light and the dark colour scheme, emulated through the DevTools protocol.
//!
//! Needs Debian's `chromium` and `chromium-driver` (see `webdriver.rs`).

use std::collections::HashMap;
use std::time::Duration;

use openidconnect::url::{Url, form_urlencoded};
use serde_json::{Value, json};

use crate::harness::*;
use crate::webdriver::{Browser, CallbackListener, browser_missing};

const PASSWORD: &str = "Tr0ub4dor&3 horse";
const WAIT: Duration = Duration::from_secs(30);

/// For every visible element with text of its own (or a form control's
/// value): its colour against the first opaque background behind it
/// (WCAG 2.1 §1.4.3 relative luminance). Returns the ones below 4.5:1.
const CONTRAST_SCRIPT: &str = r#"
const parse = (text) => {
  const m = text.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
  if (!m) { return null; }
  return [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])];
};
const luminance = ([r, g, b]) => {
  const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
};
const blend = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
const dark = matchMedia('(prefers-color-scheme: dark)').matches;
const canvas = dark ? [18, 18, 18, 1] : [255, 255, 255, 1];
const background = (el) => {
  const layers = [];
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const bg = parse(getComputedStyle(node).backgroundColor);
    if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) { break; } }
  }
  let colour = canvas;
  for (const layer of layers.reverse()) { colour = layer[3] >= 1 ? layer : blend(layer, colour); }
  return colour;
};
const failures = [];
let checked = 0;
for (const el of document.body.querySelectorAll('*')) {
  const style = getComputedStyle(el);
  if (style.visibility !== 'visible' || style.display === 'none' || el.getClientRects().length === 0) { continue; }
  const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
  const control = ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName) && el.type !== 'hidden' && el.type !== 'checkbox' && el.type !== 'radio' && el.value;
  if (!own && !control) { continue; }
  const fg = parse(style.color);
  const bg = background(el);
  const colour = fg[3] >= 1 ? fg : blend(fg, bg);
  const [l1, l2] = [luminance(colour), luminance(bg)].sort((a, b) => b - a);
  const ratio = (l1 + 0.05) / (l2 + 0.05);
  checked += 1;
  if (ratio < 4.5) {
    failures.push(`${el.tagName.toLowerCase()} "${(el.textContent || el.value).trim().slice(0, 40)}" ${style.color} on rgb(${bg.slice(0, 3).join(', ')}): ${ratio.toFixed(2)}`);
  }
}
return { dark, checked, failures };
"#;

#[test]
fn chromium_uses_the_console_and_its_text_has_aa_contrast_in_both_schemes() {
    if browser_missing("console_browser") {
        return;
    }
    let (dir, server) = serve_fresh("console-browser");
    let issuer = format!("http://127.0.0.1:{}", server.port);
    create_user(&dir, "root", "root@example.test", PASSWORD);
    grant_admin(&dir, "root");
    create_user(&dir, "bob", "bob@example.test", PASSWORD);
    let callback = CallbackListener::start();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback.port);
    let (client_id, client_secret) = create_web_client(&dir, "Photo App", &redirect_uri);

    let mut browser = Browser::start(&dir);
    let refresh_token = bob_signs_in(
        &browser,
        &server,
        &issuer,
        &callback,
        (&client_id, &client_secret, &redirect_uri),
    );
    browser.delete_cookies();

    // The console sends the browser to sign in, and back.
    browser.navigate(&format!("{issuer}/admin"));
    sign_in(&browser, "root");
    browser.wait_for_url(&format!("{issuer}/admin/clients"), WAIT);
    browser.wait_for_text("Photo App", WAIT);
    check_contrast(&browser, "clients");

    // Edit the client's redirect URI.
    let link = browser.find("table#clients a");
    browser.click(&link);
    browser.wait_for_text("Client id", WAIT);
    let moved = format!("http://127.0.0.1:{}/moved", callback.port);
    let field = browser.find("textarea#redirect_uris");
    browser.session_call(
        "POST",
        &format!(
            "/element/{}/clear",
            element_id(&browser, "textarea#redirect_uris")
        ),
        Some(json!({})),
    );
    browser.send_keys(&field, &moved);
    let save = browser.find("form#client-form button[type=submit]");
    browser.click(&save);
    browser.wait_for_text("Saved (redirect_uris)", WAIT);
    check_contrast(&browser, "client");
    let shown = stdout_json(&run_ok({
        let mut command = valet(&dir);
        command.args(["client", "show", &client_id, "--json"]);
        command
    }));
    assert_eq!(shown["redirect_uris"], json!([moved]));

    // Sign bob out everywhere: his refresh token stops working.
    browser.navigate(&format!("{issuer}/admin/users?q=bob"));
    browser.wait_for_text("bob@example.test", WAIT);
    check_contrast(&browser, "users");
    let link = browser.find("table#users a");
    browser.click(&link);
    browser.wait_for_text("Sign out everywhere", WAIT);
    let end = browser.find("form#end_sessions-form button");
    browser.click(&end);
    browser.wait_for_text("Signed out everywhere", WAIT);
    check_contrast(&browser, "user");
    let body = format!("grant_type=refresh_token&refresh_token={refresh_token}");
    let refused = server.post_form("/token", Some((&client_id, &client_secret)), &body);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["error"], "invalid_grant");

    // Disable him.
    let disable = browser.find("form#disable-form button");
    browser.click(&disable);
    browser.wait_for_text("Disabled:", WAIT);
    let status = browser.find("#user-status");
    assert_eq!(browser.text(&status), "disabled");

    // Key states and the audit trail.
    browser.navigate(&format!("{issuer}/admin/keys"));
    browser.wait_for_text("signing", WAIT);
    check_contrast(&browser, "keys");
    browser.navigate(&format!("{issuer}/admin/audit"));
    browser.wait_for_text("client.updated", WAIT);
    browser.wait_for_text("user.disabled", WAIT);
    browser.wait_for_text("via=console", WAIT);
    check_contrast(&browser, "audit");
    browser.save_screenshot_if_asked("console-audit");
    browser.quit();
}

/// `valet user update NAME --admin`, and `valet user show` says so.
fn grant_admin(dir: &std::path::Path, username: &str) {
    let mut command = valet(dir);
    command.args(["user", "update", username, "--admin"]);
    run_ok(command);
    let mut command = valet(dir);
    command.args(["user", "show", username]);
    let out = run_ok(command);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("admin:         yes"), "{text}");
}

fn sign_in(browser: &Browser, username: &str) {
    let field = browser.find("input#username");
    browser.send_keys(&field, username);
    let password = browser.find("input#password");
    browser.send_keys(&password, PASSWORD);
    let submit = browser.find("form button[type=submit]");
    browser.click(&submit);
}

/// Bob signs in to the client and allows it; returns his refresh token.
fn bob_signs_in(
    browser: &Browser,
    server: &Server,
    issuer: &str,
    callback: &CallbackListener,
    (client_id, client_secret, redirect_uri): (&str, &str, &str),
) -> String {
    let verifier = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());
    let challenge = valet_jose::b64url(valet_jose::sha256(verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid offline_access"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    browser.navigate(&format!("{issuer}/authorize?{query}"));
    sign_in(browser, "bob");
    let allow = browser.find("button[name=decision][value=allow]");
    browser.click(&allow);
    let landed = browser.wait_for_url(redirect_uri, WAIT);
    callback.request_line(WAIT);
    let params: HashMap<String, String> = Url::parse(&landed)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &verifier),
        ])
        .finish();
    let reply = server.post_form("/token", Some((client_id, client_secret)), &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["refresh_token"].as_str().unwrap().to_owned()
}

fn element_id(browser: &Browser, css: &str) -> String {
    let found = browser.session_call(
        "POST",
        "/element",
        Some(json!({ "using": "css selector", "value": css })),
    );
    found
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

/// The page in the light and then the dark scheme: no text below 4.5:1.
fn check_contrast(browser: &Browser, page: &str) {
    for scheme in ["light", "dark"] {
        browser.session_call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
            })),
        );
        let report = browser.execute(CONTRAST_SCRIPT, json!([]));
        eprintln!(
            "console_browser: {page} ({scheme}): {} text elements checked",
            report["checked"]
        );
        assert_eq!(report["dark"], json!(scheme == "dark"), "{page}: emulation");
        assert!(
            report["checked"].as_u64().unwrap() > 5,
            "{page} ({scheme}): {report}"
        );
        assert_eq!(
            report["failures"],
            json!([]),
            "{page} ({scheme}): text below WCAG AA contrast"
        );
    }
}
