//! The device authorization grant (RFC 8628): `/device_authorization`, the
//! `/device` page through the normal sign-in steps, and polling `/token`.

use axum::http::StatusCode;
use serde_json::Value;
use valet_core::admin::NewClient;
use valet_core::audit::{AuditFilter, AuditKind};

use valet_test_support::api::*;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public device client (a TV app) with refresh tokens and OpenID scopes.
async fn tv_client(app: &TestApp) -> TestClient {
    app.client(NewClient {
        name: "Living Room TV".into(),
        public: true,
        grant_types: vec!["device_code".into(), "refresh_token".into()],
        scopes: vec!["photos:read".into()],
        ..NewClient::default()
    })
    .await
}

/// `POST /device_authorization` for a public client.
async fn start(app: &TestApp, client: &TestClient, scope: &str) -> Value {
    let reply = app
        .post(
            "/device_authorization",
            None,
            &format!("client_id={}&scope={}", client.id, encode(scope)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.json()
}

/// One poll of the token endpoint by a public client.
async fn poll(app: &TestApp, client: &TestClient, device_code: &str) -> Reply {
    app.post(
        "/token",
        None,
        &format!(
            "grant_type={}&device_code={}&client_id={}",
            encode(DEVICE_GRANT),
            encode(device_code),
            client.id
        ),
    )
    .await
}

/// The browser opens the complete verification URI and submits the code;
/// returns the page that follows (login, consent, or an error).
async fn enter_code(app: &TestApp, browser: &mut Browser, user_code: &str) -> Reply {
    let page = browser.get(app, "/device").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let csrf = form_field(&page.text(), "csrf").unwrap();
    browser
        .post(
            app,
            "/device",
            &format!("csrf={csrf}&user_code={}", encode(user_code)),
        )
        .await
}

/// alice enters the code, signs in with her password and answers `decision`
/// on the consent page; returns the last page.
async fn alice_decides(
    app: &TestApp,
    browser: &mut Browser,
    user_code: &str,
    decision: &str,
) -> Reply {
    let login = enter_code(app, browser, user_code).await;
    assert!(
        login.text().contains("name=\"password\""),
        "{}",
        login.text()
    );
    let consent = browser
        .post(app, "/login", &login_form(&login, "alice", PASSWORD))
        .await;
    assert!(
        consent.text().contains("name=\"decision\""),
        "{}",
        consent.text()
    );
    assert!(consent.text().contains("Living Room TV"));
    browser
        .post(app, "/consent", &consent_form(&consent, decision))
        .await
}

async fn the_device_flow_issues_tokens_once(app: &TestApp) {
    app.user("alice").await;
    let tv = tv_client(app).await;
    let started = start(app, &tv, "openid offline_access photos:read").await;
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9, "{started}");
    assert_eq!(started["verification_uri"], format!("{ISSUER}/device"));
    assert_eq!(
        started["verification_uri_complete"],
        format!("{ISSUER}/device?user_code={user_code}")
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    poll(app, &tv, device_code)
        .await
        .assert_error(400, "authorization_pending");

    // The complete URI fills the code in.
    let mut browser = Browser::default();
    let prefilled = browser
        .get(app, &format!("/device?user_code={user_code}"))
        .await;
    assert!(prefilled.text().contains(&format!("value=\"{user_code}\"")));
    // Typed loosely: lower case, no dash.
    let typed = user_code.replace('-', "").to_lowercase();
    let done = alice_decides(app, &mut browser, &typed, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(
        done.text().contains("You may return to your device"),
        "{}",
        done.text()
    );

    // The decision is audited as a consent for a device.
    app.server.flush_audit().await.unwrap();
    let granted = app
        .store
        .audit_events(&AuditFilter {
            client_id: Some(tv.id.clone()),
            event: Some(AuditKind::ConsentGranted),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].detail["flow"], "device");

    app.clock.advance(5);
    let tokens = poll(app, &tv, device_code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let tokens = tokens.json();
    let (_, claims) = decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], tv.id.as_str());
    assert!(tokens["id_token"].is_string());
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Replayed: refused, and the grant it made is revoked.
    app.clock.advance(5);
    poll(app, &tv, device_code)
        .await
        .assert_error(400, "invalid_grant");
    app.post(
        "/token",
        None,
        &format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id={}",
            tv.id
        ),
    )
    .await
    .assert_error(400, "invalid_grant");

    // The user code is spent: entering it again finds nothing.
    let again = enter_code(app, &mut browser, user_code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.text().contains("not valid or has expired"));
}

/// A user disabled after allowing the device: the poll gets no token, and
/// the grant the approval made goes.
#[tokio::test]
async fn a_disabled_user_s_device_gets_no_token() {
    let app = TestApp::new().await;
    let user_id = app.user("alice").await;
    let tv = tv_client(&app).await;
    let started = start(&app, &tv, "openid photos:read").await;
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    let mut browser = Browser::default();
    let done = alice_decides(&app, &mut browser, user_code, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(
        app.store
            .list_grants_of_user(&user_id, app.server.now())
            .await
            .unwrap()
            .len(),
        1
    );

    app.store
        .set_user_disabled(&user_id, true, app.server.now())
        .await
        .unwrap();
    app.clock.advance(5);
    let refused = poll(&app, &tv, device_code).await;
    refused.assert_error(400, "invalid_grant");
    assert!(refused.text().contains("disabled"), "{}", refused.text());
    let grants = app
        .store
        .list_grants_of_user(&user_id, app.server.now())
        .await;
    assert!(grants.unwrap().is_empty(), "the grant is revoked");
}

#[tokio::test]
async fn the_device_flow_issues_tokens_once_on_sqlite() {
    the_device_flow_issues_tokens_once(&TestApp::new().await).await;
}

#[tokio::test]
async fn the_device_flow_issues_tokens_once_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    the_device_flow_issues_tokens_once(&app).await;
    denied_expired_and_slow_devices(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

/// alice exists already.
async fn denied_expired_and_slow_devices(app: &TestApp) {
    let tv = tv_client(app).await;

    // slow_down: a poll sooner than the interval, and the interval grows by 5 s.
    let started = start(app, &tv, "openid").await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    poll(app, &tv, &device_code)
        .await
        .assert_error(400, "authorization_pending");
    poll(app, &tv, &device_code)
        .await
        .assert_error(400, "slow_down");
    app.clock.advance(5);
    poll(app, &tv, &device_code)
        .await
        .assert_error(400, "slow_down");
    // Each slow_down added 5 s: the interval is 15 s now.
    app.clock.advance(15);
    poll(app, &tv, &device_code)
        .await
        .assert_error(400, "authorization_pending");

    // Denied: access_denied, and the code cannot be entered again.
    let mut browser = Browser::default();
    let user_code = started["user_code"].as_str().unwrap();
    let done = alice_decides(app, &mut browser, user_code, "deny").await;
    assert!(
        done.text().contains("Device not connected"),
        "{}",
        done.text()
    );
    app.clock.advance(15);
    poll(app, &tv, &device_code)
        .await
        .assert_error(400, "access_denied");
    let again = enter_code(app, &mut browser, user_code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    // Expired: expired_token for the device, nothing to enter for the user.
    let started = start(app, &tv, "openid").await;
    app.clock.advance(601);
    poll(app, &tv, started["device_code"].as_str().unwrap())
        .await
        .assert_error(400, "expired_token");
    let late = enter_code(app, &mut browser, started["user_code"].as_str().unwrap()).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn denied_expired_and_slow_devices_on_sqlite() {
    let app = TestApp::new().await;
    app.user("alice").await;
    denied_expired_and_slow_devices(&app).await;
}

#[tokio::test]
async fn another_client_cannot_redeem_or_burn_a_device_code() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let tv = tv_client(&app).await;
    let other = tv_client(&app).await;
    let started = start(&app, &tv, "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    let mut browser = Browser::default();
    alice_decides(
        &app,
        &mut browser,
        started["user_code"].as_str().unwrap(),
        "allow",
    )
    .await;
    poll(&app, &other, device_code)
        .await
        .assert_error(400, "invalid_grant");
    // Unknown codes are invalid_grant too.
    poll(&app, &tv, "not-a-device-code")
        .await
        .assert_error(400, "invalid_grant");
    // The right client still gets its tokens.
    let tokens = poll(&app, &tv, device_code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
}

#[tokio::test]
async fn the_grant_must_be_registered_and_confidential_clients_authenticate() {
    let app = TestApp::new().await;
    // A web client without the device grant.
    let web = app.web_client(|_| {}).await;
    app.post("/device_authorization", Some(&web), "scope=openid")
        .await
        .assert_error(400, "unauthorized_client");
    app.token(
        &web,
        &format!("grant_type={}&device_code=x", encode(DEVICE_GRANT)),
    )
    .await
    .assert_error(400, "unauthorized_client");
    // A confidential device client: a wrong secret is invalid_client.
    let confidential = app
        .client(NewClient {
            name: "Kiosk".into(),
            grant_types: vec!["device_code".into()],
            scopes: vec!["photos:read".into()],
            ..NewClient::default()
        })
        .await;
    app.post(
        "/device_authorization",
        Some(&confidential.with_secret("vcs_wrong")),
        "scope=photos:read",
    )
    .await
    .assert_error(401, "invalid_client");
    let ok = app
        .post(
            "/device_authorization",
            Some(&confidential),
            "scope=photos:read",
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    // Scopes beyond the registration are refused.
    app.post("/device_authorization", Some(&confidential), "scope=admin")
        .await
        .assert_error(400, "invalid_scope");
}

#[tokio::test]
async fn guessing_user_codes_is_throttled_per_address() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let tv = tv_client(&app).await;
    let started = start(&app, &tv, "openid").await;
    let user_code = started["user_code"].as_str().unwrap();
    let mut browser = Browser::default();
    let page = browser.get(&app, "/device").await;
    let csrf = form_field(&page.text(), "csrf").unwrap();
    let attacker = "203.0.113.7:4000";
    let mut throttled = false;
    for guess in [
        "BBBB-BBBB",
        "CCCC-CCCC",
        "DDDD-DDDD",
        "FFFF-FFFF",
        "GGGG-GGGG",
        "HHHH-HHHH",
    ] {
        let reply = browser
            .post_from(
                &app,
                attacker,
                "/device",
                &[],
                &format!("csrf={csrf}&user_code={guess}"),
            )
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(reply.header("retry-after").is_some());
            throttled = true;
        } else {
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        }
    }
    assert!(
        throttled,
        "six wrong codes from one address were all checked"
    );
    // Even the right code is refused from that address now…
    let refused = browser
        .post_from(
            &app,
            attacker,
            "/device",
            &[],
            &format!("csrf={csrf}&user_code={user_code}"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // …while the user's own address goes on.
    let login = browser
        .post_from(
            &app,
            "198.51.100.2:5000",
            "/device",
            &[],
            &format!("csrf={csrf}&user_code={user_code}"),
        )
        .await;
    assert!(
        login.text().contains("name=\"password\""),
        "{}",
        login.text()
    );
}

#[tokio::test]
async fn a_forged_device_form_is_refused() {
    let app = TestApp::new().await;
    let tv = tv_client(&app).await;
    let started = start(&app, &tv, "openid").await;
    let mut browser = Browser::default();
    browser.get(&app, "/device").await;
    let reply = browser
        .post(
            &app,
            "/device",
            &format!(
                "csrf=guess&user_code={}",
                started["user_code"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
}

#[tokio::test]
async fn discovery_lists_the_device_endpoint_and_grant() {
    let app = TestApp::new().await;
    let metadata = app.get("/.well-known/openid-configuration").await.json();
    assert_eq!(
        metadata["device_authorization_endpoint"],
        format!("{ISSUER}/device_authorization")
    );
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == DEVICE_GRANT), "{grants:?}");
}

/// openid-client asks for a device code, prints the user code and polls.
const OPENID_CLIENT_DEVICE: &str = r#"
import * as client from 'openid-client';
const [issuer, clientId] = process.argv.slice(1);
const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
  execute: [client.allowInsecureRequests],
});
const started = await client.initiateDeviceAuthorization(config, {
  scope: 'openid offline_access photos:read',
});
console.log(JSON.stringify({ user_code: started.user_code, verification_uri: started.verification_uri }));
const tokens = await client.pollDeviceAuthorizationGrant(config, started);
console.log(JSON.stringify({
  sub: tokens.claims().sub,
  scope: tokens.scope,
  refresh: typeof tokens.refresh_token === 'string',
}));
"#;

/// An independent client library (openid-client 6) runs the device flow
/// against Valet served over HTTP, while the test signs alice in on `/device`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_completes_the_device_flow() {
    if !node_package_available("openid-client", "the openid-client device flow test") {
        return;
    }
    let (app, issuer) = TestApp::listening().await;
    let alice = app.user("alice").await;
    let tv = tv_client(&app).await;
    let (mut node, started) = tokio::task::spawn_blocking({
        let (issuer, id) = (issuer.clone(), tv.id.clone());
        move || {
            let mut node = NodeSession::start(OPENID_CLIENT_DEVICE, &[&issuer, &id]);
            let started = node.next_json();
            (node, started)
        }
    })
    .await
    .unwrap();
    assert_eq!(started["verification_uri"], format!("{issuer}/device"));
    let mut browser = Browser::default();
    let done = alice_decides(
        &app,
        &mut browser,
        started["user_code"].as_str().unwrap(),
        "allow",
    )
    .await;
    assert!(
        done.text().contains("You may return to your device"),
        "{}",
        done.text()
    );
    let tokens = tokio::task::spawn_blocking(move || node.next_json())
        .await
        .unwrap();
    assert_eq!(tokens["sub"], alice.as_str());
    assert_eq!(tokens["scope"], "offline_access openid photos:read");
    assert_eq!(tokens["refresh"], true);
}

/// The device's sign-in is the normal one: with `mfa = required`, the
/// password leads to the second factor's enrolment, not to consent, and the
/// device still waits.
#[tokio::test]
async fn the_device_sign_in_requires_a_second_factor_like_any_other() {
    let mut settings = settings();
    settings.mfa = valet_core::config::MfaPolicy::Required;
    let app = TestApp::with_settings(settings).await;
    app.user("alice").await;
    let tv = tv_client(&app).await;
    let started = start(&app, &tv, "openid").await;
    let mut browser = Browser::default();
    let login = enter_code(&app, &mut browser, started["user_code"].as_str().unwrap()).await;
    let next = browser
        .post(&app, "/login", &login_form(&login, "alice", PASSWORD))
        .await;
    assert!(
        next.text().contains("Set up two-factor sign-in"),
        "{}",
        next.text()
    );
    assert!(!next.text().contains("name=\"decision\""));
    poll(&app, &tv, started["device_code"].as_str().unwrap())
        .await
        .assert_error(400, "authorization_pending");
}

/// Two browsers on the same user code (one of them someone else's): both may
/// reach the consent page, but only one decision is recorded, also when both
/// are submitted at once.
async fn one_decision_per_user_code(app: &TestApp, alice: &str) {
    app.user("mallory").await;
    let tv = tv_client(app).await;
    let started = start(app, &tv, "openid").await;
    let user_code = started["user_code"].as_str().unwrap();
    let mut consents = Vec::new();
    let mut browsers = Vec::new();
    for who in ["alice", "mallory"] {
        let mut browser = Browser::default();
        let login = enter_code(app, &mut browser, user_code).await;
        let consent = browser
            .post(app, "/login", &login_form(&login, who, PASSWORD))
            .await;
        assert!(
            consent.text().contains("name=\"decision\""),
            "{}",
            consent.text()
        );
        consents.push(consent);
        browsers.push(browser);
    }
    let (mut first, mut second) = (browsers.remove(0), browsers.remove(0));
    let allow = consent_form(&consents[0], "allow");
    let deny = consent_form(&consents[1], "deny");
    let (a, b) = tokio::join!(
        first.post(app, "/consent", &allow),
        second.post(app, "/consent", &deny)
    );
    let decided = [&a, &b]
        .iter()
        .filter(|reply| reply.status == StatusCode::OK)
        .count();
    assert_eq!(decided, 1, "{} / {}", a.text(), b.text());
    let loser = if a.status == StatusCode::OK { &b } else { &a };
    assert!(
        loser.text().contains("expired or was already used"),
        "{}",
        loser.text()
    );
    app.clock.advance(5);
    let answer = poll(app, &tv, started["device_code"].as_str().unwrap()).await;
    if a.status == StatusCode::OK {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let (_, claims) = decode_jwt(answer.json()["id_token"].as_str().unwrap());
        assert_eq!(claims["sub"], alice);
    } else {
        answer.assert_error(400, "access_denied");
    }
}

#[tokio::test]
async fn one_decision_per_user_code_on_sqlite() {
    let app = TestApp::new().await;
    let alice = app.user("alice").await;
    one_decision_per_user_code(&app, &alice).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_decision_per_user_code_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    let alice = app.user("alice").await;
    one_decision_per_user_code(&app, &alice).await;
    TestApp::drop_postgres_schema(&schema).await;
}

/// A device client that registered `id_token_encrypted_response_alg` gets its ID
/// token encrypted to its key from the device grant too (OIDC Core §10.2).
#[tokio::test]
async fn the_device_flow_encrypts_the_id_token_when_asked() {
    const KEY: &str = r#"{"kty":"EC","crv":"P-256","use":"enc","kid":"tv-enc","x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ","y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck","d":"VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"}"#;
    let app = TestApp::new().await;
    app.user("alice").await;
    let private: serde_json::Map<String, Value> = serde_json::from_str(KEY).unwrap();
    let mut public = private.clone();
    public.remove("d");
    let tv = app
        .client(NewClient {
            name: "Living Room TV".into(),
            public: true,
            grant_types: vec!["device_code".into()],
            jwks: Some(serde_json::json!({"keys": [public]}).to_string()),
            id_token_encryption: Some(valet_core::admin::EncryptionNames::parse("ECDH-ES")),
            ..NewClient::default()
        })
        .await;
    let started = start(&app, &tv, "openid").await;
    let mut browser = Browser::default();
    let user_code = started["user_code"].as_str().unwrap();
    let done = alice_decides(&app, &mut browser, user_code, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    app.clock.advance(5);
    let tokens = poll(&app, &tv, started["device_code"].as_str().unwrap()).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let id_token = tokens.json()["id_token"].as_str().unwrap().to_owned();
    let key = valet_jose::DecryptionKey::from_jwk(&private).unwrap();
    let opened = valet_jose::decrypt(&id_token, &key).unwrap();
    assert_eq!(opened.kid.as_deref(), Some("tv-enc"));
    let (_, claims) = decode_jwt(std::str::from_utf8(&opened.plaintext).unwrap());
    assert_eq!(claims["aud"], tv.id.as_str());
}
