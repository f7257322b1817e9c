//! Passkeys.

use super::*;

fn passkey(user_id: &str, credential_id: Vec<u8>, created_at: i64) -> PasskeyRecord {
    PasskeyRecord {
        credential_id,
        user_id: user_id.to_owned(),
        user_handle: "9b2f6e1c-2f7a-4c55-9a3e-0d3f1b8e7c21".to_owned(),
        name: "Zoë's \"laptop\"".to_owned(),
        passkey: r#"{"cred":{"counter":0}}"#.to_owned(),
        sign_count: 0,
        backup_eligible: true,
        backed_up: false,
        created_at,
        last_used_at: None,
    }
}

/// A passkey comes back as inserted, listed oldest first with its user's
/// others; its credential id is unique across users; a use updates its
/// credential, counter, flags and last use.
pub async fn passkeys_roundtrip(store: &dyn Store) {
    let run = unique();
    let alice = party(store, &run, "pk-alice").await.user;
    let bob = party(store, &run, "pk-bob").await.user;
    let second = passkey(&alice.user_id, hash(&run, "pk-2"), NOW + 1);
    let first = passkey(&alice.user_id, hash(&run, "pk-1"), NOW);
    for record in [&second, &first] {
        store.insert_passkey(record).await.expect("insert passkey");
    }
    assert_eq!(
        store.get_passkey(&first.credential_id).await.expect("get"),
        Some(first.clone())
    );
    assert_eq!(
        store
            .get_passkey(&hash(&run, "pk-none"))
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store.list_passkeys(&alice.user_id).await.expect("list"),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(store.list_passkeys(&bob.user_id).await.expect("list"), []);
    for taken in [
        passkey(&alice.user_id, first.credential_id.clone(), NOW + 2),
        passkey(&bob.user_id, first.credential_id.clone(), NOW + 2),
    ] {
        assert!(
            matches!(
                store.insert_passkey(&taken).await,
                Err(StoreError::Conflict)
            ),
            "a credential id is registered once"
        );
    }
    assert_eq!(
        store.list_passkeys(&bob.user_id).await.expect("list"),
        [],
        "a refused insert stores nothing"
    );

    let used = PasskeyRecord {
        passkey: r#"{"cred":{"counter":7}}"#.to_owned(),
        sign_count: 7,
        backed_up: true,
        last_used_at: Some(NOW + 60),
        ..first.clone()
    };
    assert!(store.record_passkey_use(&used).await.expect("use"));
    assert_eq!(
        store.get_passkey(&first.credential_id).await.expect("get"),
        Some(used.clone())
    );
    let not_bobs = PasskeyRecord {
        user_id: bob.user_id.clone(),
        ..used.clone()
    };
    assert!(
        !store.record_passkey_use(&not_bobs).await.expect("use"),
        "another user's credential is not matched"
    );
}

/// A user removes only their own passkeys; deleting the user removes theirs.
pub async fn passkeys_delete(store: &dyn Store) {
    let run = unique();
    let alice = party(store, &run, "pkd-alice").await.user;
    let bob = party(store, &run, "pkd-bob").await.user;
    let alices = passkey(&alice.user_id, hash(&run, "pkd-a"), NOW);
    let bobs = passkey(&bob.user_id, hash(&run, "pkd-b"), NOW);
    for record in [&alices, &bobs] {
        store.insert_passkey(record).await.expect("insert passkey");
    }
    assert!(
        !store
            .delete_passkey(&bob.user_id, &alices.credential_id)
            .await
            .expect("delete"),
        "not another user's"
    );
    assert!(
        store
            .get_passkey(&alices.credential_id)
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        store
            .delete_passkey(&alice.user_id, &alices.credential_id)
            .await
            .expect("delete")
    );
    assert_eq!(
        store.get_passkey(&alices.credential_id).await.expect("get"),
        None
    );
    assert!(
        !store
            .delete_passkey(&alice.user_id, &alices.credential_id)
            .await
            .expect("delete"),
        "once"
    );

    assert!(store.delete_user(&bob.user_id).await.expect("delete user"));
    assert_eq!(
        store.get_passkey(&bobs.credential_id).await.expect("get"),
        None,
        "deleted with its user"
    );
}
