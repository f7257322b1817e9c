//! A pushed authorization request (RFC 9126) arriving at `/authorize`: the
//! browser brings `client_id` and `request_uri`; the request is what the
//! client pushed to `/par`, and nothing else.
//!
//! §4: "the authorization server MUST validate the request_uri ... and
//! client_id" and "SHOULD treat request_uri values as one-time use": the
//! handle is taken once, only by the client that pushed it (a handle named
//! with another `client_id` is refused and left to its client). §4 also
//! makes the pushed request the whole request: parameters the browser adds
//! are ignored. Failures are pages: no redirect URI is trusted yet.

use valet_jose::sha256;
use valet_protocol::Form;

use crate::AuthorizationServer;
use crate::authorize::PageError;
use crate::endpoint::par::{PushedRequest, REQUEST_URI_PREFIX};
use crate::error::OAuthError;
use crate::store::SingleUseKind;

/// Where an authorization request's parameters come from.
pub(crate) enum Source {
    /// The browser's own (no `request_uri`).
    Direct,
    /// The pushed request's.
    Pushed(Form),
}

/// The request `/authorize` is to serve: the browser's, or the pushed one
/// named by `request_uri`; `Err` is the page to show instead.
pub(crate) async fn resolve(
    server: &AuthorizationServer,
    form: &Form,
    now: i64,
) -> Result<Result<Source, PageError>, OAuthError> {
    let invalid = |message: &str| {
        Ok(Err(PageError::new(
            400,
            "Invalid request",
            format!("{message} Go back to the app and try again."),
        )))
    };
    let request_uri = match form.optional("request_uri") {
        Ok(None) => return Ok(Ok(Source::Direct)),
        Ok(Some(uri)) => uri,
        Err(_) => return invalid("The request has more than one request_uri."),
    };
    // Any other request_uri is a request object by reference (OIDC Core
    // §6.2), which the request's own checks refuse as not supported.
    let Some(handle) = request_uri.strip_prefix(REQUEST_URI_PREFIX) else {
        return Ok(Ok(Source::Direct));
    };
    let Ok(Some(client_id)) = form.optional("client_id") else {
        return invalid("The request has a request_uri but no single client_id.");
    };
    let key = sha256(handle.as_bytes());
    let store = server.store.as_ref();
    let expired =
        "The request_uri is invalid, has expired or was already used (invalid_request_uri).";
    let Some(record) = store
        .get_single_use(SingleUseKind::PushedRequest, &key, now)
        .await?
    else {
        return invalid(expired);
    };
    let Ok(pushed) = serde_json::from_str::<PushedRequest>(&record.payload) else {
        return invalid(expired);
    };
    if pushed.client_id != client_id {
        tracing::warn!(%client_id, "request_uri presented by a client that did not push it");
        return invalid("The request_uri was not pushed by this application.");
    }
    if store
        .take_single_use(SingleUseKind::PushedRequest, &key, now)
        .await?
        .is_none()
    {
        return invalid(expired);
    }
    Ok(Ok(Source::Pushed(Form::from_pairs(pushed.params))))
}
