//! The consent form: Allow or Deny.

use valet_protocol::{ErrorCode, Form};

use crate::AuthorizationServer;
use crate::authn::consent::{self, Decision};
use crate::authn::identify::{self, Resumed};
use crate::authn::pending::{self, Stage};
use crate::authn::{device, issue};
use crate::authorize::{AuthorizationResponse, AuthorizeOutcome, PageError};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session::Cookies;
use crate::store::FormWritten;

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
    // One write: the interaction completed (first, so the form is single-use
    // even under double submission), the consent, and the grant with its code.
    let (now, user_id) = (context.now, &signed_in.user_id);
    let mut write = pending::completing(&at, &request, server.settings.interaction_ttl, now)?;
    write.consent = consent::given(decision, &client, &request, user_id, now);
    let issuing = match decision {
        Decision::Allow if request.device.is_none() => {
            Some(issue::prepare(server, &client, &request, signed_in, now).await?)
        }
        Decision::Allow | Decision::Deny => None,
    };
    let issued = issuing.map(|issuing| issuing.add_to(&mut write));
    let written = server.store.write_form(&write).await?;
    if written == FormWritten::Refused {
        return Ok(AuthorizeOutcome::ErrorPage(PageError::expired()));
    }
    consent::audit(server, decision, &client, &request, user_id, context);
    if let Some(link) = &request.device {
        return match decision {
            Decision::Allow => {
                device::approve(server, &client, &request, link, signed_in, now).await
            }
            Decision::Deny => device::deny(server, &client, link, now).await,
        };
    }
    let response = match (issued, written) {
        (_, FormWritten::UserDisabled) => issue::refused(server, &request),
        (Some(response), _) => response,
        (None, _) => AuthorizationResponse::error(
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
