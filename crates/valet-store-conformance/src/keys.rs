//! Signing keys.

use super::*;

/// A key comes back from `list_keys` exactly as inserted, `None` times included.
pub async fn keys_insert_and_list(store: &dyn Store) {
    let run = unique();
    let alg = Algorithm::Es256;
    let g = unique_generation();
    let full = StoredKey {
        activates_at: Some(1_700_000_100),
        publish_until: Some(1_700_086_400),
        public_jwk: r#"{"kty":"EC","crv":"P-256","x":"ab\"c","y":"d\\ef"}"#.to_owned(),
        sealed_private_key: vec![0x00, 0x01, 0xfe, 0xff, 0x00],
        ..key(&format!("conf-{run}-k0"), alg, g)
    };
    let bare = StoredKey {
        activates_at: None,
        publish_until: None,
        ..key(&format!("conf-{run}-k1"), alg, g + 1)
    };
    for key in [&full, &bare] {
        assert_eq!(
            store.insert_key(key).await.expect("insert key"),
            KeyInsert::Inserted
        );
    }

    assert_eq!(
        keys_of(store, &run).await,
        vec![full, bare],
        "keys roundtrip"
    );
}

/// `list_keys` orders by `alg` then `generation`, whatever the insertion order.
pub async fn keys_list_order(store: &dyn Store) {
    let run = unique();
    let alg_a = Algorithm::Es256;
    let alg_b = Algorithm::Rs256;
    let g = unique_generation();
    let b0 = key(&format!("conf-{run}-b0"), alg_b, g);
    let a2 = key(&format!("conf-{run}-a2"), alg_a, g + 2);
    let a0 = key(&format!("conf-{run}-a0"), alg_a, g);
    let a10 = key(&format!("conf-{run}-a10"), alg_a, g + 10);
    let a1 = key(&format!("conf-{run}-a1"), alg_a, g + 1);
    for key in [&b0, &a2, &a0, &a10, &a1] {
        assert_eq!(
            store.insert_key(key).await.expect("insert key"),
            KeyInsert::Inserted
        );
    }

    assert_eq!(
        keys_of(store, &run).await,
        vec![a0, a1, a2, a10, b0],
        "keys ordered by alg, then generation (numerically)"
    );
}

/// A second key with the same `alg` and `generation` is refused with
/// `GenerationTaken`, and the first key is untouched.
pub async fn keys_generation_taken(store: &dyn Store) {
    let run = unique();
    let alg = Algorithm::Es256;
    let g = unique_generation();
    let winner = key(&format!("conf-{run}-winner"), alg, g + 7);
    let loser = StoredKey {
        public_jwk: "{\"loser\":true}".to_owned(),
        sealed_private_key: vec![0xee; 16],
        ..key(&format!("conf-{run}-loser"), alg, g + 7)
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
    assert_eq!(keys_of(store, &run).await, vec![winner], "loser not stored");
}

/// The same `generation` under a different `alg` is a different slot.
pub async fn keys_same_generation_other_alg(store: &dyn Store) {
    let run = unique();
    let g = unique_generation();
    let es = key(&format!("conf-{run}-es"), Algorithm::Es256, g + 3);
    let rs = key(&format!("conf-{run}-rs"), Algorithm::Rs256, g + 3);
    assert_eq!(
        store.insert_key(&es).await.expect("insert"),
        KeyInsert::Inserted
    );
    assert_eq!(
        store.insert_key(&rs).await.expect("insert other alg"),
        KeyInsert::Inserted
    );
    assert_eq!(keys_of(store, &run).await, vec![es, rs], "both stored");
}

/// A taken `kid` is refused with `GenerationTaken`, even for a free generation.
pub async fn keys_duplicate_kid(store: &dyn Store) {
    let run = unique();
    let alg = Algorithm::Es256;
    let g = unique_generation();
    let other_alg = Algorithm::Rs256;
    let first = key(&format!("conf-{run}-kid"), alg, g);
    assert_eq!(
        store.insert_key(&first).await.expect("insert"),
        KeyInsert::Inserted
    );

    let same_alg_next_generation = key(&first.kid, alg, g + 1);
    assert_eq!(
        store
            .insert_key(&same_alg_next_generation)
            .await
            .expect("insert duplicate kid"),
        KeyInsert::GenerationTaken
    );
    let other_alg_key = key(&first.kid, other_alg, g);
    assert_eq!(
        store
            .insert_key(&other_alg_key)
            .await
            .expect("insert duplicate kid, other alg"),
        KeyInsert::GenerationTaken
    );
    assert_eq!(
        keys_of(store, &run).await,
        vec![first],
        "only the first key stored"
    );
}

/// `set_key_activation` sets (and may move) `activates_at` of one key.
pub async fn keys_set_activation(store: &dyn Store) {
    let run = unique();
    let alg = Algorithm::Es256;
    let g = unique_generation();
    let target = StoredKey {
        activates_at: None,
        ..key(&format!("conf-{run}-act"), alg, g)
    };
    let other = StoredKey {
        activates_at: None,
        ..key(&format!("conf-{run}-other"), alg, g + 1)
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
        keys_of(store, &run).await,
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
        keys_of(store, &run).await,
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
    let alg = Algorithm::Es256;
    let g = unique_generation();
    let target = StoredKey {
        publish_until: None,
        ..key(&format!("conf-{run}-pub"), alg, g)
    };
    let other = StoredKey {
        publish_until: None,
        ..key(&format!("conf-{run}-other"), alg, g + 1)
    };
    for key in [&target, &other] {
        assert_eq!(
            store.insert_key(key).await.expect("insert"),
            KeyInsert::Inserted
        );
    }
    let publish_until = async || {
        keys_of(store, &run)
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
        keys_of(store, &run).await,
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
    let alg = Algorithm::Es256;
    let g = unique_generation();
    let expired = StoredKey {
        publish_until: Some(now - 10),
        ..key(&format!("conf-{run}-expired"), alg, g)
    };
    let boundary = StoredKey {
        publish_until: Some(now + 10),
        ..key(&format!("conf-{run}-boundary"), alg, g + 1)
    };
    let unbounded = StoredKey {
        publish_until: None,
        activates_at: Some(now - 1_000),
        ..key(&format!("conf-{run}-unbounded"), alg, g + 2)
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
        keys_of(store, &run).await.len(),
        3,
        "nothing of ours deleted yet"
    );

    assert_eq!(
        store.delete_unpublished_keys(now).await.expect("delete"),
        1,
        "one key expired before now"
    );
    assert_eq!(
        keys_of(store, &run).await,
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
        keys_of(store, &run).await,
        vec![unbounded],
        "unbounded keys are never deleted"
    );
}

/// The master key check value is written once and never replaced.
pub async fn keys_master_key_check(store: &dyn Store) {
    let before = store.master_key_check().await.expect("read check");
    let first = format!("check-{}", unique()).into_bytes();
    let wrote = store
        .insert_master_key_check(&first)
        .await
        .expect("insert check");
    assert_eq!(wrote, before.is_none(), "written only when absent");
    let kept = before.unwrap_or(first);
    assert_eq!(
        store.master_key_check().await.expect("read check"),
        Some(kept.clone())
    );
    assert!(
        !store
            .insert_master_key_check(b"another value")
            .await
            .expect("insert again"),
        "an existing check value is never replaced"
    );
    assert_eq!(
        store.master_key_check().await.expect("read check"),
        Some(kept)
    );
}
