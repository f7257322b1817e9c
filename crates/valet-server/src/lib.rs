//! Valet's HTTP layer: routes, thin handlers, and the one place where errors
//! become responses. All protocol logic lives in `valet-core`.

mod accept;
mod access_log;
mod client_address;
mod context;
mod cookies;
mod cors;
mod error;
mod extract;
mod handlers;
mod layers;
mod locale;
pub mod mail;
pub mod maintenance;
pub mod metadata_documents;
mod metrics_setup;
mod pages;
mod response;
mod routes;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use valet_core::AuthorizationServer;

pub use accept::{
    ConnectionThreads, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, MAX_HEADER_BYTES,
    ServeOptions, serve_router,
};
pub use client_address::TrustedProxies;
/// The admin API's OpenAPI 3.1 document (`/admin/v1/openapi.json`), as JSON text.
pub use handlers::admin_api::openapi::document_json as admin_api_openapi;
pub use metrics_setup::install_metrics;
pub use routes::{ContinueTrace, RouteOptions, app, app_with, metrics_app};

/// Shared by every handler.
pub struct AppState {
    pub server: Arc<AuthorizationServer>,
    pub metrics: PrometheusHandle,
    /// Whose `X-Forwarded-For` names the client (see `TrustedProxies`).
    pub trusted_proxies: TrustedProxies,
}

/// Serves Valet (http, or https with [`ServeOptions::tls`]) until `shutdown`
/// resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, app(state), options, shutdown).await
}
