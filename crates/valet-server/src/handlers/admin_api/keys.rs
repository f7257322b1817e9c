//! `/admin/v1/keys`: list the signing keys with their states, rotate an
//! algorithm, import a JWK Set, retire a key.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use valet_core::admin::{AdminError, Field, KeyRecord, RotatedKey};
use valet_core::endpoint::admin_api::AdminAccess;
use valet_jose::Algorithm;

use super::clients::fresh;
use super::{AdminApiError, Caller, ErrorBody, json_body};
use crate::AppState;

/// The signing keys, by algorithm then generation.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyRecord>,
}

/// `POST /keys/rotate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
}

/// `POST /keys/import`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeysRequest {
    /// A JWK Set whose keys have their private members.
    #[schema(value_type = Object)]
    pub jwks: serde_json::Value,
    /// Each key signs for its algorithm at once (default: verification only).
    #[serde(default)]
    pub activate: bool,
}

/// The kids imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedKeys {
    pub kids: Vec<String>,
}

/// When a retired key leaves the JWKS.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetiredKey {
    pub kid: String,
    /// Unix time.
    pub published_until: i64,
}

#[utoipa::path(get, path = "/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Read).await?;
    let items = admin.keys(state.server.key_manager()).list().await?;
    Ok(fresh(StatusCode::OK, KeyList { items }))
}

#[utoipa::path(post, path = "/keys/rotate", tag = "keys", request_body = RotateKeyRequest,
    responses(
        (status = 201, body = RotatedKey, description = "Published now, signing from signs_from"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A key of this algorithm is pending")))]
pub async fn rotate_key(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let request: RotateKeyRequest = json_body(&body)?;
    let alg: Algorithm = request.alg.parse().map_err(|_| {
        AdminError::Invalid(valet_core::admin::FieldError {
            field: Field::new("alg"),
            value: Some(request.alg.clone()),
            reason: "must be RS256, ES256 or EdDSA".into(),
        })
    })?;
    let rotated = admin.keys(state.server.key_manager()).rotate(alg).await?;
    Ok(fresh(StatusCode::CREATED, rotated))
}

#[utoipa::path(post, path = "/keys/import", tag = "keys", request_body = ImportKeysRequest,
    responses((status = 201, body = ImportedKeys), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn import_keys(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let request: ImportKeysRequest = json_body(&body)?;
    let kids = admin
        .keys(state.server.key_manager())
        .import(&request.jwks.to_string(), request.activate)
        .await?;
    Ok(fresh(StatusCode::CREATED, ImportedKeys { kids }))
}

#[utoipa::path(post, path = "/keys/{kid}/retire", tag = "keys",
    params(("kid" = String, Path)),
    responses((status = 200, body = RetiredKey), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The current signing key")))]
pub async fn retire_key(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(kid): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let published_until = admin.keys(state.server.key_manager()).retire(&kid).await?;
    Ok(fresh(
        StatusCode::OK,
        RetiredKey {
            kid,
            published_until,
        },
    ))
}
