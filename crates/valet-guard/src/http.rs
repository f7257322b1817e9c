//! GETs to the issuer: bounded bodies, no redirects, and `Cache-Control` reading.

use std::fmt;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Response, redirect};

use crate::error::GuardError;

/// Sent as `User-Agent`, so the issuer's logs can tell guards apart.
const USER_AGENT: &str = concat!("valet-guard/", env!("CARGO_PKG_VERSION"));

/// The SSE stream sends a comment every 15 s; three missed ones mean a dead connection.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(45);

/// The two clients: one for documents (whole-request timeout) and one for the event
/// stream (connect and per-read timeouts only: the response never ends).
#[derive(Clone)]
pub(crate) struct Http {
    documents: Client,
    stream: Client,
}

/// A fetched document.
pub(crate) struct Document {
    pub(crate) body: Vec<u8>,
    /// `Cache-Control: max-age` (zero for `no-cache`/`no-store`), if the response had one.
    pub(crate) max_age: Option<Duration>,
}

/// Why a fetch failed; for logs.
#[derive(Debug)]
pub(crate) enum FetchError {
    Transport(reqwest::Error),
    Status(u16),
    TooLarge(usize),
    /// A response that is not what the protocol says (for logs; never the body).
    Invalid(&'static str),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Transport(error) => write!(f, "{error}"),
            FetchError::Status(status) => write!(f, "HTTP status {status}"),
            FetchError::TooLarge(limit) => write!(f, "response larger than {limit} bytes"),
            FetchError::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl Http {
    pub(crate) fn new(timeout: Duration) -> Result<Http, GuardError> {
        // Redirects are not followed: every URL fetched is one the issuer published.
        let documents = Client::builder()
            .user_agent(USER_AGENT)
            .redirect(redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(GuardError::HttpClient)?;
        let stream = Client::builder()
            .user_agent(USER_AGENT)
            .redirect(redirect::Policy::none())
            .connect_timeout(timeout)
            .read_timeout(STREAM_READ_TIMEOUT)
            .build()
            .map_err(GuardError::HttpClient)?;
        Ok(Http { documents, stream })
    }

    /// GETs `url` and reads at most `limit` bytes of a 200 response.
    pub(crate) async fn get(
        &self,
        url: &str,
        accept: &'static str,
        limit: usize,
    ) -> Result<Document, FetchError> {
        let response = self
            .documents
            .get(url)
            .header(ACCEPT, HeaderValue::from_static(accept))
            .send()
            .await
            .map_err(FetchError::Transport)?;
        read_bounded(response, limit).await
    }

    /// POSTs a form with `authorization` (a ready-made header value, marked sensitive so
    /// it is never shown) and reads at most `limit` bytes of a 200 response.
    pub(crate) async fn post_form(
        &self,
        url: &str,
        authorization: HeaderValue,
        form: String,
        limit: usize,
    ) -> Result<Document, FetchError> {
        let response = self
            .documents
            .post(url)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .header(AUTHORIZATION, authorization)
            .body(form)
            .send()
            .await
            .map_err(FetchError::Transport)?;
        read_bounded(response, limit).await
    }

    /// Opens a Server-Sent Events stream (the response's body is read by the caller),
    /// presenting `authorization` if given.
    pub(crate) async fn event_stream(
        &self,
        url: &str,
        authorization: Option<HeaderValue>,
    ) -> Result<Response, FetchError> {
        let mut request = self
            .stream
            .get(url)
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
            .header(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let response = request.send().await.map_err(FetchError::Transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        Ok(response)
    }
}

/// At most `limit` bytes of a 200 response's body, with its `max-age`.
async fn read_bounded(mut response: Response, limit: usize) -> Result<Document, FetchError> {
    if response.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(FetchError::TooLarge(limit));
    }
    let max_age = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .and_then(max_age);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(FetchError::Transport)? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(FetchError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Document { body, max_age })
}

/// The freshness lifetime of a response (RFC 9111 §5.2.2): `max-age=N` seconds, or zero
/// for `no-cache`/`no-store`; `None` when neither is present or the value is unreadable.
pub(crate) fn max_age(cache_control: &str) -> Option<Duration> {
    let mut found = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age")
            && let Some(seconds) = value.and_then(|v| v.parse::<u64>().ok())
        {
            found = Some(Duration::from_secs(seconds));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;

    #[test]
    fn cache_control_max_age() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(max_age("public, max-age=300"), secs(300));
        assert_eq!(max_age("Max-Age = 5"), secs(5));
        assert_eq!(max_age("max-age=\"7\", public"), secs(7));
        assert_eq!(max_age("public, no-cache, max-age=300"), secs(0));
        assert_eq!(max_age("no-store"), secs(0));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=-1"), None);
        assert_eq!(max_age("max-age=99999999999999999999999"), None);
        assert_eq!(max_age(""), None);
    }
}
