//! The consent form: Allow or Deny.

use valet_protocol::{ErrorCode, Form};

use crate::AuthorizationServer;
use crate::authn::consent::{self, Decision};
use crate::authn::identify::{self, Resumed};
use crate::authn::pending::{self, Stage};
use crate::authorize::{AuthorizationResponse, AuthorizeOutcome, PageError};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session::Cookies;

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
    if let Some(link) = &request.device {
        let client = &client;
        return match decision {
            Decision::Allow => {
                crate::authn::device::approve(
                    server,
                    client,
                    &request,
                    link,
                    signed_in,
                    context.now,
                )
                .await
            }
            Decision::Deny => crate::authn::device::deny(server, client, link, context.now).await,
        };
    }
    let response = match decision {
        Decision::Allow => {
            crate::authn::issue::issue(server, &client, &request, signed_in, context.now).await?
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
