//! The email verification page (`/verify-email`): the link from the mail opens
//! a confirm button; pressing it marks the address verified.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use valet_core::endpoint::metadata::paths;
use valet_core::mail::verify::VerifyRefusal;
use valet_protocol::Form;

use super::reset::{csrf_form_page, csrf_ok, field, invalid_link};
use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::pages::render;

pub async fn verify_email_get(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: Request,
) -> Result<Response, ApiError> {
    let query = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
    let token = field(&query, "token");
    if !state
        .server
        .email_verification_link_is_live(token, context.now)
        .await?
    {
        return Err(invalid_link());
    }
    page(&state, request.headers(), token, StatusCode::OK, None)
}

pub async fn verify_email_post(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let form = &request.form;
    let token = field(form, "token");
    let outcome = state
        .server
        .verify_email(&context, token, csrf_ok(&state, &headers, form))
        .await?;
    match outcome {
        Ok(()) => render(
            StatusCode::OK,
            "email_verified.html",
            minijinja::context! {},
        )
        .ok_or(ApiError::Rendering),
        Err(VerifyRefusal::Disabled) => Err(ApiError::NotFound),
        Err(VerifyRefusal::InvalidLink) => Err(invalid_link()),
        Err(VerifyRefusal::BadForm(message)) => page(
            &state,
            &headers,
            token,
            StatusCode::BAD_REQUEST,
            Some(message),
        ),
    }
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, ApiError> {
    csrf_form_page(
        state,
        headers,
        status,
        ("verify_email.html", paths::VERIFY_EMAIL),
        minijinja::context! { token => token, error => error },
    )
}
