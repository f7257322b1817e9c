//! Staged key rotation as seen from outside: a key is published before it signs and
//! stays published until every token it signed has expired.

use valet_jose::Algorithm;

use valet_test_support::api::*;

fn kid_of(token: &str) -> String {
    decode_jwt(token).0["kid"].as_str().unwrap().to_owned()
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    app.get("/jwks.json").await.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn manual_rotation_publishes_first_then_signs_then_retires() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let old_token = app.access_token(&client).await;
    let old_kid = kid_of(&old_token);

    let (new_kid, activates_at) = app
        .server
        .key_manager()
        .rotate(app.store.as_ref(), Algorithm::Es256, START)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(activates_at, START + 3600);
    app.server.reload_keys().await.unwrap();
    // Published, not yet signing.
    assert!(published_kids(&app).await.contains(&new_kid));
    assert_eq!(kid_of(&app.access_token(&client).await), old_kid);

    app.clock.advance(3600);
    app.server.maintain().await.unwrap();
    assert_eq!(kid_of(&app.access_token(&client).await), new_kid);
    // The old key still verifies what it signed.
    assert!(published_kids(&app).await.contains(&old_kid));

    // Tokens live at most an hour, plus five minutes of margin.
    app.clock.advance(3600 + 299);
    app.server.maintain().await.unwrap();
    assert!(published_kids(&app).await.contains(&old_kid));
    app.clock.advance(1);
    app.server.maintain().await.unwrap();
    assert!(!published_kids(&app).await.contains(&old_kid));
    assert!(published_kids(&app).await.contains(&new_kid));
}

#[tokio::test]
async fn scheduled_rotation_runs_by_itself() {
    let mut settings = settings();
    settings.keys.rotation_period = 7200;
    settings.keys.publish_lead = 600;
    let app = TestApp::with_settings(settings).await;
    let client = app.service().await;
    let first = kid_of(&app.access_token(&client).await);

    // Not yet due: nothing new.
    app.clock.advance(7200 - 601);
    app.server.maintain().await.unwrap();
    assert_eq!(published_kids(&app).await.len(), 2);
    // Due: the successor appears a publication lead before it signs.
    app.clock.advance(1);
    app.server.maintain().await.unwrap();
    assert_eq!(published_kids(&app).await.len(), 4);
    assert_eq!(kid_of(&app.access_token(&client).await), first);
    app.clock.advance(600);
    app.server.maintain().await.unwrap();
    let second = kid_of(&app.access_token(&client).await);
    assert_ne!(second, first);
    // Running maintenance again does not rotate twice.
    app.server.maintain().await.unwrap();
    assert_eq!(published_kids(&app).await.len(), 4);
}

#[tokio::test]
async fn tokens_signed_before_a_rotation_still_introspect() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let token = app.access_token(&client).await;
    app.server
        .key_manager()
        .rotate(app.store.as_ref(), Algorithm::Es256, START)
        .await
        .unwrap();
    app.clock.advance(3600 - 1);
    app.server.maintain().await.unwrap();
    // The token itself expired after 600 s; issue one just before the switch.
    let late = app.access_token(&client).await;
    app.clock.advance(2);
    app.server.maintain().await.unwrap();
    assert_ne!(kid_of(&app.access_token(&client).await), kid_of(&late));
    assert_eq!(app.introspect(&client, &late).await["active"], true);
    assert_eq!(app.introspect(&client, &token).await["active"], false);
}

#[tokio::test]
async fn readyz_fails_while_the_keys_cannot_be_reloaded() {
    let app = TestApp::new().await;
    assert_eq!(app.get("/readyz").await.status, axum::http::StatusCode::OK);
    // A key sealed with another master key lands in the store (what a CLI with
    // the wrong key used to do): this node cannot open it.
    let stranger = valet_core::keys::KeyManager::new(
        std::sync::Arc::new(valet_jose::MasterKey::generate().unwrap()),
        app.server.settings().keys,
        3600,
    );
    stranger
        .rotate(app.store.as_ref(), Algorithm::Es256, START)
        .await
        .unwrap()
        .unwrap();
    assert!(app.server.reload_keys().await.is_err());
    let reply = app.get("/readyz").await;
    assert_eq!(reply.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.text(), "signing keys cannot be reloaded\n");
}

#[tokio::test]
async fn a_second_pending_key_is_refused_and_nothing_is_written() {
    let app = TestApp::new().await;
    let manager = app.server.key_manager();
    let (kid, _) = manager
        .rotate(app.store.as_ref(), Algorithm::Es256, START)
        .await
        .unwrap()
        .unwrap();
    let before = app.store.list_keys().await.unwrap().len();
    let error = manager
        .rotate(app.store.as_ref(), Algorithm::Es256, START + 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, valet_core::keys::KeyError::PendingExists { kid: pending, .. } if *pending == kid),
        "{error}"
    );
    assert_eq!(app.store.list_keys().await.unwrap().len(), before);
    // The other algorithm is not held up.
    assert!(
        manager
            .rotate(app.store.as_ref(), Algorithm::Rs256, START + 10)
            .await
            .unwrap()
            .is_some()
    );
}

/// A store from before the check value: the key that opens its signing keys is
/// adopted (and the check value written); another key is refused, writing nothing.
#[tokio::test]
async fn an_existing_store_adopts_the_master_key_that_opens_its_keys() {
    use std::sync::Arc;

    use valet_core::keys::{KeyError, KeyManager, MasterKeyCheck, check_master_key};
    use valet_core::store::KeyStore as _;
    use valet_jose::MasterKey;

    let store = valet_store_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    let right = Arc::new(MasterKey::generate().unwrap());
    let wrong = MasterKey::generate().unwrap();
    // Keys sealed the old way, with no check value.
    KeyManager::new(Arc::clone(&right), settings().keys, 3600)
        .ensure_current(&store, START)
        .await
        .unwrap();
    assert!(matches!(
        check_master_key(&store, &wrong).await,
        Err(KeyError::WrongMasterKey { .. })
    ));
    assert_eq!(store.master_key_check().await.unwrap(), None);
    assert_eq!(
        check_master_key(&store, &right).await.unwrap(),
        MasterKeyCheck::Adopted
    );
    assert_eq!(
        check_master_key(&store, &right).await.unwrap(),
        MasterKeyCheck::Verified
    );
    assert!(matches!(
        check_master_key(&store, &wrong).await,
        Err(KeyError::MasterKeyMismatch)
    ));
}
