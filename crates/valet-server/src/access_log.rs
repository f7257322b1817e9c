//! The access log (one line per request, target `valet::access`) and the trace
//! span of a request (target `valet::http`, exported over OTLP when configured).
//!
//! Both carry only what cannot hold a secret: the method, the path without its
//! query (a query carries codes, tokens and `state`), the route template, the
//! status, the timing, the response size, the request id and the client's
//! address. Never a header (`Authorization`, `Cookie`, `DPoP`) and never a body.

use std::net::IpAddr;
use std::time::Instant;

use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::http::uri::PathAndQuery;
use axum::response::Response;
use tracing::Span;
use valet_core::RequestId;

/// The target of the access log lines, for `VALET_LOG` filters
/// (`VALET_LOG=info,valet::access=off` silences them too).
pub const ACCESS_TARGET: &str = "valet::access";

/// What the access log line needs from the request, taken before the route
/// consumes it.
pub struct AccessEntry {
    method: Method,
    /// The path and query as received: cloning it is a reference count. Only
    /// its path is logged.
    target: Option<PathAndQuery>,
    client: Option<IpAddr>,
}

impl AccessEntry {
    /// `client` is the address as the throttles see it: the TCP peer, or behind
    /// a trusted proxy the forwarded one (see `client_address`).
    pub fn new(request: &Request, client: Option<IpAddr>) -> Self {
        Self {
            method: request.method().clone(),
            target: request.uri().path_and_query().cloned(),
            client,
        }
    }

    /// Writes the line. `bytes` is the body's length when it is known before it
    /// is sent (every response but an event stream).
    pub fn log(self, response: &Response, id: &RequestId, started: Instant) {
        let path = self.target.as_ref().map_or("/", PathAndQuery::path);
        // Microsecond resolution: more digits are only noise.
        let duration_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        let status = response.status().as_u16();
        let bytes = response.body().size_hint().exact();
        let client = self
            .client
            .map(|address| address.to_canonical().to_string())
            .unwrap_or_default();
        tracing::info!(
            target: ACCESS_TARGET,
            method = %self.method,
            path,
            status,
            duration_ms,
            bytes,
            request_id = %id,
            client = %client,
            "{} {path} {status}",
            self.method,
        );
    }
}

/// The span of one request, named after its route template as OpenTelemetry's
/// HTTP conventions ask (`GET /authorize`), never after the raw path.
pub fn request_span(method: &Method, endpoint: Option<&MatchedPath>) -> Span {
    let route = endpoint.map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!(
        target: "valet::http",
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Puts the response status on the request's span; a server error marks the
/// span as failed.
pub fn record_status(span: &Span, status: u16) {
    if span.is_none() {
        return;
    }
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}
