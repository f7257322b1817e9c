//! The one mapping from errors to HTTP responses.

use axum::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::OAuthError;
use valet_protocol::{ErrorCode, ErrorResponse};

/// An error on its way out of a handler.
#[derive(Debug)]
pub enum ApiError {
    OAuth(OAuthError),
    /// The body was larger than the endpoint accepts.
    PayloadTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    MethodNotAllowed(&'static str),
    NotFound,
}

impl From<OAuthError> for ApiError {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::OAuth(error) => oauth_error_response(&error),
            Self::PayloadTooLarge => json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidRequest,
                Some("the request body is too large"),
            ),
            Self::RequestTimeout => json_error(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::InvalidRequest,
                Some("the request body did not arrive in time"),
            ),
            Self::MethodNotAllowed(allow) => {
                let mut response = json_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    ErrorCode::InvalidRequest,
                    Some(match allow {
                        "POST" => "this endpoint accepts POST only",
                        "GET" => "this endpoint accepts GET only",
                        _ => "this endpoint accepts GET and POST only",
                    }),
                );
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
                response
            }
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": "not_found"})),
            )
                .into_response(),
        }
    }
}

/// RFC 6749 §5.2: JSON body with `error` and `error_description`; `invalid_client`
/// answers 401 with a `WWW-Authenticate` challenge, or 429 with `Retry-After`
/// when the caller's address is throttled. 5xx bodies say only
/// `server_error` or `temporarily_unavailable`; the cause goes to the log.
fn oauth_error_response(error: &OAuthError) -> Response {
    let code = error.code();
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(error = %error, "request failed");
    } else {
        tracing::debug!(error = %error, "request refused");
    }
    if let Some(seconds) = error.retry_after() {
        let mut response = json_error(StatusCode::TOO_MANY_REQUESTS, code, error.description());
        retry_after(&mut response, seconds);
        return response;
    }
    let mut response = json_error(status, code, error.description());
    if code == ErrorCode::InvalidClient {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"valet\""),
        );
    }
    response
}

pub fn json_error(status: StatusCode, code: ErrorCode, description: Option<&str>) -> Response {
    let body = ErrorResponse {
        error: code.as_str(),
        error_description: description,
    };
    let mut response = (status, axum::Json(body)).into_response();
    no_store(&mut response);
    response
}

/// RFC 9110 §10.2.3: how many seconds a throttled caller should wait (at least 1).
pub fn retry_after(response: &mut Response, seconds: i64) {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
}

/// Headers on a typical API response at most: content type, caching, `Pragma`,
/// and the security headers `layers` adds (five with an https issuer).
const RESPONSE_HEADERS: usize = 8;

/// RFC 6749 §5.1: responses carrying tokens or credentials must not be cached.
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

pub fn json_bytes(body: impl Into<axum::body::Body>, cache_control: HeaderValue) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    // Room for these, `Pragma` and the security headers, so the map never regrows.
    headers.reserve(RESPONSE_HEADERS);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, cache_control);
    response
}

pub fn method_not_allowed(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<ApiError> + Clone {
    move || std::future::ready(ApiError::MethodNotAllowed(allow))
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
