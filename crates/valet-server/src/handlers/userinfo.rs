//! UserInfo (OIDC Core §5.3), GET and POST, with RFC 6750 errors.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::response::no_store;

pub async fn userinfo(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let claims = state.server.userinfo(&context, authorization).await?;
    let mut response = axum::Json(claims).into_response();
    no_store(&mut response);
    Ok(response)
}
