//! The login form: a password or a passkey proves the first factor.

use valet_protocol::Form;

use crate::AuthorizationServer;
use crate::authn::identify::{self, Resumed};
use crate::authn::pending::Stage;
use crate::authn::step::Step;
use crate::authn::verify::{Method, Proved, passkey, password};
use crate::authorize::{AuthorizeOutcome, PageError};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::passkeys::Challenge;
use crate::session::{Cookies, NewSession};

/// Opens the interaction a sign-in form names (see [`identify::resume`]); the
/// page to show instead when it cannot be opened or no longer waits for a
/// first factor.
pub(super) async fn resume_waiting_for_login(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<Result<Resumed, PageError>, OAuthError> {
    Ok(
        match identify::resume(server, form, cookies.csrf, context.now).await? {
            Ok(resumed) if resumed.request.stage == Stage::AwaitingLogin => Ok(resumed),
            Ok(_) => Err(PageError::expired()),
            Err(page) => Err(page),
        },
    )
}

/// The interaction id a passkey form names (empty when absent: the ceremony
/// then matches no interaction).
pub(super) fn interaction_field(form: &Form) -> &str {
    form.optional("interaction")
        .ok()
        .flatten()
        .unwrap_or_default()
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
    } = match resume_waiting_for_login(server, form, cookies, context).await? {
        Ok(resumed) => resumed,
        Err(page) => return Ok((AuthorizeOutcome::ErrorPage(page), None)),
    };
    let attempt = password::verify(server, form, &client.client_id, context).await?;
    let mut step = Step {
        client: &client,
        at,
        csrf: cookies.csrf.unwrap_or_default().to_owned(),
        login: Some(attempt.login).filter(|l| !l.is_empty()),
        signing_in: None,
        username: None,
    };
    let user = match attempt.result {
        Ok(user) => user,
        Err(retry) => {
            let page = step.login_page(retry.status, Some(retry.error), retry.retry_after);
            return Ok((AuthorizeOutcome::Login(page), None));
        }
    };
    step.login = None;
    step.username = Some(user.username);
    let proved = Proved::first(user.user_id, Method::Password);
    step.proved(server, request, proved, cookies.session, context)
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
    if let Err(page) = resume_waiting_for_login(server, form, cookies, context).await? {
        return Ok(Err(page));
    }
    let interaction = interaction_field(form);
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
/// as [`submit_login`], with the passkey as the method (a user-verified
/// passkey is two factors, so no second factor follows).
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
    } = match resume_waiting_for_login(server, form, cookies, context).await? {
        Ok(resumed) => resumed,
        Err(page) => return Ok((AuthorizeOutcome::ErrorPage(page), None)),
    };
    let interaction = interaction_field(form);
    let client_id = &client.client_id;
    let result =
        passkey::verify(server, form, interaction, cookies.csrf, client_id, context).await?;
    let step = Step {
        client: &client,
        at,
        csrf: cookies.csrf.unwrap_or_default().to_owned(),
        login: None,
        signing_in: None,
        username: None,
    };
    match result {
        Ok(verified) => {
            let proved = Proved::first(verified.user_id, verified.method);
            step.proved(server, request, proved, cookies.session, context)
                .await
        }
        Err(retry) => {
            let page = step.login_page(retry.status, Some(retry.error), retry.retry_after);
            Ok((AuthorizeOutcome::Login(page), None))
        }
    }
}
