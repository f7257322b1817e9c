//! Audit records as the store keeps them: the kinds of event, one record, and
//! the query `valet audit` makes. The schema, and how records are queued and
//! flushed, are described in the `audit` module.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::context::RequestId;

/// What happened. The string forms are the schema's `event` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    ConsentGranted,
    ConsentDenied,
    Logout,
    TokenIssued,
    TokenRevoked,
    RefreshTokenReused,
    CodeReplayed,
    ClientAuthFailed,
    ClientAuthThrottled,
    ClientCreated,
    ClientUpdated,
    ClientSecretRotated,
    ClientDeleted,
    KeyCreated,
    KeyImported,
    KeyRetired,
    UserCreated,
    UserUpdated,
    UserDisabled,
    UserEnabled,
    /// `valet user unlock`: earlier login failures no longer lock the account.
    UserUnlocked,
    UserPasswordSet,
    UserDeleted,
    /// Someone asked for a password reset link (whether or not the account exists).
    PasswordResetRequested,
    /// A password set with a reset link.
    PasswordReset,
    /// An email address confirmed with a verification link (or by an operator).
    EmailVerified,
    /// A mail given up after its last attempt.
    MailFailed,
    /// An invitation to register queued (`valet user invite`).
    UserInvited,
    /// A wrong second-factor code (TOTP or recovery code; `detail.method`).
    SecondFactorFailed,
    /// A second factor was enrolled (`detail.method`).
    MfaEnrolled,
    /// `valet user mfa reset`: the user's second factors were removed.
    MfaReset,
    /// A user registered a passkey.
    PasskeyAdded,
    /// A user removed one of their passkeys.
    PasskeyRemoved,
    /// A client exchanged a subject token for an access token (RFC 8693):
    /// `detail.audience`, `detail.actor`, `detail.scope`.
    TokenExchanged,
    /// An operator created an initial access token for client registration.
    InitialTokenCreated,
    /// An operator revoked an initial access token.
    InitialTokenRevoked,
    /// A user signed in with an upstream provider (`detail.upstream`).
    UpstreamSignIn,
    /// An upstream sign-in failed or was refused (`detail.upstream`, `detail.reason`).
    UpstreamFailed,
    /// An upstream identity was linked to a user (`detail.upstream`).
    UpstreamLinked,
    /// A user removed a link to an upstream identity (`detail.upstream`).
    UpstreamUnlinked,
    /// An operator added an upstream provider.
    UpstreamAdded,
    /// An operator removed an upstream provider (and every link to it).
    UpstreamRemoved,
}

impl AuditKind {
    pub const ALL: [Self; 45] = [
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginThrottled,
        Self::ConsentGranted,
        Self::ConsentDenied,
        Self::Logout,
        Self::TokenIssued,
        Self::TokenRevoked,
        Self::RefreshTokenReused,
        Self::CodeReplayed,
        Self::ClientAuthFailed,
        Self::ClientAuthThrottled,
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::ClientSecretRotated,
        Self::ClientDeleted,
        Self::KeyCreated,
        Self::KeyImported,
        Self::KeyRetired,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserUnlocked,
        Self::UserPasswordSet,
        Self::UserDeleted,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::MailFailed,
        Self::UserInvited,
        Self::SecondFactorFailed,
        Self::MfaEnrolled,
        Self::MfaReset,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::TokenExchanged,
        Self::InitialTokenCreated,
        Self::InitialTokenRevoked,
        Self::UpstreamSignIn,
        Self::UpstreamFailed,
        Self::UpstreamLinked,
        Self::UpstreamUnlinked,
        Self::UpstreamAdded,
        Self::UpstreamRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::LoginThrottled => "login.throttled",
            Self::ConsentGranted => "consent.granted",
            Self::ConsentDenied => "consent.denied",
            Self::Logout => "logout",
            Self::TokenIssued => "token.issued",
            Self::TokenRevoked => "token.revoked",
            Self::RefreshTokenReused => "refresh_token.reused",
            Self::CodeReplayed => "code.replayed",
            Self::ClientAuthFailed => "client_auth.failed",
            Self::ClientAuthThrottled => "client_auth.throttled",
            Self::ClientCreated => "client.created",
            Self::ClientUpdated => "client.updated",
            Self::ClientSecretRotated => "client.secret_rotated",
            Self::ClientDeleted => "client.deleted",
            Self::KeyCreated => "key.created",
            Self::KeyImported => "key.imported",
            Self::KeyRetired => "key.retired",
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::UserUnlocked => "user.unlocked",
            Self::UserPasswordSet => "user.password_set",
            Self::UserDeleted => "user.deleted",
            Self::PasswordResetRequested => "password_reset.requested",
            Self::PasswordReset => "user.password_reset",
            Self::EmailVerified => "user.email_verified",
            Self::MailFailed => "mail.failed",
            Self::UserInvited => "user.invited",
            Self::SecondFactorFailed => "login.second_factor_failed",
            Self::MfaEnrolled => "mfa.enrolled",
            Self::MfaReset => "mfa.reset",
            Self::PasskeyAdded => "passkey.added",
            Self::PasskeyRemoved => "passkey.removed",
            Self::TokenExchanged => "token.exchanged",
            Self::InitialTokenCreated => "initial_token.created",
            Self::InitialTokenRevoked => "initial_token.revoked",
            Self::UpstreamSignIn => "upstream.sign_in",
            Self::UpstreamFailed => "upstream.failed",
            Self::UpstreamLinked => "upstream.linked",
            Self::UpstreamUnlinked => "upstream.unlinked",
            Self::UpstreamAdded => "upstream.added",
            Self::UpstreamRemoved => "upstream.removed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Failures and refusals that one source can repeat at request rate: their
    /// records are counted per source between flushes instead of stored one by one.
    pub fn is_coalesced(self) -> bool {
        matches!(
            self,
            Self::LoginFailed
                | Self::LoginThrottled
                | Self::PasswordResetRequested
                | Self::SecondFactorFailed
                | Self::ClientAuthFailed
                | Self::ClientAuthThrottled
                | Self::UpstreamFailed
        )
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// As its schema name (`login.failed`, ...).
impl Serialize for AuditKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown audit event {name:?}")))
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: i64,
    pub event: AuditKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub detail: Map<String, Value>,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, at: i64) -> Self {
        Self {
            at,
            event: kind,
            user_id: None,
            client_id: None,
            address: None,
            detail: Map::new(),
        }
    }

    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }

    /// The client concerned. A failed authentication records the id as the
    /// caller sent it, so it is cut to [`MAX_RECORDED_ID`] bytes: a queue of
    /// failures must not hold (or store) what fits in a 64 KiB form.
    pub fn client(mut self, client_id: &str) -> Self {
        let mut end = client_id.len().min(MAX_RECORDED_ID);
        while !client_id.is_char_boundary(end) {
            end -= 1;
        }
        self.client_id = client_id.get(..end).map(str::to_owned);
        self
    }

    pub fn address(mut self, address: Option<IpAddr>) -> Self {
        self.address = address.map(|address| address.to_canonical().to_string());
        self
    }

    /// The request that caused the event (`detail.request_id`), so an audit
    /// record leads to the request's log lines. Of a coalesced group, the first
    /// request's.
    pub fn request(self, id: &RequestId) -> Self {
        self.detail("request_id", id.as_str())
    }

    pub fn detail(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(name.to_owned(), value.into());
        self
    }

    /// Writes the record to the log, one line, every field by name.
    pub fn log(&self) {
        let detail = serde_json::to_string(&self.detail).unwrap_or_default();
        tracing::info!(
            target: "valet::audit",
            event = %self.event,
            at = self.at,
            user_id = self.user_id.as_deref(),
            client_id = self.client_id.as_deref(),
            address = self.address.as_deref(),
            detail = %detail,
            "audit"
        );
    }
}

/// Which records `valet audit` asks for: newest first, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub event: Option<AuditKind>,
    /// Only records at or after this time.
    pub since: Option<i64>,
    /// Only records whose `detail.actor` is this: the admin API client or
    /// token-exchange actor that caused them.
    pub actor: Option<String>,
    /// Only records at or before this time.
    pub until: Option<i64>,
    pub limit: u32,
}

/// Longest client id an audit record keeps; Valet's own ids are 22 characters.
pub const MAX_RECORDED_ID: usize = 128;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("login"), None);
    }

    #[test]
    fn kinds_serialize_as_their_schema_names() {
        for kind in AuditKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            assert_eq!(serde_json::from_value::<AuditKind>(json).unwrap(), kind);
        }
        assert!(serde_json::from_value::<AuditKind>("login".into()).is_err());
        assert_eq!(format!("{:<8}|", AuditKind::Logout), "logout  |");
    }

    #[test]
    fn presented_client_ids_are_cut_to_a_bound_on_a_character_boundary() {
        let long = "é".repeat(MAX_RECORDED_ID);
        let event = AuditEvent::new(AuditKind::ClientAuthFailed, 0).client(&long);
        let kept = event.client_id.unwrap();
        assert!(kept.len() <= MAX_RECORDED_ID && long.starts_with(&kept));
        assert_eq!(kept.chars().count(), MAX_RECORDED_ID / 2);
        let short = AuditEvent::new(AuditKind::ClientAuthFailed, 0).client("svc");
        assert_eq!(short.client_id.as_deref(), Some("svc"));
    }
}
