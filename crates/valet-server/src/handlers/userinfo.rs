//! UserInfo (OIDC Core §5.3), GET and POST, with RFC 6750 errors.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::handlers::token_endpoints::{dpop_nonce, dpop_proofs};
use crate::response::no_store;
use valet_core::endpoint::userinfo::UserInfoAnswer;

pub async fn userinfo(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let proofs = dpop_proofs(&headers);
    let answer = state
        .server
        .userinfo(&context, authorization, method.as_str(), &proofs)
        .await?;
    let mut response = match answer {
        UserInfoAnswer::Json(claims) => axum::Json(claims).into_response(),
        // OIDC Core §5.3.2: a signed and/or encrypted answer is a JWT.
        UserInfoAnswer::Jwt(jwt) => ([(CONTENT_TYPE, "application/jwt")], jwt).into_response(),
    };
    no_store(&mut response);
    if !proofs.is_empty() {
        dpop_nonce(&state, context.now, &mut response)?;
    }
    Ok(response)
}
