//! The gateway's connections to `http://` APIs: hyper HTTP/1.1 connections,
//! kept open in a pool per thread and reused most recently used first.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody as _};
use axum::http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::api_client::{CallError, Reply};

/// How long connecting to an upstream may take (no limit on the call itself:
/// an API may stream a long reply).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle connections kept per upstream and thread; more are closed.
const IDLE_PER_UPSTREAM: usize = 64;

/// An idle connection unused this long is not used again: it is closed when
/// the pool next looks at it (servers drop idle keep-alive connections too;
/// one they dropped is found closed and skipped).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// An idle connection and since when it is idle.
type Idle = (SendRequest<Body>, Instant);

thread_local! {
    /// Each thread's idle `http://` upstream connections, by `host:port`. A
    /// connection is driven by a task on the runtime that opened it; kept per
    /// thread, a call never goes out over a connection another thread drives
    /// (the gateway serves each browser connection on one single-threaded
    /// runtime), so it costs no wake-up across threads.
    static IDLE: RefCell<Vec<(Arc<str>, VecDeque<Idle>)>> = const { RefCell::new(Vec::new()) };
}

/// Sends `request` over an idle connection to `authority`, or a new one.
///
/// An idle connection may have been closed by the upstream (its keep-alive
/// timeout) just before this call could notice. A request it did not take
/// (hyper hands back a request it wrote nothing of) goes once more over a new
/// connection; so does a bodiless one of a safe method (`GET`, `HEAD`,
/// `OPTIONS`, `TRACE`: RFC 9110 §9.2.1) the connection closed under before any
/// reply. Any other request is not sent again: the upstream may have acted on
/// it (a repeated `DELETE` that had succeeded would answer `404`).
pub async fn call(authority: &Arc<str>, request: Request<Body>) -> Result<Reply, CallError> {
    let (mut sender, reused) = match take_idle(authority).await {
        Some(sender) => (sender, true),
        None => (connect(authority).await?, false),
    };
    let again = (reused && request.method().is_safe() && request.body().is_end_stream())
        .then(|| bodiless_copy(&request));
    let sent = match sender.try_send_request(request).await {
        Err(mut error)
            if reused && (error.error().is_canceled() || error.error().is_incomplete_message()) =>
        {
            match error.take_message().or(again) {
                Some(request) => {
                    sender = connect(authority).await?;
                    sender.try_send_request(request).await
                }
                None => Err(error),
            }
        }
        sent => sent,
    };
    match sent {
        Ok(reply) => {
            let (parts, body) = reply.into_parts();
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body: Body::new(Returning::new(body, sender, authority)),
            })
        }
        Err(error) => Err(CallError::Unreachable(error.into_error().to_string())),
    }
}

fn bodiless_copy(request: &Request<Body>) -> Request<Body> {
    let mut copy = Request::new(Body::empty());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// The most recently used idle connection to `authority` that is still open
/// and free.
///
/// A connection whose reply ended may still be busy: an API that answered
/// before reading a streamed request body (`413`, `401`) leaves the body
/// going out for as long as the browser takes to send it. Waiting on such a
/// connection would hold this call up on another browser's upload, so it is
/// passed over (and kept, to be taken once free) and another one used.
async fn take_idle(authority: &Arc<str>) -> Option<SendRequest<Body>> {
    let mut busy = Vec::new();
    let free = loop {
        let Some((sender, since)) = with_idle(authority, VecDeque::pop_back).flatten() else {
            break None;
        };
        if sender.is_closed() || since.elapsed() >= IDLE_TIMEOUT {
            continue;
        }
        if sender.is_ready() {
            break Some(sender);
        }
        // A reply that ended just now: one turn lets its task take that in.
        tokio::task::yield_now().await;
        if sender.is_ready() {
            break Some(sender);
        }
        if !sender.is_closed() {
            busy.push((sender, since));
        }
    };
    if !busy.is_empty() {
        with_idle(authority, |senders| {
            // The least recently used end: tried last.
            for parked in busy.into_iter().rev() {
                senders.push_front(parked);
            }
        });
    }
    free
}

/// Keeps `sender` for the next call to `authority`, closing the connections
/// idle too long or beyond the pool's size.
fn give_back(authority: &Arc<str>, sender: SendRequest<Body>) {
    if sender.is_closed() {
        return;
    }
    let now = Instant::now();
    with_idle(authority, |senders| {
        while senders.front().is_some_and(|(oldest, since)| {
            oldest.is_closed() || now.duration_since(*since) >= IDLE_TIMEOUT
        }) {
            senders.pop_front();
        }
        if senders.len() < IDLE_PER_UPSTREAM {
            senders.push_back((sender, now));
        }
    });
}

/// Runs `f` on this thread's idle connections to `authority` (a list made for
/// it the first time).
fn with_idle<R>(authority: &Arc<str>, f: impl FnOnce(&mut VecDeque<Idle>) -> R) -> Option<R> {
    IDLE.with_borrow_mut(|idle| {
        let at = match idle.iter().position(|(key, _)| **key == **authority) {
            Some(at) => at,
            None => {
                idle.push((Arc::clone(authority), VecDeque::new()));
                idle.len() - 1
            }
        };
        idle.get_mut(at).map(|(_, senders)| f(senders))
    })
}

/// A new HTTP/1.1 connection to `authority`, driven by a task on this thread's
/// runtime until both ends are done with it.
async fn connect(authority: &str) -> Result<SendRequest<Body>, CallError> {
    let unreachable = |error: String| CallError::Unreachable(format!("{authority}: {error}"));
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| unreachable("connect timed out".to_owned()))?
        .map_err(|error| unreachable(error.to_string()))?;
    // Small request/reply exchanges: don't let Nagle hold back a write.
    stream
        .set_nodelay(true)
        .map_err(|error| unreachable(error.to_string()))?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| unreachable(error.to_string()))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "upstream connection ended");
        }
    });
    Ok(sender)
}

/// A reply body that gives its connection back to the pool once it has been
/// read to the end; a body dropped before its end takes its connection with it
/// (hyper closes a connection whose reply was not read).
struct Returning {
    body: Incoming,
    sender: Option<(SendRequest<Body>, Arc<str>)>,
}

impl Returning {
    fn new(body: Incoming, sender: SendRequest<Body>, authority: &Arc<str>) -> Returning {
        let mut returning = Returning {
            body,
            sender: Some((sender, Arc::clone(authority))),
        };
        // A reply without a body (HEAD, 204, 304, `Content-Length: 0`) may
        // never be polled.
        if returning.body.is_end_stream() {
            returning.give_back();
        }
        returning
    }

    fn give_back(&mut self) {
        if let Some((sender, authority)) = self.sender.take() {
            give_back(&authority, sender);
        }
    }
}

impl hyper::body::Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.give_back(),
            Poll::Ready(Some(Err(_))) => self.sender = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use std::io::{Read as _, Write as _};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::header::HOST;
    use axum::http::{Method, StatusCode, Uri};

    use super::*;

    /// An HTTP/1.1 upstream written out by hand, so each test decides what a
    /// connection does: `/ok` answers with a body, `/empty` with 204, `/big`
    /// with a megabyte, `/then-close` answers and closes the connection without
    /// saying so when the test says. Counts the connections it accepts.
    pub(crate) struct Upstream {
        pub(crate) authority: Arc<str>,
        pub(crate) connections: Arc<AtomicUsize>,
        /// Tells a `/then-close` connection to close now.
        close_now: std::sync::mpsc::Sender<()>,
        /// A message each time the upstream has closed a connection on its own.
        closed: std::sync::mpsc::Receiver<()>,
    }

    /// What a connection's thread is told and tells about closing.
    struct Closing {
        now: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
        done: std::sync::mpsc::Sender<()>,
    }

    pub(crate) fn upstream() -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = Arc::from(listener.local_addr().unwrap().to_string());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let (close_now, now) = std::sync::mpsc::channel();
        let (done, closed) = std::sync::mpsc::channel();
        let closing = Arc::new(Closing {
            now: std::sync::Mutex::new(now),
            done,
        });
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                let closing = Arc::clone(&closing);
                std::thread::spawn(move || serve(stream, &closing));
            }
        });
        Upstream {
            authority,
            connections,
            close_now,
            closed,
        }
    }

    /// Blocks this thread, so its runtime does not poll the connections'
    /// tasks, until the upstream has closed a connection: the pool still holds
    /// that connection as idle and ready.
    fn wait_for_the_close_unseen(upstream: &Upstream) {
        upstream.close_now.send(()).unwrap();
        upstream
            .closed
            .recv_timeout(Duration::from_secs(10))
            .expect("the upstream closes the connection");
    }

    fn serve(mut stream: std::net::TcpStream, closing: &Closing) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
                continue;
            };
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            buffer.drain(..end + 4);
            let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
            let reply: Vec<u8> = match path.as_str() {
                "/empty" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
                "/big" => {
                    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".to_vec();
                    reply.resize(reply.len() + 1_048_576, b'x');
                    reply
                }
                _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            };
            if stream.write_all(&reply).is_err() {
                return;
            }
            if path == "/then-close" {
                // Once the reply has been read: as a keep-alive timeout would.
                let _ = closing.now.lock().unwrap().recv();
                let _ = stream.shutdown(std::net::Shutdown::Both);
                let _ = closing.done.send(());
                return;
            }
        }
    }

    fn get(upstream: &Upstream, path: &str) -> Request<Body> {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = Uri::try_from(path).unwrap();
        request
            .headers_mut()
            .insert(HOST, upstream.authority.parse().unwrap());
        request
    }

    pub(crate) async fn body_of(reply: Reply) -> Bytes {
        axum::body::to_bytes(reply.body, usize::MAX).await.unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn calls_one_after_another_share_one_connection() {
        let upstream = upstream();
        for _ in 0..5 {
            let Ok(reply) = call(&upstream.authority, get(&upstream, "/ok")).await else {
                panic!("the upstream is up");
            };
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(body_of(reply).await, "ok");
        }
        // Bodiless replies, which nothing reads to an end, give it back too.
        for _ in 0..3 {
            let Ok(reply) = call(&upstream.authority, get(&upstream, "/empty")).await else {
                panic!("the upstream is up");
            };
            assert_eq!(reply.status, StatusCode::NO_CONTENT);
        }
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_calls_open_their_own_connections() {
        let upstream = upstream();
        let calls = (0..4).map(|_| call(&upstream.authority, get(&upstream, "/ok")));
        let replies = futures_util::future::join_all(calls).await;
        for reply in replies {
            let Ok(reply) = reply else {
                panic!("the upstream is up")
            };
            assert_eq!(body_of(reply).await, "ok");
        }
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 4);
        // All four are idle now: the next calls take them, opening none.
        for _ in 0..4 {
            let Ok(reply) = call(&upstream.authority, get(&upstream, "/ok")).await else {
                panic!("the upstream is up");
            };
            assert_eq!(body_of(reply).await, "ok");
        }
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_the_upstream_closed_is_not_used_again() {
        let upstream = upstream();
        let Ok(reply) = call(&upstream.authority, get(&upstream, "/then-close")).await else {
            panic!("the upstream is up");
        };
        assert_eq!(body_of(reply).await, "ok");
        // The GET fails on the closed connection and goes again over a new one.
        wait_for_the_close_unseen(&upstream);
        let reply = match call(&upstream.authority, get(&upstream, "/ok")).await {
            Ok(reply) => reply,
            Err(CallError::Unreachable(error)) => panic!("a closed pooled connection: {error}"),
            Err(CallError::BadBody) => panic!("a closed pooled connection failed the call"),
        };
        assert_eq!(body_of(reply).await, "ok");
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_that_may_not_be_idempotent_is_not_sent_twice() {
        let upstream = upstream();
        let Ok(reply) = call(&upstream.authority, get(&upstream, "/then-close")).await else {
            panic!("the upstream is up");
        };
        assert_eq!(body_of(reply).await, "ok");
        wait_for_the_close_unseen(&upstream);
        let mut post = get(&upstream, "/ok");
        *post.method_mut() = Method::POST;
        assert!(matches!(
            call(&upstream.authority, post).await,
            Err(CallError::Unreachable(_))
        ));
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_still_sending_a_body_is_passed_over() {
        let upstream = upstream();
        // A request body the browser never finishes: the upstream answers
        // before reading it, so the reply ends while the body is still going.
        let (_browser, never) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stalled = Body::from_stream(tokio_stream_of(never));
        let mut upload = get(&upstream, "/ok");
        *upload.method_mut() = Method::POST;
        *upload.body_mut() = stalled;
        let Ok(reply) = call(&upstream.authority, upload).await else {
            panic!("the upstream is up");
        };
        assert_eq!(body_of(reply).await, "ok");
        let next = tokio::time::timeout(
            Duration::from_secs(10),
            call(&upstream.authority, get(&upstream, "/ok")),
        )
        .await
        .expect("a call waited on another request's upload");
        let Ok(reply) = next else {
            panic!("the upstream is up");
        };
        assert_eq!(body_of(reply).await, "ok");
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);
    }

    /// The receiving end of a channel as a stream of body chunks.
    fn tokio_stream_of(
        mut receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reply_dropped_unread_takes_its_connection_with_it() {
        let upstream = upstream();
        let Ok(reply) = call(&upstream.authority, get(&upstream, "/big")).await else {
            panic!("the upstream is up");
        };
        drop(reply);
        let Ok(reply) = call(&upstream.authority, get(&upstream, "/ok")).await else {
            panic!("the upstream is up");
        };
        assert_eq!(body_of(reply).await, "ok");
        assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_upstream_that_is_down_is_reported_unreachable() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority: Arc<str> = Arc::from(closed.local_addr().unwrap().to_string());
        drop(closed);
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = Uri::from_static("/ok");
        match call(&authority, request).await {
            Err(CallError::Unreachable(error)) => assert!(error.contains(&*authority), "{error}"),
            _ => panic!("nothing listens there"),
        }
    }
}
