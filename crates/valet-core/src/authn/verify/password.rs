//! Sign-in with a username (or email) and password: the login form's fields,
//! the per-account and per-address throttle, the bounded password hasher, and
//! the audit records of failures.

use valet_protocol::Form;

use super::Retry;
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::store::User;
use crate::throttle::Throttled;
use crate::users::{self, LoginFailure};

/// The sign-in form's words when the password hasher sheds load.
const BUSY: &str = "Too many people are signing in right now. Wait a few seconds and try again.";

/// What the form said and what came of it: the signed-in user's id, or the form
/// again with why.
pub(crate) struct Attempt {
    /// The username or email as entered (trimmed), shown again on a retry.
    pub login: String,
    /// The user whose password it is.
    pub result: Result<User, Retry>,
}

/// Checks the login form's credentials for `client_id`'s request.
pub(crate) async fn verify(
    server: &AuthorizationServer,
    form: &Form,
    client_id: &str,
    context: &RequestContext,
) -> Result<Attempt, OAuthError> {
    let field = |name| form.optional(name).ok().flatten().unwrap_or_default();
    let login = field("username").trim().to_owned();
    let password = field("password");
    let result = if login.is_empty() || password.is_empty() {
        Err(Retry::new(
            400,
            "Enter your username or email and your password.",
        ))
    } else {
        check(server, &login, password, client_id, context).await?
    };
    Ok(Attempt { login, result })
}

/// Checks `login`'s password under the login throttle, auditing a failure.
pub(crate) async fn check(
    server: &AuthorizationServer,
    login: &str,
    password: &str,
    client_id: &str,
    context: &RequestContext,
) -> Result<Result<User, Retry>, OAuthError> {
    let store = server.store.as_ref();
    let attempt = match server
        .throttle
        .admit_login(store, login, context.address, context.now)
        .await
    {
        Ok(attempt) => attempt,
        Err(throttled) => return Ok(Err(throttled_retry(server, throttled, client_id, context))),
    };
    match users::authenticate(store, &server.hasher, login, password).await {
        Ok(user) => {
            server.throttle.succeeded(attempt);
            Ok(Ok(user))
        }
        Err(LoginFailure::InvalidCredentials { account }) => {
            let mut event = AuditEvent::new(AuditKind::LoginFailed, context.now)
                .client(client_id)
                .address(context.address)
                .request(&context.id);
            event.user_id = account;
            server.audit(event);
            Ok(Err(Retry::new(401, "Incorrect username or password.")))
        }
        // Not checked, so neither a failure nor a success: it must not count,
        // or a flood that keeps the hasher busy would lock real users out.
        Err(LoginFailure::Overloaded {
            retry_after_seconds,
        }) => {
            server.throttle.not_checked(attempt);
            Ok(Err(Retry {
                retry_after: Some(retry_after_seconds),
                ..Retry::new(503, BUSY)
            }))
        }
        Err(LoginFailure::Store(error)) => Err(error.into()),
    }
}

/// 429 with `Retry-After` (RFC 6585 §4) and the wait in minutes.
pub(super) fn throttled_retry(
    server: &AuthorizationServer,
    Throttled {
        retry_after_seconds,
    }: Throttled,
    client_id: &str,
    context: &RequestContext,
) -> Retry {
    server.audit(
        AuditEvent::new(AuditKind::LoginThrottled, context.now)
            .client(client_id)
            .address(context.address)
            .request(&context.id),
    );
    let minutes = (retry_after_seconds + 59) / 60;
    // Attempts still being checked count too, so the words must fit a burst of
    // simultaneous correct sign-ins as well as guessing.
    Retry {
        retry_after: Some(retry_after_seconds),
        ..Retry::new(
            429,
            format!(
                "Too many sign-in attempts for this account or from your network. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        )
    }
}
