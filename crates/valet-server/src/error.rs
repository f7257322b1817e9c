//! The one mapping from errors to HTTP responses: every kind of error a handler
//! or extractor can end in is an [`ApiError`], and [`ApiError::into_response`]
//! alone decides its status, headers and body.
//!
//! | kind | status | headers | body |
//! |---|---|---|---|
//! | [`OAuthError`] (RFC 6749 §5.2) | the code's (400, 401, 403, 500, 503) | `no-store`; `WWW-Authenticate: Basic` for `invalid_client` | JSON `error`, `error_description` (none for 5xx) |
//! | throttled client (RFC 6585 §4) | 429 | `Retry-After`, `no-store` | JSON `invalid_client` |
//! | [`PageError`] (browser) | its status | the page's CSP, `no-store` | HTML error page |
//! | [`BearerError`] (RFC 6750 §3) | 401 or 403 | `WWW-Authenticate: Bearer …`, `no-store` | empty |
//! | [`ApiError::Busy`] (RFC 9110 §15.6.4) | 503 | `Retry-After`, `no-store` | JSON `temporarily_unavailable` |
//! | body too large, too slow | 413, 408 | `no-store` | JSON `invalid_request` |
//! | wrong method | 405 | `Allow`, `no-store` | JSON `invalid_request` |
//! | no route, no list | 404 | | JSON `not_found` |
//! | a page that cannot be rendered | 500 | | `internal error` |
//!
//! A server error's cause goes to the log only: it is put on the response as
//! a [`FailureCause`], which the middleware logs with the request's id and
//! takes off again.

use axum::http::header::{ALLOW, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::OAuthError;
use valet_core::authorize::PageError;
use valet_core::config::STATUS_SCOPE;
use valet_core::endpoint::registration::RegistrationError;
use valet_core::endpoint::userinfo::UserInfoError;
use valet_core::status::StreamRefusal;
use valet_protocol::{ErrorCode, ErrorResponse};

use crate::pages;
use crate::response::{no_store, retry_after};

/// An error on its way out of a handler.
#[derive(Debug)]
pub enum ApiError {
    OAuth(OAuthError),
    /// A browser-facing error: a page, never a redirect (the client or redirect
    /// URI is not trusted, or the form cannot go on).
    Page(PageError),
    /// A bearer token was missing or not good enough.
    Bearer(BearerError),
    /// RFC 9449 §7.1: a DPoP-bound token's proof was refused (`invalid_dpop_proof`,
    /// `use_dpop_nonce`): 401 with a `DPoP` challenge.
    Dpop(OAuthError),
    /// Refused for load, with a wait in seconds and words for the caller.
    Busy {
        description: &'static str,
        retry_after_seconds: i64,
    },
    /// The body was larger than the endpoint accepts.
    PayloadTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    MethodNotAllowed(&'static str),
    NotFound,
    /// A page's template failed to render (the cause is in the log).
    Rendering,
}

/// RFC 6750 §3: why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No credential: a bare challenge (§3.1 says no error code).
    MissingToken,
    /// `invalid_token`, with a description safe to show.
    InvalidToken(&'static str),
    /// `insufficient_scope`, naming the scope needed.
    InsufficientScope(&'static str),
}

/// A server error's cause, for the log line of its request (see the module doc).
#[derive(Debug, Clone)]
pub struct FailureCause(pub String);

impl From<OAuthError> for ApiError {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

/// RFC 6750 §3 for UserInfo's token (OIDC Core §5.3.3).
impl From<UserInfoError> for ApiError {
    fn from(error: UserInfoError) -> Self {
        match error {
            UserInfoError::MissingToken => Self::Bearer(BearerError::MissingToken),
            UserInfoError::InvalidToken(description) => {
                Self::Bearer(BearerError::InvalidToken(description))
            }
            UserInfoError::InsufficientScope => {
                Self::Bearer(BearerError::InsufficientScope("openid"))
            }
            UserInfoError::Dpop(error) => Self::Dpop(error),
            UserInfoError::Server(error) => Self::OAuth(error),
        }
    }
}

/// The push stream's credential (RFC 6750 §3) and cap (503, RFC 9110 §15.6.4).
impl From<StreamRefusal> for ApiError {
    fn from(refusal: StreamRefusal) -> Self {
        match refusal {
            StreamRefusal::MissingToken => Self::Bearer(BearerError::MissingToken),
            StreamRefusal::InvalidToken(description) => {
                Self::Bearer(BearerError::InvalidToken(description))
            }
            StreamRefusal::InsufficientScope => {
                Self::Bearer(BearerError::InsufficientScope(STATUS_SCOPE))
            }
            StreamRefusal::Full {
                retry_after_seconds,
            } => Self::Busy {
                description: "too many event streams are open; retry later",
                retry_after_seconds,
            },
            StreamRefusal::Server(error) => Self::OAuth(error),
        }
    }
}

/// Dynamic client registration (RFC 7591 §3.2.2, RFC 7592 §2): closed is 404,
/// a bad token a bearer challenge (RFC 6750 §3.1), the rest OAuth errors.
impl From<RegistrationError> for ApiError {
    fn from(error: RegistrationError) -> Self {
        match error {
            RegistrationError::Disabled => Self::NotFound,
            RegistrationError::MissingToken => Self::Bearer(BearerError::MissingToken),
            RegistrationError::InvalidToken(description) => {
                Self::Bearer(BearerError::InvalidToken(description))
            }
            RegistrationError::OAuth(error) => Self::OAuth(error),
        }
    }
}

impl From<PageError> for ApiError {
    fn from(error: PageError) -> Self {
        Self::Page(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::OAuth(error) => oauth_error_response(&error),
            Self::Page(error) => error_page(&error),
            Self::Bearer(error) => bearer_challenge(&error),
            Self::Dpop(error) => dpop_challenge(&error),
            Self::Busy {
                description,
                retry_after_seconds,
            } => {
                let mut response = json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::TemporarilyUnavailable,
                    Some(description),
                );
                retry_after(&mut response, retry_after_seconds);
                response
            }
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
            Self::MethodNotAllowed(allow) => method_not_allowed_response(allow),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": "not_found"})),
            )
                .into_response(),
            Self::Rendering => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
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
    if let Some(seconds) = error.retry_after() {
        tracing::debug!(error = %error, "request refused");
        let mut response = json_error(StatusCode::TOO_MANY_REQUESTS, code, error.description());
        retry_after(&mut response, seconds);
        return response;
    }
    let mut response = json_error(status, code, error.description());
    if status.is_server_error() {
        response
            .extensions_mut()
            .insert(FailureCause(error.to_string()));
    } else {
        tracing::debug!(error = %error, "request refused");
    }
    if code == ErrorCode::InvalidClient {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"valet\""),
        );
    }
    dpop_nonce_header(&mut response, error);
    response
}

/// RFC 9449 §8: the nonce the client must put in its next proof.
fn dpop_nonce_header(response: &mut Response, error: &OAuthError) {
    if let Some(value) = error
        .dpop_nonce()
        .and_then(|nonce| HeaderValue::from_str(nonce).ok())
    {
        response.headers_mut().insert(DPOP_NONCE.clone(), value);
    }
}

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
pub static DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// RFC 9449 §7.1: 401 with `WWW-Authenticate: DPoP` naming the error and the
/// algorithms proofs may use, the nonce header when one is required.
fn dpop_challenge(error: &OAuthError) -> Response {
    let algs: Vec<&str> = valet_jose::DPOP_ALGORITHMS
        .iter()
        .map(|alg| alg.as_str())
        .collect();
    let challenge = format!(
        "DPoP algs=\"{}\", error=\"{}\", error_description=\"{}\"",
        algs.join(" "),
        error.code(),
        error.description().unwrap_or_default()
    );
    tracing::debug!(error = %error, "DPoP proof refused");
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    dpop_nonce_header(&mut response, error);
    no_store(&mut response);
    response
}

fn json_error(status: StatusCode, code: ErrorCode, description: Option<&str>) -> Response {
    let body = ErrorResponse {
        error: code.as_str(),
        error_description: description,
    };
    let mut response = (status, axum::Json(body)).into_response();
    no_store(&mut response);
    response
}

fn method_not_allowed_response(allow: &'static str) -> Response {
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::InvalidRequest,
        Some(match allow {
            "POST" => "this endpoint accepts POST only",
            "GET" => "this endpoint accepts GET only",
            "GET, PUT, DELETE" => "this endpoint accepts GET, PUT and DELETE only",
            _ => "this endpoint accepts GET and POST only",
        }),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

fn error_page(error: &PageError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let context = minijinja::context! { title => error.title, message => &error.message };
    pages::render(status, "error.html", context)
        .unwrap_or_else(|| ApiError::Rendering.into_response())
}

/// RFC 6750 §3: the challenge names the error; no body is needed.
fn bearer_challenge(error: &BearerError) -> Response {
    let (status, challenge) = match error {
        BearerError::MissingToken => (
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"valet\"".to_owned(),
        ),
        BearerError::InvalidToken(description) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer realm=\"valet\", error=\"invalid_token\", error_description=\"{description}\""
            ),
        ),
        BearerError::InsufficientScope(scope) => (
            StatusCode::FORBIDDEN,
            format!("Bearer realm=\"valet\", error=\"insufficient_scope\", scope=\"{scope}\""),
        ),
    };
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    no_store(&mut response);
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    //! The exact answer of every error kind, as the handlers gave it before the
    //! mapping moved here.

    use axum::http::HeaderMap;

    use super::*;

    /// Status, the headers that matter, and the body.
    async fn answer(error: ApiError) -> (u16, HeaderMap, String) {
        let response = error.into_response();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).map(|value| value.to_str().unwrap())
    }

    fn assert_no_store(headers: &HeaderMap) {
        assert_eq!(header(headers, "cache-control"), Some("no-store"));
        assert_eq!(header(headers, "pragma"), Some("no-cache"));
    }

    #[tokio::test]
    async fn oauth_errors_are_rfc_6749_json() {
        let (status, headers, body) =
            answer(OAuthError::invalid_request("the grant_type is missing").into()).await;
        assert_eq!(status, 400);
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        assert_no_store(&headers);
        assert_eq!(header(&headers, "www-authenticate"), None);
        assert_eq!(
            body,
            r#"{"error":"invalid_request","error_description":"the grant_type is missing"}"#
        );

        let (status, headers, body) =
            answer(OAuthError::invalid_client("client authentication failed").into()).await;
        assert_eq!(status, 401);
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some("Basic realm=\"valet\"")
        );
        assert_no_store(&headers);
        assert_eq!(
            body,
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#
        );
    }

    #[tokio::test]
    async fn a_throttled_client_gets_429_with_retry_after() {
        let (status, headers, body) = answer(OAuthError::client_throttled(42).into()).await;
        assert_eq!(status, 429);
        assert_eq!(header(&headers, "retry-after"), Some("42"));
        assert_eq!(header(&headers, "www-authenticate"), None);
        assert_no_store(&headers);
        assert_eq!(
            body,
            r#"{"error":"invalid_client","error_description":"too many failed client authentications from this address; try again in 42 seconds"}"#
        );
    }

    #[tokio::test]
    async fn server_errors_are_opaque_and_their_cause_goes_to_the_log_line() {
        let response =
            ApiError::from(OAuthError::server("disk full at /var/lib/valet")).into_response();
        let cause = response
            .extensions()
            .get::<FailureCause>()
            .unwrap()
            .0
            .clone();
        assert!(cause.contains("disk full"), "{cause}");
        let (status, headers, body) =
            answer(OAuthError::server("disk full at /var/lib/valet").into()).await;
        assert_eq!(status, 500);
        assert_no_store(&headers);
        assert_eq!(body, r#"{"error":"server_error"}"#);

        let (status, _, body) = answer(OAuthError::unavailable("connection refused").into()).await;
        assert_eq!(status, 503);
        assert_eq!(body, r#"{"error":"temporarily_unavailable"}"#);
    }

    #[tokio::test]
    async fn bearer_errors_are_rfc_6750_challenges_without_a_body() {
        let cases = [
            (BearerError::MissingToken, 401, "Bearer realm=\"valet\""),
            (
                BearerError::InvalidToken("the access token is invalid, expired or revoked"),
                401,
                "Bearer realm=\"valet\", error=\"invalid_token\", error_description=\"the access token is invalid, expired or revoked\"",
            ),
            (
                BearerError::InsufficientScope("openid"),
                403,
                "Bearer realm=\"valet\", error=\"insufficient_scope\", scope=\"openid\"",
            ),
        ];
        for (error, expected_status, challenge) in cases {
            let (status, headers, body) = answer(ApiError::Bearer(error)).await;
            assert_eq!(status, expected_status);
            assert_eq!(header(&headers, "www-authenticate"), Some(challenge));
            assert_no_store(&headers);
            assert_eq!(body, "");
        }
        let (status, headers, _) = answer(StreamRefusal::InsufficientScope.into()).await;
        assert_eq!(status, 403);
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some("Bearer realm=\"valet\", error=\"insufficient_scope\", scope=\"valet:status\"")
        );
    }

    #[tokio::test]
    async fn a_full_stream_cap_is_503_with_retry_after() {
        let full = StreamRefusal::Full {
            retry_after_seconds: 30,
        };
        let (status, headers, body) = answer(full.into()).await;
        assert_eq!(status, 503);
        assert_eq!(header(&headers, "retry-after"), Some("30"));
        assert_no_store(&headers);
        assert_eq!(
            body,
            r#"{"error":"temporarily_unavailable","error_description":"too many event streams are open; retry later"}"#
        );
    }

    #[tokio::test]
    async fn page_errors_are_html_pages_never_redirects() {
        let page = PageError {
            status: 403,
            title: "Form expired",
            message: "This form could not be verified.".to_owned(),
        };
        let (status, headers, body) = answer(page.into()).await;
        assert_eq!(status, 403);
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));
        assert_eq!(header(&headers, "location"), None);
        let csp = header(&headers, "content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(body.contains("Form expired"), "{body}");
        assert!(body.contains("This form could not be verified."), "{body}");
    }

    #[tokio::test]
    async fn transport_errors() {
        let (status, headers, body) = answer(ApiError::MethodNotAllowed("POST")).await;
        assert_eq!(status, 405);
        assert_eq!(header(&headers, "allow"), Some("POST"));
        assert_no_store(&headers);
        assert_eq!(
            body,
            r#"{"error":"invalid_request","error_description":"this endpoint accepts POST only"}"#
        );
        let (status, _, body) = answer(ApiError::MethodNotAllowed("GET, POST")).await;
        assert_eq!(status, 405);
        assert!(body.contains("accepts GET and POST only"), "{body}");
        let (status, _, body) = answer(ApiError::PayloadTooLarge).await;
        assert_eq!(status, 413);
        assert_eq!(
            body,
            r#"{"error":"invalid_request","error_description":"the request body is too large"}"#
        );
        let (status, _, body) = answer(ApiError::RequestTimeout).await;
        assert_eq!(status, 408);
        assert_eq!(
            body,
            r#"{"error":"invalid_request","error_description":"the request body did not arrive in time"}"#
        );
        let (status, _, body) = answer(ApiError::NotFound).await;
        assert_eq!(status, 404);
        assert_eq!(body, r#"{"error":"not_found"}"#);
        let (status, _, body) = answer(ApiError::Rendering).await;
        assert_eq!(status, 500);
        assert_eq!(body, "internal error");
    }
}
