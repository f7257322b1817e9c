//! The consent step: the user allows (or denies) the scopes for the client.
//! Whether it is asked at all is [`super::policy`]'s call; this step looks up
//! what the user allowed before, shows the page, and takes the decision.

use valet_protocol::Form;

use super::pending::PendingAuthorization;
use super::verify::SignedIn;
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::authorize::{ConsentPage, PageError, describe_scope};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session;
use crate::store::{Client, ClientOrigin, ConsentGiven};

/// The user's answer on the consent form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allow,
    Deny,
}

impl Decision {
    /// The form's `decision`, or `None` for anything but `allow` or `deny`.
    pub(crate) fn from_form(form: &Form) -> Option<Self> {
        match form.optional("decision") {
            Ok(Some("allow")) => Some(Self::Allow),
            Ok(Some("deny")) => Some(Self::Deny),
            _ => None,
        }
    }
}

/// Whether the user allowed every requested scope to the client before. A
/// client known only by its metadata document is asked every time: anyone can
/// publish a document, so an earlier answer does not vouch for the next request.
pub(crate) async fn remembered(
    server: &AuthorizationServer,
    client: &Client,
    request: &PendingAuthorization,
    user_id: &str,
) -> Result<bool, OAuthError> {
    if client.origin() == ClientOrigin::MetadataDocument {
        return Ok(false);
    }
    let granted = server.store.get_consent(user_id, &client.client_id).await?;
    Ok(request.scope.iter().all(|s| granted.contains(s)))
}

/// The consent page for the interaction `interaction_id`, for `user_id`
/// (whose `username` is read unless the caller has it).
pub(crate) async fn page(
    server: &AuthorizationServer,
    client: &Client,
    request: &PendingAuthorization,
    interaction_id: String,
    user_id: &str,
    username: Option<String>,
    csrf: String,
) -> Result<ConsentPage, OAuthError> {
    let username = match username {
        Some(username) => username,
        None => (server.store.get_user(user_id).await?)
            .map(|u| u.username)
            .unwrap_or_default(),
    };
    Ok(ConsentPage {
        interaction_id,
        client_name: client.name.clone(),
        client_site: client.metadata_document_site(),
        username,
        scopes: request
            .scope
            .iter()
            .map(|s| (s.clone(), describe_scope(s)))
            .collect(),
        csrf,
    })
}

/// The consent must come from the browser that signed in: its session is
/// still the one the request was signed in with.
pub(crate) async fn same_browser(
    server: &AuthorizationServer,
    signed_in: &SignedIn,
    session_cookie: Option<&str>,
    now: i64,
) -> Result<Result<(), PageError>, OAuthError> {
    let session = session::lookup(server.store.as_ref(), session_cookie, now).await?;
    if session
        .as_ref()
        .is_none_or(|s| s.sid != signed_in.sid || s.user_id != signed_in.user_id)
    {
        return Ok(Err(PageError::new(
            403,
            "Session changed",
            "You are no longer signed in as the user this request was for. Go back to the app and start again.",
        )));
    }
    Ok(Ok(()))
}

/// What an allow adds to the user's consents (remembered for the next
/// request); a deny adds nothing.
pub(crate) fn given(
    decision: Decision,
    client: &Client,
    request: &PendingAuthorization,
    user_id: &str,
    now: i64,
) -> Option<ConsentGiven> {
    (decision == Decision::Allow).then(|| ConsentGiven {
        user_id: user_id.to_owned(),
        client_id: client.client_id.clone(),
        scopes: request.scope.clone(),
        now,
    })
}

/// Audits the decision, once it is stored.
pub(crate) fn audit(
    server: &AuthorizationServer,
    decision: Decision,
    client: &Client,
    request: &PendingAuthorization,
    user_id: &str,
    context: &RequestContext,
) {
    let kind = match decision {
        Decision::Allow => AuditKind::ConsentGranted,
        Decision::Deny => AuditKind::ConsentDenied,
    };
    let event = AuditEvent::new(kind, context.now)
        .user(user_id)
        .client(&client.client_id)
        .address(context.address)
        .request(&context.id)
        .detail("scope", request.scope.join(" "));
    // A device's request (RFC 8628) is told apart: the user decided for a
    // device elsewhere, not for the page they came from.
    let event = if request.device.is_some() {
        event.detail("flow", "device")
    } else {
        event
    };
    server.audit(event);
}
