//! The Token Status List endpoints (draft-ietf-oauth-status-list §8, §9) and the
//! push channel of revocation notices.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;
use valet_core::config::STATUS_SCOPE;
use valet_core::status::{StatusStream, StreamRefusal};
use valet_protocol::ErrorCode;

use crate::AppState;
use crate::response::{ApiError, json_error, no_store, retry_after};

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
pub async fn events(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let StatusStream {
        events,
        slot,
        lifetime,
    } = match state.server.open_status_stream(authorization).await {
        Ok(stream) => stream,
        Err(refusal) => return refused(refusal),
    };
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
    Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("keep-alive"),
        )
        .into_response()
}

/// RFC 6750 §3 for the credential; 503 with `Retry-After` (RFC 9110 §15.6.4)
/// at the cap, a small body and no stream.
fn refused(refusal: StreamRefusal) -> Response {
    let (status, challenge) = match refusal {
        StreamRefusal::MissingToken => (
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"valet\"".to_owned(),
        ),
        StreamRefusal::InvalidToken(description) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer realm=\"valet\", error=\"invalid_token\", error_description=\"{description}\""
            ),
        ),
        StreamRefusal::InsufficientScope => (
            StatusCode::FORBIDDEN,
            format!(
                "Bearer realm=\"valet\", error=\"insufficient_scope\", scope=\"{STATUS_SCOPE}\""
            ),
        ),
        StreamRefusal::Full {
            retry_after_seconds,
        } => {
            metrics::counter!("valet_status_streams_refused_total").increment(1);
            let mut response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TemporarilyUnavailable,
                Some("too many event streams are open; retry later"),
            );
            retry_after(&mut response, retry_after_seconds);
            return response;
        }
        StreamRefusal::Server(error) => return ApiError::from(error).into_response(),
    };
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    no_store(&mut response);
    response
}
