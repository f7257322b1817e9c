//! `/admin/v1/grants`: list and revoke live grants by user or client, revoke
//! one by id. A revocation reaches refresh tokens, recorded access tokens and
//! the token status list, as every other revocation path does.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use valet_core::admin::{GrantFilter, GrantRecord, PageRequest};
use valet_core::endpoint::admin_api::AdminAccess;

use super::clients::fresh;
use super::{AdminApiError, Caller, ErrorBody, query};
use crate::AppState;

/// Whose grants (at least one of `user`, `client`), and for a list which page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    /// User id, username or email.
    pub user: Option<String>,
    /// Client id.
    pub client: Option<String>,
    /// Records per page, 1 to 500 (default 50; lists only).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (lists only).
    pub cursor: Option<String>,
}

/// A list page of live grants.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantPage {
    pub items: Vec<GrantRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// How many grants a revocation revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedGrants {
    pub revoked_grants: u64,
}

impl GrantQuery {
    fn filter(&self) -> GrantFilter {
        GrantFilter {
            user: self.user.clone(),
            client_id: self.client.clone(),
        }
    }
}

#[utoipa::path(get, path = "/grants", tag = "grants", params(GrantQuery),
    responses((status = 200, body = GrantPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_grants(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Read).await?;
    let request: GrantQuery = query(raw.as_deref())?;
    let page = PageRequest {
        limit: request.limit,
        cursor: request.cursor.clone(),
    };
    let page = admin.list_grants(request.filter(), &page).await?;
    Ok(fresh(
        StatusCode::OK,
        GrantPage {
            items: page.items,
            next_cursor: page.next_cursor,
        },
    ))
}

#[utoipa::path(delete, path = "/grants", tag = "grants", params(GrantQuery),
    responses((status = 200, body = RevokedGrants), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn revoke_grants(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let request: GrantQuery = query(raw.as_deref())?;
    let revoked_grants = admin.revoke_grants(request.filter()).await?;
    Ok(fresh(StatusCode::OK, RevokedGrants { revoked_grants }))
}

#[utoipa::path(delete, path = "/grants/{grant_id}", tag = "grants",
    params(("grant_id" = String, Path)),
    responses((status = 200, body = GrantRecord, description = "The grant, now revoked"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn revoke_grant(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(grant_id): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    Ok(fresh(StatusCode::OK, admin.revoke_grant(&grant_id).await?))
}
