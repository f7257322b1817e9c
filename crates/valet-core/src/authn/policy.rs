//! Which steps a request needs: the one place that reads `prompt`, `max_age`,
//! the client's `skip_consent` and the user's remembered consent. Pure
//! functions of what the steps found, so every rule is tested without a store.
//! (Later: the factors a client or `acr_values` requires pick further verify
//! steps here.)

use valet_protocol::ErrorCode;

use super::pending::PendingAuthorization;
use super::verify::{Method, SignedIn};
use crate::store::Session;

/// The step a request goes to next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The user must sign in with this method.
    Verify(Method),
    /// Whether the user allowed these scopes before decides: look the
    /// remembered consent up and ask again.
    LookUpConsent,
    /// The user must allow the scopes.
    Consent,
    /// Nothing is missing: issue the code.
    Issue,
    /// The request cannot go on without the user, who must not be asked
    /// (`prompt=none`): this error goes back to the client.
    Refuse(ErrorCode, &'static str),
}

/// Whether an existing session may stand for this request's sign-in: not with
/// `prompt=login`, and not when it is older than `max_age` seconds (OIDC Core
/// §3.1.2.1).
pub fn session_counts(request: &PendingAuthorization, session: &Session, now: i64) -> bool {
    !request.prompt.login
        && request
            .max_age
            .is_none_or(|age| now.saturating_sub(session.auth_time) <= age)
}

/// The next step for `request`, given whether its client is first-party
/// (`skip_consent`), the sign-in (if any) and whether the user's remembered
/// consent covers the scopes (`None`: not looked up yet).
pub fn next(
    request: &PendingAuthorization,
    skip_consent: bool,
    signed_in: Option<&SignedIn>,
    consent_remembered: Option<bool>,
) -> Next {
    // OIDC Core §3.1.2.1: prompt=none never shows a page.
    let ask = |step: Next, error: ErrorCode, description: &'static str| {
        if request.prompt.none {
            Next::Refuse(error, description)
        } else {
            step
        }
    };
    if signed_in.is_none() {
        return ask(
            Next::Verify(Method::Password),
            ErrorCode::LoginRequired,
            "the user is not signed in",
        );
    }
    let consent_needed = if skip_consent {
        false
    } else if request.prompt.consent {
        true
    } else {
        match consent_remembered {
            None => return Next::LookUpConsent,
            Some(covered) => !covered,
        }
    };
    if consent_needed {
        return ask(
            Next::Consent,
            ErrorCode::ConsentRequired,
            "the user has not allowed this application",
        );
    }
    Next::Issue
}
