//! DPoP (RFC 9449): proofs at the token endpoint and UserInfo, bound access and
//! refresh tokens, `dpop_jkt` at the authorization endpoint, server nonces, and the
//! attacks each rule stops.

use axum::http::StatusCode;
use serde_json::json;
use valet_core::Clock;
use valet_core::dpop::NONCE_PERIOD;
use valet_jose::{Algorithm, b64url};

use valet_test_support::api::*;

const TOKEN_URL: &str = "https://id.example.test/token";
const USERINFO_URL: &str = "https://id.example.test/userinfo";

/// POST /token with these `DPoP` header values.
async fn token_with(
    app: &TestApp,
    client: Option<&TestClient>,
    proofs: &[&str],
    body: &str,
) -> Reply {
    let headers: Vec<(&str, &str)> = proofs.iter().map(|proof| ("DPoP", *proof)).collect();
    app.send(form_request("/token", client, &headers, body))
        .await
}

async fn client_credentials(app: &TestApp, client: &TestClient, proofs: &[&str]) -> Reply {
    token_with(app, Some(client), proofs, "grant_type=client_credentials").await
}

/// GET /userinfo with `Authorization: {scheme} {token}` and these proofs.
async fn userinfo_with(app: &TestApp, scheme: &str, token: &str, proofs: &[&str]) -> Reply {
    let mut request =
        axum::http::Request::get("/userinfo").header("authorization", format!("{scheme} {token}"));
    for proof in proofs {
        request = request.header("dpop", *proof);
    }
    app.send(request.body(axum::body::Body::empty()).unwrap())
        .await
}

#[tokio::test]
async fn client_credentials_with_a_proof_gets_a_bound_dpop_token() {
    let app = TestApp::new().await;
    let client = app.service().await;
    for alg in Algorithm::ALL {
        let key = DpopKey::new(alg);
        let reply =
            client_credentials(&app, &client, &[&key.proof("POST", TOKEN_URL, START, None)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let body = reply.json();
        assert_eq!(body["token_type"], "DPoP");
        let token = body["access_token"].as_str().unwrap();
        let (_, claims) = decode_jwt(token);
        assert_eq!(claims["cnf"], json!({"jkt": key.jkt()}), "{alg}");
        // RFC 9449 §6.2: introspection says what the token is bound to.
        let introspected = app.introspect(&client, token).await;
        assert_eq!(introspected["token_type"], "DPoP");
        assert_eq!(introspected["cnf"]["jkt"], key.jkt());
    }
    // Without a proof: an ordinary bearer token, no `cnf`.
    let plain = client_credentials(&app, &client, &[]).await.json();
    assert_eq!(plain["token_type"], "Bearer");
    let (_, claims) = decode_jwt(plain["access_token"].as_str().unwrap());
    assert!(claims.get("cnf").is_none());
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let key = DpopKey::es256();
    let proof = key.proof("POST", TOKEN_URL, START, None);
    assert_eq!(
        client_credentials(&app, &client, &[&proof]).await.status,
        StatusCode::OK
    );
    let replay = client_credentials(&app, &client, &[&proof]).await;
    replay.assert_error(400, "invalid_dpop_proof");
    assert!(replay.text().contains("already used"), "{}", replay.text());
    // Still refused a little later, within the proof's window.
    app.clock.advance(30);
    client_credentials(&app, &client, &[&proof])
        .await
        .assert_error(400, "invalid_dpop_proof");
}

#[tokio::test]
async fn proofs_for_another_request_or_time_are_refused() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let key = DpopKey::es256();
    let cases = [
        ("GET", TOKEN_URL.to_owned(), START, "htm"),
        ("POST", USERINFO_URL.to_owned(), START, "htu"),
        (
            "POST",
            "https://evil.example/token".to_owned(),
            START,
            "htu",
        ),
        ("POST", TOKEN_URL.to_owned(), START - 120, "iat"),
        ("POST", TOKEN_URL.to_owned(), START + 60, "iat"),
    ];
    for (method, url, iat, rule) in cases {
        let reply = client_credentials(&app, &client, &[&key.proof(method, &url, iat, None)]).await;
        reply.assert_error(400, "invalid_dpop_proof");
        assert!(reply.text().contains(rule), "{rule}: {}", reply.text());
    }
    // §4.3 point 9: the query and fragment of htu are ignored.
    let with_query = key.proof("POST", &format!("{TOKEN_URL}?x=1#y"), START, None);
    assert_eq!(
        client_credentials(&app, &client, &[&with_query])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn malformed_unsigned_symmetric_and_private_key_proofs_are_refused() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let key = DpopKey::es256();
    let claims = |jti: &str| json!({"jti": jti, "htm": "POST", "htu": TOKEN_URL, "iat": START});

    let mut private = key.jwk().clone();
    private.insert("d".into(), json!(b64url([7u8; 32])));
    let unsigned = format!(
        "{}.{}.",
        b64url(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}).to_string()),
        b64url(claims("n").to_string())
    );
    let hmac = key.proof_with(
        &json!({"alg": "HS256", "jwk": {"kty": "oct", "k": b64url(b"secret")}}),
        &claims("h"),
    );
    let other = DpopKey::es256();
    let cases = [
        (
            "private key",
            key.proof_with(&json!({"jwk": private}), &claims("p")),
        ),
        ("none", unsigned),
        ("HS256", hmac),
        ("typ", key.proof_with(&json!({"typ": "JWT"}), &claims("t"))),
        (
            "no jwk",
            key.proof_with(&json!({"jwk": null}), &claims("j")),
        ),
        (
            "another key's jwk",
            key.proof_with(&json!({"jwk": other.jwk()}), &claims("o")),
        ),
        (
            "no jti",
            key.proof_with(
                &json!({}),
                &json!({"htm": "POST", "htu": TOKEN_URL, "iat": START}),
            ),
        ),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (name, proof) in cases {
        let reply = client_credentials(&app, &client, &[&proof]).await;
        assert_eq!(reply.json()["error"], "invalid_dpop_proof", "{name}");
        reply.assert_error(400, "invalid_dpop_proof");
    }
    // §4.3 point 1: one header, not two.
    let two = [
        key.proof("POST", TOKEN_URL, START, None),
        key.proof("POST", TOKEN_URL, START, None),
    ];
    client_credentials(&app, &client, &[&two[0], &two[1]])
        .await
        .assert_error(400, "invalid_dpop_proof");
}

/// A public client's code flow with DPoP on `app`, the refresh token bound to `key`.
async fn public_client_tokens(app: &TestApp, key: &DpopKey) -> (TestClient, serde_json::Value) {
    public_client_tokens_with(app, key, None).await
}

/// As [`public_client_tokens`], the token request's proof carrying `nonce`.
async fn public_client_tokens_with(
    app: &TestApp,
    key: &DpopKey,
    nonce: Option<&str>,
) -> (TestClient, serde_json::Value) {
    app.user("alice").await;
    let client = app
        .web_client(|c| {
            c.public = true;
            c.skip_consent = true;
        })
        .await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid offline_access photos:read", ""),
        "alice",
    )
    .await;
    let body = format!(
        "grant_type=authorization_code&client_id={}&code={}&redirect_uri={}&code_verifier={}",
        client.id,
        encode(&params["code"]),
        encode(WEB_REDIRECT),
        pkce.verifier
    );
    let now = app.clock.now();
    let proof = match nonce {
        Some(nonce) => key.proof_with_nonce("POST", TOKEN_URL, now, nonce),
        None => key.proof("POST", TOKEN_URL, now, None),
    };
    let reply = token_with(app, None, &[&proof], &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    (client, reply.json())
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str, proof: Option<&str>) -> Reply {
    let body = format!(
        "grant_type=refresh_token&client_id={}&refresh_token={token}",
        client.id
    );
    let proofs: Vec<&str> = proof.into_iter().collect();
    token_with(app, None, &proofs, &body).await
}

async fn refresh_tokens_of_public_clients_are_bound(app: &TestApp) {
    let key = DpopKey::es256();
    let (client, tokens) = public_client_tokens(app, &key).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let r1 = tokens["refresh_token"].as_str().unwrap();
    let now = app.clock.now();

    // A thief with the refresh token but not the key gets nothing, and burns nothing.
    refresh(app, &client, r1, None)
        .await
        .assert_error(400, "invalid_dpop_proof");
    let thief = DpopKey::es256();
    refresh(
        app,
        &client,
        r1,
        Some(&thief.proof("POST", TOKEN_URL, now, None)),
    )
    .await
    .assert_error(400, "invalid_dpop_proof");

    // The holder of the key refreshes; the successor stays bound to the same key.
    let second = refresh(
        app,
        &client,
        r1,
        Some(&key.proof("POST", TOKEN_URL, now, None)),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let second = second.json();
    assert_eq!(second["token_type"], "DPoP");
    let (_, claims) = decode_jwt(second["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], key.jkt());
    let r2 = second["refresh_token"].as_str().unwrap();
    refresh(app, &client, r2, None)
        .await
        .assert_error(400, "invalid_dpop_proof");
    let inspector = app
        .client(valet_core::admin::NewClient {
            name: "inspector".into(),
            introspect_any: true,
            ..service_client()
        })
        .await;
    let introspected = app.introspect(&inspector, r2).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["cnf"]["jkt"], key.jkt());
    let third = refresh(
        app,
        &client,
        r2,
        Some(&key.proof("POST", TOKEN_URL, now, None)),
    )
    .await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text());
}

#[tokio::test]
async fn refresh_tokens_of_public_clients_are_bound_on_sqlite() {
    let app = TestApp::new().await;
    refresh_tokens_of_public_clients_are_bound(&app).await;
}

#[tokio::test]
async fn refresh_tokens_of_public_clients_are_bound_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    refresh_tokens_of_public_clients_are_bound(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

async fn dpop_jkt_binds_the_code(app: &TestApp) {
    app.user("bob").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let key = DpopKey::es256();
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let extra = format!("&dpop_jkt={}", key.jkt());
    let params = sign_in_and_allow(
        app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid photos:read", &extra),
        "bob",
    )
    .await;
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        encode(&params["code"]),
        encode(WEB_REDIRECT),
        pkce.verifier
    );
    let now = app.clock.now();
    // §10: no proof, or another key's, and the code stays unredeemed.
    token_with(app, Some(&client), &[], &body)
        .await
        .assert_error(400, "invalid_dpop_proof");
    let other = DpopKey::es256();
    token_with(
        app,
        Some(&client),
        &[&other.proof("POST", TOKEN_URL, now, None)],
        &body,
    )
    .await
    .assert_error(400, "invalid_dpop_proof");
    let reply = token_with(
        app,
        Some(&client),
        &[&key.proof("POST", TOKEN_URL, now, None)],
        &body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["token_type"], "DPoP");
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_on_sqlite() {
    let app = TestApp::new().await;
    dpop_jkt_binds_the_code(&app).await;
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    dpop_jkt_binds_the_code(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}

#[tokio::test]
async fn a_malformed_dpop_jkt_is_refused_at_the_authorization_endpoint() {
    let app = TestApp::new().await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let page = browser
        .get(
            &app,
            &authorize_path(&client.id, &pkce, "openid", "&dpop_jkt=short"),
        )
        .await;
    let location = page.header("location").unwrap_or_default().to_owned();
    assert!(
        location.contains("error=invalid_request") && location.contains("dpop_jkt"),
        "{} {location}",
        page.status
    );
}

#[tokio::test]
async fn userinfo_takes_a_bound_token_only_with_the_dpop_scheme_and_a_proof() {
    let app = TestApp::new().await;
    let key = DpopKey::es256();
    let (_, tokens) = public_client_tokens(&app, &key).await;
    let token = tokens["access_token"].as_str().unwrap();
    let now = app.clock.now();

    // §7.2: a bound token sent as a bearer token is refused.
    let bearer = app.userinfo(Some(token)).await;
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED);
    assert!(
        bearer
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token"),
        "{:?}",
        bearer.headers
    );

    // §7.1: the DPoP scheme with a proof for this request, with `ath`.
    let good = userinfo_with(
        &app,
        "DPoP",
        token,
        &[&key.proof("GET", USERINFO_URL, now, Some(token))],
    )
    .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text());
    assert!(good.json()["sub"].is_string());

    let refused = [
        ("no proof", vec![]),
        ("no ath", vec![key.proof("GET", USERINFO_URL, now, None)]),
        (
            "ath of another token",
            vec![key.proof("GET", USERINFO_URL, now, Some("other"))],
        ),
        (
            "another key",
            vec![DpopKey::es256().proof("GET", USERINFO_URL, now, Some(token))],
        ),
        (
            "another method",
            vec![key.proof("POST", USERINFO_URL, now, Some(token))],
        ),
        (
            "the token endpoint's proof",
            vec![key.proof("GET", TOKEN_URL, now, Some(token))],
        ),
    ];
    for (name, proofs) in refused {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let reply = userinfo_with(&app, "DPoP", token, &proofs).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        let challenge = reply.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_dpop_proof\""),
            "{name}: {challenge}"
        );
    }
    // A replayed userinfo proof.
    let proof = key.proof("GET", USERINFO_URL, now, Some(token));
    assert_eq!(
        userinfo_with(&app, "DPoP", token, &[&proof]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        userinfo_with(&app, "DPoP", token, &[&proof]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn required_nonces_are_handed_out_and_checked() {
    let mut settings = settings();
    settings.dpop.require_nonce = true;
    let app = TestApp::with_settings(settings).await;
    let client = app.service().await;
    let key = DpopKey::es256();

    // §8: without a nonce, `use_dpop_nonce` and the nonce to use.
    let first =
        client_credentials(&app, &client, &[&key.proof("POST", TOKEN_URL, START, None)]).await;
    first.assert_error(400, "use_dpop_nonce");
    let nonce = first.header("dpop-nonce").unwrap().to_owned();

    let with_nonce = key.proof_with_nonce("POST", TOKEN_URL, START, &nonce);
    let ok = client_credentials(&app, &client, &[&with_nonce]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert!(
        ok.header("dpop-nonce").is_some(),
        "the next nonce comes along"
    );

    // A forged nonce, and one two periods old, are refused the same way.
    let forged = key.proof_with_nonce("POST", TOKEN_URL, START, &b64url([0u8; 45]));
    client_credentials(&app, &client, &[&forged])
        .await
        .assert_error(400, "use_dpop_nonce");
    app.clock.advance(2 * NONCE_PERIOD + 1);
    let now = app.clock.now();
    let old = key.proof_with_nonce("POST", TOKEN_URL, now, &nonce);
    client_credentials(&app, &client, &[&old])
        .await
        .assert_error(400, "use_dpop_nonce");
}

#[tokio::test]
async fn discovery_lists_the_proof_algorithms() {
    let app = TestApp::new().await;
    let metadata = app.get("/.well-known/openid-configuration").await.json();
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "RS256", "EdDSA"])
    );
}

#[tokio::test]
async fn a_client_registered_for_dpop_never_gets_a_bearer_token() {
    let app = TestApp::new().await;
    let client = app
        .client(valet_core::admin::NewClient {
            dpop_bound_access_tokens: true,
            ..service_client()
        })
        .await;
    let refused = client_credentials(&app, &client, &[]).await;
    refused.assert_error(400, "invalid_dpop_proof");
    assert!(
        refused.text().contains("must send a DPoP proof"),
        "{}",
        refused.text()
    );
    let key = DpopKey::es256();
    let bound =
        client_credentials(&app, &client, &[&key.proof("POST", TOKEN_URL, START, None)]).await;
    assert_eq!(bound.status, StatusCode::OK, "{}", bound.text());
    assert_eq!(bound.json()["token_type"], "DPoP");
    let record = app.admin().get_client(&client.id).await.unwrap();
    assert!(record.dpop_bound_access_tokens);
}

#[tokio::test]
async fn userinfo_asks_for_a_nonce_with_a_dpop_challenge() {
    let mut settings = settings();
    settings.dpop.require_nonce = true;
    let app = TestApp::with_settings(settings).await;
    let nonce = app.server.dpop_nonce(START).unwrap();
    let key = DpopKey::es256();
    let (_, tokens) = public_client_tokens_with(&app, &key, Some(&nonce)).await;
    let token = tokens["access_token"].as_str().unwrap();

    // RFC 9449 §9: 401, `WWW-Authenticate: DPoP error="use_dpop_nonce"`, the nonce.
    let proof = key.proof("GET", USERINFO_URL, START, Some(token));
    let asked = userinfo_with(&app, "DPoP", token, &[&proof]).await;
    assert_eq!(asked.status, StatusCode::UNAUTHORIZED);
    let challenge = asked.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let fresh = asked.header("dpop-nonce").unwrap().to_owned();

    let mut claims = json!({
        "jti": "userinfo-with-nonce", "htm": "GET", "htu": USERINFO_URL, "iat": START,
        "nonce": fresh,
    });
    claims["ath"] = json!(valet_jose::access_token_hash(token));
    let with_nonce = key.proof_with(&json!({}), &claims);
    let reply = userinfo_with(&app, "DPoP", token, &[&with_nonce]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.header("dpop-nonce").is_some());
}
