//! The token status list: fetch and cache, revocation by push (SSE) and by ttl polling,
//! the failure policy, and lists or references that must be refused.

use std::time::{Duration, Instant};

use serde_json::json;
use valet_guard::{StatusPolicy, TokenError};

use super::support::*;

fn list(ttl: u64) -> FakeList {
    FakeList {
        bytes: vec![0; 128],
        ttl,
        exp_in: 86_400,
    }
}

#[tokio::test]
async fn valid_index_accepted_revoked_index_refused() {
    let issuer = FakeIssuer::start().await;
    issuer.revoke("0", 9, false);
    let guard = issuer.guard().await;
    assert!(guard.verify(&issuer.token_at("0", 8)).await.is_ok());
    assert_eq!(
        guard.verify(&issuer.token_at("0", 9)).await.unwrap_err(),
        TokenError::Revoked
    );
    assert!(guard.verify(&issuer.token_at("0", 10)).await.is_ok());
    // One fetch, with the status list media type, serves every check.
    assert_eq!(issuer.list_fetches(), 1);
    assert_eq!(
        issuer.state.list_accept.lock().unwrap().as_deref(),
        Some("application/statuslist+jwt")
    );
}

#[tokio::test]
async fn an_index_beyond_the_list_is_not_valid() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    assert!(guard.verify(&issuer.token_at("0", 1023)).await.is_ok());
    assert_eq!(
        guard.verify(&issuer.token_at("0", 1024)).await.unwrap_err(),
        TokenError::StatusIndexOutOfRange
    );
}

/// A revocation notice on the feed makes the guard refetch the list at once.
#[tokio::test]
async fn an_sse_notice_triggers_a_refetch_well_under_a_second() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let token = issuer.token_at("0", 3);
    guard.verify(&token).await.unwrap();
    let started = Instant::now();
    issuer.revoke("0", 3, true);
    loop {
        match guard.verify(&token).await {
            Err(TokenError::Revoked) => break,
            Ok(_) => {
                assert!(
                    started.elapsed() < Duration::from_millis(500),
                    "not revoked in 500 ms"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    let elapsed = started.elapsed();
    println!("revocation reached the guard in {elapsed:?}");
    assert!(elapsed < Duration::from_millis(500));
    assert_eq!(issuer.list_fetches(), 2);
}

/// The notice only says "refetch": a forged notice with no change in the signed list
/// revokes nothing; notices for lists outside the issuer are ignored.
#[tokio::test]
async fn notices_are_hints_not_verdicts() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let token = issuer.token_at("0", 4);
    guard.verify(&token).await.unwrap();
    issuer.announce(
        "revoked",
        &json!({"uri": issuer.list_uri("0"), "idx": 4}).to_string(),
    );
    wait_until(Duration::from_secs(2), || issuer.list_fetches() == 2).await;
    assert!(guard.verify(&token).await.is_ok());
    issuer.announce(
        "revoked",
        &json!({"uri": "http://evil.example/statuslists/0", "idx": 4}).to_string(),
    );
    issuer.announce("revoked", "not json");
    issuer.announce("other", &json!({"uri": issuer.list_uri("0")}).to_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(issuer.list_fetches(), 2);
    assert!(guard.verify(&token).await.is_ok());
}

/// With the feed gone, the list is still refetched at its `ttl`, and the guard keeps
/// trying to resubscribe.
#[tokio::test]
async fn with_the_feed_dropped_ttl_polling_still_revokes() {
    let issuer = FakeIssuer::start().await;
    issuer.set_list("1", list(1));
    let guard = issuer.guard().await;
    let token = issuer.token_at("1", 7);
    guard.verify(&token).await.unwrap();
    issuer.drop_event_streams(true);
    issuer.wait_for_streams(0).await;
    let started = Instant::now();
    issuer.revoke("1", 7, true);
    loop {
        match guard.verify(&token).await {
            Err(TokenError::Revoked) => break,
            Ok(_) => {
                assert!(
                    started.elapsed() < Duration::from_secs(4),
                    "not revoked by polling"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    println!("revocation by ttl polling took {:?}", started.elapsed());
    // The feed comes back: the guard resubscribes within its backoff (≤ 5 s).
    issuer.drop_event_streams(false);
    issuer.wait_for_streams(1).await;
}

#[tokio::test]
async fn issuer_down_a_fresh_cached_list_still_serves() {
    let issuer = FakeIssuer::start().await;
    issuer.set_list("1", list(1));
    issuer.revoke("1", 2, false);
    let guard = issuer.guard().await;
    assert!(guard.verify(&issuer.token_at("1", 1)).await.is_ok());
    issuer.set_down(true);
    // ttl polls fail meanwhile; the list is 1.5 s old, far from the 5 minute bound.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(guard.verify(&issuer.token_at("1", 1)).await.is_ok());
    assert_eq!(
        guard.verify(&issuer.token_at("1", 2)).await.unwrap_err(),
        TokenError::Revoked
    );
}

/// Past `max_staleness` with the issuer down: fail closed by default.
#[tokio::test]
async fn a_stale_list_fails_closed() {
    let issuer = FakeIssuer::start().await;
    let policy = StatusPolicy {
        max_staleness: Duration::from_secs(1),
        fail_open: false,
    };
    let guard = issuer
        .guard_with(issuer.config().status_policy(policy))
        .await;
    let token = issuer.token_at("0", 1);
    guard.verify(&token).await.unwrap();
    issuer.set_down(true);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let started = Instant::now();
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::StatusUnavailable
    );
    // While the issuer stays down, later requests are answered at once.
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::StatusUnavailable
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // Back up: the next request fetches a fresh list.
    issuer.set_down(false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(guard.verify(&token).await.is_ok());
}

/// Past `max_staleness` with `fail_open`: accepted, but what the stale list knows to be
/// revoked stays refused.
#[tokio::test]
async fn a_stale_list_with_fail_open_accepts() {
    let issuer = FakeIssuer::start().await;
    issuer.revoke("0", 2, false);
    let policy = StatusPolicy {
        max_staleness: Duration::from_secs(1),
        fail_open: true,
    };
    let guard = issuer
        .guard_with(issuer.config().status_policy(policy))
        .await;
    guard.verify(&issuer.token_at("0", 1)).await.unwrap();
    issuer.set_down(true);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(guard.verify(&issuer.token_at("0", 1)).await.is_ok());
    assert_eq!(
        guard.verify(&issuer.token_at("0", 2)).await.unwrap_err(),
        TokenError::Revoked
    );
    // A list never fetched: nothing is known, fail_open accepts.
    issuer.set_list("9", list(3600));
    assert!(guard.verify(&issuer.token_at("9", 0)).await.is_ok());
}

#[tokio::test]
async fn no_list_and_the_issuer_down_fails_closed() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    issuer.set_down(true);
    assert_eq!(
        guard.verify(&issuer.token()).await.unwrap_err(),
        TokenError::StatusUnavailable
    );
}

/// A list that inflates past 16 MiB is an error, not an allocation; the token's status is
/// then unknown (fail closed).
#[tokio::test]
async fn a_zip_bomb_list_is_refused() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let bomb = zlib(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 200 * 1024);
    let token = issuer.list_token_with("0", |c| c["status_list"]["lst"] = bomb.into());
    *issuer.state.list_override.lock().unwrap() = Some(token);
    assert_eq!(
        guard.verify(&issuer.token()).await.unwrap_err(),
        TokenError::StatusUnavailable
    );
}

/// A status `uri` elsewhere than `{issuer}/statuslists/` is refused without a request.
#[tokio::test]
async fn a_status_uri_elsewhere_is_refused_unfetched() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let attacker = Attacker::start(json!({})).await;
    let url = &issuer.url;
    for uri in [
        format!("{}/statuslists/0", attacker.url),
        format!("{url}.evil.example/statuslists/0"),
        format!("{url}@evil.example/statuslists/0"),
        format!("{url}/statuslists/../jwks"),
        format!("{url}/statuslists/a/b"),
        format!("{url}/statuslists/0?x=1"),
        format!("{url}/statuslists/0#f"),
        format!("{url}/statuslists/%2e%2e"),
        format!("{url}/statuslists/"),
        format!("{url}/statuslistsX/0"),
        format!("{url}/jwks"),
        "file:///etc/passwd".to_owned(),
    ] {
        let token = issuer.token_with(|c| c["status"]["status_list"]["uri"] = uri.clone().into());
        assert_eq!(
            guard.verify(&token).await.unwrap_err(),
            TokenError::StatusUriNotAllowed,
            "{uri}"
        );
    }
    assert_eq!(attacker.requests(), 0);
    assert_eq!(issuer.list_fetches(), 0);
}

/// Lists that are not what they claim: wrong typ, wrong subject, wrong issuer, expired,
/// signed by an unknown key. Each makes the status unknown.
#[tokio::test]
async fn forged_or_expired_lists_are_refused() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let stranger = Key::es256();
    let list_claims = || {
        let token = issuer.list_token_with("0", |_| {});
        let payload = token.split('.').nth(1).unwrap().to_owned();
        serde_json::from_slice::<serde_json::Value>(&valet_jose::b64url_decode(payload).unwrap())
            .unwrap()
    };
    let forgeries = [
        issuer
            .state
            .signer
            .signing
            .sign_jwt("JWT", &list_claims())
            .unwrap(),
        issuer
            .state
            .signer
            .signing
            .sign_jwt("at+jwt", &list_claims())
            .unwrap(),
        issuer.list_token_with("0", |c| c["sub"] = issuer.list_uri("1").into()),
        issuer.list_token_with("0", |c| c["iss"] = "https://evil.example".into()),
        issuer.list_token_with("0", |c| c["exp"] = (now() - 3600).into()),
        issuer.list_token_with("0", |c| c["status_list"]["bits"] = 3.into()),
        stranger
            .signing
            .sign_jwt("statuslist+jwt", &list_claims())
            .unwrap(),
        "not a jwt".to_owned(),
    ];
    for (i, forgery) in forgeries.into_iter().enumerate() {
        *issuer.state.list_override.lock().unwrap() = Some(forgery);
        // Each with its own list, so no earlier good copy is cached.
        let name = format!("f{i}");
        issuer.set_list(&name, list(3600));
        assert_eq!(
            guard.verify(&issuer.token_at(&name, 0)).await.unwrap_err(),
            TokenError::StatusUnavailable,
            "forgery {i}"
        );
    }
}

#[tokio::test]
async fn tokens_without_status_are_accepted_unless_required() {
    let issuer = FakeIssuer::start().await;
    let token = issuer.token_with(|c| {
        c.as_object_mut().unwrap().remove("status");
    });
    let lenient = issuer.guard().await;
    assert!(lenient.verify(&token).await.is_ok());
    let strict = issuer
        .guard_with(issuer.config().require_status(true))
        .await;
    assert_eq!(
        strict.verify(&token).await.unwrap_err(),
        TokenError::StatusMissing
    );
    assert!(strict.verify(&issuer.token()).await.is_ok());
}

/// Concurrent first uses of one list share one fetch.
#[tokio::test]
async fn concurrent_first_uses_fetch_once() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let tokens: Vec<String> = (0..50).map(|i| issuer.token_at("0", i)).collect();
    let results = futures_util::future::join_all(tokens.iter().map(|t| guard.verify(t))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(issuer.list_fetches(), 1);
}
