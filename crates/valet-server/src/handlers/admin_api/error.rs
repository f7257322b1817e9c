//! The admin API's errors: always a JSON body `{"error", "error_description",
//! "field"}`; a token problem also carries the RFC 6750 §3 challenge.
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 400 | `invalid_request` | a field is invalid (`field` names it: `redirect_uris[1]`), or the body / query is malformed |
//! | 401 | `invalid_token` | no token, or a bad, expired, revoked or wrongly bound one, or one for another audience |
//! | 403 | `insufficient_scope` | the token lacks `admin:read` / `admin:write` |
//! | 404 | `not_found` | no such client, user, key or live grant |
//! | 409 | `conflict` | clashes with what is stored (`field` names it) |
//! | 500 | `server_error` | the store failed (the cause goes to the log only) |

use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use valet_core::admin::AdminError;
use valet_core::endpoint::admin_api::AdminAccess;
use valet_core::endpoint::userinfo::UserInfoError;

use crate::error::ApiError;
use crate::response::no_store;

/// An error answer of the admin API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid_request`, `invalid_token`, `insufficient_scope`, `not_found`,
    /// `conflict` or `server_error`.
    pub error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// The request field at fault, as the API spells it (`redirect_uris[1]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug)]
pub enum AdminApiError {
    /// No token (RFC 6750 §3.1: the challenge names no error).
    MissingToken,
    InvalidToken(&'static str),
    InsufficientScope(&'static str),
    /// A DPoP proof was refused, or a server failure while checking the token:
    /// answered as the other endpoints answer them.
    Other(ApiError),
    Admin(AdminError),
    /// The JSON body did not parse into the request.
    Body(String),
    Query(String),
}

impl AdminApiError {
    pub fn from_auth(error: UserInfoError, access: AdminAccess) -> Self {
        match error {
            UserInfoError::MissingToken => Self::MissingToken,
            UserInfoError::InvalidToken(description) => Self::InvalidToken(description),
            UserInfoError::InsufficientScope => Self::InsufficientScope(access.scope()),
            other => Self::Other(ApiError::from(other)),
        }
    }
}

impl From<AdminError> for AdminApiError {
    fn from(error: AdminError) -> Self {
        Self::Admin(error)
    }
}

pub async fn not_found() -> AdminApiError {
    AdminApiError::Admin(AdminError::NotFound {
        resource: valet_core::admin::Resource::Route,
        key: String::new(),
    })
}

fn body(
    status: StatusCode,
    error: &'static str,
    description: Option<String>,
    field: Option<String>,
) -> Response {
    let mut response = (
        status,
        axum::Json(ErrorBody {
            error,
            error_description: description,
            field,
        }),
    )
        .into_response();
    no_store(&mut response);
    response
}

fn challenge(mut response: Response, value: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

impl IntoResponse for AdminApiError {
    fn into_response(self) -> Response {
        match self {
            Self::MissingToken => challenge(
                body(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    Some("an access token with the admin scopes is required".to_owned()),
                    None,
                ),
                "Bearer realm=\"valet-admin\"".to_owned(),
            ),
            Self::InvalidToken(description) => challenge(
                body(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    Some(description.to_owned()),
                    None,
                ),
                format!(
                    "Bearer realm=\"valet-admin\", error=\"invalid_token\", error_description=\"{description}\""
                ),
            ),
            Self::InsufficientScope(scope) => challenge(
                body(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    Some(format!("this request needs the {scope} scope")),
                    None,
                ),
                format!(
                    "Bearer realm=\"valet-admin\", error=\"insufficient_scope\", scope=\"{scope}\""
                ),
            ),
            Self::Other(error) => error.into_response(),
            Self::Body(description) | Self::Query(description) => body(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                Some(description),
                None,
            ),
            Self::Admin(error) => admin_error(&error),
        }
    }
}

fn admin_error(error: &AdminError) -> Response {
    let field = error.field_error().map(|field| field.field.to_string());
    match error {
        AdminError::NotFound { .. } => body(
            StatusCode::NOT_FOUND,
            "not_found",
            Some(error.to_string()),
            None,
        ),
        AdminError::Invalid(_) => body(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(error.to_string()),
            field,
        ),
        AdminError::Conflict(_) => body(
            StatusCode::CONFLICT,
            "conflict",
            Some(error.to_string()),
            field,
        ),
        AdminError::KeyPending { .. } => body(
            StatusCode::CONFLICT,
            "conflict",
            Some(error.to_string()),
            Some("alg".to_owned()),
        ),
        AdminError::Store(_) | AdminError::Internal(_) => {
            tracing::error!(%error, "admin API request failed");
            body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                None,
            )
        }
    }
}
