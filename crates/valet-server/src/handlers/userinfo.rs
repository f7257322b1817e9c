//! UserInfo (OIDC Core §5.3), GET and POST, with RFC 6750 errors.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::endpoint::userinfo::UserInfoError;

use crate::AppState;
use crate::response::{ApiError, no_store};

pub async fn userinfo(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    match state.server.userinfo(authorization).await {
        Ok(claims) => {
            let mut response = axum::Json(claims).into_response();
            no_store(&mut response);
            Ok(response)
        }
        Err(UserInfoError::Server(error)) => Err(error.into()),
        Err(error) => Ok(bearer_error(&error)),
    }
}

/// RFC 6750 §3: the challenge names the error; no body is needed.
fn bearer_error(error: &UserInfoError) -> Response {
    let (status, challenge) = match error {
        UserInfoError::MissingToken => (
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"valet\"".to_owned(),
        ),
        UserInfoError::InvalidToken(description) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer realm=\"valet\", error=\"invalid_token\", error_description=\"{description}\""
            ),
        ),
        UserInfoError::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "Bearer realm=\"valet\", error=\"insufficient_scope\", scope=\"openid\"".to_owned(),
        ),
        UserInfoError::Server(_) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
    };
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    no_store(&mut response);
    response
}
