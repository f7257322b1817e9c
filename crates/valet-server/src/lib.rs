//! Valet's HTTP layer: routes, thin handlers, and the one place where errors
//! become responses. All protocol logic lives in `valet-core`.

mod cookies;
mod extract;
mod handlers;
mod layers;
pub mod maintenance;
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

pub use metrics_setup::install_metrics;
pub use routes::app;

/// Shared by every handler.
pub struct AppState {
    pub server: Arc<AuthorizationServer>,
    pub metrics: PrometheusHandle,
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address feeds the login throttle.
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
