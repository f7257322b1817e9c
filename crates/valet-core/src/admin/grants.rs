//! Grants and browser sessions: list them by user or client, revoke them.
//!
//! Revoking a grant goes through the store's revocation, as logout, consent
//! withdrawal and RFC 7009 revocation do: its refresh tokens and codes go, its
//! recorded access tokens are revoked and its status list index is set
//! (draft-ietf-oauth-status-list), so resource servers see its access tokens
//! revoked too.

use serde::Serialize;
use utoipa::ToSchema;

use super::paging::{Page, PageRequest};
use super::users::find_user;
use super::{Admin, AdminError, Field, Resource};
use crate::audit::{AuditEvent, AuditKind};
use crate::store::{Grant, Session};

/// Whose grants: a user (by id, username or email), a client, or both (the
/// user's grants to that client). At least one must be given.
#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    pub user: Option<String>,
    pub client_id: Option<String>,
}

/// A live grant as the admin interfaces show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GrantRecord {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: Vec<String>,
    /// RFC 8707 resources the grant covers.
    pub resources: Vec<String>,
    /// The browser session it was granted in, if any.
    pub sid: Option<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<&Grant> for GrantRecord {
    fn from(grant: &Grant) -> Self {
        Self {
            grant_id: grant.grant_id.clone(),
            client_id: grant.client_id.clone(),
            user_id: grant.user_id.clone(),
            scope: grant.scope.clone(),
            resources: grant.resources.clone(),
            sid: grant.sid.clone(),
            auth_time: grant.auth_time,
            amr: grant.amr.clone(),
            created_at: grant.created_at,
            expires_at: grant.expires_at,
        }
    }
}

/// A live browser session (never its cookie value or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SessionRecord {
    /// The public session id (the ID token's `sid`).
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<&Session> for SessionRecord {
    fn from(session: &Session) -> Self {
        Self {
            sid: session.sid.clone(),
            user_id: session.user_id.clone(),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
            created_at: session.created_at,
            expires_at: session.expires_at,
        }
    }
}

/// What ending a user's sessions ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct EndedSessions {
    pub sessions: u64,
    pub grants: u64,
}

impl Admin<'_> {
    /// The live grants matching `filter`, oldest first, a page at a time.
    pub async fn list_grants(
        &self,
        filter: GrantFilter,
        page: &PageRequest,
    ) -> Result<Page<GrantRecord>, AdminError> {
        let grants = self.matching_grants(filter).await?;
        page.cut(grants, |grant| (grant.created_at, grant.grant_id.as_str()))
            .map(|page| Page {
                items: page.items.iter().map(GrantRecord::from).collect(),
                next_cursor: page.next_cursor,
            })
    }

    /// Revokes every live grant matching `filter`; returns how many. Audited as
    /// `token.revoked` with the count (none when nothing matched).
    pub async fn revoke_grants(&self, filter: GrantFilter) -> Result<u64, AdminError> {
        let now = self.now();
        let (user_id, client_id) = self.resolve(filter).await?;
        let revoked = match (&user_id, &client_id) {
            (Some(user_id), Some(client_id)) => {
                // The user's grants to one client: each one, so consent stays.
                let mut count = 0;
                for grant in self.store.list_grants_of_user(user_id, now).await? {
                    if &grant.client_id == client_id
                        && self.store.revoke_grant(&grant.grant_id, now).await?
                    {
                        count += 1;
                    }
                }
                count
            }
            (Some(user_id), None) => self.store.revoke_grants_of_user(user_id, now).await?,
            (None, Some(client_id)) => self.store.revoke_grants_of_client(client_id, now).await?,
            (None, None) => return Err(no_owner()),
        };
        if revoked > 0 {
            let mut event =
                AuditEvent::new(AuditKind::TokenRevoked, now).detail("revoked_grants", revoked);
            if let Some(user_id) = &user_id {
                event = event.user(user_id);
            }
            if let Some(client_id) = &client_id {
                event = event.client(client_id);
            }
            self.record(event).await;
        }
        Ok(revoked)
    }

    /// Revokes one live grant; audited as `token.revoked` with its id.
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<GrantRecord, AdminError> {
        let now = self.now();
        let grant = self
            .store
            .get_grant(grant_id)
            .await?
            .filter(|grant| grant.revoked_at.is_none() && grant.expires_at > now)
            .ok_or_else(|| AdminError::not_found(Resource::Grant, grant_id))?;
        if !self.store.revoke_grant(grant_id, now).await? {
            return Err(AdminError::not_found(Resource::Grant, grant_id));
        }
        self.record(
            AuditEvent::new(AuditKind::TokenRevoked, now)
                .user(&grant.user_id)
                .client(&grant.client_id)
                .detail("grant_id", grant_id)
                .detail("revoked_grants", 1),
        )
        .await;
        Ok(GrantRecord::from(&grant))
    }

    /// The user's live browser sessions, oldest first.
    pub async fn list_user_sessions(&self, key: &str) -> Result<Vec<SessionRecord>, AdminError> {
        let user = find_user(self.store, key)
            .await?
            .ok_or_else(|| AdminError::not_found(Resource::User, key))?;
        let sessions = self
            .store
            .list_sessions_of_user(&user.user_id, self.now())
            .await?;
        Ok(sessions.iter().map(SessionRecord::from).collect())
    }

    /// Signs the user out everywhere: ends every browser session and revokes
    /// every grant (so refresh tokens stop and access tokens turn revoked).
    /// Audited as `logout` with the counts.
    pub async fn end_user_sessions(&self, key: &str) -> Result<EndedSessions, AdminError> {
        let now = self.now();
        let user = find_user(self.store, key)
            .await?
            .ok_or_else(|| AdminError::not_found(Resource::User, key))?;
        // Sessions first: no new grant can come from them afterwards.
        let sessions = self.store.delete_sessions_of_user(&user.user_id).await?;
        let grants = self.store.revoke_grants_of_user(&user.user_id, now).await?;
        self.record(
            AuditEvent::new(AuditKind::Logout, now)
                .user(&user.user_id)
                .detail("ended_sessions", sessions)
                .detail("revoked_grants", grants),
        )
        .await;
        Ok(EndedSessions { sessions, grants })
    }

    async fn matching_grants(&self, filter: GrantFilter) -> Result<Vec<Grant>, AdminError> {
        let now = self.now();
        Ok(match self.resolve(filter).await? {
            (Some(user_id), client_id) => self
                .store
                .list_grants_of_user(&user_id, now)
                .await?
                .into_iter()
                .filter(|grant| client_id.as_ref().is_none_or(|id| &grant.client_id == id))
                .collect(),
            (None, Some(client_id)) => self.store.list_grants_of_client(&client_id, now).await?,
            (None, None) => return Err(no_owner()),
        })
    }

    /// The user id and client id a filter names; an unknown user or client is
    /// a 404, so a typo does not read as "no grants".
    async fn resolve(
        &self,
        filter: GrantFilter,
    ) -> Result<(Option<String>, Option<String>), AdminError> {
        let user_id = match filter.user {
            Some(key) => Some(
                find_user(self.store, &key)
                    .await?
                    .ok_or_else(|| AdminError::not_found(Resource::User, &key))?
                    .user_id,
            ),
            None => None,
        };
        if let Some(client_id) = &filter.client_id
            && self.store.get_client(client_id).await?.is_none()
        {
            return Err(AdminError::not_found(Resource::Client, client_id));
        }
        Ok((user_id, filter.client_id))
    }
}

fn no_owner() -> AdminError {
    AdminError::invalid(
        Field::new("user"),
        None,
        "give a user or a client_id (or both): whose grants",
    )
}
