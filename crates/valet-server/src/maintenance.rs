//! Background work every node runs: the status list change feed several times a
//! second, key reloads often, the key schedule and purging less often. Stops when
//! the shutdown signal fires.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use valet_core::AuthorizationServer;

/// How often keys created elsewhere (another node, the CLI) are picked up. A new
/// key is published `publish_lead` before it signs, far longer than this.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// How often revocations recorded by other nodes (or the CLI) are looked for; a
/// revocation on this node wakes the poller at once.
pub const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often queued audit events are logged and stored.
pub const AUDIT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

pub fn spawn(
    server: Arc<AuthorizationServer>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let status_server = Arc::clone(&server);
    let mut status_shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = status_shutdown.changed() => break,
                polled = status_server.poll_status_changes(STATUS_POLL_INTERVAL) => {
                    if let Err(error) = polled {
                        tracing::warn!(%error, "status list change feed failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    });
    let audit_server = Arc::clone(&server);
    let mut audit_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let mut flush = tokio::time::interval(AUDIT_FLUSH_INTERVAL);
        loop {
            tokio::select! {
                _ = audit_shutdown.changed() => break,
                _ = flush.tick() => flush_audit(&audit_server).await,
            }
        }
    });
    tokio::spawn(async move {
        let mut reload = tokio::time::interval(KEY_RELOAD_INTERVAL);
        let mut maintain = tokio::time::interval(MAINTENANCE_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = reload.tick() => {
                    if let Err(error) = server.reload_keys().await {
                        tracing::error!(%error, "key reload failed; still signing with the keys loaded before");
                    }
                }
                _ = maintain.tick() => {
                    if let Err(error) = server.maintain().await {
                        tracing::error!(%error, "maintenance failed; will retry");
                    }
                }
            }
        }
    })
}

/// Logs and stores the queued audit events; call once more after the last
/// request has finished.
pub async fn flush_audit(server: &AuthorizationServer) {
    if let Err(error) = server.flush_audit().await {
        tracing::error!(%error, "audit events could not be stored (they are in the log)");
    }
}
