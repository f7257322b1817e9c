//! Short-lived single-use records.

use super::*;

const KIND: SingleUseKind = SingleUseKind::Interaction;

/// A record is live until `expires_at`; `update_single_use` replaces its payload,
/// `take_single_use` consumes it once, and its key stays taken afterwards.
pub async fn single_use_lifecycle(store: &dyn Store) {
    let run = unique();
    let key = hash(&run, "su");
    store
        .insert_single_use(KIND, &key, r#"{"step":1}"#, NOW + 600)
        .await
        .expect("insert");
    let get = async |now| store.get_single_use(KIND, &key, now).await.expect("get");
    let live = SingleUse {
        kind: KIND,
        key: key.clone(),
        payload: r#"{"step":1}"#.to_owned(),
        expires_at: NOW + 600,
        consumed: false,
    };
    assert_eq!(get(NOW).await, Some(live.clone()));
    assert_eq!(get(NOW + 599).await, Some(live.clone()));
    assert_eq!(get(NOW + 600).await, None, "expired at expires_at");
    assert!(matches!(
        store.insert_single_use(KIND, &key, "{}", NOW + 900).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(get(NOW).await, Some(live.clone()), "the first record kept");
    assert_eq!(
        store
            .get_single_use(KIND, &hash(&run, "other"), NOW)
            .await
            .expect("get unknown"),
        None
    );

    assert!(
        store
            .update_single_use(KIND, &key, r#"{"step":2}"#)
            .await
            .expect("update")
    );
    let updated = SingleUse {
        payload: r#"{"step":2}"#.to_owned(),
        ..live
    };
    assert_eq!(get(NOW).await, Some(updated.clone()), "expiry unchanged");
    assert!(
        !store
            .update_single_use(KIND, &hash(&run, "other"), "{}")
            .await
            .expect("update unknown"),
        "an unknown key does not match"
    );

    assert_eq!(
        store
            .take_single_use(KIND, &hash(&run, "other"), NOW)
            .await
            .expect("take unknown"),
        None
    );
    assert_eq!(
        store.take_single_use(KIND, &key, NOW).await.expect("take"),
        Some(SingleUse {
            consumed: true,
            ..updated
        })
    );
    assert_eq!(
        store
            .take_single_use(KIND, &key, NOW)
            .await
            .expect("take again"),
        None,
        "taken once only"
    );
    assert_eq!(get(NOW).await, None, "a consumed record is not live");
    assert!(
        !store
            .update_single_use(KIND, &key, "{}")
            .await
            .expect("update consumed"),
        "a consumed record does not match"
    );
    assert!(
        matches!(
            store.insert_single_use(KIND, &key, "{}", NOW + 900).await,
            Err(StoreError::Conflict)
        ),
        "a consumed record keeps its key taken"
    );
}

/// An expired record cannot be taken, although it is still stored.
pub async fn single_use_expired_not_taken(store: &dyn Store) {
    let run = unique();
    let key = hash(&run, "su-expired");
    store
        .insert_single_use(KIND, &key, "{}", NOW + 60)
        .await
        .expect("insert");
    assert_eq!(
        store
            .take_single_use(KIND, &key, NOW + 60)
            .await
            .expect("take at expiry"),
        None
    );
    assert!(
        store
            .take_single_use(KIND, &key, NOW + 59)
            .await
            .expect("take before expiry")
            .is_some()
    );
}

/// `purge_single_use` deletes records (consumed or not) that expired strictly
/// before `now`, at most `limit` per call; a purged key can be used again.
pub async fn single_use_purge(store: &dyn Store) {
    let run = unique();
    let now = timeline();
    let expired: Vec<Vec<u8>> = (0..3).map(|i| hash(&run, &format!("old-{i}"))).collect();
    for (i, key) in (0..).zip(&expired) {
        store
            .insert_single_use(KIND, key, "{}", now - 30 + i)
            .await
            .expect("insert expired");
    }
    let consumed = &expired[0];
    assert!(
        store
            .take_single_use(KIND, consumed, now - 100)
            .await
            .expect("take")
            .is_some()
    );
    let at_now = hash(&run, "at-now");
    store
        .insert_single_use(KIND, &at_now, "{}", now)
        .await
        .expect("insert at now");

    // Clear what earlier runs left before our window, so the counts below are exact.
    while store
        .purge_single_use(now - 100, 1_000)
        .await
        .expect("purge older records")
        > 0
    {}
    assert_eq!(store.purge_single_use(now, 0).await.expect("purge"), 0);
    assert_eq!(store.purge_single_use(now, 2).await.expect("purge"), 2);
    assert_eq!(
        store.purge_single_use(now, 2).await.expect("purge"),
        1,
        "expires_at == now is kept"
    );
    assert!(
        store
            .get_single_use(KIND, &at_now, now - 1)
            .await
            .expect("get")
            .is_some()
    );
    store
        .insert_single_use(KIND, consumed, "{}", now + 60)
        .await
        .expect("a purged key is free again");
    assert_eq!(
        store.purge_single_use(now + 1, 100).await.expect("purge"),
        1
    );
}

/// Sixteen concurrent takes of one record: exactly one gets it.
pub async fn concurrent_single_use_take(store: &dyn Store) {
    const RACERS: usize = 16;
    let run = unique();
    let key = hash(&run, "su-race");
    store
        .insert_single_use(KIND, &key, "{}", NOW + 600)
        .await
        .expect("insert");
    let outcomes = join_all(
        (0..RACERS)
            .map(|_| store.take_single_use(KIND, &key, NOW))
            .collect::<Vec<_>>(),
    )
    .await;
    let taken = outcomes
        .into_iter()
        .map(|outcome| outcome.expect("concurrent take"))
        .filter(Option::is_some)
        .count();
    assert_eq!(taken, 1, "exactly one take wins");
}
