//! Liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::AppState;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The node can issue tokens: the store answers, the last key reload worked (a
/// key sealed with another master key fails it) and a signing key is loaded.
pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let server = &state.server;
    if let Err(error) = server.store().ping().await {
        tracing::warn!(%error, "readiness: store unreachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n");
    }
    if let Some(failure) = server.keyring().reload_failure() {
        tracing::warn!(%failure, "readiness: signing keys cannot be reloaded");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "signing keys cannot be reloaded\n",
        );
    }
    if server
        .keyring()
        .signing_key(server.settings().keys.access_token_alg, server.now())
        .is_none()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "no signing key\n");
    }
    if server.settings().insecure_benchmark_password_hash {
        return (StatusCode::OK, "ready\nvalet_insecure_benchmark_mode 1\n");
    }
    (StatusCode::OK, "ready\n")
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    // Written here, not through the process-wide recorder, so it describes this
    // server's settings (benchmark mode's cheap password hashes) and no other.
    let benchmark = u8::from(state.server.settings().insecure_benchmark_password_hash);
    text.push_str(&format!(
        "# HELP valet_insecure_benchmark_mode 1 when new password hashes are made cheap for benchmarks (setting insecure_benchmark_password_hash)\n\
         # TYPE valet_insecure_benchmark_mode gauge\n\
         valet_insecure_benchmark_mode {benchmark}\n"
    ));
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
