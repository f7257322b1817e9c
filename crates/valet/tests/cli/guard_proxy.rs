//! `valet guard`, the verifying reverse proxy: valid tokens pass with the
//! verified identity attached, everything else is refused before the upstream,
//! and a revocation at Valet reaches the proxy within a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::harness::*;

const AUDIENCE: &str = "https://api.example.test";

/// An upstream API that answers with what it received and counts requests.
struct Upstream {
    port: u16,
    hits: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

fn upstream() -> Upstream {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let header = |name: &str| {
                    headers
                        .get_all(name)
                        .iter()
                        .map(|v| v.to_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                };
                axum::Json(serde_json::json!({
                    "subject": header("x-valet-subject"),
                    "client_id": header("x-valet-client-id"),
                    "scope": header("x-valet-scope"),
                "underscored": header("x-valet_subject"),
                    "authorization": header("authorization"),
                    "body_len": body.len(),
                }))
            }
        },
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    Upstream {
        port,
        hits,
        _runtime: runtime,
    }
}

fn bearer(port: u16, method: &str, token: &str, extra: &[(&str, String)], body: &str) -> Reply {
    let mut headers = vec![("Authorization", format!("Bearer {token}"))];
    headers.extend(extra.iter().cloned());
    http(port, method, "/orders?page=2", &headers, body).unwrap()
}

/// Valet, a service client with scope `read`, the upstream and the proxy.
struct Setup {
    valet: Server,
    proxy: Server,
    upstream: Upstream,
    id: String,
    secret: String,
}

fn setup(require: &[&str]) -> Setup {
    let dir = temp_dir("guard");
    let valet_port = free_port();
    let mut command = valet(&dir);
    command.args(["serve", "--bind", &format!("127.0.0.1:{valet_port}")]);
    let valet_server = Server::start(command, valet_port, dir.join("serve.log"));
    let (id, secret) = create_service_client(&dir, &[]);
    let upstream = upstream();
    let proxy_port = free_port();
    let mut command = valet(&dir);
    command.args([
        "guard",
        "--issuer",
        &format!("http://127.0.0.1:{valet_port}"),
        "--audience",
        AUDIENCE,
        "--upstream",
        &format!("http://127.0.0.1:{}", upstream.port),
        "--bind",
        &format!("127.0.0.1:{proxy_port}"),
    ]);
    for scope in require {
        command.args(["--require-scope", scope]);
    }
    let proxy = Server::start_unready(command, proxy_port, dir.join("guard.log"));
    Setup {
        valet: valet_server,
        proxy,
        upstream,
        id,
        secret,
    }
}

#[test]
fn valid_tokens_pass_with_the_verified_identity_and_streamed_bodies() {
    let s = setup(&["read"]);
    let token = s.valet.token(&s.id, &s.secret);
    let body = "x".repeat(1_000_000);
    let reply = bearer(
        s.proxy.port,
        "POST",
        &token,
        &[
            ("X-Valet-Subject", "admin".to_owned()),
            // CGI-style upstreams read this as X-Valet-Subject.
            ("X-Valet_Subject", "admin".to_owned()),
            ("x-valet-scope", "everything".to_owned()),
            ("Content-Type", "text/plain".to_owned()),
        ],
        &body,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = reply.json();
    assert_eq!(
        seen["subject"],
        serde_json::json!([s.id]),
        "smuggled identity headers are replaced"
    );
    assert_eq!(seen["client_id"], serde_json::json!([s.id]));
    assert_eq!(seen["scope"], serde_json::json!(["read"]));
    assert_eq!(
        seen["underscored"],
        serde_json::json!([]),
        "underscore spellings are dropped too"
    );
    assert_eq!(seen["body_len"], 1_000_000);
}

#[test]
fn invalid_tokens_never_reach_the_upstream() {
    let s = setup(&[]);
    let token = s.valet.token(&s.id, &s.secret);
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0])
            .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].as_str().unwrap();
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    let mut escalated = payload.clone();
    escalated["sub"] = "admin".into();
    escalated["scope"] = "read write admin".into();
    let forged = [
        // alg none
        format!(
            "{}.{}.",
            b64(&format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#)),
            parts[1]
        ),
        // claims changed, signature kept
        format!("{}.{}.{}", parts[0], b64(&escalated.to_string()), parts[2]),
        // the psychic ECDSA signature: r = s = 0
        format!("{}.{}.{}", parts[0], parts[1], b64(&"\0".repeat(64))),
        // unknown kid
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"ES256","typ":"at+jwt","kid":"../../etc/passwd"}"#),
            parts[1],
            parts[2]
        ),
        // embedded key
        format!(
            "{}.{}.{}",
            b64(&format!(
                r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}","jwk":{{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}}}"#
            )),
            parts[1],
            parts[2]
        ),
        // HS256 claimed for an EC key
        format!(
            "{}.{}.{}",
            b64(&format!(
                r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#
            )),
            parts[1],
            parts[2]
        ),
        // typ of an ID token
        format!(
            "{}.{}.{}",
            b64(&format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#)),
            parts[1],
            parts[2]
        ),
        // malformed and oversized
        "a.b".to_owned(),
        "a.b.c.d.e".to_owned(),
        format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]),
    ];
    for bad in &forged {
        let reply = bearer(s.proxy.port, "GET", bad, &[], "");
        assert_eq!(reply.status, 401, "{bad:.60}: {}", reply.body);
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
        assert!(
            !reply.body.contains(bad.as_str()),
            "the token is never echoed"
        );
    }
    let reply = http(s.proxy.port, "GET", "/orders", &[], "").unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(
        s.upstream.hits.load(Ordering::SeqCst),
        0,
        "the upstream was never reached"
    );
    // A real token still passes.
    assert_eq!(bearer(s.proxy.port, "GET", &token, &[], "").status, 200);
    assert_eq!(s.upstream.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn missing_scope_is_403() {
    let s = setup(&["orders:write"]);
    let token = s.valet.token(&s.id, &s.secret);
    let reply = bearer(s.proxy.port, "GET", &token, &[], "");
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(s.upstream.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn a_revocation_reaches_the_proxy_within_a_second() {
    let s = setup(&[]);
    let mut delays = Vec::new();
    for _ in 0..5 {
        let token = s.valet.token(&s.id, &s.secret);
        assert_eq!(bearer(s.proxy.port, "GET", &token, &[], "").status, 200);
        let revoked = s.valet.post_form(
            "/revoke",
            Some((&s.id, &s.secret)),
            &format!("token={token}"),
        );
        assert_eq!(revoked.status, 200);
        let started = Instant::now();
        loop {
            let status = bearer(s.proxy.port, "GET", &token, &[], "").status;
            if status == 401 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "still {status} after 5 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        delays.push(started.elapsed());
    }
    let worst = delays.iter().max().unwrap();
    assert!(
        *worst < Duration::from_secs(1),
        "propagation took {worst:?} ({delays:?})"
    );
}
