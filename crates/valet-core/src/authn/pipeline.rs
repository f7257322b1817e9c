//! The entry points the HTTP layer calls (the request, the login form, the
//! consent form), each driving the steps: open the request, run the step its
//! stage waits for, then ask [`policy`] where to go and take that step.

use valet_protocol::{ErrorCode, Form};

use super::consent::{self, Decision};
use super::identify::{self, Identified, Resumed};
use super::pending::{self, PendingAuthorization, Stage, Whereabouts};
use super::policy::{self, Next};
use super::verify::{self, Method, SignedIn, passkey, password};
use crate::AuthorizationServer;
use crate::authorize::{AuthorizationResponse, AuthorizeOutcome, LoginPage, PageError};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::passkeys::Challenge;
use crate::session::{self, NewSession};
use crate::store::Client;

/// The browser's cookies the steps read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cookies<'a> {
    pub session: Option<&'a str>,
    pub csrf: Option<&'a str>,
}

/// RFC 6749 §4.1.1: the authorization request, from the query (GET) or form (POST).
pub async fn authorize(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<AuthorizeOutcome, OAuthError> {
    let now = context.now;
    let Identified {
        client,
        request,
        csrf,
    } = match identify::request(server, form, cookies.csrf, now).await? {
        Ok(identified) => identified,
        Err(outcome) => return Ok(outcome),
    };
    let session = session::lookup(server.store.as_ref(), cookies.session, now).await?;
    let signed_in = session
        .filter(|s| policy::session_counts(&request, s, now))
        .map(|s| SignedIn::from(&s));
    let step = Step {
        client: &client,
        at: Whereabouts::Fresh,
        csrf,
        login: request.login_hint.clone(),
    };
    step.advance(server, request, signed_in.as_ref(), context)
        .await
}

/// The login form was submitted. On success a new session is returned for the
/// handler to set as a cookie (a fresh value: no session fixation).
pub async fn submit_login(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<(AuthorizeOutcome, Option<NewSession>), OAuthError> {
    let Resumed {
        at,
        request,
        client,
    } = match identify::resume(server, form, cookies.csrf, context.now).await? {
        Ok(resumed) => resumed,
        Err(page) => return Ok((AuthorizeOutcome::ErrorPage(page), None)),
    };
    if request.stage != Stage::AwaitingLogin {
        return Ok((AuthorizeOutcome::ErrorPage(PageError::expired()), None));
    }
    let attempt = password::verify(server, form, &client.client_id, context).await?;
    let mut step = Step {
        client: &client,
        at,
        csrf: cookies.csrf.unwrap_or_default().to_owned(),
        login: Some(attempt.login).filter(|l| !l.is_empty()),
    };
    let user_id = match attempt.result {
        Ok(user_id) => user_id,
        Err(retry) => {
            let page = step.login_page(retry.status, Some(retry.error), retry.retry_after);
            return Ok((AuthorizeOutcome::Login(page), None));
        }
    };
    step.login = None;
    step.signed_in(
        server,
        request,
        &user_id,
        Method::Password,
        cookies,
        context,
    )
    .await
}

/// The login form's passkey button asked for a sign-in ceremony (its
/// `interaction` and `csrf`): the WebAuthn request options.
pub async fn passkey_options(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<Result<Challenge, PageError>, OAuthError> {
    let Resumed { request, .. } =
        match identify::resume(server, form, cookies.csrf, context.now).await? {
            Ok(resumed) => resumed,
            Err(page) => return Ok(Err(page)),
        };
    let interaction = form
        .optional("interaction")
        .ok()
        .flatten()
        .unwrap_or_default();
    if request.stage != Stage::AwaitingLogin {
        return Ok(Err(PageError::expired()));
    }
    let csrf = cookies.csrf.unwrap_or_default();
    match passkey::begin(server, interaction, csrf, context.now).await? {
        Some(challenge) => Ok(Ok(challenge)),
        None => Ok(Err(PageError::new(
            404,
            "Passkeys unavailable",
            "This server cannot use passkeys.",
        ))),
    }
}

/// The login form's passkey answer (an assertion) was submitted: on success
/// as [`submit_login`], with the passkey as the method.
pub async fn submit_passkey_login(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<(AuthorizeOutcome, Option<NewSession>), OAuthError> {
    let Resumed {
        at,
        request,
        client,
    } = match identify::resume(server, form, cookies.csrf, context.now).await? {
        Ok(resumed) => resumed,
        Err(page) => return Ok((AuthorizeOutcome::ErrorPage(page), None)),
    };
    if request.stage != Stage::AwaitingLogin {
        return Ok((AuthorizeOutcome::ErrorPage(PageError::expired()), None));
    }
    let interaction = form
        .optional("interaction")
        .ok()
        .flatten()
        .unwrap_or_default();
    let client_id = &client.client_id;
    let result =
        passkey::verify(server, form, interaction, cookies.csrf, client_id, context).await?;
    let step = Step {
        client: &client,
        at,
        csrf: cookies.csrf.unwrap_or_default().to_owned(),
        login: None,
    };
    match result {
        Ok(verified) => {
            step.signed_in(
                server,
                request,
                &verified.user_id,
                verified.method,
                cookies,
                context,
            )
            .await
        }
        Err(retry) => {
            let page = step.login_page(retry.status, Some(retry.error), retry.retry_after);
            Ok((AuthorizeOutcome::Login(page), None))
        }
    }
}

/// The consent form was submitted: Allow issues the code, Deny returns
/// `access_denied` (RFC 6749 §4.1.2.1).
pub async fn submit_consent(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<AuthorizeOutcome, OAuthError> {
    let Resumed {
        at,
        request,
        client,
    } = match identify::resume(server, form, cookies.csrf, context.now).await? {
        Ok(resumed) => resumed,
        Err(page) => return Ok(AuthorizeOutcome::ErrorPage(page)),
    };
    let Stage::AwaitingConsent(signed_in) = &request.stage else {
        return Ok(AuthorizeOutcome::ErrorPage(PageError::expired()));
    };
    if let Err(page) =
        consent::same_browser(server, signed_in, cookies.session, context.now).await?
    {
        return Ok(AuthorizeOutcome::ErrorPage(page));
    }
    let Some(decision) = Decision::from_form(form) else {
        return Ok(AuthorizeOutcome::ErrorPage(PageError::new(
            400,
            "Invalid request",
            "Choose Allow or Deny.",
        )));
    };
    // Completing first makes the form single-use, even under double submission.
    let ttl = server.settings.interaction_ttl;
    if !pending::complete(server.store.as_ref(), &at, &request, ttl, context.now).await? {
        return Ok(AuthorizeOutcome::ErrorPage(PageError::expired()));
    }
    consent::record(
        server,
        decision,
        &client,
        &request,
        &signed_in.user_id,
        context,
    )
    .await?;
    let response = match decision {
        Decision::Allow => {
            super::issue::issue(server, &client, &request, signed_in, context.now).await?
        }
        Decision::Deny => AuthorizationResponse::error(
            &request.redirect_uri,
            request.response_mode,
            ErrorCode::AccessDenied,
            "the user denied the request",
            request.state.as_deref(),
            &server.settings.issuer,
        ),
    };
    Ok(AuthorizeOutcome::Redirect(response))
}

/// A request between steps: its client, where its interaction lives, and what
/// the next page shows.
struct Step<'a> {
    client: &'a Client,
    at: Whereabouts,
    csrf: String,
    /// The username to fill in on a login page.
    login: Option<String>,
}

impl Step<'_> {
    /// The user proved who they are with `method`: a new session, then the
    /// next step.
    async fn signed_in(
        self,
        server: &AuthorizationServer,
        request: PendingAuthorization,
        user_id: &str,
        method: Method,
        cookies: Cookies<'_>,
        context: &RequestContext,
    ) -> Result<(AuthorizeOutcome, Option<NewSession>), OAuthError> {
        let client_id = &self.client.client_id;
        let new_session =
            verify::sign_in(server, user_id, method, cookies.session, client_id, context).await?;
        let signed_in = SignedIn::from(&new_session.session);
        let outcome = self
            .advance(server, request, Some(&signed_in), context)
            .await?;
        Ok((outcome, Some(new_session)))
    }

    /// Asks the policy for the next step and takes it: the transition from the
    /// stage just left (`AwaitingLogin`, signed in or not) to the next one.
    async fn advance(
        self,
        server: &AuthorizationServer,
        request: PendingAuthorization,
        signed_in: Option<&SignedIn>,
        context: &RequestContext,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        let skip_consent = self.client.skip_consent;
        let mut next = policy::next(&request, skip_consent, signed_in, None);
        if let (Next::LookUpConsent, Some(user)) = (next, signed_in) {
            let covered = consent::remembered(server, self.client, &request, &user.user_id).await?;
            next = policy::next(&request, skip_consent, signed_in, Some(covered));
        }
        match (next, signed_in) {
            (Next::Refuse(code, description), _) => {
                Ok(AuthorizeOutcome::Redirect(AuthorizationResponse::error(
                    &request.redirect_uri,
                    request.response_mode,
                    code,
                    description,
                    request.state.as_deref(),
                    &server.settings.issuer,
                )))
            }
            // The login page offers every first-factor method: password and passkey.
            (Next::Verify(_), _) => self.into_login(server, &request, context.now),
            (Next::Consent, Some(user)) => {
                self.into_consent(server, request, user, context.now).await
            }
            (Next::Issue, Some(user)) => self.into_issue(server, &request, user, context.now).await,
            // The policy asks for consent or a code only for a signed-in user.
            (Next::Consent | Next::Issue | Next::LookUpConsent, _) => {
                Ok(AuthorizeOutcome::ErrorPage(PageError::expired()))
            }
        }
    }

    /// `AwaitingLogin`: nothing is stored for an anonymous request; the login
    /// form carries it, sealed.
    fn into_login(
        self,
        server: &AuthorizationServer,
        request: &PendingAuthorization,
        now: i64,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        let expires_at = now.saturating_add(server.settings.interaction_ttl);
        let Some(carried) = pending::carry(&server.request_keys, request, now, expires_at)? else {
            // RFC 6749 §4.1.2.1: the request is malformed for this server.
            return Ok(AuthorizeOutcome::Redirect(AuthorizationResponse::error(
                &request.redirect_uri,
                request.response_mode,
                ErrorCode::InvalidRequest,
                "the authorization request is too large to carry through the sign-in; shorten state, nonce, login_hint, scope or resource",
                request.state.as_deref(),
                &server.settings.issuer,
            )));
        };
        let step = Step {
            at: Whereabouts::Carried(carried),
            ..self
        };
        Ok(AuthorizeOutcome::Login(step.login_page(200, None, None)))
    }

    /// `AwaitingConsent`: the interaction is stored (or moved on) in that stage.
    async fn into_consent(
        self,
        server: &AuthorizationServer,
        request: PendingAuthorization,
        user: &SignedIn,
        now: i64,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        let request = PendingAuthorization {
            stage: Stage::AwaitingConsent(user.clone()),
            ..request
        };
        let ttl = server.settings.interaction_ttl;
        let store = server.store.as_ref();
        let Some(id) = pending::advance(store, &self.at, &request, ttl, now).await? else {
            return Ok(AuthorizeOutcome::ErrorPage(PageError::expired()));
        };
        let page = consent::page(server, self.client, &request, id, &user.user_id, self.csrf);
        Ok(AuthorizeOutcome::Consent(page.await?))
    }

    /// Completes the interaction (once) and issues the code.
    async fn into_issue(
        self,
        server: &AuthorizationServer,
        request: &PendingAuthorization,
        user: &SignedIn,
        now: i64,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        let ttl = server.settings.interaction_ttl;
        if !pending::complete(server.store.as_ref(), &self.at, request, ttl, now).await? {
            return Ok(AuthorizeOutcome::ErrorPage(PageError::expired()));
        }
        let response = super::issue::issue(server, self.client, request, user, now).await?;
        Ok(AuthorizeOutcome::Redirect(response))
    }

    fn login_page(self, status: u16, error: Option<String>, retry_after: Option<i64>) -> LoginPage {
        let interaction_id = match self.at {
            Whereabouts::Carried(value) | Whereabouts::Stored(value) => value,
            Whereabouts::Fresh => String::new(),
        };
        LoginPage {
            status,
            interaction_id,
            client_name: self.client.name.clone(),
            login: self.login,
            error,
            csrf: self.csrf,
            retry_after,
        }
    }
}
