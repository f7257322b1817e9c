//! Dynamic client registration (RFC 7591 §3) and the client configuration
//! endpoint (RFC 7592 §2): JSON in, JSON out, never cached.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::PRAGMA;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::OAuthError;
use valet_protocol::registration::ClientInformation;

use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::{JsonBody, single_authorization};
use crate::response::json_bytes;

/// RFC 7591 §3.1: 201 with the client information.
pub async fn register(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: JsonBody,
) -> Result<Response, ApiError> {
    let information = state
        .server
        .register_client(&context, request.authorization.as_deref(), &request.body)
        .await?;
    information_response(StatusCode::CREATED, &information)
}

/// RFC 7592 §2.1.
pub async fn read(
    State(state): State<Arc<AppState>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authorization = single_authorization(&headers)?;
    let information = state
        .server
        .read_registration(&client_id, authorization.as_deref())
        .await?;
    information_response(StatusCode::OK, &information)
}

/// RFC 7592 §2.2.
pub async fn replace(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    Path(client_id): Path<String>,
    request: JsonBody,
) -> Result<Response, ApiError> {
    let information = state
        .server
        .replace_registration(
            &context,
            &client_id,
            request.authorization.as_deref(),
            &request.body,
        )
        .await?;
    information_response(StatusCode::OK, &information)
}

/// RFC 7592 §2.3: 204 once deleted.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authorization = single_authorization(&headers)?;
    state
        .server
        .delete_registration(&context, &client_id, authorization.as_deref())
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    crate::response::no_store(&mut response);
    Ok(response)
}

/// RFC 7591 §3.2.1: the answer holds secrets, so `no-store` and `Pragma: no-cache`.
fn information_response(
    status: StatusCode,
    information: &ClientInformation,
) -> Result<Response, ApiError> {
    let json = serde_json::to_vec(information).map_err(OAuthError::server)?;
    let mut response = json_bytes(json, HeaderValue::from_static("no-store"));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
