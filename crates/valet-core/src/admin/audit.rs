//! The audit trail query.

use super::users::find_user;
use super::{Admin, AdminError};
use crate::audit::{AuditEvent, AuditFilter, AuditKind};

/// Which records to return: newest first, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// A user id, username or email. A username or email names the user;
    /// anything else is taken as a user id, so the events of a deleted user can
    /// still be found.
    pub user: Option<String>,
    pub client_id: Option<String>,
    pub event: Option<AuditKind>,
    /// Only records at most this many seconds old.
    pub max_age: Option<i64>,
    /// Only records at or after this time (Unix seconds); with `max_age` too,
    /// the later bound applies.
    pub since: Option<i64>,
    /// Only records whose `detail.actor` is this (the admin API client, or the
    /// token-exchange actor, that caused them).
    pub actor: Option<String>,
    /// Only records at or before this time (Unix seconds).
    pub until: Option<i64>,
    /// Only records at least this many seconds old; with `until` too, the
    /// earlier bound applies.
    pub min_age: Option<i64>,
    pub limit: u32,
}

impl Admin<'_> {
    pub async fn query_audit(&self, query: AuditQuery) -> Result<Vec<AuditEvent>, AdminError> {
        let user_id = match query.user {
            Some(key) => Some(
                find_user(self.store, &key)
                    .await?
                    .map_or(key, |user| user.user_id),
            ),
            None => None,
        };
        let filter = AuditFilter {
            user_id,
            client_id: query.client_id,
            event: query.event,
            since: query
                .max_age
                .map(|age| self.now().saturating_sub(age))
                .max(query.since),
            actor: query.actor,
            until: match (
                query.min_age.map(|age| self.now().saturating_sub(age)),
                query.until,
            ) {
                (Some(aged), Some(until)) => Some(aged.min(until)),
                (aged, until) => aged.or(until),
            },
            limit: query.limit,
        };
        Ok(self.store.audit_events(&filter).await?)
    }
}
