//! The second factor of a recovery code (see [`crate::mfa::recovery`]), for a
//! user without their authenticator app. A recovery code is a one-time
//! password the user holds (printed or saved), so it records `amr` `otp` (RFC
//! 8176 §2), as a TOTP code does; the audit record names the method. Throttled
//! with TOTP codes, under the same key (see [`super::checked`]).

use valet_protocol::Form;

use super::{Method, Retry, checked, code_of};
use crate::AuthorizationServer;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::mfa;

pub(crate) async fn verify(
    server: &AuthorizationServer,
    form: &Form,
    user_id: &str,
    client_id: &str,
    context: &RequestContext,
) -> Result<Result<(), Retry>, OAuthError> {
    let Some(code) = code_of(form) else {
        return Ok(Err(Retry::new(400, "Enter one of your recovery codes.")));
    };
    let check = mfa::use_recovery_code(server.store.as_ref(), user_id, code, context.now);
    checked(
        server,
        Method::RecoveryCode,
        user_id,
        client_id,
        context,
        check,
    )
    .await
}
