//! Clients.

use super::*;

/// A confidential client with every field set, including awkward strings, comes
/// back exactly as inserted.
pub async fn clients_roundtrip(store: &dyn Store) {
    let run = unique();
    let client = Client {
        client_id: format!("conf-{run}-full"),
        name: "Ünïcode \"quoted\" \\ name ✓".to_owned(),
        token_endpoint_auth_methods: vec![
            TokenEndpointAuthMethod::ClientSecretPost,
            TokenEndpointAuthMethod::ClientSecretBasic,
        ],
        secret_hash: Some(vec![0x00, 0xff, 0x10, 0x80, 0x7f, 0x00]),
        redirect_uris: vec![
            "https://app.example/cb".to_owned(),
            "http://127.0.0.1/native?x=\"1\"&y=[2]".to_owned(),
            "com.example.app:/oauth2redirect".to_owned(),
        ],
        post_logout_redirect_uris: vec!["https://app.example/bye".to_owned()],
        allowed_origins: vec![
            "https://spa.example".to_owned(),
            "http://localhost:5173".to_owned(),
        ],
        grant_types: vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::DeviceCode,
        ],
        scopes: vec![
            "openid".to_owned(),
            "profile".to_owned(),
            "read:things".to_owned(),
            String::new(),
        ],
        audiences: vec![
            "https://api.example/".to_owned(),
            "https://other.example/".to_owned(),
        ],
        access_token_ttl: Some(600),
        skip_consent: true,
        require_mfa: false,
        require_pushed_authorization_requests: true,
        refresh_grace_seconds: 30,
        id_token_signed_response_alg: Some(Algorithm::Es256),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_123,
        previous_secret_hash: Some(vec![0x01, 0x00, 0xee]),
        previous_secret_expires_at: Some(1_700_003_600),
        introspect_any: true,
        dpop_bound_access_tokens: true,
        jwks: Some(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k"}]}"#.to_owned()),
        jwks_uri: None,
        token_exchange_audiences: vec!["https://api.example/".to_owned()],
        registration_token_hash: Some(vec![0x02, 0x00, 0xff]),
        metadata_expires_at: Some(1_700_009_000),
        sealed_secret: Some(vec![0x03, 0x00, 0xfe]),
        id_token_encryption: Some(valet_core::store::JweChoice {
            alg: valet_jose::KeyManagement::RsaOaep256,
            enc: valet_jose::ContentEncryption::A256Gcm,
        }),
        userinfo_signed_response_alg: Some(valet_jose::Algorithm::Es256),
        userinfo_encryption: Some(valet_core::store::JweChoice {
            alg: valet_jose::KeyManagement::EcdhEsA256Kw,
            enc: valet_jose::ContentEncryption::A128Gcm,
        }),
    };
    store.insert_client(&client).await.expect("insert client");

    let got = store
        .get_client(&client.client_id)
        .await
        .expect("get client");
    assert_eq!(got.as_ref(), Some(&client), "client roundtrip");
    assert_eq!(got.unwrap().secret_hash, client.secret_hash);

    let missing = store
        .get_client(&format!("conf-{run}-missing"))
        .await
        .expect("get missing client");
    assert_eq!(missing, None, "unknown client_id");
}

/// A public client (no secret hash), empty lists, no TTL override and the defaults
/// of the browser-flow settings come back exactly as inserted.
pub async fn clients_public_roundtrip(store: &dyn Store) {
    let run = unique();
    let client = Client {
        token_endpoint_auth_methods: vec![TokenEndpointAuthMethod::None],
        secret_hash: None,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![],
        scopes: vec![],
        audiences: vec![],
        access_token_ttl: None,
        skip_consent: false,
        require_mfa: false,
        refresh_grace_seconds: 0,
        id_token_signed_response_alg: None,
        ..client(&format!("conf-{run}-public"), 5)
    };
    store
        .insert_client(&client)
        .await
        .expect("insert public client");

    let got = store
        .get_client(&client.client_id)
        .await
        .expect("get public client")
        .expect("public client exists");
    assert_eq!(got, client, "public client roundtrip");
    assert!(got.is_public());
    assert_eq!(got.secret_hash, None);
    assert_eq!(got.access_token_ttl, None);
    assert!(!got.skip_consent);
    assert_eq!(got.refresh_grace_seconds, 0);
    assert_eq!(got.id_token_signed_response_alg, None);
}

/// Inserting a second client with a taken `client_id` fails with `Conflict` and
/// leaves the first one untouched.
pub async fn clients_duplicate_conflict(store: &dyn Store) {
    let run = unique();
    let first = client(&format!("conf-{run}-dup"), 10);
    store.insert_client(&first).await.expect("insert client");

    let second = Client {
        name: "impostor".to_owned(),
        secret_hash: Some(vec![9; 32]),
        ..first.clone()
    };
    let err = store
        .insert_client(&second)
        .await
        .expect_err("duplicate client_id must fail");
    assert!(
        matches!(err, StoreError::Conflict),
        "duplicate client_id: expected Conflict, got {err:?}"
    );

    let got = store
        .get_client(&first.client_id)
        .await
        .expect("get client");
    assert_eq!(got, Some(first), "first client unchanged");
}

/// `list_clients` returns every client, ordered by `created_at` then `client_id`.
pub async fn clients_list_order(store: &dyn Store) {
    let run = unique();
    let prefix = format!("conf-{run}-order-");
    let b = client(&format!("{prefix}b"), 100);
    let a = client(&format!("{prefix}a"), 200);
    let c = client(&format!("{prefix}c"), 200);
    for client in [&c, &a, &b] {
        store.insert_client(client).await.expect("insert client");
    }

    let listed: Vec<Client> = store
        .list_clients()
        .await
        .expect("list clients")
        .into_iter()
        .filter(|client| client.client_id.starts_with(&prefix))
        .collect();
    assert_eq!(
        listed,
        vec![b, a, c],
        "clients ordered by created_at, client_id"
    );
}

/// `delete_client` removes the client and reports whether one was deleted.
pub async fn clients_delete(store: &dyn Store) {
    let run = unique();
    let keep = client(&format!("conf-{run}-keep"), 1);
    let gone = client(&format!("conf-{run}-gone"), 1);
    store.insert_client(&keep).await.expect("insert client");
    store.insert_client(&gone).await.expect("insert client");

    assert!(
        store
            .delete_client(&gone.client_id, NOW)
            .await
            .expect("delete")
    );
    assert_eq!(
        store
            .get_client(&gone.client_id)
            .await
            .expect("get deleted"),
        None,
        "deleted client is gone"
    );
    assert!(
        !store
            .delete_client(&gone.client_id, NOW)
            .await
            .expect("delete again"),
        "second delete finds nothing"
    );
    assert_eq!(
        store.get_client(&keep.client_id).await.expect("get kept"),
        Some(keep.clone()),
        "other clients untouched"
    );
    assert!(
        !store
            .list_clients()
            .await
            .expect("list")
            .iter()
            .any(|client| client.client_id == gone.client_id),
        "deleted client is not listed"
    );

    // The id is free again.
    store
        .insert_client(&gone)
        .await
        .expect("reinsert deleted id");
}

/// `delete_client` takes its grants and consents with it and revokes the grants'
/// recorded access tokens; the user stays.
pub async fn clients_delete_cascades(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "dc").await;
    let (grant, code) = issue(store, &party, &run, "dc", None).await;
    let token = refresh(&grant, hash(&run, "rt"), NOW + 3_600);
    store.insert_refresh_token(&token).await.expect("insert");
    let jti = format!("conf-{run}-jti");
    store
        .record_issued(&grant.grant_id, &jti, NOW + 600, None)
        .await
        .expect("record");
    store
        .add_consent(
            &party.user.user_id,
            &party.client.client_id,
            &strings(&["openid"]),
            NOW,
        )
        .await
        .expect("consent");

    assert!(
        store
            .delete_client(&party.client.client_id, NOW)
            .await
            .expect("delete client")
    );
    assert_eq!(store.get_grant(&grant.grant_id).await.expect("get"), None);
    assert_eq!(
        store
            .redeem_code(&code.code_hash, NOW)
            .await
            .expect("redeem"),
        CodeRedemption::Unknown
    );
    assert_eq!(
        store
            .get_refresh_token(&token.token_hash)
            .await
            .expect("get"),
        None
    );
    assert!(store.is_revoked(&jti).await.expect("is_revoked"));
    assert_eq!(
        store
            .get_consent(&party.user.user_id, &party.client.client_id)
            .await
            .expect("consent"),
        Vec::<String>::new()
    );
    assert_eq!(
        store.get_user(&party.user.user_id).await.expect("get user"),
        Some(party.user.clone())
    );
}

/// `set_client_secret` replaces the hash and `updated_at`, and nothing else;
/// with an overlap the replaced hash becomes the previous one until then (only
/// one is kept), without one no previous hash is kept.
pub async fn clients_set_secret(store: &dyn Store) {
    let run = unique();
    let original = client(&format!("conf-{run}-secret"), 1_000);
    store.insert_client(&original).await.expect("insert client");

    let new_hash = vec![0xab; 32];
    assert!(
        store
            .set_client_secret(&original.client_id, &new_hash, None, 2_000, None)
            .await
            .expect("set secret"),
        "existing client matched"
    );
    let got = store
        .get_client(&original.client_id)
        .await
        .expect("get client")
        .expect("client exists");
    let expected = Client {
        secret_hash: Some(new_hash.clone()),
        updated_at: 2_000,
        ..original.clone()
    };
    assert_eq!(got, expected, "only secret_hash and updated_at change");

    // A client_secret_jwt client's sealed copy is replaced with the hash.
    let sealed = vec![0x05, 0x00, 0xfa];
    assert!(
        store
            .set_client_secret(&original.client_id, &new_hash, None, 2_000, Some(&sealed))
            .await
            .expect("set sealed secret")
    );
    let got = store
        .get_client(&original.client_id)
        .await
        .expect("get client")
        .expect("client exists");
    assert_eq!(got.sealed_secret, Some(sealed), "sealed secret stored");

    // With overlap: the replaced hash stays as the previous one until then.
    let newer_hash = vec![0xcd; 32];
    assert!(
        store
            .set_client_secret(&original.client_id, &newer_hash, Some(5_000), 3_000, None)
            .await
            .expect("rotate with overlap")
    );
    let overlapping = Client {
        secret_hash: Some(newer_hash.clone()),
        previous_secret_hash: Some(new_hash.clone()),
        previous_secret_expires_at: Some(5_000),
        updated_at: 3_000,
        ..expected.clone()
    };
    assert_eq!(
        store.get_client(&original.client_id).await.expect("get"),
        Some(overlapping)
    );
    // Again: only one previous secret, the one just replaced.
    let newest_hash = vec![0xef; 32];
    assert!(
        store
            .set_client_secret(&original.client_id, &newest_hash, Some(6_000), 3_500, None)
            .await
            .expect("rotate again with overlap")
    );
    let again = store
        .get_client(&original.client_id)
        .await
        .expect("get")
        .expect("client exists");
    assert_eq!(again.secret_hash, Some(newest_hash.clone()));
    assert_eq!(again.previous_secret_hash, Some(newer_hash));
    assert_eq!(again.previous_secret_expires_at, Some(6_000));
    // Without overlap the previous one goes too.
    assert!(
        store
            .set_client_secret(&original.client_id, &new_hash, None, 4_000, None)
            .await
            .expect("rotate without overlap")
    );
    let strict = store
        .get_client(&original.client_id)
        .await
        .expect("get")
        .expect("client exists");
    assert_eq!(strict.previous_secret_hash, None);
    assert_eq!(strict.previous_secret_expires_at, None);
    assert_eq!(strict.secret_hash, Some(new_hash.clone()));

    assert!(
        !store
            .set_client_secret(
                &format!("conf-{run}-nobody"),
                &new_hash,
                Some(9_000),
                2_000,
                None
            )
            .await
            .expect("set secret of unknown client"),
        "unknown client does not match"
    );
    assert_eq!(
        store
            .get_client(&format!("conf-{run}-nobody"))
            .await
            .expect("get"),
        None,
        "set_client_secret does not create clients"
    );
    // A public client stays public: no secret can be attached to it.
    let public = Client {
        secret_hash: None,
        ..client(&format!("conf-{run}-public"), 1_000)
    };
    store
        .insert_client(&public)
        .await
        .expect("insert public client");
    assert!(
        !store
            .set_client_secret(&public.client_id, &new_hash, Some(9_000), 2_000, None)
            .await
            .expect("set secret of public client"),
        "public client does not match"
    );
    assert_eq!(
        store.get_client(&public.client_id).await.expect("get"),
        Some(public),
        "public client unchanged"
    );
}

/// `update_client` replaces the settings and `updated_at`, and leaves the type,
/// grant types, secrets and `created_at` as stored, whatever the record passed
/// says about them; an unknown client matches nothing.
pub async fn clients_update(store: &dyn Store) {
    let run = unique();
    let stored = Client {
        previous_secret_hash: Some(vec![0x01, 0x02]),
        previous_secret_expires_at: Some(1_700_000_900),
        ..client(&format!("conf-{run}-update"), 20)
    };
    store.insert_client(&stored).await.expect("insert client");
    let wanted = Client {
        name: "Renamed ✓ \"client\"".to_owned(),
        redirect_uris: vec![
            "https://app.example/new".to_owned(),
            "http://127.0.0.1/native".to_owned(),
        ],
        post_logout_redirect_uris: vec!["https://app.example/bye".to_owned()],
        allowed_origins: vec!["https://new.example".to_owned()],
        scopes: vec![],
        audiences: vec!["https://other.example/".to_owned()],
        access_token_ttl: None,
        skip_consent: true,
        require_mfa: false,
        require_pushed_authorization_requests: true,
        refresh_grace_seconds: 30,
        id_token_signed_response_alg: Some(Algorithm::Es256),
        introspect_any: true,
        dpop_bound_access_tokens: true,
        jwks: None,
        jwks_uri: Some("https://app.example/jwks.json".to_owned()),
        token_exchange_audiences: vec!["https://a.example/".to_owned(), "b".to_owned()],
        updated_at: 25,
        ..stored.clone()
    };
    let sneaky = Client {
        secret_hash: None,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        grant_types: vec![GrantType::ClientCredentials],
        created_at: 99,
        ..wanted.clone()
    };
    assert!(
        store.update_client(&sneaky).await.expect("update client"),
        "an existing client matches"
    );
    let got = store
        .get_client(&stored.client_id)
        .await
        .expect("get client")
        .expect("client exists");
    assert_eq!(got, wanted, "settings replaced, the rest kept");

    let missing = client(&format!("conf-{run}-update-missing"), 20);
    assert!(
        !store.update_client(&missing).await.expect("update missing"),
        "an unknown client matches nothing"
    );
    assert_eq!(
        store
            .get_client(&missing.client_id)
            .await
            .expect("get missing"),
        None,
        "an update creates nothing"
    );
}

/// `list_clients_after` pages in the order of `list_clients`, starting after a
/// position (`created_at`, `client_id`).
pub async fn clients_list_after(store: &dyn Store) {
    let run = unique();
    let prefix = format!("conf-{run}-after-");
    // A time of this run only: no other record sorts among these.
    let at = timeline();
    let clients: Vec<Client> = ["a", "b", "c"]
        .iter()
        .map(|id| client(&format!("{prefix}{id}"), at))
        .collect();
    for client in clients.iter().rev() {
        store.insert_client(client).await.expect("insert client");
    }
    let mine = prefix.as_str();
    let after = |id: &str, limit: u32| {
        let id = id.to_owned();
        async move {
            store
                .list_clients_after(Some((at, &id)), limit)
                .await
                .expect("clients after")
                .into_iter()
                .filter(|c| c.client_id.starts_with(mine))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(after("", 2).await, clients[..2].to_vec());
    assert_eq!(after(&clients[1].client_id, 2).await, clients[2..].to_vec());
    assert!(after(&clients[2].client_id, 5).await.is_empty());
    let first = store
        .list_clients_after(None, 1)
        .await
        .expect("first client");
    let all = store.list_clients().await.expect("all clients");
    assert_eq!(first.first(), all.first());
}
