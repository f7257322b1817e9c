//! Races: many copies of one request released at the same instant (a barrier)
//! into the router on a multi-threaded runtime, on SQLite and on PostgreSQL.
//!
//! - one authorization code, 100 redemptions: exactly one succeeds, and the
//!   replays revoke what it got (RFC 6749 §4.1.2);
//! - one refresh token, 100 uses: strict, one gets a pair and the reuse revokes
//!   the family, so nothing of it stays live; with a grace window, all 100 get the
//!   same pair and the one family lives on (RFC 9700 §4.14.2);
//! - 20 browsers signing the same user in at once, then consenting at once, then
//!   one consent form posted 20 times, then one login form posted 20 times: every
//!   sign-in gets a session or a clean refusal (the login throttle counts attempts
//!   in flight, so beyond five at once for one account it answers 429; a second
//!   try goes through), every consent its code, each posted-again form is
//!   accepted once (a login form refused keeps no session), the stored consent is the union of what was allowed with each
//!   scope once, and nothing answers 5xx.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokio::sync::Barrier;
use tower::ServiceExt as _;

use valet_test_support::api::*;

const N: usize = 100;
const BROWSERS: usize = 20;
const SCOPE: &str = "openid offline_access photos:read";

/// Sends every request at once and returns the replies in the order given.
async fn all_at_once(app: &TestApp, requests: Vec<Request<Body>>) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let mut set = tokio::task::JoinSet::new();
    for (i, request) in requests.into_iter().enumerate() {
        let router = app.router.clone();
        let barrier = Arc::clone(&barrier);
        set.spawn(async move {
            barrier.wait().await;
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            (
                i,
                Reply {
                    status,
                    headers,
                    body,
                },
            )
        });
    }
    let mut replies: Vec<(usize, Reply)> = set.join_all().await;
    replies.sort_by_key(|(i, _)| *i);
    let replies: Vec<Reply> = replies.into_iter().map(|(_, reply)| reply).collect();
    for reply in &replies {
        assert!(
            !reply.status.is_server_error(),
            "{}: {}",
            reply.status,
            reply.text()
        );
    }
    replies
}

fn ok(replies: &[Reply]) -> Vec<&Reply> {
    replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect()
}

async fn active(app: &TestApp, client: &TestClient, token: &str) -> bool {
    app.introspect(client, token).await["active"] == true
}

/// `username` signs in to a first-party app with this grace window; the app, the
/// PKCE pair and the code.
async fn signed_in(app: &TestApp, username: &str, grace: i64) -> (TestClient, Pkce, String) {
    app.user(username).await;
    let client = app
        .web_client(|c| {
            c.skip_consent = true;
            c.refresh_grace_seconds = grace;
        })
        .await;
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        app,
        &mut Browser::default(),
        &authorize_path(&client.id, &pkce, SCOPE, ""),
        username,
    )
    .await;
    let code = params["code"].clone();
    (client, pkce, code)
}

async fn one_code_redeemed_concurrently(app: &TestApp, username: &str) {
    let (client, pkce, code) = signed_in(app, username, 0).await;
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        encode(&code),
        encode(WEB_REDIRECT),
        pkce.verifier
    );
    let requests = (0..N)
        .map(|_| form_request("/token", Some(&client), &[], &body))
        .collect();
    let replies = all_at_once(app, requests).await;
    let winners = ok(&replies);
    assert_eq!(winners.len(), 1, "one code, one success");
    for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
        reply.assert_error(400, "invalid_grant");
    }
    // Each replay revoked what the code granted, whenever the winner stored it.
    let tokens = winners[0].json();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert!(!active(app, &client, access).await);
    assert!(!active(app, &client, refresh).await);
    app.token(
        &client,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await
    .assert_error(400, "invalid_grant");
}

async fn one_refresh_token_used_concurrently(app: &TestApp, username: &str, grace: i64) {
    let (client, pkce, code) = signed_in(app, username, grace).await;
    let reply = redeem(app, &client, &code, &pkce.verifier).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let first = reply.json();
    let first_access = first["access_token"].as_str().unwrap();
    let r1 = first["refresh_token"].as_str().unwrap();
    let body = format!("grant_type=refresh_token&refresh_token={r1}");
    let requests = (0..N)
        .map(|_| form_request("/token", Some(&client), &[], &body))
        .collect();
    let replies = all_at_once(app, requests).await;
    let winners = ok(&replies);
    let pairs: HashSet<(String, String)> = winners
        .iter()
        .map(|r| {
            let json = r.json();
            (
                json["refresh_token"].as_str().unwrap().to_owned(),
                json["access_token"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(pairs.len() <= 1, "grace {grace}: {} pairs", pairs.len());
    assert!(!active(app, &client, r1).await, "the used token is spent");
    if grace == 0 {
        assert_eq!(winners.len(), 1, "strict: one rotation");
        for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
            reply.assert_error(400, "invalid_grant");
        }
        // The 99 others were reuse: the whole family is revoked.
        let (r2, access2) = pairs.into_iter().next().unwrap();
        for token in [&r2, &access2, first_access] {
            assert!(!active(app, &client, token).await);
        }
        app.token(
            &client,
            &format!("grant_type=refresh_token&refresh_token={r2}"),
        )
        .await
        .assert_error(400, "invalid_grant");
    } else {
        assert_eq!(winners.len(), N, "grace: every retry gets the pair");
        // One family, alive: its new tokens and the older access token.
        let (r2, access2) = pairs.into_iter().next().unwrap();
        for token in [&r2, &access2, first_access] {
            assert!(active(app, &client, token).await);
        }
        let next = app
            .token(
                &client,
                &format!("grant_type=refresh_token&refresh_token={r2}"),
            )
            .await;
        assert_eq!(next.status, StatusCode::OK, "{}", next.text());
    }
}

/// A browser at the login page of its own authorization request.
struct AtLogin {
    browser: Browser,
    interaction: String,
    csrf: String,
}

async fn at_login(app: &TestApp, client: &TestClient, scope: &str) -> AtLogin {
    let mut browser = Browser::default();
    let page = browser
        .get(app, &authorize_path(&client.id, &Pkce::new(), scope, ""))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("name=\"password\""));
    AtLogin {
        interaction: form_field(&page.text(), "interaction").unwrap(),
        csrf: form_field(&page.text(), "csrf").unwrap(),
        browser,
    }
}

async fn concurrent_logins_and_consents(app: &TestApp, username: &str) {
    let user_id = app.user(username).await;
    let client = app.web_client(|_| {}).await;
    // Each browser asks for a different scope; together they ask for all five.
    let extra = ["profile", "email", "offline_access", "photos:read"];
    let mut browsers = Vec::new();
    for i in 0..BROWSERS {
        let scope = format!("openid {}", extra[i % extra.len()]);
        browsers.push(at_login(app, &client, &scope).await);
    }

    // Twenty sign-ins of one user at once, from twenty browsers.
    let requests = browsers
        .iter()
        .map(|b| {
            let body = format!(
                "interaction={}&csrf={}&username={username}&password={}",
                b.interaction,
                b.csrf,
                encode(PASSWORD)
            );
            form_request(
                "/login",
                None,
                &[("cookie", &b.browser.cookie_header())],
                &body,
            )
        })
        .collect();
    let replies = all_at_once(app, requests).await;
    let mut sessions = HashSet::new();
    let mut consent_forms = Vec::new();
    let mut throttled = 0;
    for (b, reply) in browsers.iter_mut().zip(replies) {
        b.browser.absorb(&reply);
        // The throttle counts an attempt as a failure until its password is
        // verified (so concurrent guesses cannot slip past it): beyond five in
        // flight for one account, the rest are refused, cleanly, with no session.
        // The successes clear the count, so a second try goes through.
        let reply = if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(reply.text().contains("Too many"), "{}", reply.text());
            assert!(!b.browser.cookies.contains_key("__Host-valet-session"));
            throttled += 1;
            let body = format!(
                "interaction={}&csrf={}&username={username}&password={}",
                b.interaction,
                b.csrf,
                encode(PASSWORD)
            );
            b.browser.post(app, "/login", &body).await
        } else {
            reply
        };
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert!(
            reply.text().contains("name=\"decision\""),
            "the consent page"
        );
        sessions.insert(b.browser.cookies["__Host-valet-session"].clone());
        consent_forms.push(consent_form(&reply, "allow"));
    }
    assert_eq!(sessions.len(), BROWSERS, "a session of its own for each");
    assert!(throttled < BROWSERS, "at least one went through at once");

    // Twenty consents at once, for different scopes: none is lost.
    let requests = browsers
        .iter()
        .zip(&consent_forms)
        .map(|(b, form)| {
            form_request(
                "/consent",
                None,
                &[("cookie", &b.browser.cookie_header())],
                form,
            )
        })
        .collect();
    let replies = all_at_once(app, requests).await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
        assert!(location_params(reply).contains_key("code"));
    }
    let stored = app.store.get_consent(&user_id, &client.id).await.unwrap();
    let mut expected: Vec<String> = ["openid"]
        .iter()
        .chain(&extra)
        .map(|s| (*s).to_owned())
        .collect();
    expected.sort();
    let mut sorted = stored.clone();
    sorted.sort();
    assert_eq!(
        sorted, expected,
        "each allowed scope stored once: {stored:?}"
    );

    // One consent form posted twenty times (prompt=consent asks again).
    let browser = &mut browsers[0].browser;
    let pkce = Pkce::new();
    let page = browser
        .get(
            app,
            &authorize_path(&client.id, &pkce, "openid email", "&prompt=consent"),
        )
        .await;
    assert!(page.text().contains("name=\"decision\""), "{}", page.text());
    let form = consent_form(&page, "allow");
    let requests = (0..BROWSERS)
        .map(|_| {
            form_request(
                "/consent",
                None,
                &[("cookie", &browser.cookie_header())],
                &form,
            )
        })
        .collect();
    let replies = all_at_once(app, requests).await;
    let accepted: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::SEE_OTHER)
        .collect();
    assert_eq!(accepted.len(), 1, "the interaction is single-use");
    for reply in replies.iter().filter(|r| r.status != StatusCode::SEE_OTHER) {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        assert!(
            reply.text().contains("already completed"),
            "{}",
            reply.text()
        );
    }
    let code = &location_params(accepted[0])["code"];
    let reply = redeem(app, &client, code, &pkce.verifier).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let mut again = app.store.get_consent(&user_id, &client.id).await.unwrap();
    again.sort();
    assert_eq!(again, expected);

    // One login form posted twenty times (consent is remembered now, so a sign-in
    // goes straight back with a code): one code, the rest clean error pages.
    let twice = at_login(app, &client, "openid").await;
    let body = format!(
        "interaction={}&csrf={}&username={username}&password={}",
        twice.interaction,
        twice.csrf,
        encode(PASSWORD)
    );
    let live_sessions = async || {
        let sessions = app.store.list_sessions_of_user(&user_id, 0).await;
        sessions.unwrap().len()
    };
    let sessions_before = live_sessions().await;
    let requests = (0..BROWSERS)
        .map(|_| {
            form_request(
                "/login",
                None,
                &[("cookie", &twice.browser.cookie_header())],
                &body,
            )
        })
        .collect();
    let replies = all_at_once(app, requests).await;
    let codes = replies
        .iter()
        .filter(|r| r.status == StatusCode::SEE_OTHER && location_params(r).contains_key("code"))
        .count();
    assert_eq!(codes, 1, "the interaction is single-use");
    for reply in replies.iter().filter(|r| r.status != StatusCode::SEE_OTHER) {
        assert!(reply.status.is_client_error(), "{}", reply.status);
        assert!(reply.text().contains("<h1>"), "{}", reply.text());
        // A refused form's sign-in is not kept: no session, no cookie for one.
        let cookies = reply.headers.get_all("set-cookie").iter();
        let mut cookies = cookies.filter_map(|value| value.to_str().ok());
        assert!(!cookies.any(|cookie| cookie.contains("valet-session=")));
    }
    assert_eq!(
        live_sessions().await,
        sessions_before + 1,
        "only the accepted form's sign-in starts a session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_redeemed_100_times_at_once_on_sqlite() {
    one_code_redeemed_concurrently(&TestApp::new().await, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_refresh_token_used_100_times_at_once_on_sqlite() {
    let app = TestApp::new().await;
    one_refresh_token_used_concurrently(&app, "strict", 0).await;
    one_refresh_token_used_concurrently(&app, "grace", 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_and_consents_on_sqlite() {
    concurrent_logins_and_consents(&TestApp::new().await, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_races_on_postgres() {
    let Some((app, schema)) = TestApp::on_postgres().await else {
        return;
    };
    one_code_redeemed_concurrently(&app, "pg-code").await;
    one_refresh_token_used_concurrently(&app, "pg-strict", 0).await;
    one_refresh_token_used_concurrently(&app, "pg-grace", 30).await;
    concurrent_logins_and_consents(&app, "pg-login").await;
    TestApp::drop_postgres_schema(&schema).await;
}
