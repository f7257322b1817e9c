//! The request context: built once per request and passed to the core
//! endpoints (see `valet_core::context`). The time is read once from the
//! server's clock; the client's address is the TCP peer or, behind trusted
//! proxies, the forwarded one (see [`TrustedProxies`]); the request id is the
//! one the layer around every request chose on its way in ([`request_id`]) and
//! set for the route's future ([`with_request_id`]).

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use bytes::BytesMut;
use tokio::task::futures::TaskLocalFuture;
use valet_core::{RequestContext, RequestId};

use crate::AppState;
use crate::client_address::TrustedProxies;

/// The header that carries a request's id in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A handler's request context (an extractor; it cannot fail).
pub struct Context(pub RequestContext);

impl FromRequestParts<Arc<AppState>> for Context {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        let address = peer.map(|peer| state.trusted_proxies.client_address(peer, &parts.headers));
        let id = REQUEST_ID
            .try_with(|id| *id)
            .unwrap_or_else(|_| next_request_id());
        Ok(Self(RequestContext {
            now: state.server.now(),
            address,
            id,
            locale: crate::locale::current_tag(),
        }))
    }
}

tokio::task_local! {
    /// The id of the request whose future is being polled: set by the
    /// middleware around the route (see [`with_request_id`]), read by
    /// [`Context`]. Unlike a request extension it costs no allocation.
    static REQUEST_ID: RequestId;
}

/// Runs a route's future as the request `id`.
pub fn with_request_id<F: Future>(id: RequestId, future: F) -> TaskLocalFuture<RequestId, F> {
    REQUEST_ID.scope(id, future)
}

/// The id of `request`, for its [`Context`] and the response's `X-Request-Id`.
/// A valid id sent by a trusted proxy (the TCP peer is one of `trusted`) is
/// kept, so one id follows the request through the balancer's and Valet's
/// logs; anyone else's is replaced by Valet's own.
pub fn request_id(request: &Request, trusted: Option<&TrustedProxies>) -> RequestId {
    trusted
        .zip(request.extensions().get::<ConnectInfo<SocketAddr>>())
        .filter(|(trusted, ConnectInfo(peer))| trusted.trusts(peer.ip()))
        .and_then(|_| request.headers().get(&X_REQUEST_ID))
        .and_then(|value| RequestId::parse(value.as_bytes()))
        .unwrap_or_else(next_request_id)
}

/// Bytes the per-thread buffer of header values holds; refilled when spent.
const HEADER_BUFFER: usize = 16 * 1024;

thread_local! {
    /// Header values are cut from this buffer, so a response's `X-Request-Id`
    /// costs a reference count instead of an allocation (one per ~500 ids).
    static HEADER_BYTES: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// `id` as a header value.
pub fn header_value(id: &RequestId) -> Option<HeaderValue> {
    let bytes = id.as_bytes();
    let shared = HEADER_BYTES.with_borrow_mut(|buffer| {
        if buffer.capacity() - buffer.len() < bytes.len() {
            *buffer = BytesMut::with_capacity(HEADER_BUFFER);
        }
        buffer.extend_from_slice(bytes);
        buffer.split().freeze()
    });
    HeaderValue::from_maybe_shared(shared).ok()
}

/// `{8 hex digits drawn once per process}-{counter}`: unique across nodes
/// and restarts with nothing but an atomic increment per request.
fn next_request_id() -> RequestId {
    static PREFIX: OnceLock<[u8; 8]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let drawn = valet_jose::random_bytes::<4>().unwrap_or_else(|_| {
            // No randomness: the process start time still tells nodes apart.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.subsec_nanos());
            nanos.to_be_bytes()
        });
        let mut prefix = [b'0'; 8];
        for (pair, byte) in prefix.chunks_mut(2).zip(drawn) {
            for (slot, nibble) in pair.iter_mut().zip([byte >> 4, byte & 0xf]) {
                *slot = char::from_digit(u32::from(nibble), 16).map_or(b'0', |c| c as u8);
            }
        }
        prefix
    });
    RequestId::sequential(prefix, COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_the_ids() {
        let ids: Vec<_> = (0..2_000).map(|_| next_request_id()).collect();
        for id in &ids {
            assert_eq!(header_value(id).unwrap().as_bytes(), id.as_bytes());
        }
        let forwarded = RequestId::parse(b"lb-1").unwrap();
        assert_eq!(header_value(&forwarded).unwrap(), "lb-1");
    }

    #[test]
    fn ids_differ_per_request_and_share_the_process_prefix() {
        let (first, second) = (next_request_id(), next_request_id());
        assert_ne!(first, second);
        let (a, b) = (first.as_str(), second.as_str());
        assert_eq!(a.split('-').next(), b.split('-').next());
        assert_eq!(a.split('-').next().unwrap().len(), 8);
    }
}
