//! The account page: `GET /account` shows it (or starts the sign-in to it),
//! `POST /account` applies one of its forms.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::RequestContext;
use valet_core::account::{self, AccountPage, Changed};
use valet_core::authn::{self, Cookies};
use valet_core::authorize::PageError;
use valet_core::endpoint::metadata::paths;
use valet_core::mfa::Enrolment;
use valet_core::session;
use valet_core::store::Session;

use crate::AppState;
use crate::context::Context;
use crate::cookies;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::handlers::authorize::{cookie_names, outcome_response, qr_data_uri};
use crate::pages::render;
use crate::response::no_store;

/// What a page shows besides the account: the outcome of a form.
#[derive(Default)]
struct Note {
    notice: Option<&'static str>,
    error: Option<String>,
    recovery_codes: Vec<String>,
    enrolment: Option<Enrolment>,
    /// An upstream identity waits in this browser to be linked.
    pending_upstream_link: bool,
}

pub async fn account_get(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let cookie = cookies::read(&headers, names.session());
    let Some(session) = live_session(&state, cookie.as_deref(), &context).await? else {
        let csrf = cookies::read(&headers, names.csrf());
        let cookies = Cookies {
            session: None,
            csrf: csrf.as_deref(),
        };
        let store = state.server.store();
        state
            .server
            .upstreams()
            .refresh_names(store, context.now)
            .await?;
        let outcome = authn::sign_in_to_account(&state.server, cookies, &context).await?;
        return outcome_response(&state, outcome);
    };
    let cookie = cookie.unwrap_or_default();
    let note = Note {
        pending_upstream_link: cookies::read(&headers, names.upstream_link()).is_some(),
        ..Note::default()
    };
    page_response(&state, &session, &cookie, &context, StatusCode::OK, note).await
}

pub async fn account_post(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let cookie = cookies::read(&headers, names.session());
    let Some(session) = live_session(&state, cookie.as_deref(), &context).await? else {
        // Not signed in: nothing changes; the page's sign-in starts over.
        return see_other(&format!(
            "{}{}",
            state.server.settings().issuer,
            paths::ACCOUNT
        ));
    };
    let cookie = cookie.unwrap_or_default();
    let form = &request.form;
    if !account::form_token_matches(&cookie, form.optional("csrf").ok().flatten()) {
        tracing::warn!("account form rejected: CSRF value missing or not this session's");
        return Err(ApiError::Page(PageError {
            status: 403,
            title: "Form expired",
            message: "This form could not be verified. Open your account page again.".to_owned(),
        }));
    }
    let changed = account::change(&state.server, &session, form, &context).await?;
    if let Changed::NewSession(new, notice) = changed {
        let note = Note {
            notice: Some(notice),
            ..Note::default()
        };
        let mut response = page_response(
            &state,
            &new.session,
            &new.cookie_value,
            &context,
            StatusCode::OK,
            note,
        )
        .await?;
        let max_age = new.session.expires_at.saturating_sub(context.now);
        names.set(&mut response, names.session(), &new.cookie_value, max_age);
        return Ok(response);
    }
    let (status, note) = note_of(changed);
    page_response(&state, &session, &cookie, &context, status, note).await
}

/// The page's status and words for a change that kept the session.
fn note_of(changed: Changed) -> (StatusCode, Note) {
    match changed {
        Changed::Done(notice) => (
            StatusCode::OK,
            Note {
                notice: Some(notice),
                ..Note::default()
            },
        ),
        Changed::RecoveryCodes(codes) => (
            StatusCode::OK,
            Note {
                notice: Some("New recovery codes were made; the old ones no longer work."),
                recovery_codes: codes,
                ..Note::default()
            },
        ),
        Changed::Enrolling(enrolment, retry) => {
            let (status, error) = retry.map_or((StatusCode::OK, None), |(status, error)| {
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                    Some(error),
                )
            });
            (
                status,
                Note {
                    error,
                    enrolment: Some(enrolment),
                    ..Note::default()
                },
            )
        }
        Changed::Refused(status, error) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            Note {
                error: Some(error),
                ..Note::default()
            },
        ),
        Changed::NewSession(_, notice) => (
            StatusCode::OK,
            Note {
                notice: Some(notice),
                ..Note::default()
            },
        ),
    }
}

async fn live_session(
    state: &AppState,
    cookie: Option<&str>,
    context: &RequestContext,
) -> Result<Option<Session>, ApiError> {
    Ok(session::lookup(state.server.store(), cookie, context.now).await?)
}

async fn page_response(
    state: &AppState,
    session: &Session,
    cookie: &str,
    context: &RequestContext,
    status: StatusCode,
    note: Note,
) -> Result<Response, ApiError> {
    let Some(page) = account::page(&state.server, session, cookie, context.now).await? else {
        return see_other(&format!(
            "{}{}",
            state.server.settings().issuer,
            paths::ACCOUNT
        ));
    };
    let AccountPage {
        username,
        email,
        email_verified,
        name,
        totp,
        recovery_codes_left,
        passkeys,
        mail,
        signed_in_at,
        amr,
        sessions,
        consents,
        csrf,
    } = page;
    let sessions: Vec<_> = sessions
        .into_iter()
        .map(|s| minijinja::context! { sid => s.sid, signed_in => s.signed_in, amr => s.amr, current => s.current })
        .collect();
    let consents: Vec<_> = consents
        .into_iter()
        .map(|c| minijinja::context! { client_id => c.client_id, client_name => c.client_name, scopes => c.scopes })
        .collect();
    let enrolment = match &note.enrolment {
        Some(enrolment) => Some(minijinja::context! {
            qr => qr_data_uri(&enrolment.otpauth_uri).ok_or(ApiError::Rendering)?,
            secret => &enrolment.secret_base32,
            otpauth_uri => &enrolment.otpauth_uri,
            recovery_codes => &enrolment.recovery_codes,
        }),
        None => None,
    };
    render(
        status,
        "account.html",
        minijinja::context! {
            action => format!("{}{}", state.server.settings().issuer, paths::ACCOUNT),
            logout => format!("{}{}", state.server.settings().issuer, paths::LOGOUT),
            passkeys_page => format!("{}{}", state.server.settings().issuer, paths::ACCOUNT_PASSKEYS),
            username, email, email_verified, name, totp, recovery_codes_left,
            passkeys, mail, signed_in_at, amr, sessions, consents, csrf,
            notice => note.notice,
            error => note.error,
            recovery_codes => note.recovery_codes,
            enrolment,
            upstreams_page => format!("{}{}", state.server.settings().issuer, valet_core::upstream::paths::ACCOUNT_UPSTREAMS),
            pending_upstream_link => note.pending_upstream_link,
        },
    )
    .ok_or(ApiError::Rendering)
}

/// 303 to `location` (a GET of the page).
fn see_other(location: &str) -> Result<Response, ApiError> {
    let mut reply = StatusCode::SEE_OTHER.into_response();
    let value = HeaderValue::from_str(location).map_err(|_| ApiError::Rendering)?;
    reply.headers_mut().insert(LOCATION, value);
    no_store(&mut reply);
    Ok(reply)
}
