//! `valet serve`

use std::sync::Arc;

use clap::Args;
use tokio::sync::watch;
use valet_core::{AuthorizationServer, SystemClock};
use valet_server::{
    AppState, ConnectionThreads, RouteOptions, ServeOptions, TrustedProxies, install_metrics,
    maintenance,
};

use crate::config::Config;
use crate::storage::{CliError, Create, master_key, open_or_create_store};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [env: VALET_BIND] [default: 127.0.0.1:8080]
    #[arg(long)]
    pub bind: Option<String>,
    /// Public base URL, the `iss` of every token [env: VALET_ISSUER] [default: http://{bind}]
    #[arg(long)]
    pub issuer: Option<String>,
    /// Accept a plain-http issuer on a non-loopback host: tokens and secrets would
    /// cross the network in clear. Only behind a TLS-terminating proxy you trust.
    #[arg(long)]
    pub dangerous_allow_insecure_issuer: bool,
    /// PEM certificate chain to serve https with [env: VALET_TLS_CERT]
    #[arg(long)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for --tls-cert [env: VALET_TLS_KEY]
    #[arg(long)]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve /metrics only on this second address, e.g. 127.0.0.1:9090 [env: VALET_METRICS_BIND]
    #[arg(long)]
    pub metrics_bind: Option<String>,
    /// Send traces to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 [env: VALET_OTLP_ENDPOINT]
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// Benchmark mode: cheap password hashes (argon2id m=8 KiB, t=1, p=1);
    /// loopback `bind` only, never for real users [env: VALET_INSECURE_BENCHMARK_PASSWORD_HASH]
    #[arg(long, hide = true)]
    pub insecure_benchmark_password_hash: bool,
}

pub async fn run(config: Config) -> Result<(), CliError> {
    let telemetry = crate::telemetry::init(config.log_format, config.otlp_endpoint.as_deref())?;
    let stop_signal = shutdown_signal()?;
    let descriptors = raise_descriptor_limit();
    let max_connections = config.connection_limit(descriptors)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(valet_server::tls::load_config(cert, key)?),
        _ => None,
    };
    let mailer = config.mailer()?.map(Arc::new);
    let store = open_or_create_store(&config).await?;
    let master = master_key(&config, store.as_ref(), Create::Allowed).await?;
    let server =
        AuthorizationServer::start(config.settings(), store, master, Arc::new(SystemClock))
            .await
            .map_err(|error| format!("cannot load signing keys: {error}"))?;
    valet_server::metadata_documents::attach_document_fetcher(&server);
    let server = Arc::new(server);
    let metrics = install_metrics().map_err(|error| format!("metrics: {error}"))?;
    let (bind, listener, metrics_listener) = bind_listeners(&config).await?;
    announce_ready(&config, bind);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mail_task = mailer.map(|mailer| {
        announce_mailer(&mailer);
        valet_server::mail::spawn(Arc::clone(&server), mailer, stop_rx.clone())
    });
    let background = maintenance::spawn(Arc::clone(&server), stop_rx);
    let state = Arc::new(AppState {
        server,
        metrics,
        trusted_proxies: TrustedProxies::new(config.trusted_proxies()?),
    });
    let metrics_task = metrics_listener.map(|listener| serve_metrics(listener, &state, &stop_tx));
    let shutdown = async move {
        stop_signal.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    };
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let options = ServeOptions {
        header_read_timeout: config.header_read_timeout(),
        tls,
        max_connections,
        connection_threads: Some(ConnectionThreads::start(cores)?),
    };
    tracing::info!(
        max_connections,
        descriptor_limit = descriptors,
        "serving at most {max_connections} connections at once"
    );
    let routes = RouteOptions {
        metrics: metrics_task.is_none(),
        access_log: config.access_log,
        traced: telemetry.is_some(),
        continue_trace: telemetry
            .is_some()
            .then_some(crate::telemetry::continue_trace as valet_server::ContinueTrace),
    };
    let router = valet_server::app_with(Arc::clone(&state), routes);
    valet_server::serve_router(listener, router, options, shutdown).await?;
    if let Some(metrics_task) = metrics_task {
        let _ = metrics_task.await;
    }
    let _ = background.await;
    if let Some(mail_task) = mail_task {
        let _ = mail_task.await;
    }
    maintenance::flush_audit(&state.server).await;
    tracing::info!("stopped");
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    Ok(())
}

/// Logs where the server listens and, in benchmark mode, warns.
fn announce_ready(config: &Config, bind: std::net::SocketAddr) {
    let issuer = config.issuer();
    tracing::info!(
        issuer = %issuer,
        listen = %bind,
        discovery = %format!("{issuer}/.well-known/openid-configuration"),
        "Valet is ready on {bind} (issuer {issuer}, discovery {issuer}/.well-known/openid-configuration)",
    );
    if config.insecure_benchmark_password_hash {
        warn_benchmark_mode();
    }
}

/// Benchmark mode's cheap password hashes must not go unnoticed: a warning at
/// start and then every minute for as long as the runtime runs.
fn warn_benchmark_mode() {
    const WARNING: &str = "INSECURE BENCHMARK MODE: new password hashes are argon2id at m=8 KiB, t=1, p=1 and can be guessed offline; for load tests on loopback only, never for real users (setting insecure_benchmark_password_hash)";
    tracing::warn!(insecure_benchmark_mode = true, "{WARNING}");
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
        every_minute.tick().await;
        loop {
            every_minute.tick().await;
            tracing::warn!(insecure_benchmark_mode = true, "{WARNING}");
        }
    });
}

/// The public listener (on `bind`, whose address is returned too) and, with
/// `metrics_bind`, the metrics listener.
async fn bind_listeners(
    config: &Config,
) -> Result<
    (
        std::net::SocketAddr,
        tokio::net::TcpListener,
        Option<tokio::net::TcpListener>,
    ),
    CliError,
> {
    let bind = config.bind_address()?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|error| format!("bind {} ({bind}): {error}", config.bind))?;
    let metrics_listener = match config.metrics_bind_address()? {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|error| format!("bind metrics_bind ({address}): {error}"))?,
        ),
        None => None,
    };
    Ok((bind, listener, metrics_listener))
}

/// Serves `/metrics` (and the probes) on the listener of `metrics_bind` until
/// the node stops.
fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: &Arc<AppState>,
    stop: &watch::Sender<bool>,
) -> tokio::task::JoinHandle<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(metrics = %address, "metrics are served on {address}/metrics only");
    }
    let router = valet_server::metrics_app(Arc::clone(state));
    let mut stopped = stop.subscribe();
    let options = ServeOptions {
        max_connections: 64,
        ..ServeOptions::default()
    };
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stopping| *stopping).await;
        };
        if let Err(error) = valet_server::serve_router(listener, router, options, shutdown).await {
            tracing::error!(%error, "the metrics listener failed");
        }
    })
}

/// Says where mail goes; loudly when it only goes to the log.
fn announce_mailer(mailer: &valet_server::mail::Mailer) {
    match mailer {
        valet_server::mail::Mailer::Log => tracing::warn!(
            "smtp_url = \"log\": mail is NOT sent, only written to this log, links included (anyone who reads the log can use them); for development only"
        ),
        valet_server::mail::Mailer::Smtp { .. } => {
            tracing::info!(smtp = %mailer.describe(), "mail goes out through {}", mailer.describe());
        }
    }
}

/// Raises the soft limit on open files to the hard one (at most 2^20, Linux's
/// default ceiling) and returns the limit in force; `None` where there is none.
fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(1 << 20) {
            Ok(limit) => Some(limit),
            Err(error) => {
                tracing::warn!(%error, "cannot raise the open-files limit");
                rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// SIGINT and SIGTERM, listened for from the moment this is called. `serve` and
/// `guard` call it before they bind their listener: a signal sent as soon as the
/// port answers ends the process cleanly instead of killing it by the signal's
/// default action (a race that a listener installed only on first poll had).
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|error| format!("cannot listen for SIGINT: {error}"))?;
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|error| format!("cannot listen for SIGTERM: {error}"))?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// The log subscriber of `guard` and `gateway` (no trace export).
pub fn init_logging(format: crate::config::LogFormat) {
    crate::telemetry::init_logging(format);
}
