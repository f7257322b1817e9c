//! Pushed authorization requests (RFC 9126): `/par`, then `/authorize` with
//! `client_id` and `request_uri` only.

use axum::http::StatusCode;
use valet_core::admin::NewClient;

use valet_test_support::api::*;

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The parameters of an authorization request for the test web client.
fn request_params(pkce: &Pkce, state: &str) -> String {
    format!(
        "response_type=code&redirect_uri={}&scope=openid%20photos%3Aread&state={}&nonce=n-1&code_challenge={}&code_challenge_method=S256",
        encode(WEB_REDIRECT),
        encode(state),
        pkce.challenge
    )
}

/// Pushes a request for `client` (Basic authentication) and returns its `request_uri`.
async fn push(app: &TestApp, client: &TestClient, pkce: &Pkce, state: &str) -> String {
    let reply = app
        .post("/par", Some(client), &request_params(pkce, state))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["expires_in"], 60);
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with(PREFIX), "{request_uri}");
    request_uri
}

fn authorize_with(client_id: &str, request_uri: &str, extra: &str) -> String {
    format!(
        "/authorize?client_id={client_id}&request_uri={}{extra}",
        encode(request_uri)
    )
}

async fn a_pushed_request_is_used_once(app: &TestApp) {
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let pkce = Pkce::new();
    let request_uri = push(app, &client, &pkce, "pushed state").await;
    let mut browser = Browser::default();
    // Parameters the browser adds are ignored (§4): the pushed state comes back.
    let path = authorize_with(&client.id, &request_uri, "&state=injected&scope=openid");
    let params = sign_in_and_allow(app, &mut browser, &path, "alice").await;
    assert_eq!(params["state"], "pushed state");
    assert_eq!(params["iss"], ISSUER);
    let tokens = redeem(app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    assert_eq!(tokens.json()["scope"], "openid photos:read");

    // Replayed: an error page, never a redirect.
    let replay = browser.get(app, &path).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text());
    assert!(replay.header("location").is_none());
    assert!(replay.text().contains("already used"), "{}", replay.text());
}

#[tokio::test]
async fn a_pushed_request_is_used_once_on_sqlite() {
    a_pushed_request_is_used_once(&TestApp::new().await).await;
}

#[tokio::test]
async fn a_pushed_request_is_used_once_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    a_pushed_request_is_used_once(&app).await;
    another_clients_handle_and_expiry(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

/// alice exists already.
async fn another_clients_handle_and_expiry(app: &TestApp) {
    let client = app.web_client(|_| {}).await;
    let other = app.web_client(|_| {}).await;
    let pkce = Pkce::new();
    let request_uri = push(app, &client, &pkce, "s").await;
    let mut browser = Browser::default();
    // Named with another client_id: refused, and left to its client.
    let stolen = browser
        .get(app, &authorize_with(&other.id, &request_uri, ""))
        .await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST, "{}", stolen.text());
    assert!(stolen.text().contains("not pushed by this application"));
    let page = browser
        .get(app, &authorize_with(&client.id, &request_uri, ""))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("name=\"password\""));

    // Expired after 60 seconds.
    let late = push(app, &client, &pkce, "s").await;
    app.clock.advance(61);
    let reply = browser
        .get(app, &authorize_with(&client.id, &late, ""))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    // A made-up handle.
    let made_up = browser
        .get(
            app,
            &authorize_with(&client.id, &format!("{PREFIX}guess"), ""),
        )
        .await;
    assert_eq!(made_up.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn another_clients_handle_and_expiry_on_sqlite() {
    let app = TestApp::new().await;
    app.user("alice").await;
    another_clients_handle_and_expiry(&app).await;
}

#[tokio::test]
async fn the_pushed_request_is_validated_like_an_authorization_request() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    let pkce = Pkce::new();
    let good = request_params(&pkce, "s");
    app.post("/par", Some(&client.with_secret("vcs_wrong")), &good)
        .await
        .assert_error(401, "invalid_client");
    app.post(
        "/par",
        Some(&client),
        &format!("{good}&request_uri={PREFIX}x"),
    )
    .await
    .assert_error(400, "invalid_request");
    let elsewhere = good.replace(&encode(WEB_REDIRECT), &encode("https://evil.example/cb"));
    app.post("/par", Some(&client), &elsewhere)
        .await
        .assert_error(400, "invalid_request");
    let no_pkce = good.replace("&code_challenge_method=S256", "");
    app.post("/par", Some(&client), &no_pkce)
        .await
        .assert_error(400, "invalid_request");
    let too_much = good.replace("scope=openid%20photos%3Aread", "scope=admin");
    app.post("/par", Some(&client), &too_much)
        .await
        .assert_error(400, "invalid_scope");
    let other = app.web_client(|_| {}).await;
    app.post(
        "/par",
        Some(&client),
        &format!("{good}&client_id={}", other.id),
    )
    .await
    .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn public_clients_push_too() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app
        .client(NewClient {
            name: "Phone App".into(),
            public: true,
            redirect_uris: vec![WEB_REDIRECT.into()],
            scopes: vec!["photos:read".into()],
            ..NewClient::default()
        })
        .await;
    let pkce = Pkce::new();
    let reply = app
        .post(
            "/par",
            None,
            &format!("client_id={}&{}", client.id, request_params(&pkce, "p")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let request_uri = reply.json()["request_uri"].as_str().unwrap().to_owned();
    let mut browser = Browser::default();
    let params = sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_with(&client.id, &request_uri, ""),
        "alice",
    )
    .await;
    assert_eq!(params["state"], "p");
    assert!(params.contains_key("code"));
}

#[tokio::test]
async fn a_server_can_require_pushed_requests() {
    let mut settings = settings();
    settings.require_pushed_authorization_requests = true;
    let app = TestApp::with_settings(settings).await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let metadata = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    assert_eq!(metadata["require_pushed_authorization_requests"], true);
    assert_eq!(
        metadata["pushed_authorization_request_endpoint"],
        format!("{ISSUER}/par")
    );
    // Not pushed: invalid_request back to the (registered) redirect URI.
    let mut browser = Browser::default();
    let direct = browser.authorize(&app, &client, "").await;
    assert_eq!(direct.status, StatusCode::SEE_OTHER, "{}", direct.text());
    let params = location_params(&direct);
    assert_eq!(params["error"], "invalid_request");
    // Pushed: fine.
    let pkce = Pkce::new();
    let request_uri = push(&app, &client, &pkce, "s").await;
    let params = sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_with(&client.id, &request_uri, ""),
        "alice",
    )
    .await;
    assert!(params.contains_key("code"), "{params:?}");
}

#[tokio::test]
async fn a_client_can_be_required_to_push_and_its_setting_is_stored() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let strict = app
        .web_client(|c| c.require_pushed_authorization_requests = true)
        .await;
    let relaxed = app.web_client(|_| {}).await;
    let record = app.admin().get_client(&strict.id).await.unwrap();
    assert!(record.require_pushed_authorization_requests);
    // The strict client's direct request is refused; the other's is not.
    let mut browser = Browser::default();
    let direct = browser.authorize(&app, &strict, "").await;
    assert_eq!(location_params(&direct)["error"], "invalid_request");
    let other = browser.authorize(&app, &relaxed, "").await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.text());
    // Turned off by an update, direct requests work again.
    app.admin()
        .update_client(
            &strict.id,
            valet_core::admin::ClientUpdate {
                require_pushed_authorization_requests: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    app.clock.advance(6);
    let now_direct = browser.authorize(&app, &strict, "").await;
    assert_eq!(now_direct.status, StatusCode::OK, "{}", now_direct.text());
}

#[tokio::test]
async fn registered_origins_may_read_par_and_device_answers() {
    let app = TestApp::new().await;
    let spa_origin = "https://spa.example.test";
    let spa = app
        .client(NewClient {
            name: "SPA".into(),
            public: true,
            redirect_uris: vec![format!("{spa_origin}/callback")],
            grant_types: vec!["authorization_code".into(), "device_code".into()],
            ..NewClient::default()
        })
        .await;
    for (path, body) in [
        (
            "/par",
            format!(
                "client_id={}&response_type=code&code_challenge={}&code_challenge_method=S256",
                spa.id,
                Pkce::new().challenge
            ),
        ),
        ("/device_authorization", format!("client_id={}", spa.id)),
    ] {
        let allowed = app
            .post_from("127.0.0.1:1", path, None, &[("origin", spa_origin)], &body)
            .await;
        assert!(allowed.status.is_success(), "{path}: {}", allowed.text());
        assert_eq!(
            allowed.header("access-control-allow-origin"),
            Some(spa_origin),
            "{path}"
        );
        let foreign = app
            .post_from(
                "127.0.0.1:1",
                path,
                None,
                &[("origin", "https://evil.example")],
                &body,
            )
            .await;
        assert!(
            foreign.header("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
}

/// openid-client pushes the request, prints the authorization URL, waits for
/// the callback URL on its input and redeems the code.
const OPENID_CLIENT_PAR: &str = r#"
import * as client from 'openid-client';
import { createInterface } from 'node:readline';
const [issuer, clientId, secret, redirectUri] = process.argv.slice(1);
const config = await client.discovery(new URL(issuer), clientId, secret, undefined, {
  execute: [client.allowInsecureRequests],
});
const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const url = await client.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: redirectUri,
  scope: 'openid photos:read',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});
console.log(JSON.stringify({ url: url.href }));
const input = createInterface({ input: process.stdin });
const callback = await new Promise((resolve) => input.once('line', resolve));
input.close();
const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
});
console.log(JSON.stringify({ sub: tokens.claims().sub, scope: tokens.scope }));
"#;

/// An independent client library (openid-client 6) pushes its request to
/// `/par` and completes the code flow against Valet served over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_pushes_and_completes_the_code_flow() {
    if !node_package_available("openid-client", "the openid-client PAR test") {
        return;
    }
    let (app, issuer) = TestApp::listening().await;
    let alice = app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let (mut node, first) = tokio::task::spawn_blocking({
        let args = [issuer.clone(), client.id.clone(), client.secret.clone()];
        move || {
            let mut node = NodeSession::start(
                OPENID_CLIENT_PAR,
                &[&args[0], &args[1], &args[2], WEB_REDIRECT],
            );
            let first = node.next_json();
            (node, first)
        }
    })
    .await
    .unwrap();
    let url = first["url"].as_str().unwrap();
    let path = url.strip_prefix(issuer.as_str()).unwrap();
    assert!(path.starts_with("/authorize?"), "{url}");
    assert!(path.contains("request_uri=urn"), "{url}");
    assert!(
        !path.contains("code_challenge"),
        "only the handle travels: {url}"
    );
    let mut browser = Browser::default();
    let params = sign_in_and_allow(&app, &mut browser, path, "alice").await;
    let callback = format!(
        "{WEB_REDIRECT}?code={}&state={}&iss={}",
        encode(&params["code"]),
        encode(&params["state"]),
        encode(&params["iss"])
    );
    let tokens = tokio::task::spawn_blocking(move || {
        node.send_line(&callback);
        node.next_json()
    })
    .await
    .unwrap();
    assert_eq!(tokens["sub"], alice.as_str());
    assert_eq!(tokens["scope"], "openid photos:read");
}

/// RFC 9449 §10: a `dpop_jkt` pushed with the request binds the code, as it
/// would at `/authorize`: redeeming it needs a proof with that key.
#[tokio::test]
async fn a_pushed_dpop_jkt_binds_the_code() {
    use valet_core::Clock as _;
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let key = DpopKey::es256();
    let pkce = Pkce::new();
    let body = format!("{}&dpop_jkt={}", request_params(&pkce, "bound"), key.jkt());
    let pushed = app.post("/par", Some(&client), &body).await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{}", pushed.text());
    let request_uri = pushed.json()["request_uri"].as_str().unwrap().to_owned();
    let mut browser = Browser::default();
    let path = authorize_with(&client.id, &request_uri, "");
    let params = sign_in_and_allow(&app, &mut browser, &path, "alice").await;
    let redeem_body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        encode(&params["code"]),
        encode(WEB_REDIRECT),
        pkce.verifier
    );
    // Without a proof the code is refused and stays unredeemed.
    app.post("/token", Some(&client), &redeem_body)
        .await
        .assert_error(400, "invalid_dpop_proof");
    let proof = key.proof(
        "POST",
        "https://id.example.test/token",
        app.clock.now(),
        None,
    );
    let reply = app
        .send(form_request(
            "/token",
            Some(&client),
            &[("DPoP", &proof)],
            &redeem_body,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["token_type"], "DPoP");
}

/// RFC 9126 §3: the pushed parameters may be a request object signed by the
/// client; only the object's parameters are used, and an object signed by
/// another key is refused at `/par` with nothing stored.
#[tokio::test]
async fn a_pushed_request_object_is_opened_and_checked() {
    use serde_json::json;
    use valet_core::Clock as _;
    use valet_jose::{Algorithm, SigningKey};
    let app = TestApp::new().await;
    app.user("alice").await;
    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let client = app
        .web_client(|c| {
            c.skip_consent = true;
            c.jwks = Some(crate::client_jwt::jwks_of(&[&key]));
        })
        .await;
    let pkce = Pkce::new();
    let now = app.clock.now();
    let claims = json!({
        "iss": client.id, "aud": ISSUER, "exp": now + 60, "iat": now,
        "client_id": client.id, "response_type": "code", "redirect_uri": WEB_REDIRECT,
        "scope": "openid photos:read", "state": "signed state",
        "code_challenge": pkce.challenge, "code_challenge_method": "S256",
    });
    let object = key.sign_jwt("oauth-authz-req+jwt", &claims).unwrap();
    // Outside parameters beside the object are not used.
    let pushed = app
        .post(
            "/par",
            Some(&client),
            &format!("request={object}&state=outer&scope=openid%20admin"),
        )
        .await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{}", pushed.text());
    let request_uri = pushed.json()["request_uri"].as_str().unwrap().to_owned();
    let mut browser = Browser::default();
    let path = authorize_with(&client.id, &request_uri, "");
    let params = sign_in_and_allow(&app, &mut browser, &path, "alice").await;
    assert_eq!(params["state"], "signed state");
    let tokens = redeem(&app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    assert_eq!(tokens.json()["scope"], "openid photos:read");

    let (stranger, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let forged = stranger.sign_jwt("oauth-authz-req+jwt", &claims).unwrap();
    app.post("/par", Some(&client), &format!("request={forged}"))
        .await
        .assert_error(400, "invalid_request_object");
}

/// The pushed request's `ui_locales` chooses the pages' language (RFC 9126
/// §4: the pushed parameters are the request's); one the browser adds to a
/// pushed request is ignored.
#[tokio::test]
async fn a_pushed_requests_ui_locales_chooses_the_language() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    let pkce = Pkce::new();
    let params = format!("{}&ui_locales=fr%20de", request_params(&pkce, "s"));
    let reply = app.post("/par", Some(&client), &params).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let request_uri = reply.json()["request_uri"].as_str().unwrap().to_owned();
    let mut browser = Browser::default();
    let page = browser
        .get(
            &app,
            &authorize_with(&client.id, &request_uri, "&ui_locales=en"),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    assert!(
        html.contains("<html lang=\"de\">") && html.contains("<h1>Anmelden</h1>"),
        "{html}"
    );
    assert_eq!(
        browser
            .cookies
            .get("__Host-valet-locale")
            .map(String::as_str),
        Some("de")
    );

    // Pushed without ui_locales: the browser's addition does not count.
    let request_uri = push(&app, &client, &Pkce::new(), "s").await;
    let page = Browser::default()
        .get(
            &app,
            &authorize_with(&client.id, &request_uri, "&ui_locales=de"),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("<h1>Sign in</h1>"), "{}", page.text());
}
