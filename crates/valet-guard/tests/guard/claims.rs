//! What a verified token carries, and the scope and claim requirements.

use serde_json::json;
use valet_guard::TokenError;

use super::support::*;

#[tokio::test]
async fn a_verified_token_carries_its_claims() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let claims = issuer.claims();
    let token = guard.verify(&issuer.token()).await.unwrap();
    assert_eq!(token.subject(), "alice");
    assert_eq!(token.client_id(), "shop-frontend");
    assert_eq!(token.scopes(), ["orders:read", "profile"]);
    assert!(token.has_scope("orders:read"));
    assert!(!token.has_scope("orders:write"));
    assert_eq!(token.audiences(), [AUDIENCE]);
    assert_eq!(token.jti(), Some("jti-1"));
    assert_eq!(token.expires_at(), claims["exp"].as_i64().unwrap());
    assert_eq!(token.issued_at(), claims["iat"].as_i64());
    assert_eq!(token.claims()["status"], claims["status"]);
}

#[tokio::test]
async fn required_claims_must_be_strings() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    for name in ["sub", "client_id"] {
        let token = issuer.token_with(|c| {
            c.as_object_mut().unwrap().remove(name);
        });
        assert_eq!(
            guard.verify(&token).await.unwrap_err(),
            TokenError::MissingClaim(name)
        );
        let token = issuer.token_with(|c| c[name] = json!(42));
        assert_eq!(
            guard.verify(&token).await.unwrap_err(),
            TokenError::InvalidClaim(name)
        );
    }
    let token = issuer.token_with(|c| c["scope"] = json!(["orders:read"]));
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::InvalidClaim("scope")
    );
}

#[tokio::test]
async fn scopes_from_the_configuration_and_per_call() {
    let issuer = FakeIssuer::start().await;
    let plain = issuer.guard().await;
    let token = issuer.token();
    assert!(
        plain
            .verify_with_scopes(&token, &["orders:read"])
            .await
            .is_ok()
    );
    assert_eq!(
        plain
            .verify_with_scopes(&token, &["orders:read", "orders:write"])
            .await
            .unwrap_err(),
        TokenError::InsufficientScope {
            required: vec!["orders:read".into(), "orders:write".into()]
        }
    );
    let strict = issuer
        .guard_with(issuer.config().required_scopes(["profile"]))
        .await;
    assert!(strict.verify(&token).await.is_ok());
    assert_eq!(
        strict
            .verify_with_scopes(&token, &["orders:write"])
            .await
            .unwrap_err(),
        TokenError::InsufficientScope {
            required: vec!["profile".into(), "orders:write".into()]
        }
    );
    let unscoped = issuer.token_with(|c| {
        c.as_object_mut().unwrap().remove("scope");
    });
    assert_eq!(
        strict.verify(&unscoped).await.unwrap_err(),
        TokenError::InsufficientScope {
            required: vec!["profile".into()]
        }
    );
    assert!(plain.verify(&unscoped).await.unwrap().scopes().is_empty());
}

/// A revoked token is `invalid_token` whatever its scopes: the status check comes first.
#[tokio::test]
async fn revocation_is_reported_before_scopes() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    issuer.revoke("0", 5, false);
    let token = issuer.token_at("0", 5);
    assert_eq!(
        guard
            .verify_with_scopes(&token, &["admin"])
            .await
            .unwrap_err(),
        TokenError::Revoked
    );
}
