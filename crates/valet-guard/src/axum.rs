//! axum integration: [`VerifiedToken`] as an extractor, [`GuardLayer`] for whole routers
//! and per-route scope requirements, and [`GuardRejection`], the one RFC 6750 response.
//!
//! ```no_run
//! # use axum::{Router, handler::Handler, routing::get};
//! # use valet_guard::{Guard, VerifiedToken};
//! # async fn list(token: VerifiedToken) -> String { token.subject().to_owned() }
//! # async fn create(token: VerifiedToken) -> String { token.subject().to_owned() }
//! # async fn me(token: VerifiedToken) -> String { token.subject().to_owned() }
//! # fn app(guard: Guard) -> Router {
//! Router::new()
//!     // Per handler: each with its own scopes.
//!     .route(
//!         "/orders",
//!         get(list.layer(guard.require(["orders:read"])))
//!             .post(create.layer(guard.require(["orders:write"]))),
//!     )
//!     // The extractor alone: any valid token.
//!     .route("/me", get(me))
//!     // Or a whole router: .layer(guard.layer())
//!     .with_state(guard)
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Json;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tower::{Layer, Service};

use crate::error::TokenError;
use crate::guard::Guard;
use crate::token::VerifiedToken;

/// Seconds a client is asked to wait after a 503 (status list unavailable, or the guard
/// not ready).
const RETRY_AFTER_SECONDS: &str = "5";

/// The bearer token of a request (RFC 6750 §2.1: `Authorization: Bearer <b64token>`,
/// scheme case-insensitive). No `Authorization` header, or another scheme, is
/// [`TokenError::Missing`]; the header twice, or not ASCII, or an empty token, is
/// [`TokenError::InvalidRequest`]; characters outside `b64token` are
/// [`TokenError::Malformed`]. Tokens in the query or the body are not looked for.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, TokenError> {
    match presented_token(headers)? {
        Presented::Bearer(token) => Ok(token),
        Presented::Dpop(_) => Err(TokenError::Missing),
    }
}

/// An access token as the request presents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1).
    Bearer(&'a str),
    /// `Authorization: DPoP <token>` (RFC 9449 §7.1), with a proof in the `DPoP` header.
    Dpop(&'a str),
}

/// The request's access token under either scheme, with [`bearer_token`]'s rules
/// (`DPoP` is compared case-insensitively too; RFC 9449 §7.1 uses `token68`, which
/// the `b64token` check accepts).
pub fn presented_token(headers: &HeaderMap) -> Result<Presented<'_>, TokenError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(TokenError::Missing);
    };
    if values.next().is_some() {
        return Err(TokenError::InvalidRequest(
            "the Authorization header appears more than once",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| TokenError::InvalidRequest("the Authorization header is not ASCII"))?;
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let dpop = if scheme.eq_ignore_ascii_case("bearer") {
        false
    } else if scheme.eq_ignore_ascii_case("dpop") {
        true
    } else {
        return Err(TokenError::Missing);
    };
    let token = credentials.trim_matches(' ');
    if token.is_empty() {
        return Err(TokenError::InvalidRequest("the bearer token is empty"));
    }
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
    {
        return Err(TokenError::Malformed(
            "the bearer token has invalid characters",
        ));
    }
    Ok(if dpop {
        Presented::Dpop(token)
    } else {
        Presented::Bearer(token)
    })
}

/// The `DPoP` request header (RFC 9449 §4.1).
static DPOP: axum::http::HeaderName = axum::http::HeaderName::from_static("dpop");

impl Guard {
    /// Verifies the request's bearer token with `scopes` required; a refusal comes ready
    /// to send. Bearer tokens only: a DPoP-bound token needs the request's method and
    /// path, see [`Guard::authorize_request`].
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        scopes: &[&str],
    ) -> Result<VerifiedToken, GuardRejection> {
        if !self.is_ready() {
            return Err(self.rejection(TokenError::NotReady));
        }
        let verified = match bearer_token(headers) {
            Ok(token) => self.verify_with_scopes(token, scopes).await,
            Err(error) => Err(error),
        };
        verified.map_err(|error| self.rejection(error))
    }

    /// Verifies the request's access token with `scopes` required: a bearer token, or a
    /// DPoP-bound token with its proof for this `method` and `path` (the path the client
    /// sent, before any prefix was stripped). A refusal comes ready to send. For code
    /// that is neither an extractor nor a layer (a proxy, say). A guard that is not
    /// ready answers 503 ([`TokenError::NotReady`]) whatever the request carries.
    pub async fn authorize_request(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        scopes: &[&str],
    ) -> Result<VerifiedToken, GuardRejection> {
        if !self.is_ready() {
            return Err(self.rejection(TokenError::NotReady));
        }
        let verified = match presented_token(headers) {
            Ok(Presented::Bearer(token)) => self.verify_with_scopes(token, scopes).await,
            Ok(Presented::Dpop(token)) => {
                let proofs: Vec<&[u8]> = headers
                    .get_all(&DPOP)
                    .iter()
                    .map(HeaderValue::as_bytes)
                    .collect();
                let request = crate::DpopRequest {
                    method,
                    path,
                    proofs: &proofs,
                };
                self.verify_dpop(token, &request, scopes).await
            }
            Err(error) => Err(error),
        };
        verified.map_err(|error| self.rejection(error))
    }

    /// `error` as a response with this guard's realm (and `resource_metadata`, when a
    /// resource is configured).
    pub fn rejection(&self, error: TokenError) -> GuardRejection {
        GuardRejection {
            error,
            realm: self.config().realm().to_owned(),
            resource_metadata: self.config().resource_metadata_url(),
        }
    }

    /// A router serving this API's metadata document (RFC 9728 §3) at
    /// [`GuardConfig::resource_metadata_path`](crate::GuardConfig::resource_metadata_path);
    /// empty when no resource is configured. Merge it into the app, outside the guard's
    /// layer (`Router::merge`).
    pub fn metadata_router<S>(&self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let (Some(path), Some(document)) = (
            self.config().resource_metadata_path(),
            self.protected_resource_metadata(),
        ) else {
            return axum::Router::new();
        };
        let body = Arc::new(document);
        axum::Router::new().route(
            &path,
            axum::routing::get(move || {
                let body = Arc::clone(&body);
                async move {
                    let mut response = Json(body.as_ref().clone()).into_response();
                    response.headers_mut().insert(
                        CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=3600"),
                    );
                    response
                }
            }),
        )
    }

    /// A layer requiring a valid token on every route it wraps; the handlers (and the
    /// [`VerifiedToken`] extractor) find the token in the request extensions.
    pub fn layer(&self) -> GuardLayer {
        self.require(std::iter::empty::<&str>())
    }

    /// A layer requiring a valid token with every one of `scopes`, for one route
    /// (`get(handler).layer(guard.require(["orders:read"]))`) or a router. Under a
    /// [`Guard::layer`], the token is not verified again: only the scopes are checked.
    pub fn require<I>(&self, scopes: I) -> GuardLayer
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        GuardLayer {
            guard: self.clone(),
            scopes: scopes
                .into_iter()
                .map(|scope| scope.as_ref().to_owned())
                .collect(),
        }
    }
}

/// A refusal as an RFC 6750 response: the status of [`TokenError::status`], the
/// `WWW-Authenticate` challenge (for 4xx), `Cache-Control: no-store`, `Retry-After` on
/// 503, and a JSON body `{"error": …, "error_description": …}` (no `error` when no token
/// was sent, as RFC 6750 §3.1 asks of the challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRejection {
    error: TokenError,
    realm: String,
    resource_metadata: Option<String>,
}

impl GuardRejection {
    /// Why the token was refused.
    pub fn error(&self) -> &TokenError {
        &self.error
    }

    /// Takes the error out.
    pub fn into_error(self) -> TokenError {
        self.error
    }
}

impl IntoResponse for GuardRejection {
    fn into_response(self) -> Response {
        let error = &self.error;
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let mut body = Map::new();
        if let Some(code) = error.error_code() {
            body.insert("error".into(), code.into());
        }
        body.insert("error_description".into(), error.description().into());
        let mut response = (status, Json(Value::Object(body))).into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if error.has_challenge() {
            let challenge =
                error.www_authenticate_with(&self.realm, self.resource_metadata.as_deref());
            let challenge =
                HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer"));
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// `VerifiedToken` as an extractor, for any state a [`Guard`] can be taken from. A token a
/// [`GuardLayer`] already verified for this request is reused; otherwise the
/// `Authorization` header is verified with the configured scopes.
impl<S> FromRequestParts<S> for VerifiedToken
where
    Guard: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(token) = parts.extensions.get::<VerifiedToken>() {
            return Ok(token.clone());
        }
        let path = request_path(parts);
        Guard::from_ref(state)
            .authorize_request(parts.method.as_str(), &path, &parts.headers, &[])
            .await
    }
}

/// The layer of [`Guard::layer`] and [`Guard::require`].
#[derive(Clone)]
pub struct GuardLayer {
    guard: Guard,
    scopes: Arc<[String]>,
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService {
            inner,
            guard: self.guard.clone(),
            scopes: Arc::clone(&self.scopes),
        }
    }
}

/// The service of [`GuardLayer`]: refuses the request or passes it on with the
/// [`VerifiedToken`] in its extensions.
#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    guard: Guard,
    scopes: Arc<[String]>,
}

impl<S, B> Service<Request<B>> for GuardService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that gets the request.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let guard = self.guard.clone();
        let scopes = Arc::clone(&self.scopes);
        Box::pin(async move {
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let already = request.extensions().get::<VerifiedToken>().cloned();
            let outcome = match already {
                Some(token) => token
                    .require_scopes(scopes.iter().copied())
                    .map_err(|error| guard.rejection(error)),
                None => match guard
                    .authorize_request(
                        request.method().as_str(),
                        &original_path(request.extensions(), request.uri()),
                        request.headers(),
                        &scopes,
                    )
                    .await
                {
                    Ok(token) => {
                        request.extensions_mut().insert(token);
                        Ok(())
                    }
                    Err(rejection) => Err(rejection),
                },
            };
            match outcome {
                Ok(()) => inner.call(request).await.map(IntoResponse::into_response),
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

/// The path the client sent (axum's `OriginalUri` when a router was nested), for `htu`.
fn request_path(parts: &Parts) -> String {
    original_path(&parts.extensions, &parts.uri)
}

fn original_path(extensions: &axum::http::Extensions, uri: &axum::http::Uri) -> String {
    extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(uri, |original| &original.0)
        .path()
        .to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use axum::http::HeaderName;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn bearer_tokens_per_rfc_6750() {
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def.ghi"])),
            Ok("abc.def.ghi")
        );
        assert_eq!(
            bearer_token(&headers(&["bearer  a-b_c~+/=="])),
            Ok("a-b_c~+/==")
        );
        assert_eq!(bearer_token(&headers(&[])), Err(TokenError::Missing));
        assert_eq!(
            bearer_token(&headers(&["Basic YTpi"])),
            Err(TokenError::Missing)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearerabc"])),
            Err(TokenError::Missing)
        );
        assert!(matches!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(TokenError::InvalidRequest(_))
        ));
        assert!(matches!(
            bearer_token(&headers(&["Bearer"])),
            Err(TokenError::InvalidRequest(_))
        ));
        for bad in ["Bearer a b", "Bearer a\"b", "Bearer ===", "Bearer a=b"] {
            assert!(
                matches!(
                    bearer_token(&headers(&[bad])),
                    Err(TokenError::Malformed(_))
                ),
                "{bad}"
            );
        }
        let mut opaque = HeaderMap::new();
        opaque.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert!(matches!(
            bearer_token(&opaque),
            Err(TokenError::InvalidRequest(_))
        ));
    }

    #[tokio::test]
    async fn rejections_render_rfc_6750_responses() {
        let rejection = |error| GuardRejection {
            error,
            realm: "orders".into(),
            resource_metadata: None,
        };
        let header = |response: &Response, name: HeaderName| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let body = |response: Response| async move {
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };

        let missing = rejection(TokenError::Missing).into_response();
        assert_eq!(missing.status(), 401);
        assert_eq!(
            header(&missing, WWW_AUTHENTICATE).as_deref(),
            Some("Bearer realm=\"orders\"")
        );
        assert_eq!(
            body(missing).await,
            serde_json::json!({"error_description": "a bearer token is required"})
        );

        let scope = rejection(TokenError::InsufficientScope {
            required: vec!["orders:write".into()],
        })
        .into_response();
        assert_eq!(scope.status(), 403);
        assert!(
            header(&scope, WWW_AUTHENTICATE)
                .unwrap()
                .ends_with("scope=\"orders:write\"")
        );
        assert_eq!(body(scope).await["error"], "insufficient_scope");

        let down = rejection(TokenError::StatusUnavailable).into_response();
        assert_eq!(down.status(), 503);
        assert_eq!(header(&down, WWW_AUTHENTICATE), None);
        assert_eq!(header(&down, RETRY_AFTER).as_deref(), Some("5"));
        assert_eq!(header(&down, CACHE_CONTROL).as_deref(), Some("no-store"));
        assert_eq!(body(down).await["error"], "temporarily_unavailable");
    }
}
