//! Passkeys: registering one on the account page, signing in with it instead
//! of a password, and the attacks on both ceremonies, answered by a software
//! authenticator (`valet_test_support::passkey`).

use axum::http::StatusCode;
use serde_json::Value;

use valet_test_support::api::*;

const RP_ID: &str = "id.example.test";

/// What an honest browser and authenticator answer for this app.
fn honest() -> Ceremony {
    Ceremony {
        origin: ISSUER.into(),
        rp_id: RP_ID.into(),
        verified: true,
    }
}

/// The passkeys page's CSRF value, after loading it.
async fn account_csrf(app: &TestApp, browser: &mut Browser) -> String {
    let page = browser.get(app, "/account/passkeys").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    form_field(&page.text(), "csrf").unwrap()
}

/// Registers a passkey named `name` for the user signed in in `browser`.
async fn enrol(app: &TestApp, browser: &mut Browser, name: &str, synced: bool) -> SoftPasskey {
    let csrf = account_csrf(app, browser).await;
    let options = browser
        .post(app, "/account/passkeys/options", &format!("csrf={csrf}"))
        .await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.text());
    let options = options.json();
    let (passkey, credential) = SoftPasskey::create(&options, &honest(), synced);
    let reply = browser
        .post(
            app,
            "/account/passkeys",
            &format!(
                "csrf={csrf}&ceremony={}&name={}&credential={}",
                options["ceremony"].as_str().unwrap(),
                encode(name),
                encode(&credential)
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    passkey
}

/// The login page of a fresh request, and the sign-in options for it.
async fn passkey_options(
    app: &TestApp,
    browser: &mut Browser,
    client: &TestClient,
) -> (String, Value) {
    let page = browser.authorize(app, client, "").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    assert!(html.contains("Sign in with a passkey"));
    let fields = format!(
        "interaction={}&csrf={}",
        encode(&form_field(&html, "interaction").unwrap()),
        form_field(&html, "csrf").unwrap()
    );
    let options = browser.post(app, "/login/passkey/options", &fields).await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.text());
    assert_eq!(options.header("cache-control"), Some("no-store"));
    (fields, options.json())
}

/// Posts an assertion for the login form `fields`.
async fn submit(
    app: &TestApp,
    browser: &mut Browser,
    fields: &str,
    ceremony: &str,
    credential: &str,
) -> Reply {
    browser
        .post(
            app,
            "/login/passkey",
            &format!(
                "{fields}&ceremony={ceremony}&credential={}",
                encode(credential)
            ),
        )
        .await
}

/// alice, signed in with her password in a browser, and a web app that skips consent.
async fn alice_with_password(app: &TestApp) -> (TestClient, Browser) {
    let (client, browser, _) = alice_signed_in(app, "openid").await;
    (client, browser)
}

fn session_cookie(browser: &Browser) -> Option<&String> {
    browser.cookies.get("__Host-valet-session")
}

/// Signs in with `passkey` in a fresh browser: the token response.
async fn passwordless(app: &TestApp, client: &TestClient, passkey: &mut SoftPasskey) -> Value {
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let page = browser
        .get(app, &authorize_path(&client.id, &pkce, "openid", ""))
        .await;
    let html = page.text();
    let fields = format!(
        "interaction={}&csrf={}",
        encode(&form_field(&html, "interaction").unwrap()),
        form_field(&html, "csrf").unwrap()
    );
    let options = browser
        .post(app, "/login/passkey/options", &fields)
        .await
        .json();
    let credential = passkey.assert(&options, &honest());
    let reply = submit(
        app,
        &mut browser,
        &fields,
        options["ceremony"].as_str().unwrap(),
        &credential,
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert!(session_cookie(&browser).is_some());
    let params = location_params(&reply);
    let tokens = redeem(app, client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    tokens.json()
}

async fn enrol_then_sign_in_without_a_password(app: &TestApp) {
    let (client, mut browser) = alice_with_password(app).await;
    let mut passkey = enrol(app, &mut browser, "Zoë's laptop <1>", false).await;
    let page = browser.get(app, "/account/passkeys").await.text();
    assert!(
        page.contains("Zoë&#x27;s laptop &lt;1&gt;"),
        "listed, escaped: {page}"
    );

    let tokens = passwordless(app, &client, &mut passkey).await;
    let (_, claims) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["hwk", "user", "mfa"]));
    assert_eq!(claims["acr"], "urn:valet:acr:mfa");
    let alice = app
        .store
        .find_user_by_login("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], alice.user_id.as_str());
    // The counter and last use are recorded; a second sign-in works.
    let stored = app.store.list_passkeys(&alice.user_id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sign_count, 1);
    assert_eq!(stored[0].last_used_at, Some(START));
    passwordless(app, &client, &mut passkey).await;
    let stored = app.store.list_passkeys(&alice.user_id).await.unwrap();
    assert_eq!(stored[0].sign_count, 2);
}

#[tokio::test]
async fn a_registered_passkey_signs_in_without_a_password_and_amr_says_hwk() {
    let app = TestApp::new().await;
    enrol_then_sign_in_without_a_password(&app).await;
}

#[tokio::test]
async fn a_registered_passkey_signs_in_without_a_password_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    enrol_then_sign_in_without_a_password(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

#[tokio::test]
async fn a_synced_passkey_is_a_software_key() {
    let app = TestApp::new().await;
    let (client, mut browser) = alice_with_password(&app).await;
    let mut passkey = enrol(&app, &mut browser, "phone", true).await;
    let tokens = passwordless(&app, &client, &mut passkey).await;
    let (_, claims) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["swk", "user", "mfa"]));
}

#[tokio::test]
async fn a_user_verified_passkey_satisfies_a_client_that_requires_mfa() {
    let app = TestApp::new().await;
    let (_, mut browser) = alice_with_password(&app).await;
    let mut passkey = enrol(&app, &mut browser, "laptop", false).await;
    let strict = app
        .web_client(|c| {
            c.skip_consent = true;
            c.require_mfa = true;
        })
        .await;
    // No TOTP enrolled, none asked for: the passkey alone is two factors.
    let tokens = passwordless(&app, &strict, &mut passkey).await;
    let (_, claims) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "urn:valet:acr:mfa");
}

#[tokio::test]
async fn a_passkey_is_removed_by_its_owner_only() {
    let app = TestApp::new().await;
    let (client, mut alice) = alice_with_password(&app).await;
    let mut passkey = enrol(&app, &mut alice, "laptop", false).await;
    let id = valet_jose::b64url(&passkey.credential_id);
    // bob, signed in too, cannot remove it.
    app.user("bob").await;
    let mut bob = Browser::default();
    sign_in_and_allow(
        &app,
        &mut bob,
        &authorize_path(&client.id, &Pkce::new(), "openid", ""),
        "bob",
    )
    .await;
    let csrf = account_csrf(&app, &mut bob).await;
    let refused = bob
        .post(
            &app,
            "/account/passkeys/remove",
            &format!("csrf={csrf}&passkey={id}"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    passwordless(&app, &client, &mut passkey).await;
    // Nor can a form without the page's CSRF value.
    let refused = alice
        .post(
            &app,
            "/account/passkeys/remove",
            &format!("csrf=guess&passkey={id}"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let csrf = account_csrf(&app, &mut alice).await;
    let removed = alice
        .post(
            &app,
            "/account/passkeys/remove",
            &format!("csrf={csrf}&passkey={id}"),
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(browser_page_lists_none(&app, &mut alice).await);
    // Removed: it signs in no more.
    let mut browser = Browser::default();
    let (fields, options) = passkey_options(&app, &mut browser, &client).await;
    let credential = passkey.assert(&options, &honest());
    let reply = submit(
        &app,
        &mut browser,
        &fields,
        options["ceremony"].as_str().unwrap(),
        &credential,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&browser).is_none());
}

async fn browser_page_lists_none(app: &TestApp, browser: &mut Browser) -> bool {
    browser
        .get(app, "/account/passkeys")
        .await
        .text()
        .contains("You have no passkeys yet.")
}

#[tokio::test]
async fn the_passkeys_page_needs_a_session() {
    let app = TestApp::new().await;
    let mut stranger = Browser::default();
    let page = stranger.get(&app, "/account/passkeys").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let options = stranger
        .post(&app, "/account/passkeys/options", "csrf=x")
        .await;
    assert_eq!(options.status, StatusCode::UNAUTHORIZED);
}

/// Each attack: the assertion is refused (401, the login form again) and no
/// session is started.
fn refused(browser: &Browser, reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains("That passkey could not be used to sign in.")
    );
    assert!(session_cookie(browser).is_none());
}

#[tokio::test]
async fn an_assertion_for_another_challenge_is_refused() {
    let app = TestApp::new().await;
    let (client, mut alice) = alice_with_password(&app).await;
    let mut passkey = enrol(&app, &mut alice, "laptop", false).await;
    let mut browser = Browser::default();
    let (fields, first) = passkey_options(&app, &mut browser, &client).await;
    let second = browser
        .post(&app, "/login/passkey/options", &fields)
        .await
        .json();
    // Signed over the first challenge, sent as the answer to the second.
    let credential = passkey.assert(&first, &honest());
    let reply = submit(
        &app,
        &mut browser,
        &fields,
        second["ceremony"].as_str().unwrap(),
        &credential,
    )
    .await;
    refused(&browser, &reply);
}

#[tokio::test]
async fn a_ceremony_is_answered_once() {
    let app = TestApp::new().await;
    let (client, mut alice) = alice_with_password(&app).await;
    let mut passkey = enrol(&app, &mut alice, "laptop", false).await;
    let mut browser = Browser::default();
    let (fields, options) = passkey_options(&app, &mut browser, &client).await;
    let ceremony = options["ceremony"].as_str().unwrap();
    let credential = passkey.assert(&options, &honest());
    // A second request in the same browser, answered with the used ceremony.
    let (other_fields, _) = passkey_options(&app, &mut browser, &client).await;
    let first = submit(&app, &mut browser, &fields, ceremony, &credential).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.text());
    let mut replay = Browser {
        cookies: browser.cookies.clone(),
    };
    replay.cookies.remove("__Host-valet-session");
    let again = submit(&app, &mut replay, &other_fields, ceremony, &credential).await;
    refused(&replay, &again);
}

#[tokio::test]
async fn a_ceremony_of_another_browser_is_refused() {
    let app = TestApp::new().await;
    let (client, mut alice) = alice_with_password(&app).await;
    let mut passkey = enrol(&app, &mut alice, "laptop", false).await;
    // The victim's browser starts a ceremony; the attacker's answers it.
    let mut victim = Browser::default();
    let (_, options) = passkey_options(&app, &mut victim, &client).await;
    let mut attacker = Browser::default();
    let (fields, _) = passkey_options(&app, &mut attacker, &client).await;
    let credential = passkey.assert(&options, &honest());
    let reply = submit(
        &app,
        &mut attacker,
        &fields,
        options["ceremony"].as_str().unwrap(),
        &credential,
    )
    .await;
    refused(&attacker, &reply);
}

#[tokio::test]
async fn another_users_handle_on_a_credential_is_refused() {
    let app = TestApp::new().await;
    let (client, mut alice) = alice_with_password(&app).await;
    let alices = enrol(&app, &mut alice, "alice's", false).await;
    app.user("bob").await;
    let mut bob = Browser::default();
    sign_in_and_allow(
        &app,
        &mut bob,
        &authorize_path(&client.id, &Pkce::new(), "openid", ""),
        "bob",
    )
    .await;
    let mut bobs = enrol(&app, &mut bob, "bob's", false).await;
    // bob's credential, claiming alice's user handle.
    bobs.user_handle = alices.user_handle.clone();
    let mut browser = Browser::default();
    let (fields, options) = passkey_options(&app, &mut browser, &client).await;
    let credential = bobs.assert(&options, &honest());
    let reply = submit(
        &app,
        &mut browser,
        &fields,
        options["ceremony"].as_str().unwrap(),
        &credential,
    )
    .await;
    refused(&browser, &reply);
}

#[tokio::test]
async fn a_wrong_origin_rp_id_or_missing_verification_is_refused() {
    let app = TestApp::new().await;
    let (client, mut alice) = alice_with_password(&app).await;
    let mut passkey = enrol(&app, &mut alice, "laptop", false).await;
    let attacks = [
        Ceremony {
            origin: "https://id.example.test.evil.example".into(),
            ..honest()
        },
        Ceremony {
            origin: "http://id.example.test".into(),
            ..honest()
        },
        Ceremony {
            rp_id: "evil.example".into(),
            ..honest()
        },
        Ceremony {
            verified: false,
            ..honest()
        },
    ];
    for attack in attacks {
        let mut browser = Browser::default();
        let (fields, options) = passkey_options(&app, &mut browser, &client).await;
        let credential = passkey.assert(&options, &attack);
        let reply = submit(
            &app,
            &mut browser,
            &fields,
            options["ceremony"].as_str().unwrap(),
            &credential,
        )
        .await;
        refused(&browser, &reply);
    }
    // A forged signature too.
    let mut browser = Browser::default();
    let (fields, options) = passkey_options(&app, &mut browser, &client).await;
    let credential = passkey.assert(&options, &honest());
    let mut forged: Value = serde_json::from_str(&credential).unwrap();
    forged["response"]["signature"] = "MEUCIQ".into();
    let reply = submit(
        &app,
        &mut browser,
        &fields,
        options["ceremony"].as_str().unwrap(),
        &forged.to_string(),
    )
    .await;
    refused(&browser, &reply);
    // The honest answer still works.
    passwordless(&app, &client, &mut passkey).await;
}

#[tokio::test]
async fn registration_is_bound_to_the_session_and_its_origin() {
    let app = TestApp::new().await;
    let (_, mut alice) = alice_with_password(&app).await;
    let csrf = account_csrf(&app, &mut alice).await;
    let options = alice
        .post(&app, "/account/passkeys/options", &format!("csrf={csrf}"))
        .await
        .json();
    assert_eq!(options["publicKey"]["rp"]["id"], RP_ID);
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let evil = Ceremony {
        origin: "https://evil.example".into(),
        ..honest()
    };
    let (_, credential) = SoftPasskey::create(&options, &evil, false);
    let reply = alice
        .post(
            &app,
            "/account/passkeys",
            &format!(
                "csrf={csrf}&ceremony={}&name=x&credential={}",
                options["ceremony"].as_str().unwrap(),
                encode(&credential)
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    // The ceremony is spent: the honest answer to it fails too.
    let (_, credential) = SoftPasskey::create(&options, &honest(), false);
    let reply = alice
        .post(
            &app,
            "/account/passkeys",
            &format!(
                "csrf={csrf}&ceremony={}&name=x&credential={}",
                options["ceremony"].as_str().unwrap(),
                encode(&credential)
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(browser_page_lists_none(&app, &mut alice).await);
}

#[tokio::test]
async fn after_the_password_a_passkey_is_the_second_factor() {
    let app = TestApp::new().await;
    let (client, mut browser) = alice_with_password(&app).await;
    let mut passkey = enrol(&app, &mut browser, "phone", true).await;
    // A fresh browser: the password, then the passkey on the second-factor page.
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let page = browser
        .get(&app, &authorize_path(&client.id, &pkce, "openid", ""))
        .await;
    let reply = browser
        .post(&app, "/login", &login_form(&page, "alice", PASSWORD))
        .await;
    let html = reply.text();
    assert!(html.contains("Use a passkey"), "{html}");
    assert!(session_cookie(&browser).is_none(), "not signed in yet");
    let fields = format!(
        "interaction={}&csrf={}",
        encode(&form_field(&html, "interaction").unwrap()),
        form_field(&html, "csrf").unwrap()
    );
    let answer = async |browser: &mut Browser, passkey: &mut SoftPasskey, ceremony: &Ceremony| {
        let options = browser
            .post(&app, "/second-factor/passkey/options", &fields)
            .await;
        assert_eq!(options.status, StatusCode::OK, "{}", options.text());
        let options = options.json();
        assert_eq!(
            options["publicKey"]["allowCredentials"][0]["id"],
            valet_jose::b64url(&passkey.credential_id)
        );
        let credential = passkey.assert(&options, ceremony);
        browser
            .post(
                &app,
                "/second-factor",
                &format!(
                    "{fields}&method=passkey&ceremony={}&credential={}",
                    options["ceremony"].as_str().unwrap(),
                    encode(&credential)
                ),
            )
            .await
    };
    // An assertion made on another site is refused, and the page offered again.
    let evil = Ceremony {
        origin: "https://evil.example".into(),
        ..honest()
    };
    let refused = answer(&mut browser, &mut passkey, &evil).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refused.text()
    );
    assert!(session_cookie(&browser).is_none());
    let reply = answer(&mut browser, &mut passkey, &honest()).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert!(session_cookie(&browser).is_some());
    let params = location_params(&reply);
    let tokens = redeem(&app, &client, &params["code"], &pkce.verifier).await;
    let (_, claims) = decode_jwt(tokens.json()["id_token"].as_str().unwrap());
    assert_eq!(
        claims["amr"],
        serde_json::json!(["pwd", "swk", "user", "mfa"])
    );
    assert_eq!(claims["acr"], "urn:valet:acr:mfa");
}
