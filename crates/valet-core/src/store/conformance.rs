//! The shared store test suite. Every backend crate runs [`run_all`] from its
//! integration tests; a backend is correct when the whole suite passes.
//!
//! Each check panics on failure. Ids, algorithm names and timestamps are unique per
//! call, so the suite can run again and again against a persistent test database,
//! one run at a time. The two global deletions
//! ([`super::KeyStore::delete_unpublished_keys`] and
//! [`super::RevocationStore::purge_revocations`]) are checked on a private timeline
//! (microseconds since the epoch, used as if they were seconds) far ahead of any
//! real timestamp; to make their counts exact, the checks first delete every key and
//! revocation record that expired before their window, so never point the suite at
//! a database whose data matters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Client, KeyInsert, RevokedToken, Store, StoreError, StoredKey};

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

    concurrent_key_generation(store).await;
    concurrent_client_insert(store).await;
    concurrent_revocation_insert(store).await;
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

/// A public client (no secret hash), empty lists and no TTL override come back
/// exactly as inserted.
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
