//! Sessions, interactions, consent.

use super::*;

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
                .get_live_session(&session.session_hash, now)
                .await
                .expect("get session"),
            live.then(|| session.clone()),
            "session at {now} (expires {})",
            session.expires_at
        );
    }
    assert_eq!(
        store
            .get_live_session(&hash(&run, "nosession"), NOW)
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
            .get_live_session(&session.session_hash, NOW)
            .await
            .expect("get"),
        Some(session.clone()),
        "first session unchanged"
    );

    // A disabled user's session is not live (the store keeps it; disabling a
    // user through the admin service deletes it too).
    for (disabled, live) in [(true, false), (false, true)] {
        store
            .set_user_disabled(&party.user.user_id, disabled, NOW)
            .await
            .expect("set user disabled");
        assert_eq!(
            store
                .get_live_session(&session.session_hash, NOW)
                .await
                .expect("get session"),
            live.then(|| session.clone()),
            "session of a user with disabled = {disabled}"
        );
    }
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
            .get_live_session(&first.session_hash, NOW)
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
                .get_live_session(&gone.session_hash, NOW)
                .await
                .expect("get"),
            None
        );
    }
    assert_eq!(
        store
            .get_live_session(&theirs.session_hash, NOW)
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
    add(
        &party.client.client_id,
        &["openid", "profile", "openid"],
        NOW,
    )
    .await;
    assert_eq!(
        consent(&party.client.client_id).await,
        strings(&["openid", "profile"]),
        "each scope once from the first consent on"
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
    add(
        &party.client.client_id,
        &["zeta", "openid", "alpha"],
        NOW + 3,
    )
    .await;
    assert_eq!(
        consent(&party.client.client_id).await,
        strings(&["openid", "profile", "email", "zeta", "alpha"]),
        "new scopes follow in the order given"
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
        strings(&["openid", "profile", "email", "zeta", "alpha"])
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
                .get_live_session(&session.session_hash, now - 1_000)
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
            .get_live_session(&live.session_hash, now)
            .await
            .expect("get"),
        Some(live)
    );
}

/// The live sessions of a user are listed oldest first (not the expired ones,
/// not another user's); one is deleted by its `sid`, only for its user.
pub async fn sessions_listed_and_ended_one_by_one(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "l").await;
    let other = party_with_client(store, &run, "m", &party.client).await;
    let first = Session {
        created_at: NOW - 120,
        ..session_of(&party, &hash(&run, "first"), NOW + 3_600)
    };
    let second = session_of(&party, &hash(&run, "second"), NOW + 3_600);
    let expired = session_of(&party, &hash(&run, "expired"), NOW - 1);
    let theirs = session_of(&other, &hash(&run, "theirs"), NOW + 3_600);
    for session in [&second, &first, &expired, &theirs] {
        store.insert_session(session).await.expect("insert session");
    }
    let listed = store
        .list_sessions_of_user(&party.user.user_id, NOW)
        .await
        .expect("list sessions");
    assert_eq!(listed, vec![first.clone(), second.clone()]);

    let user_id = &party.user.user_id;
    let not_hers = store
        .delete_session_of_user(user_id, &theirs.sid)
        .await
        .expect("delete another user's session");
    assert_eq!(not_hers, None, "another user's sid matches nothing");
    let deleted = store
        .delete_session_of_user(user_id, &first.sid)
        .await
        .expect("delete session by sid");
    assert_eq!(deleted, Some(first.clone()));
    let listed = store
        .list_sessions_of_user(user_id, NOW)
        .await
        .expect("list sessions");
    assert_eq!(listed, vec![second]);
    assert_eq!(
        store
            .get_live_session(&theirs.session_hash, NOW)
            .await
            .expect("get"),
        Some(theirs)
    );
}

/// Withdrawing a consent deletes it and revokes the user's live grants to
/// that client only: the same user's grant to another client and another
/// user's grant to that client stay.
pub async fn consent_revoked_with_its_grants(store: &dyn Store) {
    let run = unique();
    let [u1_c1, u1_c2, u2_c1, _] = owners(store, &run).await;
    let mut grants = Vec::new();
    for (label, party) in [("a", &u1_c1), ("b", &u1_c1), ("c", &u1_c2), ("d", &u2_c1)] {
        let grant = grant_of(party, &format!("conf-{run}-g{label}"), None, NOW + 3_600);
        let code = code_of(&grant, hash(&run, &format!("code-{label}")), NOW + 60);
        store
            .insert_grant_with_code(&grant, &code)
            .await
            .expect("insert grant");
        store
            .add_consent(
                &party.user.user_id,
                &party.client.client_id,
                &strings(&["openid"]),
                NOW,
            )
            .await
            .expect("add consent");
        grants.push(grant.grant_id);
    }
    let listed = store
        .list_consents(&u1_c1.user.user_id)
        .await
        .expect("list consents");
    let mut ids: Vec<_> = listed.iter().map(|c| c.client_id.clone()).collect();
    ids.sort();
    let mut expected = vec![
        u1_c1.client.client_id.clone(),
        u1_c2.client.client_id.clone(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(
        listed
            .iter()
            .all(|c| c.scopes == strings(&["openid"]) && c.updated_at == NOW)
    );

    let revoked = store
        .revoke_consent(&u1_c1.user.user_id, &u1_c1.client.client_id, NOW)
        .await
        .expect("revoke consent");
    assert_eq!(revoked, 2);
    let consent = store
        .get_consent(&u1_c1.user.user_id, &u1_c1.client.client_id)
        .await
        .expect("get consent");
    assert!(consent.is_empty(), "the consent is gone");
    for (grant_id, gone) in grants.iter().zip([true, true, false, false]) {
        let grant = store
            .get_grant(grant_id)
            .await
            .expect("get grant")
            .expect("grant");
        assert_eq!(grant.revoked_at.is_some(), gone, "{grant_id}");
    }
    let again = store
        .revoke_consent(&u1_c1.user.user_id, &u1_c1.client.client_id, NOW)
        .await
        .expect("revoke consent again");
    assert_eq!(again, 0);
}
