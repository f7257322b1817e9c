//! The token (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009)
//! endpoints: all client-authenticated form POSTs.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::header::PRAGMA;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use metrics::Counter;
use valet_core::OAuthError;
use valet_protocol::token::{GrantType, TokenResponse};

use crate::AppState;
use crate::context::Context;
use crate::error::{ApiError, DPOP_NONCE};
use crate::extract::OAuthForm;
use crate::response::{json_bytes, no_store};

pub async fn token(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let proofs = dpop_proofs(&headers);
    let (grant, body) = state
        .server
        .token(
            &context,
            request.authorization.as_deref(),
            &proofs,
            &request.form,
        )
        .await?;
    count_issued(grant);
    let mut response = token_response(&body)?;
    if !proofs.is_empty() {
        dpop_nonce(&state, context.now, &mut response)?;
    }
    Ok(response)
}

/// Every `DPoP` header value of a request (RFC 9449 §4.1); the core refuses more
/// than one.
pub fn dpop_proofs(headers: &HeaderMap) -> Vec<&[u8]> {
    headers
        .get_all(&DPOP)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect()
}

/// RFC 9449 §8.2: with nonces required, every answer to a DPoP request carries the
/// nonce for the next proof.
pub fn dpop_nonce(state: &AppState, now: i64, response: &mut Response) -> Result<(), ApiError> {
    if state.server.dpop_nonces_required() {
        let nonce = state.server.dpop_nonce(now)?;
        if let Ok(value) = HeaderValue::from_str(&nonce) {
            response.headers_mut().insert(DPOP_NONCE.clone(), value);
        }
    }
    Ok(())
}

/// The request header that carries a DPoP proof (RFC 9449 §4.1).
static DPOP: HeaderName = HeaderName::from_static("dpop");

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
