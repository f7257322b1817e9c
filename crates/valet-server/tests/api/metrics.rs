//! Prometheus metrics.

use crate::common::*;

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
