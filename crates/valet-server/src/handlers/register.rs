//! Self-registration (`/register`), with `registration = "open"`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use valet_core::authorize::PageError;
use valet_core::config::Registration;
use valet_core::endpoint::metadata::paths;
use valet_core::register::{RegisterRefusal, RegistrationForm};
use valet_core::users::MIN_PASSWORD_CHARS;
use valet_protocol::Form;

use super::reset::{csrf_form_page, csrf_ok, field, try_again_message};
use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::pages::render;
use crate::response::retry_after;

pub async fn register_get(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: Request,
) -> Result<Response, ApiError> {
    let query = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
    let invite = field(&query, "invite");
    let headers = request.headers();
    match state.server.settings().registration {
        Registration::Closed => Err(ApiError::NotFound),
        Registration::Open => page(&state, headers, StatusCode::OK, ("", "", ""), None),
        Registration::Invite => match state.server.invitation(invite, context.now).await? {
            Some(email) => page(&state, headers, StatusCode::OK, ("", &email, invite), None),
            None => Err(invalid_invite()),
        },
    }
}

fn invalid_invite() -> ApiError {
    ApiError::Page(PageError {
        status: 400,
        title: "Invitation needed",
        message: "Accounts are by invitation here, and this invitation is invalid, expired or already used.".to_owned(),
    })
}

pub async fn register_post(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let form = &request.form;
    let typed = RegistrationForm {
        username: field(form, "username"),
        email: field(form, "email"),
        password: field(form, "password"),
        confirmation: field(form, "confirmation"),
        invite: field(form, "invite"),
    };
    let outcome = state
        .server
        .register(&context, &typed, csrf_ok(&state, &headers, form))
        .await?;
    let kept = (typed.username, typed.email, typed.invite);
    match outcome {
        Ok(()) => render(StatusCode::OK, "registered.html", minijinja::context! {})
            .ok_or(ApiError::Rendering),
        Err(RegisterRefusal::Disabled) => Err(ApiError::NotFound),
        Err(RegisterRefusal::InvalidInvite) => Err(invalid_invite()),
        Err(RegisterRefusal::BadForm(message)) => page(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            kept,
            Some(&message),
        ),
        Err(RegisterRefusal::UsernameTaken) => page(
            &state,
            &headers,
            StatusCode::CONFLICT,
            ("", typed.email, typed.invite),
            Some("This username is taken. Choose another."),
        ),
        Err(RegisterRefusal::Throttled {
            retry_after_seconds,
        }) => {
            let message =
                try_again_message("Too many attempts from your network.", retry_after_seconds);
            let mut response = page(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                kept,
                Some(&message),
            )?;
            retry_after(&mut response, retry_after_seconds);
            Ok(response)
        }
        Err(RegisterRefusal::Busy {
            retry_after_seconds,
        }) => {
            let mut response = page(
                &state,
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                kept,
                Some("Too many people are signing in right now. Wait a few seconds and try again."),
            )?;
            retry_after(&mut response, retry_after_seconds);
            Ok(response)
        }
    }
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    (username, email, invite): (&str, &str, &str),
    error: Option<&str>,
) -> Result<Response, ApiError> {
    csrf_form_page(
        state,
        headers,
        status,
        ("register.html", paths::REGISTER),
        minijinja::context! {
            username => username,
            email => email,
            invite => invite,
            min_chars => MIN_PASSWORD_CHARS,
            error => error,
        },
    )
}
