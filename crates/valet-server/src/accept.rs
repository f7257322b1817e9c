//! The one accept loop, for plain http and for https alike: each connection is
//! served by hyper's HTTP/1.1 server with limits on what a client may make it
//! wait for or hold in memory, and every connection is drained on shutdown.
//!
//! ```text
//! accept ──▶ TLS handshake (https; ≤ HANDSHAKE_TIMEOUT)
//!   ──▶ request head (≤ header_read_timeout, ≤ MAX_HEADER_BYTES; else closed / 431)
//!   ──▶ router ──▶ response ──▶ next request head on the same connection …
//! shutdown: stop accepting; event streams end; every connection finishes its
//! request in flight and closes (≤ DRAIN_TIMEOUT, then the rest are dropped)
//! ```
//!
//! At most [`ServeOptions::max_connections`] connections are open at once. At
//! the bound the loop stops accepting: new connections wait in the kernel's
//! listen backlog (and beyond it, the client's connect retries) and are
//! accepted, in order, as soon as open ones close. Nothing is refused or
//! dropped by Valet, no file descriptor is spent on a connection it cannot
//! serve, and accept never fails for want of descriptors as long as the bound
//! is below the process's limit. Idle connections close after the header read
//! timeout and push streams after their lifetime, so the bound frees up by
//! itself once a flood stops.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use futures_util::StreamExt as _;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tower::ServiceExt as _;

/// The default for [`ServeOptions::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The request line and headers together; a larger head is answered 431 and the
/// connection closed. Valet's largest legitimate heads (an authorization request
/// in the query, cookies, a bearer token) are a few kilobytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The default for [`ServeOptions::max_connections`] (the binary derives its own
/// from the file-descriptor limit).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight connections may finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How connections are served.
pub struct ServeOptions {
    /// How long a client may take to send a request's line and headers, counted
    /// from when the server starts waiting for them; then the connection is
    /// closed. This stops slow clients ("slowloris") from holding connections
    /// open, and also bounds how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Serve https with this configuration; plain http when `None`.
    pub tls: Option<Arc<ServerConfig>>,
    /// Connections open at once (at least one); more wait in the listen backlog
    /// until one closes. Keep it well below the file-descriptor limit.
    pub max_connections: usize,
    /// Serve each connection on one of these single-threaded runtimes; on the
    /// caller's runtime when `None`.
    pub connection_threads: Option<ConnectionThreads>,
}

/// Threads that each run a single-threaded runtime, to which connections are
/// handed round-robin. A connection and its requests then stay on one thread:
/// no work stealing and no wake-ups across threads on the request path, which
/// on the token benchmark cost about a sixth of the CPU per request. Stopped and
/// joined when dropped.
pub struct ConnectionThreads {
    handles: Vec<tokio::runtime::Handle>,
    next: std::sync::atomic::AtomicUsize,
    stop: Option<watch::Sender<bool>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ConnectionThreads {
    /// Starts `count` threads (at least one).
    pub fn start(count: usize) -> std::io::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let mut stopped = stopped.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("valet-conn-{index}"))
                    .spawn(move || {
                        // The runtime runs its connections' tasks while it waits here.
                        runtime.block_on(async move {
                            let _ = stopped.wait_for(|stop| *stop).await;
                        });
                    })?,
            );
        }
        Ok(Self {
            handles,
            next: std::sync::atomic::AtomicUsize::new(0),
            stop: Some(stop),
            threads,
        })
    }

    fn next(&self) -> Option<&tokio::runtime::Handle> {
        let index = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.handles.get(index % self.handles.len().max(1))
    }
}

impl Drop for ConnectionThreads {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            tls: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connection_threads: None,
        }
    }
}

/// Serves `router` until `shutdown` resolves, then lets in-flight requests finish.
/// Each request carries its peer's address as [`ConnectInfo`] (the login
/// throttle counts failures per address).
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let served = Served {
        acceptor: options.tls.clone().map(TlsAcceptor::from),
        router,
        http: http_builder(&options),
        stop: stop_rx,
    };
    let mut connections = JoinSet::new();
    let max_connections = options.max_connections.max(1);
    let mut at_bound = false;
    tokio::pin!(shutdown);
    loop {
        // Finished connections leave the set through `join_next`, so its length
        // is the number open.
        let room = connections.len() < max_connections;
        if room == at_bound {
            at_bound = !room;
            log_connection_bound(at_bound, max_connections);
        }
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept(), if room => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, most likely: wait for some to close.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let thread = options.connection_threads.as_ref().and_then(ConnectionThreads::next);
                spawn_connection(&mut connections, thread, tcp, peer, served.clone());
            }
        }
    }
    // No new connections from here on.
    drop(listener);
    let _ = stop_tx.send(true);
    drain(connections).await;
    Ok(())
}

/// What every connection is served with.
#[derive(Clone)]
struct Served {
    acceptor: Option<TlsAcceptor>,
    router: Router,
    http: http1::Builder,
    /// Becomes `true` at shutdown.
    stop: watch::Receiver<bool>,
}

fn http_builder(options: &ServeOptions) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        // A request, once read, is answered even if the client has shut down its
        // sending side: a half-close does not say it no longer wants the
        // response (RFC 9112 §9.6). And no read is made while a request is
        // handled: hyper's default probes the socket for an early EOF, and that
        // probe allocated a fresh 8 KiB read buffer per request, the request
        // still holding the old one. A client that is gone is noticed at the
        // write instead; event streams write a keep-alive every 15 s.
        .half_close(true);
    http
}

/// Says when the connection limit is reached (`at_bound`) and when it is left.
fn log_connection_bound(at_bound: bool, max_connections: usize) {
    if at_bound {
        metrics::counter!("valet_connection_limit_reached_total").increment(1);
        tracing::warn!(
            max_connections,
            "connection limit reached: new connections wait until open ones close"
        );
    } else {
        tracing::info!("below the connection limit again: accepting");
    }
}

/// Serves an accepted connection on `thread`, or on the caller's runtime.
fn spawn_connection(
    connections: &mut JoinSet<()>,
    thread: Option<&tokio::runtime::Handle>,
    tcp: TcpStream,
    peer: SocketAddr,
    served: Served,
) {
    let Served {
        acceptor,
        router,
        http,
        stop,
    } = served;
    match thread {
        // The socket moves to the thread's own reactor, so its readiness
        // events wake the task where it runs.
        Some(thread) => match tcp.into_std() {
            Ok(socket) => {
                connections.spawn_on(
                    async move {
                        if let Ok(tcp) = TcpStream::from_std(socket) {
                            connection(tcp, peer, acceptor, router, http, stop).await;
                        }
                    },
                    thread,
                );
            }
            Err(error) => tracing::warn!(%error, "cannot hand a connection over"),
        },
        None => {
            connections.spawn(connection(tcp, peer, acceptor, router, http, stop));
        }
    }
}

/// Waits for open connections to finish, at most [`DRAIN_TIMEOUT`].
async fn drain(mut connections: JoinSet<()>) {
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    http: http1::Builder,
    stop: watch::Receiver<bool>,
) {
    // Responses are written whole; waiting to coalesce them only adds latency.
    let _ = tcp.set_nodelay(true);
    match acceptor {
        None => serve_connection(TokioIo::new(tcp), peer, router, &http, stop).await,
        Some(acceptor) => {
            let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            serve_connection(TokioIo::new(stream), peer, router, &http, stop).await;
        }
    }
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    http: &http1::Builder,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let streams_stop = stop.clone();
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            let router = router.clone();
            let stop = streams_stop.clone();
            async move {
                let response = router.oneshot(request.map(Body::new)).await?;
                Ok::<_, Infallible>(end_event_streams_at_shutdown(response, stop))
            }
        });
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        // Errors here are the client's (a malformed request, a timeout, a reset);
        // hyper has already answered what can be answered.
        _ = connection.as_mut() => {}
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A Server-Sent Events stream (`/statuslists/events`) never ends by itself, so
/// draining would wait for it until the drain timeout. At shutdown it is ended
/// instead, cleanly; its client (a guard) reconnects, to another node.
fn end_event_streams_at_shutdown(response: Response, mut stop: watch::Receiver<bool>) -> Response {
    let is_event_stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    if !is_event_stream {
        return response;
    }
    response.map(|body| {
        let stopping = async move {
            // Also ends the stream if the accept loop is gone.
            let _ = stop.wait_for(|stopping| *stopping).await;
        };
        Body::from_stream(body.into_data_stream().take_until(stopping))
    })
}
