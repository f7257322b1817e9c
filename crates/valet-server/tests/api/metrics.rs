//! Prometheus metrics.

use valet_test_support::api::*;

#[tokio::test]
async fn metrics_count_requests_and_tokens() {
    let app = TestApp::new().await;
    let client = app.service().await;
    app.access_token(&client).await;
    let text = app.get("/metrics").await.text();
    assert!(
        text.contains("valet_tokens_issued_total{grant=\"client_credentials\"}"),
        "{text}"
    );
    assert!(
        text.contains("valet_http_requests_total{endpoint=\"/token\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("valet_http_request_duration_seconds_bucket{endpoint=\"/token\""),
        "{text}"
    );
}

/// The value of one series in the exposition, 0 when it is not there yet.
fn series_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn every_request_is_counted_under_its_route_and_status() {
    let app = TestApp::new().await;
    let not_allowed = r#"valet_http_requests_total{endpoint="/revoke",status="405"}"#;
    let not_found = r#"valet_http_requests_total{endpoint="unmatched",status="404"}"#;
    let before = app.get("/metrics").await.text();
    for _ in 0..3 {
        assert_eq!(app.get("/revoke").await.status, 405);
    }
    assert_eq!(app.get("/no/such/path/12345").await.status, 404);
    let after = app.get("/metrics").await.text();
    // Other tests share the process's recorder and may add to these series too.
    assert!(series_value(&after, not_allowed) >= series_value(&before, not_allowed) + 3.0);
    assert!(series_value(&after, not_found) >= series_value(&before, not_found) + 1.0);
    assert!(
        !after.contains("/no/such/path"),
        "raw paths must not become labels: {after}"
    );
}

/// Code redemption is a group-commit write: its batch is counted by size,
/// and the exposition says what each series means.
#[tokio::test]
async fn group_commit_batches_are_measured_and_every_metric_is_described() {
    let app = TestApp::new().await;
    let batches = r#"valet_group_commit_batch_size_count{database="SQLite"}"#;
    let before = series_value(&app.get("/metrics").await.text(), batches);
    // Redeeming the code writes the grant's tokens through group commit.
    alice_signed_in(&app, "openid offline_access").await;
    let text = app.get("/metrics").await.text();
    assert!(series_value(&text, batches) > before, "{text}");
    assert!(
        text.contains(r#"valet_group_commit_batch_size_bucket{database="SQLite",le="1"}"#),
        "{text}"
    );
    for name in [
        "valet_http_requests_total",
        "valet_http_request_duration_seconds",
        "valet_tokens_issued_total",
        "valet_group_commit_batch_size",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}: {text}");
    }
}
