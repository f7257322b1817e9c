//! Middleware applied to every request: its id, security headers on the
//! response, request metrics, the access log line, the trace span, and the log
//! line of a failed request.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use metrics::{Counter, Histogram};
use tokio::task::futures::TaskLocalFuture;
use tracing::Instrument as _;
use tracing::instrument::Instrumented;
use valet_core::RequestId;

use crate::access_log::{AccessEntry, request_span};
use crate::client_address::TrustedProxies;
use crate::context::{X_REQUEST_ID, header_value, request_id, with_request_id};
use crate::error::FailureCause;

/// The one middleware around every route: it gives the request its id (echoed
/// as `X-Request-Id`), times it for the metrics, sets the security headers on
/// whatever the route answered, and logs a server error's cause with the id.
///
/// A tower layer rather than `axum::middleware::from_fn`: that boxes its future and
/// clones the inner service for every request, and this sits on the token
/// endpoint's path. Applied with `Router::layer`, so routing has already put the
/// [`MatchedPath`] on the request.
#[derive(Clone)]
pub struct AroundEveryRequest {
    /// The issuer is https, so browsers are told to use nothing else (HSTS).
    pub https: bool,
    /// Proxies whose `X-Request-Id` is kept; `None` when none is trusted, so
    /// the default costs no reference count per request.
    pub trusted_proxies: Option<Arc<TrustedProxies>>,
    /// Whether each request gets its access log line.
    pub access_log: bool,
    /// Whether each request gets a trace span (exported over OTLP).
    pub traced: bool,
    /// Makes the span continue the trace named in a trusted proxy's headers.
    pub continue_trace: Option<ContinueTrace>,
}

/// Sets the parent of a request's span from its headers (W3C Trace Context).
/// Given by the binary, which holds the OpenTelemetry propagator; called only
/// for requests from a trusted proxy, so nobody else picks the trace a
/// request joins.
pub type ContinueTrace = fn(&HeaderMap, &tracing::Span);

impl<S> tower::Layer<S> for AroundEveryRequest {
    type Service = AroundEveryRequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AroundEveryRequestService {
            inner,
            https: self.https,
            trusted_proxies: self.trusted_proxies.clone(),
            access_log: self.access_log,
            traced: self.traced,
            continue_trace: self.continue_trace,
        }
    }
}

#[derive(Clone)]
pub struct AroundEveryRequestService<S> {
    inner: S,
    https: bool,
    trusted_proxies: Option<Arc<TrustedProxies>>,
    access_log: bool,
    traced: bool,
    continue_trace: Option<ContinueTrace>,
}

impl<S> tower::Service<Request> for AroundEveryRequestService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Finishing<Instrumented<TaskLocalFuture<RequestId, S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let endpoint = request.extensions().get::<MatchedPath>().cloned();
        let id = request_id(&request, self.trusted_proxies.as_deref());
        let access =
            self.access_log.then(|| {
                let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(
                    |ConnectInfo(peer)| match &self.trusted_proxies {
                        Some(trusted) => trusted.client_address(peer.ip(), request.headers()),
                        None => peer.ip(),
                    },
                );
                AccessEntry::new(&request, client)
            });
        let span = if self.traced {
            let span = request_span(request.method(), endpoint.as_ref());
            if let Some(continue_trace) = self.continue_trace
                && from_trusted_proxy(&request, self.trusted_proxies.as_deref())
            {
                continue_trace(request.headers(), &span);
            }
            span
        } else {
            tracing::Span::none()
        };
        Finishing {
            inner: with_request_id(id, self.inner.call(request)).instrument(span.clone()),
            span,
            endpoint,
            id,
            https: self.https,
            started: Instant::now(),
            access,
        }
    }
}

pin_project_lite::pin_project! {
    /// A route's response on its way out: headers set and metrics recorded when it
    /// is ready.
    pub struct Finishing<F> {
        #[pin]
        inner: F,
        endpoint: Option<MatchedPath>,
        id: RequestId,
        https: bool,
        started: Instant,
        access: Option<AccessEntry>,
        span: tracing::Span,
    }
}

impl<F> Future for Finishing<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(result) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        let Ok(mut response) = result;
        security_headers(response.headers_mut(), *this.https);
        if let Some(id) = header_value(this.id) {
            response.headers_mut().insert(X_REQUEST_ID.clone(), id);
        }
        let endpoint = this
            .endpoint
            .as_ref()
            .map_or(UNMATCHED, MatchedPath::as_str);
        if let Some(FailureCause(cause)) = response.extensions_mut().remove::<FailureCause>() {
            tracing::error!(request_id = %this.id, endpoint, error = %cause, "request failed");
        }
        let status = response.status().as_u16();
        record_request(endpoint, status, *this.started);
        crate::access_log::record_status(this.span, status);
        if let Some(access) = this.access.take() {
            access.log(&response, this.id, *this.started);
        }
        Poll::Ready(Ok(response))
    }
}

/// Whether the TCP peer of `request` is one of the trusted proxies.
fn from_trusted_proxy(request: &Request, trusted: Option<&TrustedProxies>) -> bool {
    trusted
        .zip(request.extensions().get::<ConnectInfo<SocketAddr>>())
        .is_some_and(|(trusted, ConnectInfo(peer))| trusted.trusts(peer.ip()))
}

/// Valet's responses are never to be framed, sniffed or leak the URL onward; with
/// an https issuer, browsers are told to use nothing else (RFC 6797).
fn security_headers(headers: &mut HeaderMap, https: bool) {
    if https {
        headers.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Pages set their own policy (with a nonce); everything else gets the strictest.
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
}

/// The endpoint label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// The metric handles of one endpoint. The label is the route pattern, never the
/// raw path, so there are as many of these as routes (plus `unmatched`).
struct EndpointMetrics {
    duration: Histogram,
    /// Requests per status code: a handful per endpoint, so a list is enough.
    requests: Vec<(u16, Counter)>,
}

thread_local! {
    /// Handles looked up once per thread and kept, so a request builds no label
    /// strings and makes no registry lookup. Connection threads are few and
    /// long-lived, and each map is bounded by routes × status codes.
    static ENDPOINT_METRICS: RefCell<HashMap<Box<str>, EndpointMetrics>> =
        RefCell::new(HashMap::new());
}

/// Counts the request by endpoint and status and records its latency.
fn record_request(endpoint: &str, status: u16, started: Instant) {
    ENDPOINT_METRICS.with_borrow_mut(|endpoints| {
        let metrics = match endpoints.get_mut(endpoint) {
            Some(metrics) => metrics,
            None => endpoints.entry(endpoint.into()).or_insert(EndpointMetrics {
                duration: metrics::histogram!(
                    "valet_http_request_duration_seconds",
                    "endpoint" => endpoint.to_owned()
                ),
                requests: Vec::new(),
            }),
        };
        metrics.duration.record(started.elapsed().as_secs_f64());
        match metrics.requests.iter().find(|(code, _)| *code == status) {
            Some((_, counter)) => counter.increment(1),
            None => {
                let counter = metrics::counter!(
                    "valet_http_requests_total",
                    "endpoint" => endpoint.to_owned(),
                    "status" => status.to_string()
                );
                counter.increment(1);
                metrics.requests.push((status, counter));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_only_for_an_https_issuer() {
        for https in [true, false] {
            let mut headers = HeaderMap::new();
            security_headers(&mut headers, https);
            assert_eq!(headers.contains_key(STRICT_TRANSPORT_SECURITY), https);
            assert_eq!(
                headers.get(X_FRAME_OPTIONS),
                Some(&HeaderValue::from_static("DENY"))
            );
        }
    }
}
