//! Two-factor sign-in from the outside: TOTP enrolment when a client requires
//! it (the code computed here from the secret read off the page), sign-in with
//! a code, replay and throttling, recovery codes, `acr`/`amr`, `acr_values`
//! and `max_age`, and the attacks on the second step.

use axum::http::StatusCode;
use serde_json::Value;
use valet_core::config::MfaPolicy;
use valet_core::mfa::totp;
use valet_core::{Clock as _, Settings};

use valet_test_support::api::*;

const ACR_MFA: &str = "urn:valet:acr:mfa";
const ACR_PWD: &str = "urn:valet:acr:pwd";

/// RFC 4648 base32 (no padding) back to bytes.
fn base32_decode(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
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

/// The page as a browser reads attribute values (minijinja escapes `/`).
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&amp;", "&")
}

/// The text of the element with `id` (its first child text).
fn element_text(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id}: {html}"))
        + marker.len();
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].to_owned()
}

fn recovery_codes(html: &str) -> Vec<String> {
    let list = &html[html.find("id=\"recovery-codes\"").unwrap()..];
    let list = &list[..list.find("</ul>").unwrap()];
    list.split("<code>")
        .skip(1)
        .map(|part| part[..part.find("</code>").unwrap()].to_owned())
        .collect()
}

fn code_now(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(secret, totp::step_at(app.clock.now()))
}

/// The second-factor (or enrolment) form of `page` with `method` and `code`.
fn factor_form(page: &Reply, method: &str, code: &str) -> String {
    let html = page.text();
    format!(
        "interaction={}&csrf={}&method={method}&code={}",
        form_field(&html, "interaction").unwrap(),
        form_field(&html, "csrf").unwrap(),
        encode(code)
    )
}

struct Enrolled {
    secret: Vec<u8>,
    recovery: Vec<String>,
}

/// alice signs in to `client` (which requires MFA) for the first time and
/// enrols TOTP; the ID token of the code.
async fn enrol(app: &TestApp, client: &TestClient) -> (Enrolled, Value) {
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let page = browser
        .get(app, &authorize_path(&client.id, &pkce, "openid", ""))
        .await;
    let body = login_form(&page, "alice", PASSWORD);
    let enrol = browser.post(app, "/login", &body).await;
    assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.text());
    assert!(
        !browser.cookies.keys().any(|name| name.contains("session")),
        "no session before the second factor"
    );
    let html = unescape(&enrol.text());
    assert!(
        html.contains("src=\"data:image/svg+xml;base64,"),
        "a QR code: {html}"
    );
    let secret_text = element_text(&html, "totp-secret");
    let uri = element_text(&html, "totp-uri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret_text}")), "{uri}");
    let secret = base32_decode(&secret_text);
    assert_eq!(secret.len(), 20);
    let recovery = recovery_codes(&html);
    assert_eq!(recovery.len(), 10);

    // A wrong code shows the same enrolment again.
    let wrong = browser
        .post(
            app,
            "/second-factor",
            &factor_form(&enrol, "totp", "000000"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text());
    assert_eq!(element_text(&wrong.text(), "totp-secret"), secret_text);
    assert_eq!(recovery_codes(&wrong.text()), recovery);

    let code = code_now(app, &secret);
    let mut done = browser
        .post(app, "/second-factor", &factor_form(&wrong, "totp", &code))
        .await;
    if done.text().contains("name=\"decision\"") {
        done = browser
            .post(app, "/consent", &consent_form(&done, "allow"))
            .await;
    }
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    let params = location_params(&done);
    let tokens = redeem(app, client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let (_, claims) = decode_jwt(tokens.json()["id_token"].as_str().unwrap());
    (Enrolled { secret, recovery }, Value::Object(claims))
}

/// A fresh browser signs alice in with her password up to the second factor page.
async fn to_second_factor(
    app: &TestApp,
    client: &TestClient,
    extra: &str,
) -> (Browser, Pkce, Reply) {
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let page = browser
        .get(app, &authorize_path(&client.id, &pkce, "openid", extra))
        .await;
    let body = login_form(&page, "alice", PASSWORD);
    let factor = browser.post(app, "/login", &body).await;
    assert_eq!(factor.status, StatusCode::OK, "{}", factor.text());
    assert!(
        factor.text().contains("id=\"totp-form\""),
        "{}",
        factor.text()
    );
    (browser, pkce, factor)
}

async fn id_claims(app: &TestApp, client: &TestClient, reply: &Reply, pkce: &Pkce) -> Value {
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    let params = location_params(reply);
    let tokens = redeem(app, client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let (_, claims) = decode_jwt(tokens.json()["id_token"].as_str().unwrap());
    Value::Object(claims)
}

async fn required_client(app: &TestApp) -> TestClient {
    app.web_client(|c| {
        c.skip_consent = true;
        c.require_mfa = true;
    })
    .await
}

async fn totp_enrolment_and_sign_in(app: &TestApp) {
    app.user("alice").await;
    let client = required_client(app).await;
    let (enrolled, claims) = enrol(app, &client).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], ACR_MFA);

    // Next sign-in: password, then a code; the code enrolment used is refused.
    let (mut browser, pkce, factor) = to_second_factor(app, &client, "").await;
    assert!(factor.text().contains("id=\"recovery-form\""));
    let replayed = code_now(app, &enrolled.secret);
    let refused = browser
        .post(
            app,
            "/second-factor",
            &factor_form(&factor, "totp", &replayed),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "a code works once"
    );
    app.clock.advance(30);
    let code = code_now(app, &enrolled.secret);
    let done = browser
        .post(app, "/second-factor", &factor_form(&refused, "totp", &code))
        .await;
    let claims = id_claims(app, &client, &done, &pkce).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], ACR_MFA);
    assert_eq!(claims["auth_time"], app.clock.now());

    // A recovery code works once.
    app.clock.advance(30);
    let recovery = &enrolled.recovery[3];
    let (mut browser, pkce, factor) = to_second_factor(app, &client, "").await;
    let done = browser
        .post(
            app,
            "/second-factor",
            &factor_form(&factor, "recovery_code", recovery),
        )
        .await;
    let claims = id_claims(app, &client, &done, &pkce).await;
    assert_eq!(claims["acr"], ACR_MFA);
    let (mut browser, _, factor) = to_second_factor(app, &client, "").await;
    let again = browser
        .post(
            app,
            "/second-factor",
            &factor_form(&factor, "recovery_code", recovery),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text());
}

#[tokio::test]
async fn totp_enrolment_and_sign_in_on_sqlite() {
    totp_enrolment_and_sign_in(&TestApp::new().await).await;
}

#[tokio::test]
async fn totp_enrolment_and_sign_in_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    totp_enrolment_and_sign_in(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_passwords() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = required_client(&app).await;
    let (enrolled, _) = enrol(&app, &client).await;
    app.clock.advance(60);
    let (mut browser, _, mut page) = to_second_factor(&app, &client, "").await;
    for _ in 0..5 {
        page = browser
            .post(
                &app,
                "/second-factor",
                &factor_form(&page, "totp", "123456"),
            )
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.text());
    }
    let right = code_now(&app, &enrolled.secret);
    let throttled = browser
        .post(&app, "/second-factor", &factor_form(&page, "totp", &right))
        .await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.header("retry-after").is_some());
    // Recovery codes share the limit.
    let recovery = browser
        .post(
            &app,
            "/second-factor",
            &factor_form(&page, "recovery_code", &enrolled.recovery[0]),
        )
        .await;
    assert_eq!(recovery.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_user_with_a_factor_proves_it_for_every_client_and_acr_follows() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let plain = app.web_client(|c| c.skip_consent = true).await;
    // Without a factor and without a requirement: the password is enough.
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&plain.id, &pkce, "openid", ""),
        "alice",
    )
    .await;
    let tokens = redeem(&app, &plain, &params["code"], &pkce.verifier).await;
    let (_, claims) = decode_jwt(tokens.json()["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["acr"], ACR_PWD);

    // acr_values asking for two factors leads to enrolment (a voluntary claim honoured).
    let mut stepping = browser.clone();
    let pkce = Pkce::new();
    let extra = format!("&acr_values={}", encode(ACR_MFA));
    let page = stepping
        .get(&app, &authorize_path(&plain.id, &pkce, "openid", &extra))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(
        page.text().contains("id=\"enrol-form\""),
        "the session is stepped up"
    );
    // prompt=none cannot step up.
    let none = browser
        .get(
            &app,
            &authorize_path(
                &plain.id,
                &Pkce::new(),
                "openid",
                &format!("{extra}&prompt=none"),
            ),
        )
        .await;
    assert_eq!(location_params(&none)["error"], "interaction_required");
}

#[tokio::test]
async fn max_age_asks_for_the_password_again() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&client.id, &Pkce::new(), "openid", ""),
        "alice",
    )
    .await;
    app.clock.advance(120);
    let fresh = browser
        .get(
            &app,
            &authorize_path(&client.id, &Pkce::new(), "openid", "&max_age=300"),
        )
        .await;
    assert_eq!(
        fresh.status,
        StatusCode::SEE_OTHER,
        "a recent session counts"
    );
    let stale = browser
        .get(
            &app,
            &authorize_path(&client.id, &Pkce::new(), "openid", "&max_age=60"),
        )
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert!(
        stale.text().contains("name=\"password\""),
        "signed in too long ago"
    );
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid", "&max_age=60"),
        "alice",
    )
    .await;
    let tokens = redeem(&app, &client, &params["code"], &pkce.verifier).await;
    let (_, claims) = decode_jwt(tokens.json()["id_token"].as_str().unwrap());
    assert_eq!(claims["auth_time"], app.clock.now());
}

#[tokio::test]
async fn the_global_policy_requires_enrolment() {
    let settings = Settings {
        mfa: MfaPolicy::Required,
        ..settings()
    };
    let app = TestApp::with_settings(settings).await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let (_, claims) = enrol(&app, &client).await;
    assert_eq!(claims["acr"], ACR_MFA);
}

/// The second step cannot be skipped or borrowed: the consent form, a replayed
/// login form, and another browser's interaction all fail, and nothing is issued.
#[tokio::test]
async fn the_second_factor_cannot_be_skipped_or_borrowed() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.require_mfa = true).await;
    let (enrolled, _) = enrol(&app, &client).await;
    app.clock.advance(60);

    let mut browser = Browser::default();
    let page = browser
        .get(
            &app,
            &authorize_path(&client.id, &Pkce::new(), "openid", ""),
        )
        .await;
    let login = login_form(&page, "alice", PASSWORD);
    let factor = browser.post(&app, "/login", &login).await;
    assert!(factor.text().contains("id=\"totp-form\""));

    // The consent form with the interaction awaiting the second factor.
    let consent = browser
        .post(&app, "/consent", &consent_form(&factor, "allow"))
        .await;
    assert_eq!(
        consent.status,
        StatusCode::BAD_REQUEST,
        "{}",
        consent.text()
    );
    // The login form again.
    let replay = browser.post(&app, "/login", &login).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text());
    assert!(!browser.cookies.keys().any(|name| name.contains("session")));

    // Another browser (its own CSRF cookie) with this interaction and a right code.
    let mut mallory = Browser::default();
    mallory
        .get(
            &app,
            &authorize_path(&client.id, &Pkce::new(), "openid", ""),
        )
        .await;
    let code = code_now(&app, &enrolled.secret);
    let html = factor.text();
    let borrowed = format!(
        "interaction={}&csrf={}&method=totp&code={code}",
        form_field(&html, "interaction").unwrap(),
        mallory.cookies.values().next().unwrap()
    );
    let stolen = mallory.post(&app, "/second-factor", &borrowed).await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN, "{}", stolen.text());
    assert!(!mallory.cookies.keys().any(|name| name.contains("session")));

    // A method the user has not enrolled is refused.
    let other = browser
        .post(
            &app,
            "/second-factor",
            &factor_form(&factor, "password", "x"),
        )
        .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);

    // The owner still completes it.
    let done = browser
        .post(&app, "/second-factor", &factor_form(&factor, "totp", &code))
        .await;
    // (Consent to openid was remembered at enrolment.)
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert!(location_params(&done).contains_key("code"));
}
