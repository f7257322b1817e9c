//! Pushed authorization requests (RFC 9126): the client sends the
//! authorization request's parameters straight to Valet (authenticated, not
//! through the browser) and gets a `request_uri` to send the browser to
//! `/authorize` with instead.
//!
//! §2.1: the request is validated as at the authorization endpoint (client,
//! redirect URI, parameters) and a `request_uri` parameter in it is refused.
//! §2.2: the answer is `request_uri` (`urn:ietf:params:oauth:request_uri:` and
//! 256 random bits, stored only as a hash) and `expires_in` (60 s). §4: at
//! `/authorize` the handle is used once, by the client that pushed it, and
//! only the pushed parameters count (see `authn::pushed`).
//!
//! §3: the parameters may come as a request object signed by the client
//! (`request`, RFC 9101); then only the object's parameters are pushed.
//! `dpop_jkt` (RFC 9449 §10) is pushed like any parameter, so the code of a
//! pushed request can be bound to a DPoP key.

use serde::{Deserialize, Serialize};
use valet_jose::{b64url, random_bytes, sha256};
use valet_protocol::authorize::AuthorizationParameters;
use valet_protocol::token::RequestError;
use valet_protocol::{ErrorCode, Form};

use crate::AuthorizationServer;
use crate::authorize::request_object;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::policy::{authorization_request, redirect_uri};
use crate::store::SingleUseKind;

/// RFC 9126 §2.2: the `request_uri` prefix.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Seconds a pushed request waits for the browser (§2.2 suggests 5 to 600;
/// the browser is sent on at once).
pub const PUSHED_REQUEST_TTL: i64 = 60;

/// The authorization request's parameters that are kept; everything else
/// (client credentials above all) is dropped.
const KEPT: [&str; 16] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "acr_values",
    "resource",
    "dpop_jkt",
    // OIDC Core §3.1.2.1: the pages' language.
    "ui_locales",
];

/// RFC 9126 §2.2: the answer, sent with 201 Created.
#[derive(Debug, Serialize)]
pub struct PushedAuthorizationResponse {
    pub request_uri: String,
    pub expires_in: i64,
}

/// A pushed request as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct PushedRequest {
    pub client_id: String,
    pub params: Vec<(String, String)>,
}

pub async fn push(
    server: &AuthorizationServer,
    context: &RequestContext,
    authorization: Option<&[u8]>,
    form: &Form,
) -> Result<PushedAuthorizationResponse, OAuthError> {
    let now = context.now;
    let client = server
        .authenticate_client(context, authorization, form)
        .await?;
    let registered = client.client();
    // §3: a request object's parameters replace the form's; it is checked
    // against the authenticated client's keys.
    let opened;
    let form = match form.optional("request").map_err(RequestError::from)? {
        Some(object) => {
            opened = request_object::open(server, registered, object, now).await?;
            &opened
        }
        None => form,
    };
    // §2.1: "The request_uri authorization request parameter is one exception,
    // and it MUST NOT be provided."
    if form
        .optional("request_uri")
        .map_err(RequestError::from)?
        .is_some()
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "request_uri must not be sent to the pushed authorization request endpoint",
        ));
    }
    if let Some(named) = form.optional("client_id").map_err(RequestError::from)?
        && named != registered.client_id
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "client_id does not name the authenticated client",
        ));
    }
    if redirect_uri::verify(
        registered,
        form.optional("redirect_uri").map_err(RequestError::from)?,
    )
    .is_none()
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "redirect_uri is not registered for this client (or is required because it registered several)",
        ));
    }
    let params = AuthorizationParameters::from_form(form)?;
    authorization_request::permitted(registered, &params)
        .map_err(|(code, description)| OAuthError::new(code, description))?;
    let mut kept = form.only(&KEPT);
    kept.retain(|(name, _)| name != "client_id");
    kept.insert(0, ("client_id".to_owned(), registered.client_id.clone()));
    let record = PushedRequest {
        client_id: registered.client_id.clone(),
        params: kept,
    };
    let handle = b64url(random_bytes::<32>().map_err(OAuthError::server)?);
    let payload = serde_json::to_string(&record).map_err(OAuthError::server)?;
    server
        .store
        .insert_single_use(
            SingleUseKind::PushedRequest,
            &sha256(handle.as_bytes()),
            &payload,
            now.saturating_add(PUSHED_REQUEST_TTL),
        )
        .await?;
    Ok(PushedAuthorizationResponse {
        request_uri: format!("{REQUEST_URI_PREFIX}{handle}"),
        expires_in: PUSHED_REQUEST_TTL,
    })
}
