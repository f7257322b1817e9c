//! Discovery, the JWKS cache and the guard's lifetime.

use std::sync::atomic::Ordering;
use std::time::Duration;

use valet_guard::{Guard, GuardError};
use valet_jose::{SigningKey, b64url};

use super::support::*;

#[tokio::test]
async fn issuer_down_cached_keys_still_verify() {
    let issuer = FakeIssuer::start().await;
    issuer.state.jwks_max_age.store(1, Ordering::SeqCst);
    let guard = issuer
        .guard_with(
            issuer
                .config()
                .jwks_refresh_bounds(Duration::from_secs(1), Duration::from_secs(3600)),
        )
        .await;
    guard.verify(&issuer.token()).await.unwrap();
    issuer.set_down(true);
    let fetches = issuer.jwks_fetches();
    // Let background refreshes fail (max-age 1 s after the next one).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(issuer.jwks_fetches() > fetches, "refresh attempts continue");
    // The status list is cached and fresh too, so the token still verifies.
    let token = guard.verify(&issuer.token()).await.unwrap();
    assert_eq!(token.subject(), "alice");
}

/// The JWKS is refetched when its `Cache-Control: max-age` runs out, without any token
/// asking: a key published meanwhile is known before the first token signed by it.
#[tokio::test]
async fn cache_control_max_age_is_honoured() {
    let issuer = FakeIssuer::start().await;
    issuer.state.jwks_max_age.store(1, Ordering::SeqCst);
    let guard = issuer
        .guard_with(
            issuer
                .config()
                .jwks_refresh_bounds(Duration::from_secs(1), Duration::from_secs(3600)),
        )
        .await;
    assert_eq!(issuer.jwks_fetches(), 1);
    let next = Key::es256();
    issuer
        .state
        .published
        .lock()
        .unwrap()
        .push(next.signing.public_jwk().clone());
    wait_until(Duration::from_secs(3), || issuer.jwks_fetches() >= 2).await;
    // A long max-age now: the refreshes stop.
    issuer.state.jwks_max_age.store(3600, Ordering::SeqCst);
    wait_until(Duration::from_secs(3), || issuer.jwks_fetches() >= 3).await;
    let settled = issuer.jwks_fetches();
    let token = next.signing.sign_jwt("at+jwt", &issuer.claims()).unwrap();
    guard.verify(&token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(issuer.jwks_fetches(), settled, "no refetch for a known kid");
}

/// With the default bounds, a tiny max-age is raised to 30 s: no refetch within a second.
#[tokio::test]
async fn max_age_is_clamped_by_the_default_bounds() {
    let issuer = FakeIssuer::start().await;
    issuer.state.jwks_max_age.store(0, Ordering::SeqCst);
    let _guard = issuer.guard().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(issuer.jwks_fetches(), 1);
}

/// A key removed from the JWKS (retired, or compromised) stops verifying at the next
/// refresh.
#[tokio::test]
async fn a_removed_key_stops_verifying() {
    let issuer = FakeIssuer::start().await;
    issuer.state.jwks_max_age.store(1, Ordering::SeqCst);
    let guard = issuer
        .guard_with(
            issuer
                .config()
                .jwks_refresh_bounds(Duration::from_secs(1), Duration::from_secs(3600)),
        )
        .await;
    let token = issuer.token();
    guard.verify(&token).await.unwrap();
    let (other, _) = SigningKey::generate(valet_jose::Algorithm::Es256).unwrap();
    *issuer.state.published.lock().unwrap() = vec![other.public_jwk().clone()];
    let fetches = issuer.jwks_fetches();
    wait_until(Duration::from_secs(3), || issuer.jwks_fetches() > fetches).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        valet_guard::TokenError::UnknownKey
    );
}

#[tokio::test]
async fn metadata_must_name_the_configured_issuer() {
    let issuer = FakeIssuer::start().await;
    *issuer.state.metadata_issuer.lock().unwrap() = Some(format!("{}/", issuer.url));
    let error = Guard::new(issuer.config().build().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, GuardError::IssuerMismatch { .. }),
        "{error}"
    );
    assert_eq!(issuer.jwks_fetches(), 0);
}

#[tokio::test]
async fn discovery_falls_back_to_openid_configuration() {
    let issuer = FakeIssuer::start().await;
    issuer
        .state
        .authorization_server_metadata
        .store(false, Ordering::SeqCst);
    let guard = issuer.guard().await;
    assert_eq!(issuer.state.metadata_fetches.load(Ordering::SeqCst), 1);
    guard.verify(&issuer.token()).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_issuer_fails_start_up() {
    let issuer = FakeIssuer::start().await;
    issuer.set_down(true);
    let error = Guard::new(issuer.config().build().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, GuardError::Discovery { .. }), "{error}");
    issuer.set_down(false);
    issuer.state.published.lock().unwrap().clear();
    // An empty JWKS is a working guard that refuses everything.
    let guard = issuer.guard().await;
    assert_eq!(
        guard.verify(&issuer.token()).await.unwrap_err(),
        valet_guard::TokenError::UnknownKey
    );
}

/// Background tasks (here: the SSE subscription and the JWKS refresh) live as long as
/// some clone of the guard, and stop with the last one.
#[tokio::test]
async fn dropping_the_last_guard_stops_background_tasks() {
    let issuer = FakeIssuer::start().await;
    issuer.state.jwks_max_age.store(1, Ordering::SeqCst);
    let guard = issuer
        .guard_with(
            issuer
                .config()
                .jwks_refresh_bounds(Duration::from_secs(1), Duration::from_secs(3600)),
        )
        .await;
    guard.verify(&issuer.token()).await.unwrap();
    issuer.wait_for_streams(1).await;
    let clone = guard.clone();
    drop(guard);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(issuer.state.sse_open.load(Ordering::SeqCst), 1);
    clone.verify(&issuer.token()).await.unwrap();
    drop(clone);
    issuer.wait_for_streams(0).await;
    let jwks = issuer.jwks_fetches();
    let lists = issuer.list_fetches();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(issuer.jwks_fetches(), jwks);
    assert_eq!(issuer.list_fetches(), lists);
}

#[test]
fn guards_are_send_sync_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Guard>();
    assert_traits::<valet_guard::VerifiedToken>();
}

#[tokio::test]
async fn eddsa_tokens_verify_and_keep_to_their_key() {
    let issuer = FakeIssuer::start().await;
    let (ed, ed_der) = SigningKey::generate(valet_jose::Algorithm::EdDsa).unwrap();
    assert_eq!(ed.public_jwk()["kty"], "OKP");
    assert_eq!(ed.public_jwk()["crv"], "Ed25519");
    issuer
        .state
        .published
        .lock()
        .unwrap()
        .push(ed.public_jwk().clone());
    let guard = issuer.guard().await;
    let token = ed.sign_jwt("at+jwt", &issuer.claims()).unwrap();
    assert!(token.starts_with(&b64url(format!(
        r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}"}}"#,
        ed.kid()
    ))));
    let verified = guard.verify(&token).await.unwrap();
    assert_eq!(verified.subject(), "alice");

    // alg EdDSA, but the kid names the published ES256 key: refused before any signature
    // check, whatever key signed it.
    let posing = SigningKey::from_der(
        valet_jose::Algorithm::EdDsa,
        issuer.state.signer.kid(),
        ed_der.as_bytes(),
    )
    .unwrap();
    let forged = posing.sign_jwt("at+jwt", &issuer.claims()).unwrap();
    assert_eq!(
        guard.verify(&forged).await.unwrap_err(),
        valet_guard::TokenError::AlgorithmMismatch
    );
    // And the reverse: ES256 in the header, the Ed25519 key's kid.
    let forged = issuer
        .state
        .signer
        .renamed(ed.kid())
        .sign_jwt("at+jwt", &issuer.claims())
        .unwrap();
    assert_eq!(
        guard.verify(&forged).await.unwrap_err(),
        valet_guard::TokenError::AlgorithmMismatch
    );
}
