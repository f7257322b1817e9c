//! The verify step: who the user is, proved by one method per file. A method
//! reads its form, checks it (with its own throttles and audit records) and
//! yields the user it proved; `sign_in` then starts the session that every
//! sign-in ends in. A new method (a second factor, a passkey, an upstream
//! provider) is a new file and a new [`Method`] variant.
//!
//! Second factors: after the first factor the pipeline keeps what was proved
//! ([`Proved`]) in the interaction's stage and asks for one of the methods
//! [`second_factors`] lists (the page offers each by [`Method::name`]); the
//! form names its method, and [`check_second_factor`] sends it to the method's
//! file. A new second factor adds a line to each of those two functions.

pub(crate) mod passkey;
pub(crate) mod password;
pub(crate) mod recovery_code;
pub(crate) mod totp;

pub(crate) use password::check as password_check;

use std::future::Future;

use serde::{Deserialize, Serialize};
use valet_protocol::Form;

use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::mfa;
use crate::session::{self, NewSession};
use crate::store::{Session, SessionStart};

/// How a user proves who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Username or email and password (`password.rs`); `amr` `pwd` (RFC 8176 §2).
    Password,
    /// A code from an authenticator app (`totp.rs`, RFC 6238); `amr` `otp`.
    Totp,
    /// One of the recovery codes shown at enrolment (`recovery_code.rs`); `amr` `otp`.
    RecoveryCode,
    /// A passkey, with user verification (`passkey.rs`). `synced`: the
    /// credential is backup eligible (WebAuthn §6.1.3), so its private key can
    /// leave the authenticator.
    Passkey { synced: bool },
    /// An upstream provider's assertion (`entry/upstream.rs`): one factor,
    /// whatever the provider asked; `amr` `fed` (not in the RFC 8176
    /// registry, which has no value for federation; §2 allows others).
    Upstream,
}

impl Method {
    /// The RFC 8176 §2 `amr` values the method records. A passkey is proof of
    /// possession of a key: `hwk` when the key cannot leave its hardware, `swk`
    /// when it is synced (backup eligible); `user` for the user presence every
    /// assertion carries; and `mfa`, because webauthn-rs requires user
    /// verification (a PIN or a biometric on the authenticator) on top of the
    /// key, so a passkey alone is two factors for the MFA policy. Which of the
    /// two verified the user the relying party cannot tell without
    /// attestation, so neither `pin` nor a biometric value is claimed.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            Self::Totp | Self::RecoveryCode => &["otp"],
            Self::Passkey { synced: false } => &["hwk", "user", "mfa"],
            Self::Passkey { synced: true } => &["swk", "user", "mfa"],
            Self::Upstream => &["fed"],
        }
    }

    /// The method's name in forms (`method`), on pages and in audit records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey { .. } => "passkey",
            Self::Upstream => "upstream",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Password,
            Self::Totp,
            Self::RecoveryCode,
            Self::Passkey { synced: false },
        ]
        .into_iter()
        .find(|method| method.name() == name)
    }
}

/// What the user proved so far, before a session is started: kept in the
/// interaction while a second factor is asked for (never carried by the
/// browser), so a form cannot claim it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proved {
    pub user_id: String,
    /// RFC 8176 methods, in the order they were proved.
    pub amr: Vec<String>,
}

impl Proved {
    pub fn first(user_id: String, method: Method) -> Self {
        Self {
            user_id,
            amr: method.amr().iter().map(|&value| value.to_owned()).collect(),
        }
    }

    /// With one more method proved.
    #[must_use]
    pub fn and(mut self, method: Method) -> Self {
        for &amr in method.amr() {
            if !self.amr.iter().any(|known| known == amr) {
                self.amr.push(amr.to_owned());
            }
        }
        self
    }
}

impl From<&SignedIn> for Proved {
    fn from(signed_in: &SignedIn) -> Self {
        Self {
            user_id: signed_in.user_id.clone(),
            amr: signed_in.amr.clone(),
        }
    }
}

/// That the user signed in: who, in which session, when and how. The steps
/// build it from a session (one that policy let count, or one just started by
/// `sign_in`) and keep it in the interaction's stage; consent and issue ask
/// for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignedIn {
    pub user_id: String,
    pub sid: String,
    /// OIDC Core §2 `auth_time`.
    pub auth_time: i64,
    /// RFC 8176 authentication methods.
    pub amr: Vec<String>,
}

impl From<&Session> for SignedIn {
    fn from(session: &Session) -> Self {
        Self {
            user_id: session.user_id.clone(),
            sid: session.sid.clone(),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
        }
    }
}

/// A sign-in whose session is made but not stored yet: the form's write
/// ([`crate::store::FormWrite`]) stores it, and only then is it audited.
pub(crate) struct SigningIn {
    pub(crate) start: SessionStart,
    pub(crate) audit: AuditEvent,
}

/// Starts a session for what was proved: the browser's old session (if any)
/// ends with the new one's write and a fresh cookie value is made, so a session
/// id planted before the sign-in is worth nothing (no session fixation).
pub(crate) fn start_session(
    server: &AuthorizationServer,
    proved: &Proved,
    old_cookie: Option<&str>,
    client_id: &str,
    context: &RequestContext,
) -> Result<(NewSession, SigningIn), OAuthError> {
    let new_session = session::new(
        &proved.user_id,
        proved.amr.clone(),
        server.settings.session_ttl,
        context.now,
    )?;
    let audit = AuditEvent::new(AuditKind::LoginSucceeded, context.now)
        .user(&proved.user_id)
        .client(client_id)
        .address(context.address)
        .request(&context.id)
        .detail("sid", new_session.session.sid.as_str())
        .detail("amr", proved.amr.join(" "));
    let start = SessionStart {
        session: new_session.session.clone(),
        ends: old_cookie.map(session::hash),
    };
    Ok((new_session, SigningIn { start, audit }))
}

/// The second factors the user can prove now, in the order offered.
pub(crate) async fn second_factors(
    server: &AuthorizationServer,
    user_id: &str,
) -> Result<Vec<Method>, OAuthError> {
    let enrolled = mfa::enrolled(server.store.as_ref(), user_id).await?;
    let mut methods = Vec::new();
    if enrolled.totp {
        methods.push(Method::Totp);
    }
    if enrolled.recovery_codes > 0 {
        methods.push(Method::RecoveryCode);
    }
    if passkey::enrolled(server, user_id).await? {
        methods.push(Method::Passkey { synced: false });
    }
    Ok(methods)
}

/// Checks the second-factor form for `method` (one of [`second_factors`]):
/// the method as proved (a passkey says whether it is synced).
pub(crate) async fn check_second_factor(
    server: &AuthorizationServer,
    method: Method,
    form: &Form,
    user_id: &str,
    client_id: &str,
    context: &RequestContext,
) -> Result<Result<Method, Retry>, OAuthError> {
    let proved = |result: Result<(), Retry>| result.map(|()| method);
    match method {
        Method::Totp => Ok(proved(
            totp::verify(server, form, user_id, client_id, context).await?,
        )),
        Method::RecoveryCode => Ok(proved(
            recovery_code::verify(server, form, user_id, client_id, context).await?,
        )),
        Method::Passkey { .. } => {
            passkey::verify_second_factor(server, form, user_id, client_id, context).await
        }
        Method::Password | Method::Upstream => {
            Ok(Err(Retry::new(400, "Choose how to confirm it is you.")))
        }
    }
}

/// The form's `code`, if not blank.
fn code_of(form: &Form) -> Option<&str> {
    form.optional("code")
        .ok()
        .flatten()
        .filter(|code| !code.trim().is_empty())
}

/// The throttle's account key for a user's second-factor codes: apart from
/// every login name.
fn second_factor_key(user_id: &str) -> String {
    format!("\u{0}second factor\u{0}{user_id}")
}

/// Runs `check` (a code's check, `true` when right) under the login throttle,
/// as a password is: per user and address, and per address (a wrong code is a
/// failed sign-in from that address). A wrong code is audited.
async fn checked(
    server: &AuthorizationServer,
    method: Method,
    user_id: &str,
    client_id: &str,
    context: &RequestContext,
    check: impl Future<Output = Result<bool, OAuthError>>,
) -> Result<Result<(), Retry>, OAuthError> {
    let attempt =
        match server
            .throttle
            .admit(&second_factor_key(user_id), context.address, context.now)
        {
            Ok(attempt) => attempt,
            Err(throttled) => {
                return Ok(Err(password::throttled_retry(
                    server, throttled, client_id, context,
                )));
            }
        };
    if check.await? {
        server.throttle.succeeded(attempt);
        return Ok(Ok(()));
    }
    server.audit(
        AuditEvent::new(AuditKind::SecondFactorFailed, context.now)
            .user(user_id)
            .client(client_id)
            .address(context.address)
            .request(&context.id)
            .detail("method", method.name()),
    );
    Ok(Err(Retry::new(
        401,
        match method {
            Method::RecoveryCode => "That recovery code is not right, or was used already.",
            _ => {
                "That code is not right, or was used already. Wait for the next code and try again."
            }
        },
    )))
}

/// The sign-in form again, with why: its status, words and (when throttled or
/// shed) the seconds to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retry {
    pub status: u16,
    pub error: String,
    pub retry_after: Option<i64>,
}

impl Retry {
    pub(crate) fn new(status: u16, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            retry_after: None,
        }
    }
}
