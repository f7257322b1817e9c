//! Initial access tokens (RFC 7591 §3): an operator hands one to a developer
//! so that their client may register itself while `client_registration =
//! initial_token`. Stored as a SHA-256 hash; shown once.

use serde::Serialize;

use super::{Admin, AdminError, Field, Resource};
use crate::audit::{AuditEvent, AuditKind};
use crate::secrets::{INITIAL_TOKEN_PREFIX, PlainSecret, generate_token, random_id};
use crate::store::InitialAccessToken;

/// The longest an initial access token may live: a year.
pub const MAX_INITIAL_TOKEN_TTL: i64 = 365 * 86_400;

/// An initial access token as the admin interfaces show it: never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitialTokenRecord {
    pub token_id: String,
    pub note: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// `None`: any number of registrations until it expires.
    pub uses_left: Option<i64>,
}

impl From<&InitialAccessToken> for InitialTokenRecord {
    fn from(token: &InitialAccessToken) -> Self {
        Self {
            token_id: token.token_id.clone(),
            note: token.note.clone(),
            created_at: token.created_at,
            expires_at: token.expires_at,
            uses_left: token.uses_left,
        }
    }
}

/// A new initial access token: shown once, then only its hash is kept.
#[derive(Debug)]
pub struct CreatedInitialToken {
    pub record: InitialTokenRecord,
    pub token: PlainSecret,
}

impl Admin<'_> {
    /// Creates an initial access token that works for `ttl_seconds` and for
    /// `uses` registrations (`None`: any number); audited as
    /// `initial_token.created`.
    pub async fn create_initial_token(
        &self,
        note: &str,
        ttl_seconds: i64,
        uses: Option<i64>,
    ) -> Result<CreatedInitialToken, AdminError> {
        if !(1..=MAX_INITIAL_TOKEN_TTL).contains(&ttl_seconds) {
            return Err(AdminError::invalid(
                Field::new("ttl"),
                Some(ttl_seconds.to_string()),
                "must be between 1 second and a year",
            ));
        }
        if uses.is_some_and(|uses| uses < 1) {
            return Err(AdminError::invalid(
                Field::new("uses"),
                uses.map(|uses| uses.to_string()),
                "must be at least 1 (leave it out for any number)",
            ));
        }
        if note.chars().count() > 200 || note.chars().any(char::is_control) {
            return Err(AdminError::invalid(
                Field::new("note"),
                None,
                "at most 200 characters, no control characters",
            ));
        }
        let now = self.now();
        let (token, token_hash) = generate_token(INITIAL_TOKEN_PREFIX)
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        let stored = InitialAccessToken {
            token_id: random_id().map_err(|e| AdminError::Internal(e.to_string()))?,
            token_hash,
            note: note.trim().to_owned(),
            created_at: now,
            expires_at: now.saturating_add(ttl_seconds),
            uses_left: uses,
        };
        self.store.insert_initial_token(&stored).await?;
        let mut event = AuditEvent::new(AuditKind::InitialTokenCreated, now)
            .detail("token_id", stored.token_id.as_str())
            .detail("expires_at", stored.expires_at);
        if let Some(uses) = uses {
            event = event.detail("uses", uses);
        }
        self.record(event).await;
        Ok(CreatedInitialToken {
            record: InitialTokenRecord::from(&stored),
            token: PlainSecret::new(token.as_str()),
        })
    }

    /// Every initial access token not purged yet, oldest first.
    pub async fn list_initial_tokens(&self) -> Result<Vec<InitialTokenRecord>, AdminError> {
        let tokens = self.store.list_initial_tokens().await?;
        Ok(tokens.iter().map(InitialTokenRecord::from).collect())
    }

    /// Revokes an initial access token at once; audited as
    /// `initial_token.revoked`. Clients it registered stay registered.
    pub async fn revoke_initial_token(&self, token_id: &str) -> Result<(), AdminError> {
        if !self.store.delete_initial_token(token_id).await? {
            return Err(AdminError::not_found(Resource::InitialToken, token_id));
        }
        self.record(
            AuditEvent::new(AuditKind::InitialTokenRevoked, self.now())
                .detail("token_id", token_id),
        )
        .await;
        Ok(())
    }
}
