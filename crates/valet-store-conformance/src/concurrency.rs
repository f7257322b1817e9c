//! Concurrency.

use super::*;

/// Sixteen concurrent rotations racing for the same generation: exactly one wins,
/// and the stored key is the winner's.
pub async fn concurrent_key_generation(store: &dyn Store) {
    const RACERS: usize = 16;
    let run = unique();
    let generation = unique_generation() + 1;
    let keys: Vec<StoredKey> = (0..RACERS)
        .map(|i| {
            key(
                &format!("conf-{run}-race-{i}"),
                Algorithm::Es256,
                generation,
            )
        })
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
        keys_of(store, &run).await,
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
                store.rotate_refresh_token(
                    &presented.token_hash,
                    successor,
                    Some(sealed),
                    None,
                    NOW + i,
                )
            })
            .collect::<Vec<_>>(),
    )
    .await;

    let mut winner = None;
    let mut losers = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome.expect("concurrent rotate_refresh_token") {
            Rotation::Rotated { previous } => {
                assert_eq!(winner, None, "two rotations of one token");
                assert_eq!(previous, presented);
                winner = Some(i);
            }
            Rotation::AlreadyRotated {
                previous,
                grant: got,
            } => {
                assert_eq!(*got, grant);
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

/// Rotations, access-token recordings and redemptions of the grant's code with
/// their tokens racing a revocation of their grant:
/// whatever the interleaving, afterwards no refresh token of the grant is left and
/// every recorded access token is revoked.
pub async fn concurrent_use_and_revocation(store: &dyn Store) {
    const ROUNDS: usize = 8;
    const RACERS: usize = 6;
    let run = unique();
    let party = party(store, &run, "ur").await;
    for round in 0..ROUNDS {
        let (grant, code) = issue(store, &party, &run, &format!("round-{round}"), None).await;
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
                        .rotate_refresh_token(
                            &presented.token_hash,
                            successor,
                            Some(&[1]),
                            None,
                            NOW,
                        )
                        .await
                        .map(|_| ())
                }) as BoxFuture<'_, _>
            })
            .collect();
        let recordings = jtis.iter().map(|jti| {
            Box::pin(store.record_issued(&grant.grant_id, jti, NOW + 600, None)) as BoxFuture<'_, _>
        });
        // Redemptions of the grant's code with what they issue: at most one wins,
        // and what it recorded is revoked with the grant like the rest.
        let redeemed_jtis = std::sync::Mutex::new(Vec::new());
        let redeem_tokens: Vec<(String, RefreshToken)> = (0..RACERS)
            .map(|i| {
                (
                    format!("conf-{run}-{round}-redeem-jti-{i}"),
                    refresh(
                        &grant,
                        hash(&run, &format!("{round}-redeem-{i}")),
                        NOW + 3_600,
                    ),
                )
            })
            .collect();
        let redemptions = redeem_tokens.iter().map(|(jti, token)| {
            let redeemed_jtis = &redeemed_jtis;
            let code_hash = &code.code_hash;
            Box::pin(async move {
                let outcome = store
                    .redeem_code_and_record(code_hash, NOW, jti, NOW + 600, Some(token))
                    .await?;
                if matches!(outcome, CodeRedemption::Redeemed(_)) {
                    redeemed_jtis
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(jti.clone());
                }
                Ok(())
            }) as BoxFuture<'_, _>
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
        racers.extend(redemptions);
        racers.push(revocation);
        racers.extend(rotations);
        for outcome in join_all(racers).await {
            outcome.expect("concurrent use and revocation");
        }

        let redeemed_jtis = redeemed_jtis
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(
            redeemed_jtis.len() <= 1,
            "round {round}: a code redeemed twice"
        );
        let redeemed = redeem_tokens.iter().map(|(_, token)| token);
        for token in std::iter::once(&presented)
            .chain(&successors)
            .chain(redeemed)
        {
            assert_eq!(
                store
                    .get_refresh_token(&token.token_hash)
                    .await
                    .expect("get refresh token"),
                None,
                "round {round}: no refresh token survives the revocation"
            );
        }
        for jti in jtis.iter().chain(&redeemed_jtis) {
            assert!(
                store.is_revoked(jti).await.expect("is_revoked"),
                "round {round}: access token {jti} escaped the revocation"
            );
        }
    }
}

/// Reservations racing a deletion of their client: each one either committed
/// before the deletion, and its block is revoked by it, or gets `None`; no block
/// of the client escapes revocation, whatever the interleaving.
pub async fn concurrent_reservations_and_client_deletion(store: &dyn Store) {
    const RACERS: usize = 24;
    type Outcome = Result<Option<i64>, StoreError>;
    for round in 0..4 {
        let client_id = format!("conf-{}-racing-delete", unique());
        ensure_client(store, &client_id).await;
        let mut racers: Vec<Pin<Box<dyn Future<Output = Outcome> + Send + '_>>> = (0..RACERS)
            .map(|_| {
                Box::pin(store.reserve_status_block(&client_id, 2, NOW + 600, NOW))
                    as Pin<Box<dyn Future<Output = Outcome> + Send + '_>>
            })
            .collect();
        let deletion = Box::pin(async {
            assert!(
                store
                    .delete_client(&client_id, NOW)
                    .await
                    .expect("delete client")
            );
            Ok(None)
        });
        racers.insert(RACERS / 2 + round, deletion);
        let starts: Vec<i64> = join_all(racers)
            .await
            .into_iter()
            .filter_map(|outcome| outcome.expect("reserve or delete"))
            .collect();
        for start in starts {
            assert!(
                !store
                    .status_revocations_between(start, start + 2, NOW)
                    .await
                    .expect("revocations")
                    .is_empty(),
                "round {round}: block {start} of the deleted client escaped"
            );
        }
        assert_eq!(
            store
                .reserve_status_block(&client_id, 2, NOW + 600, NOW)
                .await
                .expect("reserve after"),
            None
        );
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

    for client_id in &clients {
        ensure_client(store, client_id).await;
    }
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
        .map(|(outcome, &(_, size))| {
            (
                outcome
                    .expect("concurrent reserve_status_block")
                    .expect("registered client"),
                size,
            )
        })
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

/// Many rotations and redemptions at once, as group commit batches them into one
/// transaction: sixteen good rotations (each of its own family) among a replay of
/// an already rotated token, an unknown token, a rotation whose successor cannot
/// be stored (its hash is taken) and a replayed code. Each gets the answer it
/// would get alone: the good ones rotate, the replay is `AlreadyRotated`, the
/// unknown token `Unknown`, the failed one an error that leaves its token
/// unrotated, and the code is `Replayed`.
pub async fn concurrent_rotations_with_failures(store: &dyn Store) {
    const GOOD: usize = 16;
    let run = unique();
    let party = party(store, &run, "batch").await;
    let mut families = Vec::new();
    for i in 0..GOOD {
        let (grant, _) = issue(store, &party, &run, &format!("batch-{i}"), None).await;
        let presented = refresh(&grant, hash(&run, &format!("presented-{i}")), NOW + 3_600);
        store
            .insert_refresh_token(&presented)
            .await
            .expect("insert refresh token");
        let successor = refresh(&grant, hash(&run, &format!("successor-{i}")), NOW + 7_200);
        families.push((grant, presented, successor));
    }
    // A token rotated before: presenting it again is a replay.
    let (old_grant, old_code) = issue(store, &party, &run, "batch-old", None).await;
    let old = refresh(&old_grant, hash(&run, "old"), NOW + 3_600);
    store.insert_refresh_token(&old).await.expect("insert old");
    let old_successor = refresh(&old_grant, hash(&run, "old-successor"), NOW + 7_200);
    let first = store
        .rotate_refresh_token(&old.token_hash, &old_successor, None, None, NOW)
        .await
        .expect("first rotation");
    assert!(matches!(first, Rotation::Rotated { .. }));
    let CodeRedemption::Redeemed(_) = store
        .redeem_code(&old_code.code_hash, NOW)
        .await
        .expect("first redemption")
    else {
        panic!("a fresh code was not redeemed");
    };
    // A rotation that fails half-way: its successor's hash is taken.
    let (failing_grant, _) = issue(store, &party, &run, "batch-failing", None).await;
    let failing = refresh(&failing_grant, hash(&run, "failing"), NOW + 3_600);
    store
        .insert_refresh_token(&failing)
        .await
        .expect("insert failing");
    let clash = refresh(
        &failing_grant,
        old_successor.token_hash.clone(),
        NOW + 7_200,
    );

    let replay_successor = refresh(&old_grant, hash(&run, "replay-successor"), NOW + 7_200);
    let unknown = hash(&run, "never-issued");
    let unknown_successor = refresh(&old_grant, hash(&run, "unknown-successor"), NOW + 7_200);
    enum Answer {
        Rotation(Result<Rotation, StoreError>),
        Code(Result<CodeRedemption, StoreError>),
    }
    let mut racers: Vec<BoxFuture<'_, Answer>> = families
        .iter()
        .map(|(_, presented, successor)| -> BoxFuture<'_, Answer> {
            Box::pin(async move {
                Answer::Rotation(
                    store
                        .rotate_refresh_token(&presented.token_hash, successor, None, None, NOW + 1)
                        .await,
                )
            })
        })
        .collect();
    for (presented, successor) in [
        (&old.token_hash, &replay_successor),
        (&unknown, &unknown_successor),
        (&failing.token_hash, &clash),
    ] {
        racers.push(Box::pin(async move {
            Answer::Rotation(
                store
                    .rotate_refresh_token(presented, successor, None, None, NOW + 1)
                    .await,
            )
        }));
    }
    racers.push(Box::pin(async {
        Answer::Code(store.redeem_code(&old_code.code_hash, NOW + 1).await)
    }));
    let mut answers = join_all(racers).await.into_iter();
    let mut rotation = || match answers.next() {
        Some(Answer::Rotation(outcome)) => outcome,
        _ => panic!("not a rotation"),
    };
    let good: Vec<_> = (0..GOOD).map(|_| rotation()).collect();
    let (replay, unknown, failed) = (rotation(), rotation(), rotation());
    let Some(Answer::Code(code)) = answers.next() else {
        panic!("not a redemption");
    };

    for ((grant, presented, successor), outcome) in families.iter().zip(good) {
        match outcome.expect("a good rotation") {
            Rotation::Rotated { previous } => {
                assert_eq!(&previous, presented);
                assert_eq!(previous.grant_id, grant.grant_id);
            }
            _ => panic!("a good rotation in the batch did not rotate"),
        }
        assert_eq!(
            store
                .get_refresh_token(&successor.token_hash)
                .await
                .expect("get successor")
                .as_ref(),
            Some(successor),
            "a good rotation's successor is stored"
        );
    }
    assert!(
        matches!(replay.expect("the replay"), Rotation::AlreadyRotated { .. }),
        "a replay in the batch is AlreadyRotated"
    );
    assert!(matches!(unknown.expect("the unknown"), Rotation::Unknown));
    assert!(
        matches!(failed, Err(StoreError::Conflict)),
        "a rotation whose successor cannot be stored fails"
    );
    let failing_now = store
        .get_refresh_token(&failing.token_hash)
        .await
        .expect("get failing")
        .expect("the failed rotation's token is still there");
    assert_eq!(
        failing_now, failing,
        "the failed rotation left its token as it was"
    );
    assert!(matches!(
        code.expect("the replayed code"),
        CodeRedemption::Replayed(_)
    ));
    assert!(
        store
            .get_refresh_token(&replay_successor.token_hash)
            .await
            .expect("get replay successor")
            .is_none(),
        "a replay stores no successor"
    );
}
