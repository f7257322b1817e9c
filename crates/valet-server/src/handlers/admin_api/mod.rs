//! The admin HTTP API, `/admin/v1`: JSON over the admin service in core, so
//! the CLI and the API validate, revoke and audit alike. Every route checks
//! the caller's access token first (`valet_core::endpoint::admin_api`): reads
//! need `admin:read`, changes `admin:write`. One file per resource; the
//! OpenAPI 3.1 document is [`openapi`].

pub mod audit;
pub mod clients;
mod error;
pub mod grants;
pub mod keys;
pub mod openapi;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Query};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use valet_core::admin::{Admin, PageRequest};
use valet_core::endpoint::admin_api::{AdminAccess, AdminRequest, authorize};

use crate::AppState;
use crate::context::Context;
use crate::handlers::token_endpoints::dpop_proofs;

pub use error::{AdminApiError, ErrorBody};

/// Where the API lives, under the issuer's path.
pub const PREFIX: &str = "/admin/v1";

/// The API's routes, to be nested at [`PREFIX`].
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route(
            "/clients",
            get(clients::list_clients).post(clients::create_client),
        )
        .route(
            "/clients/{client_id}",
            get(clients::get_client)
                .patch(clients::update_client)
                .delete(clients::delete_client),
        )
        .route("/clients/{client_id}/secret", post(clients::rotate_secret))
        .route("/users", get(users::list_users).post(users::create_user))
        .route(
            "/users/{user}",
            get(users::get_user)
                .patch(users::update_user)
                .delete(users::delete_user),
        )
        .route("/users/{user}/disable", post(users::disable_user))
        .route("/users/{user}/enable", post(users::enable_user))
        .route("/users/{user}/unlock", post(users::unlock_user))
        .route("/users/{user}/mfa/reset", post(users::reset_mfa))
        .route(
            "/users/{user}/sessions",
            get(users::list_sessions).delete(users::end_sessions),
        )
        .route("/keys", get(keys::list_keys))
        .route("/keys/rotate", post(keys::rotate_key))
        .route("/keys/import", post(keys::import_keys))
        .route("/keys/{kid}/retire", post(keys::retire_key))
        .route(
            "/grants",
            get(grants::list_grants).delete(grants::revoke_grants),
        )
        .route("/grants/{grant_id}", delete(grants::revoke_grant))
        .route("/audit", get(audit::query_audit))
        .fallback(error::not_found)
}

/// A call to the API: what the token check needs from the request (an
/// extractor; it cannot fail).
pub struct Caller {
    context: valet_core::RequestContext,
    method: Method,
    path: String,
    headers: HeaderMap,
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Ok(Context(context)) = Context::from_request_parts(parts, state).await;
        // The path as the issuer sees it (inside the issuer path's nest): a
        // DPoP proof's `htu` is the issuer's URL plus this.
        let path = format!("{PREFIX}{}", parts.uri.path());
        Ok(Self {
            context,
            method: parts.method.clone(),
            path,
            headers: parts.headers.clone(),
        })
    }
}

impl Caller {
    /// The admin service acting for the token's client, once the token is
    /// good enough for `access`.
    pub async fn admin<'s>(
        &self,
        state: &'s AppState,
        access: AdminAccess,
    ) -> Result<Admin<'s>, AdminApiError> {
        let proofs = dpop_proofs(&self.headers);
        let request = AdminRequest {
            authorization: self.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes),
            method: self.method.as_str(),
            path: &self.path,
            dpop: &proofs,
            access,
        };
        authorize(&state.server, &self.context, &request)
            .await
            .map_err(|error| AdminApiError::from_auth(error, access))
    }
}

/// `?limit=&cursor=` of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Records per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl From<Paging> for PageRequest {
    fn from(paging: Paging) -> Self {
        Self {
            limit: paging.limit,
            cursor: paging.cursor,
        }
    }
}

/// Reads a JSON body, after the token was checked (so an unauthorised
/// caller learns nothing from a body error).
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminApiError> {
    serde_json::from_slice(body).map_err(|error| AdminApiError::Body(error.to_string()))
}

/// A query string, read after the token was checked.
pub fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, AdminApiError> {
    Query::<T>::try_from_uri(
        &format!("/?{}", raw.unwrap_or_default())
            .parse()
            .map_err(|_| AdminApiError::Body("the query string is malformed".to_owned()))?,
    )
    .map(|Query(value)| value)
    .map_err(|error| AdminApiError::Query(error.body_text()))
}
