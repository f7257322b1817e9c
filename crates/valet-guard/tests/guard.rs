//! valet-guard against a fake issuer on 127.0.0.1: every attack of issue 4 as its own test,
//! claims, JWKS caching, the token status list (fetch, push, polling, failure policy),
//! the axum integration, start-up while the issuer is down, and the guard's credential
//! for the revocation feed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "guard/support.rs"]
mod support;

#[path = "guard/attacks.rs"]
mod attacks;
#[path = "guard/axum_integration.rs"]
mod axum_integration;
#[path = "guard/claims.rs"]
mod claims;
#[path = "guard/dpop.rs"]
mod dpop;
#[path = "guard/jwks.rs"]
mod jwks;
#[path = "guard/startup.rs"]
mod startup;
#[path = "guard/status.rs"]
mod status;
#[path = "guard/stream_auth.rs"]
mod stream_auth;
