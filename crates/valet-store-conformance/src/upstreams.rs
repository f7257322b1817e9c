//! Upstream providers and the links of users to their identities there.

use valet_core::store::{Upstream, UpstreamKind, UpstreamLink};

use super::*;

fn upstream(name: &str, kind: UpstreamKind) -> Upstream {
    Upstream {
        name: name.to_owned(),
        kind,
        issuer: (kind == UpstreamKind::Oidc).then(|| "https://op.example.com".to_owned()),
        client_id: "valet".to_owned(),
        sealed_secret: vec![1, 2, 3, 0, 255],
        scopes: vec!["openid".to_owned(), "email".to_owned()],
        authorization_endpoint: (kind == UpstreamKind::Oauth2)
            .then(|| "https://op.example.com/authorize".to_owned()),
        token_endpoint: None,
        userinfo_endpoint: None,
        subject_claim: "sub".to_owned(),
        email_claim: "email".to_owned(),
        name_claim: "name".to_owned(),
        metadata: Some(r#"{"issuer":"https://op.example.com"}"#.to_owned()),
        created_at: NOW,
    }
}

/// An upstream comes back as inserted; its name is unique; a link is unique
/// per (upstream, subject), listed with its user's, removed by its user only,
/// and gone with its upstream.
pub async fn upstreams_and_links(store: &dyn Store) {
    let run = unique();
    let oidc = upstream(&format!("oidc-{run}"), UpstreamKind::Oidc);
    let plain = upstream(&format!("plain-{run}"), UpstreamKind::Oauth2);
    for record in [&oidc, &plain] {
        store
            .insert_upstream(record)
            .await
            .expect("insert upstream");
    }
    assert!(matches!(
        store.insert_upstream(&oidc).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.get_upstream(&oidc.name).await.expect("get"),
        Some(oidc.clone())
    );
    assert_eq!(
        store.get_upstream(&plain.name).await.expect("get"),
        Some(plain.clone())
    );
    let listed = store.list_upstreams().await.expect("list");
    assert!(listed.contains(&oidc) && listed.contains(&plain));

    let alice = party(store, &run, "up-alice").await.user;
    let bob = party(store, &run, "up-bob").await.user;
    let link = |upstream: &Upstream, subject: &str, user: &User, at: i64| UpstreamLink {
        upstream: upstream.name.clone(),
        subject: subject.to_owned(),
        user_id: user.user_id.clone(),
        linked_at: at,
    };
    let first = link(&oidc, "s-1", &alice, NOW);
    let second = link(&plain, "s-1", &alice, NOW + 1);
    for record in [&second, &first] {
        store
            .insert_upstream_link(record)
            .await
            .expect("insert link");
    }
    assert!(matches!(
        store
            .insert_upstream_link(&link(&oidc, "s-1", &bob, NOW))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .get_upstream_link(&oidc.name, "s-1")
            .await
            .expect("get"),
        Some(first.clone())
    );
    assert_eq!(
        store
            .get_upstream_link(&oidc.name, "s-2")
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .list_upstream_links(&alice.user_id)
            .await
            .expect("list"),
        vec![first.clone(), second.clone()]
    );
    assert!(
        !store
            .delete_upstream_link(&bob.user_id, &oidc.name, "s-1")
            .await
            .expect("delete"),
        "only its user removes a link"
    );
    assert!(
        store
            .delete_upstream_link(&alice.user_id, &oidc.name, "s-1")
            .await
            .expect("delete")
    );
    assert!(
        store
            .delete_upstream(&plain.name)
            .await
            .expect("delete upstream")
    );
    assert!(
        !store
            .delete_upstream(&plain.name)
            .await
            .expect("delete upstream")
    );
    assert_eq!(
        store
            .get_upstream_link(&plain.name, "s-1")
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .list_upstream_links(&alice.user_id)
            .await
            .expect("list"),
        []
    );
    assert!(
        store
            .delete_upstream(&oidc.name)
            .await
            .expect("delete upstream")
    );
}
