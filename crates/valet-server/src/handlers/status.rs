//! The Token Status List endpoints (draft-ietf-oauth-status-list §8, §9) and the
//! push channel of revocation notices.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;
use valet_core::status::{StatusStream, StreamRefusal};

use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;

/// One signed list, as `application/statuslist+jwt`.
pub async fn status_list(
    State(state): State<Arc<AppState>>,
    Path(list): Path<String>,
) -> Result<Response, ApiError> {
    let Some(token) = (match list.parse::<i64>() {
        Ok(list) => state.server.status_list(list).await?,
        Err(_) => None,
    }) else {
        return Err(ApiError::NotFound);
    };
    let mut response = axum::body::Bytes::from_owner(token.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/statuslist+jwt"),
    );
    // Resource servers cache by the token's `ttl`; intermediaries must not.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// §9: every list that may hold live tokens.
pub async fn aggregation(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let lists = state.server.status_list_uris().await?;
    let mut response = axum::Json(serde_json::json!({ "status_lists": lists })).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Server-Sent Events: `revoked` with `{"uri", "idx"}` per revocation (a hint to
/// refetch that signed list), `resync` if this subscriber fell behind (refetch
/// everything), and a keep-alive comment every 15 seconds. With
/// `status_events_auth = token` a bearer token is required (RFC 6750 errors);
/// beyond `status_events_max_streams` open streams the answer is 503 with
/// `Retry-After` and no stream; after `status_events_max_lifetime` the stream
/// ends cleanly and its client reconnects (see `valet_core::status::stream`).
pub async fn events(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let opened = state
        .server
        .open_status_stream(&context, authorization)
        .await;
    let StatusStream {
        events,
        slot,
        lifetime,
    } = opened.inspect_err(|refusal| {
        if matches!(refusal, StreamRefusal::Full { .. }) {
            metrics::counter!("valet_status_streams_refused_total").increment(1);
        }
    })?;
    // The slot travels with the stream and is freed when the body is dropped.
    let stream = futures_util::stream::unfold((events, slot), |(mut receiver, slot)| async move {
        let event = match receiver.recv().await {
            Ok(event) => Event::default()
                .event("revoked")
                .data(serde_json::to_string(&event).unwrap_or_default()),
            Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), (receiver, slot)))
    })
    .take_until(tokio::time::sleep(lifetime));
    Ok(Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("keep-alive"),
        )
        .into_response())
}
