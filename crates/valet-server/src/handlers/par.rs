//! The pushed authorization request endpoint (RFC 9126 §2): a
//! client-authenticated form POST answered with 201 and a `request_uri`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use valet_core::OAuthError;

use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::response::json_bytes;

/// §2.2: 201 Created, JSON, not cached.
pub async fn push(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let body = state
        .server
        .push_authorization_request(&context, request.authorization.as_deref(), &request.form)
        .await?;
    let json = serde_json::to_vec(&body).map_err(OAuthError::server)?;
    let mut response = json_bytes(json, HeaderValue::from_static("no-store"));
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}
