//! `/admin/v1/audit`: the audit trail, newest first.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use valet_core::admin::{AdminError, AuditQuery, Field, FieldError};
use valet_core::audit::{AuditEvent, AuditKind};
use valet_core::endpoint::admin_api::AdminAccess;

use super::clients::fresh;
use super::{AdminApiError, Caller, ErrorBody, query};
use crate::AppState;

/// The most records one query returns.
const MAX_AUDIT_LIMIT: u32 = 1000;

/// Which records.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// The event type, e.g. `client.updated`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// User id, username or email.
    pub user: Option<String>,
    /// Client id.
    pub client: Option<String>,
    /// Only records at or after this Unix time.
    pub since: Option<i64>,
    /// Only records at or before this Unix time.
    pub until: Option<i64>,
    /// Only records caused by this actor (`detail.actor`: the admin API client
    /// that made the change, or the token-exchange actor).
    pub actor: Option<String>,
    /// At most this many records, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// Audit records, newest first: `at`, `event`, `user_id`, `client_id`,
/// `address` and `detail` (changes made through the API carry
/// `detail.via = "api"` and `detail.actor`, the calling client).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<AuditEvent>,
}

fn invalid(field: &'static str, value: String, reason: &'static str) -> AdminApiError {
    AdminApiError::Admin(AdminError::Invalid(FieldError {
        field: Field::new(field),
        value: Some(value),
        reason: reason.into(),
    }))
}

#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn query_audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Read).await?;
    let params: AuditParams = query(raw.as_deref())?;
    let event = match params.kind {
        Some(kind) => Some(
            AuditKind::parse(&kind)
                .ok_or_else(|| invalid("type", kind, "is not an audit event type"))?,
        ),
        None => None,
    };
    let limit = match params.limit {
        None => 100,
        Some(limit @ 1..=MAX_AUDIT_LIMIT) => limit,
        Some(limit) => {
            return Err(invalid(
                "limit",
                limit.to_string(),
                "must be between 1 and 1000",
            ));
        }
    };
    let items = admin
        .query_audit(AuditQuery {
            user: params.user,
            client_id: params.client,
            event,
            max_age: None,
            since: params.since,
            actor: params.actor,
            until: params.until,
            min_age: None,
            limit,
        })
        .await?;
    Ok(fresh(StatusCode::OK, AuditList { items }))
}
