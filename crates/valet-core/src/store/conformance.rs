//! The shared store test suite. Every backend crate runs [`run_all`] from its
//! integration tests; a backend is correct when the whole suite passes.
//!
//! Each check panics on failure. Ids, algorithm names and timestamps are unique per
//! call, so the suite can run again and again against a persistent test database,
//! one run at a time. The global deletions
//! ([`super::KeyStore::delete_unpublished_keys`],
//! [`super::RevocationStore::purge_revocations`],
//! [`super::SessionStore::purge_sessions`], [`super::GrantStore::purge_grants`] and
//! [`super::StatusStore::purge_status`]) and the global
//! [`super::StatusStore::live_status_span`] are checked on a private timeline
//! (microseconds since the epoch, used as if they were seconds) far ahead of any
//! real timestamp; to make their counts exact, the checks first delete every record
//! that expired before their window, so never point the suite at a database whose
//! data matters. The status list checks expect no other writer of revocations
//! while they run.
//!
//! Beyond the trait docs, the suite pins down what the backends agree on:
//! - emails collide and match ignoring ASCII case;
//! - a grant is live while not revoked and `now < expires_at`; codes and refresh
//!   tokens of a dead grant are never redeemed or rotated;
//! - revocation deletes refresh tokens and unconsumed codes, keeps consumed codes
//!   (a replay is still `Replayed`), and an access token recorded under an already
//!   revoked grant is revoked at once;
//! - `delete_user` and `delete_client` cascade to grants and revoke their recorded
//!   access tokens and, as `revoke_grant` does, their status indices;
//! - status index ranges are half-open, `[start, end)`; a revocation is in force
//!   while `now < expires_at` and a block is live while `now < valid_until`;
//!   reading revocations returns them oldest first; a block of fewer than one
//!   index or an empty range is refused;
//! - revoking a grant records no status range once all its access tokens have
//!   expired (`expires_at + MAX_ACCESS_TOKEN_TTL <= now`), as no jti is recorded
//!   for an expired access token;
//! - `purge_status` keeps the newest revocation (so `last_status_seq` never goes
//!   back) and an expired block while a revocation in force overlaps it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{
    AuthorizationCode, Client, CodeRedemption, Grant, Interaction, KeyInsert, MAX_ACCESS_TOKEN_TTL,
    RefreshToken, RevokedToken, Rotation, Session, StatusRevocation, Store, StoreError, StoredKey,
    User,
};

/// Runs every check of the suite, one after the other.
pub async fn run_all(store: &dyn Store) {
    ping(store).await;

    clients_roundtrip(store).await;
    clients_public_roundtrip(store).await;
    clients_duplicate_conflict(store).await;
    clients_list_order(store).await;
    clients_delete(store).await;
    clients_set_secret(store).await;

    keys_insert_and_list(store).await;
    keys_list_order(store).await;
    keys_generation_taken(store).await;
    keys_same_generation_other_alg(store).await;
    keys_duplicate_kid(store).await;
    keys_set_activation(store).await;
    keys_publish_until_only_shortens(store).await;
    keys_delete_unpublished(store).await;

    revocations_insert_and_check(store).await;
    revocations_insert_is_idempotent(store).await;
    revocations_purge(store).await;

    users_roundtrip(store).await;
    users_unique(store).await;
    users_find_by_login(store).await;
    users_list_order(store).await;
    users_set_password_and_disabled(store).await;
    users_delete_cascades(store).await;

    sessions_roundtrip_and_expiry(store).await;
    sessions_delete(store).await;
    interactions_lifecycle(store).await;
    consent_union(store).await;
    sessions_purge(store).await;

    grants_insert_and_get(store).await;
    codes_redeem_once(store).await;
    codes_expiry_and_dead_grants(store).await;
    refresh_insert_and_get(store).await;
    refresh_rotate(store).await;
    refresh_rotate_unknown(store).await;
    grants_revoke(store).await;
    grants_revoke_by_owner(store).await;
    clients_delete_cascades(store).await;
    grants_purge(store).await;

    status_blocks_reserve(store).await;
    status_ranges_revoke_and_read(store).await;
    status_blocks_of_client(store).await;
    status_live_span(store).await;
    status_revoke_grant(store).await;
    status_revoke_grants_by_owner(store).await;
    status_revoke_on_delete(store).await;
    status_purge(store).await;

    concurrent_key_generation(store).await;
    concurrent_client_insert(store).await;
    concurrent_revocation_insert(store).await;
    concurrent_code_redemption(store).await;
    concurrent_refresh_rotation(store).await;
    concurrent_use_and_revocation(store).await;
    concurrent_consent(store).await;
    concurrent_status_reservations(store).await;
    concurrent_status_revocations_polled(store).await;
}

/// `ping` succeeds on a working store.
pub async fn ping(store: &dyn Store) {
    store.ping().await.expect("ping");
}

// ---------------------------------------------------------------------------------
// Clients

/// A confidential client with every field set, including awkward strings, comes
/// back exactly as inserted.
pub async fn clients_roundtrip(store: &dyn Store) {
    let run = unique();
    let client = Client {
        client_id: format!("conf-{run}-full"),
        name: "Ünïcode \"quoted\" \\ name ✓".to_owned(),
        secret_hash: Some(vec![0x00, 0xff, 0x10, 0x80, 0x7f, 0x00]),
        redirect_uris: vec![
            "https://app.example/cb".to_owned(),
            "http://127.0.0.1/native?x=\"1\"&y=[2]".to_owned(),
            "com.example.app:/oauth2redirect".to_owned(),
        ],
        post_logout_redirect_uris: vec!["https://app.example/bye".to_owned()],
        grant_types: vec![
            "authorization_code".to_owned(),
            "refresh_token".to_owned(),
            "client_credentials".to_owned(),
        ],
        scopes: vec![
            "openid".to_owned(),
            "profile".to_owned(),
            "read:things".to_owned(),
            String::new(),
        ],
        audiences: vec![
            "https://api.example/".to_owned(),
            "https://other.example/".to_owned(),
        ],
        access_token_ttl: Some(600),
        skip_consent: true,
        refresh_grace_seconds: 30,
        id_token_signed_response_alg: Some("ES256".to_owned()),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_123,
    };
    store.insert_client(&client).await.expect("insert client");

    let got = store
        .get_client(&client.client_id)
        .await
        .expect("get client");
    assert_eq!(got.as_ref(), Some(&client), "client roundtrip");
    assert_eq!(got.unwrap().secret_hash, client.secret_hash);

    let missing = store
        .get_client(&format!("conf-{run}-missing"))
        .await
        .expect("get missing client");
    assert_eq!(missing, None, "unknown client_id");
}

/// A public client (no secret hash), empty lists, no TTL override and the defaults
/// of the browser-flow settings come back exactly as inserted.
pub async fn clients_public_roundtrip(store: &dyn Store) {
    let run = unique();
    let client = Client {
        secret_hash: None,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![],
        scopes: vec![],
        audiences: vec![],
        access_token_ttl: None,
        skip_consent: false,
        refresh_grace_seconds: 0,
        id_token_signed_response_alg: None,
        ..client(&format!("conf-{run}-public"), 5)
    };
    store
        .insert_client(&client)
        .await
        .expect("insert public client");

    let got = store
        .get_client(&client.client_id)
        .await
        .expect("get public client")
        .expect("public client exists");
    assert_eq!(got, client, "public client roundtrip");
    assert!(got.is_public());
    assert_eq!(got.secret_hash, None);
    assert_eq!(got.access_token_ttl, None);
    assert!(!got.skip_consent);
    assert_eq!(got.refresh_grace_seconds, 0);
    assert_eq!(got.id_token_signed_response_alg, None);
}

/// Inserting a second client with a taken `client_id` fails with `Conflict` and
/// leaves the first one untouched.
pub async fn clients_duplicate_conflict(store: &dyn Store) {
    let run = unique();
    let first = client(&format!("conf-{run}-dup"), 10);
    store.insert_client(&first).await.expect("insert client");

    let second = Client {
        name: "impostor".to_owned(),
        secret_hash: Some(vec![9; 32]),
        ..first.clone()
    };
    let err = store
        .insert_client(&second)
        .await
        .expect_err("duplicate client_id must fail");
    assert!(
        matches!(err, StoreError::Conflict),
        "duplicate client_id: expected Conflict, got {err:?}"
    );

    let got = store
        .get_client(&first.client_id)
        .await
        .expect("get client");
    assert_eq!(got, Some(first), "first client unchanged");
}

/// `list_clients` returns every client, ordered by `created_at` then `client_id`.
pub async fn clients_list_order(store: &dyn Store) {
    let run = unique();
    let prefix = format!("conf-{run}-order-");
    let b = client(&format!("{prefix}b"), 100);
    let a = client(&format!("{prefix}a"), 200);
    let c = client(&format!("{prefix}c"), 200);
    for client in [&c, &a, &b] {
        store.insert_client(client).await.expect("insert client");
    }

    let listed: Vec<Client> = store
        .list_clients()
        .await
        .expect("list clients")
        .into_iter()
        .filter(|client| client.client_id.starts_with(&prefix))
        .collect();
    assert_eq!(
        listed,
        vec![b, a, c],
        "clients ordered by created_at, client_id"
    );
}

/// `delete_client` removes the client and reports whether one was deleted.
pub async fn clients_delete(store: &dyn Store) {
    let run = unique();
    let keep = client(&format!("conf-{run}-keep"), 1);
    let gone = client(&format!("conf-{run}-gone"), 1);
    store.insert_client(&keep).await.expect("insert client");
    store.insert_client(&gone).await.expect("insert client");

    assert!(store.delete_client(&gone.client_id).await.expect("delete"));
    assert_eq!(
        store
            .get_client(&gone.client_id)
            .await
            .expect("get deleted"),
        None,
        "deleted client is gone"
    );
    assert!(
        !store
            .delete_client(&gone.client_id)
            .await
            .expect("delete again"),
        "second delete finds nothing"
    );
    assert_eq!(
        store.get_client(&keep.client_id).await.expect("get kept"),
        Some(keep.clone()),
        "other clients untouched"
    );
    assert!(
        !store
            .list_clients()
            .await
            .expect("list")
            .iter()
            .any(|client| client.client_id == gone.client_id),
        "deleted client is not listed"
    );

    // The id is free again.
    store
        .insert_client(&gone)
        .await
        .expect("reinsert deleted id");
}

/// `set_client_secret` replaces the hash and `updated_at`, and nothing else.
pub async fn clients_set_secret(store: &dyn Store) {
    let run = unique();
    let original = client(&format!("conf-{run}-secret"), 1_000);
    store.insert_client(&original).await.expect("insert client");

    let new_hash = vec![0xab; 32];
    assert!(
        store
            .set_client_secret(&original.client_id, &new_hash, 2_000)
            .await
            .expect("set secret"),
        "existing client matched"
    );
    let got = store
        .get_client(&original.client_id)
        .await
        .expect("get client")
        .expect("client exists");
    let expected = Client {
        secret_hash: Some(new_hash.clone()),
        updated_at: 2_000,
        ..original
    };
    assert_eq!(got, expected, "only secret_hash and updated_at change");

    assert!(
        !store
            .set_client_secret(&format!("conf-{run}-nobody"), &new_hash, 2_000)
            .await
            .expect("set secret of unknown client"),
        "unknown client does not match"
    );
    assert_eq!(
        store
            .get_client(&format!("conf-{run}-nobody"))
            .await
            .expect("get"),
        None,
        "set_client_secret does not create clients"
    );
    // A public client stays public: no secret can be attached to it.
    let public = Client {
        secret_hash: None,
        ..client(&format!("conf-{run}-public"), 1_000)
    };
    store
        .insert_client(&public)
        .await
        .expect("insert public client");
    assert!(
        !store
            .set_client_secret(&public.client_id, &new_hash, 2_000)
            .await
            .expect("set secret of public client"),
        "public client does not match"
    );
    assert_eq!(
        store.get_client(&public.client_id).await.expect("get"),
        Some(public),
        "public client unchanged"
    );
}

// ---------------------------------------------------------------------------------
// Signing keys

/// A key comes back from `list_keys` exactly as inserted, `None` times included.
pub async fn keys_insert_and_list(store: &dyn Store) {
    let run = unique();
    let alg = format!("T{run}");
    let full = StoredKey {
        activates_at: Some(1_700_000_100),
        publish_until: Some(1_700_086_400),
        public_jwk: r#"{"kty":"EC","crv":"P-256","x":"ab\"c","y":"d\\ef"}"#.to_owned(),
        sealed_private_key: vec![0x00, 0x01, 0xfe, 0xff, 0x00],
        ..key(&format!("conf-{run}-k0"), &alg, 0)
    };
    let bare = StoredKey {
        activates_at: None,
        publish_until: None,
        ..key(&format!("conf-{run}-k1"), &alg, 1)
    };
    for key in [&full, &bare] {
        assert_eq!(
            store.insert_key(key).await.expect("insert key"),
            KeyInsert::Inserted
        );
    }

    assert_eq!(
        keys_of(store, &[&alg]).await,
        vec![full, bare],
        "keys roundtrip"
    );
}

/// `list_keys` orders by `alg` then `generation`, whatever the insertion order.
pub async fn keys_list_order(store: &dyn Store) {
    let run = unique();
    let alg_a = format!("T{run}A");
    let alg_b = format!("T{run}B");
    let b0 = key(&format!("conf-{run}-b0"), &alg_b, 0);
    let a2 = key(&format!("conf-{run}-a2"), &alg_a, 2);
    let a0 = key(&format!("conf-{run}-a0"), &alg_a, 0);
    let a10 = key(&format!("conf-{run}-a10"), &alg_a, 10);
    let a1 = key(&format!("conf-{run}-a1"), &alg_a, 1);
    for key in [&b0, &a2, &a0, &a10, &a1] {
        assert_eq!(
            store.insert_key(key).await.expect("insert key"),
            KeyInsert::Inserted
        );
    }

    assert_eq!(
        keys_of(store, &[&alg_a, &alg_b]).await,
        vec![a0, a1, a2, a10, b0],
        "keys ordered by alg, then generation (numerically)"
    );
}

/// A second key with the same `alg` and `generation` is refused with
/// `GenerationTaken`, and the first key is untouched.
pub async fn keys_generation_taken(store: &dyn Store) {
    let run = unique();
    let alg = format!("T{run}");
    let winner = key(&format!("conf-{run}-winner"), &alg, 7);
    let loser = StoredKey {
        public_jwk: "{\"loser\":true}".to_owned(),
        sealed_private_key: vec![0xee; 16],
        ..key(&format!("conf-{run}-loser"), &alg, 7)
    };
    assert_eq!(
        store.insert_key(&winner).await.expect("insert"),
        KeyInsert::Inserted
    );
    assert_eq!(
        store
            .insert_key(&loser)
            .await
            .expect("insert same generation"),
        KeyInsert::GenerationTaken
    );
    assert_eq!(
        keys_of(store, &[&alg]).await,
        vec![winner],
        "loser not stored"
    );
}

/// The same `generation` under a different `alg` is a different slot.
pub async fn keys_same_generation_other_alg(store: &dyn Store) {
    let run = unique();
    let es = key(&format!("conf-{run}-es"), &format!("T{run}ES"), 3);
    let rs = key(&format!("conf-{run}-rs"), &format!("T{run}RS"), 3);
    assert_eq!(
        store.insert_key(&es).await.expect("insert"),
        KeyInsert::Inserted
    );
    assert_eq!(
        store.insert_key(&rs).await.expect("insert other alg"),
        KeyInsert::Inserted
    );
    assert_eq!(
        keys_of(store, &[&es.alg, &rs.alg]).await,
        vec![es, rs],
        "both stored"
    );
}

/// A taken `kid` is refused with `GenerationTaken`, even for a free generation.
pub async fn keys_duplicate_kid(store: &dyn Store) {
    let run = unique();
    let alg = format!("T{run}");
    let other_alg = format!("T{run}X");
    let first = key(&format!("conf-{run}-kid"), &alg, 0);
    assert_eq!(
        store.insert_key(&first).await.expect("insert"),
        KeyInsert::Inserted
    );

    let same_alg_next_generation = key(&first.kid, &alg, 1);
    assert_eq!(
        store
            .insert_key(&same_alg_next_generation)
            .await
            .expect("insert duplicate kid"),
        KeyInsert::GenerationTaken
    );
    let other_alg_key = key(&first.kid, &other_alg, 0);
    assert_eq!(
        store
            .insert_key(&other_alg_key)
            .await
            .expect("insert duplicate kid, other alg"),
        KeyInsert::GenerationTaken
    );
    assert_eq!(
        keys_of(store, &[&alg, &other_alg]).await,
        vec![first],
        "only the first key stored"
    );
}

/// `set_key_activation` sets (and may move) `activates_at` of one key.
pub async fn keys_set_activation(store: &dyn Store) {
    let run = unique();
    let alg = format!("T{run}");
    let target = StoredKey {
        activates_at: None,
        ..key(&format!("conf-{run}-act"), &alg, 0)
    };
    let other = StoredKey {
        activates_at: None,
        ..key(&format!("conf-{run}-other"), &alg, 1)
    };
    for key in [&target, &other] {
        assert_eq!(
            store.insert_key(key).await.expect("insert"),
            KeyInsert::Inserted
        );
    }

    assert!(
        store
            .set_key_activation(&target.kid, 5_000)
            .await
            .expect("set activation")
    );
    assert_eq!(
        keys_of(store, &[&alg]).await,
        vec![
            StoredKey {
                activates_at: Some(5_000),
                ..target.clone()
            },
            other.clone()
        ]
    );

    assert!(
        store
            .set_key_activation(&target.kid, 4_000)
            .await
            .expect("move activation")
    );
    assert_eq!(
        keys_of(store, &[&alg]).await,
        vec![
            StoredKey {
                activates_at: Some(4_000),
                ..target
            },
            other
        ]
    );

    assert!(
        !store
            .set_key_activation(&format!("conf-{run}-nokey"), 1)
            .await
            .expect("set activation of unknown kid"),
        "unknown kid does not match"
    );
}

/// `set_key_publish_until` bounds an unbounded key, shortens a bounded one, and
/// never lengthens it. It reports whether the kid exists, whether or not the stored
/// value changed.
pub async fn keys_publish_until_only_shortens(store: &dyn Store) {
    let run = unique();
    let alg = format!("T{run}");
    let target = StoredKey {
        publish_until: None,
        ..key(&format!("conf-{run}-pub"), &alg, 0)
    };
    let other = StoredKey {
        publish_until: None,
        ..key(&format!("conf-{run}-other"), &alg, 1)
    };
    for key in [&target, &other] {
        assert_eq!(
            store.insert_key(key).await.expect("insert"),
            KeyInsert::Inserted
        );
    }
    let publish_until = async || {
        keys_of(store, &[&alg])
            .await
            .into_iter()
            .map(|key| (key.kid, key.publish_until))
            .collect::<Vec<_>>()
    };

    // Unset -> set.
    assert!(
        store
            .set_key_publish_until(&target.kid, 10_000)
            .await
            .expect("bound")
    );
    assert_eq!(
        publish_until().await,
        vec![
            (target.kid.clone(), Some(10_000)),
            (other.kid.clone(), None)
        ]
    );

    // A later value is ignored.
    assert!(
        store
            .set_key_publish_until(&target.kid, 20_000)
            .await
            .expect("lengthen"),
        "the kid exists, so it matched"
    );
    assert_eq!(
        publish_until().await,
        vec![
            (target.kid.clone(), Some(10_000)),
            (other.kid.clone(), None)
        ],
        "publication never gets longer"
    );

    // The same value changes nothing.
    assert!(
        store
            .set_key_publish_until(&target.kid, 10_000)
            .await
            .expect("same")
    );
    assert_eq!(
        publish_until().await,
        vec![
            (target.kid.clone(), Some(10_000)),
            (other.kid.clone(), None)
        ]
    );

    // An earlier value is applied.
    assert!(
        store
            .set_key_publish_until(&target.kid, 5_000)
            .await
            .expect("shorten")
    );
    assert_eq!(
        publish_until().await,
        vec![(target.kid.clone(), Some(5_000)), (other.kid.clone(), None)],
        "publication gets shorter"
    );

    // Nothing else about the key changed.
    assert_eq!(
        keys_of(store, &[&alg]).await,
        vec![
            StoredKey {
                publish_until: Some(5_000),
                ..target
            },
            other
        ]
    );

    assert!(
        !store
            .set_key_publish_until(&format!("conf-{run}-nokey"), 1)
            .await
            .expect("bound unknown kid"),
        "unknown kid does not match"
    );
}

/// `delete_unpublished_keys` deletes exactly the keys whose `publish_until` is
/// strictly before `now`, and never unbounded ones.
pub async fn keys_delete_unpublished(store: &dyn Store) {
    let run = unique();
    let now = timeline();
    let alg = format!("T{run}");
    let expired = StoredKey {
        publish_until: Some(now - 10),
        ..key(&format!("conf-{run}-expired"), &alg, 0)
    };
    let boundary = StoredKey {
        publish_until: Some(now + 10),
        ..key(&format!("conf-{run}-boundary"), &alg, 1)
    };
    let unbounded = StoredKey {
        publish_until: None,
        activates_at: Some(now - 1_000),
        ..key(&format!("conf-{run}-unbounded"), &alg, 2)
    };
    for key in [&expired, &boundary, &unbounded] {
        assert_eq!(
            store.insert_key(key).await.expect("insert"),
            KeyInsert::Inserted
        );
    }

    // Clear what earlier runs left before our window, so the counts below are exact.
    store
        .delete_unpublished_keys(now - 100)
        .await
        .expect("delete older keys");
    assert_eq!(
        keys_of(store, &[&alg]).await.len(),
        3,
        "nothing of ours deleted yet"
    );

    assert_eq!(
        store.delete_unpublished_keys(now).await.expect("delete"),
        1,
        "one key expired before now"
    );
    assert_eq!(
        keys_of(store, &[&alg]).await,
        vec![boundary.clone(), unbounded.clone()]
    );

    assert_eq!(
        store
            .delete_unpublished_keys(now + 10)
            .await
            .expect("delete at boundary"),
        0,
        "publish_until == now is still published"
    );
    assert_eq!(
        store
            .delete_unpublished_keys(now + 11)
            .await
            .expect("delete after boundary"),
        1
    );
    assert_eq!(
        keys_of(store, &[&alg]).await,
        vec![unbounded],
        "unbounded keys are never deleted"
    );
}

// ---------------------------------------------------------------------------------
// Revocations

/// A recorded `jti` is revoked; another one is not.
pub async fn revocations_insert_and_check(store: &dyn Store) {
    let run = unique();
    let revoked = revocation(&format!("conf-{run}-jti"), 2_000_000_000);
    store
        .insert_revocation(&revoked)
        .await
        .expect("insert revocation");
    assert!(store.is_revoked(&revoked.jti).await.expect("is_revoked"));
    assert!(
        !store
            .is_revoked(&format!("conf-{run}-other"))
            .await
            .expect("is_revoked other"),
        "unknown jti is not revoked"
    );
}

/// Recording the same `jti` twice (even with other details) is not an error.
pub async fn revocations_insert_is_idempotent(store: &dyn Store) {
    let run = unique();
    let revoked = revocation(&format!("conf-{run}-twice"), 2_000_000_000);
    store
        .insert_revocation(&revoked)
        .await
        .expect("insert revocation");
    store
        .insert_revocation(&revoked)
        .await
        .expect("insert the same revocation again");
    store
        .insert_revocation(&RevokedToken {
            revoked_at: revoked.revoked_at + 5,
            ..revoked.clone()
        })
        .await
        .expect("insert the same jti with another revoked_at");
    assert!(store.is_revoked(&revoked.jti).await.expect("is_revoked"));
}

/// `purge_revocations` deletes only records whose token expired strictly before
/// `now`, at most `limit` of them per call.
pub async fn revocations_purge(store: &dyn Store) {
    let run = unique();
    let now = timeline();
    let expired: Vec<RevokedToken> = (0..5)
        .map(|i| revocation(&format!("conf-{run}-expired-{i}"), now - 50 + i))
        .collect();
    let at_now = revocation(&format!("conf-{run}-at-now"), now);
    let live = revocation(&format!("conf-{run}-live"), now + 3_600);
    for revoked in expired.iter().chain([&at_now, &live]) {
        store.insert_revocation(revoked).await.expect("insert");
    }

    // Clear what earlier runs left before our window, so the counts below are exact.
    while store
        .purge_revocations(now - 100, 1_000)
        .await
        .expect("purge older records")
        > 0
    {}
    for revoked in expired.iter().chain([&at_now, &live]) {
        assert!(store.is_revoked(&revoked.jti).await.expect("is_revoked"));
    }

    assert_eq!(
        store.purge_revocations(now, 2).await.expect("purge"),
        2,
        "limit honoured"
    );
    assert_eq!(
        still_revoked(store, &expired).await,
        3,
        "two of five expired records purged"
    );
    assert_eq!(store.purge_revocations(now, 0).await.expect("purge"), 0);
    assert_eq!(
        store.purge_revocations(now, 2).await.expect("purge"),
        2,
        "limit honoured"
    );
    assert_eq!(
        store.purge_revocations(now, 100).await.expect("purge"),
        1,
        "the last expired record"
    );
    assert_eq!(
        still_revoked(store, &expired).await,
        0,
        "all expired purged"
    );
    assert_eq!(
        store.purge_revocations(now, 100).await.expect("purge"),
        0,
        "expires_at == now is kept"
    );
    assert!(store.is_revoked(&at_now.jti).await.expect("is_revoked"));
    assert!(store.is_revoked(&live.jti).await.expect("is_revoked"));

    assert_eq!(
        store.purge_revocations(now + 1, 100).await.expect("purge"),
        1
    );
    assert!(!store.is_revoked(&at_now.jti).await.expect("is_revoked"));
    assert!(store.is_revoked(&live.jti).await.expect("is_revoked"));
}

// ---------------------------------------------------------------------------------
// Users

/// A user with every field set, and one with every optional field empty, come
/// back exactly as inserted.
pub async fn users_roundtrip(store: &dyn Store) {
    let run = unique();
    let full = user(&format!("conf-{run}-full"), 1_700_000_000);
    let bare = User {
        email: None,
        email_verified: false,
        name: None,
        given_name: None,
        family_name: None,
        password_hash: None,
        disabled: true,
        ..user(&format!("conf-{run}-bare"), 1_700_000_001)
    };
    for user in [&full, &bare] {
        store.insert_user(user).await.expect("insert user");
        assert_eq!(
            store.get_user(&user.user_id).await.expect("get user"),
            Some(user.clone()),
            "user roundtrip"
        );
    }
    assert_eq!(
        store
            .get_user(&format!("conf-{run}-missing"))
            .await
            .expect("get missing user"),
        None
    );
}

/// `user_id` and `username` are unique, and so is the email compared without
/// regard to (ASCII) case; a refused insert stores nothing. Users without an email
/// do not collide, and a username differing only in case is another username.
pub async fn users_unique(store: &dyn Store) {
    let run = unique();
    let first = User {
        email: Some(format!("Alice-{run}@Example.com")),
        ..user(&format!("conf-{run}-alice"), 1)
    };
    store.insert_user(&first).await.expect("insert user");

    let same_id = User {
        username: format!("conf-{run}-other-name"),
        email: None,
        ..first.clone()
    };
    let same_username = User {
        email: None,
        ..user(&format!("conf-{run}-u2"), 1)
    };
    let same_username = User {
        username: first.username.clone(),
        ..same_username
    };
    let same_email_other_case = User {
        email: Some(format!("ALICE-{run}@example.COM")),
        ..user(&format!("conf-{run}-u3"), 1)
    };
    for (label, dup) in [
        ("user_id", &same_id),
        ("username", &same_username),
        ("email in another case", &same_email_other_case),
    ] {
        let err = store
            .insert_user(dup)
            .await
            .expect_err("duplicate user must fail");
        assert!(
            matches!(err, StoreError::Conflict),
            "duplicate {label}: expected Conflict, got {err:?}"
        );
    }
    for absent in [&same_username.user_id, &same_email_other_case.user_id] {
        assert_eq!(store.get_user(absent).await.expect("get"), None);
    }
    assert_eq!(
        store.get_user(&first.user_id).await.expect("get"),
        Some(first.clone()),
        "first user unchanged"
    );

    let no_email: Vec<User> = (0..2)
        .map(|i| User {
            email: None,
            ..user(&format!("conf-{run}-noemail-{i}"), 1)
        })
        .collect();
    for user in &no_email {
        store
            .insert_user(user)
            .await
            .expect("users without email do not collide");
    }
    let other_case_username = User {
        username: first.username.to_uppercase(),
        email: None,
        ..user(&format!("conf-{run}-upper"), 1)
    };
    store
        .insert_user(&other_case_username)
        .await
        .expect("usernames are case-sensitive");
}

/// `find_user_by_login` matches the exact username, or else the email in any
/// (ASCII) case; an exact username beats another user's email.
pub async fn users_find_by_login(store: &dyn Store) {
    let run = unique();
    let shared = format!("shared-{run}@example.com");
    let by_email = User {
        email: Some(format!("Shared-{run}@Example.com")),
        ..user(&format!("conf-{run}-by-email"), 1)
    };
    // Another user whose *username* is the first one's email (lowercased).
    let by_name = User {
        username: shared.clone(),
        email: None,
        ..user(&format!("conf-{run}-by-name"), 1)
    };
    for user in [&by_email, &by_name] {
        store.insert_user(user).await.expect("insert user");
    }

    let find = async |login: &str| {
        store
            .find_user_by_login(login)
            .await
            .expect("find_user_by_login")
            .map(|user| user.user_id)
    };
    assert_eq!(
        find(&by_email.username).await,
        Some(by_email.user_id.clone()),
        "by username"
    );
    assert_eq!(
        find(&format!("SHARED-{run}@EXAMPLE.COM")).await,
        Some(by_email.user_id.clone()),
        "by email, other case"
    );
    assert_eq!(
        find(&format!("Shared-{run}@Example.com")).await,
        Some(by_email.user_id.clone()),
        "by email, as stored"
    );
    assert_eq!(
        find(&shared).await,
        Some(by_name.user_id.clone()),
        "an exact username wins over another user's email"
    );
    assert_eq!(
        find(&by_email.username.to_uppercase()).await,
        None,
        "usernames match exactly"
    );
    assert_eq!(find(&format!("nobody-{run}")).await, None);
    assert_eq!(
        store
            .find_user_by_login(&by_email.user_id)
            .await
            .expect("find"),
        None,
        "the user_id is not a login"
    );
}

/// `list_users` orders by `created_at` then `user_id`.
pub async fn users_list_order(store: &dyn Store) {
    let run = unique();
    let prefix = format!("conf-{run}-order-");
    let b = user(&format!("{prefix}b"), 100);
    let a = user(&format!("{prefix}a"), 200);
    let c = user(&format!("{prefix}c"), 200);
    for user in [&c, &a, &b] {
        store.insert_user(user).await.expect("insert user");
    }
    let listed: Vec<User> = store
        .list_users()
        .await
        .expect("list users")
        .into_iter()
        .filter(|user| user.user_id.starts_with(&prefix))
        .collect();
    assert_eq!(
        listed,
        vec![b, a, c],
        "users ordered by created_at, user_id"
    );
}

/// `set_user_password` and `set_user_disabled` change their field and
/// `updated_at`, nothing else, and report whether the user exists.
pub async fn users_set_password_and_disabled(store: &dyn Store) {
    let run = unique();
    let original = User {
        password_hash: None,
        ..user(&format!("conf-{run}-pw"), 1_000)
    };
    store.insert_user(&original).await.expect("insert user");

    let phc = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";
    assert!(
        store
            .set_user_password(&original.user_id, phc, 2_000)
            .await
            .expect("set password")
    );
    let with_password = User {
        password_hash: Some(phc.to_owned()),
        updated_at: 2_000,
        ..original.clone()
    };
    assert_eq!(
        store.get_user(&original.user_id).await.expect("get"),
        Some(with_password.clone())
    );

    assert!(
        store
            .set_user_disabled(&original.user_id, true, 3_000)
            .await
            .expect("disable")
    );
    let disabled = User {
        disabled: true,
        updated_at: 3_000,
        ..with_password
    };
    assert_eq!(
        store.get_user(&original.user_id).await.expect("get"),
        Some(disabled.clone())
    );
    assert!(
        store
            .set_user_disabled(&original.user_id, false, 4_000)
            .await
            .expect("enable")
    );
    assert_eq!(
        store.get_user(&original.user_id).await.expect("get"),
        Some(User {
            disabled: false,
            updated_at: 4_000,
            ..disabled
        })
    );

    let nobody = format!("conf-{run}-nobody");
    assert!(
        !store
            .set_user_password(&nobody, phc, 1)
            .await
            .expect("set password of unknown user")
    );
    assert!(
        !store
            .set_user_disabled(&nobody, true, 1)
            .await
            .expect("disable unknown user")
    );
    assert_eq!(store.get_user(&nobody).await.expect("get"), None);
}

/// `delete_user` takes the user's sessions, consents and grants (with their codes
/// and refresh tokens) with it and revokes the grants' recorded live access tokens;
/// another user's records are untouched, and the username and email are free again.
pub async fn users_delete_cascades(store: &dyn Store) {
    let run = unique();
    let doomed = party(store, &run, "doomed").await;
    let kept = Party {
        client: doomed.client.clone(),
        user: user(&format!("conf-{run}-kept-user"), 1),
    };
    store.insert_user(&kept.user).await.expect("insert user");

    let mut records = Vec::new();
    for party in [&doomed, &kept] {
        let label = if party.user == doomed.user {
            "doomed"
        } else {
            "kept"
        };
        let session = session_of(party, &hash(&run, &format!("{label}-session")), NOW + 3_600);
        store
            .insert_session(&session)
            .await
            .expect("insert session");
        store
            .add_consent(
                &party.user.user_id,
                &party.client.client_id,
                &strings(&["openid"]),
                NOW,
            )
            .await
            .expect("add consent");
        let (grant, code) = issue(store, party, &run, label, Some(&session.sid)).await;
        let token = refresh(&grant, hash(&run, &format!("{label}-rt")), NOW + 3_600);
        store
            .insert_refresh_token(&token)
            .await
            .expect("insert refresh token");
        let jti = format!("conf-{run}-{label}-jti");
        store
            .record_access_token(&grant.grant_id, &jti, NOW + 600)
            .await
            .expect("record access token");
        records.push((session, grant, code, token, jti));
    }

    assert!(
        store
            .delete_user(&doomed.user.user_id)
            .await
            .expect("delete user")
    );
    assert!(
        !store
            .delete_user(&doomed.user.user_id)
            .await
            .expect("delete user again"),
        "second delete finds nothing"
    );

    let (gone, stays) = (&records[0], &records[1]);
    assert_eq!(
        store.get_user(&doomed.user.user_id).await.expect("get"),
        None
    );
    assert_eq!(
        store
            .get_session(&gone.0.session_hash, NOW)
            .await
            .expect("get session"),
        None,
        "sessions deleted"
    );
    assert_eq!(
        store
            .get_consent(&doomed.user.user_id, &doomed.client.client_id)
            .await
            .expect("get consent"),
        Vec::<String>::new(),
        "consents deleted"
    );
    assert_eq!(
        store.get_grant(&gone.1.grant_id).await.expect("get grant"),
        None,
        "grants deleted"
    );
    assert_eq!(
        store
            .redeem_code(&gone.2.code_hash, NOW)
            .await
            .expect("redeem"),
        CodeRedemption::Unknown,
        "codes deleted"
    );
    assert_eq!(
        store
            .get_refresh_token(&gone.3.token_hash)
            .await
            .expect("get refresh token"),
        None,
        "refresh tokens deleted"
    );
    assert!(
        store.is_revoked(&gone.4).await.expect("is_revoked"),
        "live access tokens of deleted grants are revoked"
    );

    // The other user's records are all still there.
    assert_eq!(
        store.get_user(&kept.user.user_id).await.expect("get"),
        Some(kept.user.clone())
    );
    assert_eq!(
        store
            .get_session(&stays.0.session_hash, NOW)
            .await
            .expect("get session"),
        Some(stays.0.clone())
    );
    assert_eq!(
        store
            .get_consent(&kept.user.user_id, &kept.client.client_id)
            .await
            .expect("get consent"),
        strings(&["openid"])
    );
    assert_eq!(
        store.get_grant(&stays.1.grant_id).await.expect("get grant"),
        Some(stays.1.clone())
    );
    assert!(matches!(
        store
            .redeem_code(&stays.2.code_hash, NOW)
            .await
            .expect("redeem"),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store
            .get_refresh_token(&stays.3.token_hash)
            .await
            .expect("get refresh token"),
        Some(stays.3.clone())
    );
    assert!(!store.is_revoked(&stays.4).await.expect("is_revoked"));
    assert_eq!(
        store
            .get_client(&doomed.client.client_id)
            .await
            .expect("get"),
        Some(doomed.client.clone()),
        "the client stays"
    );

    // Username and email are free again.
    store
        .insert_user(&User {
            user_id: format!("conf-{run}-reborn"),
            ..doomed.user.clone()
        })
        .await
        .expect("reuse username and email");
}

// ---------------------------------------------------------------------------------
// Sessions, interactions, consent

/// A session comes back exactly as inserted while `now < expires_at`, and not
/// from `expires_at` on; a taken hash is a `Conflict`.
pub async fn sessions_roundtrip_and_expiry(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "s").await;
    let session = session_of(&party, &hash(&run, "session"), NOW + 3_600);
    store
        .insert_session(&session)
        .await
        .expect("insert session");

    for (now, live) in [
        (NOW, true),
        (session.expires_at - 1, true),
        (session.expires_at, false),
        (session.expires_at + 1, false),
    ] {
        assert_eq!(
            store
                .get_session(&session.session_hash, now)
                .await
                .expect("get session"),
            live.then(|| session.clone()),
            "session at {now} (expires {})",
            session.expires_at
        );
    }
    assert_eq!(
        store
            .get_session(&hash(&run, "nosession"), NOW)
            .await
            .expect("get unknown session"),
        None
    );

    let err = store
        .insert_session(&Session {
            sid: format!("conf-{run}-other-sid"),
            ..session.clone()
        })
        .await
        .expect_err("duplicate session hash must fail");
    assert!(
        matches!(err, StoreError::Conflict),
        "expected Conflict, got {err:?}"
    );
    assert_eq!(
        store
            .get_session(&session.session_hash, NOW)
            .await
            .expect("get"),
        Some(session),
        "first session unchanged"
    );
}

/// `delete_session` returns the session (expired or not) once; the sessions of a
/// user go together, and only theirs.
pub async fn sessions_delete(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "a").await;
    let other = party_with_client(store, &run, "b", &party.client).await;

    let expired = session_of(&party, &hash(&run, "expired"), NOW - 1);
    let first = session_of(&party, &hash(&run, "first"), NOW + 3_600);
    let second = session_of(&party, &hash(&run, "second"), NOW + 3_600);
    let theirs = session_of(&other, &hash(&run, "theirs"), NOW + 3_600);
    for session in [&expired, &first, &second, &theirs] {
        store.insert_session(session).await.expect("insert session");
    }

    assert_eq!(
        store
            .delete_session(&expired.session_hash)
            .await
            .expect("delete expired session"),
        Some(expired.clone()),
        "an expired session is still returned"
    );
    assert_eq!(
        store
            .delete_session(&first.session_hash)
            .await
            .expect("delete session"),
        Some(first.clone())
    );
    assert_eq!(
        store
            .delete_session(&first.session_hash)
            .await
            .expect("delete session again"),
        None,
        "second delete finds nothing"
    );
    assert_eq!(
        store
            .get_session(&first.session_hash, NOW)
            .await
            .expect("get"),
        None
    );

    let again = session_of(&party, &hash(&run, "again"), NOW + 3_600);
    store.insert_session(&again).await.expect("insert session");
    assert_eq!(
        store
            .delete_sessions_of_user(&party.user.user_id)
            .await
            .expect("delete sessions of user"),
        2
    );
    for gone in [&second, &again] {
        assert_eq!(
            store
                .get_session(&gone.session_hash, NOW)
                .await
                .expect("get"),
            None
        );
    }
    assert_eq!(
        store
            .get_session(&theirs.session_hash, NOW)
            .await
            .expect("get"),
        Some(theirs),
        "another user's session stays"
    );
    assert_eq!(
        store
            .delete_sessions_of_user(&party.user.user_id)
            .await
            .expect("delete sessions of user again"),
        0
    );
}

/// An interaction is readable until `expires_at`; `update_interaction` replaces
/// the payload and `delete_interaction` succeeds once, each reporting whether it
/// matched.
pub async fn interactions_lifecycle(store: &dyn Store) {
    let run = unique();
    let interaction = Interaction {
        interaction_id: format!("conf-{run}-ix"),
        payload: r#"{"client_id":"x","scope":"openid","state":"\"quoted\" ✓"}"#.to_owned(),
        expires_at: NOW + 600,
    };
    store
        .insert_interaction(&interaction)
        .await
        .expect("insert interaction");
    let get = async |now: i64| {
        store
            .get_interaction(&interaction.interaction_id, now)
            .await
            .expect("get interaction")
    };
    assert_eq!(get(NOW).await, Some(interaction.clone()));
    assert_eq!(get(NOW + 599).await, Some(interaction.clone()));
    assert_eq!(get(NOW + 600).await, None, "expired at expires_at");

    let err = store
        .insert_interaction(&interaction)
        .await
        .expect_err("duplicate interaction must fail");
    assert!(
        matches!(err, StoreError::Conflict),
        "expected Conflict, got {err:?}"
    );

    let updated = Interaction {
        payload: r#"{"step":"consent"}"#.to_owned(),
        ..interaction.clone()
    };
    assert!(
        store
            .update_interaction(&updated)
            .await
            .expect("update interaction")
    );
    assert_eq!(get(NOW).await, Some(updated.clone()), "payload replaced");
    assert!(
        !store
            .update_interaction(&Interaction {
                interaction_id: format!("conf-{run}-nothing"),
                ..updated.clone()
            })
            .await
            .expect("update unknown interaction"),
        "unknown interaction does not match"
    );
    assert_eq!(
        store
            .get_interaction(&format!("conf-{run}-nothing"), NOW)
            .await
            .expect("get"),
        None,
        "update does not create"
    );

    assert!(
        store
            .delete_interaction(&interaction.interaction_id)
            .await
            .expect("delete interaction")
    );
    assert!(
        !store
            .delete_interaction(&interaction.interaction_id)
            .await
            .expect("delete interaction again"),
        "completed only once"
    );
    assert_eq!(get(NOW).await, None);
    assert!(
        !store
            .update_interaction(&updated)
            .await
            .expect("update deleted interaction"),
        "a deleted interaction does not match"
    );
}

/// `add_consent` adds to what was allowed (a union, each scope once, earlier ones
/// first), per user and client.
pub async fn consent_union(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "c").await;
    let other_client = client(&format!("conf-{run}-other-client"), 1);
    store
        .insert_client(&other_client)
        .await
        .expect("insert client");
    let consent = async |client_id: &str| {
        store
            .get_consent(&party.user.user_id, client_id)
            .await
            .expect("get consent")
    };
    assert_eq!(consent(&party.client.client_id).await, Vec::<String>::new());

    let add = async |client_id: &str, scopes: &[&str], now: i64| {
        store
            .add_consent(&party.user.user_id, client_id, &strings(scopes), now)
            .await
            .expect("add consent");
    };
    add(&party.client.client_id, &["openid", "profile"], NOW).await;
    assert_eq!(
        consent(&party.client.client_id).await,
        strings(&["openid", "profile"])
    );
    add(
        &party.client.client_id,
        &["profile", "email", "email"],
        NOW + 1,
    )
    .await;
    assert_eq!(
        consent(&party.client.client_id).await,
        strings(&["openid", "profile", "email"]),
        "union, each scope once"
    );
    add(&party.client.client_id, &[], NOW + 2).await;
    assert_eq!(
        consent(&party.client.client_id).await,
        strings(&["openid", "profile", "email"]),
        "adding nothing changes nothing"
    );
    assert_eq!(
        consent(&other_client.client_id).await,
        Vec::<String>::new(),
        "consent is per client"
    );
    add(&other_client.client_id, &["offline_access"], NOW).await;
    assert_eq!(
        consent(&other_client.client_id).await,
        strings(&["offline_access"])
    );
    assert_eq!(
        consent(&party.client.client_id).await,
        strings(&["openid", "profile", "email"])
    );
}

/// `purge_sessions` deletes sessions and interactions that expired strictly
/// before `now`, at most `limit` of each per call.
pub async fn sessions_purge(store: &dyn Store) {
    let run = unique();
    let now = timeline();
    let party = party(store, &run, "p").await;
    let expired: Vec<Session> = (0..3)
        .map(|i| session_of(&party, &hash(&run, &format!("expired-{i}")), now - 30 + i))
        .collect();
    let at_now = session_of(&party, &hash(&run, "at-now"), now);
    let live = session_of(&party, &hash(&run, "live"), now + 3_600);
    for session in expired.iter().chain([&at_now, &live]) {
        store.insert_session(session).await.expect("insert session");
    }
    let interactions: Vec<Interaction> = (0..3)
        .map(|i| Interaction {
            interaction_id: format!("conf-{run}-ix-{i}"),
            payload: "{}".to_owned(),
            expires_at: now - 20 + i,
        })
        .collect();
    let live_interaction = Interaction {
        interaction_id: format!("conf-{run}-ix-live"),
        payload: "{}".to_owned(),
        expires_at: now + 600,
    };
    for interaction in interactions.iter().chain([&live_interaction]) {
        store
            .insert_interaction(interaction)
            .await
            .expect("insert interaction");
    }

    // Clear what earlier runs left before our window, so the counts below are exact.
    while store
        .purge_sessions(now - 100, 1_000)
        .await
        .expect("purge older records")
        > 0
    {}
    // Seen from before they expired, all are there.
    let stored_sessions = async |sessions: &[Session]| {
        let mut count = 0;
        for session in sessions {
            if store
                .get_session(&session.session_hash, now - 1_000)
                .await
                .expect("get session")
                .is_some()
            {
                count += 1;
            }
        }
        count
    };
    let stored_interactions = async |interactions: &[Interaction]| {
        let mut count = 0;
        for interaction in interactions {
            if store
                .get_interaction(&interaction.interaction_id, now - 1_000)
                .await
                .expect("get interaction")
                .is_some()
            {
                count += 1;
            }
        }
        count
    };
    assert_eq!(stored_sessions(&expired).await, 3);
    assert_eq!(stored_interactions(&interactions).await, 3);

    assert_eq!(
        store.purge_sessions(now, 2).await.expect("purge"),
        4,
        "two sessions and two interactions"
    );
    assert_eq!(stored_sessions(&expired).await, 1);
    assert_eq!(stored_interactions(&interactions).await, 1);
    assert_eq!(store.purge_sessions(now, 0).await.expect("purge"), 0);
    assert_eq!(store.purge_sessions(now, 2).await.expect("purge"), 2);
    assert_eq!(
        store.purge_sessions(now, 2).await.expect("purge"),
        0,
        "expires_at == now is kept"
    );
    assert_eq!(stored_sessions(&expired).await, 0);
    assert_eq!(stored_interactions(&interactions).await, 0);
    assert_eq!(
        stored_sessions(&[at_now.clone(), live.clone()]).await,
        2,
        "unexpired sessions kept"
    );
    assert_eq!(
        store
            .get_interaction(&live_interaction.interaction_id, now)
            .await
            .expect("get"),
        Some(live_interaction.clone())
    );

    assert_eq!(store.purge_sessions(now + 1, 100).await.expect("purge"), 1);
    assert_eq!(stored_sessions(&[at_now]).await, 0);
    assert_eq!(
        store
            .get_session(&live.session_hash, now)
            .await
            .expect("get"),
        Some(live)
    );
}

// ---------------------------------------------------------------------------------
// Grants and codes

/// A grant (with or without a status index) and its code come back as inserted
/// (the code through `redeem_code`); a taken grant id or code hash fails with
/// `Conflict` and stores neither part.
pub async fn grants_insert_and_get(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "g").await;
    let status_idx = reserve(store, &party.client.client_id, 1, NOW + 86_400).await;
    let grant = Grant {
        scope: strings(&["openid", "profile", "read:things"]),
        amr: strings(&["pwd", "otp"]),
        status_idx: Some(status_idx),
        resources: strings(&["https://api.example", "urn:x:orders"]),
        ..grant_of(
            &party,
            &format!("conf-{run}-grant"),
            Some("sid ✓ \"x\""),
            NOW + 86_400,
        )
    };
    let code = code_of(&grant, hash(&run, "code"), NOW + 60);
    store
        .insert_grant_with_code(&grant, &code)
        .await
        .expect("insert grant with code");
    assert_eq!(
        store.get_grant(&grant.grant_id).await.expect("get grant"),
        Some(grant.clone()),
        "grant roundtrip"
    );
    assert_eq!(
        store
            .get_grant(&format!("conf-{run}-missing"))
            .await
            .expect("get missing grant"),
        None
    );

    // A bare grant and code: no sid, no status index, no nonce, empty lists.
    let bare_grant = Grant {
        sid: None,
        scope: vec![],
        amr: vec![],
        status_idx: None,
        resources: vec![],
        ..grant.clone()
    };
    let bare_grant = Grant {
        grant_id: format!("conf-{run}-bare"),
        ..bare_grant
    };
    let bare_code = AuthorizationCode {
        nonce: None,
        scope: vec![],
        resources: vec![],
        ..code_of(&bare_grant, hash(&run, "bare-code"), NOW + 60)
    };
    store
        .insert_grant_with_code(&bare_grant, &bare_code)
        .await
        .expect("insert bare grant");
    assert_eq!(
        store.get_grant(&bare_grant.grant_id).await.expect("get"),
        Some(bare_grant.clone())
    );

    for (label, expected) in [(&code, &grant), (&bare_code, &bare_grant)] {
        match store
            .redeem_code(&label.code_hash, NOW)
            .await
            .expect("redeem")
        {
            CodeRedemption::Redeemed(got) => {
                assert_eq!(
                    got,
                    AuthorizationCode {
                        consumed_at: Some(NOW),
                        ..label.clone()
                    },
                    "code roundtrip"
                );
                assert_eq!(got.grant_id, expected.grant_id);
            }
            other => panic!("expected Redeemed, got {other:?}"),
        }
    }

    // Same grant id, new code: nothing stored.
    let dup_grant_code = code_of(&grant, hash(&run, "dup-grant-code"), NOW + 60);
    let err = store
        .insert_grant_with_code(
            &Grant {
                scope: strings(&["other"]),
                ..grant.clone()
            },
            &dup_grant_code,
        )
        .await
        .expect_err("duplicate grant id must fail");
    assert!(
        matches!(err, StoreError::Conflict),
        "expected Conflict, got {err:?}"
    );
    assert_eq!(
        store
            .redeem_code(&dup_grant_code.code_hash, NOW)
            .await
            .expect("redeem"),
        CodeRedemption::Unknown,
        "the code of a refused grant is not stored"
    );
    assert_eq!(
        store.get_grant(&grant.grant_id).await.expect("get"),
        Some(grant.clone()),
        "first grant unchanged"
    );

    // New grant id, taken code hash: the grant is not stored either.
    let new_grant = Grant {
        grant_id: format!("conf-{run}-new"),
        ..grant.clone()
    };
    let err = store
        .insert_grant_with_code(
            &new_grant,
            &code_of(&new_grant, code.code_hash.clone(), NOW + 60),
        )
        .await
        .expect_err("duplicate code hash must fail");
    assert!(
        matches!(err, StoreError::Conflict),
        "expected Conflict, got {err:?}"
    );
    assert_eq!(
        store.get_grant(&new_grant.grant_id).await.expect("get"),
        None,
        "one transaction: the grant of a refused code is not stored"
    );
}

/// A code is redeemed once; later attempts are `Replayed` with the first
/// consumption time. Unknown hashes are `Unknown`.
pub async fn codes_redeem_once(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "r").await;
    let (_, code) = issue(store, &party, &run, "once", None).await;

    assert_eq!(
        store
            .redeem_code(&code.code_hash, NOW)
            .await
            .expect("redeem"),
        CodeRedemption::Redeemed(AuthorizationCode {
            consumed_at: Some(NOW),
            ..code.clone()
        })
    );
    for later in [NOW + 1, NOW + 10_000] {
        assert_eq!(
            store
                .redeem_code(&code.code_hash, later)
                .await
                .expect("redeem again"),
            CodeRedemption::Replayed(AuthorizationCode {
                consumed_at: Some(NOW),
                ..code.clone()
            }),
            "replay at {later}, even after expiry"
        );
    }
    assert_eq!(
        store
            .redeem_code(&hash(&run, "nocode"), NOW)
            .await
            .expect("redeem unknown"),
        CodeRedemption::Unknown
    );
}

/// An unconsumed code is `Unknown` from its `expires_at` on, and so is a code of
/// an expired or revoked grant; a code consumed before is `Replayed` regardless.
pub async fn codes_expiry_and_dead_grants(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "e").await;

    let (_, code) = issue(store, &party, &run, "expiring", None).await;
    assert_eq!(
        store
            .redeem_code(&code.code_hash, code.expires_at)
            .await
            .expect("redeem at expiry"),
        CodeRedemption::Unknown,
        "expired at expires_at"
    );
    assert!(
        matches!(
            store
                .redeem_code(&code.code_hash, code.expires_at - 1)
                .await
                .expect("redeem just before expiry"),
            CodeRedemption::Redeemed(_)
        ),
        "an expired attempt does not consume the code"
    );

    // The grant ends before the code does.
    let short = grant_of(&party, &format!("conf-{run}-short"), None, NOW + 30);
    let short_code = code_of(&short, hash(&run, "short-code"), NOW + 60);
    store
        .insert_grant_with_code(&short, &short_code)
        .await
        .expect("insert grant");
    assert_eq!(
        store
            .redeem_code(&short_code.code_hash, NOW + 30)
            .await
            .expect("redeem"),
        CodeRedemption::Unknown,
        "a code of an expired grant"
    );

    // Revocation: an unconsumed code is deleted, a consumed one still replays.
    let (revoked, unused) = issue(store, &party, &run, "revoked", None).await;
    let (revoked_used, used) = issue(store, &party, &run, "revoked-used", None).await;
    assert!(matches!(
        store
            .redeem_code(&used.code_hash, NOW)
            .await
            .expect("redeem"),
        CodeRedemption::Redeemed(_)
    ));
    for grant in [&revoked, &revoked_used] {
        assert!(
            store
                .revoke_grant(&grant.grant_id, NOW + 1)
                .await
                .expect("revoke")
        );
    }
    assert_eq!(
        store
            .redeem_code(&unused.code_hash, NOW + 2)
            .await
            .expect("redeem"),
        CodeRedemption::Unknown,
        "an unused code of a revoked grant"
    );
    assert_eq!(
        store
            .redeem_code(&used.code_hash, NOW + 2)
            .await
            .expect("redeem"),
        CodeRedemption::Replayed(AuthorizationCode {
            consumed_at: Some(NOW),
            ..used
        }),
        "a used code of a revoked grant is still a replay"
    );
}

// ---------------------------------------------------------------------------------
// Refresh tokens

/// A refresh token comes back from `get_refresh_token` exactly as inserted, in
/// any state; a taken hash is a `Conflict`.
pub async fn refresh_insert_and_get(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "t").await;
    let (grant, _) = issue(store, &party, &run, "t", None).await;
    let fresh = refresh(&grant, hash(&run, "fresh"), NOW + 3_600);
    let rotated = RefreshToken {
        scope: vec![],
        rotated_at: Some(NOW - 1),
        sealed_successor: Some(vec![0x00, 0xff, 0x80]),
        ..refresh(&grant, hash(&run, "rotated"), NOW + 3_600)
    };
    for token in [&fresh, &rotated] {
        store
            .insert_refresh_token(token)
            .await
            .expect("insert refresh token");
        assert_eq!(
            store
                .get_refresh_token(&token.token_hash)
                .await
                .expect("get refresh token"),
            Some(token.clone())
        );
    }
    assert_eq!(
        store
            .get_refresh_token(&hash(&run, "none"))
            .await
            .expect("get unknown"),
        None
    );
    let err = store
        .insert_refresh_token(&RefreshToken {
            expires_at: NOW + 1,
            ..fresh.clone()
        })
        .await
        .expect_err("duplicate refresh token must fail");
    assert!(
        matches!(err, StoreError::Conflict),
        "expected Conflict, got {err:?}"
    );
    assert_eq!(
        store
            .get_refresh_token(&fresh.token_hash)
            .await
            .expect("get"),
        Some(fresh)
    );
}

/// Rotation marks the presented token (storing the sealed successor), stores the
/// successor and returns the token as it was with its grant; a second rotation is
/// `AlreadyRotated` with the first one's record and stores nothing.
pub async fn refresh_rotate(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "rot").await;
    let (grant, _) = issue(store, &party, &run, "rot", None).await;
    let presented = refresh(&grant, hash(&run, "rt-0"), NOW + 3_600);
    store
        .insert_refresh_token(&presented)
        .await
        .expect("insert refresh token");

    let successor = refresh(&grant, hash(&run, "rt-1"), NOW + 7_200);
    let sealed = vec![0x01, 0x00, 0xfe];
    assert_eq!(
        store
            .rotate_refresh_token(&presented.token_hash, &successor, &sealed, NOW)
            .await
            .expect("rotate"),
        Rotation::Rotated {
            previous: presented.clone(),
            grant: grant.clone()
        }
    );
    let rotated = RefreshToken {
        rotated_at: Some(NOW),
        sealed_successor: Some(sealed.clone()),
        ..presented.clone()
    };
    assert_eq!(
        store
            .get_refresh_token(&presented.token_hash)
            .await
            .expect("get presented"),
        Some(rotated.clone())
    );
    assert_eq!(
        store
            .get_refresh_token(&successor.token_hash)
            .await
            .expect("get successor"),
        Some(successor.clone())
    );

    let second = refresh(&grant, hash(&run, "rt-1b"), NOW + 7_200);
    assert_eq!(
        store
            .rotate_refresh_token(&presented.token_hash, &second, &[0x99], NOW + 5)
            .await
            .expect("rotate again"),
        Rotation::AlreadyRotated {
            previous: rotated.clone(),
            grant: grant.clone()
        }
    );
    assert_eq!(
        store
            .get_refresh_token(&second.token_hash)
            .await
            .expect("get second successor"),
        None,
        "a second rotation stores nothing"
    );
    assert_eq!(
        store
            .get_refresh_token(&presented.token_hash)
            .await
            .expect("get presented"),
        Some(rotated),
        "the first rotation's record is kept"
    );

    // The successor rotates in turn.
    let third = refresh(&grant, hash(&run, "rt-2"), NOW + 9_000);
    assert!(matches!(
        store
            .rotate_refresh_token(&successor.token_hash, &third, &[0x02], NOW + 10)
            .await
            .expect("rotate successor"),
        Rotation::Rotated { .. }
    ));
}

/// Expired tokens (from `expires_at` on), rotated tokens past their expiry,
/// tokens of expired or revoked grants and unknown hashes are `Unknown`, and no
/// successor is stored for them.
pub async fn refresh_rotate_unknown(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "unk").await;
    let (grant, _) = issue(store, &party, &run, "unk", None).await;
    let short = grant_of(&party, &format!("conf-{run}-short"), None, NOW + 100);
    let (revoked, _) = issue(store, &party, &run, "revoked", None).await;
    store
        .insert_grant_with_code(&short, &code_of(&short, hash(&run, "short-code"), NOW + 60))
        .await
        .expect("insert grant");

    let expiring = refresh(&grant, hash(&run, "expiring"), NOW + 50);
    let was_rotated = refresh(&grant, hash(&run, "was-rotated"), NOW + 50);
    let of_short = refresh(&short, hash(&run, "of-short"), NOW + 100);
    let of_revoked = refresh(&revoked, hash(&run, "of-revoked"), NOW + 3_600);
    for token in [&expiring, &was_rotated, &of_short, &of_revoked] {
        store.insert_refresh_token(token).await.expect("insert");
    }
    assert!(matches!(
        store
            .rotate_refresh_token(
                &was_rotated.token_hash,
                &refresh(&grant, hash(&run, "wr-succ"), NOW + 3_600),
                &[1],
                NOW
            )
            .await
            .expect("rotate"),
        Rotation::Rotated { .. }
    ));
    assert!(
        store
            .revoke_grant(&revoked.grant_id, NOW)
            .await
            .expect("revoke")
    );

    for (label, presented, now) in [
        (
            "expired at expires_at",
            expiring.token_hash.clone(),
            NOW + 50,
        ),
        (
            "rotated, then expired",
            was_rotated.token_hash.clone(),
            NOW + 50,
        ),
        ("grant expired", of_short.token_hash.clone(), NOW + 100),
        ("grant revoked", of_revoked.token_hash.clone(), NOW + 1),
        ("unknown hash", hash(&run, "nothing"), NOW),
    ] {
        let successor = refresh(&grant, hash(&run, &format!("succ-{label}")), NOW + 3_600);
        assert_eq!(
            store
                .rotate_refresh_token(&presented, &successor, &[7], now)
                .await
                .expect("rotate"),
            Rotation::Unknown,
            "{label}"
        );
        assert_eq!(
            store
                .get_refresh_token(&successor.token_hash)
                .await
                .expect("get successor"),
            None,
            "{label}: no successor stored"
        );
    }
    assert_eq!(
        store
            .get_refresh_token(&expiring.token_hash)
            .await
            .expect("get"),
        Some(expiring),
        "a refused rotation leaves the token as it was"
    );
}

// ---------------------------------------------------------------------------------
// Revocation of grants

/// `revoke_grant` marks the grant, deletes its refresh tokens and unused codes,
/// revokes its recorded unexpired access tokens (not the expired ones), and
/// leaves other grants alone. An access token recorded after the revocation is
/// revoked at once.
pub async fn grants_revoke(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "rv").await;
    let (grant, code) = issue(store, &party, &run, "target", None).await;
    let (other, _) = issue(store, &party, &run, "bystander", None).await;

    let tokens: Vec<RefreshToken> = (0..2)
        .map(|i| refresh(&grant, hash(&run, &format!("rt-{i}")), NOW + 3_600))
        .collect();
    for token in &tokens {
        store.insert_refresh_token(token).await.expect("insert");
    }
    let other_token = refresh(&other, hash(&run, "other-rt"), NOW + 3_600);
    store
        .insert_refresh_token(&other_token)
        .await
        .expect("insert");
    // One of them rotated already: its successor belongs to the grant too.
    let successor = refresh(&grant, hash(&run, "rt-succ"), NOW + 3_600);
    assert!(matches!(
        store
            .rotate_refresh_token(&tokens[0].token_hash, &successor, &[1], NOW)
            .await
            .expect("rotate"),
        Rotation::Rotated { .. }
    ));

    let live_jti = format!("conf-{run}-live");
    let at_now_jti = format!("conf-{run}-at-now");
    let expired_jti = format!("conf-{run}-expired");
    let other_jti = format!("conf-{run}-other");
    for (grant_id, jti, expires_at) in [
        (&grant.grant_id, &live_jti, NOW + 600),
        (&grant.grant_id, &at_now_jti, NOW + 10),
        (&grant.grant_id, &expired_jti, NOW - 1),
        (&other.grant_id, &other_jti, NOW + 600),
    ] {
        store
            .record_access_token(grant_id, jti, expires_at)
            .await
            .expect("record access token");
    }
    // Recording the same jti twice is not an error.
    store
        .record_access_token(&grant.grant_id, &live_jti, NOW + 600)
        .await
        .expect("record access token again");

    let revoked_at = NOW + 10;
    assert!(
        store
            .revoke_grant(&grant.grant_id, revoked_at)
            .await
            .expect("revoke grant")
    );
    assert_eq!(
        store.get_grant(&grant.grant_id).await.expect("get"),
        Some(Grant {
            revoked_at: Some(revoked_at),
            ..grant.clone()
        })
    );
    for token in tokens.iter().chain([&successor]) {
        assert_eq!(
            store
                .get_refresh_token(&token.token_hash)
                .await
                .expect("get refresh token"),
            None,
            "refresh tokens of a revoked grant are deleted"
        );
        assert_eq!(
            store
                .rotate_refresh_token(
                    &token.token_hash,
                    &refresh(&grant, hash(&run, "late"), NOW + 3_600),
                    &[2],
                    revoked_at + 1
                )
                .await
                .expect("rotate"),
            Rotation::Unknown
        );
    }
    assert_eq!(
        store
            .redeem_code(&code.code_hash, revoked_at + 1)
            .await
            .expect("redeem"),
        CodeRedemption::Unknown,
        "unused codes of a revoked grant are deleted"
    );
    assert!(store.is_revoked(&live_jti).await.expect("is_revoked"));
    assert!(
        !store.is_revoked(&at_now_jti).await.expect("is_revoked"),
        "a token expiring at the revocation time is not recorded"
    );
    assert!(
        !store.is_revoked(&expired_jti).await.expect("is_revoked"),
        "expired tokens are not recorded"
    );

    // A token minted under the grant while it was being revoked is revoked too.
    let late_jti = format!("conf-{run}-late");
    store
        .record_access_token(&grant.grant_id, &late_jti, NOW + 600)
        .await
        .expect("record after revocation");
    assert!(
        store.is_revoked(&late_jti).await.expect("is_revoked"),
        "an access token recorded under a revoked grant is revoked at once"
    );

    // The other grant is untouched.
    assert_eq!(
        store.get_grant(&other.grant_id).await.expect("get"),
        Some(other.clone())
    );
    assert!(!store.is_revoked(&other_jti).await.expect("is_revoked"));
    assert_eq!(
        store
            .get_refresh_token(&other_token.token_hash)
            .await
            .expect("get"),
        Some(other_token)
    );

    assert!(
        !store
            .revoke_grant(&grant.grant_id, revoked_at + 5)
            .await
            .expect("revoke again"),
        "a revoked grant is not live"
    );
    assert_eq!(
        store
            .get_grant(&grant.grant_id)
            .await
            .expect("get")
            .and_then(|grant| grant.revoked_at),
        Some(revoked_at),
        "the first revocation time is kept"
    );
    assert!(
        !store
            .revoke_grant(&format!("conf-{run}-nogrant"), NOW)
            .await
            .expect("revoke unknown")
    );
}

/// `revoke_grants_of_session`, `_of_user` and `_of_client` revoke exactly the
/// live grants they name, with their access tokens, and count them.
pub async fn grants_revoke_by_owner(store: &dyn Store) {
    let run = unique();
    let u1_c1 = party(store, &run, "u1").await;
    let c2 = client(&format!("conf-{run}-c2"), 1);
    store.insert_client(&c2).await.expect("insert client");
    let u1_c2 = Party {
        client: c2.clone(),
        user: u1_c1.user.clone(),
    };
    let u2_c1 = party_with_client(store, &run, "u2", &u1_c1.client).await;
    let u2_c2 = Party {
        client: c2.clone(),
        user: u2_c1.user.clone(),
    };
    let s1 = format!("conf-{run}-s1");
    let s2 = format!("conf-{run}-s2");
    let s3 = format!("conf-{run}-s3");

    let mut grants = Vec::new();
    for (label, party, sid) in [
        ("g1", &u1_c1, Some(&s1)),
        ("g2", &u1_c1, Some(&s1)),
        ("g3", &u1_c2, Some(&s2)),
        ("g4", &u2_c1, Some(&s3)),
        ("g5", &u2_c2, None),
    ] {
        let (grant, _) = issue(store, party, &run, label, sid.map(String::as_str)).await;
        let jti = format!("conf-{run}-{label}-jti");
        store
            .record_access_token(&grant.grant_id, &jti, NOW + 600)
            .await
            .expect("record");
        grants.push((grant, jti));
    }
    let revoked = async || {
        let mut names = Vec::new();
        for (grant, jti) in &grants {
            let stored = store
                .get_grant(&grant.grant_id)
                .await
                .expect("get")
                .expect("grant exists");
            let token_revoked = store.is_revoked(jti).await.expect("is_revoked");
            assert_eq!(
                stored.revoked_at.is_some(),
                token_revoked,
                "grant {} and its access token agree",
                grant.grant_id
            );
            if token_revoked {
                names.push(grant.grant_id.rsplit('-').next().unwrap_or("").to_owned());
            }
        }
        names
    };

    assert_eq!(
        store
            .revoke_grants_of_session(&s1, NOW)
            .await
            .expect("by session"),
        2
    );
    assert_eq!(revoked().await, ["g1", "g2"]);
    assert_eq!(
        store
            .revoke_grants_of_session(&s1, NOW + 1)
            .await
            .expect("by session again"),
        0,
        "already revoked"
    );
    assert_eq!(
        store
            .revoke_grants_of_session(&format!("conf-{run}-nosid"), NOW)
            .await
            .expect("by unknown session"),
        0
    );

    assert_eq!(
        store
            .revoke_grants_of_user(&u1_c1.user.user_id, NOW)
            .await
            .expect("by user"),
        1,
        "only the user's live grant"
    );
    assert_eq!(revoked().await, ["g1", "g2", "g3"]);

    assert_eq!(
        store
            .revoke_grants_of_client(&c2.client_id, NOW)
            .await
            .expect("by client"),
        1,
        "only the client's live grant"
    );
    assert_eq!(revoked().await, ["g1", "g2", "g3", "g5"]);

    assert_eq!(
        store
            .revoke_grants_of_client(&u1_c1.client.client_id, NOW)
            .await
            .expect("by client"),
        1
    );
    assert_eq!(revoked().await, ["g1", "g2", "g3", "g4", "g5"]);
    assert_eq!(
        store
            .revoke_grants_of_user(&u2_c1.user.user_id, NOW)
            .await
            .expect("by user"),
        0
    );
}

/// `delete_client` takes its grants and consents with it and revokes the grants'
/// recorded access tokens; the user stays.
pub async fn clients_delete_cascades(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "dc").await;
    let (grant, code) = issue(store, &party, &run, "dc", None).await;
    let token = refresh(&grant, hash(&run, "rt"), NOW + 3_600);
    store.insert_refresh_token(&token).await.expect("insert");
    let jti = format!("conf-{run}-jti");
    store
        .record_access_token(&grant.grant_id, &jti, NOW + 600)
        .await
        .expect("record");
    store
        .add_consent(
            &party.user.user_id,
            &party.client.client_id,
            &strings(&["openid"]),
            NOW,
        )
        .await
        .expect("consent");

    assert!(
        store
            .delete_client(&party.client.client_id)
            .await
            .expect("delete client")
    );
    assert_eq!(store.get_grant(&grant.grant_id).await.expect("get"), None);
    assert_eq!(
        store
            .redeem_code(&code.code_hash, NOW)
            .await
            .expect("redeem"),
        CodeRedemption::Unknown
    );
    assert_eq!(
        store
            .get_refresh_token(&token.token_hash)
            .await
            .expect("get"),
        None
    );
    assert!(store.is_revoked(&jti).await.expect("is_revoked"));
    assert_eq!(
        store
            .get_consent(&party.user.user_id, &party.client.client_id)
            .await
            .expect("consent"),
        Vec::<String>::new()
    );
    assert_eq!(
        store.get_user(&party.user.user_id).await.expect("get user"),
        Some(party.user.clone())
    );
}

/// `purge_grants` deletes codes (consumed or not), refresh tokens, access token
/// records and grants that expired strictly before `now`, at most `limit` of each
/// kind per call, and nothing live.
pub async fn grants_purge(store: &dyn Store) {
    let run = unique();
    let now = timeline();
    let party = party(store, &run, "pg").await;

    // A live grant, with a live code, and expired and live descendants.
    let live = grant_of(&party, &format!("conf-{run}-live"), None, now + 3_600);
    let live_code = code_of(&live, hash(&run, "live-code"), now + 60);
    store
        .insert_grant_with_code(&live, &live_code)
        .await
        .expect("insert grant");
    // Three live grants whose codes expired (one of them consumed).
    let mut expired_codes = Vec::new();
    for i in 0..3 {
        let holder = grant_of(&party, &format!("conf-{run}-holder-{i}"), None, now + 3_600);
        let code = code_of(&holder, hash(&run, &format!("old-code-{i}")), now - 10 + i);
        store
            .insert_grant_with_code(&holder, &code)
            .await
            .expect("insert grant");
        expired_codes.push(code);
    }
    assert!(matches!(
        store
            .redeem_code(&expired_codes[0].code_hash, now - 1_000)
            .await
            .expect("redeem"),
        CodeRedemption::Redeemed(_)
    ));
    // Two expired grants; their codes expired before anything else.
    let mut expired_grants = Vec::new();
    for i in 0..2 {
        let old = grant_of(&party, &format!("conf-{run}-old-{i}"), None, now - 40 + i);
        let code = code_of(
            &old,
            hash(&run, &format!("old-grant-code-{i}")),
            now - 50 + i,
        );
        store
            .insert_grant_with_code(&old, &code)
            .await
            .expect("insert grant");
        expired_grants.push(old);
    }
    let expired_tokens: Vec<RefreshToken> = (0..3)
        .map(|i| refresh(&live, hash(&run, &format!("old-rt-{i}")), now - 20 + i))
        .collect();
    let at_now_token = refresh(&live, hash(&run, "at-now-rt"), now);
    let live_token = refresh(&live, hash(&run, "live-rt"), now + 600);
    for token in expired_tokens.iter().chain([&at_now_token, &live_token]) {
        store.insert_refresh_token(token).await.expect("insert");
    }
    for i in 0..3 {
        store
            .record_access_token(&live.grant_id, &format!("conf-{run}-old-{i}"), now - 30 + i)
            .await
            .expect("record");
    }
    let live_jti = format!("conf-{run}-live-jti");
    store
        .record_access_token(&live.grant_id, &live_jti, now + 600)
        .await
        .expect("record");

    // Clear what earlier runs left before our window, so the counts below are exact.
    while store
        .purge_grants(now - 100, 1_000)
        .await
        .expect("purge older records")
        > 0
    {}
    for old in &expired_grants {
        assert!(
            store.get_grant(&old.grant_id).await.expect("get").is_some(),
            "nothing of ours purged yet"
        );
    }

    // Expired: 5 codes, 3 refresh tokens, 3 access token records, 2 grants. Oldest
    // first, so the two expired grants go with the two codes that were theirs.
    assert_eq!(
        store.purge_grants(now, 2).await.expect("purge"),
        8,
        "two of each kind"
    );
    assert_eq!(store.purge_grants(now, 0).await.expect("purge"), 0);
    assert_eq!(
        store.purge_grants(now, 1_000).await.expect("purge"),
        3 + 1 + 1,
        "the rest"
    );
    assert_eq!(
        store.purge_grants(now, 1_000).await.expect("purge"),
        0,
        "expires_at == now is kept"
    );

    for old in &expired_grants {
        assert_eq!(store.get_grant(&old.grant_id).await.expect("get"), None);
    }
    for token in &expired_tokens {
        assert_eq!(
            store
                .get_refresh_token(&token.token_hash)
                .await
                .expect("get"),
            None
        );
    }
    assert_eq!(
        store
            .redeem_code(&expired_codes[0].code_hash, now)
            .await
            .expect("redeem"),
        CodeRedemption::Unknown,
        "a consumed code is purged once expired"
    );
    assert_eq!(
        store
            .get_refresh_token(&at_now_token.token_hash)
            .await
            .expect("get"),
        Some(at_now_token.clone())
    );
    assert_eq!(
        store
            .get_refresh_token(&live_token.token_hash)
            .await
            .expect("get"),
        Some(live_token.clone())
    );
    assert_eq!(
        store.get_grant(&live.grant_id).await.expect("get"),
        Some(live.clone())
    );
    assert!(matches!(
        store
            .redeem_code(&live_code.code_hash, now)
            .await
            .expect("redeem"),
        CodeRedemption::Redeemed(_)
    ));

    assert_eq!(store.purge_grants(now + 1, 1_000).await.expect("purge"), 1);
    assert_eq!(
        store
            .get_refresh_token(&at_now_token.token_hash)
            .await
            .expect("get"),
        None
    );
    // The live access token record survived: revoking the grant reaches it.
    assert!(
        store
            .revoke_grant(&live.grant_id, now + 1)
            .await
            .expect("revoke")
    );
    assert!(store.is_revoked(&live_jti).await.expect("is_revoked"));
}

// ---------------------------------------------------------------------------------
// Token status list

/// Blocks reserved one after the other do not overlap, whichever client they are
/// for; a size below 1 is refused.
pub async fn status_blocks_reserve(store: &dyn Store) {
    let run = unique();
    let mut blocks = Vec::new();
    for (i, size) in [10, 1, 5, 1_000].into_iter().enumerate() {
        let client_id = format!("conf-{run}-c{}", i % 2);
        let start = reserve(store, &client_id, size, NOW + 600).await;
        assert!(start >= 0, "indices are not negative");
        blocks.push((start, size));
    }
    assert_disjoint(&blocks);
    for size in [0, -1] {
        store
            .reserve_status_block(&format!("conf-{run}-c0"), size, NOW + 600, NOW)
            .await
            .expect_err("a block of no index is refused");
    }
}

/// Recorded ranges come back from `status_revocations_after` oldest first with a
/// growing `seq`, page by page; `last_status_seq` is the newest one's.
/// `status_revocations_between` returns, oldest first, the ranges overlapping a
/// half-open window whose `expires_at` is after `now`. An empty range is refused.
pub async fn status_ranges_revoke_and_read(store: &dyn Store) {
    let run = unique();
    let start = reserve(store, &format!("conf-{run}-client"), 100, NOW + 3_600).await;
    let base = store.last_status_seq().await.expect("last seq");
    let ranges = [
        (start + 10, start + 20, NOW + 100, NOW),
        (start + 30, start + 31, NOW + 50, NOW + 1),
        (start + 50, start + 60, NOW - 1, NOW + 2),
    ];
    for (from, to, expires_at, revoked_at) in ranges {
        store
            .revoke_status_range(from, to, expires_at, revoked_at)
            .await
            .expect("revoke range");
    }

    let recorded = store
        .status_revocations_after(base, 100)
        .await
        .expect("revocations after");
    assert_eq!(as_ranges(&recorded), ranges, "recorded as given, in order");
    assert!(
        base < recorded[0].seq && recorded[0].seq < recorded[1].seq,
        "seq grows: {recorded:?}"
    );
    assert!(recorded[1].seq < recorded[2].seq, "seq grows: {recorded:?}");
    assert_eq!(
        store.last_status_seq().await.expect("last seq"),
        recorded[2].seq
    );
    let after = async |seq, limit| {
        store
            .status_revocations_after(seq, limit)
            .await
            .expect("revocations after")
    };
    assert_eq!(after(base, 2).await, recorded[..2], "limit honoured");
    assert_eq!(after(recorded[1].seq, 100).await, recorded[2..]);
    assert_eq!(after(recorded[2].seq, 100).await, []);
    assert_eq!(after(base, 0).await, []);

    let between = async |from, to, now| {
        store
            .status_revocations_between(from, to, now)
            .await
            .expect("revocations between")
    };
    assert_eq!(
        between(start, start + 100, NOW).await,
        recorded[..2],
        "the expired range is left out"
    );
    assert_eq!(between(start + 20, start + 30, NOW).await, [], "half-open");
    assert_eq!(between(start, start + 10, NOW).await, [], "half-open");
    assert_eq!(between(start + 19, start + 20, NOW).await, recorded[..1]);
    assert_eq!(between(start + 15, start + 16, NOW).await, recorded[..1]);
    assert_eq!(between(start + 30, start + 31, NOW).await, recorded[1..2]);
    assert_eq!(between(start, start + 11, NOW).await, recorded[..1]);
    assert_eq!(
        between(start, start + 100, NOW + 50).await,
        recorded[..1],
        "a range expiring at `now` is expired"
    );
    assert_eq!(between(start, start + 100, NOW - 2).await, recorded);

    for (from, to) in [(start + 5, start + 5), (start + 6, start + 5)] {
        store
            .revoke_status_range(from, to, NOW + 100, NOW)
            .await
            .expect_err("an empty range is refused");
    }
    assert_eq!(
        store.last_status_seq().await.expect("last seq"),
        recorded[2].seq,
        "nothing recorded for a refused range"
    );
}

/// `revoke_status_blocks_of_client` revokes, whole and until its `valid_until`,
/// each block of the client with `valid_until > now`, and no other;
/// `extend_status_block` only ever moves `valid_until` later, and leaves an
/// unknown block alone.
pub async fn status_blocks_of_client(store: &dyn Store) {
    let run = unique();
    let a = format!("conf-{run}-a");
    let b = format!("conf-{run}-b");
    let a_live = reserve(store, &a, 8, NOW + 100).await;
    let a_past = reserve(store, &a, 4, NOW - 1).await;
    let a_at_now = reserve(store, &a, 2, NOW).await;
    let b_live = reserve(store, &b, 8, NOW + 100).await;
    let mut cursor = store.last_status_seq().await.expect("last seq");

    assert_eq!(
        store
            .revoke_status_blocks_of_client(&a, NOW)
            .await
            .expect("revoke blocks"),
        1
    );
    assert_eq!(
        new_ranges(store, &mut cursor).await,
        [(a_live, a_live + 8, NOW + 100, NOW)]
    );
    assert_eq!(
        store
            .revoke_status_blocks_of_client(&format!("conf-{run}-nobody"), NOW)
            .await
            .expect("revoke blocks"),
        0
    );
    assert_eq!(new_ranges(store, &mut cursor).await, []);

    for (start, valid_until) in [
        (a_live, NOW + 50),
        (a_past, NOW + 200),
        (a_at_now, NOW),
        // Not the start of a block.
        (a_live + 1, NOW + 300),
    ] {
        store
            .extend_status_block(start, valid_until)
            .await
            .expect("extend block");
    }
    assert_eq!(
        store
            .revoke_status_blocks_of_client(&a, NOW + 1)
            .await
            .expect("revoke blocks"),
        2
    );
    assert_eq!(
        new_ranges(store, &mut cursor).await,
        [
            (a_live, a_live + 8, NOW + 100, NOW + 1),
            (a_past, a_past + 4, NOW + 200, NOW + 1),
        ],
        "extended, never shortened"
    );

    assert_eq!(
        store
            .revoke_status_blocks_of_client(&b, NOW + 100)
            .await
            .expect("revoke blocks"),
        0,
        "a block is not live at its valid_until"
    );
    assert_eq!(
        store
            .revoke_status_blocks_of_client(&b, NOW)
            .await
            .expect("revoke blocks"),
        1
    );
    assert_eq!(
        new_ranges(store, &mut cursor).await,
        [(b_live, b_live + 8, NOW + 100, NOW)]
    );
}

/// `live_status_span` is `(lowest start, highest end)` over the blocks of every
/// client with `valid_until > now`, and `None` when there is none.
pub async fn status_live_span(store: &dyn Store) {
    let run = unique();
    let now = timeline();
    let first = reserve(store, &format!("conf-{run}-c1"), 10, now + 50).await;
    let middle = reserve(store, &format!("conf-{run}-c2"), 5, now - 1).await;
    let last = reserve(store, &format!("conf-{run}-c1"), 3, now + 10).await;
    let span = async |now| store.live_status_span(now).await.expect("live span");

    assert_eq!(
        span(now).await,
        Some((first.min(last), (first + 10).max(last + 3)))
    );
    assert_eq!(span(now + 10).await, Some((first, first + 10)));
    assert_eq!(span(now + 50).await, None);
    store
        .extend_status_block(middle, now + 60)
        .await
        .expect("extend block");
    assert_eq!(span(now + 50).await, Some((middle, middle + 5)));
    assert_eq!(
        span(now).await,
        Some((
            first.min(middle).min(last),
            (first + 10).max(middle + 5).max(last + 3)
        ))
    );
    assert_eq!(span(now + 60).await, None);
}

/// Revoking a grant with a `status_idx` records, in the same call, exactly
/// `[idx, idx + 1)` until the grant's `expires_at` plus [`MAX_ACCESS_TOKEN_TTL`].
/// Revoking it again records nothing; nor does revoking a grant without an index,
/// or one whose access tokens have all expired already.
pub async fn status_revoke_grant(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "sg").await;
    let start = reserve(store, &party.client.client_id, 4, NOW + 86_400).await;
    let indexed = Grant {
        status_idx: Some(start + 1),
        ..grant_of(&party, &format!("conf-{run}-indexed"), None, NOW + 86_400)
    };
    let bystander = Grant {
        status_idx: Some(start + 2),
        ..grant_of(&party, &format!("conf-{run}-bystander"), None, NOW + 86_400)
    };
    let plain = grant_of(&party, &format!("conf-{run}-plain"), None, NOW + 86_400);
    let stale = Grant {
        status_idx: Some(start + 3),
        ..grant_of(
            &party,
            &format!("conf-{run}-stale"),
            None,
            NOW - MAX_ACCESS_TOKEN_TTL,
        )
    };
    for grant in [&indexed, &bystander, &plain, &stale] {
        insert_grant(store, grant, &run).await;
    }
    let found = store
        .grant_by_status_idx(start + 1)
        .await
        .expect("grant by status idx");
    assert_eq!(found.map(|g| g.grant_id), Some(indexed.grant_id.clone()));
    assert_eq!(
        store
            .grant_by_status_idx(start)
            .await
            .expect("grant by status idx"),
        None,
        "an index of no grant"
    );
    let mut cursor = store.last_status_seq().await.expect("last seq");

    assert!(
        store
            .revoke_grant(&indexed.grant_id, NOW + 10)
            .await
            .expect("revoke grant")
    );
    let expected = [(
        start + 1,
        start + 2,
        indexed.expires_at + MAX_ACCESS_TOKEN_TTL,
        NOW + 10,
    )];
    assert_eq!(new_ranges(store, &mut cursor).await, expected);
    assert_eq!(
        as_ranges(
            &store
                .status_revocations_between(start, start + 4, NOW + 10)
                .await
                .expect("between")
        ),
        expected
    );

    assert!(
        !store
            .revoke_grant(&indexed.grant_id, NOW + 20)
            .await
            .expect("revoke again")
    );
    assert!(
        store
            .revoke_grant(&plain.grant_id, NOW + 10)
            .await
            .expect("revoke plain grant")
    );
    assert!(
        store
            .revoke_grant(&stale.grant_id, NOW)
            .await
            .expect("revoke stale grant"),
        "an expired grant that was never revoked is revoked"
    );
    assert_eq!(
        new_ranges(store, &mut cursor).await,
        [],
        "no duplicate, nothing without an index, nothing already expired"
    );
    assert_eq!(
        store
            .get_grant(&bystander.grant_id)
            .await
            .expect("get")
            .and_then(|grant| grant.status_idx),
        Some(start + 2)
    );
}

/// Revoking by session, user or client records one range per grant it revokes
/// that has a `status_idx`, and none for grants revoked before.
pub async fn status_revoke_grants_by_owner(store: &dyn Store) {
    let run = unique();
    let u1_c1 = party(store, &run, "su1").await;
    let c2 = client(&format!("conf-{run}-sc2"), 1);
    store.insert_client(&c2).await.expect("insert client");
    let u1_c2 = Party {
        client: c2.clone(),
        user: u1_c1.user.clone(),
    };
    let u2_c1 = party_with_client(store, &run, "su2", &u1_c1.client).await;
    let u2_c2 = Party {
        client: c2.clone(),
        user: u2_c1.user.clone(),
    };
    let s1 = format!("conf-{run}-s1");
    let s2 = format!("conf-{run}-s2");
    let s3 = format!("conf-{run}-s3");
    let start = reserve(store, &u1_c1.client.client_id, 8, NOW + 86_400).await;
    let until = NOW + 86_400 + MAX_ACCESS_TOKEN_TTL;
    for (label, party, sid, offset) in [
        ("g1", &u1_c1, Some(&s1), Some(0)),
        ("g2", &u1_c1, Some(&s1), None),
        ("g3", &u1_c2, Some(&s2), Some(2)),
        ("g4", &u2_c1, Some(&s3), Some(3)),
        ("g5", &u2_c2, None, Some(4)),
        ("g6", &u1_c1, Some(&s1), Some(5)),
    ] {
        let grant = Grant {
            status_idx: offset.map(|offset| start + offset),
            ..grant_of(
                party,
                &format!("conf-{run}-{label}"),
                sid.map(String::as_str),
                NOW + 86_400,
            )
        };
        insert_grant(store, &grant, &run).await;
    }
    let mut cursor = store.last_status_seq().await.expect("last seq");

    assert_eq!(
        store
            .revoke_grants_of_session(&s1, NOW)
            .await
            .expect("by session"),
        3
    );
    assert_eq!(
        new_ranges(store, &mut cursor).await,
        [
            (start, start + 1, until, NOW),
            (start + 5, start + 6, until, NOW)
        ]
    );
    assert_eq!(
        store
            .revoke_grants_of_user(&u1_c1.user.user_id, NOW + 1)
            .await
            .expect("by user"),
        1
    );
    assert_eq!(
        new_ranges(store, &mut cursor).await,
        [(start + 2, start + 3, until, NOW + 1)]
    );
    assert_eq!(
        store
            .revoke_grants_of_client(&c2.client_id, NOW + 2)
            .await
            .expect("by client"),
        1
    );
    assert_eq!(
        new_ranges(store, &mut cursor).await,
        [(start + 4, start + 5, until, NOW + 2)]
    );
    assert_eq!(
        store
            .revoke_grants_of_client(&u1_c1.client.client_id, NOW + 3)
            .await
            .expect("by client"),
        1
    );
    assert_eq!(
        new_ranges(store, &mut cursor).await,
        [(start + 3, start + 4, until, NOW + 3)]
    );

    for revoked in [
        store.revoke_grants_of_session(&s1, NOW + 4).await,
        store
            .revoke_grants_of_user(&u1_c1.user.user_id, NOW + 4)
            .await,
        store.revoke_grants_of_client(&c2.client_id, NOW + 4).await,
    ] {
        assert_eq!(revoked.expect("revoke again"), 0);
    }
    assert_eq!(new_ranges(store, &mut cursor).await, [], "no duplicate");
}

/// `delete_user` and `delete_client` revoke the status index of each grant they
/// take with them that was not revoked yet, until its last access token has
/// expired (with the database clock's `revoked_at`).
pub async fn status_revoke_on_delete(store: &dyn Store) {
    let run = unique();
    let by_user = party(store, &run, "sdu").await;
    let by_client = party(store, &run, "sdc").await;
    let start = reserve(store, &by_user.client.client_id, 4, NOW + 86_400).await;
    let grants: Vec<Grant> = [
        (&by_user, "live", Some(start)),
        (&by_user, "revoked", Some(start + 1)),
        (&by_user, "plain", None),
        (&by_client, "client", Some(start + 2)),
    ]
    .into_iter()
    .map(|(party, label, status_idx)| Grant {
        status_idx,
        ..grant_of(party, &format!("conf-{run}-{label}"), None, NOW + 86_400)
    })
    .collect();
    for grant in &grants {
        insert_grant(store, grant, &run).await;
    }
    assert!(
        store
            .revoke_grant(&grants[1].grant_id, NOW)
            .await
            .expect("revoke")
    );
    let mut cursor = store.last_status_seq().await.expect("last seq");
    let until = NOW + 86_400 + MAX_ACCESS_TOKEN_TTL;
    let without_time = |ranges: Vec<(i64, i64, i64, i64)>| -> Vec<(i64, i64, i64)> {
        ranges
            .into_iter()
            .map(|(start, end, expires_at, _)| (start, end, expires_at))
            .collect()
    };

    assert!(
        store
            .delete_user(&by_user.user.user_id)
            .await
            .expect("delete user")
    );
    assert_eq!(
        without_time(new_ranges(store, &mut cursor).await),
        [(start, start + 1, until)],
        "only the grant that was not revoked yet"
    );
    assert!(
        store
            .delete_client(&by_client.client.client_id)
            .await
            .expect("delete client")
    );
    assert_eq!(
        without_time(new_ranges(store, &mut cursor).await),
        [(start + 2, start + 3, until)]
    );
}

/// `purge_status` deletes revocations that expired strictly before `now`, oldest
/// first, but never the newest revocation (so `last_status_seq` never goes back),
/// and blocks whose `valid_until` is strictly before `now` once no revocation
/// expiring at `now` or later overlaps them; at most `limit` of each kind per call.
pub async fn status_purge(store: &dyn Store) {
    let run = unique();
    let now = timeline();
    let client_id = format!("conf-{run}-purge");
    let _expired = reserve(store, &client_id, 4, now - 10).await;
    let held = reserve(store, &client_id, 4, now - 5).await;
    let live = reserve(store, &client_id, 8, now + 100).await;
    let _at_now = reserve(store, &client_id, 2, now).await;
    let base = store.last_status_seq().await.expect("last seq");
    // The last one holds its expired block and is the newest revocation.
    for (idx, expires_at) in [
        (live, now - 30),
        (live + 1, now - 20),
        (live + 2, now),
        (held + 3, now + 100),
    ] {
        store
            .revoke_status_range(idx, idx + 1, expires_at, now - 100)
            .await
            .expect("revoke range");
    }
    let records = revocations_since(store, base).await;
    assert_eq!(records.len(), 4);

    // Clear what earlier runs left before our window, so the counts below are exact.
    while store
        .purge_status(now - 100, 1_000)
        .await
        .expect("purge older records")
        > 0
    {}
    assert_eq!(
        revocations_since(store, base).await,
        records,
        "nothing of ours purged yet"
    );

    assert_eq!(
        store.purge_status(now, 1).await.expect("purge"),
        2,
        "the oldest expired revocation and the oldest free expired block"
    );
    assert_eq!(revocations_since(store, base).await, records[1..]);
    assert_eq!(store.purge_status(now, 0).await.expect("purge"), 0);
    assert_eq!(
        store.purge_status(now, 100).await.expect("purge"),
        1,
        "the other expired revocation; the held block stays"
    );
    assert_eq!(
        store.purge_status(now, 100).await.expect("purge"),
        0,
        "expires_at == now and valid_until == now are kept"
    );
    assert_eq!(revocations_since(store, base).await, records[2..]);

    // Past everything: the newest revocation stays, the blocks go.
    assert_eq!(
        store.purge_status(now + 101, 100).await.expect("purge"),
        1 + 3
    );
    assert_eq!(revocations_since(store, base).await, records[3..]);
    assert_eq!(
        store.purge_status(now + 1_000, 100).await.expect("purge"),
        0
    );
    assert_eq!(
        store.last_status_seq().await.expect("last seq"),
        records[3].seq,
        "last_status_seq never goes back"
    );
}

// ---------------------------------------------------------------------------------
// Concurrency

/// Sixteen concurrent rotations racing for the same generation: exactly one wins,
/// and the stored key is the winner's.
pub async fn concurrent_key_generation(store: &dyn Store) {
    const RACERS: usize = 16;
    let run = unique();
    let alg = format!("T{run}");
    let keys: Vec<StoredKey> = (0..RACERS)
        .map(|i| key(&format!("conf-{run}-race-{i}"), &alg, 1))
        .collect();

    let outcomes = join_all(
        keys.iter()
            .map(|key| store.insert_key(key))
            .collect::<Vec<_>>(),
    )
    .await;
    let outcomes: Vec<KeyInsert> = outcomes
        .into_iter()
        .map(|outcome| outcome.expect("concurrent insert_key"))
        .collect();

    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, outcome)| **outcome == KeyInsert::Inserted)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {outcomes:?}");
    assert_eq!(
        keys_of(store, &[&alg]).await,
        vec![keys[winners[0]].clone()],
        "the winner's key is stored"
    );
}

/// Concurrent inserts of one `client_id`: exactly one succeeds, the others get
/// `Conflict`.
pub async fn concurrent_client_insert(store: &dyn Store) {
    const RACERS: usize = 8;
    let run = unique();
    let clients: Vec<Client> = (0..RACERS)
        .map(|i| Client {
            name: format!("racer {i}"),
            ..client(&format!("conf-{run}-race"), 1)
        })
        .collect();

    let outcomes = join_all(
        clients
            .iter()
            .map(|client| store.insert_client(client))
            .collect::<Vec<_>>(),
    )
    .await;

    let mut winner = None;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(()) => {
                assert_eq!(winner, None, "two inserts of one client_id succeeded");
                winner = Some(i);
            }
            Err(StoreError::Conflict) => {}
            Err(err) => panic!("concurrent insert_client: expected Conflict, got {err:?}"),
        }
    }
    let winner = winner.expect("one insert succeeds");
    assert_eq!(
        store
            .get_client(&clients[winner].client_id)
            .await
            .expect("get"),
        Some(clients[winner].clone())
    );
}

/// Concurrent revocations of one `jti` all succeed.
pub async fn concurrent_revocation_insert(store: &dyn Store) {
    const RACERS: usize = 8;
    let run = unique();
    let revoked = revocation(&format!("conf-{run}-race"), 2_000_000_000);

    let outcomes = join_all(
        (0..RACERS)
            .map(|_| store.insert_revocation(&revoked))
            .collect::<Vec<_>>(),
    )
    .await;
    for outcome in outcomes {
        outcome.expect("concurrent insert_revocation");
    }
    assert!(store.is_revoked(&revoked.jti).await.expect("is_revoked"));
}

/// Sixteen concurrent redemptions of one code: exactly one `Redeemed`, fifteen
/// `Replayed` carrying the winner's consumption time.
pub async fn concurrent_code_redemption(store: &dyn Store) {
    const RACERS: i64 = 16;
    let run = unique();
    let party = party(store, &run, "race").await;
    let (_, code) = issue(store, &party, &run, "race", None).await;

    let outcomes = join_all(
        (0..RACERS)
            .map(|i| store.redeem_code(&code.code_hash, NOW + i))
            .collect::<Vec<_>>(),
    )
    .await;
    let mut winner = None;
    let mut replays = Vec::new();
    for outcome in outcomes {
        match outcome.expect("concurrent redeem_code") {
            CodeRedemption::Redeemed(got) => {
                assert_eq!(winner, None, "two redemptions of one code");
                winner = Some(got);
            }
            CodeRedemption::Replayed(got) => replays.push(got),
            CodeRedemption::Unknown => panic!("a live code was Unknown"),
        }
    }
    let winner = winner.expect("one redemption wins");
    assert_eq!(replays.len(), 15);
    for replay in replays {
        assert_eq!(
            replay, winner,
            "replays see the winner's committed consumption"
        );
    }
}

/// Sixteen concurrent rotations of one refresh token, each with its own successor:
/// exactly one `Rotated`, fifteen `AlreadyRotated` that see the winner's sealed
/// successor, and only the winner's successor stored.
pub async fn concurrent_refresh_rotation(store: &dyn Store) {
    const RACERS: u8 = 16;
    let run = unique();
    let party = party(store, &run, "race").await;
    let (grant, _) = issue(store, &party, &run, "race", None).await;
    let presented = refresh(&grant, hash(&run, "presented"), NOW + 3_600);
    store
        .insert_refresh_token(&presented)
        .await
        .expect("insert refresh token");
    let successors: Vec<RefreshToken> = (0..RACERS)
        .map(|i| refresh(&grant, hash(&run, &format!("successor-{i}")), NOW + 7_200))
        .collect();
    let sealed: Vec<Vec<u8>> = (0..RACERS).map(|i| vec![i; 8]).collect();

    let outcomes = join_all(
        successors
            .iter()
            .zip(&sealed)
            .zip(0..)
            .map(|((successor, sealed), i)| {
                store.rotate_refresh_token(&presented.token_hash, successor, sealed, NOW + i)
            })
            .collect::<Vec<_>>(),
    )
    .await;

    let mut winner = None;
    let mut losers = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome.expect("concurrent rotate_refresh_token") {
            Rotation::Rotated {
                previous,
                grant: got,
            } => {
                assert_eq!(winner, None, "two rotations of one token");
                assert_eq!(previous, presented);
                assert_eq!(got, grant);
                winner = Some(i);
            }
            Rotation::AlreadyRotated {
                previous,
                grant: got,
            } => {
                assert_eq!(got, grant);
                losers.push(previous);
            }
            Rotation::Unknown => panic!("a live token was Unknown"),
        }
    }
    let winner = winner.expect("one rotation wins");
    assert_eq!(losers.len(), 15);
    let rotated = RefreshToken {
        rotated_at: Some(NOW + i64::try_from(winner).expect("small")),
        sealed_successor: Some(sealed[winner].clone()),
        ..presented.clone()
    };
    for previous in losers {
        assert_eq!(
            previous, rotated,
            "losers see the winner's committed rotation"
        );
    }
    let mut stored = Vec::new();
    for (i, successor) in successors.iter().enumerate() {
        if let Some(got) = store
            .get_refresh_token(&successor.token_hash)
            .await
            .expect("get successor")
        {
            assert_eq!(&got, successor);
            stored.push(i);
        }
    }
    assert_eq!(stored, [winner], "exactly the winner's successor is stored");
}

/// Rotations and access-token recordings racing a revocation of their grant:
/// whatever the interleaving, afterwards no refresh token of the grant is left and
/// every recorded access token is revoked.
pub async fn concurrent_use_and_revocation(store: &dyn Store) {
    const ROUNDS: usize = 8;
    const RACERS: usize = 6;
    let run = unique();
    let party = party(store, &run, "ur").await;
    for round in 0..ROUNDS {
        let (grant, _) = issue(store, &party, &run, &format!("round-{round}"), None).await;
        let presented = refresh(
            &grant,
            hash(&run, &format!("{round}-presented")),
            NOW + 3_600,
        );
        store
            .insert_refresh_token(&presented)
            .await
            .expect("insert refresh token");
        let successors: Vec<RefreshToken> = (0..RACERS)
            .map(|i| {
                refresh(
                    &grant,
                    hash(&run, &format!("{round}-succ-{i}")),
                    NOW + 3_600,
                )
            })
            .collect();
        let jtis: Vec<String> = (0..RACERS)
            .map(|i| format!("conf-{run}-{round}-jti-{i}"))
            .collect();

        let mut rotations: Vec<BoxFuture<'_, Result<(), StoreError>>> = successors
            .iter()
            .map(|successor| {
                Box::pin(async {
                    store
                        .rotate_refresh_token(&presented.token_hash, successor, &[1], NOW)
                        .await
                        .map(|_| ())
                }) as BoxFuture<'_, _>
            })
            .collect();
        let recordings = jtis.iter().map(|jti| {
            Box::pin(store.record_access_token(&grant.grant_id, jti, NOW + 600)) as BoxFuture<'_, _>
        });
        let revocation = Box::pin(async {
            store
                .revoke_grant(&grant.grant_id, NOW + 1)
                .await
                .map(|revoked| assert!(revoked, "the grant was live"))
        }) as BoxFuture<'_, _>;
        // The revocation in the middle of the pack.
        let mut racers: Vec<BoxFuture<'_, Result<(), StoreError>>> = Vec::new();
        racers.extend(rotations.drain(..RACERS / 2));
        racers.extend(recordings);
        racers.push(revocation);
        racers.extend(rotations);
        for outcome in join_all(racers).await {
            outcome.expect("concurrent use and revocation");
        }

        for token in std::iter::once(&presented).chain(&successors) {
            assert_eq!(
                store
                    .get_refresh_token(&token.token_hash)
                    .await
                    .expect("get refresh token"),
                None,
                "round {round}: no refresh token survives the revocation"
            );
        }
        for jti in &jtis {
            assert!(
                store.is_revoked(jti).await.expect("is_revoked"),
                "round {round}: access token {jti} escaped the revocation"
            );
        }
    }
}

/// Sixteen concurrent reservations for four clients get sixteen disjoint blocks,
/// each recorded whole for the client that asked for it.
pub async fn concurrent_status_reservations(store: &dyn Store) {
    const RACERS: usize = 16;
    const CLIENTS: usize = 4;
    let run = unique();
    let clients: Vec<String> = (0..CLIENTS).map(|i| format!("conf-{run}-c{i}")).collect();
    let requests: Vec<(&str, i64)> = (0..RACERS)
        .map(|i| {
            let size = 1 + i64::try_from(i * 3 % 7).expect("small");
            (clients[i % CLIENTS].as_str(), size)
        })
        .collect();

    let outcomes = join_all(
        requests
            .iter()
            .map(|&(client_id, size)| store.reserve_status_block(client_id, size, NOW + 600, NOW))
            .collect::<Vec<_>>(),
    )
    .await;
    let blocks: Vec<(i64, i64)> = outcomes
        .into_iter()
        .zip(&requests)
        .map(|(outcome, &(_, size))| (outcome.expect("concurrent reserve_status_block"), size))
        .collect();
    assert_disjoint(&blocks);

    // Each block is durable and its client's: revoking a client's blocks names
    // exactly those.
    let mut cursor = store.last_status_seq().await.expect("last seq");
    for client_id in &clients {
        let mut expected: Vec<(i64, i64, i64, i64)> = blocks
            .iter()
            .zip(&requests)
            .filter(|(_, (owner, _))| owner == client_id)
            .map(|(&(start, size), _)| (start, start + size, NOW + 600, NOW))
            .collect();
        expected.sort_unstable();
        assert_eq!(
            store
                .revoke_status_blocks_of_client(client_id, NOW)
                .await
                .expect("revoke blocks"),
            u64::try_from(RACERS / CLIENTS).expect("small")
        );
        assert_eq!(new_ranges(store, &mut cursor).await, expected);
    }
}

/// Eight writers record revocations (ranges, and one grant each) while a reader
/// polls `status_revocations_after` in small pages: the reader sees every
/// revocation exactly once, in increasing `seq` order, however the writers'
/// commits interleave (a `seq` must never become visible after a higher one).
pub async fn concurrent_status_revocations_polled(store: &dyn Store) {
    const WRITERS: usize = 8;
    const RANGES: i64 = 8;
    const PAGE: u32 = 3;
    let run = unique();
    let party = party(store, &run, "poll").await;
    // Each writer owns RANGES indices for ranges, then one for its grant.
    let per_writer = RANGES + 1;
    let writers = i64::try_from(WRITERS).expect("small");
    let start = reserve(
        store,
        &party.client.client_id,
        per_writer * writers,
        NOW + 86_400,
    )
    .await;
    let mut grants = Vec::new();
    for w in 0..writers {
        let grant = Grant {
            status_idx: Some(start + w * per_writer + RANGES),
            ..grant_of(&party, &format!("conf-{run}-w{w}"), None, NOW + 86_400)
        };
        insert_grant(store, &grant, &run).await;
        grants.push(grant);
    }
    let base = store.last_status_seq().await.expect("last seq");
    let finished = AtomicUsize::new(0);

    let mut racers: Vec<BoxFuture<'_, Result<Vec<StatusRevocation>, StoreError>>> = grants
        .iter()
        .zip(0..)
        .map(|(grant, w)| {
            let finished = &finished;
            Box::pin(async move {
                let outcome = async {
                    let first = start + w * per_writer;
                    for i in 0..RANGES {
                        if i == RANGES / 2 {
                            assert!(store.revoke_grant(&grant.grant_id, NOW).await?);
                        }
                        store
                            .revoke_status_range(first + i, first + i + 1, NOW + 600, NOW)
                            .await?;
                    }
                    Ok(Vec::new())
                }
                .await;
                finished.fetch_add(1, Ordering::SeqCst);
                outcome
            }) as BoxFuture<'_, _>
        })
        .collect();
    racers.push(Box::pin(async {
        let mut seen = Vec::new();
        let mut cursor = base;
        loop {
            // Read before polling: once every writer has finished, a poll that
            // finds nothing new means there is nothing more to find.
            let all_finished = finished.load(Ordering::SeqCst) == WRITERS;
            let page = store.status_revocations_after(cursor, PAGE).await?;
            match page.last() {
                Some(last) => {
                    cursor = last.seq;
                    seen.extend(page);
                }
                None if all_finished => return Ok(seen),
                None => yield_now().await,
            }
        }
    }));

    let mut outcomes = join_all(racers).await;
    let seen = outcomes
        .pop()
        .expect("the poller's outcome")
        .expect("polling");
    for outcome in outcomes {
        outcome.expect("concurrent revocation");
    }

    assert!(
        seen.windows(2).all(|pair| pair[0].seq < pair[1].seq),
        "seen in increasing seq order, each once"
    );
    let stored = revocations_since(store, base).await;
    assert_eq!(
        seen.iter().map(|r| r.seq).collect::<Vec<_>>(),
        stored.iter().map(|r| r.seq).collect::<Vec<_>>(),
        "the poller saw every revocation"
    );
    assert_eq!(seen, stored);
    let mut indices: Vec<(i64, i64)> = stored.iter().map(|r| (r.start, r.end)).collect();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (start..start + per_writer * writers)
            .map(|idx| (idx, idx + 1))
            .collect::<Vec<_>>(),
        "every writer's ranges and grant, once each"
    );
}

/// Concurrent consents for one user and client add up: none is lost.
pub async fn concurrent_consent(store: &dyn Store) {
    const RACERS: usize = 8;
    let run = unique();
    let party = party(store, &run, "cc").await;
    let scopes: Vec<Vec<String>> = (0..RACERS)
        .map(|i| vec![format!("scope-{i}"), "openid".to_owned()])
        .collect();
    let outcomes = join_all(
        scopes
            .iter()
            .map(|scopes| {
                store.add_consent(&party.user.user_id, &party.client.client_id, scopes, NOW)
            })
            .collect::<Vec<_>>(),
    )
    .await;
    for outcome in outcomes {
        outcome.expect("concurrent add_consent");
    }
    let mut got = store
        .get_consent(&party.user.user_id, &party.client.client_id)
        .await
        .expect("get consent");
    got.sort();
    let mut expected: Vec<String> = (0..RACERS).map(|i| format!("scope-{i}")).collect();
    expected.push("openid".to_owned());
    expected.sort();
    assert_eq!(got, expected, "every scope once");
}

// ---------------------------------------------------------------------------------
// Helpers

/// A suffix no other call (in this process or, by the clock, any other) returns.
fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{count}", std::process::id())
}

/// A "now" on the suite's private timeline: microseconds since the epoch, far ahead
/// of any real Unix-seconds timestamp and distinct per call, so the windows of two
/// runs do not overlap.
fn timeline() -> i64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let micros = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_micros(),
    )
    .expect("micros fit u64");
    // Strictly increasing within this process, at least 1000 apart.
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = micros.max(last + 1_000);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return i64::try_from(next).expect("micros fit i64"),
            Err(actual) => last = actual,
        }
    }
}

/// The "now" of the tests that do not purge: any fixed time works, since their ids
/// are unique.
const NOW: i64 = 1_800_000_000;

/// A client and a user that sessions, consents and grants can hang on.
struct Party {
    client: Client,
    user: User,
}

/// Inserts a new client and user.
async fn party(store: &dyn Store, run: &str, label: &str) -> Party {
    let client = client(&format!("conf-{run}-{label}-client"), 1);
    store.insert_client(&client).await.expect("insert client");
    party_with_client(store, run, label, &client).await
}

/// Inserts a new user of an existing client.
async fn party_with_client(store: &dyn Store, run: &str, label: &str, client: &Client) -> Party {
    let user = user(&format!("conf-{run}-{label}-user"), 1);
    store.insert_user(&user).await.expect("insert user");
    Party {
        client: client.clone(),
        user,
    }
}

fn user(user_id: &str, created_at: i64) -> User {
    User {
        user_id: user_id.to_owned(),
        username: format!("{user_id}-name"),
        email: Some(format!("{user_id}@Example.COM")),
        email_verified: true,
        name: Some("Zoë \"Q\" User".to_owned()),
        given_name: Some("Zoë".to_owned()),
        family_name: Some("User".to_owned()),
        password_hash: Some(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        ),
        disabled: false,
        created_at,
        updated_at: created_at,
    }
}

/// Bytes standing in for a SHA-256: unique per run and label, not valid UTF-8.
fn hash(run: &str, label: &str) -> Vec<u8> {
    let mut bytes = vec![0x00, 0xff];
    bytes.extend_from_slice(format!("{run}-{label}").as_bytes());
    bytes
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|&item| item.to_owned()).collect()
}

fn session_of(party: &Party, session_hash: &[u8], expires_at: i64) -> Session {
    Session {
        session_hash: session_hash.to_vec(),
        sid: session_hash.iter().fold(String::from("sid-"), |sid, byte| {
            sid + &format!("{byte:02x}")
        }),
        user_id: party.user.user_id.clone(),
        auth_time: NOW - 60,
        amr: strings(&["pwd"]),
        created_at: NOW - 60,
        expires_at,
    }
}

fn grant_of(party: &Party, grant_id: &str, sid: Option<&str>, expires_at: i64) -> Grant {
    Grant {
        grant_id: grant_id.to_owned(),
        client_id: party.client.client_id.clone(),
        user_id: party.user.user_id.clone(),
        scope: strings(&["openid", "profile"]),
        sid: sid.map(str::to_owned),
        auth_time: NOW - 30,
        amr: strings(&["pwd"]),
        created_at: NOW - 10,
        expires_at,
        revoked_at: None,
        status_idx: None,
        resources: vec![],
    }
}

fn code_of(grant: &Grant, code_hash: Vec<u8>, expires_at: i64) -> AuthorizationCode {
    AuthorizationCode {
        code_hash,
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: "https://app.example/cb?x=\"1\"&y=✓".to_owned(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        scope: grant.scope.clone(),
        resources: strings(&["https://api.example/"]),
        created_at: NOW - 5,
        expires_at,
        consumed_at: None,
    }
}

fn refresh(grant: &Grant, token_hash: Vec<u8>, expires_at: i64) -> RefreshToken {
    RefreshToken {
        token_hash,
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        scope: grant.scope.clone(),
        created_at: NOW - 5,
        expires_at,
        rotated_at: None,
        sealed_successor: None,
    }
}

/// Inserts a grant live for a day from [`NOW`], with its code live for a minute.
async fn issue(
    store: &dyn Store,
    party: &Party,
    run: &str,
    label: &str,
    sid: Option<&str>,
) -> (Grant, AuthorizationCode) {
    let grant = grant_of(party, &format!("conf-{run}-{label}"), sid, NOW + 86_400);
    let code = code_of(&grant, hash(run, &format!("{label}-code")), NOW + 60);
    store
        .insert_grant_with_code(&grant, &code)
        .await
        .expect("insert grant with code");
    (grant, code)
}

/// Inserts a grant with a code of its own, live for a minute from [`NOW`].
async fn insert_grant(store: &dyn Store, grant: &Grant, run: &str) {
    let code = code_of(
        grant,
        hash(run, &format!("{}-code", grant.grant_id)),
        NOW + 60,
    );
    store
        .insert_grant_with_code(grant, &code)
        .await
        .expect("insert grant with code");
}

/// Reserves a block of status list indices at [`NOW`]; returns its first index.
async fn reserve(store: &dyn Store, client_id: &str, size: i64, valid_until: i64) -> i64 {
    store
        .reserve_status_block(client_id, size, valid_until, NOW)
        .await
        .expect("reserve status block")
}

/// Panics unless the blocks `(start, size)` are pairwise disjoint.
fn assert_disjoint(blocks: &[(i64, i64)]) {
    let mut sorted = blocks.to_vec();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        let ((start, size), (next, _)) = (pair[0], pair[1]);
        assert!(
            size > 0 && start + size <= next,
            "blocks overlap: {sorted:?}"
        );
    }
}

/// Every revocation recorded after `seq`, oldest first.
async fn revocations_since(store: &dyn Store, seq: i64) -> Vec<StatusRevocation> {
    let mut all: Vec<StatusRevocation> = Vec::new();
    loop {
        let cursor = all.last().map_or(seq, |last| last.seq);
        let page = store
            .status_revocations_after(cursor, 1_000)
            .await
            .expect("revocations after");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// `(start, end, expires_at, revoked_at)` of each revocation, in order.
fn as_ranges(revocations: &[StatusRevocation]) -> Vec<(i64, i64, i64, i64)> {
    revocations
        .iter()
        .map(|r| (r.start, r.end, r.expires_at, r.revoked_at))
        .collect()
}

/// The revocations recorded after `cursor`, as [`as_ranges`] sorted by `start`;
/// moves `cursor` past them.
async fn new_ranges(store: &dyn Store, cursor: &mut i64) -> Vec<(i64, i64, i64, i64)> {
    let recorded = revocations_since(store, *cursor).await;
    if let Some(last) = recorded.last() {
        *cursor = last.seq;
    }
    let mut ranges = as_ranges(&recorded);
    ranges.sort_unstable();
    ranges
}

/// Returns `Pending` once, so that the other futures of a [`join_all`] get polled.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

fn client(client_id: &str, created_at: i64) -> Client {
    Client {
        client_id: client_id.to_owned(),
        name: format!("Client {client_id}"),
        secret_hash: Some(vec![0x5a; 32]),
        redirect_uris: vec!["https://app.example/cb".to_owned()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        scopes: vec!["openid".to_owned()],
        audiences: vec!["https://api.example/".to_owned()],
        access_token_ttl: Some(300),
        skip_consent: false,
        refresh_grace_seconds: 0,
        id_token_signed_response_alg: None,
        created_at,
        updated_at: created_at,
    }
}

fn key(kid: &str, alg: &str, generation: i64) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        alg: alg.to_owned(),
        generation,
        public_jwk: format!(r#"{{"kty":"EC","kid":"{kid}"}}"#),
        sealed_private_key: vec![0x42; 48],
        created_at: 1_700_000_000 + generation,
        activates_at: Some(1_700_000_060 + generation),
        publish_until: None,
    }
}

fn revocation(jti: &str, expires_at: i64) -> RevokedToken {
    RevokedToken {
        jti: jti.to_owned(),
        client_id: "conf-client".to_owned(),
        expires_at,
        revoked_at: expires_at - 600,
    }
}

/// The stored keys of the given algorithms, in `list_keys` order.
async fn keys_of(store: &dyn Store, algs: &[&str]) -> Vec<StoredKey> {
    store
        .list_keys()
        .await
        .expect("list keys")
        .into_iter()
        .filter(|key| algs.contains(&key.alg.as_str()))
        .collect()
}

async fn still_revoked(store: &dyn Store, records: &[RevokedToken]) -> usize {
    let mut count = 0;
    for record in records {
        if store.is_revoked(&record.jti).await.expect("is_revoked") {
            count += 1;
        }
    }
    count
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Polls all futures concurrently on the current task and returns their outputs in
/// order. Enough to put concurrent statements on several pooled connections at once,
/// without `tokio::spawn` (which would need `'static` futures).
async fn join_all<'a, T>(futures: Vec<BoxFuture<'a, T>>) -> Vec<T> {
    let mut pending: Vec<Option<BoxFuture<'a, T>>> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut all_done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(outputs.drain(..).map(|output| output.unwrap()).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}
