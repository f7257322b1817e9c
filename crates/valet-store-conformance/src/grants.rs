//! Grants and codes.

use super::*;

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
/// consumption time. Unknown hashes are `Unknown`. `get_code_family` reads without
/// consuming: a live code, or a consumed one whatever its age.
pub async fn codes_redeem_once(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "r").await;
    let (_, code) = issue(store, &party, &run, "once", None).await;

    // Reading does not consume: checks run before the code is spent.
    for _ in 0..2 {
        assert_eq!(
            store
                .get_code_family(&code.code_hash, NOW)
                .await
                .expect("get code")
                .map(|family| family.code),
            Some(code.clone())
        );
    }
    assert_eq!(
        store
            .get_code_family(&code.code_hash, code.expires_at)
            .await
            .expect("get expired code")
            .map(|family| family.code),
        None,
        "an unconsumed code is gone at its expires_at"
    );
    assert_eq!(
        store
            .get_code_family(&hash(&run, "nocode"), NOW)
            .await
            .expect("get unknown code"),
        None
    );
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
        assert_eq!(
            store
                .get_code_family(&code.code_hash, later)
                .await
                .expect("get consumed code")
                .map(|family| family.code),
            Some(AuthorizationCode {
                consumed_at: Some(NOW),
                ..code.clone()
            }),
            "a consumed code is still read at {later}, to recognise a replay"
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

/// `record_issued` stores a token response's access token record and refresh
/// token together, or neither: with a refresh token whose hash is taken, the
/// access token is not recorded either (a revocation of the grant does not list
/// it). Under a revoked grant the access token is revoked at once.
pub async fn refresh_recorded_with_access_token(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "issued").await;
    let (grant, _) = issue(store, &party, &run, "issued", None).await;
    let token = refresh(&grant, hash(&run, "issued"), NOW + 3_600);
    let (jti, failed_jti) = (format!("conf-{run}-issued"), format!("conf-{run}-failed"));
    store
        .record_issued(&grant.grant_id, &jti, NOW + 600, Some(&token))
        .await
        .expect("record issued");
    assert_eq!(
        store
            .get_refresh_token(&token.token_hash)
            .await
            .expect("get"),
        Some(token.clone())
    );
    let clash = RefreshToken {
        expires_at: NOW + 1,
        ..token.clone()
    };
    let err = store
        .record_issued(&grant.grant_id, &failed_jti, NOW + 600, Some(&clash))
        .await
        .expect_err("a taken refresh token hash fails");
    assert!(matches!(err, StoreError::Conflict), "got {err:?}");

    assert!(
        store
            .revoke_grant(&grant.grant_id, NOW)
            .await
            .expect("revoke")
    );
    assert!(store.is_revoked(&jti).await.expect("is_revoked"));
    assert!(
        !store.is_revoked(&failed_jti).await.expect("is_revoked"),
        "the failed write recorded no access token"
    );
    let late_jti = format!("conf-{run}-late");
    store
        .record_issued(&grant.grant_id, &late_jti, NOW + 600, None)
        .await
        .expect("record under a revoked grant");
    assert!(store.is_revoked(&late_jti).await.expect("is_revoked"));
}

/// `redeem_code_and_record` stores what a token response issued only with the
/// redemption that won: a replay or an unknown code stores nothing.
pub async fn codes_redeemed_with_their_tokens(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "rr").await;
    let (grant, code) = issue(store, &party, &run, "rr", None).await;
    let (_, bare) = issue(store, &party, &run, "rr-bare", None).await;
    let jti = |label: &str| format!("conf-{run}-rr-{label}");
    let token = refresh(&grant, hash(&run, "rr-won"), NOW + 3_600);
    let lost = refresh(&grant, hash(&run, "rr-lost"), NOW + 3_600);

    let won = store
        .redeem_code_and_record(&code.code_hash, NOW, &jti("won"), NOW + 600, Some(&token))
        .await
        .expect("redeem and record");
    assert!(matches!(won, CodeRedemption::Redeemed(ref c) if c.code_hash == code.code_hash));
    assert_eq!(
        store
            .get_refresh_token(&token.token_hash)
            .await
            .expect("get refresh token"),
        Some(token.clone())
    );
    let replay = store
        .redeem_code_and_record(
            &code.code_hash,
            NOW + 1,
            &jti("lost"),
            NOW + 600,
            Some(&lost),
        )
        .await
        .expect("replay");
    assert!(matches!(replay, CodeRedemption::Replayed(_)), "{replay:?}");
    assert_eq!(
        store
            .get_refresh_token(&lost.token_hash)
            .await
            .expect("get refresh token"),
        None,
        "a replay stores no refresh token"
    );
    // Without a refresh token, only the access token's record.
    assert!(matches!(
        store
            .redeem_code_and_record(&bare.code_hash, NOW, &jti("bare"), NOW + 600, None)
            .await
            .expect("redeem without refresh token"),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store
            .redeem_code_and_record(&hash(&run, "rr-none"), NOW, &jti("none"), NOW + 600, None)
            .await
            .expect("unknown code"),
        CodeRedemption::Unknown
    );

    // The records are the grant's: its revocation reaches exactly the access
    // tokens of the redemptions that won.
    for granted in [&grant.grant_id, &bare.grant_id] {
        assert!(
            store
                .revoke_grant(granted, NOW + 2)
                .await
                .expect("revoke grant")
        );
    }
    for (label, recorded) in [
        ("won", true),
        ("bare", true),
        ("lost", false),
        ("none", false),
    ] {
        assert_eq!(
            store.is_revoked(&jti(label)).await.expect("is revoked"),
            recorded,
            "access token {label}"
        );
    }
}

/// `get_code_family` reads a code with its grant and its user's state: the
/// grant's own columns and the code's, though they share names; a disabled
/// user reads as such; a revoked grant is read as revoked, with its consumed code.
pub async fn code_family(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "cfam").await;
    let grant = grant_of(
        &party,
        &format!("conf-{run}-cfam"),
        Some("sid-1"),
        NOW + 86_400,
    );
    // Scope, resources and times differ from the grant's, so a column read from
    // the wrong table shows.
    let code = AuthorizationCode {
        scope: strings(&["openid"]),
        ..code_of(&grant, hash(&run, "cfam-code"), NOW + 30)
    };
    store
        .insert_grant_with_code(&grant, &code)
        .await
        .expect("insert grant with code");
    assert_eq!(
        store
            .get_code_family(&code.code_hash, NOW)
            .await
            .expect("get code family"),
        Some(CodeFamily {
            code: code.clone(),
            grant: grant.clone(),
            user_enabled: true,
        })
    );

    store
        .set_user_disabled(&party.user.user_id, true, NOW)
        .await
        .expect("disable user");
    let family = store
        .get_code_family(&code.code_hash, NOW)
        .await
        .expect("get code family of a disabled user")
        .expect("the code is still stored");
    assert!(!family.user_enabled, "a disabled user's code reads enabled");

    assert!(matches!(
        store
            .redeem_code(&code.code_hash, NOW)
            .await
            .expect("redeem"),
        CodeRedemption::Redeemed(_)
    ));
    store
        .revoke_grant(&grant.grant_id, NOW + 1)
        .await
        .expect("revoke grant");
    let family = store
        .get_code_family(&code.code_hash, NOW + 1)
        .await
        .expect("get code family of a revoked grant")
        .expect("a consumed code outlives its grant's revocation");
    assert_eq!(family.code.consumed_at, Some(NOW));
    assert_eq!(family.grant.revoked_at, Some(NOW + 1));
}

/// `get_refresh_family` reads a token with its grant and its user's state, in
/// any state of the token, and nothing for an unknown hash.
pub async fn refresh_family(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "fam").await;
    let (grant, _) = issue(store, &party, &run, "fam", None).await;
    let fresh = refresh(&grant, hash(&run, "fresh"), NOW + 3_600);
    let rotated = RefreshToken {
        rotated_at: Some(NOW - 1),
        sealed_successor: Some(vec![0x00, 0xff]),
        dpop_jkt: Some("jkt".to_owned()),
        ..refresh(&grant, hash(&run, "rotated"), NOW + 3_600)
    };
    for token in [&fresh, &rotated] {
        store
            .insert_refresh_token(token)
            .await
            .expect("insert refresh token");
        assert_eq!(
            store
                .get_refresh_family(&token.token_hash)
                .await
                .expect("get refresh family"),
            Some(RefreshFamily {
                token: token.clone(),
                grant: grant.clone(),
                user_enabled: true,
            })
        );
    }
    assert_eq!(
        store
            .get_refresh_family(&hash(&run, "none"))
            .await
            .expect("get unknown family"),
        None
    );

    store
        .set_user_disabled(&party.user.user_id, true, NOW)
        .await
        .expect("disable user");
    let family = store
        .get_refresh_family(&fresh.token_hash)
        .await
        .expect("get family of a disabled user")
        .expect("the family is still stored");
    assert!(
        !family.user_enabled,
        "a disabled user's family reads enabled"
    );
    assert_eq!(family.token, fresh);

    store
        .revoke_grant(&grant.grant_id, NOW)
        .await
        .expect("revoke grant");
    assert_eq!(
        store
            .get_refresh_family(&fresh.token_hash)
            .await
            .expect("get family of a revoked grant"),
        None,
        "revocation deletes the grant's refresh tokens"
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
            .rotate_refresh_token(&presented.token_hash, &successor, Some(&sealed), None, NOW)
            .await
            .expect("rotate"),
        Rotation::Rotated {
            previous: presented.clone(),
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
    let lost_jti = format!("conf-{run}-lost-access");
    assert_eq!(
        store
            .rotate_refresh_token(
                &presented.token_hash,
                &second,
                Some(&[0x99]),
                Some((lost_jti.as_str(), NOW + 600)),
                NOW + 5
            )
            .await
            .expect("rotate again"),
        Rotation::AlreadyRotated {
            previous: rotated.clone(),
            grant: Box::new(grant.clone())
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

    // The successor rotates in turn, recording its access token with it.
    let third = refresh(&grant, hash(&run, "rt-2"), NOW + 9_000);
    let jti = format!("conf-{run}-rotated-access");
    assert!(matches!(
        store
            .rotate_refresh_token(
                &successor.token_hash,
                &third,
                None,
                Some((jti.as_str(), NOW + 600)),
                NOW + 10
            )
            .await
            .expect("rotate successor"),
        Rotation::Rotated { .. }
    ));
    let without_seal = store
        .get_refresh_token(&successor.token_hash)
        .await
        .expect("get rotated successor")
        .expect("kept");
    assert_eq!(without_seal.rotated_at, Some(NOW + 10));
    assert_eq!(
        without_seal.sealed_successor, None,
        "rotated without a sealed successor, none is stored"
    );
    // Recorded in the rotation's transaction: revoking the grant reaches it.
    assert!(!store.is_revoked(&jti).await.expect("is revoked"));
    assert!(
        store
            .revoke_grant(&grant.grant_id, NOW + 20)
            .await
            .expect("revoke grant")
    );
    assert!(
        store.is_revoked(&jti).await.expect("is revoked"),
        "the access token recorded with the rotation is revoked with its grant"
    );
    assert!(
        !store.is_revoked(&lost_jti).await.expect("is revoked"),
        "a rotation that did not happen recorded no access token"
    );
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
                Some(&[1]),
                None,
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
                .rotate_refresh_token(&presented, &successor, Some(&[7]), None, now)
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
            .rotate_refresh_token(&tokens[0].token_hash, &successor, Some(&[1]), None, NOW)
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
            .record_issued(grant_id, jti, expires_at, None)
            .await
            .expect("record access token");
    }
    // Recording the same jti twice is not an error.
    store
        .record_issued(&grant.grant_id, &live_jti, NOW + 600, None)
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
                    Some(&[2]),
                    None,
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
        .record_issued(&grant.grant_id, &late_jti, NOW + 600, None)
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
    let [u1_c1, u1_c2, u2_c1, u2_c2] = owners(store, &run).await;
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
            .record_issued(&grant.grant_id, &jti, NOW + 600, None)
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
            .revoke_grants_of_client(&u1_c2.client.client_id, NOW)
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
            .record_issued(
                &live.grant_id,
                &format!("conf-{run}-old-{i}"),
                now - 30 + i,
                None,
            )
            .await
            .expect("record");
    }
    let live_jti = format!("conf-{run}-live-jti");
    store
        .record_issued(&live.grant_id, &live_jti, now + 600, None)
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

/// `list_grants_of_user` / `list_grants_of_client` return exactly the owner's
/// live grants, oldest first (ties by grant id): neither a revoked nor an
/// expired grant, nor another owner's.
pub async fn grants_listed_by_owner(store: &dyn Store) {
    let run = unique();
    let [u1_c1, u1_c2, u2_c1, _u2_c2] = owners(store, &run).await;
    let id = |label: &str| format!("conf-{run}-{label}");
    for (label, party, created_at, expires_at) in [
        ("b", &u1_c1, NOW - 10, NOW + 600),
        ("a", &u1_c1, NOW - 10, NOW + 600),
        ("c", &u1_c2, NOW - 20, NOW + 600),
        ("expired", &u1_c1, NOW - 30, NOW),
        ("revoked", &u1_c1, NOW - 30, NOW + 600),
        ("other", &u2_c1, NOW - 5, NOW + 600),
    ] {
        let grant = Grant {
            created_at,
            ..grant_of(party, &id(label), None, expires_at)
        };
        insert_grant(store, &grant, &run).await;
    }
    assert!(
        store
            .revoke_grant(&id("revoked"), NOW)
            .await
            .expect("revoke")
    );
    let ids = |grants: Vec<Grant>| -> Vec<String> {
        grants.into_iter().map(|grant| grant.grant_id).collect()
    };

    let of_u1 = store
        .list_grants_of_user(&u1_c1.user.user_id, NOW)
        .await
        .expect("list of user");
    assert_eq!(ids(of_u1), vec![id("c"), id("a"), id("b")], "user 1");
    let of_c1 = store
        .list_grants_of_client(&u1_c1.client.client_id, NOW)
        .await
        .expect("list of client");
    assert_eq!(ids(of_c1), vec![id("a"), id("b"), id("other")], "client 1");
    assert!(
        store
            .list_grants_of_user(&id("nobody"), NOW)
            .await
            .expect("list of unknown user")
            .is_empty()
    );
    // Past their expiry, none is live.
    assert!(
        store
            .list_grants_of_client(&u1_c2.client.client_id, NOW + 600)
            .await
            .expect("list later")
            .is_empty()
    );
}
