//! The second-factor and enrolment forms, and the second factor's passkey
//! ceremony.

use valet_protocol::Form;

use super::login::interaction_field;
use crate::AuthorizationServer;
use crate::authn::identify::{self, Resumed};
use crate::authn::pending::Stage;
use crate::authn::step::Step;
use crate::authn::verify::passkey;
use crate::authorize::{AuthorizeOutcome, PageError};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::passkeys::Challenge;
use crate::session::{Cookies, NewSession};

/// The second-factor page's passkey button asked for a ceremony (its
/// `interaction` and `csrf`): request options for the user's own passkeys.
pub async fn second_factor_passkey_options(
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
    let Stage::AwaitingSecondFactor(proved) = &request.stage else {
        return Ok(Err(PageError::expired()));
    };
    let interaction = interaction_field(form);
    let csrf = cookies.csrf.unwrap_or_default();
    let begun =
        passkey::begin_second_factor(server, interaction, csrf, &proved.user_id, context.now);
    match begun.await? {
        Some(challenge) => Ok(Ok(challenge)),
        None => Ok(Err(PageError::new(
            404,
            "No passkey",
            "You have no passkey to confirm it is you with.",
        ))),
    }
}

/// The second-factor form (or the enrolment form, when a factor is required
/// and none is enrolled) was submitted. On success a new session is returned,
/// as by [`submit_login`].
pub async fn submit_second_factor(
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
    let step = Step {
        client: &client,
        at,
        csrf: cookies.csrf.unwrap_or_default().to_owned(),
        login: None,
        signing_in: None,
        username: None,
    };
    match request.stage.clone() {
        Stage::AwaitingSecondFactor(proved) => {
            step.second_factor(server, form, request, proved, cookies.session, context)
                .await
        }
        Stage::AwaitingEnrolment(proved) => {
            step.enrolment(server, form, request, proved, cookies.session, context)
                .await
        }
        _ => Ok((AuthorizeOutcome::ErrorPage(PageError::expired()), None)),
    }
}
