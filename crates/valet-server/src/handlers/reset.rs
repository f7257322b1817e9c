//! Password reset pages: ask for a link (`/reset`), and set a new password
//! with it (`/reset/confirm`). Each form carries the browser's CSRF value, as
//! the sign-in and logout forms do.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use valet_core::OAuthError;
use valet_core::authorize::PageError;
use valet_core::endpoint::metadata::paths;
use valet_core::mail::reset::{ResetRefusal, ResetRequestRefusal, csrf_matches};
use valet_core::users::MIN_PASSWORD_CHARS;
use valet_protocol::Form;

use super::authorize::cookie_names;
use crate::AppState;
use crate::context::Context;
use crate::cookies;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::pages::render;
use crate::response::retry_after;

/// How long the CSRF cookie of these pages lives.
const CSRF_TTL: i64 = 3600;

pub async fn reset_get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    enabled(&state)?;
    request_page(&state, &headers, StatusCode::OK, None)
}

pub async fn reset_post(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let form = &request.form;
    let login = field(form, "login");
    let outcome = state
        .server
        .request_password_reset(&context, login, csrf_ok(&state, &headers, form))
        .await?;
    match outcome {
        Ok(()) => {
            let minutes = state.server.settings().password_reset_ttl / 60;
            render(
                StatusCode::OK,
                "reset_sent.html",
                minijinja::context! { minutes => minutes },
            )
            .ok_or(ApiError::Rendering)
        }
        Err(ResetRequestRefusal::Disabled) => Err(disabled()),
        Err(ResetRequestRefusal::BadForm(message)) => {
            request_page(&state, &headers, StatusCode::BAD_REQUEST, Some(message))
        }
        Err(ResetRequestRefusal::Throttled {
            retry_after_seconds,
        }) => {
            let message = try_again_message(
                "Too many requests for this account or from your network.",
                retry_after_seconds,
            );
            let mut response = request_page(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&message),
            )?;
            retry_after(&mut response, retry_after_seconds);
            Ok(response)
        }
    }
}

pub async fn reset_confirm_get(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: Request,
) -> Result<Response, ApiError> {
    enabled(&state)?;
    let query = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
    let token = field(&query, "token");
    if !state
        .server
        .password_reset_link_is_live(token, context.now)
        .await?
    {
        return Err(invalid_link());
    }
    confirm_page(&state, request.headers(), token, StatusCode::OK, None)
}

pub async fn reset_confirm_post(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let form = &request.form;
    let token = field(form, "token");
    let outcome = state
        .server
        .reset_password(
            &context,
            token,
            field(form, "password"),
            field(form, "confirmation"),
            csrf_ok(&state, &headers, form),
        )
        .await?;
    let again =
        |status, message: &str| confirm_page(&state, &headers, token, status, Some(message));
    match outcome {
        Ok(()) => render(StatusCode::OK, "reset_done.html", minijinja::context! {})
            .ok_or(ApiError::Rendering),
        Err(ResetRefusal::Disabled) => Err(disabled()),
        Err(ResetRefusal::InvalidLink) => Err(invalid_link()),
        Err(ResetRefusal::BadForm(message)) => again(StatusCode::BAD_REQUEST, message),
        Err(ResetRefusal::Mismatch) => again(StatusCode::BAD_REQUEST, "The two passwords differ."),
        Err(ResetRefusal::Weak(weak)) => {
            let message = capitalized(&weak.to_string());
            again(StatusCode::BAD_REQUEST, &message)
        }
        Err(ResetRefusal::Busy {
            retry_after_seconds,
        }) => {
            let mut response = again(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many people are signing in right now. Wait a few seconds and try again.",
            )?;
            retry_after(&mut response, retry_after_seconds);
            Ok(response)
        }
    }
}

fn request_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, ApiError> {
    csrf_form_page(
        state,
        headers,
        status,
        ("reset_request.html", paths::RESET),
        minijinja::context! { error => error },
    )
}

fn confirm_page(
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
        ("reset_confirm.html", paths::RESET_CONFIRM),
        minijinja::context! { token => token, min_chars => MIN_PASSWORD_CHARS, error => error },
    )
}

/// The browser's CSRF value if it has one, else a new one (kept, so a sign-in
/// form open in another tab stays valid).
fn csrf_value(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let names = cookie_names(state);
    match cookies::read(headers, names.csrf()).filter(|c| c.len() == 43) {
        Some(csrf) => Ok(csrf),
        None => valet_jose::random_bytes::<32>()
            .map(valet_jose::b64url)
            .map_err(|e| ApiError::OAuth(OAuthError::server(e))),
    }
}

/// A self-service form page: `template` rendered with `context` and the
/// browser's CSRF value (field and cookie), whose form posts to `path`.
pub(super) fn csrf_form_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    (template, path): (&str, &str),
    context: minijinja::Value,
) -> Result<Response, ApiError> {
    let csrf = csrf_value(state, headers)?;
    let issuer = &state.server.settings().issuer;
    let mut response = render(
        status,
        template,
        minijinja::context! { action => format!("{issuer}{path}"), csrf => &csrf, ..context },
    )
    .ok_or(ApiError::Rendering)?;
    set_csrf(state, &mut response, &csrf);
    Ok(response)
}

/// "Try again in N minute(s)." after `why`, for a throttled form.
pub(super) fn try_again_message(why: &str, retry_after_seconds: i64) -> String {
    let minutes = (retry_after_seconds + 59) / 60;
    let plural = if minutes == 1 { "" } else { "s" };
    format!("{why} Try again in {minutes} minute{plural}.")
}

/// Gives the browser its CSRF value (a cookie the form's field must match).
fn set_csrf(state: &AppState, response: &mut Response, csrf: &str) {
    let names = cookie_names(state);
    names.set(response, names.csrf(), csrf, CSRF_TTL);
}

pub(super) fn csrf_ok(state: &AppState, headers: &HeaderMap, form: &Form) -> bool {
    let names = cookie_names(state);
    let cookie = cookies::read(headers, names.csrf());
    csrf_matches(cookie.as_deref(), form.optional("csrf").ok().flatten())
}

pub(super) fn field<'f>(form: &'f Form, name: &'static str) -> &'f str {
    form.optional(name).ok().flatten().unwrap_or_default()
}

fn enabled(state: &AppState) -> Result<(), ApiError> {
    if state.server.settings().password_reset {
        Ok(())
    } else {
        Err(disabled())
    }
}

fn disabled() -> ApiError {
    ApiError::NotFound
}

pub(super) fn invalid_link() -> ApiError {
    ApiError::Page(PageError {
        status: 400,
        title: "Link invalid or expired",
        message: "This link is invalid, expired or already used. Ask for a new one.".to_owned(),
    })
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}
