//! Headers and bodies shared by successful responses (errors: see `error`).

use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER};
use axum::response::Response;

/// RFC 9110 §10.2.3: how many seconds a throttled caller should wait (at least 1).
pub fn retry_after(response: &mut Response, seconds: i64) {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
}

/// Headers on a typical API response at most: content type, caching, `Pragma`,
/// the security headers `layers` adds (five with an https issuer) and
/// `X-Request-Id`.
const RESPONSE_HEADERS: usize = 9;

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
