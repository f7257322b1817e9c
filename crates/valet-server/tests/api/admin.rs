//! The admin service (`valet_core::admin`) on a real store: updates are checked
//! as registrations are, revoke what a narrowing must, and are audited once with
//! the actor; errors name fields, not CLI flags.

use valet_core::admin::{
    Actor, Admin, AdminError, ClientUpdate, NewClient, NewUser, Resource, UserUpdate,
};
use valet_core::audit::{AuditEvent, AuditFilter, AuditKind};
use valet_core::store::Store;

use valet_test_support::api::*;

async fn events(store: &dyn Store, kind: AuditKind) -> Vec<AuditEvent> {
    store
        .audit_events(&AuditFilter {
            event: Some(kind),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

fn invalid_field(error: &AdminError) -> String {
    match error {
        AdminError::Invalid(field) => field.field.to_string(),
        other => panic!("not an invalid field: {other:?}"),
    }
}

#[tokio::test]
async fn a_client_update_is_checked_like_a_registration_and_audited_once() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    let before = app.store.get_client(&client.id).await.unwrap().unwrap();

    let bad = [
        (
            ClientUpdate {
                redirect_uris: Some(vec![WEB_REDIRECT.into(), "http://evil.example/cb".into()]),
                ..ClientUpdate::default()
            },
            "redirect_uris[1]",
        ),
        (
            ClientUpdate {
                redirect_uris: Some(vec![]),
                ..ClientUpdate::default()
            },
            "redirect_uris",
        ),
        (
            ClientUpdate {
                scopes: Some(vec!["photos:read".into(), "bad\"scope".into()]),
                ..ClientUpdate::default()
            },
            "scopes[1]",
        ),
        (
            ClientUpdate {
                access_token_ttl: Some(Some(3601)),
                ..ClientUpdate::default()
            },
            "access_token_ttl",
        ),
        (
            ClientUpdate {
                refresh_grace_seconds: Some(61),
                ..ClientUpdate::default()
            },
            "refresh_grace_seconds",
        ),
        (
            ClientUpdate {
                name: Some("  ".into()),
                ..ClientUpdate::default()
            },
            "name",
        ),
    ];
    for (update, field) in bad {
        let error = app
            .admin()
            .update_client(&client.id, update)
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), field, "{error}");
        assert!(!error.to_string().contains("--"), "{error}");
    }
    assert_eq!(
        app.store.get_client(&client.id).await.unwrap().unwrap(),
        before,
        "a refused update changes nothing"
    );

    app.clock.advance(10);
    let updated = app
        .admin()
        .update_client(
            &client.id,
            ClientUpdate {
                redirect_uris: Some(vec![
                    WEB_REDIRECT.into(),
                    "https://app.example.test/other".into(),
                    WEB_REDIRECT.into(),
                ]),
                access_token_ttl: Some(Some(120)),
                introspect_any: Some(true),
                skip_consent: Some(false),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        updated.changed,
        ["redirect_uris", "access_token_ttl", "introspect_any"]
    );
    assert_eq!(updated.revoked_grants, 0);
    let stored = app.store.get_client(&client.id).await.unwrap().unwrap();
    assert_eq!(
        stored.redirect_uris,
        [WEB_REDIRECT, "https://app.example.test/other"]
    );
    assert_eq!(stored.access_token_ttl, Some(120));
    assert!(stored.introspect_any);
    assert_eq!(stored.updated_at, START + 10);
    assert_eq!(stored.secret_hash, before.secret_hash, "the secret stays");
    assert_eq!(stored.grant_types, before.grant_types);

    // Nothing to change: nothing written, nothing audited.
    let same = app
        .admin()
        .update_client(
            &client.id,
            ClientUpdate {
                access_token_ttl: Some(Some(120)),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(same.changed.is_empty());

    let audited = events(app.store.as_ref(), AuditKind::ClientUpdated).await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].client_id.as_deref(), Some(client.id.as_str()));
    assert_eq!(
        audited[0].detail["changed"],
        "redirect_uris access_token_ttl introspect_any"
    );
    assert_eq!(audited[0].detail["via"], "cli");

    let missing = app
        .admin()
        .update_client("no-such-client", ClientUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(
        missing,
        AdminError::NotFound {
            resource: Resource::Client,
            ..
        }
    ));
    assert_eq!(missing.to_string(), "no client with id no-such-client");
}

/// A refresh keeps the grant's scope and resources, so removing a scope or an
/// audience from a client revokes its grants; adding one does not.
#[tokio::test]
async fn narrowing_a_client_revokes_its_grants_and_widening_does_not() {
    let app = TestApp::new().await;
    let (client, _, tokens) = alice_signed_in(&app, "openid offline_access photos:read").await;
    let refresh = |token: String| {
        let app = &app;
        let client = &client;
        async move {
            app.token(
                client,
                &format!("grant_type=refresh_token&refresh_token={token}"),
            )
            .await
        }
    };
    let widened = app
        .admin()
        .update_client(
            &client.id,
            ClientUpdate {
                scopes: Some(vec!["photos:read".into(), "photos:write".into()]),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(widened.revoked_grants, 0);
    let next = refresh(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(next.status.as_u16(), 200, "{}", next.text());
    let next = next.json();

    let narrowed = app
        .admin()
        .update_client(
            &client.id,
            ClientUpdate {
                scopes: Some(vec!["photos:write".into()]),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(narrowed.revoked_grants, 1);
    refresh(next["refresh_token"].as_str().unwrap().to_owned())
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        app.introspect(&client, next["access_token"].as_str().unwrap())
            .await["active"],
        false,
        "the grant's access token is revoked too"
    );
    let audited = events(app.store.as_ref(), AuditKind::ClientUpdated).await;
    assert_eq!(audited[0].detail["revoked_grants"], 1);
}

#[tokio::test]
async fn a_user_update_checks_the_email_and_records_the_actor() {
    let app = TestApp::new().await;
    let alice = app.user("alice").await;
    app.user("bob").await;
    let admin = Admin::new(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.server.hasher(),
        3600,
        Actor::api("console-client"),
    );

    let taken = admin
        .update_user(
            "alice",
            UserUpdate {
                email: Some(Some("BOB@example.test".into())),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(taken, AdminError::Conflict(_)), "{taken}");
    assert_eq!(
        taken.to_string(),
        "email: already used by another user (as an email or username)"
    );
    for (update, field) in [
        (
            UserUpdate {
                email: Some(Some("not-an-address".into())),
                ..UserUpdate::default()
            },
            "email",
        ),
        (
            UserUpdate {
                email: Some(None),
                email_verified: Some(true),
                ..UserUpdate::default()
            },
            "email_verified",
        ),
        (
            UserUpdate {
                family_name: Some(Some("a\u{7}b".into())),
                ..UserUpdate::default()
            },
            "family_name",
        ),
    ] {
        let error = admin.update_user(&alice, update).await.unwrap_err();
        assert_eq!(invalid_field(&error), field, "{error}");
    }

    // A new address is unverified unless the update says otherwise.
    let changed = admin
        .update_user(
            "alice@example.test",
            UserUpdate {
                email: Some(Some("alice@new.example".into())),
                name: Some(None),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.changed, ["email", "email_verified", "name"]);
    assert_eq!(changed.user.email.as_deref(), Some("alice@new.example"));
    assert!(!changed.user.email_verified);
    assert_eq!(changed.user.name, None);
    let stored = app.store.get_user(&alice).await.unwrap().unwrap();
    assert_eq!(stored.email.as_deref(), Some("alice@new.example"));
    assert!(!stored.email_verified);
    assert!(stored.password_hash.is_some(), "the password stays");
    // The old address no longer finds her; the new one does.
    assert!(admin.get_user("alice@example.test").await.is_err());
    assert_eq!(
        admin.get_user("alice@new.example").await.unwrap().user_id,
        alice
    );

    let audited = events(app.store.as_ref(), AuditKind::UserUpdated).await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].user_id.as_deref(), Some(alice.as_str()));
    assert_eq!(audited[0].detail["changed"], "email email_verified name");
    assert_eq!(audited[0].detail["via"], "api");
    assert_eq!(audited[0].detail["actor"], "console-client");
}

#[tokio::test]
async fn registration_and_creation_errors_name_fields() {
    let app = TestApp::new().await;
    let error = app
        .admin()
        .register_client(NewClient {
            name: "svc".into(),
            audiences: vec![API.into()],
            grant_types: vec!["client_credentials".into(), "password".into()],
            ..NewClient::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "grant_types[1]: unknown grant type (known: authorization_code, client_credentials, refresh_token, device_code, token_exchange)"
    );
    let error = app
        .admin()
        .create_user(NewUser {
            username: "al ice".into(),
            ..NewUser::default()
        })
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&error), "username");
    assert!(app.store.list_clients().await.unwrap().is_empty());
    assert!(app.store.list_users().await.unwrap().is_empty());
}

/// EdDSA signs access tokens only: a client cannot ask for EdDSA ID tokens (nor for an
/// algorithm Valet does not know); RS256 and ES256 are accepted.
#[tokio::test]
async fn id_tokens_are_rs256_or_es256_only() {
    let app = TestApp::new().await;
    for refused in ["EdDSA", "HS256", "none", "es256"] {
        let error = app
            .admin()
            .register_client(NewClient {
                id_token_signed_response_alg: Some(refused.into()),
                ..service_client()
            })
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), "id_token_signed_response_alg");
    }
    for accepted in ["RS256", "ES256"] {
        app.admin()
            .register_client(NewClient {
                id_token_signed_response_alg: Some(accepted.into()),
                ..service_client()
            })
            .await
            .unwrap();
    }
    let metadata = app.get("/.well-known/openid-configuration").await.json();
    assert_eq!(
        metadata["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256"])
    );
}
