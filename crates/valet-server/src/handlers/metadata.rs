//! RFC 8414 metadata, also OpenID Connect discovery.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};

use crate::AppState;

pub async fn metadata(State(state): State<Arc<AppState>>) -> Response {
    let mut response = axum::Json(state.server.metadata()).into_response();
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
