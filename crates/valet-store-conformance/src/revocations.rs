//! Revocations.

use super::*;

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
