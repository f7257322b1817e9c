//! Request extractors whose rejections are Valet's own OAuth errors.

use axum::extract::{FromRequest, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use valet_core::OAuthError;
use valet_protocol::Form;

use crate::response::ApiError;

/// Form bodies are small; anything larger is not a real OAuth request.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// An `application/x-www-form-urlencoded` POST body (RFC 6749 §3.2), with the
/// request's `Authorization` header kept for client authentication.
pub struct OAuthForm {
    pub form: Form,
    pub authorization: Option<Vec<u8>>,
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let headers = request.headers();
        let is_form = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            )
            .into());
        }
        let mut authorizations = headers.get_all(AUTHORIZATION).iter();
        let authorization = authorizations.next().map(|value| value.as_bytes().to_vec());
        if authorizations.next().is_some() {
            return Err(OAuthError::invalid_request("more than one Authorization header").into());
        }
        let body = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        Ok(Self {
            form: Form::parse(&body),
            authorization,
        })
    }
}
