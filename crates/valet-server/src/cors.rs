//! CORS (the Fetch standard's protocol) on the endpoints a browser app calls.
//!
//! - **Public documents** (discovery, JWKS, status lists): `Access-Control-Allow-Origin: *`
//!   for any origin. They hold nothing private and take no credentials.
//! - **Client endpoints** (`/token`, `/userinfo`, `/revoke`): only the origins
//!   clients registered (see `valet_core::cors`) get `Access-Control-Allow-Origin`
//!   naming them, with `Vary: Origin`. Other origins get no CORS header, so the
//!   browser keeps the answer from the page; the request itself is answered as
//!   for any other caller (a server sends no `Origin` and is not affected).
//! - `Access-Control-Allow-Credentials` is never sent: browser apps send their
//!   tokens in `Authorization` or the form, never Valet's cookies.
//! - Introspection, the event stream and the sign-in pages have no CORS: they are
//!   for resource servers and navigations, not for scripts.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
//! answered here, 204, without reaching the route.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use valet_core::AuthorizationServer;

/// The request headers a browser app may send: bearer or Basic credentials, a
/// form or JSON body, and a DPoP proof (RFC 9449).
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, DPoP";
/// The response headers scripts may read besides the safelisted ones.
const EXPOSED_HEADERS: &str = "WWW-Authenticate, DPoP-Nonce";
/// How long a browser may reuse a preflight answer (Chromium caps it at 2 hours).
const MAX_AGE_SECONDS: &str = "600";

/// Who may read an endpoint's answers.
#[derive(Clone)]
enum Audience {
    /// Any origin (`*`): public documents.
    Anyone,
    /// The origins clients registered.
    Clients(Arc<AuthorizationServer>),
}

/// The CORS layer of one route; `methods` is what its preflight allows.
#[derive(Clone)]
pub struct Cors {
    audience: Audience,
    methods: HeaderValue,
}

impl Cors {
    pub fn public(methods: &'static str) -> Self {
        Self {
            audience: Audience::Anyone,
            methods: HeaderValue::from_static(methods),
        }
    }

    pub fn clients(server: &Arc<AuthorizationServer>, methods: &'static str) -> Self {
        Self {
            audience: Audience::Clients(Arc::clone(server)),
            methods: HeaderValue::from_static(methods),
        }
    }
}

impl<S> tower::Layer<S> for Cors {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsService {
            inner,
            cors: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CorsService<S> {
    inner: S,
    cors: Cors,
}

type Boxed = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

pin_project_lite::pin_project! {
    /// The route's own future when the request has no `Origin` (every non-browser
    /// caller: nothing is added, nothing allocated), else the checked one.
    #[project = CorsFutureProj]
    pub enum CorsFuture<F> {
        Plain { #[pin] inner: F },
        Checked { inner: Boxed },
    }
}

impl<F> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CorsFutureProj::Plain { inner } => inner.poll(cx),
            CorsFutureProj::Checked { inner } => inner.as_mut().poll(cx),
        }
    }
}

impl<S> tower::Service<Request> for CorsService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(origin) = request.headers().get(ORIGIN).cloned() else {
            return CorsFuture::Plain {
                inner: self.inner.call(request),
            };
        };
        let preflight = request.method() == Method::OPTIONS
            && request
                .headers()
                .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        // The clone is ready only after `poll_ready`: call the one that was
        // polled and keep the clone for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let cors = self.cors.clone();
        CorsFuture::Checked {
            inner: Box::pin(async move {
                let allowed = cors.allowed_origin(&origin).await;
                let mut response = if preflight {
                    let mut response = Response::new(axum::body::Body::empty());
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    response
                } else {
                    inner.call(request).await?
                };
                cors.decorate(response.headers_mut(), allowed, preflight);
                Ok(response)
            }),
        }
    }
}

impl Cors {
    /// What `Access-Control-Allow-Origin` says for `origin`, if anything.
    async fn allowed_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match &self.audience {
            Audience::Anyone => Some(HeaderValue::from_static("*")),
            Audience::Clients(server) => {
                let origin_text = origin.to_str().ok()?;
                server
                    .allows_origin(origin_text)
                    .await
                    .then(|| origin.clone())
            }
        }
    }

    fn decorate(&self, headers: &mut HeaderMap, allowed: Option<HeaderValue>, preflight: bool) {
        if matches!(self.audience, Audience::Clients(_)) {
            // The answer depends on the origin: caches must keep them apart.
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        let Some(allowed) = allowed else {
            return;
        };
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        if preflight {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone());
            headers.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE_SECONDS),
            );
        } else {
            headers.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }
}
