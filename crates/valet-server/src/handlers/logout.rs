//! RP-initiated logout (`end_session_endpoint`), GET and POST.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::RequestContext;
use valet_core::endpoint::end_session::{LogoutOutcome, end_session};
use valet_core::endpoint::metadata::paths;
use valet_protocol::Form;

use super::authorize::cookie_names;
use crate::AppState;
use crate::context::Context;
use crate::cookies;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::pages::render;
use crate::response::no_store;

pub async fn logout_get(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: Request,
) -> Result<Response, ApiError> {
    let form = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
    logout_with(&state, &context, request.headers(), &form, false).await
}

pub async fn logout_post(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let confirmed = request.form.optional("confirm").ok().flatten() == Some("yes");
    logout_with(&state, &context, &headers, &request.form, confirmed).await
}

async fn logout_with(
    state: &AppState,
    context: &RequestContext,
    headers: &HeaderMap,
    form: &Form,
    confirmed: bool,
) -> Result<Response, ApiError> {
    let names = cookie_names(state);
    let session = cookies::read(headers, names.session());
    let existing_csrf = cookies::read(headers, names.csrf());
    let server = &state.server;
    let outcome = end_session(
        server,
        form,
        session.as_deref(),
        existing_csrf.as_deref(),
        confirmed,
        context,
    )
    .await?;
    Ok(match outcome {
        LogoutOutcome::ErrorPage(error) => return Err(ApiError::Page(error)),
        LogoutOutcome::Confirm {
            client_name,
            id_token_hint,
            client_id,
            post_logout_redirect_uri,
            state: logout_state,
        } => {
            let csrf = match existing_csrf.filter(|c| c.len() == 43) {
                Some(csrf) => csrf,
                None => valet_jose::random_bytes::<32>()
                    .map(valet_jose::b64url)
                    .map_err(|e| ApiError::OAuth(valet_core::OAuthError::server(e)))?,
            };
            let mut response = render(
                StatusCode::OK,
                "logout.html",
                minijinja::context! {
                    action => format!("{}{}", server.settings().issuer, paths::LOGOUT),
                    csrf => &csrf,
                    client_name => client_name,
                    id_token_hint => id_token_hint,
                    client_id => client_id,
                    post_logout_redirect_uri => post_logout_redirect_uri,
                    state => logout_state,
                },
            )
            .ok_or(ApiError::Rendering)?;
            names.set(
                &mut response,
                names.csrf(),
                &csrf,
                server.settings().interaction_ttl,
            );
            response
        }
        LogoutOutcome::Done { redirect } => {
            let mut response = match redirect.and_then(|uri| HeaderValue::from_str(&uri).ok()) {
                Some(location) => {
                    let mut response = StatusCode::SEE_OTHER.into_response();
                    response.headers_mut().insert(LOCATION, location);
                    no_store(&mut response);
                    response
                }
                None => render(StatusCode::OK, "logged_out.html", minijinja::context! {})
                    .ok_or(ApiError::Rendering)?,
            };
            names.clear(&mut response, names.session());
            response
        }
    })
}
