//! Which steps a request needs: the one place that reads `prompt`, `max_age`,
//! the client's `skip_consent` and `require_mfa`, the `mfa` setting,
//! `acr_values`, the user's enrolled factors and remembered consent. Pure
//! functions of what the steps found, so every rule is tested without a store.

use valet_protocol::ErrorCode;

use super::pending::PendingAuthorization;
use super::verify::{Method, SignedIn};
use crate::config::MfaPolicy;
use crate::mfa;
use crate::store::{Client, Session};

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
    // RFC 8628 §5.4: the user confirms every device request, naming its
    // client, against remote phishing; first-party clients included.
    let consent_needed = if request.device.is_some() {
        true
    } else if skip_consent {
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

/// Whether a sign-in needs a second factor before it goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// What was proved is enough.
    NotNeeded,
    /// The user has a second factor: it is asked for.
    Verify,
    /// A second factor is required and the user has none: the user enrols
    /// one before going on.
    Enrol,
}

/// A user who enrolled a second factor always proves it; one who has none
/// enrols when the request requires two factors.
pub fn second_factor(amr: &[String], enrolled: bool, required: bool) -> SecondFactor {
    if mfa::is_multi_factor(amr) {
        SecondFactor::NotNeeded
    } else if enrolled {
        SecondFactor::Verify
    } else if required {
        SecondFactor::Enrol
    } else {
        SecondFactor::NotNeeded
    }
}

/// Whether the request must end in a sign-in with two factors: the server's
/// `mfa = required`, the client's `require_mfa`, or `acr_values` naming
/// [`mfa::ACR_MFA`] (OIDC Core §3.1.2.1, honoured as a voluntary claim).
pub fn mfa_required(policy: MfaPolicy, client: &Client, request: &PendingAuthorization) -> bool {
    policy == MfaPolicy::Required || client.require_mfa || request.mfa_requested
}

#[cfg(test)]
mod tests {
    use valet_protocol::authorize::{Prompt, ResponseMode};

    use super::*;
    use crate::authn::pending::Stage;

    fn request(prompt: Prompt, max_age: Option<i64>) -> PendingAuthorization {
        PendingAuthorization {
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            redirect_uri_given: true,
            scope: vec!["openid".into()],
            state: None,
            nonce: None,
            code_challenge: "c".into(),
            response_mode: ResponseMode::Query,
            prompt,
            max_age,
            login_hint: None,
            resources: Vec::new(),
            mfa_requested: false,
            dpop_jkt: None,
            csrf_hash: String::new(),
            stage: Stage::AwaitingLogin,
            device: None,
        }
    }

    fn alice() -> SignedIn {
        SignedIn {
            user_id: "alice".into(),
            sid: "s1".into(),
            auth_time: 1_000,
            amr: vec!["pwd".into()],
        }
    }

    fn session(auth_time: i64) -> Session {
        Session {
            session_hash: Vec::new(),
            sid: "s1".into(),
            user_id: "alice".into(),
            auth_time,
            amr: vec!["pwd".into()],
            created_at: auth_time,
            expires_at: auth_time + 3_600,
        }
    }

    const NONE: Prompt = Prompt {
        none: true,
        login: false,
        consent: false,
    };
    const LOGIN: Prompt = Prompt {
        none: false,
        login: true,
        consent: false,
    };
    const CONSENT: Prompt = Prompt {
        none: false,
        login: false,
        consent: true,
    };

    #[test]
    fn a_session_counts_unless_prompt_login_or_older_than_max_age() {
        let now = 2_000;
        assert!(session_counts(
            &request(Prompt::default(), None),
            &session(0),
            now
        ));
        assert!(!session_counts(&request(LOGIN, None), &session(now), now));
        assert!(session_counts(
            &request(Prompt::default(), Some(1_000)),
            &session(1_000),
            now
        ));
        assert!(!session_counts(
            &request(Prompt::default(), Some(999)),
            &session(1_000),
            now
        ));
    }

    #[test]
    fn without_a_sign_in_the_user_verifies_or_prompt_none_refuses() {
        let next = |prompt| next(&request(prompt, None), false, None, None);
        assert_eq!(next(Prompt::default()), Next::Verify(Method::Password));
        assert_eq!(
            next(NONE),
            Next::Refuse(ErrorCode::LoginRequired, "the user is not signed in")
        );
    }

    #[test]
    fn consent_is_looked_up_then_asked_unless_remembered_or_first_party() {
        let user = alice();
        let plain = request(Prompt::default(), None);
        assert_eq!(next(&plain, false, Some(&user), None), Next::LookUpConsent);
        assert_eq!(next(&plain, false, Some(&user), Some(true)), Next::Issue);
        assert_eq!(next(&plain, false, Some(&user), Some(false)), Next::Consent);
        // First-party clients and prompt=consent need no look-up.
        assert_eq!(next(&plain, true, Some(&user), None), Next::Issue);
        assert_eq!(
            next(&request(CONSENT, None), true, Some(&user), None),
            Next::Issue
        );
        assert_eq!(
            next(&request(CONSENT, None), false, Some(&user), None),
            Next::Consent
        );
        assert_eq!(
            next(&request(NONE, None), false, Some(&user), Some(false)),
            Next::Refuse(
                ErrorCode::ConsentRequired,
                "the user has not allowed this application"
            )
        );
        assert_eq!(
            next(&request(NONE, None), false, Some(&user), Some(true)),
            Next::Issue
        );
    }

    #[test]
    fn an_enrolled_factor_is_always_asked_and_a_required_one_enrolled() {
        let pwd = vec!["pwd".to_owned()];
        let both = vec!["pwd".to_owned(), "otp".to_owned()];
        assert_eq!(second_factor(&pwd, false, false), SecondFactor::NotNeeded);
        assert_eq!(second_factor(&pwd, true, false), SecondFactor::Verify);
        assert_eq!(second_factor(&pwd, true, true), SecondFactor::Verify);
        assert_eq!(second_factor(&pwd, false, true), SecondFactor::Enrol);
        assert_eq!(second_factor(&both, true, true), SecondFactor::NotNeeded);
    }
}
