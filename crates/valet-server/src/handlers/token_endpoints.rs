//! The token (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009)
//! endpoints: all client-authenticated form POSTs.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use valet_core::Caller;

use crate::AppState;
use crate::client_address::ClientAddress;
use crate::extract::OAuthForm;
use crate::response::{ApiError, no_store};

pub async fn token(
    State(state): State<Arc<AppState>>,
    ClientAddress(address): ClientAddress,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let (grant, body) = state
        .server
        .token(caller(&request, address), &request.form)
        .await?;
    metrics::counter!("valet_tokens_issued_total", "grant" => grant.as_str()).increment(1);
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    Ok(response)
}

pub async fn introspect(
    State(state): State<Arc<AppState>>,
    ClientAddress(address): ClientAddress,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let body = state
        .server
        .introspect(caller(&request, address), &request.form)
        .await?;
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    Ok(response)
}

/// RFC 7009 §2.2: success is 200 with an empty body.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    ClientAddress(address): ClientAddress,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    state
        .server
        .revoke(caller(&request, address), &request.form)
        .await?;
    let mut response = ().into_response();
    no_store(&mut response);
    Ok(response)
}

fn caller(request: &OAuthForm, address: Option<std::net::IpAddr>) -> Caller<'_> {
    Caller {
        authorization: request.authorization.as_deref(),
        address,
    }
}
