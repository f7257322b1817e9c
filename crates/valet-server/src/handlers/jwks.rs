//! The JWKS (RFC 7517 §5): public keys only, cached no longer than a new key is
//! published before it signs.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;

use crate::AppState;
use crate::response::json_bytes;

pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let max_age = state.server.settings().keys.jwks_max_age();
    let cache_control = HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or(HeaderValue::from_static("no-cache"));
    json_bytes(
        axum::body::Bytes::from_owner(state.server.jwks()),
        cache_control,
    )
}
