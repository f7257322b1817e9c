//! Dynamic registration: initial access tokens, registration access tokens,
//! clients stored from metadata documents.

use valet_core::store::InitialAccessToken;

use super::*;

fn initial_token(
    run: &str,
    name: &str,
    expires_at: i64,
    uses_left: Option<i64>,
) -> InitialAccessToken {
    InitialAccessToken {
        token_id: format!("conf-{run}-{name}"),
        token_hash: format!("conf-{run}-{name}-hash").into_bytes(),
        note: "for \"the\" team ✓".to_owned(),
        created_at: 1_700_000_000,
        expires_at,
        uses_left,
    }
}

/// A token works while unexpired and with uses left; each use spends one; an
/// unlimited one never runs out; listing, deletion and purge.
pub async fn registration_initial_tokens(store: &dyn Store) {
    let run = unique();
    let twice = initial_token(&run, "twice", 2_000, Some(2));
    let always = initial_token(&run, "always", 2_000, None);
    store.insert_initial_token(&twice).await.unwrap();
    store.insert_initial_token(&always).await.unwrap();
    assert!(matches!(
        store.insert_initial_token(&twice).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .live_initial_token(&twice.token_hash, 1_999)
            .await
            .unwrap(),
        Some(twice.clone())
    );
    assert!(
        store
            .use_initial_token(&twice.token_hash, 1_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_initial_token(&twice.token_hash, 1_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_initial_token(&twice.token_hash, 1_000)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .live_initial_token(&twice.token_hash, 1_000)
            .await
            .unwrap(),
        None
    );
    for _ in 0..3 {
        assert!(
            store
                .use_initial_token(&always.token_hash, 1_999)
                .await
                .unwrap()
        );
    }
    // Expired at `expires_at`.
    assert!(
        !store
            .use_initial_token(&always.token_hash, 2_000)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .live_initial_token(&always.token_hash, 2_000)
            .await
            .unwrap(),
        None
    );
    assert!(!store.use_initial_token(b"unknown", 0).await.unwrap());

    let listed = store.list_initial_tokens().await.unwrap();
    let spent = listed
        .iter()
        .find(|t| t.token_id == twice.token_id)
        .unwrap();
    assert_eq!(spent.uses_left, Some(0));
    assert!(
        listed
            .iter()
            .any(|t| t.token_id == always.token_id && t.uses_left.is_none())
    );
    assert!(store.delete_initial_token(&always.token_id).await.unwrap());
    assert!(!store.delete_initial_token(&always.token_id).await.unwrap());

    // Purged once expired, on the private timeline.
    let at = timeline();
    let late = initial_token(&run, "late", at, Some(1));
    store.insert_initial_token(&late).await.unwrap();
    store.purge_initial_tokens(at - 1, 10_000).await.unwrap();
    assert!(
        store
            .list_initial_tokens()
            .await
            .unwrap()
            .iter()
            .any(|t| t.token_id == late.token_id)
    );
    store.purge_initial_tokens(at, 10_000).await.unwrap();
    assert!(
        !store
            .list_initial_tokens()
            .await
            .unwrap()
            .iter()
            .any(|t| t.token_id == late.token_id)
    );
}

/// Concurrent uses of a token with three uses left: exactly three succeed.
pub async fn concurrent_initial_token_use(store: &dyn Store) {
    let run = unique();
    let token = initial_token(&run, "race", 2_000, Some(3));
    store.insert_initial_token(&token).await.unwrap();
    let outcomes = join_all(
        (0..12)
            .map(|_| store.use_initial_token(&token.token_hash, 1_000))
            .collect::<Vec<_>>(),
    )
    .await;
    let used = outcomes
        .into_iter()
        .filter(|outcome| *outcome.as_ref().unwrap())
        .count();
    assert_eq!(used, 3);
}

/// The registration access token of a self-registered client is replaced;
/// an operator's client has none and gets none.
pub async fn registration_tokens(store: &dyn Store) {
    let run = unique();
    let dynamic = Client {
        registration_token_hash: Some(vec![1, 2, 3]),
        ..client(&format!("conf-{run}-dynamic"), 1)
    };
    let operator = client(&format!("conf-{run}-operator"), 1);
    store.insert_client(&dynamic).await.unwrap();
    store.insert_client(&operator).await.unwrap();
    assert!(
        store
            .set_registration_token(&dynamic.client_id, &[4, 5], 9)
            .await
            .unwrap()
    );
    let stored = store.get_client(&dynamic.client_id).await.unwrap().unwrap();
    assert_eq!(stored.registration_token_hash, Some(vec![4, 5]));
    assert_eq!(stored.updated_at, 9);
    assert!(
        !store
            .set_registration_token(&operator.client_id, &[4, 5], 9)
            .await
            .unwrap()
    );
    let stored = store
        .get_client(&operator.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.registration_token_hash, None);
}

/// A client from a metadata document is inserted, then replaced by a newer
/// copy; it never replaces a client of another origin.
pub async fn registration_metadata_clients(store: &dyn Store) {
    let run = unique();
    let url = format!("https://conf-{run}.example/client.json");
    let first = Client {
        metadata_expires_at: Some(100),
        token_endpoint_auth_methods: vec![TokenEndpointAuthMethod::None],
        secret_hash: None,
        ..client(&url, 1)
    };
    assert!(store.upsert_metadata_client(&first).await.unwrap());
    assert_eq!(store.get_client(&url).await.unwrap(), Some(first.clone()));
    let second = Client {
        name: "renamed".to_owned(),
        redirect_uris: vec!["https://conf.example/other".to_owned()],
        metadata_expires_at: Some(200),
        updated_at: 50,
        ..first.clone()
    };
    assert!(store.upsert_metadata_client(&second).await.unwrap());
    assert_eq!(store.get_client(&url).await.unwrap(), Some(second));

    let operator = client(&format!("conf-{run}-op"), 1);
    store.insert_client(&operator).await.unwrap();
    let hijack = Client {
        metadata_expires_at: Some(100),
        redirect_uris: vec!["https://evil.example/cb".to_owned()],
        ..operator.clone()
    };
    assert!(!store.upsert_metadata_client(&hijack).await.unwrap());
    assert_eq!(
        store.get_client(&operator.client_id).await.unwrap(),
        Some(operator)
    );
}
