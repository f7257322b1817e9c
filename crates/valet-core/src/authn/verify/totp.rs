//! The second factor of a code from an authenticator app (RFC 6238, see
//! [`crate::mfa::totp`]); `amr` `otp` (RFC 8176 §2). Throttled like passwords
//! (see [`super::checked`]); a code is accepted once: the store keeps the last
//! time step accepted, and a code of that step or an earlier one is refused.

use valet_protocol::Form;

use super::{Method, Retry, checked, code_of};
use crate::AuthorizationServer;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::mfa;

/// Checks the form's `code` against the user's confirmed credential.
pub(crate) async fn verify(
    server: &AuthorizationServer,
    form: &Form,
    user_id: &str,
    client_id: &str,
    context: &RequestContext,
) -> Result<Result<(), Retry>, OAuthError> {
    let Some(code) = code_of(form) else {
        return Ok(Err(Retry::new(
            400,
            "Enter the code from your authenticator app.",
        )));
    };
    let check = mfa::check_totp(
        server.store.as_ref(),
        &server.master,
        user_id,
        code,
        context.now,
    );
    checked(server, Method::Totp, user_id, client_id, context, check).await
}

/// Confirms the user's pending enrolment with the form's `code`, under the
/// same throttle.
pub(crate) async fn confirm(
    server: &AuthorizationServer,
    form: &Form,
    user_id: &str,
    client_id: &str,
    context: &RequestContext,
) -> Result<Result<(), Retry>, OAuthError> {
    let Some(code) = code_of(form) else {
        return Ok(Err(Retry::new(
            400,
            "Enter the code your authenticator app shows.",
        )));
    };
    let check = mfa::confirm_totp(
        server.store.as_ref(),
        &server.master,
        user_id,
        code,
        context.now,
    );
    checked(server, Method::Totp, user_id, client_id, context, check).await
}
