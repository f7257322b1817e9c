//! RFC 8414 metadata and the JWKS.

use valet_test_support::api::*;

#[tokio::test]
async fn metadata_lists_what_is_implemented_at_both_paths() {
    let app = TestApp::new().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 200);
        let body = reply.json();
        assert_eq!(body["issuer"], ISSUER);
        assert_eq!(body["token_endpoint"], format!("{ISSUER}/token"));
        assert_eq!(body["jwks_uri"], format!("{ISSUER}/jwks.json"));
        assert_eq!(
            body["introspection_endpoint"],
            format!("{ISSUER}/introspect")
        );
        assert_eq!(body["revocation_endpoint"], format!("{ISSUER}/revoke"));
        assert_eq!(
            body["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
        assert_eq!(
            body["token_endpoint_auth_methods_supported"],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "client_secret_jwt",
                "none"
            ])
        );
        assert!(
            body.get("registration_endpoint").is_none(),
            "not implemented"
        );
    }
}

#[tokio::test]
async fn jwks_has_public_members_only_and_a_bounded_cache_lifetime() {
    let app = TestApp::new().await;
    let reply = app.get("/jwks.json").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // A quarter of the one-hour publication lead.
    assert_eq!(reply.header("cache-control"), Some("public, max-age=900"));
    let keys = reply.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2);
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "RS256"]);
    for key in &keys {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} published"
            );
        }
    }
}

#[tokio::test]
async fn health_readiness_and_unknown_paths() {
    let app = TestApp::new().await;
    assert_eq!(app.get("/healthz").await.status, 200);
    assert_eq!(app.get("/readyz").await.status, 200);
    let reply = app.get("/nope").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    // An https issuer: browsers must not fall back to http (RFC 6797).
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}

/// Discovery advertises only what is served: the `acr` claim and its values
/// (carried by ID tokens only), no request objects.
#[tokio::test]
async fn metadata_claims_only_what_is_issued() {
    let app = TestApp::new().await;
    let body = app.get("/.well-known/openid-configuration").await.json();
    let claims: Vec<&str> = body["claims_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(claims.contains(&"acr"), "{claims:?}");
    assert_eq!(
        body["acr_values_supported"],
        serde_json::json!(["urn:valet:acr:pwd", "urn:valet:acr:mfa"])
    );
    assert_eq!(body["request_parameter_supported"], true);
    assert_eq!(body["request_uri_parameter_supported"], false);

    // The ID token carries `acr`, the access token does not.
    let (_, _, tokens) = alice_signed_in(&app, "openid").await;
    let (_, claims) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "urn:valet:acr:pwd");
    let (_, claims) = decode_jwt(tokens["access_token"].as_str().unwrap());
    assert!(!claims.contains_key("acr"), "{claims:?}");
}

/// OIDC Core §6: `request_uri` is refused with its own error code, sent back to
/// the client, never silently ignored; an unsigned request object (`alg: none`)
/// is refused on a page, since the redirect URI inside it is not trusted (the
/// request objects Valet accepts are tested in `jar`).
#[tokio::test]
async fn request_uri_and_unsigned_request_objects_are_refused_not_ignored() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    let path = authorize_path(
        &client.id,
        &Pkce::new(),
        "openid",
        "&request_uri=https%3A%2F%2Fapp.example.test%2Freq",
    );
    let reply = app.get(&path).await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    assert!(reply.header("location").unwrap().starts_with(WEB_REDIRECT));
    let params = location_params(&reply);
    assert_eq!(params["error"], "request_uri_not_supported");
    assert_eq!(params["state"], "xyz state");
    assert_eq!(params["iss"], ISSUER);
    assert!(!params.contains_key("code"));

    let path = authorize_path(
        &client.id,
        &Pkce::new(),
        "openid",
        "&request=eyJhbGciOiJub25lIn0.e30.",
    );
    let reply = app.get(&path).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.header("location").is_none());
    assert!(
        reply.text().contains("Invalid request object"),
        "{}",
        reply.text()
    );
}

/// An issuer with a path is served under that path, where discovery says its
/// endpoints are; RFC 8414 §3.1 metadata is also at the host's well-known
/// location with the path appended.
#[tokio::test]
async fn a_path_issuer_is_served_under_its_path() {
    let issuer = "https://id.example.test/valet";
    let app = TestApp::with_settings(valet_core::Settings::new(issuer)).await;
    let local = |url: &str| {
        url.strip_prefix("https://id.example.test")
            .unwrap()
            .to_owned()
    };

    let body = app.get("/valet/.well-known/openid-configuration").await;
    assert_eq!(body.status, 200, "{}", body.text());
    let body = body.json();
    assert_eq!(body["issuer"], issuer);
    assert_eq!(body["token_endpoint"], format!("{issuer}/token"));
    let rfc8414 = app
        .get("/.well-known/oauth-authorization-server/valet")
        .await;
    assert_eq!(rfc8414.status, 200);
    assert_eq!(rfc8414.json(), body);

    let jwks = app.get(&local(body["jwks_uri"].as_str().unwrap())).await;
    assert_eq!(jwks.status, 200);
    let service = app.service().await;
    let token_path = local(body["token_endpoint"].as_str().unwrap());
    let reply = app
        .post(&token_path, Some(&service), "grant_type=client_credentials")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let introspected = app
        .post(
            &local(body["introspection_endpoint"].as_str().unwrap()),
            Some(&service),
            &format!("token={token}"),
        )
        .await
        .json();
    assert_eq!(introspected["active"], true);
    let (_, claims) = decode_jwt(&token);
    let list = claims["status"]["status_list"]["uri"].as_str().unwrap();
    assert!(
        list.starts_with(&format!("{issuer}/statuslists/")),
        "{list}"
    );
    assert_eq!(app.get(&local(list)).await.status, 200);

    // The login page posts to the login endpoint under the path.
    let client = app.web_client(|_| {}).await;
    let authorize = local(body["authorization_endpoint"].as_str().unwrap());
    let path = authorize_path(&client.id, &Pkce::new(), "openid", "").replacen(
        "/authorize",
        &authorize,
        1,
    );
    let page = app.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text()
            .contains("action=\"https:&#x2f;&#x2f;id.example.test&#x2f;valet&#x2f;login\""),
        "{}",
        page.text()
    );

    // Not at the root any more; probes still are.
    for path in ["/token", "/.well-known/openid-configuration", "/jwks.json"] {
        assert_eq!(app.get(path).await.status, 404, "{path}");
    }
    assert_eq!(app.get("/healthz").await.status, 200);
}

/// Redirect URIs match exactly, so a `*` would be taken literally: it is
/// refused at registration with a message saying so.
#[tokio::test]
async fn a_wildcard_redirect_uri_is_refused_at_registration() {
    let app = TestApp::new().await;
    for uri in ["https://*.example.test/cb", "https://app.example.test/*"] {
        let refused = app
            .admin()
            .register_client(valet_core::admin::NewClient {
                name: "wild".into(),
                redirect_uris: vec![uri.into()],
                ..Default::default()
            })
            .await
            .err()
            .unwrap_or_else(|| panic!("{uri} was registered"));
        assert_eq!(
            refused.to_string(),
            format!(
                "redirect_uris[0]: must not contain a wildcard (*): redirect URIs are matched exactly; register each URI (loopback ports are matched for any port)"
            )
        );
    }
    assert!(app.store.list_clients().await.unwrap().is_empty());
}
