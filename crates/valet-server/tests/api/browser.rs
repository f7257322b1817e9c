//! Authorization code + PKCE through the login and consent pages, from the outside.

use axum::http::StatusCode;
use serde_json::Value;

use valet_core::admin::NewClient;

use valet_test_support::api::*;

fn openid_scope() -> &'static str {
    "openid profile email offline_access photos:read"
}

#[tokio::test]
async fn the_full_flow_issues_access_id_and_refresh_tokens() {
    let app = TestApp::new().await;
    let user_id = app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::default();

    let page = browser
        .get(&app, &authorize_path(&client.id, &pkce, openid_scope(), ""))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        page.text().contains("<label for=\"username\">"),
        "accessible labels"
    );
    assert!(page.text().contains("Photo App"));
    let csrf_cookie = page.header("set-cookie").unwrap();
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"),
        "{csrf_cookie}"
    );
    assert!(
        csrf_cookie.contains("Secure") && csrf_cookie.starts_with("__Host-"),
        "https issuer: {csrf_cookie}"
    );

    let body = login_form(&page, "alice", PASSWORD);
    let consent = browser.post(&app, "/login", &body).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    assert!(
        consent.text().contains("See your email address"),
        "scopes in plain words"
    );
    assert!(consent.text().contains(">Allow<") && consent.text().contains(">Deny<"));
    // The user the password was checked for (known from the sign-in, not read again).
    assert!(
        consent.text().contains("Signed in as alice"),
        "{}",
        consent.text()
    );
    assert!(browser.cookies.contains_key("__Host-valet-session"));
    let body = consent_form(&consent, "allow");
    let back = browser.post(&app, "/consent", &body).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    assert!(back.header("location").unwrap().starts_with(WEB_REDIRECT));
    let params = location_params(&back);
    assert_eq!(params["state"], "xyz state");
    assert_eq!(params["iss"], ISSUER);
    let code = &params["code"];
    assert_eq!(code.len(), 43, "256-bit code");

    let reply = redeem(&app, &client, code, &pkce.verifier).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let tokens = reply.json();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert!(refresh.starts_with("vrt_"));
    let (at_header, at_claims) = decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(at_header["typ"], "at+jwt");
    assert_eq!(at_claims["sub"], user_id.as_str());
    assert_eq!(
        at_claims["aud"], ISSUER,
        "no API audience registered: the token is for UserInfo"
    );
    let (id_header, id_claims) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_header["alg"], "RS256");
    assert_eq!(id_claims["iss"], ISSUER);
    assert_eq!(id_claims["sub"], user_id.as_str());
    assert_eq!(id_claims["aud"], client.id.as_str());
    assert_eq!(id_claims["azp"], client.id.as_str());
    assert_eq!(id_claims["nonce"], "n-0S6");
    assert_eq!(id_claims["auth_time"], START);
    assert_eq!(id_claims["amr"], serde_json::json!(["pwd"]));
    assert!(id_claims["sid"].as_str().is_some());
    assert_eq!(
        id_claims["at_hash"],
        valet_core::token::id_token::at_hash(tokens["access_token"].as_str().unwrap()).as_str()
    );

    let info = app
        .userinfo(Some(tokens["access_token"].as_str().unwrap()))
        .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text());
    let info = info.json();
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["email"], "alice@example.test");
    assert_eq!(info["email_verified"], true);
}

#[tokio::test]
async fn consent_is_remembered_and_prompt_none_works_with_a_session() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid", ""),
        "alice",
    )
    .await;
    // Signed in and consented: straight back with a code.
    let again = browser
        .get(
            &app,
            &authorize_path(&client.id, &pkce, "openid", "&prompt=none"),
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text());
    assert!(location_params(&again).contains_key("code"));
    // A scope not yet allowed needs consent, which prompt=none cannot ask for.
    let more = browser
        .get(
            &app,
            &authorize_path(&client.id, &pkce, "openid email", "&prompt=none"),
        )
        .await;
    assert_eq!(location_params(&more)["error"], "consent_required");
    // prompt=consent asks again.
    let ask = browser
        .get(
            &app,
            &authorize_path(&client.id, &pkce, "openid", "&prompt=consent"),
        )
        .await;
    assert!(ask.text().contains("name=\"decision\""));
    // On a session's request the user is read for the page.
    assert!(ask.text().contains("Signed in as alice"), "{}", ask.text());
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    let mut browser = Browser::default();
    let reply = browser.authorize(&app, &client, "&prompt=none").await;
    let params = location_params(&reply);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "xyz state");
    assert_eq!(params["iss"], ISSUER);
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_login() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid", ""),
        "alice",
    )
    .await;
    let login = browser
        .get(
            &app,
            &authorize_path(&client.id, &pkce, "openid", "&prompt=login"),
        )
        .await;
    assert!(login.text().contains("name=\"password\""));
    app.clock.advance(120);
    let fresh = browser
        .get(
            &app,
            &authorize_path(&client.id, &pkce, "openid", "&max_age=60"),
        )
        .await;
    assert!(fresh.text().contains("name=\"password\""));
    let ok = browser
        .get(
            &app,
            &authorize_path(&client.id, &pkce, "openid", "&max_age=600"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    // After a forced login, auth_time moves.
    let params = sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid", "&prompt=login"),
        "alice",
    )
    .await;
    let tokens = redeem(&app, &client, &params["code"], &pkce.verifier)
        .await
        .json();
    let (_, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"], START + 120);
}

#[tokio::test]
async fn skip_consent_goes_straight_back_after_login() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let page = browser.authorize(&app, &client, "").await;
    let body = login_form(&page, "alice", PASSWORD);
    let reply = browser.post(&app, "/login", &body).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(location_params(&reply).contains_key("code"));
}

#[tokio::test]
async fn deny_returns_access_denied() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = Browser::default();
    let page = browser.authorize(&app, &client, "").await;
    let body = login_form(&page, "alice", PASSWORD);
    let consent = browser.post(&app, "/login", &body).await;
    let body = consent_form(&consent, "deny");
    let reply = browser.post(&app, "/consent", &body).await;
    let params = location_params(&reply);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["iss"], ISSUER);
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let mut answers = Vec::new();
    for (user, password) in [("alice", "wrong password!"), ("nobody", PASSWORD)] {
        let mut browser = Browser::default();
        let page = browser.authorize(&app, &client, "").await;
        let body = login_form(&page, user, password);
        let reply = browser.post(&app, "/login", &body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.text().contains("Incorrect username or password."));
        assert!(!browser.cookies.keys().any(|k| k.contains("session")));
        let text = reply.text();
        let nonce = text
            .split("nonce=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        answers.push(
            text.replace(&form_field(&text, "interaction").unwrap(), "")
                .replace(&form_field(&text, "csrf").unwrap(), "")
                .replace(&nonce, ""),
        );
    }
    // Same page but for the typed login name.
    assert_eq!(
        answers[0].replace("alice", "X"),
        answers[1].replace("nobody", "X")
    );
}

#[tokio::test]
async fn repeated_failures_are_throttled_while_others_sign_in() {
    let app = TestApp::new().await;
    app.user("alice").await;
    app.user("bob").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut attacker = Browser::default();
    let mut last = None;
    for _ in 0..6 {
        let page = attacker.authorize(&app, &client, "").await;
        let body = login_form(&page, "alice", "guess-guess");
        last = Some(attacker.post(&app, "/login", &body).await);
    }
    let last = last.unwrap();
    assert_eq!(
        last.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        last.text()
    );
    assert!(last.text().contains("Too many sign-in attempts"));
    let retry_after: i64 = last.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    // Bob is not affected.
    let mut bob = Browser::default();
    let params = sign_in_and_allow(
        &app,
        &mut bob,
        &authorize_path(&client.id, &Pkce::new(), "openid", ""),
        "bob",
    )
    .await;
    assert!(params.contains_key("code"));
}

/// A flood of sign-ins beyond the hasher's queue is refused at once with a
/// clear 503 page and `Retry-After`; the form keeps working afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_ins_beyond_the_password_queue_are_shed_with_503() {
    let mut settings = settings();
    settings.password_hash_queue = 0;
    let app = std::sync::Arc::new(TestApp::with_settings(settings).await);
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let page = browser.authorize(&app, &client, "").await;
    let attempts: Vec<_> = (0..40)
        .map(|i| {
            let app = std::sync::Arc::clone(&app);
            let mut browser = browser.clone();
            let body = login_form(&page, &format!("nobody{i}"), "guess-guess");
            // Each from its own address, so the sign-in throttle stays out of it.
            let peer = format!("198.51.100.{}:50000", i + 1);
            tokio::spawn(async move { browser.post_from(&app, &peer, "/login", &[], &body).await })
        })
        .collect();
    let mut shed = 0;
    for attempt in attempts {
        let reply = attempt.await.unwrap();
        match reply.status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                shed += 1;
                assert!(
                    reply
                        .text()
                        .contains("Too many people are signing in right now"),
                    "{}",
                    reply.text()
                );
                let retry_after: i64 = reply.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=60).contains(&retry_after), "{retry_after}");
                // The same form, to try again.
                assert!(form_field(&reply.text(), "interaction").is_some());
            }
            other => panic!("{other}: {}", reply.text()),
        }
    }
    assert!(shed > 0, "no sign-in was shed");
    // Once the flood is over, signing in works.
    let params = sign_in_and_allow(
        &app,
        &mut Browser::default(),
        &authorize_path(&client.id, &Pkce::new(), "openid", ""),
        "alice",
    )
    .await;
    assert!(params.contains_key("code"));
}

#[tokio::test]
async fn login_form_without_the_browser_bound_csrf_value_is_refused() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    // The attacker starts a flow and gets a form...
    let mut attacker = Browser::default();
    let page = attacker.authorize(&app, &client, "").await;
    let body = login_form(&page, "alice", PASSWORD);
    // ...and makes the victim's browser (without that cookie) post it.
    let mut victim = Browser::default();
    let reply = victim.post(&app, "/login", &body).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(!victim.cookies.keys().any(|k| k.contains("session")));
    // A victim with a CSRF cookie of its own does not match either.
    victim.authorize(&app, &client, "").await;
    assert_eq!(
        victim.post(&app, "/login", &body).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn untrusted_client_or_redirect_uri_shows_an_error_page_and_never_redirects() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    for path in [
        authorize_path("unknown-client", &pkce, "openid", ""),
        authorize_path(&client.id, &pkce, "openid", "").replace(
            &encode(WEB_REDIRECT),
            &encode("https://evil.example/callback"),
        ),
        authorize_path(&client.id, &pkce, "openid", "").replace(
            &encode(WEB_REDIRECT),
            &encode("https://app.example.test/callback/../x"),
        ),
        format!(
            "{}&client_id=other",
            authorize_path(&client.id, &pkce, "openid", "")
        ),
    ] {
        let reply = browser.get(&app, &path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(reply.header("location").is_none());
        assert!(
            reply
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
    }
}

#[tokio::test]
async fn bad_requests_are_redirected_with_the_error_state_and_iss() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let base = authorize_path(&client.id, &pkce, "openid", "");
    let cases = [
        (
            base.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            base.replace(
                "&code_challenge_method=S256",
                "&code_challenge_method=plain",
            ),
            "invalid_request",
        ),
        (
            base.replace(&format!("&code_challenge={}", pkce.challenge), ""),
            "invalid_request",
        ),
        (
            base.replace("scope=openid", "scope=openid%20admin"),
            "invalid_scope",
        ),
        (
            format!("{base}&resource=https%3A%2F%2Fevil.example"),
            "invalid_target",
        ),
        (format!("{base}&prompt=none%20login"), "invalid_request"),
    ];
    for (path, error) in cases {
        let reply = browser.get(&app, &path).await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{path}: {}",
            reply.text()
        );
        let params = location_params(&reply);
        assert_eq!(params["error"], error, "{path}");
        assert_eq!(params["state"], "xyz state");
        assert_eq!(params["iss"], ISSUER);
    }
}

#[tokio::test]
async fn pkce_and_code_binding_are_enforced_at_the_token_endpoint() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let other = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let path = authorize_path(&client.id, &pkce, "openid", "");

    let code = sign_in_and_allow(&app, &mut browser, &path, "alice").await["code"].clone();
    redeem(&app, &client, &code, &Pkce::new().verifier)
        .await
        .assert_error(400, "invalid_grant");

    let code = sign_in_and_allow(&app, &mut browser, &path, "alice").await["code"].clone();
    app.token(
        &client,
        &format!(
            "grant_type=authorization_code&code={}&redirect_uri={}",
            encode(&code),
            encode(WEB_REDIRECT)
        ),
    )
    .await
    .assert_error(400, "invalid_request");

    let code = sign_in_and_allow(&app, &mut browser, &path, "alice").await["code"].clone();
    redeem(&app, &other, &code, &pkce.verifier)
        .await
        .assert_error(400, "invalid_grant");
    // ...and another client cannot burn it: its own client still redeems it.
    assert_eq!(
        redeem(&app, &client, &code, &pkce.verifier).await.status,
        StatusCode::OK
    );

    let code = sign_in_and_allow(&app, &mut browser, &path, "alice").await["code"].clone();
    app.token(
        &client,
        &format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            encode(&code),
            encode("https://app.example.test/other"),
            pkce.verifier
        ),
    )
    .await
    .assert_error(400, "invalid_grant");

    let code = sign_in_and_allow(&app, &mut browser, &path, "alice").await["code"].clone();
    app.clock.advance(61);
    redeem(&app, &client, &code, &pkce.verifier)
        .await
        .assert_error(400, "invalid_grant");
}

/// A request that fails the checks (wrong `code_verifier`, wrong
/// `redirect_uri`) does not consume the code: someone who saw the code cannot
/// burn it, and the legitimate request still gets its tokens. A replay of the
/// consumed code still revokes the grant.
#[tokio::test]
async fn a_failed_check_does_not_burn_the_code_but_a_replay_still_revokes() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let path = authorize_path(&client.id, &pkce, "openid offline_access", "");
    let code = sign_in_and_allow(&app, &mut browser, &path, "alice").await["code"].clone();

    let wrong_verifier = redeem(&app, &client, &code, &Pkce::new().verifier).await;
    wrong_verifier.assert_error(400, "invalid_grant");
    assert_eq!(
        wrong_verifier.json()["error_description"],
        "code_verifier does not match the code_challenge"
    );
    let wrong_redirect = app
        .token(
            &client,
            &format!(
                "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
                encode(&code),
                encode("https://app.example.test/other"),
                pkce.verifier
            ),
        )
        .await;
    wrong_redirect.assert_error(400, "invalid_grant");
    assert_eq!(
        wrong_redirect.json()["error_description"],
        "redirect_uri does not match the authorization request"
    );

    let tokens = redeem(&app, &client, &code, &pkce.verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let tokens = tokens.json();

    let replay = redeem(&app, &client, &code, &pkce.verifier).await;
    replay.assert_error(400, "invalid_grant");
    assert_eq!(
        replay.json()["error_description"],
        "the authorization code was already used"
    );
    // The replay revoked what the code had issued.
    app.token(
        &client,
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            tokens["refresh_token"].as_str().unwrap()
        ),
    )
    .await
    .assert_error(400, "invalid_grant");
    let resource_server = app
        .client(NewClient {
            introspect_any: true,
            ..service_client()
        })
        .await;
    assert_eq!(
        app.introspect(&resource_server, tokens["access_token"].as_str().unwrap())
            .await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn a_replayed_code_revokes_what_it_issued() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid offline_access", ""),
        "alice",
    )
    .await;
    let tokens = redeem(&app, &client, &params["code"], &pkce.verifier)
        .await
        .json();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.introspect(&client, access).await["active"], true);

    let replay = redeem(&app, &client, &params["code"], &pkce.verifier).await;
    replay.assert_error(400, "invalid_grant");
    assert_eq!(app.introspect(&client, access).await["active"], false);
    app.token(
        &client,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await
    .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn public_clients_use_pkce_without_a_secret() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let spa = app
        .web_client(|c| {
            c.public = true;
            c.skip_consent = true;
        })
        .await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&spa.id, &pkce, "openid offline_access", ""),
        "alice",
    )
    .await;
    let body = format!(
        "grant_type=authorization_code&client_id={}&code={}&redirect_uri={}&code_verifier={}",
        spa.id,
        encode(&params["code"]),
        encode(WEB_REDIRECT),
        pkce.verifier
    );
    let reply = app.post("/token", None, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let body = format!(
        "grant_type=refresh_token&client_id={}&refresh_token={refresh}",
        spa.id
    );
    assert_eq!(app.post("/token", None, &body).await.status, StatusCode::OK);
}

#[tokio::test]
async fn form_post_answers_with_an_auto_submitting_form() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|c| c.skip_consent = true).await;
    let mut browser = Browser::default();
    let path = authorize_path(
        &client.id,
        &Pkce::new(),
        "openid",
        "&response_mode=form_post",
    );
    let page = browser.get(&app, &path).await;
    let body = login_form(&page, "alice", PASSWORD);
    let reply = browser.post(&app, "/login", &body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let html = reply.text();
    assert!(
        html.contains(&format!(
            "action=\"{}\"",
            WEB_REDIRECT.replace('/', "&#x2f;")
        )) || html.contains(&format!("action=\"{WEB_REDIRECT}\"")),
        "{html}"
    );
    assert!(form_field(&html, "code").is_some());
    assert_eq!(form_field(&html, "iss").as_deref(), Some(ISSUER));
    let csp = reply.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
}

#[tokio::test]
async fn userinfo_requires_a_live_openid_token() {
    let app = TestApp::new().await;
    let service = app.service().await;
    let reply = app.userinfo(None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"valet\"")
    );
    let reply = app.userinfo(Some("garbage")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // A service token has no openid scope.
    let token = app.access_token(&service).await;
    let reply = app.userinfo(Some(&token)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
}

#[tokio::test]
async fn discovery_lists_what_openid_connect_requires() {
    let app = TestApp::new().await;
    let body: Value = app.get("/.well-known/openid-configuration").await.json();
    assert_eq!(
        body["authorization_endpoint"],
        format!("{ISSUER}/authorize")
    );
    assert_eq!(body["userinfo_endpoint"], format!("{ISSUER}/userinfo"));
    assert_eq!(body["end_session_endpoint"], format!("{ISSUER}/logout"));
    assert_eq!(
        body["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        body["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert!(
        body["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("RS256"))
    );
    assert_eq!(
        body["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(body["authorization_response_iss_parameter_supported"], true);
    assert!(
        body["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("openid"))
    );
    assert!(
        body["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("email"))
    );
}

/// The back button after consent: the browser posts the completed login form
/// again within the interaction lifetime. Consent is remembered by then, but
/// the request was completed: no second code, no new sign-in.
#[tokio::test]
async fn a_login_form_completed_through_consent_cannot_complete_again() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let page = browser
        .get(&app, &authorize_path(&client.id, &pkce, "openid", ""))
        .await;
    let login = login_form(&page, "alice", PASSWORD);
    let consent = browser.post(&app, "/login", &login).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    let redirect = browser
        .post(&app, "/consent", &consent_form(&consent, "allow"))
        .await;
    assert_eq!(
        redirect.status,
        StatusCode::SEE_OTHER,
        "{}",
        redirect.text()
    );
    assert!(location_params(&redirect).contains_key("code"));
    let cookies = browser.cookies.clone();
    let sign_ins = async || {
        app.server.flush_audit().await.unwrap();
        app.store
            .audit_events(&valet_core::audit::AuditFilter {
                limit: 1_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .filter(|e| e.event.as_str() == "login.succeeded")
            .count()
    };
    assert_eq!(sign_ins().await, 1);

    app.clock.advance(5);
    let again = browser.post(&app, "/login", &login).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text());
    assert!(again.text().contains("Request expired"));
    assert!(again.header("location").is_none());
    // Not signed in again: the browser keeps the session it had.
    assert_eq!(browser.cookies, cookies);
    // The same from a browser that kept no session.
    let mut copy = browser.clone();
    copy.cookies.retain(|name, _| !name.contains("session"));
    let again = copy.post(&app, "/login", &login).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text());
    assert!(!copy.cookies.keys().any(|name| name.contains("session")));
    // Refused before the password was checked: no second sign-in.
    assert_eq!(sign_ins().await, 1);
}
