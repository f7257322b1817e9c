//! `/admin/v1/clients`: register, list, read, change, rotate the secret,
//! delete.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use valet_core::admin::{
    ClientRecord, ClientUpdate, EncryptionNames, NewClient, Page, UpdatedClient,
};
use valet_core::endpoint::admin_api::AdminAccess;

use super::{AdminApiError, Caller, ErrorBody, Paging, json_body, query};
use crate::AppState;
use crate::response::no_store;

/// A client to register. Everything but `name` is optional; the rules are
/// those of `valet client add`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NewClientRequest {
    pub name: String,
    /// A public client (no secret: a browser or native app).
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    /// Empty: the default for the client's shape.
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<i64>,
    pub skip_consent: bool,
    pub require_mfa: bool,
    pub refresh_grace_seconds: i64,
    pub id_token_signed_response_alg: Option<String>,
    pub introspect_any: bool,
    pub require_pushed_authorization_requests: bool,
    pub dpop_bound_access_tokens: bool,
    /// `private_key_jwt` or `client_secret_jwt`; absent for a secret (or none).
    pub token_endpoint_auth_method: Option<String>,
    /// A JWK Set.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub token_exchange_audiences: Vec<String>,
    /// Encrypted ID tokens (OIDC Registration §2): `RSA-OAEP-256`, `ECDH-ES`
    /// or `ECDH-ES+A256KW`, to a key of the client's `jwks` or `jwks_uri`.
    pub id_token_encrypted_response_alg: Option<String>,
    /// `A256GCM` (the default) or `A128GCM`; only with the `alg`.
    pub id_token_encrypted_response_enc: Option<String>,
    /// Signed UserInfo answers: `RS256` or `ES256`.
    pub userinfo_signed_response_alg: Option<String>,
    /// Encrypted UserInfo answers, as for ID tokens.
    pub userinfo_encrypted_response_alg: Option<String>,
    pub userinfo_encrypted_response_enc: Option<String>,
}

/// An `alg`/`enc` pair of the request as the admin service takes it. An `enc`
/// without its `alg` goes on with an empty `alg`, which the service refuses,
/// naming the `alg` field.
fn encryption_names(alg: Option<String>, enc: Option<String>) -> Option<EncryptionNames> {
    match (alg, enc) {
        (None, None) => None,
        (alg, enc) => Some(EncryptionNames {
            alg: alg.unwrap_or_default(),
            enc,
        }),
    }
}

impl From<NewClientRequest> for NewClient {
    fn from(request: NewClientRequest) -> Self {
        Self {
            name: request.name,
            public: request.public,
            redirect_uris: request.redirect_uris,
            post_logout_redirect_uris: request.post_logout_redirect_uris,
            allowed_origins: request.allowed_origins,
            grant_types: request.grant_types,
            scopes: request.scopes,
            audiences: request.audiences,
            access_token_ttl: request.access_token_ttl,
            skip_consent: request.skip_consent,
            require_mfa: request.require_mfa,
            refresh_grace_seconds: request.refresh_grace_seconds,
            id_token_signed_response_alg: request.id_token_signed_response_alg,
            introspect_any: request.introspect_any,
            require_pushed_authorization_requests: request.require_pushed_authorization_requests,
            dpop_bound_access_tokens: request.dpop_bound_access_tokens,
            token_endpoint_auth_method: request.token_endpoint_auth_method,
            jwks: request.jwks.map(|jwks| jwks.to_string()),
            jwks_uri: request.jwks_uri,
            token_exchange_audiences: request.token_exchange_audiences,
            id_token_encryption: encryption_names(
                request.id_token_encrypted_response_alg,
                request.id_token_encrypted_response_enc,
            ),
            userinfo_signed_response_alg: request.userinfo_signed_response_alg,
            userinfo_encryption: encryption_names(
                request.userinfo_encrypted_response_alg,
                request.userinfo_encrypted_response_enc,
            ),
        }
    }
}

/// A change to a client: absent fields stay as they are, a list given
/// replaces the stored one, `null` removes an optional setting.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ClientUpdateRequest {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// `null` drops the override: the configured default applies.
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub access_token_ttl: Option<Option<i64>>,
    pub skip_consent: Option<bool>,
    pub require_mfa: Option<bool>,
    pub refresh_grace_seconds: Option<i64>,
    pub introspect_any: Option<bool>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub dpop_bound_access_tokens: Option<bool>,
    /// A JWK Set; `null` removes the inline keys.
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Option<serde_json::Value>>,
    /// `null` removes the key URL.
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub jwks_uri: Option<Option<String>>,
    pub token_exchange_audiences: Option<Vec<String>>,
    /// Replaces the ID token encryption (with the `enc`, A256GCM when left
    /// out); `null` turns it off.
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub id_token_encrypted_response_alg: Option<Option<String>>,
    pub id_token_encrypted_response_enc: Option<String>,
    /// `null` turns signed UserInfo answers off.
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub userinfo_signed_response_alg: Option<Option<String>>,
    /// As for ID tokens.
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub userinfo_encrypted_response_alg: Option<Option<String>>,
    pub userinfo_encrypted_response_enc: Option<String>,
}

/// An encryption change: absent with no `enc` leaves it, `null` removes it,
/// an `alg` (or a lone `enc`, which the service refuses) replaces it.
fn encryption_change(
    alg: Option<Option<String>>,
    enc: Option<String>,
) -> Option<Option<EncryptionNames>> {
    match (alg, enc) {
        (None, None) => None,
        (Some(None), None) => Some(None),
        (alg, enc) => Some(encryption_names(alg.flatten(), enc)),
    }
}

/// A field that is present (possibly `null`) is `Some`; absent is `None`.
pub(super) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl From<ClientUpdateRequest> for ClientUpdate {
    fn from(request: ClientUpdateRequest) -> Self {
        Self {
            name: request.name,
            redirect_uris: request.redirect_uris,
            post_logout_redirect_uris: request.post_logout_redirect_uris,
            allowed_origins: request.allowed_origins,
            scopes: request.scopes,
            audiences: request.audiences,
            access_token_ttl: request.access_token_ttl,
            skip_consent: request.skip_consent,
            require_mfa: request.require_mfa,
            refresh_grace_seconds: request.refresh_grace_seconds,
            introspect_any: request.introspect_any,
            require_pushed_authorization_requests: request.require_pushed_authorization_requests,
            dpop_bound_access_tokens: request.dpop_bound_access_tokens,
            jwks: request.jwks.map(|jwks| jwks.map(|jwks| jwks.to_string())),
            jwks_uri: request.jwks_uri,
            token_exchange_audiences: request.token_exchange_audiences,
            id_token_encryption: encryption_change(
                request.id_token_encrypted_response_alg,
                request.id_token_encrypted_response_enc,
            ),
            userinfo_signed_response_alg: request.userinfo_signed_response_alg,
            userinfo_encryption: encryption_change(
                request.userinfo_encrypted_response_alg,
                request.userinfo_encrypted_response_enc,
            ),
        }
    }
}

/// A registered client, with its secret: shown this once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    pub client: ClientRecord,
    /// The client secret of a confidential client (absent for public and
    /// `private_key_jwt` clients).
    pub client_secret: Option<String>,
}

/// `POST /clients/{client_id}/secret`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// How long the replaced secret keeps working (0 to 30 days; default 0).
    pub overlap_seconds: i64,
}

/// A new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecretResponse {
    pub client_id: String,
    pub client_secret: String,
    /// Until when the previous secret still works (Unix time), if at all.
    pub previous_secret_valid_until: Option<i64>,
}

/// A list page of clients.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

impl From<Page<ClientRecord>> for ClientPage {
    fn from(page: Page<ClientRecord>) -> Self {
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// A JSON answer that no cache keeps (it may hold a secret).
pub(super) fn fresh<T: Serialize>(status: StatusCode, value: T) -> Response {
    let mut response = (status, Json(value)).into_response();
    no_store(&mut response);
    response
}

#[utoipa::path(post, path = "/clients", tag = "clients",
    request_body = NewClientRequest,
    responses(
        (status = 201, body = CreatedClient, description = "Registered; the secret is shown once"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_client(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let request: NewClientRequest = json_body(&body)?;
    let registered = admin.register_client(request.into()).await?;
    Ok(fresh(
        StatusCode::CREATED,
        CreatedClient {
            client: registered.client,
            client_secret: registered.secret.map(|secret| secret.expose().to_owned()),
        },
    ))
}

#[utoipa::path(get, path = "/clients", tag = "clients", params(Paging),
    responses((status = 200, body = ClientPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_clients(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Read).await?;
    let paging: Paging = query(raw.as_deref())?;
    let page = admin.list_clients_page(&paging.into()).await?;
    Ok(fresh(StatusCode::OK, ClientPage::from(page)))
}

#[utoipa::path(get, path = "/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)),
    responses((status = 200, body = ClientRecord), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_client(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Read).await?;
    Ok(fresh(StatusCode::OK, admin.get_client(&client_id).await?))
}

#[utoipa::path(patch, path = "/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)), request_body = ClientUpdateRequest,
    responses(
        (status = 200, body = UpdatedClient,
            description = "Changed; removing a scope or audience revokes the client's grants"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_client(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let request: ClientUpdateRequest = json_body(&body)?;
    let updated = admin.update_client(&client_id, request.into()).await?;
    state.server.forget_client(&client_id);
    Ok(fresh(StatusCode::OK, updated))
}

#[utoipa::path(post, path = "/clients/{client_id}/secret", tag = "clients",
    params(("client_id" = String, Path)), request_body = RotateSecretRequest,
    responses(
        (status = 200, body = RotatedSecretResponse, description = "The new secret, shown once"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let request: RotateSecretRequest = if body.is_empty() {
        RotateSecretRequest::default()
    } else {
        json_body(&body)?
    };
    let rotated = admin
        .rotate_client_secret(&client_id, request.overlap_seconds)
        .await?;
    state.server.forget_client(&client_id);
    Ok(fresh(
        StatusCode::OK,
        RotatedSecretResponse {
            client_id: rotated.client_id,
            client_secret: rotated.secret.expose().to_owned(),
            previous_secret_valid_until: rotated.previous_valid_until,
        },
    ))
}

#[utoipa::path(delete, path = "/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)),
    responses((status = 204, description = "Deleted, its grants revoked"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_client(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> Result<StatusCode, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    admin.delete_client(&client_id).await?;
    state.server.forget_client(&client_id);
    Ok(StatusCode::NO_CONTENT)
}
