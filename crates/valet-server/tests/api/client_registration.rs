//! Dynamic client registration (RFC 7591) and its management (RFC 7592) from
//! the outside: closed by default; with initial access tokens; open within its
//! policy and rate; the attacks (no token, a wrong or spent one, bad redirect
//! URIs, operator settings, another client's registration token) change
//! nothing. On SQLite and PostgreSQL.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use valet_core::Settings;
use valet_core::config::ClientRegistration;
use valet_test_support::api::*;

pub(crate) fn dynamic_settings(mode: ClientRegistration) -> Settings {
    let mut settings = settings();
    settings.dynamic_clients.registration = mode;
    settings.dynamic_clients.audiences = vec![API.to_owned()];
    settings
}

async fn on_both_stores(settings: impl Fn() -> Settings, test: impl AsyncFn(&TestApp)) {
    test(&TestApp::with_settings(settings()).await).await;
    if let Some((app, schema)) = TestApp::on_postgres_with(settings()).await {
        test(&app).await;
        TestApp::drop_postgres_schema(&schema).await;
    }
}

/// A JSON request from `peer`, with `authorization` when given.
async fn json_request(
    app: &TestApp,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
    peer: &str,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let mut request = request.body(body).unwrap();
    let peer: std::net::SocketAddr = peer.parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    app.send(request).await
}

pub(crate) async fn register(app: &TestApp, token: Option<&str>, metadata: &Value) -> Reply {
    let authorization = token.map(|token| format!("Bearer {token}"));
    json_request(
        app,
        "POST",
        "/connect/register",
        authorization.as_deref(),
        Some(metadata),
        "198.51.100.7:4000",
    )
    .await
}

pub(crate) fn web_app() -> Value {
    json!({
        "client_name": "Notes",
        "redirect_uris": [WEB_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile",
    })
}

fn bearer_error(reply: &Reply) -> String {
    reply
        .header("www-authenticate")
        .unwrap_or_default()
        .to_owned()
}

async fn client_count(app: &TestApp) -> usize {
    app.admin().list_clients().await.unwrap().len()
}

#[tokio::test]
async fn registration_is_closed_by_default() {
    let app = TestApp::new().await;
    let reply = register(&app, None, &web_app()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
    let reply = json_request(
        &app,
        "GET",
        "/connect/register/abc",
        Some("Bearer x"),
        None,
        "198.51.100.7:1",
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let discovery = app.get("/.well-known/openid-configuration").await.json();
    assert!(
        discovery.get("registration_endpoint").is_none(),
        "{discovery}"
    );
    assert!(
        discovery
            .get("client_id_metadata_document_supported")
            .is_none()
    );
    assert_eq!(client_count(&app).await, 0);
}

#[tokio::test]
async fn initial_access_tokens_gate_registration() {
    on_both_stores(
        || dynamic_settings(ClientRegistration::InitialToken),
        async |app: &TestApp| {
            let discovery = app.get("/.well-known/openid-configuration").await.json();
            assert_eq!(
                discovery["registration_endpoint"],
                format!("{ISSUER}/connect/register")
            );
            // No token: a bare Bearer challenge; a made-up one: invalid_token.
            let reply = register(app, None, &web_app()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            assert_eq!(bearer_error(&reply), "Bearer realm=\"valet\"");
            let reply = register(app, Some("viat_made-up"), &web_app()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            assert!(bearer_error(&reply).contains("error=\"invalid_token\""));
            assert_eq!(client_count(app).await, 0);

            let created = app
                .admin()
                .create_initial_token("for the notes team", 3600, Some(1))
                .await
                .unwrap();
            let token = created.token.expose().to_owned();
            assert!(token.starts_with("viat_"));
            // A refused registration does not spend the use.
            let reply = register(
                app,
                Some(&token),
                &json!({"redirect_uris": ["http://evil.example/cb"]}),
            )
            .await;
            reply.assert_error(400, "invalid_redirect_uri");
            assert_eq!(client_count(app).await, 0);

            let reply = register(app, Some(&token), &web_app()).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
            assert_eq!(reply.header("cache-control"), Some("no-store"));
            let body = reply.json();
            let client_id = body["client_id"].as_str().unwrap().to_owned();
            let secret = body["client_secret"].as_str().unwrap();
            assert!(secret.starts_with("vcs_"));
            assert_eq!(body["client_secret_expires_at"], 0);
            assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
            assert_eq!(body["grant_types"], json!(["authorization_code", "refresh_token"]));
            assert_eq!(body["response_types"], json!(["code"]));
            assert_eq!(body["scope"], "openid profile");
            assert_eq!(body["client_name"], "Notes");
            assert!(body["registration_access_token"].as_str().unwrap().starts_with("vrat_"));
            assert_eq!(
                body["registration_client_uri"],
                format!("{ISSUER}/connect/register/{client_id}")
            );
            // The secret works at the token endpoint (the code is what is wrong).
            let client = TestClient {
                id: client_id.clone(),
                secret: secret.to_owned(),
            };
            app.token(&client, "grant_type=authorization_code&code=nope&code_verifier=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&redirect_uri=x")
                .await
                .assert_error(400, "invalid_grant");
            // Audited, through the registration door.
            let record = app.admin().get_client(&client_id).await.unwrap();
            assert_eq!(record.origin, "dynamic");
            assert!(!record.skip_consent);
            assert_eq!(record.audiences, [API]);

            // Used up.
            let reply = register(app, Some(&token), &web_app()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            // Expired.
            let lasting = app
                .admin()
                .create_initial_token("", 60, None)
                .await
                .unwrap();
            app.clock.advance(61);
            let reply = register(app, Some(lasting.token.expose()), &web_app()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            // Revoked.
            let revoked = app.admin().create_initial_token("", 600, None).await.unwrap();
            app.admin()
                .revoke_initial_token(&revoked.record.token_id)
                .await
                .unwrap();
            let reply = register(app, Some(revoked.token.expose()), &web_app()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            assert_eq!(client_count(app).await, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn open_registration_holds_its_policy() {
    on_both_stores(
        || {
            let mut settings = dynamic_settings(ClientRegistration::Open);
            settings.dynamic_clients.open_rate_per_hour = 100;
            settings
        },
        async |app: &TestApp| {
            let refusals: [(Value, &str, &str); 16] = [
                (json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri", "redirect_uris[0]"),
                (json!({"redirect_uris": ["https://*.example.com/cb"]}), "invalid_redirect_uri", "redirect_uris[0]"),
                (json!({"redirect_uris": ["https://app.example/cb#x"]}), "invalid_redirect_uri", "redirect_uris[0]"),
                (json!({"redirect_uris": ["https://app.example/cb", "javascript:alert(1)"]}), "invalid_redirect_uri", "redirect_uris[1]"),
                (json!({}), "invalid_redirect_uri", "authorization_code needs at least one redirect URI"),
                (json!({"redirect_uris": [WEB_REDIRECT], "skip_consent": true}), "invalid_client_metadata", "skip_consent is an operator setting"),
                (json!({"redirect_uris": [WEB_REDIRECT], "introspect_any": true}), "invalid_client_metadata", "introspect_any"),
                (json!({"redirect_uris": [WEB_REDIRECT], "grant_types": ["client_credentials"]}), "invalid_client_metadata", "client_credentials"),
                (json!({"redirect_uris": [WEB_REDIRECT], "grant_types": ["implicit"]}), "invalid_client_metadata", "implicit"),
                (json!({"redirect_uris": [WEB_REDIRECT], "response_types": ["token"]}), "invalid_client_metadata", "response_types"),
                (json!({"redirect_uris": [WEB_REDIRECT], "scope": "openid admin"}), "invalid_client_metadata", "scope admin is not available"),
                (json!({"redirect_uris": [WEB_REDIRECT], "jwks_uri": "https://app.example/jwks"}), "invalid_client_metadata", "jwks"),
                (json!({"redirect_uris": [WEB_REDIRECT], "id_token_encrypted_response_alg": "RSA-OAEP-256"}), "invalid_client_metadata", "id_token_encrypted_response_alg is not accepted"),
                (json!({"redirect_uris": [WEB_REDIRECT], "userinfo_signed_response_alg": "RS256"}), "invalid_client_metadata", "userinfo_signed_response_alg is not accepted"),
                (json!({"redirect_uris": [WEB_REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}), "invalid_client_metadata", "token_endpoint_auth_method"),
                (json!({"redirect_uris": "https://app.example/cb"}), "invalid_client_metadata", "RFC 7591"),
            ];
            for (metadata, code, words) in refusals {
                let reply = register(app, None, &metadata).await;
                reply.assert_error(400, code);
                let description = reply.json()["error_description"].as_str().unwrap().to_owned();
                assert!(description.contains(words), "{metadata}: {description}");
            }
            // Not JSON, and not declared JSON.
            let mut request = Request::post("/connect/register")
                .header("content-type", "application/json")
                .body(Body::from("{not json"))
                .unwrap();
            request.extensions_mut().insert(axum::extract::ConnectInfo(
                "198.51.100.8:1".parse::<std::net::SocketAddr>().unwrap(),
            ));
            app.send(request).await.assert_error(400, "invalid_client_metadata");
            let reply = app.post("/connect/register", None, "redirect_uris=x").await;
            reply.assert_error(400, "invalid_request");
            assert_eq!(client_count(app).await, 0, "refusals change nothing");

            // Browser-based agents may register from their page (CORS, any origin).
            let preflight = Request::builder()
                .method("OPTIONS")
                .uri("/connect/register")
                .header("origin", "https://agent.example")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization, content-type")
                .body(Body::empty())
                .unwrap();
            let reply = app.send(preflight).await;
            assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
            assert!(reply.header("access-control-allow-headers").unwrap().contains("Authorization"));
            // A public native app with a loopback redirect (RFC 8252 §7.3).
            let reply = register(
                app,
                None,
                &json!({
                    "client_name": "CLI",
                    "redirect_uris": ["http://127.0.0.1/callback"],
                    "token_endpoint_auth_method": "none",
                }),
            )
            .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
            let body = reply.json();
            assert!(body.get("client_secret").is_none());
            assert!(body.get("client_secret_expires_at").is_none());
            assert_eq!(body["token_endpoint_auth_method"], "none");
            // Without a scope it gets the configured ones.
            assert_eq!(body["scope"], "openid profile email offline_access");
        },
    )
    .await;
}

#[tokio::test]
async fn open_registration_is_rate_limited_per_address() {
    let mut settings = dynamic_settings(ClientRegistration::Open);
    settings.dynamic_clients.open_rate_per_hour = 2;
    let app = TestApp::with_settings(settings).await;
    let from = async |peer: &str| {
        json_request(
            &app,
            "POST",
            "/connect/register",
            None,
            Some(&web_app()),
            peer,
        )
        .await
    };
    for _ in 0..2 {
        assert_eq!(from("203.0.113.5:1000").await.status, StatusCode::CREATED);
    }
    let refused = from("203.0.113.5:1001").await;
    refused.assert_error(429, "invalid_request");
    let wait: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert_eq!(from("203.0.113.6:1000").await.status, StatusCode::CREATED);
    app.clock.advance(3600);
    assert_eq!(from("203.0.113.5:1000").await.status, StatusCode::CREATED);
    assert_eq!(client_count(&app).await, 4);
}

#[tokio::test]
async fn a_registration_is_managed_with_its_own_token_only() {
    on_both_stores(
        || dynamic_settings(ClientRegistration::Open),
        async |app: &TestApp| {
            let first = register(app, None, &web_app()).await.json();
            let second = register(app, None, &web_app()).await.json();
            let id = first["client_id"].as_str().unwrap();
            let uri = format!("/connect/register/{id}");
            let own = format!(
                "Bearer {}",
                first["registration_access_token"].as_str().unwrap()
            );
            let others = format!(
                "Bearer {}",
                second["registration_access_token"].as_str().unwrap()
            );
            let peer = "198.51.100.9:1";

            let read = json_request(app, "GET", &uri, Some(&own), None, peer).await;
            assert_eq!(read.status, StatusCode::OK, "{}", read.text());
            assert_eq!(read.json()["client_id"], id);
            assert!(read.json().get("client_secret").is_none());
            // Another client's token, no token, an unknown client: all refused alike.
            for (path, authorization) in [
                (uri.as_str(), Some(others.as_str())),
                (uri.as_str(), Some("Bearer vrat_guess")),
                ("/connect/register/unknown", Some(own.as_str())),
            ] {
                for method in ["GET", "DELETE"] {
                    let reply = json_request(app, method, path, authorization, None, peer).await;
                    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    assert!(bearer_error(&reply).contains("invalid_token"));
                }
                let mut changed = web_app();
                changed["client_id"] = json!(id);
                changed["redirect_uris"] = json!(["https://evil.example/cb"]);
                let reply =
                    json_request(app, "PUT", path, authorization, Some(&changed), peer).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            }
            let reply = json_request(app, "GET", &uri, None, None, peer).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            let stored = app.admin().get_client(id).await.unwrap();
            assert_eq!(stored.redirect_uris, [WEB_REDIRECT]);

            // PUT must name the client, must not change its grant types, and
            // keeps the policy.
            let reply = json_request(app, "PUT", &uri, Some(&own), Some(&web_app()), peer).await;
            reply.assert_error(400, "invalid_client_metadata");
            let mut grants = web_app();
            grants["client_id"] = json!(id);
            grants["grant_types"] = json!(["authorization_code"]);
            let reply = json_request(app, "PUT", &uri, Some(&own), Some(&grants), peer).await;
            reply.assert_error(400, "invalid_client_metadata");
            let mut skip = web_app();
            skip["client_id"] = json!(id);
            skip["skip_consent"] = json!(true);
            let reply = json_request(app, "PUT", &uri, Some(&own), Some(&skip), peer).await;
            reply.assert_error(400, "invalid_client_metadata");

            let mut changed = web_app();
            changed["client_id"] = json!(id);
            changed["client_name"] = json!("Notes 2");
            changed["redirect_uris"] = json!(["https://notes.example/cb"]);
            let reply = json_request(app, "PUT", &uri, Some(&own), Some(&changed), peer).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            let body = reply.json();
            assert_eq!(body["redirect_uris"], json!(["https://notes.example/cb"]));
            assert_eq!(body["client_name"], "Notes 2");
            // The token rotated: the old one is dead, the new one works.
            let rotated = format!(
                "Bearer {}",
                body["registration_access_token"].as_str().unwrap()
            );
            let reply = json_request(app, "GET", &uri, Some(&own), None, peer).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            let reply = json_request(app, "GET", &uri, Some(&rotated), None, peer).await;
            assert_eq!(reply.status, StatusCode::OK);

            let reply = json_request(app, "DELETE", &uri, Some(&rotated), None, peer).await;
            assert_eq!(reply.status, StatusCode::NO_CONTENT);
            let reply = json_request(app, "GET", &uri, Some(&rotated), None, peer).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            assert!(app.admin().get_client(id).await.is_err());
            // The other registration is untouched.
            let other = second["client_id"].as_str().unwrap();
            let reply = json_request(
                app,
                "GET",
                &format!("/connect/register/{other}"),
                Some(&others),
                None,
                peer,
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK);
            // An operator's client cannot be managed this way at all.
            let operator = app.web_client(|_| {}).await;
            let reply = json_request(
                app,
                "GET",
                &format!("/connect/register/{}", operator.id),
                Some(&others),
                None,
                peer,
            )
            .await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        },
    )
    .await;
}

/// A self-registered client signs a user in: consent is asked (it cannot skip
/// it), and the tokens come out.
#[tokio::test]
async fn a_self_registered_client_signs_users_in_with_consent() {
    on_both_stores(
        || dynamic_settings(ClientRegistration::Open),
        async |app: &TestApp| {
            app.user("alice").await;
            let body = register(app, None, &web_app()).await.json();
            let client = TestClient {
                id: body["client_id"].as_str().unwrap().to_owned(),
                secret: body["client_secret"].as_str().unwrap().to_owned(),
            };
            let mut browser = Browser::default();
            let pkce = Pkce::new();
            let page = browser
                .get(
                    app,
                    &authorize_path(&client.id, &pkce, "openid profile", ""),
                )
                .await;
            let body = login_form(&page, "alice", PASSWORD);
            let consent = browser.post(app, "/login", &body).await;
            assert!(
                consent.text().contains("name=\"decision\""),
                "{}",
                consent.text()
            );
            let reply = browser
                .post(app, "/consent", &consent_form(&consent, "allow"))
                .await;
            let params = location_params(&reply);
            let tokens = redeem(app, &client, &params["code"], &pkce.verifier).await;
            assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
            let (_, claims) = decode_jwt(tokens.json()["access_token"].as_str().unwrap());
            assert_eq!(claims["client_id"], client.id.as_str());
        },
    )
    .await;
}

/// The MCP TypeScript SDK's client authorization (`auth()` of
/// `@modelcontextprotocol/sdk/client/auth.js`), unchanged, against Valet on a
/// socket: RFC 9728 metadata of a (fake) MCP server names Valet, the SDK
/// discovers Valet, registers itself dynamically (RFC 7591, a public client
/// with a loopback redirect), sends the user to authorize with PKCE and the
/// MCP server as `resource`; the test signs alice in and allows; the SDK
/// redeems the code. The access token is for the MCP server. (The SDK takes
/// a metadata document URL only over https, so this runs the registration
/// path; metadata documents are tested in `client_metadata`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_sdk_registers_and_authorizes() {
    if !node_package_available("@modelcontextprotocol/sdk", "the MCP SDK registration test") {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let mcp = format!("{origin}/mcp");
    let mut settings = Settings::new(origin.clone());
    settings.dynamic_clients.registration = ClientRegistration::Open;
    settings.dynamic_clients.audiences = vec![mcp.clone()];
    let app = TestApp::with_settings(settings).await;
    app.user("alice").await;
    // The MCP server's protected resource metadata (RFC 9728 §3), beside Valet.
    let metadata = json!({
        "resource": mcp,
        "authorization_servers": [origin],
        "scopes_supported": ["openid", "profile", "offline_access"],
    });
    let router = app.router.clone().route(
        "/.well-known/oauth-protected-resource/mcp",
        axum::routing::get(move || {
            let metadata = metadata.clone();
            async move { axum::Json(metadata) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let state = temp_dir("mcp-sdk").join("state.json");
    let state_path = state.to_str().unwrap().to_owned();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let output = run_node_script(MCP_SDK_CLIENT, &args);
            assert!(
                output.status.success(),
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice::<Value>(&output.stdout).unwrap()
        })
    };
    let first = run(vec![mcp.clone(), state_path.clone()]).await.unwrap();
    assert_eq!(first["result"], "REDIRECT", "{first}");
    let client_id = first["client_id"].as_str().unwrap().to_owned();
    let record = app.admin().get_client(&client_id).await.unwrap();
    assert_eq!(record.origin, "dynamic");
    assert_eq!(record.kind, "public");
    let url = first["url"].as_str().unwrap();
    let path = url.strip_prefix(&origin).unwrap();
    assert!(
        path.contains(&format!("resource={}", encode(&mcp))),
        "{path}"
    );

    let mut browser = Browser::default();
    let page = browser.get(&app, path).await;
    let consent = browser
        .post(&app, "/login", &login_form(&page, "alice", PASSWORD))
        .await;
    assert!(
        consent.text().contains("MCP test client"),
        "{}",
        consent.text()
    );
    let reply = browser
        .post(&app, "/consent", &consent_form(&consent, "allow"))
        .await;
    let code = location_params(&reply)["code"].clone();

    let second = run(vec![mcp.clone(), state_path.clone(), code])
        .await
        .unwrap();
    assert_eq!(second["result"], "AUTHORIZED", "{second}");
    let (_, claims) = decode_jwt(second["tokens"]["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], client_id.as_str());
    // For the MCP server (and, with openid, Valet's UserInfo).
    assert_eq!(claims["aud"], json!([mcp, origin]), "{claims:?}");
    let refresh_token = second["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Run again, the SDK refreshes (with its resource) instead of sending the user.
    let third = run(vec![mcp.clone(), state_path]).await.unwrap();
    assert_eq!(third["result"], "AUTHORIZED", "{third}");
    assert_ne!(third["tokens"]["refresh_token"], refresh_token.as_str());
    let (_, claims) = decode_jwt(third["tokens"]["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], client_id.as_str());
}

/// One step of the SDK's flow per run; what the provider keeps between the
/// runs (client information, PKCE verifier, tokens) lives in a JSON file.
/// With `clientMetadataUrl` in the state file, the SDK uses that URL as its
/// client id (a Client ID Metadata Document) instead of registering.
pub(crate) const MCP_SDK_CLIENT: &str = r#"
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';

// With `node -e` the arguments start right after the executable.
const first = process.argv.findIndex((arg) => arg.startsWith('http://'));
const [serverUrl, statePath, authorizationCode] = process.argv.slice(first);
const state = existsSync(statePath) ? JSON.parse(readFileSync(statePath, 'utf8')) : {};
const save = () => writeFileSync(statePath, JSON.stringify(state));
const redirectUrl = 'http://127.0.0.1:33418/callback';
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadataUrl() { return state.clientMetadataUrl; },
  get clientMetadata() {
    return {
      client_name: 'MCP test client',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  clientInformation() { return state.client; },
  saveClientInformation(info) { state.client = info; save(); },
  tokens() { return state.tokens; },
  saveTokens(tokens) { state.tokens = tokens; save(); },
  redirectToAuthorization(url) { state.url = url.toString(); save(); },
  saveCodeVerifier(verifier) { state.verifier = verifier; save(); },
  codeVerifier() { return state.verifier; },
};
const result = await auth(provider, { serverUrl, authorizationCode });
console.log(JSON.stringify({
  result,
  url: state.url,
  client_id: state.client && state.client.client_id,
  tokens: state.tokens,
}));
"#;
