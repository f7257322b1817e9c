//! `valet guard`, the verifying reverse proxy: valid tokens pass with the
//! verified identity attached, everything else is refused before the upstream,
//! a revocation at Valet reaches the proxy within a second, paths never leave the
//! upstream's base path, forwarding headers are the proxy's own, and the proxy starts
//! (not ready) while the issuer is down.

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
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
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
                    "content_length": header("content-length"),
                    "transfer_encoding": header("transfer-encoding"),
                    "target": uri.to_string(),
                    "x_forwarded_for": header("x-forwarded-for"),
                    "x_forwarded_host": header("x-forwarded-host"),
                    "x_forwarded_proto": header("x-forwarded-proto"),
                    "x_forwarded_port": header("x-forwarded-port"),
                    "x_forwarded_for_underscored": header("x_forwarded_for"),
                    "forwarded": header("forwarded"),
                    "x_real_ip": header("x-real-ip"),
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
    setup_under(require, "")
}

/// As [`setup`], with the upstream given as `http://127.0.0.1:PORT{base_path}`.
fn setup_under(require: &[&str], base_path: &str) -> Setup {
    setup_with(require, base_path, &[])
}

/// As [`setup_under`], with extra environment variables for `valet serve`.
fn setup_with(require: &[&str], base_path: &str, env: &[(&str, &str)]) -> Setup {
    let dir = temp_dir("guard");
    let valet_port = free_port();
    let mut command = valet(&dir);
    command.envs(env.iter().copied());
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
        &format!("http://127.0.0.1:{}{base_path}", upstream.port),
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

/// Bodies cross the proxy with their length both ways: a bodiless GET goes
/// without a body (not as an empty chunked one), a body of known length keeps
/// its `Content-Length`, small or streamed, and so does the reply.
#[test]
fn bodies_keep_their_length_through_the_proxy() {
    let s = setup(&[]);
    let token = s.valet.token(&s.id, &s.secret);
    let reply = bearer(s.proxy.port, "GET", &token, &[], "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = reply.json();
    assert_eq!(seen["transfer_encoding"], serde_json::json!([]));
    assert_eq!(seen["body_len"], 0);
    assert_eq!(reply.header("transfer-encoding"), None);
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );
    for size in [20, 70_000, 1_000_000] {
        let reply = bearer(s.proxy.port, "POST", &token, &[], &"x".repeat(size));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let seen = reply.json();
        assert_eq!(seen["body_len"], size);
        assert_eq!(
            seen["content_length"],
            serde_json::json!([size.to_string()])
        );
        assert_eq!(seen["transfer_encoding"], serde_json::json!([]), "{size}");
    }
}

/// Valet signing access tokens with EdDSA (Ed25519): the proxy verifies them from the
/// published OKP key, and refuses an altered one.
#[test]
fn eddsa_access_tokens_pass_the_proxy() {
    let s = setup_with(&["read"], "", &[("VALET_ACCESS_TOKEN_ALG", "EdDSA")]);
    let token = s.valet.token(&s.id, &s.secret);
    let header: serde_json::Value = {
        use base64::Engine as _;
        let header = token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "EdDSA");
    let jwks = s.valet.get("/jwks.json").json();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap()
        .clone();
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    let reply = bearer(s.proxy.port, "GET", &token, &[], "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["subject"], serde_json::json!([s.id]));

    // Altered payload: refused by the proxy, never reaches the upstream.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"admin","aud":"{AUDIENCE}"}}"#))
    };
    parts[1] = &forged;
    let reply = bearer(s.proxy.port, "GET", &parts.join("."), &[], "");
    assert_eq!(reply.status, 401, "{}", reply.body);
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

#[test]
fn paths_never_leave_the_upstream_base_path() {
    let s = setup_under(&[], "/api");
    let token = s.valet.token(&s.id, &s.secret);
    let auth = [("Authorization", format!("Bearer {token}"))];
    for path in [
        "/../secret",
        "/orders/../../secret",
        "/%2e%2e/secret",
        "/%2E%2E/secret",
        "/.%2e/secret",
        "/%2E./secret",
        "/./orders",
        "/%2e/orders",
        "/..;/secret",
        "/orders%2f..%2f..%2fsecret",
        "/orders%2F..%2F..%2Fsecret",
        "/orders%5c..%5c..%5csecret",
        "/orders\\..\\..\\secret",
    ] {
        let reply = http(s.proxy.port, "GET", path, &auth, "").unwrap();
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        // Refused before the token is looked at.
        let anonymous = http(s.proxy.port, "GET", path, &[], "").unwrap();
        assert_eq!(anonymous.status, 400, "{path}");
    }
    assert_eq!(
        s.upstream.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
    for (path, target) in [
        ("/orders?page=2", "/api/orders?page=2"),
        ("/..orders/x..", "/api/..orders/x.."),
        ("/orders?next=/../x", "/api/orders?next=/../x"),
    ] {
        let reply = http(s.proxy.port, "GET", path, &auth, "").unwrap();
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.json()["target"], target);
    }
}

#[test]
fn forwarding_headers_are_the_proxys_own() {
    let s = setup(&[]);
    let token = s.valet.token(&s.id, &s.secret);
    let spoofed = "203.0.113.66".to_owned();
    let reply = bearer(
        s.proxy.port,
        "GET",
        &token,
        &[
            ("X-Forwarded-For", spoofed.clone()),
            ("x-forwarded-for", "198.51.100.1".to_owned()),
            ("X-FORWARDED-HOST", "evil.example".to_owned()),
            ("X-Forwarded-Proto", "https".to_owned()),
            ("X-Forwarded-Port", "443".to_owned()),
            ("X_Forwarded_For", spoofed.clone()),
            ("Forwarded", format!("for={spoofed};proto=https")),
            ("X-Real-IP", spoofed.clone()),
        ],
        "",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = reply.json();
    assert_eq!(seen["x_forwarded_for"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(seen["x_forwarded_proto"], serde_json::json!(["http"]));
    assert_eq!(
        seen["x_forwarded_host"],
        serde_json::json!([format!("127.0.0.1:{}", s.proxy.port)])
    );
    for dropped in [
        "x_forwarded_port",
        "x_forwarded_for_underscored",
        "forwarded",
        "x_real_ip",
    ] {
        assert_eq!(seen[dropped], serde_json::json!([]), "{dropped}");
    }
    assert!(!reply.body.contains(&spoofed), "{}", reply.body);
}

fn guard_command(
    dir: &std::path::Path,
    issuer: &str,
    upstream_port: u16,
    port: u16,
) -> std::process::Command {
    let mut command = valet(dir);
    command.args([
        "guard",
        "--issuer",
        issuer,
        "--audience",
        AUDIENCE,
        "--upstream",
        &format!("http://127.0.0.1:{upstream_port}"),
        "--bind",
        &format!("127.0.0.1:{port}"),
    ]);
    command
}

const HEALTH: &str = "/.well-known/valet-guard/health";
const READY: &str = "/.well-known/valet-guard/ready";

#[test]
fn the_proxy_starts_while_the_issuer_is_down_and_becomes_ready() {
    let dir = temp_dir("guard-unready");
    let valet_port = free_port();
    let upstream = upstream();
    let proxy_port = free_port();
    let proxy = Server::start_unready(
        guard_command(
            &dir,
            &format!("http://127.0.0.1:{valet_port}"),
            upstream.port,
            proxy_port,
        ),
        proxy_port,
        dir.join("guard.log"),
    );
    let health = proxy.get(HEALTH);
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), serde_json::json!({"status": "ok"}));
    let ready = proxy.get(READY);
    assert_eq!(ready.status, 503);
    assert_eq!(ready.header("retry-after"), Some("5"));
    assert_eq!(ready.json(), serde_json::json!({"status": "not ready"}));
    for auth in [vec![("Authorization", "Bearer a.b.c".to_owned())], vec![]] {
        let reply = http(proxy_port, "GET", "/orders", &auth, "").unwrap();
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(reply.header("retry-after"), Some("5"));
        assert_eq!(reply.json()["error"], "temporarily_unavailable");
    }
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 0);

    let mut command = valet(&dir);
    command.args(["serve", "--bind", &format!("127.0.0.1:{valet_port}")]);
    let valet_server = Server::start(command, valet_port, dir.join("serve.log"));
    let (id, secret) = create_service_client(&dir, &[]);
    eventually("the proxy to become ready", || {
        proxy.get(READY).status == 200
    });
    assert_eq!(
        proxy.get(READY).json(),
        serde_json::json!({"status": "ready"})
    );
    let token = valet_server.token(&id, &secret);
    let reply = bearer(proxy_port, "GET", &token, &[], "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        http(proxy_port, "GET", "/orders", &[], "").unwrap().status,
        401
    );
    // The health endpoints are the proxy's own: never forwarded.
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 1);
    let log = proxy.log_text();
    assert!(
        log.contains("cannot load the issuer's metadata and keys yet"),
        "{log}"
    );
}

#[test]
fn a_plain_http_issuer_must_be_loopback_or_explicitly_allowed() {
    let dir = temp_dir("guard-insecure");
    for issuer in [
        "http://id.example.test",
        // Loopback is an address, not a prefix.
        "http://127.evil.example",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example",
    ] {
        let out = guard_command(&dir, issuer, free_port(), free_port())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{issuer}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--dangerous-allow-insecure-issuer") && stderr.contains(issuer),
            "{issuer}: {stderr}"
        );
    }
    // With the override it starts (not ready: the host does not resolve).
    let port = free_port();
    let mut command = guard_command(&dir, "http://127.evil.example", free_port(), port);
    command.arg("--dangerous-allow-insecure-issuer");
    let proxy = Server::start_unready(command, port, dir.join("insecure.log"));
    assert_eq!(proxy.get(HEALTH).status, 200);
    assert_eq!(proxy.get(READY).status, 503);
    // Loopback addresses in any form need no override.
    for issuer in [
        "http://localhost:9",
        "http://[::1]:9",
        "http://127.8.9.10:9",
    ] {
        let port = free_port();
        let proxy = Server::start_unready(
            guard_command(&dir, issuer, free_port(), port),
            port,
            dir.join("loopback.log"),
        );
        assert_eq!(proxy.get(HEALTH).status, 200, "{issuer}");
    }
}

#[test]
fn store_options_do_not_apply_to_the_guard() {
    let dir = temp_dir("guard-flags");
    let help = run_ok({
        let mut command = valet(&dir);
        command.args(["guard", "--help"]);
        command
    });
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--upstream"), "{help}");
    for flag in ["--data-dir", "--database-url", "--config"] {
        assert!(!help.contains(flag), "{flag} in:\n{help}");
        for before in [false, true] {
            let mut command = valet(&dir);
            if before {
                command.args([flag, "x", "guard"]);
            } else {
                command.args(["guard", flag, "x"]);
            }
            command.args([
                "--issuer",
                "http://127.0.0.1:9",
                "--audience",
                AUDIENCE,
                "--upstream",
                "http://127.0.0.1:9",
            ]);
            let out = command.output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{flag} (before: {before})");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(flag) && stderr.contains("`valet guard`"),
                "{stderr}"
            );
        }
    }
    // The other commands keep them, before or after the subcommand.
    let client_help = run_ok({
        let mut command = valet(&dir);
        command.args(["client", "list", "--help"]);
        command
    });
    let client_help = String::from_utf8_lossy(&client_help.stdout);
    for flag in ["--data-dir", "--database-url", "--config"] {
        assert!(client_help.contains(flag), "{flag} in:\n{client_help}");
    }
    for args in [
        ["--data-dir", "store", "client", "list"],
        ["client", "list", "--data-dir", "store"],
    ] {
        let mut command = valet(&dir);
        command.args(args);
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("unexpected argument"),
            "{args:?}: {stderr}"
        );
        assert_ne!(out.status.code(), Some(2), "{args:?}: {stderr}");
    }
}

#[test]
fn the_guard_authenticates_to_the_event_stream_without_showing_its_secret() {
    let dir = temp_dir("guard-credentials");
    let valet_port = free_port();
    let issuer = format!("http://127.0.0.1:{valet_port}");
    let mut command = valet(&dir);
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{valet_port}")])
        .env("VALET_STATUS_EVENTS_AUTH", "token");
    let valet_server = Server::start(command, valet_port, dir.join("serve.log"));
    // The server really requires the credential: an anonymous subscriber is refused.
    assert_eq!(valet_server.get("/statuslists/events").status, 401);
    let (guard_id, guard_secret) = create_client_with(
        valet(&dir),
        &[],
        &[
            "--name",
            "guards",
            "--audience",
            &issuer,
            "--scope",
            "valet:status",
        ],
    );
    let (id, secret) = create_service_client(&dir, &[]);
    let upstream = upstream();
    let proxy_port = free_port();
    let mut command = guard_command(&dir, &issuer, upstream.port, proxy_port);
    command
        .args(["--client-id", &guard_id])
        .env("VALET_GUARD_CLIENT_SECRET", &guard_secret)
        .env("VALET_LOG", "debug");
    let proxy = Server::start_unready(command, proxy_port, dir.join("guard.log"));
    eventually("the proxy to become ready", || {
        proxy.get(READY).status == 200
    });
    // The stream is up (so a revocation arrives within a second) and the guard's client
    // obtained a token for it.
    let token = valet_server.token(&id, &secret);
    assert_eq!(bearer(proxy_port, "GET", &token, &[], "").status, 200);
    eventually("a token for the guard's client", || {
        let mut audit = valet(&dir);
        audit.args([
            "audit",
            "--json",
            "--type",
            "token.issued",
            "--client",
            &guard_id,
        ]);
        let out = audit.output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&guard_id)
    });
    let revoked =
        valet_server.post_form("/revoke", Some((&id, &secret)), &format!("token={token}"));
    assert_eq!(revoked.status, 200);
    let started = Instant::now();
    while bearer(proxy_port, "GET", &token, &[], "").status != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "revocation too slow"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = proxy.log_text();
    assert!(log.contains("subscribed to status list events"), "{log}");
    assert!(!log.contains("cannot obtain a stream token"), "{log}");
    assert!(!log.contains(&guard_secret), "the secret is in the log");
}

#[test]
fn the_guard_secret_comes_from_the_environment_or_a_file_only() {
    let dir = temp_dir("guard-secret");
    let run = |extra: &[&str], env: Option<&str>| {
        let mut command = guard_command(&dir, "http://127.0.0.1:9", 9, free_port());
        command.args(extra);
        if let Some(secret) = env {
            command.env("VALET_GUARD_CLIENT_SECRET", secret);
        }
        let out = command.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&["--client-id", "guards"], None).contains("VALET_GUARD_CLIENT_SECRET"));
    let missing = dir.join("missing-secret");
    let stderr = run(
        &[
            "--client-id",
            "guards",
            "--client-secret-file",
            missing.to_str().unwrap(),
        ],
        None,
    );
    assert!(stderr.contains("missing-secret"), "{stderr}");
    let file = dir.join("secret");
    std::fs::write(&file, "s3cret\n").unwrap();
    let stderr = run(
        &[
            "--client-id",
            "guards",
            "--client-secret-file",
            file.to_str().unwrap(),
        ],
        Some("s3cret"),
    );
    assert!(stderr.contains("both set"), "{stderr}");
    assert!(run(&[], Some("s3cret")).contains("--client-id"));
    // There is no flag for the secret itself.
    assert!(
        run(
            &["--client-id", "guards", "--client-secret", "s3cret"],
            None
        )
        .contains("unexpected argument")
    );
}
