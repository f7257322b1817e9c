//! RFC 8414 metadata and the JWKS.

use crate::common::*;

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
            serde_json::json!(["authorization_code", "client_credentials", "refresh_token"])
        );
        assert_eq!(
            body["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
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
