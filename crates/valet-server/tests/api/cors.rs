//! CORS: the origins of public clients' redirect URIs and of `allowed_origins`
//! may read the client endpoints' answers; any origin reads the public
//! documents; every other origin gets no CORS header, and the request is still
//! answered as for a server.

use axum::body::Body;
use axum::http::Request;
use valet_core::admin::{ClientUpdate, NewClient};
use valet_test_support::api::*;

const SPA: &str = "https://spa.example.test";
const EXPLICIT: &str = "http://localhost:5173";
const CONFIDENTIAL_SITE: &str = "https://web.example.test";

/// A public SPA client (its redirect URI's origin counts), and a confidential
/// web app whose redirect origin does not count but whose explicit origin does.
async fn clients(app: &TestApp) -> (TestClient, TestClient) {
    let spa = app
        .client(NewClient {
            name: "SPA".into(),
            public: true,
            redirect_uris: vec![format!("{SPA}/callback")],
            ..NewClient::default()
        })
        .await;
    let web = app
        .web_client(|new| {
            new.redirect_uris = vec![format!("{CONFIDENTIAL_SITE}/callback")];
            new.allowed_origins = vec![format!("{EXPLICIT}/")];
        })
        .await;
    (spa, web)
}

async fn request(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.send(request.body(Body::empty()).unwrap()).await
}

fn preflight_headers(origin: &str) -> Vec<(&str, &str)> {
    vec![
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type, dpop"),
    ]
}

async fn allowed_and_denied_origins(app: &TestApp) {
    let (spa, _) = clients(app).await;
    // A token request (here refused: a bad code) from an allowed origin: readable.
    let body = format!(
        "grant_type=authorization_code&client_id={}&code=nope&code_verifier={}&redirect_uri={SPA}/callback",
        spa.id,
        "a".repeat(43)
    );
    for origin in [SPA, EXPLICIT] {
        let reply = app
            .post_from(
                "127.0.0.1:5000",
                "/token",
                None,
                &[("origin", origin)],
                &body,
            )
            .await;
        reply.assert_error(400, "invalid_grant");
        assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
        assert_eq!(reply.header("vary"), Some("Origin"));
        assert!(reply.header("access-control-allow-credentials").is_none());
    }
    // Origins that are not registered get the same answer and no CORS header:
    // another site, `null` (sandboxed frames, file:), one that only prefixes or
    // extends an allowed one, other scheme or port, and a confidential client's
    // redirect origin.
    for origin in [
        "https://evil.example",
        "null",
        "https://spa.example.tes",
        "https://spa.example.test.evil.example",
        "http://spa.example.test",
        "https://spa.example.test:8443",
        "http://localhost:5174",
        CONFIDENTIAL_SITE,
    ] {
        let reply = app
            .post_from(
                "127.0.0.1:5000",
                "/token",
                None,
                &[("origin", origin)],
                &body,
            )
            .await;
        reply.assert_error(400, "invalid_grant");
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{origin} allowed"
        );
        assert_eq!(reply.header("vary"), Some("Origin"), "{origin}");
        let reply = request(app, "OPTIONS", "/token", &preflight_headers(origin)).await;
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{origin}"
        );
        assert!(
            reply.header("access-control-allow-methods").is_none(),
            "{origin}"
        );
    }
    // Without Origin (a server): nothing CORS at all.
    let reply = app
        .post_from("127.0.0.1:5000", "/token", None, &[], &body)
        .await;
    reply.assert_error(400, "invalid_grant");
    assert!(reply.header("access-control-allow-origin").is_none());
}

async fn preflights(app: &TestApp) {
    clients(app).await;
    for (path, methods) in [
        ("/token", "POST"),
        ("/revoke", "POST"),
        ("/userinfo", "GET, POST"),
    ] {
        let reply = request(app, "OPTIONS", path, &preflight_headers(SPA)).await;
        assert_eq!(reply.status, 204, "{path}");
        assert_eq!(reply.header("access-control-allow-origin"), Some(SPA));
        assert_eq!(reply.header("access-control-allow-methods"), Some(methods));
        assert_eq!(
            reply.header("access-control-allow-headers"),
            Some("Authorization, Content-Type, DPoP")
        );
        assert_eq!(reply.header("access-control-max-age"), Some("600"));
        assert_eq!(reply.header("vary"), Some("Origin"));
        assert!(reply.header("access-control-allow-credentials").is_none());
    }
    // An OPTIONS that is not a preflight is still not a method these routes have.
    assert_eq!(request(app, "OPTIONS", "/token", &[]).await.status, 405);
    // Introspection is for resource servers: no CORS for anyone.
    let reply = request(app, "OPTIONS", "/introspect", &preflight_headers(SPA)).await;
    assert_eq!(reply.status, 405);
    assert!(reply.header("access-control-allow-origin").is_none());
}

async fn public_documents(app: &TestApp) {
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks.json",
        "/statuslists",
    ] {
        for origin in ["https://anyone.example", "null"] {
            let reply = request(app, "GET", path, &[("origin", origin)]).await;
            assert_eq!(reply.status, 200, "{path}");
            assert_eq!(
                reply.header("access-control-allow-origin"),
                Some("*"),
                "{path}"
            );
            assert!(reply.header("access-control-allow-credentials").is_none());
        }
        let mut headers = preflight_headers("https://anyone.example");
        headers[1].1 = "GET";
        let reply = request(app, "OPTIONS", path, &headers).await;
        assert_eq!(reply.status, 204, "{path}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        assert_eq!(reply.header("access-control-allow-methods"), Some("GET"));
    }
}

/// A new origin is seen once the cached set's lifetime (client_cache_ttl) has
/// passed, without a store read per request before that.
async fn origins_follow_client_changes(app: &TestApp) {
    let (_, web) = clients(app).await;
    let preflight = |origin: &'static str| async move {
        request(app, "OPTIONS", "/token", &preflight_headers(origin)).await
    };
    assert!(
        preflight("https://new.example.test")
            .await
            .header("access-control-allow-origin")
            .is_none()
    );
    app.admin()
        .update_client(
            &web.id,
            ClientUpdate {
                allowed_origins: Some(vec!["https://new.example.test".into()]),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    app.clock.advance(app.server.settings().client_cache_ttl);
    let reply = preflight("https://new.example.test").await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://new.example.test")
    );
    assert!(
        preflight(EXPLICIT)
            .await
            .header("access-control-allow-origin")
            .is_none()
    );
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn on_sqlite() {
                super::$name(&TestApp::new().await).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some((app, schema)) = TestApp::on_postgres().await else {
                    return;
                };
                super::$name(&app).await;
                TestApp::drop_postgres_schema(&schema).await;
            }
        }
    )*};
}

on_both_stores!(
    allowed_and_denied_origins,
    preflights,
    public_documents,
    origins_follow_client_changes,
);

#[tokio::test]
async fn allowed_origins_are_checked_at_registration() {
    let app = TestApp::new().await;
    for bad in [
        "*",
        "null",
        "https://spa.example.test/app",
        "http://spa.example.test",
    ] {
        let result = app
            .admin()
            .register_client(NewClient {
                name: "SPA".into(),
                public: true,
                redirect_uris: vec![format!("{SPA}/callback")],
                allowed_origins: vec![bad.into()],
                ..NewClient::default()
            })
            .await;
        let error = result.unwrap_err().to_string();
        assert!(error.starts_with("allowed_origins[0]: "), "{bad}: {error}");
    }
}
