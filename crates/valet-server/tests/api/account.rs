//! The account page from the outside: its sign-in runs the sign-in steps
//! (password, then the second factor) and returns to the page; each change
//! works; and a change without a session, without the page's CSRF value or
//! with another browser's value changes nothing.

use axum::http::StatusCode;
use valet_core::config::MfaPolicy;
use valet_core::mfa::totp;
use valet_core::{Clock as _, Settings};

use valet_test_support::api::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// A browser signed in to the account page with the password alone.
pub(super) async fn signed_in(app: &TestApp, username: &str) -> (Browser, Reply) {
    let mut browser = Browser::default();
    let login = browser.get(app, "/account").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    assert!(
        login.text().contains("name=\"password\""),
        "{}",
        login.text()
    );
    let done = browser
        .post(app, "/login", &login_form(&login, username, PASSWORD))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_eq!(done.header("location"), Some(&*format!("{ISSUER}/account")));
    let page = browser.get(app, "/account").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    (browser, page)
}

/// The page's form for `action` with `fields`, carrying the page's CSRF value.
pub(super) fn account_form(page: &Reply, action: &str, fields: &[(&str, &str)]) -> String {
    let csrf = form_field(&page.text(), "csrf").unwrap();
    let mut body = format!("csrf={}&action={action}", encode(&csrf));
    for (name, value) in fields {
        body.push_str(&format!("&{name}={}", encode(value)));
    }
    body
}

async fn name_of(app: &TestApp, username: &str) -> Option<String> {
    let user = app
        .store
        .find_user_by_login(username)
        .await
        .unwrap()
        .unwrap();
    user.name
}

fn is_login_page(reply: &Reply) -> bool {
    reply.status == StatusCode::OK && reply.text().contains("name=\"password\"")
}

async fn sign_in_and_profile(app: &TestApp) {
    app.user("alice").await;
    let (mut browser, page) = signed_in(app, "alice").await;
    let html = page.text();
    assert!(html.contains("id=\"username\">alice<"), "{html}");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(html.contains("id=\"logout\""), "{html}");
    let logout = browser.get(app, "/logout").await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.text());
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    let saved = browser
        .post(
            app,
            "/account",
            &account_form(&page, "profile", &[("name", "Alice Liddell")]),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
    assert!(saved.text().contains("Your name was saved."));
    assert_eq!(
        name_of(app, "alice").await.as_deref(),
        Some("Alice Liddell")
    );
    let control = browser
        .post(
            app,
            "/account",
            &account_form(&page, "profile", &[("name", "a\u{7}b")]),
        )
        .await;
    assert_eq!(control.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        name_of(app, "alice").await.as_deref(),
        Some("Alice Liddell")
    );
}

#[tokio::test]
async fn sign_in_returns_to_the_page_and_the_name_is_saved_on_sqlite() {
    sign_in_and_profile(&TestApp::new().await).await;
}

#[tokio::test]
async fn sign_in_returns_to_the_page_and_the_name_is_saved_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    sign_in_and_profile(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

#[tokio::test]
async fn without_a_session_a_post_changes_nothing_and_leads_to_the_sign_in() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let (_, page) = signed_in(&app, "alice").await;
    let mut stranger = Browser::default();
    let body = account_form(&page, "profile", &[("name", "Mallory")]);
    let reply = stranger.post(&app, "/account", &body).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        Some(&*format!("{ISSUER}/account"))
    );
    assert_eq!(
        name_of(&app, "alice").await.as_deref(),
        Some("alice Example")
    );
    let login = stranger.get(&app, "/account").await;
    assert!(is_login_page(&login), "{}", login.text());
}

#[tokio::test]
async fn a_post_without_this_sessions_csrf_value_is_refused() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let (mut alice, page) = signed_in(&app, "alice").await;
    // Another browser of the same user has another value.
    let (_, other_page) = signed_in(&app, "alice").await;
    let missing = alice
        .post(&app, "/account", "action=profile&name=Mallory")
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.text());
    let foreign = account_form(&other_page, "profile", &[("name", "Mallory")]);
    assert_ne!(
        foreign,
        account_form(&page, "profile", &[("name", "Mallory")])
    );
    let refused = alice.post(&app, "/account", &foreign).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    let sign_out = account_form(&other_page, "sign_out_others", &[]);
    assert_eq!(
        alice.post(&app, "/account", &sign_out).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        name_of(&app, "alice").await.as_deref(),
        Some("alice Example")
    );
    assert_eq!(alice.get(&app, "/account").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_password_change_needs_the_current_one_and_ends_other_sessions() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let (mut browser, page) = signed_in(&app, "alice").await;
    let (mut other, _) = signed_in(&app, "alice").await;
    let change = |current: &str| {
        account_form(
            &page,
            "password",
            &[
                ("current_password", current),
                ("new_password", NEW_PASSWORD),
                ("new_password_again", NEW_PASSWORD),
            ],
        )
    };
    let wrong = browser
        .post(&app, "/account", &change("not the password"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text());
    let weak = account_form(
        &page,
        "password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "short"),
            ("new_password_again", "short"),
        ],
    );
    assert_eq!(
        browser.post(&app, "/account", &weak).await.status,
        StatusCode::BAD_REQUEST
    );
    // Nothing changed: the other session lives, the old password works.
    assert_eq!(other.get(&app, "/account").await.status, StatusCode::OK);

    let changed = browser.post(&app, "/account", &change(PASSWORD)).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert!(
        changed.header("set-cookie").is_some(),
        "a new session cookie"
    );
    assert!(
        is_login_page(&other.get(&app, "/account").await),
        "the other session ended"
    );
    let page = browser.get(&app, "/account").await;
    assert!(
        page.text().contains("id=\"username\">alice<"),
        "this browser stays signed in"
    );
    assert!(form_field(&page.text(), "csrf").is_some());

    let mut fresh = Browser::default();
    let login = fresh.get(&app, "/account").await;
    let old = fresh
        .post(&app, "/login", &login_form(&login, "alice", PASSWORD))
        .await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the old password no longer works"
    );
    let new = fresh
        .post(&app, "/login", &login_form(&old, "alice", NEW_PASSWORD))
        .await;
    assert_eq!(new.status, StatusCode::SEE_OTHER, "{}", new.text());
}

#[tokio::test]
async fn signing_out_other_sessions_kills_their_cookies() {
    let app = TestApp::new().await;
    app.user("alice").await;
    app.user("bob").await;
    let (mut browser, page) = signed_in(&app, "alice").await;
    let (mut other, _) = signed_in(&app, "alice").await;
    let (mut bob, _) = signed_in(&app, "bob").await;
    let dead_cookie = other.cookies.clone();
    let reply = browser
        .post(
            &app,
            "/account",
            &account_form(&page, "sign_out_others", &[]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(is_login_page(&other.get(&app, "/account").await));
    let mut replay = Browser {
        cookies: dead_cookie,
    };
    assert!(is_login_page(&replay.get(&app, "/account").await));
    assert_eq!(browser.get(&app, "/account").await.status, StatusCode::OK);
    assert_eq!(
        bob.get(&app, "/account").await.status,
        StatusCode::OK,
        "another user's session lives"
    );
}

/// RFC 4648 base32 (no padding) back to bytes.
fn base32_decode(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes() {
        buffer = (buffer << 5) | alphabet.iter().position(|a| *a == c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

pub(super) fn element_text(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id}: {html}"))
        + marker.len();
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].to_owned()
}

/// With two factors required, the account sign-in enrols TOTP (the same step
/// as for a client) and ends on the page; the factor is then managed there.
#[tokio::test]
async fn the_second_factor_step_runs_and_the_factor_is_managed_on_the_page() {
    let settings = Settings {
        mfa: MfaPolicy::Required,
        ..settings()
    };
    let app = TestApp::with_settings(settings).await;
    app.user("alice").await;
    let mut browser = Browser::default();
    let login = browser.get(&app, "/account").await;
    let enrol = browser
        .post(&app, "/login", &login_form(&login, "alice", PASSWORD))
        .await;
    assert!(
        enrol.text().contains("id=\"enrol-form\""),
        "{}",
        enrol.text()
    );
    assert!(!browser.cookies.keys().any(|name| name.contains("session")));
    let secret = base32_decode(&element_text(&enrol.text(), "totp-secret"));
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    let body = format!(
        "interaction={}&csrf={}&method=totp&code={code}",
        form_field(&enrol.text(), "interaction").unwrap(),
        form_field(&enrol.text(), "csrf").unwrap(),
    );
    let done = browser.post(&app, "/second-factor", &body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_eq!(done.header("location"), Some(&*format!("{ISSUER}/account")));
    let page = browser.get(&app, "/account").await;
    let html = page.text();
    assert!(
        html.contains("An authenticator app is set up; 10 recovery codes left."),
        "{html}"
    );
    assert!(html.contains("pwd + otp"), "{html}");

    let codes = browser
        .post(
            &app,
            "/account",
            &account_form(&page, "regenerate_recovery_codes", &[]),
        )
        .await;
    assert_eq!(codes.status, StatusCode::OK, "{}", codes.text());
    let html = codes.text();
    let list = &html[html.find("id=\"recovery-codes\"").unwrap()..];
    let list = &list[..list.find("</ul>").unwrap()];
    assert_eq!(list.matches("<li>").count(), 10, "{html}");
    let page = browser.get(&app, "/account").await;
    assert!(page.text().contains("10 recovery codes left"));
    assert!(!page.text().contains("id=\"recovery-codes\""), "shown once");

    let wrong = account_form(&page, "remove_totp", &[("current_password", "wrong")]);
    assert_eq!(
        browser.post(&app, "/account", &wrong).await.status,
        StatusCode::UNAUTHORIZED
    );
    let user = app
        .store
        .find_user_by_login("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(app.store.get_totp(&user.user_id).await.unwrap().is_some());
    let nothing = account_form(
        &page,
        "remove_totp",
        &[("current_password", ""), ("code", "")],
    );
    assert_eq!(
        browser.post(&app, "/account", &nothing).await.status,
        StatusCode::BAD_REQUEST
    );
    let wrong_code = account_form(&page, "remove_totp", &[("code", "000000")]);
    assert_eq!(
        browser.post(&app, "/account", &wrong_code).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(app.store.get_totp(&user.user_id).await.unwrap().is_some());
    let remove = account_form(&page, "remove_totp", &[("current_password", PASSWORD)]);
    let removed = browser.post(&app, "/account", &remove).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text());
    assert!(removed.text().contains("No authenticator app is set up."));
    assert!(app.store.get_totp(&user.user_id).await.unwrap().is_none());
}

#[tokio::test]
async fn signing_out_one_session_kills_its_cookie_and_not_another_users() {
    let app = TestApp::new().await;
    app.user("alice").await;
    app.user("bob").await;
    let (mut browser, _) = signed_in(&app, "alice").await;
    let (mut other, _) = signed_in(&app, "alice").await;
    let page = browser.get(&app, "/account").await;
    assert_eq!(
        page.text().matches("name=\"sid\"").count(),
        1,
        "{}",
        page.text()
    );
    assert!(page.text().contains("this browser"));
    let sid = form_field(&page.text(), "sid").unwrap();

    // bob's sessions: one of them named in alice's form is not hers.
    let (mut bob, _) = signed_in(&app, "bob").await;
    let (_, bob_page) = signed_in(&app, "bob").await;
    let bob_sid = form_field(&bob_page.text(), "sid").unwrap();
    let foreign = account_form(&page, "sign_out_session", &[("sid", &bob_sid)]);
    assert_eq!(
        browser.post(&app, "/account", &foreign).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(bob.get(&app, "/account").await.status, StatusCode::OK);

    let body = account_form(&page, "sign_out_session", &[("sid", &sid)]);
    let reply = browser.post(&app, "/account", &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(!reply.text().contains("name=\"sid\""), "{}", reply.text());
    assert!(
        is_login_page(&other.get(&app, "/account").await),
        "its cookie is dead"
    );
    assert_eq!(browser.get(&app, "/account").await.status, StatusCode::OK);
}

/// A browser signed in to the account page allows `client` and gets tokens.
async fn allow(app: &TestApp, browser: &mut Browser, client: &TestClient) -> serde_json::Value {
    let pkce = Pkce::new();
    let path = authorize_path(&client.id, &pkce, "openid offline_access photos:read", "");
    let params = sign_in_and_allow(app, browser, &path, "alice").await;
    let reply = redeem(app, client, &params["code"], &pkce.verifier).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

async fn refresh(app: &TestApp, client: &TestClient, tokens: &serde_json::Value) -> Reply {
    let token = tokens["refresh_token"].as_str().unwrap();
    app.token(
        client,
        &format!("grant_type=refresh_token&refresh_token={}", encode(token)),
    )
    .await
}

async fn revoking_a_consent(app: &TestApp) {
    app.user("alice").await;
    let photos = app.web_client(|_| {}).await;
    let notes = app.web_client(|c| c.name = "Notes".into()).await;
    let (mut browser, _) = signed_in(app, "alice").await;
    let photo_tokens = allow(app, &mut browser, &photos).await;
    let note_tokens = allow(app, &mut browser, &notes).await;
    let page = browser.get(app, "/account").await;
    assert!(
        page.text().contains("<strong>Photo App</strong>"),
        "{}",
        page.text()
    );
    assert!(
        page.text().contains("<strong>Notes</strong>"),
        "{}",
        page.text()
    );

    let body = account_form(&page, "revoke_consent", &[("client_id", &photos.id)]);
    let reply = browser.post(app, "/account", &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        !reply.text().contains("<strong>Photo App</strong>"),
        "{}",
        reply.text()
    );

    let refused = refresh(app, &photos, &photo_tokens).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    assert_eq!(refused.json()["error"], "invalid_grant");
    let access = photo_tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&photos, access).await["active"], false);
    let still = refresh(app, &notes, &note_tokens).await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.text());
    let note_access = note_tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&notes, note_access).await["active"], true);

    // The consent is gone: the next request asks again.
    let again = browser
        .get(
            app,
            &authorize_path(&photos.id, &Pkce::new(), "openid photos:read", ""),
        )
        .await;
    assert!(
        again.text().contains("name=\"decision\""),
        "{}",
        again.text()
    );
    // An unknown client is refused, changing nothing.
    let unknown = account_form(&page, "revoke_consent", &[("client_id", "nobody")]);
    assert_eq!(
        browser.post(app, "/account", &unknown).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn revoking_a_consent_revokes_that_clients_grants_only_on_sqlite() {
    revoking_a_consent(&TestApp::new().await).await;
}

#[tokio::test]
async fn revoking_a_consent_revokes_that_clients_grants_only_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    revoking_a_consent(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

fn listed_codes(html: &str) -> Vec<String> {
    let list = &html[html.find("id=\"recovery-codes\"").unwrap()..];
    let list = &list[..list.find("</ul>").unwrap()];
    list.split("<code>")
        .skip(1)
        .map(|part| part[..part.find("</code>").unwrap()].to_owned())
        .collect()
}

/// A browser at the second-factor step of the account sign-in.
async fn to_second_factor(app: &TestApp) -> (Browser, Reply) {
    let mut browser = Browser::default();
    let login = browser.get(app, "/account").await;
    let factor = browser
        .post(app, "/login", &login_form(&login, "alice", PASSWORD))
        .await;
    assert!(
        factor.text().contains("id=\"totp-form\""),
        "{}",
        factor.text()
    );
    (browser, factor)
}

fn factor_form(page: &Reply, method: &str, code: &str) -> String {
    format!(
        "interaction={}&csrf={}&method={method}&code={}",
        form_field(&page.text(), "interaction").unwrap(),
        form_field(&page.text(), "csrf").unwrap(),
        encode(code)
    )
}

/// TOTP is set up on the page (a wrong code refused, the same key shown
/// again); from then on the account sign-in asks for it; regenerated recovery
/// codes replace the ones shown at enrolment.
#[tokio::test]
async fn totp_is_set_up_on_the_page_and_then_asked_for() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let (mut browser, page) = signed_in(&app, "alice").await;
    assert!(page.text().contains("No authenticator app is set up."));
    let begun = browser
        .post(&app, "/account", &account_form(&page, "begin_totp", &[]))
        .await;
    assert_eq!(begun.status, StatusCode::OK, "{}", begun.text());
    let secret_text = element_text(&begun.text(), "totp-secret");
    assert!(
        begun
            .text()
            .replace("&#x2f;", "/")
            .contains("src=\"data:image/svg+xml;base64,")
    );
    let first_codes = listed_codes(&begun.text());
    assert_eq!(first_codes.len(), 10);
    let wrong = browser
        .post(
            &app,
            "/account",
            &account_form(&page, "confirm_totp", &[("code", "000000")]),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text());
    assert_eq!(element_text(&wrong.text(), "totp-secret"), secret_text);
    let secret = base32_decode(&secret_text);
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    let done = browser
        .post(
            &app,
            "/account",
            &account_form(&page, "confirm_totp", &[("code", &code)]),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(
        done.text().contains("The authenticator app is set up."),
        "{}",
        done.text()
    );
    let again = browser
        .post(&app, "/account", &account_form(&page, "begin_totp", &[]))
        .await;
    assert_eq!(
        again.status,
        StatusCode::BAD_REQUEST,
        "a set-up app is not replaced"
    );

    let fresh = browser
        .post(
            &app,
            "/account",
            &account_form(&page, "regenerate_recovery_codes", &[]),
        )
        .await;
    let new_codes = listed_codes(&fresh.text());
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|code| !first_codes.contains(code)));

    app.clock.advance(30);
    let (mut other, factor) = to_second_factor(&app).await;
    let old = other
        .post(
            &app,
            "/second-factor",
            &factor_form(&factor, "recovery_code", &first_codes[0]),
        )
        .await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "an old recovery code no longer works"
    );
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    let done = other
        .post(&app, "/second-factor", &factor_form(&old, "totp", &code))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_eq!(done.header("location"), Some(&*format!("{ISSUER}/account")));
    let page = other.get(&app, "/account").await;
    assert!(page.text().contains("pwd + otp"), "{}", page.text());

    // Removed with a current code from the app.
    app.clock.advance(30);
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    let removed = other
        .post(
            &app,
            "/account",
            &account_form(&page, "remove_totp", &[("code", &code)]),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text());
    assert!(removed.text().contains("No authenticator app is set up."));
}

/// The account page's built-in client exists only for its own sign-in: an
/// authorization request naming it finds no client, so no code is ever issued
/// for it and nothing redirects to the account page with one.
#[tokio::test]
async fn the_built_in_client_cannot_be_asked_for_a_code() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let (mut browser, _) = signed_in(&app, "alice").await;
    let path = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        encode("valet:account"),
        encode(&format!("{ISSUER}/account")),
    );
    let reply = browser.get(&app, &path).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert!(reply.header("location").is_none());
}

#[tokio::test]
async fn the_page_counts_the_passkeys_and_links_to_their_page() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let (_, page) = signed_in(&app, "alice").await;
    let html = page.text().replace("&#x2f;", "/");
    assert!(html.contains("No passkey registered."), "{html}");
    assert!(
        html.contains(&format!(
            "href=\"{ISSUER}/account/passkeys\" id=\"passkeys-link\""
        )),
        "{html}"
    );
    // Without a mailer there is no email change form.
    assert!(!html.contains("id=\"email-form\""), "{html}");
}
