//! Refresh token rotation: strict by default, an opt-in grace window, and no
//! race leaves two live families.

use axum::http::StatusCode;

use valet_test_support::api::*;

/// Signs alice in and returns (client, tokens JSON).
async fn tokens(app: &TestApp, grace: i64) -> (TestClient, serde_json::Value) {
    tokens_for(app, grace, "alice").await
}

async fn tokens_for(app: &TestApp, grace: i64, username: &str) -> (TestClient, serde_json::Value) {
    app.user(username).await;
    let client = app
        .web_client(|c| {
            c.skip_consent = true;
            c.refresh_grace_seconds = grace;
        })
        .await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid offline_access photos:read", ""),
        username,
    )
    .await;
    let reply = redeem(app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    (client, reply.json())
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str, extra: &str) -> Reply {
    app.token(
        client,
        &format!("grant_type=refresh_token&refresh_token={token}{extra}"),
    )
    .await
}

#[tokio::test]
async fn each_use_rotates_and_reuse_revokes_the_family() {
    let app = TestApp::new().await;
    let (client, first) = tokens(&app, 0).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let second = refresh(&app, &client, r1, "").await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let second = second.json();
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    assert!(second["id_token"].is_string());
    let access2 = second["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&client, access2).await["active"], true);

    // r1 again: reuse. The whole family dies, including r2 and access2.
    refresh(&app, &client, r1, "")
        .await
        .assert_error(400, "invalid_grant");
    refresh(&app, &client, r2, "")
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(app.introspect(&client, access2).await["active"], false);
}

#[tokio::test]
async fn scope_may_narrow_but_never_widen() {
    let app = TestApp::new().await;
    let (client, first) = tokens(&app, 0).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    refresh(&app, &client, r1, "&scope=openid%20admin")
        .await
        .assert_error(400, "invalid_scope");
    // Refused without rotating: r1 still works, narrowed.
    let narrowed = refresh(&app, &client, r1, "&scope=photos:read").await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.text());
    assert_eq!(narrowed.json()["scope"], "photos:read");
    // The next refresh token keeps the original grant.
    let r2 = narrowed.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let wide = refresh(&app, &client, &r2, "").await.json();
    assert_eq!(wide["scope"], "offline_access openid photos:read");
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client() {
    let app = TestApp::new().await;
    let (client, first) = tokens(&app, 0).await;
    let thief = app.web_client(|_| {}).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    refresh(&app, &thief, r1, "")
        .await
        .assert_error(400, "invalid_grant");
    // The owner is unaffected.
    assert_eq!(refresh(&app, &client, r1, "").await.status, StatusCode::OK);
}

#[tokio::test]
async fn idle_and_absolute_lifetimes() {
    let app = TestApp::new().await;
    let (client, first) = tokens(&app, 0).await;
    let idle = app.server.settings().refresh_token_idle_ttl;
    app.clock.advance(idle + 1);
    refresh(&app, &client, first["refresh_token"].as_str().unwrap(), "")
        .await
        .assert_error(400, "invalid_grant");

    let app = TestApp::new().await;
    let (client, first) = tokens(&app, 0).await;
    let mut token = first["refresh_token"].as_str().unwrap().to_owned();
    // Used often enough never to idle out, it still ends with the grant.
    let step = app.server.settings().refresh_token_idle_ttl / 2;
    let absolute = app.server.settings().refresh_token_absolute_ttl;
    let mut elapsed = 0;
    while elapsed + step < absolute {
        app.clock.advance(step);
        elapsed += step;
        let reply = refresh(&app, &client, &token, "").await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "at {elapsed}: {}",
            reply.text()
        );
        token = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    }
    app.clock.advance(absolute - elapsed + 1);
    refresh(&app, &client, &token, "")
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn within_the_grace_window_a_retry_gets_the_same_pair() {
    let app = TestApp::new().await;
    let (client, first) = tokens(&app, 30).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let a = refresh(&app, &client, r1, "").await.json();
    app.clock.advance(10);
    let b = refresh(&app, &client, r1, "").await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    let b = b.json();
    assert_eq!(a["refresh_token"], b["refresh_token"]);
    assert_eq!(a["access_token"], b["access_token"]);
    // The family lives on.
    assert_eq!(
        refresh(&app, &client, a["refresh_token"].as_str().unwrap(), "")
            .await
            .status,
        StatusCode::OK
    );
    // Past the window (or once the successor was used) it is reuse again.
    app.clock.advance(60);
    refresh(&app, &client, r1, "")
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn concurrent_uses_never_leave_two_live_families() {
    for grace in [0, 30] {
        let app = TestApp::new().await;
        let (client, first) = tokens(&app, grace).await;
        let r1 = first["refresh_token"].as_str().unwrap().to_owned();
        let replies = futures_join(&app, &client, &r1, 16).await;
        let ok: Vec<&Reply> = replies
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .collect();
        let distinct: std::collections::HashSet<String> = ok
            .iter()
            .map(|r| r.json()["refresh_token"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            distinct.len() <= 1,
            "grace {grace}: {} different successors",
            distinct.len()
        );
        let live: Vec<&String> = {
            let mut live = Vec::new();
            for token in &distinct {
                let body = app
                    .post("/introspect", Some(&client), &format!("token={token}"))
                    .await
                    .json();
                if body["active"] == true {
                    live.push(token);
                }
            }
            live
        };
        assert!(live.len() <= 1);
        if grace > 0 {
            // Retries within the window all got the one successor, which lives on.
            assert_eq!(ok.len(), 16, "grace {grace}");
            assert_eq!(live.len(), 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uses_on_postgres_never_leave_two_live_families() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    for grace in [0, 30] {
        let (client, first) = tokens_for(&app, grace, &format!("pg{grace}")).await;
        let r1 = first["refresh_token"].as_str().unwrap().to_owned();
        let replies = futures_join(&app, &client, &r1, 24).await;
        let ok: Vec<&Reply> = replies
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .collect();
        let distinct: std::collections::HashSet<String> = ok
            .iter()
            .map(|r| r.json()["refresh_token"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            distinct.len() <= 1,
            "grace {grace}: {} different successors",
            distinct.len()
        );
        let mut live = 0;
        for token in &distinct {
            if app.introspect(&client, token).await["active"] == true {
                live += 1;
            }
        }
        if grace > 0 {
            assert_eq!(ok.len(), 24, "grace {grace}");
            assert_eq!(live, 1);
        } else {
            assert_eq!(live, 0, "strict: the race is reuse, the family is revoked");
        }
    }
    TestApp::drop_postgres_schema(&schema).await;
}

async fn futures_join(app: &TestApp, client: &TestClient, token: &str, n: usize) -> Vec<Reply> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let router = app.router.clone();
        let request = axum::http::Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic(&client.id, &client.secret))
            .body(axum::body::Body::from(format!(
                "grant_type=refresh_token&refresh_token={token}"
            )))
            .unwrap();
        set.spawn(async move {
            use tower::ServiceExt as _;
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            Reply {
                status,
                headers,
                body,
            }
        });
    }
    let mut replies = Vec::new();
    while let Some(reply) = set.join_next().await {
        replies.push(reply.unwrap());
    }
    replies
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_grant() {
    let app = TestApp::new().await;
    let (client, first) = tokens(&app, 0).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&client, r1).await["active"], true);
    let reply = app
        .post(
            "/revoke",
            Some(&client),
            &format!("token={r1}&token_type_hint=refresh_token"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.introspect(&client, r1).await["active"], false);
    assert_eq!(app.introspect(&client, access).await["active"], false);
}

#[tokio::test]
async fn a_refreshed_token_keeps_the_resource_of_the_grant() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app
        .web_client(|c| {
            c.skip_consent = true;
            c.audiences = vec!["https://a.example".into(), "https://b.example".into()];
        })
        .await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let path = authorize_path(
        &client.id,
        &pkce,
        "openid offline_access",
        "&resource=https%3A%2F%2Fb.example",
    );
    let params = sign_in_and_allow(&app, &mut browser, &path, "alice").await;
    let first = redeem(&app, &client, &params["code"], &pkce.verifier)
        .await
        .json();
    let audience = |tokens: &serde_json::Value| {
        decode_jwt(tokens["access_token"].as_str().unwrap()).1["aud"].clone()
    };
    // RFC 8707 resource, plus the issuer itself for UserInfo.
    assert_eq!(
        audience(&first),
        serde_json::json!(["https://b.example", ISSUER])
    );
    let refreshed = refresh(&app, &client, first["refresh_token"].as_str().unwrap(), "")
        .await
        .json();
    assert_eq!(
        audience(&refreshed),
        audience(&first),
        "RFC 8707 §2.2: same resource after a refresh"
    );
    // Narrowing to a scope without offline_access keeps the family going.
    let narrowed = refresh(
        &app,
        &client,
        refreshed["refresh_token"].as_str().unwrap(),
        "&scope=openid",
    )
    .await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.text());
    assert!(narrowed.json()["refresh_token"].is_string());
}

/// The successor pair is sealed and stored on the rotated token only for a
/// client with a grace window: with strict rotation no copy of live tokens is
/// kept in the store.
#[tokio::test]
async fn only_a_grace_window_stores_the_sealed_successor() {
    let app = TestApp::new().await;
    let stored = async |token: &str| {
        app.store
            .get_refresh_token(&valet_core::token::refresh_token::hash(token))
            .await
            .unwrap()
            .unwrap()
    };
    let (strict, first) = tokens_for(&app, 0, "alice").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, &strict, r1, "").await.status, StatusCode::OK);
    let rotated = stored(r1).await;
    assert!(rotated.rotated_at.is_some());
    assert_eq!(rotated.sealed_successor, None, "grace 0: nothing sealed");

    let (graceful, first) = tokens_for(&app, 30, "bob").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&app, &graceful, r1, "").await.status,
        StatusCode::OK
    );
    assert!(
        stored(r1).await.sealed_successor.is_some(),
        "with a grace window the pair is kept for a retry"
    );
}

/// The successor pair is sealed under a key of the current hour (derived from
/// the master key), not under the master key for the store's whole life: its
/// seal names its hour, and a retry just after the hour turns still gets it.
#[tokio::test]
async fn the_sealed_successor_uses_a_key_per_hour_and_survives_the_turn() {
    let app = TestApp::new().await;
    let (client, first) = tokens(&app, 30).await;
    // The last seconds of an hour.
    let now = app.server.now();
    app.clock.advance(3600 - now.rem_euclid(3600) - 5);
    let r1 = first["refresh_token"].as_str().unwrap();
    let a = refresh(&app, &client, r1, "").await.json();
    let sealed = app
        .store
        .get_refresh_token(&valet_core::token::refresh_token::hash(r1))
        .await
        .unwrap()
        .unwrap()
        .sealed_successor
        .unwrap();
    let hour = u64::try_from(app.server.now() / 3600).unwrap();
    assert_eq!(sealed[..8], hour.to_be_bytes());
    // The retry comes in the next hour: the same pair.
    app.clock.advance(10);
    let b = refresh(&app, &client, r1, "").await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    assert_eq!(a["refresh_token"], b.json()["refresh_token"]);
}
