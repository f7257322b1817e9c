//! Users.

use super::*;
use valet_core::store::UserPageQuery;

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

/// `upgrade_password_hash` replaces the hash only while it is still the
/// expected one (a password changed meanwhile is kept), and leaves `updated_at`.
pub async fn users_upgrade_password_hash_only_from_the_expected_one(store: &dyn Store) {
    let run = unique();
    let weak = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$d2Vhaw";
    let strong = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$c3Ryb25n";
    let original = User {
        password_hash: Some(weak.to_owned()),
        ..user(&format!("conf-{run}-upgrade"), 1_000)
    };
    store.insert_user(&original).await.expect("insert user");

    let changed = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$Y2hhbmdlZA";
    assert!(
        !store
            .upgrade_password_hash(&original.user_id, changed, strong)
            .await
            .expect("upgrade from a hash that is not stored"),
        "only the expected hash is replaced"
    );
    assert_eq!(
        store.get_user(&original.user_id).await.expect("get"),
        Some(original.clone())
    );

    assert!(
        store
            .upgrade_password_hash(&original.user_id, weak, strong)
            .await
            .expect("upgrade")
    );
    assert_eq!(
        store.get_user(&original.user_id).await.expect("get"),
        Some(User {
            password_hash: Some(strong.to_owned()),
            ..original.clone()
        })
    );
    assert!(
        !store
            .upgrade_password_hash(&format!("conf-{run}-nobody"), weak, strong)
            .await
            .expect("upgrade of an unknown user")
    );
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
            .record_issued(&grant.grant_id, &jti, NOW + 600, None)
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
            .delete_session(&gone.0.session_hash)
            .await
            .expect("delete session"),
        None,
        "sessions deleted (the rows are gone, not only no longer live)"
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
            .get_live_session(&stays.0.session_hash, NOW)
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

/// `set_user_unlocked` only moves forward; `login_unlocked_at` finds the user by
/// username or (case-insensitively) email, as `find_user_by_login` does.
pub async fn users_unlock(store: &dyn Store) {
    let run = unique();
    let original = user(&format!("conf-{run}-unlock"), 1_000);
    let username = original.username.clone();
    let email = original.email.clone().expect("the helper gives an email");
    store.insert_user(&original).await.expect("insert user");
    assert_eq!(
        store.login_unlocked_at(&username).await.expect("read"),
        None
    );
    assert!(
        store
            .set_user_unlocked(&original.user_id, 5_000)
            .await
            .expect("unlock")
    );
    assert_eq!(
        store.login_unlocked_at(&username).await.expect("read"),
        Some(5_000)
    );
    assert_eq!(
        store
            .login_unlocked_at(&email.to_lowercase())
            .await
            .expect("read by email"),
        Some(5_000)
    );
    // Never back.
    assert!(
        store
            .set_user_unlocked(&original.user_id, 4_000)
            .await
            .expect("unlock")
    );
    assert_eq!(
        store.login_unlocked_at(&username).await.expect("read"),
        Some(5_000)
    );
    assert!(
        store
            .set_user_unlocked(&original.user_id, 6_000)
            .await
            .expect("unlock")
    );
    assert_eq!(
        store.login_unlocked_at(&username).await.expect("read"),
        Some(6_000)
    );
    // The rest of the user is unchanged, and unknown users are reported.
    assert_eq!(
        store.get_user(&original.user_id).await.expect("get"),
        Some(original)
    );
    assert!(
        !store
            .set_user_unlocked(&format!("conf-{run}-nobody"), 1)
            .await
            .expect("unlock nobody")
    );
    assert_eq!(
        store
            .login_unlocked_at(&format!("conf-{run}-nobody"))
            .await
            .expect("read nobody"),
        None
    );
}

/// `update_user` replaces the email, `email_verified`, names, `admin` and `updated_at`,
/// keeps the rest; an email that is another user's (in any ASCII case) is a
/// `Conflict` that changes nothing; an unknown user matches nothing.
pub async fn users_update(store: &dyn Store) {
    let run = unique();
    let alice = user(&format!("conf-{run}-upd-alice"), 1);
    let bob = user(&format!("conf-{run}-upd-bob"), 2);
    for user in [&alice, &bob] {
        store.insert_user(user).await.expect("insert user");
    }
    let wanted = User {
        email: Some(format!("New-{run}@Example.org")),
        email_verified: false,
        name: None,
        given_name: Some("Ålice".to_owned()),
        family_name: None,
        updated_at: 10,
        admin: true,
        ..alice.clone()
    };
    let sneaky = User {
        username: format!("conf-{run}-renamed"),
        password_hash: None,
        disabled: true,
        created_at: 99,
        ..wanted.clone()
    };
    assert!(store.update_user(&sneaky).await.expect("update user"));
    assert_eq!(
        store.get_user(&alice.user_id).await.expect("get user"),
        Some(wanted.clone()),
        "profile replaced, the rest kept"
    );
    assert_eq!(
        store
            .find_user_by_login(&format!("new-{run}@example.ORG"))
            .await
            .expect("find by new email")
            .map(|u| u.user_id),
        Some(alice.user_id.clone())
    );

    let taken = User {
        email: bob.email.as_ref().map(|e| e.to_uppercase()),
        updated_at: 11,
        ..wanted.clone()
    };
    assert!(matches!(
        store.update_user(&taken).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.get_user(&alice.user_id).await.expect("get user"),
        Some(wanted),
        "a refused update changes nothing"
    );
    let cleared = User {
        email: None,
        email_verified: false,
        updated_at: 12,
        ..bob.clone()
    };
    assert!(store.update_user(&cleared).await.expect("clear email"));
    assert_eq!(
        store.get_user(&bob.user_id).await.expect("get bob"),
        Some(cleared)
    );

    let missing = user(&format!("conf-{run}-upd-missing"), 3);
    assert!(!store.update_user(&missing).await.expect("update missing"));
}

/// `list_users_page` pages by keyset and offset in the stable order and
/// searches username and email for a text, ignoring case, with `%`, `_` and
/// `\` matching only themselves; `count_users` counts what the search finds.
pub async fn users_page_and_search(store: &dyn Store) {
    let run = unique();
    let prefix = format!("conf-{run}-page-");
    // A time of this run only: no other record sorts among these.
    let at = timeline();
    let mut users: Vec<User> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|id| user(&format!("{prefix}{id}"), at))
        .collect();
    users[4].username = format!("{prefix}e_%\\name");
    users[3].username = format!("{prefix}Émile");
    for user in users.iter().rev() {
        store.insert_user(user).await.expect("insert user");
    }
    let mine = prefix.as_str();
    let page = |after: Option<&str>, search: Option<&str>, offset: u32, limit: u32| {
        let query = UserPageQuery {
            after: Some((at, after.unwrap_or_default().to_owned())),
            search: search.map(str::to_owned),
            offset,
            limit,
        };
        async move {
            let found = store.list_users_page(&query).await.expect("page of users");
            found
                .into_iter()
                .filter(|u| u.user_id.starts_with(mine))
                .map(|u| u.user_id)
                .collect::<Vec<_>>()
        }
    };
    let ids = |which: &[usize]| -> Vec<String> {
        which.iter().map(|i| users[*i].user_id.clone()).collect()
    };
    assert_eq!(page(None, None, 0, 2).await, ids(&[0, 1]));
    assert_eq!(
        page(Some(&users[1].user_id), None, 0, 2).await,
        ids(&[2, 3])
    );
    assert_eq!(page(None, None, 1, 2).await, ids(&[1, 2]));
    assert_eq!(page(Some(&users[3].user_id), None, 0, 10).await, ids(&[4]));

    let shouting = format!("{prefix}C").to_uppercase();
    assert_eq!(page(None, Some(&shouting), 0, 10).await, ids(&[2]));
    let by_email = format!("{prefix}D@EXAMPLE.com");
    assert_eq!(page(None, Some(&by_email), 0, 10).await, ids(&[3]));
    // Wildcards in the text are literal: `_%` is only in e's username.
    assert_eq!(page(None, Some("_%"), 0, 10).await, ids(&[4]));
    assert_eq!(page(None, Some("e_%\\n"), 0, 10).await, ids(&[4]));
    assert_eq!(page(None, Some("a\\"), 0, 10).await, ids(&[]));
    assert_eq!(page(None, Some(&prefix), 1, 3).await, ids(&[1, 2, 3]));
    // ASCII letters fold on every store; others match only as written.
    assert_eq!(page(None, Some("ÉMILE"), 0, 10).await, ids(&[3]));
    assert_eq!(page(None, Some("émile"), 0, 10).await, ids(&[]));

    let count = |search: String| async move {
        store.count_users(Some(&search)).await.expect("count users")
    };
    assert_eq!(count(prefix.to_uppercase()).await, 5);
    assert_eq!(count(format!("{prefix}e_%")).await, 1);
    assert_eq!(count(format!("{prefix}_")).await, 0);
    assert!(store.count_users(None).await.expect("count all") >= 5);
}
