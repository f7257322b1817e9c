//! Local verification of Valet's JWT access tokens (RFC 9068) for resource servers, with
//! revocation that reaches every API within about a second through the Token Status List
//! (draft-ietf-oauth-status-list).
//!
//! A [`Guard`] is built from the issuer URL and the API's audience. It loads the issuer's
//! metadata and JWKS once, then verifies each token locally: no call to Valet per request.
//! In the background it keeps the keys fresh (as the JWKS's `Cache-Control` allows), keeps
//! each token status list cached (refetched at its `ttl`, and at once when Valet's
//! revocation feed says a list changed), and keeps serving from those caches while the
//! issuer is unreachable, within the configured [`StatusPolicy`].
//!
//! | need | here |
//! |---|---|
//! | configure (safe defaults, validated) | [`GuardConfig::builder`] |
//! | start | [`Guard::new`]; while the issuer may be down, [`Guard::start_in_background`] and [`Guard::is_ready`] |
//! | credentials for a protected revocation feed | [`GuardConfigBuilder::status_credentials`] |
//! | verify a token | [`Guard::verify`], [`Guard::verify_with_scopes`] → [`VerifiedToken`] |
//! | verify a DPoP-bound token with its proof (RFC 9449) | [`Guard::verify_dpop`] (the axum layer and extractor do it for you) |
//! | publish this API's metadata (RFC 9728) | [`GuardConfigBuilder::resource`], [`Guard::protected_resource_metadata`], `Guard::metadata_router` |
//! | why not, as RFC 6750 status and challenge | [`TokenError::status`], [`TokenError::www_authenticate`] |
//! | axum: extractor, per-route scopes, router layer (feature `axum`, default) | `VerifiedToken` as an extractor, `Guard::require`, `Guard::layer` |
//! | move time in tests | [`ManualClock`] |
//!
//! # What is checked, in order
//!
//! 1. Size (≤ [`MAX_ACCESS_TOKEN_LEN`]) and three base64url segments.
//! 2. The signature, with the issuer's key named by `kid` and that key's algorithm (RFC 8725
//!    §3.1): never `none`, never HMAC, never a key carried or pointed to by the token
//!    (`jwk`, `jku`, `x5u`, `x5c` are ignored), an unknown `crit` refused. A `kid` not in the
//!    cache triggers at most one JWKS refetch per `jwks_min_refetch_interval` (30 s).
//! 3. `typ` is `at+jwt` (RFC 9068 §4): an ID token is not an access token.
//! 4. The claims, against a clock read once: `iss` exactly the issuer, `aud` containing the
//!    audience, `exp` required, `nbf` and `iat` not in the future, all with the leeway
//!    (30 s); `sub` and `client_id` required.
//! 5. The status: the bit at `status.status_list.idx` of the list at `status.status_list.uri`,
//!    which must be under `{issuer}/statuslists/`. Valet sets a `status` claim on every
//!    access token; a token without one is accepted unless `require_status` is set.
//! 6. Sender constraint (RFC 9449 §7): a token with `cnf.jkt` only under the `DPoP` scheme
//!    with a proof for this request (method, URL, `ath`, fresh `iat`, unused `jti`, the
//!    bound key); such a token sent as `Bearer` is refused, and so is a `cnf` this guard
//!    cannot check.
//! 7. The scopes the configuration and the route require.
//!
//! Status comes before scopes, so a revoked token is always `invalid_token` (401).
//!
//! # When the issuer is down
//!
//! - Keys: the cached JWKS keeps verifying (a warning is logged at each failed refresh).
//! - Status lists: a cached list serves until it is `max_staleness` old (5 minutes) or past
//!   its `exp`. Then, if a fresh one cannot be fetched, the guard fails closed with
//!   [`TokenError::StatusUnavailable`] (503, `Retry-After`), unless
//!   [`StatusPolicy::fail_open`] is set.
//! - The revocation feed: reconnected with backoff (up to 5 s); meanwhile lists are polled at
//!   their `ttl`. On reconnection every cached list is refetched. A stream the issuer ends
//!   cleanly (Valet closes each at a maximum lifetime) is reopened within 250 ms and is not
//!   an outage: whether requests fail closed depends only on the age of the lists.
//! - At start: [`Guard::new`] fails; [`Guard::start_in_background`] returns at once, answers
//!   [`TokenError::NotReady`] (503) until the metadata and keys are loaded, and retries.
//!
//! # Errors
//!
//! [`TokenError`] is the one catalogue: `invalid_token` variants answer 401, a missing token
//! 401 with a bare `Bearer realm="…"` challenge (RFC 6750 §3.1), `insufficient_scope` 403
//! with `scope="…"`, an unusable `Authorization` header 400 `invalid_request`, an unknown
//! status 503. Descriptions are fixed text; the token is never echoed.
//!
//! # Usage
//!
//! Protect an axum API in ten lines:
//!
//! ```no_run
//! use axum::{Router, handler::Handler, routing::get};
//! use valet_guard::{Guard, GuardConfig, VerifiedToken};
//!
//! async fn list_orders(token: VerifiedToken) -> String {
//!     format!("orders of {}", token.subject())
//! }
//!
//! # async fn create_order(token: VerifiedToken) -> String { String::new() }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = GuardConfig::builder("https://id.example.com", "https://orders.example.com")
//!     .build()?;
//! let guard = Guard::new(config).await?;
//! let app = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .route(
//!         "/orders",
//!         get(list_orders.layer(guard.require(["orders:read"])))
//!             .post(create_order.layer(guard.require(["orders:write"]))),
//!     )
//!     .with_state(guard);
//! axum::serve(tokio::net::TcpListener::bind("0.0.0.0:3000").await?, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! - `guard.require([...])` on a handler: that route needs a valid token with those scopes
//!   (`Handler::layer`, so GET and POST of one path can differ; `MethodRouter::layer` would
//!   wrap every method registered before it).
//! - `.layer(guard.layer())` on a router: every route needs a valid token.
//! - `VerifiedToken` as an extractor: reuses the token a layer verified, or verifies the
//!   `Authorization` header itself (with the state's `Guard`, via `FromRef`).
//!
//! Without axum, or in a proxy:
//!
//! ```no_run
//! # async fn run(guard: valet_guard::Guard, token: &str) {
//! match guard.verify_with_scopes(token, &["orders:read"]).await {
//!     Ok(verified) => println!("{} via {}", verified.subject(), verified.client_id()),
//!     Err(error) => {
//!         let status = error.status();
//!         let challenge = error.www_authenticate(guard.config().realm());
//!         println!("{status} WWW-Authenticate: {challenge}");
//!     }
//! }
//! # }
//! ```
//!
//! A complete example is `examples/orders_api.rs`
//! (`VALET_ISSUER=… VALET_AUDIENCE=… cargo run -p valet-guard --example orders_api`).

mod config;
mod credentials;
mod discovery;
mod dpop;
mod error;
mod guard;
mod http;
mod jwks;
mod replay;
mod status;
mod tasks;
mod token;

#[cfg(feature = "axum")]
mod axum;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use config::{
    ConfigError, GuardConfig, GuardConfigBuilder, MAX_ACCESS_TOKEN_LEN, StatusPolicy, is_loopback,
};
pub use dpop::DpopRequest;
pub use error::{GuardError, TokenError};
pub use guard::Guard;
pub use token::VerifiedToken;
pub use valet_jose::{Clock, ManualClock, SystemClock};

#[cfg(feature = "axum")]
pub use crate::axum::{
    GuardLayer, GuardRejection, GuardService, Presented, bearer_token, presented_token,
};
