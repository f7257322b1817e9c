//! The HTTP client that carries `/api` calls upstream.
//!
//! `http://` upstreams (an API on the same host or private network, the usual
//! place behind a backend-for-frontend) are called over hyper's HTTP/1.1
//! connections directly, kept open in a pool per thread (`pool`): the request
//! and reply bodies pass through as they are (streamed, with their length; a
//! small one in one piece), the request target is built once in origin form,
//! and a call costs no pool-key hashing, no connector layers, no redirect layer
//! and no total timeout.
//! docs/benchmarks.md ("The gateway's proxy path") has the figures. `https://`
//! upstreams need TLS and the platform's certificate verification, which
//! reqwest already has set up: they keep going through reqwest.

use axum::body::Body;
use axum::http::header::HOST;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};

use super::pool::{self, CONNECT_TIMEOUT};
use crate::commands::forwarding::{Upstream, whole_if_small, with_body};
use crate::storage::CliError;

/// A reply from upstream, before the gateway filters its headers.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

/// Why a call did not get a reply.
pub enum CallError {
    /// The request body could not be read (the browser went away mid-body).
    BadBody,
    /// No connection, or the upstream broke off.
    Unreachable(String),
}

pub struct ApiClient {
    tls: reqwest::Client,
}

impl ApiClient {
    pub fn new() -> Result<ApiClient, CliError> {
        let tls = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|error| format!("API HTTP client: {error}"))?;
        Ok(ApiClient { tls })
    }

    /// Sends `method target` (from [`Upstream::target_for`]) to `upstream` with
    /// `headers` (already filtered; `Host` and the body's length are set from
    /// the upstream and the body) and `body`.
    pub async fn call(
        &self,
        upstream: &Upstream,
        method: Method,
        target: Uri,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Reply, CallError> {
        let mut reply = if upstream.is_tls() {
            let url = upstream.absolute(&target);
            self.call_tls(method, &url, headers, body).await?
        } else {
            let body = whole_if_small(body).await.map_err(|_| CallError::BadBody)?;
            let mut request = Request::new(body);
            *request.method_mut() = method;
            *request.uri_mut() = target;
            *request.headers_mut() = headers;
            request
                .headers_mut()
                .insert(HOST, upstream.host_header().clone());
            pool::call(upstream.authority(), request).await?
        };
        reply.body = whole_if_small(reply.body)
            .await
            .map_err(|error| CallError::Unreachable(format!("the reply broke off: {error}")))?;
        Ok(reply)
    }

    async fn call_tls(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Reply, CallError> {
        let url =
            reqwest::Url::parse(url).map_err(|error| CallError::Unreachable(error.to_string()))?;
        let outgoing = with_body(self.tls.request(method, url).headers(headers), body)
            .await
            .map_err(|_| CallError::BadBody)?;
        match outgoing.send().await {
            Ok(reply) => {
                let reply = axum::http::Response::<reqwest::Body>::from(reply);
                let (parts, body) = reply.into_parts();
                Ok(Reply {
                    status: parts.status,
                    headers: parts.headers,
                    body: Body::new(body),
                })
            }
            Err(error) => Err(CallError::Unreachable(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::atomic::Ordering;

    use axum::body::HttpBody as _;

    use super::*;
    use crate::commands::gateway::pool::tests::{body_of, upstream};

    #[tokio::test(flavor = "current_thread")]
    async fn small_replies_are_read_whole_before_they_are_passed_on() {
        let upstream = upstream();
        let api =
            crate::commands::forwarding::Upstream::parse(&format!("http://{}", upstream.authority))
                .unwrap();
        let client = ApiClient::new().unwrap();
        let call = |path: &'static str| {
            client.call(
                &api,
                Method::GET,
                Uri::from_static(path),
                HeaderMap::new(),
                Body::empty(),
            )
        };
        // Read whole, the reply has given its connection back: the next call,
        // made before the first reply is passed on, reuses it.
        let Ok(first) = call("/ok").await else {
            panic!("the upstream is up");
        };
        let Ok(second) = call("/ok").await else {
            panic!("the upstream is up");
        };
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 1);
        assert_eq!(first.body.size_hint().exact(), Some(2));
        assert_eq!(body_of(first).await, "ok");
        assert_eq!(body_of(second).await, "ok");
        // A megabyte streams: its connection is busy until it has been read.
        let Ok(big) = call("/big").await else {
            panic!("the upstream is up");
        };
        let Ok(after) = call("/ok").await else {
            panic!("the upstream is up");
        };
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);
        assert_eq!(body_of(big).await.len(), 1_048_576);
        assert_eq!(body_of(after).await, "ok");
    }
}
