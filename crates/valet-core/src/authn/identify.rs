//! The identify step: which request, from which client. A new request at
//! `/authorize` is checked in two stages: first the client and its redirect URI
//! (until both are trusted, an error is a page and nothing is redirected, RFC
//! 6749 §4.1.2.1), then the rest of the request (errors from here go back to
//! the client). A later form (login, consent) names its interaction, which is
//! opened, checked against the browser's CSRF value and tied to its client again.

use std::sync::Arc;

use valet_protocol::authorize::{
    AuthorizationParameters, ClientAndRedirect, response_mode_of, state_of,
};
use valet_protocol::{ErrorCode, Form};

use super::pending::{self, PendingAuthorization, Stage, Whereabouts};
use crate::AuthorizationServer;
use crate::authorize::{AuthorizationResponse, AuthorizeOutcome, PageError, request_object};
use crate::error::OAuthError;
use crate::mfa;
use crate::policy::authorization_request;
use crate::policy::redirect_uri::{self, VerifiedRedirectUri};
use crate::store::Client;

/// A request whose client and redirect URI are trusted and whose parameters
/// the client may ask for: ready for the steps.
pub(crate) struct Identified {
    pub client: Arc<Client>,
    pub request: PendingAuthorization,
    /// The browser's CSRF value (its own, or a fresh one), bound to the request.
    pub csrf: String,
    /// The request's `ui_locales` (OIDC Core §3.1.2.1), from the request
    /// object when there is one: its parameters are the request's (RFC 9101 §6.3).
    pub ui_locales: Option<String>,
}

/// A form's interaction, opened: where it lives, the request, its client.
pub(crate) struct Resumed {
    pub at: Whereabouts,
    pub request: PendingAuthorization,
    pub client: Arc<Client>,
}

/// RFC 6749 §4.1.1: checks a new authorization request. `Err` is what the
/// browser sees instead: an error page, or an error sent back to the client.
/// `pushed`: the request came through `/par` (RFC 9126), which the client
/// or the server may require (§5: otherwise refused, as `invalid_request`).
pub(crate) async fn request(
    server: &AuthorizationServer,
    form: &Form,
    pushed: bool,
    csrf_cookie: Option<&str>,
    now: i64,
) -> Result<Result<Identified, AuthorizeOutcome>, OAuthError> {
    // RFC 9101: a request object's parameters replace the query's.
    let opened;
    let form = match form.optional("request") {
        Ok(Some(request)) => match open_request_object(server, form, request, now).await? {
            Ok(inner) => {
                opened = inner;
                &opened
            }
            Err(page) => return Ok(Err(AuthorizeOutcome::ErrorPage(page))),
        },
        _ => form,
    };
    let (client, redirect) = match trusted_client(server, form, now).await? {
        Ok(trusted) => trusted,
        Err(page) => return Ok(Err(AuthorizeOutcome::ErrorPage(page))),
    };
    if !pushed
        && (server.settings.require_pushed_authorization_requests
            || client.require_pushed_authorization_requests)
    {
        return Ok(Err(refuse(
            server,
            form,
            &redirect,
            ErrorCode::InvalidRequest,
            "authorization requests must be pushed to the pushed authorization request endpoint first (RFC 9126)",
        )));
    }
    let params = match AuthorizationParameters::from_form(form) {
        Ok(params) => params,
        Err(error) => {
            return Ok(Err(refuse(
                server,
                form,
                &redirect,
                error.code,
                &error.description,
            )));
        }
    };
    let scope = match authorization_request::permitted(&client, &params) {
        Ok(scope) => scope,
        Err((code, description)) => {
            return Ok(Err(refuse(server, form, &redirect, code, description)));
        }
    };
    let csrf = match csrf_cookie.filter(|c| c.len() == 43) {
        Some(existing) => existing.to_owned(),
        None => pending::new_csrf()?,
    };
    let request = PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri: redirect.as_str().to_owned(),
        redirect_uri_given: redirect.was_given(),
        scope,
        state: params.state,
        nonce: params.nonce,
        code_challenge: params.code_challenge,
        response_mode: params.response_mode,
        prompt: params.prompt,
        max_age: params.max_age,
        login_hint: params.login_hint,
        resources: params.resources,
        mfa_requested: params.acr_values.iter().any(|v| v == mfa::ACR_MFA),
        dpop_jkt: params.dpop_jkt,
        csrf_hash: pending::csrf_hash(&csrf),
        stage: Stage::AwaitingLogin,
        device: None,
    };
    Ok(Ok(Identified {
        client,
        request,
        csrf,
        ui_locales: ui_locales_of(form),
    }))
}

/// The request's `ui_locales`, if it has exactly one.
pub(crate) fn ui_locales_of(form: &Form) -> Option<String> {
    form.optional("ui_locales")
        .ok()
        .flatten()
        .map(str::to_owned)
}

/// The parameters of the request object `request` (see
/// [`request_object`]), or the page that says why it was refused: the redirect
/// URI inside is not trusted until the object verifies, so nothing is
/// redirected (RFC 6749 §4.1.2.1).
async fn open_request_object(
    server: &AuthorizationServer,
    form: &Form,
    request: &str,
    now: i64,
) -> Result<Result<Form, PageError>, OAuthError> {
    // RFC 9101 §5: client_id is sent outside the object too.
    let Ok(client_id) = form.required("client_id") else {
        return Ok(Err(PageError::new(
            400,
            "Invalid request",
            "The request has a request object but no single client_id. Go back to the app and try again.",
        )));
    };
    let Some(client) = server
        .authenticator
        .clients()
        .get(server.store.as_ref(), client_id, now)
        .await?
    else {
        return Ok(Err(PageError::new(
            400,
            "Unknown application",
            "The application that sent you here is not registered.",
        )));
    };
    match request_object::open(server, &client, request, now).await {
        Ok(inner) => Ok(Ok(inner)),
        Err(error) if error.code() == ErrorCode::InvalidRequestObject => {
            tracing::debug!(client_id, reason = ?error.description(), "request object refused");
            Ok(Err(PageError::new(
                400,
                "Invalid request object",
                format!(
                    "The application's signed request was refused ({}). Go back to the app and try again.",
                    error.description().unwrap_or("invalid_request_object")
                ),
            )))
        }
        Err(error) => Err(error),
    }
}

/// The client and the redirect URI, or the page that says which is wrong.
async fn trusted_client(
    server: &AuthorizationServer,
    form: &Form,
    now: i64,
) -> Result<Result<(Arc<Client>, VerifiedRedirectUri), PageError>, OAuthError> {
    let Ok(identity) = ClientAndRedirect::from_form(form) else {
        return Ok(Err(PageError::new(
            400,
            "Invalid request",
            "The request has no single client_id. Go back to the app and try again.",
        )));
    };
    let Some(client) = server
        .authenticator
        .clients()
        .get(server.store.as_ref(), &identity.client_id, now)
        .await?
    else {
        return Ok(Err(PageError::new(
            400,
            "Unknown application",
            "The application that sent you here is not registered.",
        )));
    };
    let Some(redirect) = redirect_uri::verify(&client, identity.redirect_uri.as_deref()) else {
        return Ok(Err(PageError::new(
            400,
            "Invalid redirect",
            "The redirect_uri of this request is not registered for the application, so you are not sent back to it.",
        )));
    };
    Ok(Ok((client, redirect)))
}

/// An error for a trusted redirect URI: sent back with `state` and `iss`.
fn refuse(
    server: &AuthorizationServer,
    form: &Form,
    redirect: &VerifiedRedirectUri,
    code: ErrorCode,
    description: &str,
) -> AuthorizeOutcome {
    AuthorizeOutcome::Redirect(AuthorizationResponse::error(
        redirect.as_str(),
        response_mode_of(form),
        code,
        description,
        state_of(form).as_deref(),
        &server.settings.issuer,
    ))
}

/// Opens the interaction a login or consent form names. `Err` is the page the
/// browser sees: expired (unknown, expired, or a carried request already
/// completed), a CSRF value not bound to this browser, or a client deleted since.
pub(crate) async fn resume(
    server: &AuthorizationServer,
    form: &Form,
    csrf_cookie: Option<&str>,
    now: i64,
) -> Result<Result<Resumed, PageError>, OAuthError> {
    let Some((at, request)) = open(server, form, now).await? else {
        return Ok(Err(PageError::expired()));
    };
    let csrf_form = form.optional("csrf").ok().flatten();
    if !request.csrf_matches(csrf_cookie, csrf_form) {
        tracing::warn!("form rejected: CSRF value missing or not bound to this browser");
        return Ok(Err(PageError::new(
            403,
            "Form expired",
            "This form could not be verified. Go back to the app and start again.",
        )));
    }
    let client = if super::account::is_account(&request.client_id) {
        Some(super::account::client(server))
    } else {
        server
            .authenticator
            .clients()
            .get(server.store.as_ref(), &request.client_id, now)
            .await?
    };
    let Some(client) = client else {
        return Ok(Err(PageError::new(
            400,
            "Unknown application",
            "The application is no longer registered.",
        )));
    };
    Ok(Ok(Resumed {
        at,
        request,
        client,
    }))
}

/// The form's carried or stored request, if it is still open.
async fn open(
    server: &AuthorizationServer,
    form: &Form,
    now: i64,
) -> Result<Option<(Whereabouts, PendingAuthorization)>, OAuthError> {
    let Ok(Some(value)) = form.optional("interaction") else {
        return Ok(None);
    };
    let store = server.store.as_ref();
    if !pending::is_carried(value) {
        let request = pending::load(store, value, now).await?;
        return Ok(request.map(|request| (Whereabouts::Stored(value.to_owned()), request)));
    }
    let Some(request) = pending::open_carried(&server.request_keys, value, now) else {
        return Ok(None);
    };
    // Stored already: its login form was completed.
    if pending::was_stored(store, value, now).await? {
        return Ok(None);
    }
    Ok(Some((Whereabouts::Carried(value.to_owned()), request)))
}
