//! The verify step: who the user is, proved by one method per file. A method
//! reads its form, checks it (with its own throttles and audit records) and
//! yields the user it proved; `sign_in` then starts the session that every
//! method ends in. A new method (a second factor, a passkey, an upstream
//! provider) is a new file and a new [`Method`] variant.

pub(crate) mod passkey;
pub(crate) mod password;

use serde::{Deserialize, Serialize};

use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session::{self, NewSession};
use crate::store::Session;

/// How a user proves who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Username or email and password (`password.rs`); `amr` `pwd` (RFC 8176 §2).
    Password,
    /// A passkey, with user verification (`passkey.rs`). `synced`: the
    /// credential is backup eligible (WebAuthn §6.1.3), so its private key can
    /// leave the authenticator.
    Passkey { synced: bool },
}

impl Method {
    /// The RFC 8176 §2 `amr` values the method records. A passkey is proof of
    /// possession of a key: `hwk` when the key cannot leave its hardware, `swk`
    /// when it is synced (backup eligible); `user` for the user presence every
    /// assertion carries; and `mfa`, because webauthn-rs requires user
    /// verification (a PIN or a biometric on the authenticator) on top of the
    /// key. Which of the two verified the user the relying party cannot tell
    /// without attestation, so neither `pin` nor a biometric value is claimed.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            Self::Passkey { synced: false } => &["hwk", "user", "mfa"],
            Self::Passkey { synced: true } => &["swk", "user", "mfa"],
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

/// Starts a session for `user_id`, proved by `method`: the browser's old
/// session (if any) is ended and a fresh cookie value made, so a session id
/// planted before the sign-in is worth nothing (no session fixation).
pub(crate) async fn sign_in(
    server: &AuthorizationServer,
    user_id: &str,
    method: Method,
    old_cookie: Option<&str>,
    client_id: &str,
    context: &RequestContext,
) -> Result<NewSession, OAuthError> {
    if let Some(old) = old_cookie {
        server.store.delete_session(&session::hash(old)).await?;
    }
    let new_session = session::create(
        server.store.as_ref(),
        user_id,
        method.amr().iter().map(|&value| value.to_owned()).collect(),
        server.settings.session_ttl,
        context.now,
    )
    .await?;
    server.audit(
        AuditEvent::new(AuditKind::LoginSucceeded, context.now)
            .user(user_id)
            .client(client_id)
            .address(context.address)
            .request(&context.id)
            .detail("sid", new_session.session.sid.as_str())
            .detail("amr", method.amr().join(" ")),
    );
    Ok(new_session)
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
    fn new(status: u16, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            retry_after: None,
        }
    }
}
