//! Request extractors whose rejections are Valet's own OAuth errors.

use std::time::Duration;

use axum::extract::{FromRequest, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use futures_util::StreamExt as _;
use valet_core::OAuthError;
use valet_protocol::Form;

use crate::error::ApiError;

/// Form bodies are small; anything larger is not a real OAuth request.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// The whole body must arrive within this time of the request head, so a client
/// sending it slowly (or not at all) cannot hold a connection and a task open.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

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
        // A declared length over the limit is refused before anything is read.
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_FORM_BYTES as u64) {
            return Err(ApiError::PayloadTooLarge);
        }
        let body = tokio::time::timeout(BODY_READ_TIMEOUT, read_body(request))
            .await
            .map_err(|_| ApiError::RequestTimeout)??;
        Ok(Self {
            form: Form::parse(&body),
            authorization,
        })
    }
}

/// An `application/json` body (RFC 7591 §3.1 client metadata), with the
/// request's `Authorization` header (an initial or registration access token).
pub struct JsonBody {
    pub body: Vec<u8>,
    pub authorization: Option<Vec<u8>>,
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let headers = request.headers();
        let is_json = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(
                OAuthError::invalid_request("the request body must be application/json").into(),
            );
        }
        let authorization = single_authorization(headers)?;
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_FORM_BYTES as u64) {
            return Err(ApiError::PayloadTooLarge);
        }
        let body = tokio::time::timeout(BODY_READ_TIMEOUT, read_body(request))
            .await
            .map_err(|_| ApiError::RequestTimeout)??;
        Ok(Self {
            body,
            authorization,
        })
    }
}

/// The one `Authorization` header, if any; two are refused.
pub fn single_authorization(headers: &axum::http::HeaderMap) -> Result<Option<Vec<u8>>, ApiError> {
    let mut authorizations = headers.get_all(AUTHORIZATION).iter();
    let authorization = authorizations.next().map(|value| value.as_bytes().to_vec());
    if authorizations.next().is_some() {
        return Err(OAuthError::invalid_request("more than one Authorization header").into());
    }
    Ok(authorization)
}

/// The body, at most `MAX_FORM_BYTES` of it (a chunked body has no declared length).
async fn read_body(request: Request) -> Result<Vec<u8>, ApiError> {
    let mut stream = request.into_body().into_data_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        // Malformed chunked encoding, or the client went away.
        let chunk =
            chunk.map_err(|_| OAuthError::invalid_request("the request body could not be read"))?;
        if body.len().saturating_add(chunk.len()) > MAX_FORM_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
