//! Token status list.

use super::*;

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
    assert_eq!(
        store
            .reserve_status_block(&format!("conf-{run}-nobody"), 4, NOW + 600, NOW)
            .await
            .expect("reserve for an unknown client"),
        None,
        "no block for a client that is not registered"
    );
}

/// Once `delete_client` returns, every block the client had is revoked until its
/// `valid_until`, and the store refuses to reserve or extend one for it: a node
/// that still caches the client cannot hand out an index that is not revoked.
pub async fn status_blocks_of_a_deleted_client(store: &dyn Store) {
    let run = unique();
    let gone = format!("conf-{run}-gone");
    let live = reserve(store, &gone, 8, NOW + 100).await;
    let spare = reserve(store, &gone, 4, NOW + 200).await;
    let mut cursor = store.last_status_seq().await.expect("last seq");
    assert!(
        store
            .delete_client(&gone, NOW)
            .await
            .expect("delete client")
    );
    assert_eq!(
        new_ranges(store, &mut cursor).await,
        [
            (live, live + 8, NOW + 100, NOW),
            (spare, spare + 4, NOW + 200, NOW)
        ]
    );
    assert_eq!(
        store
            .reserve_status_block(&gone, 4, NOW + 600, NOW + 1)
            .await
            .expect("reserve after delete"),
        None
    );
    assert!(
        !store
            .extend_status_block(live, NOW + 900)
            .await
            .expect("extend after delete"),
        "a deleted client's block is not extended"
    );
    assert!(
        !store
            .delete_client(&gone, NOW + 1)
            .await
            .expect("delete again")
    );
    assert_eq!(new_ranges(store, &mut cursor).await, []);
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
        let known = store
            .extend_status_block(start, valid_until)
            .await
            .expect("extend block");
        assert_eq!(known, start != a_live + 1, "extend {start}");
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
    assert!(
        store
            .extend_status_block(middle, now + 60)
            .await
            .expect("extend block")
    );
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

/// The allocator hands out each index of a client's blocks once, in order, and
/// reserves the next block when half of the current one is left: the second
/// block is live before the first runs out.
pub async fn status_allocator_reserves_ahead(store: &dyn Store) {
    use valet_core::status::{BLOCK_SIZE, StatusAllocator};

    let client_id = format!("conf-{}-alloc", unique());
    ensure_client(store, &client_id).await;
    let now = timeline();
    let allocator = StatusAllocator::default();
    let span = async || store.live_status_span(now).await.expect("live span");
    let next = async || {
        allocator
            .allocate(store, &client_id, now)
            .await
            .expect("index")
    };
    let mut taken = Vec::new();
    for _ in 1..BLOCK_SIZE / 2 {
        taken.push(next().await);
    }
    let first = taken[0];
    assert_eq!(
        span().await,
        Some((first, first + BLOCK_SIZE)),
        "one block while more than half of it is left"
    );
    taken.push(next().await);
    let (low, high) = span().await.expect("live blocks");
    assert_eq!(low, first);
    assert!(
        high >= first + 2 * BLOCK_SIZE,
        "the next block is reserved ahead: span {low}..{high}"
    );
    let second = high - BLOCK_SIZE;
    while taken.len() < 2 * BLOCK_SIZE as usize {
        taken.push(next().await);
    }
    let expected: Vec<i64> = (first..first + BLOCK_SIZE)
        .chain(second..second + BLOCK_SIZE)
        .collect();
    assert_eq!(
        taken, expected,
        "every index once, the first block, then the next"
    );
}

/// A block that holds a grant's index is valid until the grant's last access
/// token can have expired, and a block window beyond that, so the grants that
/// follow within that window need no store write; a grant beyond it extends the
/// block again.
pub async fn status_allocator_extends_for_grants(store: &dyn Store) {
    use valet_core::status::{BLOCK_SIZE, BLOCK_WINDOW, StatusAllocator};

    let client_id = format!("conf-{}-grants", unique());
    ensure_client(store, &client_id).await;
    let now = timeline();
    let allocator = StatusAllocator::default();
    let span = async |at| store.live_status_span(at).await.expect("live span");
    let grant = async |grant_end| {
        allocator
            .allocate_for_grant(store, &client_id, grant_end, now)
            .await
            .expect("index")
    };
    let first_end = now + 1_000;
    let first = grant(first_end).await;
    let block = Some((first, first + BLOCK_SIZE));
    let covered = first_end + MAX_ACCESS_TOKEN_TTL + BLOCK_WINDOW;
    assert_eq!(
        span(covered - 1).await,
        block,
        "valid past the grant's last token, by a window"
    );
    assert_eq!(span(covered).await, None);

    assert_eq!(grant(first_end + BLOCK_WINDOW / 2).await, first + 1);
    assert_eq!(span(covered).await, None, "a grant within the window");

    let later_end = first_end + 2 * BLOCK_WINDOW;
    assert_eq!(grant(later_end).await, first + 2);
    assert_eq!(
        span(later_end + MAX_ACCESS_TOKEN_TTL + BLOCK_WINDOW - 1).await,
        block,
        "a grant beyond the window extends the block"
    );
}

/// A node that still holds blocks of a client deleted elsewhere (by the CLI, or
/// another node) hands out only revoked indices, cannot reserve ahead or anew,
/// and then refuses: no token of a deleted client can carry an index that is not
/// revoked.
pub async fn status_allocator_after_client_deletion(store: &dyn Store) {
    use valet_core::status::{BLOCK_SIZE, StatusAllocator};

    let client_id = format!("conf-{}-deleted", unique());
    ensure_client(store, &client_id).await;
    let now = timeline();
    let allocator = StatusAllocator::default();
    let mut before = Vec::new();
    for _ in 0..10 {
        before.push(
            allocator
                .allocate(store, &client_id, now)
                .await
                .expect("index"),
        );
    }
    let mut cursor = store.last_status_seq().await.expect("last seq");
    assert!(
        store
            .delete_client(&client_id, now)
            .await
            .expect("delete client")
    );
    let revoked = new_ranges(store, &mut cursor).await;
    let is_revoked = |idx: i64| {
        revoked
            .iter()
            .any(|&(start, end, expires_at, _)| start <= idx && idx < end && expires_at > now)
    };
    let mut after = Vec::new();
    let refused = loop {
        match allocator.allocate(store, &client_id, now).await {
            Ok(idx) => after.push(idx),
            Err(error) => break error,
        }
        assert!(
            after.len() <= 2 * BLOCK_SIZE as usize,
            "the allocator keeps handing out indices of a deleted client"
        );
    };
    assert!(
        matches!(refused, valet_core::status::AllocationError::ClientGone),
        "{refused:?}"
    );
    assert_eq!(
        before.len() + after.len(),
        BLOCK_SIZE as usize,
        "only the block reserved before the deletion is used up; no new one"
    );
    for idx in before.iter().chain(&after) {
        assert!(
            is_revoked(*idx),
            "index {idx} of a deleted client is not revoked"
        );
    }
    assert!(
        allocator
            .allocate(store, &client_id, now + 1)
            .await
            .is_err(),
        "still refused"
    );
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
    let [u1_c1, u1_c2, u2_c1, u2_c2] = owners(store, &run).await;
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
            .revoke_grants_of_client(&u1_c2.client.client_id, NOW + 2)
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
        store
            .revoke_grants_of_client(&u1_c2.client.client_id, NOW + 4)
            .await,
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
            .delete_client(&by_client.client.client_id, NOW)
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
