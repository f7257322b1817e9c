//! The request context: built once per request and passed to the core
//! endpoints (see `valet_core::context`). The time is read once from the
//! server's clock; the client's address is the TCP peer or, behind trusted
//! proxies, the forwarded one (see [`TrustedProxies`]); the request id is the
//! one [`assign_request_id`] gave the request on its way in.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::HeaderName;
use axum::http::request::Parts;
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
        let id = parts
            .extensions
            .get::<RequestId>()
            .copied()
            .unwrap_or_else(next_request_id);
        Ok(Self(RequestContext {
            now: state.server.now(),
            address,
            id,
        }))
    }
}

/// Gives `request` its id (kept in its extensions for [`Context`]) and returns
/// it for the response's `X-Request-Id`. A valid id sent by a trusted proxy
/// (the TCP peer is one of `trusted`) is kept, so one id follows the request
/// through the balancer's and Valet's logs; anyone else's is replaced.
pub fn assign_request_id(request: &mut Request, trusted: Option<&TrustedProxies>) -> RequestId {
    let forwarded = trusted
        .zip(request.extensions().get::<ConnectInfo<SocketAddr>>())
        .filter(|(trusted, ConnectInfo(peer))| trusted.trusts(peer.ip()))
        .and_then(|_| request.headers().get(&X_REQUEST_ID))
        .and_then(|value| RequestId::parse(value.as_bytes()));
    let id = forwarded.unwrap_or_else(next_request_id);
    request.extensions_mut().insert(id);
    id
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
    fn ids_differ_per_request_and_share_the_process_prefix() {
        let (first, second) = (next_request_id(), next_request_id());
        assert_ne!(first, second);
        let (a, b) = (first.as_str(), second.as_str());
        assert_eq!(a.split('-').next(), b.split('-').next());
        assert_eq!(a.split('-').next().unwrap().len(), 8);
    }
}
