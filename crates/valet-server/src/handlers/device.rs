//! The device authorization grant's endpoints (RFC 8628): the device asks at
//! `/device_authorization` (client-authenticated, like `/token`), the user
//! enters the code at `/device`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use valet_core::OAuthError;
use valet_core::authn;
use valet_protocol::Form;

use super::authorize::{BrowserCookies, cookie_names, outcome_response};
use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::response::json_bytes;

/// RFC 8628 §3.2: JSON, never cached (it carries the device code).
pub async fn device_authorization(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let body = state
        .server
        .device_authorization(&context, request.authorization.as_deref(), &request.form)
        .await?;
    let json = serde_json::to_vec(&body).map_err(OAuthError::server)?;
    Ok(json_bytes(json, HeaderValue::from_static("no-store")))
}

/// GET: the form to enter the user code (prefilled from `?user_code=`).
pub async fn device_get(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    let form = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
    let names = cookie_names(&state);
    let browser = BrowserCookies::read(request.headers(), &names);
    let cookies = browser.cookies();
    let outcome = authn::device_page(&form, cookies).await?;
    outcome_response(&state, outcome)
}

/// POST: the user code was entered; the sign-in steps follow.
pub async fn device_post(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let browser = BrowserCookies::read(&headers, &names);
    let cookies = browser.cookies();
    let outcome =
        authn::submit_device_code(&state.server, &request.form, cookies, &context).await?;
    outcome_response(&state, outcome)
}
