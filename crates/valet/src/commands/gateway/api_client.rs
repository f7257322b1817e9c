//! The HTTP client that carries `/api` calls upstream.
//!
//! `http://` upstreams (an API on the same host or private network, the usual
//! place behind a backend-for-frontend) go through hyper-util's pooled HTTP/1.1
//! client directly: the request and reply bodies pass through as they are
//! (streamed, with their length), the URI is built once as an `http::Uri`, and
//! there is no redirect layer or total timeout to pay for on every call. That
//! path costs about half the instructions of reqwest's (docs/benchmarks.md, "The
//! gateway's proxy path"). `https://` upstreams need TLS and the platform's
//! certificate verification, which reqwest already has set up: they keep going
//! through reqwest.

use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::storage::CliError;

/// How long connecting to an upstream may take (no limit on the call itself:
/// an API may stream a long reply).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Request bodies of known length up to this size are read before forwarding
/// through reqwest (one piece, with its length).
const SMALL_BODY: u64 = 64 * 1024;
const SMALL_BODY_USIZE: usize = 64 * 1024;

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

thread_local! {
    /// Each thread's own pool of `http://` upstream connections. A pooled
    /// connection is driven by a task on the runtime that opened it; kept per
    /// thread, a call never goes out over a connection another thread drives
    /// (the gateway serves each browser connection on one single-threaded
    /// runtime), so it costs no wake-up across threads.
    static PLAIN: Client<HttpConnector, Body> = plain_client();
}

fn plain_client() -> Client<HttpConnector, Body> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    // Small request/reply exchanges: don't let Nagle hold back a write.
    connector.set_nodelay(true);
    // hyper-util's `enforce_http` refuses `https://` URIs here; those go
    // through `ApiClient::tls`.
    Client::builder(TokioExecutor::new()).build(connector)
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

    /// Sends `method uri` with `headers` (already filtered; `Host` and the
    /// body's length are set from the URI and the body) and `body`.
    pub async fn call(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Reply, CallError> {
        if uri.scheme_str() == Some("http") {
            Self::call_plain(method, uri, headers, body).await
        } else {
            self.call_tls(method, uri, headers, body).await
        }
    }

    async fn call_plain(
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Reply, CallError> {
        let mut request = axum::http::Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let plain = PLAIN.with(Client::clone);
        match plain.request(request).await {
            Ok(reply) => {
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

    async fn call_tls(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Reply, CallError> {
        let url = reqwest::Url::parse(&uri.to_string())
            .map_err(|error| CallError::Unreachable(error.to_string()))?;
        let mut outgoing = self.tls.request(method, url).headers(headers);
        if !body.is_end_stream() {
            outgoing = match body.size_hint().exact() {
                Some(length) if length <= SMALL_BODY => {
                    match axum::body::to_bytes(body, SMALL_BODY_USIZE).await {
                        Ok(bytes) => outgoing.body(bytes),
                        Err(_) => return Err(CallError::BadBody),
                    }
                }
                _ => outgoing.body(reqwest::Body::wrap_stream(body.into_data_stream())),
            };
        }
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
