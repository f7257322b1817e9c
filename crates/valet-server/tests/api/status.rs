//! The token status list: every access token points into a signed list, and a
//! revocation flips its bit.

use std::io::Read as _;

use axum::http::StatusCode;
use serde_json::Value;
use valet_jose::VerificationKeys;

use valet_test_support::api::*;

/// Fetches and verifies list `uri`, returning its bytes.
pub(crate) async fn fetch_list(app: &TestApp, uri: &str) -> Vec<u8> {
    let path = uri.strip_prefix(ISSUER).unwrap();
    let reply = app.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/statuslist+jwt")
    );
    let keys = VerificationKeys::from_jwk_set_json(&app.get("/jwks.json").await.text()).unwrap();
    let verified = keys.verify(&reply.text(), "statuslist+jwt").unwrap();
    assert_eq!(verified.claims["sub"], uri);
    assert_eq!(verified.claims["iss"], ISSUER);
    assert!(verified.claims["ttl"].as_i64().unwrap() > 0);
    let list = &verified.claims["status_list"];
    assert_eq!(list["bits"], 1);
    let compressed = valet_jose::b64url_decode(list["lst"].as_str().unwrap()).unwrap();
    let mut bits = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .read_to_end(&mut bits)
        .unwrap();
    bits
}

pub(crate) fn status_of(token: &str) -> (i64, String) {
    let (_, claims) = decode_jwt(token);
    let reference = &claims["status"]["status_list"];
    (
        reference["idx"].as_i64().unwrap(),
        reference["uri"].as_str().unwrap().to_owned(),
    )
}

pub(crate) fn bit(bits: &[u8], idx: i64) -> u8 {
    let idx = usize::try_from(idx).unwrap();
    (bits[idx / 8] >> (idx % 8)) & 1
}

#[tokio::test]
async fn client_credentials_tokens_get_their_own_index_and_revocation_sets_it() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let a = app.access_token(&client).await;
    let b = app.access_token(&client).await;
    let (idx_a, uri_a) = status_of(&a);
    let (idx_b, uri_b) = status_of(&b);
    assert_ne!(idx_a, idx_b);
    assert_eq!(uri_a, format!("{ISSUER}/statuslists/0"));
    assert_eq!(uri_a, uri_b);
    let before = fetch_list(&app, &uri_a).await;
    assert_eq!(bit(&before, idx_a), 0);

    app.post("/revoke", Some(&client), &format!("token={a}"))
        .await;
    app.server
        .poll_status_changes(std::time::Duration::ZERO)
        .await
        .unwrap();
    let after = fetch_list(&app, &uri_a).await;
    assert_eq!(bit(&after, idx_a), 1, "the revoked token");
    assert_eq!(bit(&after, idx_b), 0, "only that token");
}

#[tokio::test]
async fn a_user_grant_shares_one_index_and_logout_sets_it() {
    let app = TestApp::new().await;
    let (client, mut browser, tokens) = alice_signed_in(&app, "openid offline_access").await;
    let refreshed = app
        .token(
            &client,
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                tokens["refresh_token"].as_str().unwrap()
            ),
        )
        .await
        .json();
    let (idx, uri) = status_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(
        status_of(refreshed["access_token"].as_str().unwrap()).0,
        idx,
        "one index per grant"
    );

    browser
        .get(
            &app,
            &format!(
                "/logout?id_token_hint={}",
                refreshed["id_token"].as_str().unwrap()
            ),
        )
        .await;
    app.server
        .poll_status_changes(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(bit(&fetch_list(&app, &uri).await, idx), 1);
}

#[tokio::test]
async fn deleting_a_client_revokes_its_reserved_indices() {
    let app = TestApp::new().await;
    let client = app.service().await;
    let token = app.access_token(&client).await;
    let (idx, uri) = status_of(&token);
    app.admin().delete_client(&client.id).await.unwrap();
    app.server
        .poll_status_changes(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(bit(&fetch_list(&app, &uri).await, idx), 1);
}

#[tokio::test]
async fn discovery_and_aggregation_name_the_lists() {
    let app = TestApp::new().await;
    let client = app.service().await;
    app.access_token(&client).await;
    let meta: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    assert_eq!(
        meta["status_list_aggregation_endpoint"],
        format!("{ISSUER}/statuslists")
    );
    assert_eq!(
        meta["valet_status_list_events_endpoint"],
        format!("{ISSUER}/statuslists/events")
    );
    let lists = app.get("/statuslists").await.json();
    assert_eq!(
        lists["status_lists"],
        serde_json::json!([format!("{ISSUER}/statuslists/0")])
    );
    assert_eq!(
        app.get("/statuslists/99999999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/statuslists/abc").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_events_stream_announces_revocations() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    let app = TestApp::new().await;
    let client = app.service().await;
    let token = app.access_token(&client).await;
    let (idx, uri) = status_of(&token);
    let response = app
        .router
        .clone()
        .oneshot(
            axum::http::Request::get("/statuslists/events")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    app.post("/revoke", Some(&client), &format!("token={token}"))
        .await;
    app.server
        .poll_status_changes(std::time::Duration::ZERO)
        .await
        .unwrap();
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.contains("event: revoked"), "{text}");
    assert!(
        text.contains(&format!("\"uri\":\"{uri}\"")) && text.contains(&format!("\"idx\":{idx}")),
        "{text}"
    );
}

#[tokio::test]
async fn revoking_a_users_access_token_revokes_its_grant() {
    let app = TestApp::new().await;
    let (client, _, tokens) = alice_signed_in(&app, "openid offline_access").await;
    let access = tokens["access_token"].as_str().unwrap();
    let (idx, uri) = status_of(access);
    let reply = app
        .post("/revoke", Some(&client), &format!("token={access}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    app.server
        .poll_status_changes(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(bit(&fetch_list(&app, &uri).await, idx), 1);
    // The grant is gone: its refresh token too.
    app.token(
        &client,
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            tokens["refresh_token"].as_str().unwrap()
        ),
    )
    .await
    .assert_error(400, "invalid_grant");
}

/// `valet client delete` from another process while this node caches the client
/// and holds blocks for it: every token the node mints afterwards carries a
/// revoked index, it cannot reserve a new block, and once its block is used up it
/// refuses (and forgets the client). No token of the client verifies at a guard.
async fn a_client_deleted_while_cached_mints_nothing_that_verifies(app: &TestApp) {
    let client = app.service().await;
    let before = app.access_token(&client).await;
    // As the CLI does it: the store only, this node's cache untouched.
    app.admin().delete_client(&client.id).await.unwrap();
    let mut after = Vec::new();
    let refused = loop {
        let reply = app.token(&client, "grant_type=client_credentials").await;
        if reply.status != StatusCode::OK {
            break reply;
        }
        after.push(reply.json()["access_token"].as_str().unwrap().to_owned());
        assert!(
            after.len() <= valet_core::status::BLOCK_SIZE as usize,
            "a deleted client keeps getting tokens"
        );
    };
    refused.assert_error(401, "invalid_client");
    assert!(
        !after.is_empty(),
        "the node still cached the client and minted from its block"
    );
    app.token(&client, "grant_type=client_credentials")
        .await
        .assert_error(401, "invalid_client");

    app.server
        .poll_status_changes(std::time::Duration::ZERO)
        .await
        .unwrap();
    let (_, uri) = status_of(&before);
    let bits = fetch_list(app, &uri).await;
    for token in std::iter::once(&before).chain(&after) {
        let (idx, token_uri) = status_of(token);
        assert_eq!(token_uri, uri);
        assert_eq!(bit(&bits, idx), 1, "index {idx} of the deleted client");
    }
}

#[tokio::test]
async fn a_client_deleted_while_cached_on_sqlite() {
    a_client_deleted_while_cached_mints_nothing_that_verifies(&TestApp::new().await).await;
}

#[tokio::test]
async fn a_client_deleted_while_cached_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    a_client_deleted_while_cached_mints_nothing_that_verifies(&app).await;
    TestApp::drop_postgres_schema(&schema).await;
}
