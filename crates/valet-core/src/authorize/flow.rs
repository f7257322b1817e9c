//! The steps of the authorization flow: the request, the login form, the consent
//! form. Each returns what the browser should see next.

use std::net::IpAddr;

use valet_jose::{b64url, random_bytes, sha256};
use valet_protocol::authorize::{
    AuthorizationParameters, ClientAndRedirect, response_mode_of, state_of,
};
use valet_protocol::token::GrantType;
use valet_protocol::{ErrorCode, Form};

use super::pending::{self, PendingAuthorization, Stage};
use super::response::AuthorizationResponse;
use super::{OIDC_SCOPES, describe_scope};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::config::CODE_TTL;
use crate::error::OAuthError;
use crate::policy::redirect_uri;
use crate::secrets::random_id;
use crate::session::{self, NewSession};
use crate::store::{AuthorizationCode, Client, Grant, Session};
use crate::throttle::Throttled;
use crate::users::{self, LoginFailure};

/// What the browser gets next.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// The client or redirect URI cannot be trusted: tell the user, redirect nowhere.
    ErrorPage(PageError),
    /// Back to the client.
    Redirect(AuthorizationResponse),
    Login(LoginPage),
    Consent(ConsentPage),
}

#[derive(Debug, Clone)]
pub struct PageError {
    pub status: u16,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    fn new(status: u16, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
        }
    }
}

#[derive(Clone)]
pub struct LoginPage {
    pub status: u16,
    pub interaction_id: String,
    pub client_name: String,
    pub login: Option<String>,
    pub error: Option<String>,
    /// The browser's CSRF value: set as a cookie and embedded in the form.
    pub csrf: String,
    /// Seconds to wait, when the attempt was throttled (sent as `Retry-After`).
    pub retry_after: Option<i64>,
}

#[derive(Clone)]
pub struct ConsentPage {
    pub interaction_id: String,
    pub client_name: String,
    pub username: String,
    /// (scope, plain-words description)
    pub scopes: Vec<(String, String)>,
    pub csrf: String,
}

/// The CSRF value is not printed.
impl std::fmt::Debug for LoginPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginPage")
            .field("status", &self.status)
            .field("client_name", &self.client_name)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The CSRF value is not printed.
impl std::fmt::Debug for ConsentPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentPage")
            .field("client_name", &self.client_name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// RFC 6749 §4.1.1: the authorization request, from the query (GET) or form (POST).
pub async fn authorize(
    server: &AuthorizationServer,
    form: &Form,
    session_cookie: Option<&str>,
    csrf_cookie: Option<&str>,
    now: i64,
) -> Result<AuthorizeOutcome, OAuthError> {
    // Until client and redirect URI are verified, nothing is redirected (RFC 6749 §4.1.2.1).
    let Ok(identity) = ClientAndRedirect::from_form(form) else {
        return Ok(page(
            400,
            "Invalid request",
            "The request has no single client_id. Go back to the app and try again.",
        ));
    };
    let Some(client) = server
        .authenticator
        .clients()
        .get(server.store.as_ref(), &identity.client_id, now)
        .await?
    else {
        return Ok(page(
            400,
            "Unknown application",
            "The application that sent you here is not registered.",
        ));
    };
    let Some(redirect) = redirect_uri::verify(&client, identity.redirect_uri.as_deref()) else {
        return Ok(page(
            400,
            "Invalid redirect",
            "The redirect_uri of this request is not registered for the application, so you are not sent back to it.",
        ));
    };
    let issuer = server.settings.issuer.as_str();
    let state = state_of(form);
    let mode = response_mode_of(form);
    let fail = |code: ErrorCode, description: &str| {
        Ok(AuthorizeOutcome::Redirect(AuthorizationResponse::error(
            redirect.as_str(),
            mode,
            code,
            description,
            state.as_deref(),
            issuer,
        )))
    };
    let params = match AuthorizationParameters::from_form(form) {
        Ok(params) => params,
        Err(error) => return fail(error.code, &error.description),
    };
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return fail(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization code flow",
        );
    }
    let scope: Vec<String> = if params.scope.is_empty() {
        client.scopes.clone()
    } else {
        params.scope.iter().map(str::to_owned).collect()
    };
    if let Some(extra) = scope
        .iter()
        .find(|s| !client.scopes.contains(s) && !OIDC_SCOPES.contains(&s.as_str()))
    {
        tracing::debug!(client_id = %client.client_id, scope = %extra, "scope not registered");
        return fail(
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope registered for this client",
        );
    }
    if params
        .resources
        .iter()
        .any(|r| !client.audiences.contains(r))
    {
        return fail(
            ErrorCode::InvalidTarget,
            "the requested resource is not registered for this client",
        );
    }
    let csrf = match csrf_cookie.filter(|c| c.len() == 43) {
        Some(existing) => existing.to_owned(),
        None => pending::new_csrf()?,
    };
    let mut request = PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri: redirect.as_str().to_owned(),
        redirect_uri_given: redirect.was_given(),
        scope,
        state: params.state.clone(),
        nonce: params.nonce.clone(),
        code_challenge: params.code_challenge.clone(),
        response_mode: params.response_mode,
        prompt: params.prompt,
        max_age: params.max_age,
        login_hint: params.login_hint.clone(),
        resources: params.resources.clone(),
        csrf_hash: pending::csrf_hash(&csrf),
        stage: Stage::AwaitingLogin,
    };

    let session = session::lookup(server.store.as_ref(), session_cookie, now).await?;
    let fresh_enough = |s: &Session| {
        params
            .max_age
            .is_none_or(|age| now.saturating_sub(s.auth_time) <= age)
    };
    let session = session.filter(|s| !params.prompt.login && fresh_enough(s));
    let Some(session) = session else {
        if params.prompt.none {
            return fail(ErrorCode::LoginRequired, "the user is not signed in");
        }
        // Nothing is stored for an anonymous request: the login form carries it.
        let interaction_id = pending::carry(
            &server.request_key,
            &request,
            now.saturating_add(server.settings.interaction_ttl),
        )?;
        return Ok(AuthorizeOutcome::Login(LoginPage {
            status: 200,
            interaction_id,
            client_name: client.name.clone(),
            login: params.login_hint,
            error: None,
            retry_after: None,
            csrf,
        }));
    };
    if needs_consent(server, &client, &request, &session.user_id).await? {
        if params.prompt.none {
            return fail(
                ErrorCode::ConsentRequired,
                "the user has not allowed this application",
            );
        }
        request.stage = Stage::AwaitingConsent {
            user_id: session.user_id.clone(),
            sid: session.sid.clone(),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
        };
        let interaction_id = pending::save_new(
            server.store.as_ref(),
            &request,
            server.settings.interaction_ttl,
            now,
        )
        .await?;
        return consent_page(
            server,
            &client,
            &request,
            interaction_id,
            &session.user_id,
            csrf,
        )
        .await;
    }
    let response = issue_code(
        server,
        &client,
        &request,
        &session.user_id,
        Some(&session.sid),
        session.auth_time,
        &session.amr,
        now,
    )
    .await?;
    Ok(AuthorizeOutcome::Redirect(response))
}

/// The login form was submitted. On success a new session is returned for the
/// handler to set as a cookie (a fresh value: no session fixation).
pub async fn submit_login(
    server: &AuthorizationServer,
    form: &Form,
    session_cookie: Option<&str>,
    csrf_cookie: Option<&str>,
    client_address: Option<IpAddr>,
    now: i64,
) -> Result<(AuthorizeOutcome, Option<NewSession>), OAuthError> {
    let (interaction_id, request, client) = match load_step(server, form, csrf_cookie, now).await? {
        Ok(loaded) => loaded,
        Err(error) => return Ok((AuthorizeOutcome::ErrorPage(error), None)),
    };
    if request.stage != Stage::AwaitingLogin {
        return Ok((AuthorizeOutcome::ErrorPage(expired()), None));
    }
    let csrf = csrf_cookie.unwrap_or_default().to_owned();
    let login = form
        .optional("username")
        .ok()
        .flatten()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let password = form.optional("password").ok().flatten().unwrap_or_default();
    let retry = |status: u16, error: String, retry_after: Option<i64>| {
        AuthorizeOutcome::Login(LoginPage {
            status,
            interaction_id: interaction_id.clone(),
            client_name: client.name.clone(),
            login: Some(login.clone()).filter(|l| !l.is_empty()),
            error: Some(error),
            csrf: csrf.clone(),
            retry_after,
        })
    };
    if login.is_empty() || password.is_empty() {
        return Ok((
            retry(
                400,
                "Enter your username or email and your password.".into(),
                None,
            ),
            None,
        ));
    }
    let attempt = match server
        .throttle
        .admit_login(server.store.as_ref(), &login, client_address, now)
        .await
    {
        Ok(attempt) => attempt,
        Err(Throttled {
            retry_after_seconds,
        }) => {
            let minutes = (retry_after_seconds + 59) / 60;
            server.audit(
                AuditEvent::new(AuditKind::LoginThrottled, now)
                    .client(&client.client_id)
                    .address(client_address),
            );
            return Ok((
                // Attempts still being checked count too, so the words must fit
                // a burst of simultaneous correct sign-ins as well as guessing.
                retry(
                    429,
                    format!(
                        "Too many sign-in attempts for this account or from your network. Try again in {minutes} minute{}.",
                        if minutes == 1 { "" } else { "s" }
                    ),
                    Some(retry_after_seconds),
                ),
                None,
            ));
        }
    };
    let user =
        match users::authenticate(server.store.as_ref(), &server.hasher, &login, password).await {
            Ok(user) => user,
            Err(LoginFailure::InvalidCredentials { account }) => {
                let mut event = AuditEvent::new(AuditKind::LoginFailed, now)
                    .client(&client.client_id)
                    .address(client_address);
                event.user_id = account;
                server.audit(event);
                return Ok((
                    retry(401, "Incorrect username or password.".into(), None),
                    None,
                ));
            }
            Err(LoginFailure::Overloaded {
                retry_after_seconds,
            }) => {
                // Not checked, so neither a failure nor a success: the attempt
                // stays counted by the throttle, as any unfinished one does.
                let busy = retry(503, BUSY.into(), Some(retry_after_seconds));
                return Ok((busy, None));
            }
            Err(LoginFailure::Store(error)) => return Err(error.into()),
        };
    server.throttle.succeeded(attempt);
    if let Some(old) = session_cookie {
        server.store.delete_session(&session::hash(old)).await?;
    }
    let new_session = session::create(
        server.store.as_ref(),
        &user.user_id,
        vec!["pwd".into()],
        server.settings.session_ttl,
        now,
    )
    .await?;
    server.audit(
        AuditEvent::new(AuditKind::LoginSucceeded, now)
            .user(&user.user_id)
            .client(&client.client_id)
            .address(client_address)
            .detail("sid", new_session.session.sid.as_str())
            .detail("amr", "pwd"),
    );
    let mut request = request;
    let carried = pending::is_carried(&interaction_id);
    let outcome = if needs_consent(server, &client, &request, &user.user_id).await? {
        let s = &new_session.session;
        request.stage = Stage::AwaitingConsent {
            user_id: user.user_id.clone(),
            sid: s.sid.clone(),
            auth_time: s.auth_time,
            amr: s.amr.clone(),
        };
        let ttl = server.settings.interaction_ttl;
        let stored = if carried {
            // The request's first store write: the user has signed in.
            pending::store_carried(server.store.as_ref(), &interaction_id, &request, ttl, now)
                .await?
        } else {
            pending::update(server.store.as_ref(), &interaction_id, &request, ttl, now)
                .await?
                .then_some(interaction_id)
        };
        let Some(interaction_id) = stored else {
            return Ok((AuthorizeOutcome::ErrorPage(expired()), Some(new_session)));
        };
        consent_page(
            server,
            &client,
            &request,
            interaction_id,
            &user.user_id,
            csrf,
        )
        .await?
    } else {
        let first = if carried {
            // Remembered until it would have expired anyway, so the same login
            // form completes once.
            request.stage = Stage::Completed;
            pending::store_carried(
                server.store.as_ref(),
                &interaction_id,
                &request,
                server.settings.interaction_ttl,
                now,
            )
            .await?
            .is_some()
        } else {
            server.store.delete_interaction(&interaction_id).await?
        };
        if !first {
            return Ok((AuthorizeOutcome::ErrorPage(expired()), Some(new_session)));
        }
        let s = &new_session.session;
        AuthorizeOutcome::Redirect(
            issue_code(
                server,
                &client,
                &request,
                &user.user_id,
                Some(&s.sid),
                s.auth_time,
                &s.amr,
                now,
            )
            .await?,
        )
    };
    Ok((outcome, Some(new_session)))
}

/// The consent form was submitted: Allow issues the code, Deny returns
/// `access_denied` (RFC 6749 §4.1.2.1).
pub async fn submit_consent(
    server: &AuthorizationServer,
    form: &Form,
    session_cookie: Option<&str>,
    csrf_cookie: Option<&str>,
    client_address: Option<IpAddr>,
    now: i64,
) -> Result<AuthorizeOutcome, OAuthError> {
    let (interaction_id, request, client) = match load_step(server, form, csrf_cookie, now).await? {
        Ok(loaded) => loaded,
        Err(error) => return Ok(AuthorizeOutcome::ErrorPage(error)),
    };
    let Stage::AwaitingConsent {
        user_id,
        sid,
        auth_time,
        amr,
    } = &request.stage
    else {
        return Ok(AuthorizeOutcome::ErrorPage(expired()));
    };
    // The consent must come from the browser that signed in.
    let session = session::lookup(server.store.as_ref(), session_cookie, now).await?;
    if session
        .as_ref()
        .is_none_or(|s| &s.sid != sid || &s.user_id != user_id)
    {
        return Ok(AuthorizeOutcome::ErrorPage(PageError::new(
            403,
            "Session changed",
            "You are no longer signed in as the user this request was for. Go back to the app and start again.",
        )));
    }
    let allow = match form.optional("decision") {
        Ok(Some("allow")) => true,
        Ok(Some("deny")) => false,
        _ => return Ok(page(400, "Invalid request", "Choose Allow or Deny.")),
    };
    // Deleting first makes the form single-use, even under double submission.
    if !server.store.delete_interaction(&interaction_id).await? {
        return Ok(AuthorizeOutcome::ErrorPage(expired()));
    }
    if !allow {
        server.audit(
            AuditEvent::new(AuditKind::ConsentDenied, now)
                .user(user_id)
                .client(&client.client_id)
                .address(client_address)
                .detail("scope", request.scope.join(" ")),
        );
        return Ok(AuthorizeOutcome::Redirect(AuthorizationResponse::error(
            &request.redirect_uri,
            request.response_mode,
            ErrorCode::AccessDenied,
            "the user denied the request",
            request.state.as_deref(),
            &server.settings.issuer,
        )));
    }
    server
        .store
        .add_consent(user_id, &client.client_id, &request.scope, now)
        .await?;
    server.audit(
        AuditEvent::new(AuditKind::ConsentGranted, now)
            .user(user_id)
            .client(&client.client_id)
            .address(client_address)
            .detail("scope", request.scope.join(" ")),
    );
    let response = issue_code(
        server,
        &client,
        &request,
        user_id,
        Some(sid),
        *auth_time,
        amr,
        now,
    )
    .await?;
    Ok(AuthorizeOutcome::Redirect(response))
}

type LoadedStep = (String, PendingAuthorization, std::sync::Arc<Client>);

async fn load_step(
    server: &AuthorizationServer,
    form: &Form,
    csrf_cookie: Option<&str>,
    now: i64,
) -> Result<Result<LoadedStep, PageError>, OAuthError> {
    let Ok(Some(interaction_id)) = form.optional("interaction") else {
        return Ok(Err(expired()));
    };
    let request = if pending::is_carried(interaction_id) {
        match pending::open_carried(&server.request_key, interaction_id, now) {
            // Stored already: its login form was completed.
            Some(request)
                if !pending::was_stored(server.store.as_ref(), interaction_id, now).await? =>
            {
                Some(request)
            }
            _ => None,
        }
    } else {
        pending::load(server.store.as_ref(), interaction_id, now).await?
    };
    let Some(request) = request else {
        return Ok(Err(expired()));
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
    let Some(client) = server
        .authenticator
        .clients()
        .get(server.store.as_ref(), &request.client_id, now)
        .await?
    else {
        return Ok(Err(page_error(
            400,
            "Unknown application",
            "The application is no longer registered.",
        )));
    };
    Ok(Ok((interaction_id.to_owned(), request, client)))
}

async fn needs_consent(
    server: &AuthorizationServer,
    client: &Client,
    request: &PendingAuthorization,
    user_id: &str,
) -> Result<bool, OAuthError> {
    if client.skip_consent {
        return Ok(false);
    }
    if request.prompt.consent {
        return Ok(true);
    }
    let granted = server.store.get_consent(user_id, &client.client_id).await?;
    Ok(!request.scope.iter().all(|s| granted.contains(s)))
}

async fn consent_page(
    server: &AuthorizationServer,
    client: &Client,
    request: &PendingAuthorization,
    interaction_id: String,
    user_id: &str,
    csrf: String,
) -> Result<AuthorizeOutcome, OAuthError> {
    let username = server
        .store
        .get_user(user_id)
        .await?
        .map(|u| u.username)
        .unwrap_or_default();
    Ok(AuthorizeOutcome::Consent(ConsentPage {
        interaction_id,
        client_name: client.name.clone(),
        username,
        scopes: request
            .scope
            .iter()
            .map(|s| (s.clone(), describe_scope(s)))
            .collect(),
        csrf,
    }))
}

/// Creates the grant and its code (one transaction) and the redirect carrying it.
#[allow(clippy::too_many_arguments)]
async fn issue_code(
    server: &AuthorizationServer,
    client: &Client,
    request: &PendingAuthorization,
    user_id: &str,
    sid: Option<&str>,
    auth_time: i64,
    amr: &[String],
    now: i64,
) -> Result<AuthorizationResponse, OAuthError> {
    // Disabled (or deleted) since the session or the login was checked: no code.
    // A disable racing past this check is caught at redemption.
    let enabled = server
        .store
        .get_user(user_id)
        .await?
        .is_some_and(|user| !user.disabled);
    if !enabled {
        return Ok(AuthorizationResponse::error(
            &request.redirect_uri,
            request.response_mode,
            ErrorCode::AccessDenied,
            "the user's account is disabled",
            request.state.as_deref(),
            &server.settings.issuer,
        ));
    }
    let code = b64url(random_bytes::<32>().map_err(OAuthError::server)?);
    let grant = Grant {
        grant_id: random_id()?,
        client_id: client.client_id.clone(),
        user_id: user_id.to_owned(),
        scope: request.scope.clone(),
        sid: sid.map(str::to_owned),
        auth_time,
        amr: amr.to_vec(),
        created_at: now,
        expires_at: now.saturating_add(server.settings.refresh_token_absolute_ttl),
        revoked_at: None,
        status_idx: None,
        resources: request.resources.clone(),
    };
    let grant = Grant {
        status_idx: Some(
            server
                .allocate_status(&client.client_id, Some(grant.expires_at), now)
                .await?,
        ),
        ..grant
    };
    let record = AuthorizationCode {
        code_hash: sha256(code.as_bytes()).to_vec(),
        grant_id: grant.grant_id.clone(),
        client_id: client.client_id.clone(),
        redirect_uri: if request.redirect_uri_given {
            request.redirect_uri.clone()
        } else {
            String::new()
        },
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scope.clone(),
        resources: request.resources.clone(),
        created_at: now,
        expires_at: now.saturating_add(CODE_TTL),
        consumed_at: None,
    };
    server.store.insert_grant_with_code(&grant, &record).await?;
    Ok(AuthorizationResponse::code(
        &request.redirect_uri,
        request.response_mode,
        code,
        request.state.as_deref(),
        &server.settings.issuer,
    ))
}

/// The sign-in form's words when the password hasher sheds load.
const BUSY: &str = "Too many people are signing in right now. Wait a few seconds and try again.";

fn expired() -> PageError {
    PageError::new(
        400,
        "Request expired",
        "This sign-in request has expired or was already completed. Go back to the app and start again.",
    )
}

fn page_error(status: u16, title: &'static str, message: &str) -> PageError {
    PageError::new(status, title, message)
}

fn page(status: u16, title: &'static str, message: &str) -> AuthorizeOutcome {
    AuthorizeOutcome::ErrorPage(page_error(status, title, message))
}
