//! The token (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009)
//! endpoints: all client-authenticated form POSTs.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::PRAGMA;
use axum::response::{IntoResponse, Response};
use metrics::Counter;
use valet_core::OAuthError;
use valet_protocol::token::{GrantType, TokenResponse};

use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::response::{json_bytes, no_store};

pub async fn token(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let (grant, body) = state
        .server
        .token(&context, request.authorization.as_deref(), &request.form)
        .await?;
    count_issued(grant);
    token_response(&body)
}

/// The token response (RFC 6749 §5.1).
fn token_response(body: &TokenResponse) -> Result<Response, ApiError> {
    let json = body.to_json().map_err(OAuthError::server)?;
    let mut response = json_bytes(json, HeaderValue::from_static("no-store"));
    // `Cache-Control` is set; RFC 6749 §5.1 also asks for `Pragma: no-cache`.
    response
        .headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

pub async fn introspect(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let body = state
        .server
        .introspect(&context, request.authorization.as_deref(), &request.form)
        .await?;
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    Ok(response)
}

/// RFC 7009 §2.2: success is 200 with an empty body.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    state
        .server
        .revoke(&context, request.authorization.as_deref(), &request.form)
        .await?;
    let mut response = ().into_response();
    no_store(&mut response);
    Ok(response)
}

/// Counts a token response by grant type, with handles made once per process.
fn count_issued(grant: GrantType) {
    static ISSUED: OnceLock<Vec<(GrantType, Counter)>> = OnceLock::new();
    let counters = ISSUED.get_or_init(|| {
        GrantType::ALL
            .into_iter()
            .map(|grant| {
                let counter =
                    metrics::counter!("valet_tokens_issued_total", "grant" => grant.as_str());
                (grant, counter)
            })
            .collect()
    });
    if let Some((_, counter)) = counters.iter().find(|(counted, _)| *counted == grant) {
        counter.increment(1);
    }
}
