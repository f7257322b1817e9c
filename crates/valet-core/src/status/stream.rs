//! Who may open the revocation push stream (`/statuslists/events`), how many at
//! once, and for how long.
//!
//! ```text
//! GET /statuslists/events
//!   ──status_events_auth = token: bearer check──▶ 401 invalid_token / 403 insufficient_scope
//!   ──status_events_max_streams open already──▶ 503 + Retry-After (no stream)
//!   ──▶ stream (holds a slot) ──status_events_max_lifetime──▶ ended cleanly, slot freed
//! ```
//!
//! The credential is checked before the stream counts against the cap, so
//! refused callers never take a slot. A slot is freed when the stream ends for
//! any reason: its lifetime, shutdown, or the client going away (noticed at the
//! next write, at most one keep-alive interval later).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use valet_protocol::bearer::bearer_token;

use super::StatusEvent;
use crate::AuthorizationServer;
use crate::config::{STATUS_SCOPE, StatusEventsAuth};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::token::access_token::audience_includes;

/// Seconds a caller refused for the cap is asked to wait: streams end at their
/// lifetime, so with a full cap one frees every lifetime / cap seconds on average.
pub const FULL_RETRY_AFTER: i64 = 10;

/// Why a push stream is not opened.
#[derive(Debug)]
pub enum StreamRefusal {
    /// 401 with `WWW-Authenticate: Bearer` and no error code: no token was sent
    /// (RFC 6750 §3.1).
    MissingToken,
    /// 401 `invalid_token` (RFC 6750 §3.1).
    InvalidToken(&'static str),
    /// 403 `insufficient_scope`: a valid token without [`STATUS_SCOPE`].
    InsufficientScope,
    /// 503 with `Retry-After`: `status_events_max_streams` are open.
    Full {
        retry_after_seconds: i64,
    },
    Server(OAuthError),
}

impl From<OAuthError> for StreamRefusal {
    fn from(error: OAuthError) -> Self {
        Self::Server(error)
    }
}

/// An admitted push stream: its notices, its place under the cap (given back
/// when dropped), and when the server ends it.
#[derive(Debug)]
pub struct StatusStream {
    pub events: broadcast::Receiver<StatusEvent>,
    pub slot: StreamSlot,
    pub lifetime: Duration,
}

/// Counts open push streams against the cap.
#[derive(Debug, Default)]
pub struct StreamSlots {
    open: Arc<AtomicUsize>,
}

impl StreamSlots {
    /// A slot, unless `max` are taken.
    pub fn try_open(&self, max: usize) -> Option<StreamSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| StreamSlot {
                open: Arc::clone(&self.open),
            })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One open stream's place under the cap; freed when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    open: Arc<AtomicUsize>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Checks the caller's credential if the settings ask for one, then takes a
/// slot under the cap.
pub(crate) async fn open(
    server: &AuthorizationServer,
    context: &RequestContext,
    authorization: Option<&[u8]>,
) -> Result<StatusStream, StreamRefusal> {
    let settings = &server.settings;
    if settings.status_events_auth == StatusEventsAuth::Token {
        check_credential(server, authorization, context.now).await?;
    }
    let Some(slot) = server
        .status_streams
        .try_open(settings.status_events_max_streams)
    else {
        return Err(StreamRefusal::Full {
            retry_after_seconds: FULL_RETRY_AFTER,
        });
    };
    Ok(StatusStream {
        events: server.status_lists.subscribe(),
        slot,
        lifetime: Duration::from_secs(
            u64::try_from(settings.status_events_max_lifetime).unwrap_or(0),
        ),
    })
}

/// RFC 6750 §2.1 and RFC 9068 §4: a bearer access token of this server (live,
/// not revoked), meant for the server itself (`aud` holds the issuer) and
/// carrying [`STATUS_SCOPE`].
async fn check_credential(
    server: &AuthorizationServer,
    authorization: Option<&[u8]>,
    now: i64,
) -> Result<(), StreamRefusal> {
    let token = bearer_token(authorization).ok_or(StreamRefusal::MissingToken)?;
    let claims = server
        .live_access_token(token, now)
        .await?
        .ok_or(StreamRefusal::InvalidToken(
            "the access token is invalid, expired or revoked",
        ))?;
    let issuer = server.settings.issuer.as_str();
    let for_us = audience_includes(&claims, issuer);
    if !for_us {
        return Err(StreamRefusal::InvalidToken(
            "the access token is not meant for this server",
        ));
    }
    let has_scope = claims
        .get("scope")
        .and_then(Value::as_str)
        .is_some_and(|scope| scope.split(' ').any(|s| s == STATUS_SCOPE));
    if !has_scope {
        return Err(StreamRefusal::InsufficientScope);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_freed_when_dropped() {
        let slots = StreamSlots::default();
        let first = slots.try_open(2).unwrap();
        let second = slots.try_open(2).unwrap();
        assert!(slots.try_open(2).is_none());
        assert_eq!(slots.open(), 2);
        drop(first);
        let third = slots.try_open(2).unwrap();
        assert!(slots.try_open(2).is_none());
        drop((second, third));
        assert_eq!(slots.open(), 0);
    }
}
