//! What an operator watches, from the outside: `/metrics` on its own listener
//! (`metrics_bind`), the access log (one line per request, no secret in it), no
//! SQL in a debug log but every statement when asked for, the OTLP span export to a collector (`otlp_sink.py`), and
//! `valet healthcheck`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

/// What a request carries that must never reach a log or a collector.
const QUERY_SECRET: &str = "QUERYSECRETvalue123";
const BEARER_SECRET: &str = "BEARERSECRETvalue456";
const COOKIE_SECRET: &str = "COOKIESECRETvalue789";
const DPOP_SECRET: &str = "DPOPSECRETvalue012";

/// `GET /authorize?code=…` with every secret-bearing header: its reply.
fn secret_laden_request(port: u16) -> valet_test_support::http::Reply {
    valet_test_support::http::http(
        port,
        "GET",
        &format!("/authorize?code={QUERY_SECRET}&state=s"),
        &[
            ("Authorization", format!("Bearer {BEARER_SECRET}")),
            ("Cookie", format!("valet_session={COOKIE_SECRET}")),
            ("DPoP", DPOP_SECRET.to_owned()),
        ],
        "",
    )
    .unwrap()
}

fn assert_no_secret(text: &str, what: &str) {
    for secret in [QUERY_SECRET, BEARER_SECRET, COOKIE_SECRET, DPOP_SECRET] {
        assert!(!text.contains(secret), "{what} holds {secret}:\n{text}");
    }
}

/// The JSON log lines of `server` whose target is `target`.
fn lines_of(server: &Server, target: &str) -> Vec<Value> {
    server
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == target)
        .collect()
}

fn serve_with(label: &str, env: &[(&str, &str)], args: &[&str]) -> (PathBuf, Server) {
    let dir = temp_dir(label);
    let port = free_port();
    let mut command = valet(&dir);
    command
        .env("VALET_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(args);
    let server = Server::start(command, port, dir.join("serve.log"));
    (dir, server)
}

#[test]
fn metrics_bind_serves_metrics_on_its_own_listener_only() {
    let metrics_port = free_port();
    let (_dir, server) = serve_with(
        "metrics-bind",
        &[],
        &["--metrics-bind", &format!("127.0.0.1:{metrics_port}")],
    );
    server.get("/healthz");
    let public = server.get("/metrics");
    assert_eq!(public.status, 404, "{}", public.body);
    let scraped = valet_test_support::http::http(metrics_port, "GET", "/metrics", &[], "").unwrap();
    assert_eq!(scraped.status, 200);
    assert!(
        scraped
            .body
            .contains("# HELP valet_http_requests_total HTTP requests answered"),
        "{}",
        scraped.body
    );
    // The public listener's requests are counted, the 404 for /metrics included.
    assert!(
        scraped
            .body
            .contains("endpoint=\"unmatched\",status=\"404\""),
        "{}",
        scraped.body
    );
    for probe in ["/healthz", "/readyz"] {
        let reply = valet_test_support::http::http(metrics_port, "GET", probe, &[], "").unwrap();
        assert_eq!(reply.status, 200, "{probe}");
    }
    let elsewhere = valet_test_support::http::http(metrics_port, "GET", "/token", &[], "").unwrap();
    assert_eq!(elsewhere.status, 404, "only metrics and probes there");
}

#[test]
fn without_metrics_bind_metrics_stay_on_the_public_listener() {
    let (_dir, server) = serve_with("metrics-public", &[], &[]);
    server.get("/healthz");
    let scraped = server.get("/metrics");
    assert_eq!(scraped.status, 200);
    assert!(
        scraped
            .body
            .contains("# HELP valet_http_requests_total HTTP requests answered"),
        "{}",
        scraped.body
    );
}

#[test]
fn metrics_bind_equal_to_bind_is_refused() {
    let dir = temp_dir("metrics-bind-clash");
    let out = valet(&dir)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:18080",
            "--metrics-bind",
            "127.0.0.1:18080",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("setting `metrics_bind` (127.0.0.1:18080): must differ from `bind`"),
        "{stderr}"
    );
}

#[test]
fn the_access_log_has_one_line_per_request_and_no_secret() {
    let (_dir, server) = serve_with("access-log", &[], &[]);
    let reply = secret_laden_request(server.port);
    assert_eq!(reply.status, 400, "{}", reply.body);
    let id = reply.header("x-request-id").unwrap().to_owned();
    let mut line = None;
    eventually("the access log line", || {
        line = lines_of(&server, "valet::access")
            .into_iter()
            .find(|line| line["fields"]["request_id"] == id.as_str());
        line.is_some()
    });
    let fields = &line.unwrap()["fields"];
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["path"], "/authorize");
    assert_eq!(fields["status"], 400);
    assert_eq!(fields["client"], "127.0.0.1");
    assert!(fields["duration_ms"].as_f64().unwrap() >= 0.0, "{fields}");
    assert_eq!(
        fields["bytes"].as_u64().unwrap(),
        reply.body.len() as u64,
        "{fields}"
    );
    assert_eq!(fields["message"], "GET /authorize 400");
    assert_no_secret(&server.log_text(), "the log");
}

#[test]
fn access_log_false_writes_no_access_line() {
    let (_dir, server) = serve_with("access-log-off", &[("VALET_ACCESS_LOG", "false")], &[]);
    secret_laden_request(server.port);
    server.get("/healthz");
    // The audit flush runs every second: give a line time to appear.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(lines_of(&server, "valet::access").is_empty());
    assert_no_secret(&server.log_text(), "the log");
}

/// At debug level the background work (the status list feed polls four times a
/// second) used to log every SQL statement it ran.
#[test]
fn a_debug_log_holds_no_periodic_sql() {
    let (_dir, server) = serve_with("debug-sql", &[("VALET_LOG", "debug")], &[]);
    server.get("/jwks.json");
    std::thread::sleep(Duration::from_secs(3));
    let sql: Vec<Value> = server
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("sqlx"))
        })
        .collect();
    assert!(sql.is_empty(), "SQL in the debug log: {sql:?}");
}

/// Asked for by its target, every statement is logged, with its SQL.
#[test]
fn statements_are_logged_when_their_target_asks_for_trace() {
    let (_dir, server) = serve_with("trace-sql", &[("VALET_LOG", "info,sqlx::query=trace")], &[]);
    server.get("/jwks.json");
    // The status list feed reads its table a few times a second.
    std::thread::sleep(Duration::from_secs(2));
    let statements = lines_of(&server, "sqlx::query");
    assert!(
        statements.iter().any(|line| line["fields"]["db.statement"]
            .as_str()
            .is_some_and(|sql| sql.contains("SELECT"))),
        "no statement logged: {}",
        server.log_text()
    );
}

/// The collector stand-in (`otlp_sink.py`) as a process, writing each export
/// request into `dir`.
struct OtlpSink {
    child: Child,
    dir: PathBuf,
}

impl OtlpSink {
    fn start(port: u16, dir: &Path) -> OtlpSink {
        std::fs::create_dir_all(dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/otlp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the OTLP sink did not start");
        OtlpSink {
            child,
            dir: dir.to_owned(),
        }
    }

    /// Every export request received so far: (content type, body).
    fn requests(&self) -> Vec<(String, Vec<u8>)> {
        let mut bodies: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
            .collect();
        bodies.sort();
        bodies
            .iter()
            .map(|body| {
                let kind = std::fs::read_to_string(body.with_extension("type")).unwrap();
                (kind, std::fs::read(body).unwrap())
            })
            .collect()
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A trace id a balancer might send (W3C Trace Context, `traceparent`).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Starts a node exporting to a fresh sink with `env`, sends the secret-laden
/// request (with a `traceparent`) and a JWKS fetch, stops the node cleanly
/// (which exports what is queued), and returns every export request's body
/// after checking its content type.
fn exported_spans(label: &str, env: &[(&str, &str)]) -> Vec<u8> {
    let sink_port = free_port();
    let dir = temp_dir(label);
    let sink = OtlpSink::start(sink_port, &dir.join("otlp"));
    let port = free_port();
    let mut command = valet(&dir);
    command.envs(env.iter().copied()).args([
        "serve",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--otlp-endpoint",
        &format!("http://127.0.0.1:{sink_port}"),
    ]);
    let mut server = Server::start(command, port, dir.join("serve.log"));
    let traced = http(
        port,
        "GET",
        &format!("/authorize?code={QUERY_SECRET}&state=s"),
        &[
            ("Authorization", format!("Bearer {BEARER_SECRET}")),
            ("Cookie", format!("valet_session={COOKIE_SECRET}")),
            ("DPoP", DPOP_SECRET.to_owned()),
            ("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01")),
        ],
        "",
    )
    .unwrap();
    assert_eq!(traced.status, 400);
    assert_eq!(server.get("/jwks.json").status, 200);
    let status = server.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        server.log_text()
    );
    assert_no_secret(&server.log_text(), "the log");
    let requests = sink.requests();
    assert!(
        !requests.is_empty(),
        "no export arrived: {}",
        server.log_text()
    );
    let mut all = Vec::new();
    for (kind, body) in &requests {
        assert_eq!(kind, "application/x-protobuf");
        assert!(!body.is_empty());
        all.extend_from_slice(body);
    }
    all
}

/// The trace id's 16 bytes, as protobuf carries them.
fn trace_id_bytes() -> Vec<u8> {
    (0..TRACE_ID.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&TRACE_ID[at..at + 2], 16).unwrap())
        .collect()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn request_spans_reach_the_otlp_collector_without_secrets() {
    let body = exported_spans("otlp", &[]);
    let text = String::from_utf8_lossy(&body);
    // Span names are the route templates; the service is named.
    assert!(text.contains("GET /authorize"), "{text}");
    assert!(text.contains("GET /jwks.json"), "{text}");
    assert!(text.contains("valet"), "{text}");
    assert_no_secret(&text, "the exported spans");
    // Anyone may send a traceparent; only a trusted proxy's is continued.
    assert!(
        !holds(&body, &trace_id_bytes()),
        "an untrusted trace continued"
    );
}

#[test]
fn a_trusted_proxys_trace_is_continued() {
    let body = exported_spans("otlp-trusted", &[("VALET_TRUSTED_PROXIES", "127.0.0.1")]);
    assert!(
        holds(&body, &trace_id_bytes()),
        "the balancer's trace was not continued"
    );
    assert_no_secret(&String::from_utf8_lossy(&body), "the exported spans");
}

#[test]
fn healthcheck_exits_zero_for_a_ready_node_and_one_otherwise() {
    let metrics_port = free_port();
    let (dir, server) = serve_with(
        "healthcheck",
        &[],
        &["--metrics-bind", &format!("127.0.0.1:{metrics_port}")],
    );
    // With the node's configuration: the metrics listener's /readyz.
    let derived = valet(&dir)
        .env("VALET_BIND", format!("127.0.0.1:{}", server.port))
        .env("VALET_METRICS_BIND", format!("127.0.0.1:{metrics_port}"))
        .arg("healthcheck")
        .output()
        .unwrap();
    assert!(
        derived.status.success(),
        "{}",
        String::from_utf8_lossy(&derived.stderr)
    );
    assert!(String::from_utf8_lossy(&derived.stdout).contains(&format!("{metrics_port}/readyz")));
    let explicit = valet(&dir)
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{}/readyz", server.port),
        ])
        .output()
        .unwrap();
    assert!(explicit.status.success());
    // Nothing listening, and a path that is not ready (404).
    for url in [
        format!("http://127.0.0.1:{}/readyz", free_port()),
        format!("http://127.0.0.1:{}/nothing", server.port),
    ] {
        let out = valet(&dir)
            .args(["healthcheck", "--timeout", "2", "--url", &url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{url}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(&url));
    }
}
