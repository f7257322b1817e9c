//! The account page's providers (`/account/upstreams`): the user's links,
//! each removable, and the confirmation that links a pending identity.
//!
//! Linking needs a session proved by a local method (a password or a
//! passkey, with the user's second factor when enrolled: the account page's
//! sign-in asks for it), in the browser the identity was asserted to, and an
//! explicit confirmation (a CSRF-checked form). Signing in with the provider
//! itself never links, and no email, verified or not, ever does.

use super::records::{self, PendingIdentity};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::store::{Session, SingleUseKind, StoreError, UpstreamLink};

/// The RFC 8176 `amr` values of local methods: a password or a passkey.
const LOCAL_AMR: [&str; 3] = ["pwd", "hwk", "swk"];

/// Whether the session was signed in with a local method.
pub fn signed_in_locally(session: &Session) -> bool {
    session
        .amr
        .iter()
        .any(|amr| LOCAL_AMR.contains(&amr.as_str()))
}

/// What the page shows.
#[derive(Debug, Clone)]
pub struct LinksPage {
    pub username: String,
    pub links: Vec<UpstreamLink>,
    /// An identity waiting to be linked in this browser.
    pub pending: Option<PendingIdentity>,
    /// Whether this session may link (signed in locally).
    pub may_link: bool,
}

/// The page for `session`; `pending_handle` is the browser's pending-link cookie.
pub async fn page(
    server: &AuthorizationServer,
    session: &Session,
    pending_handle: Option<&str>,
    csrf_cookie: Option<&str>,
    now: i64,
) -> Result<LinksPage, OAuthError> {
    let store = server.store.as_ref();
    let links = store.list_upstream_links(&session.user_id).await?;
    let pending = match pending_handle {
        Some(handle) => {
            records::peek::<PendingIdentity>(store, SingleUseKind::UpstreamIdentity, handle, now)
                .await?
                .filter(|pending| records::same_browser(&pending.browser, csrf_cookie))
        }
        None => None,
    };
    let username = store
        .get_user(&session.user_id)
        .await?
        .map(|user| user.username)
        .unwrap_or_default();
    Ok(LinksPage {
        username,
        links,
        pending,
        may_link: signed_in_locally(session),
    })
}

/// What a form did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    Linked(String),
    Unlinked(String),
    /// Nothing changed: the status and why.
    Refused(u16, &'static str),
}

/// Links the pending identity under `handle` to the session's user.
pub async fn link(
    server: &AuthorizationServer,
    session: &Session,
    handle: Option<&str>,
    csrf_cookie: Option<&str>,
    context: &RequestContext,
) -> Result<LinkChange, OAuthError> {
    const GONE: LinkChange = LinkChange::Refused(
        400,
        "There is no sign-in waiting to be linked in this browser any more. Sign in with the provider again.",
    );
    if !signed_in_locally(session) {
        return Ok(LinkChange::Refused(
            403,
            "To link a provider, sign out and sign in to your account with your password or passkey first.",
        ));
    }
    let Some(handle) = handle else {
        return Ok(GONE);
    };
    let store = server.store.as_ref();
    let kind = SingleUseKind::UpstreamIdentity;
    let peeked = records::peek::<PendingIdentity>(store, kind, handle, context.now).await?;
    if !peeked.is_some_and(|p| records::same_browser(&p.browser, csrf_cookie)) {
        return Ok(GONE);
    }
    let Some(pending) = records::take::<PendingIdentity>(store, kind, handle, context.now).await?
    else {
        return Ok(GONE);
    };
    let link = UpstreamLink {
        upstream: pending.upstream.clone(),
        subject: pending.identity.subject.clone(),
        user_id: session.user_id.clone(),
        linked_at: context.now,
    };
    match store.insert_upstream_link(&link).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Ok(LinkChange::Refused(
                409,
                "That provider account is linked to an account already.",
            ));
        }
        Err(error) => return Err(error.into()),
    }
    audit(server, AuditKind::UpstreamLinked, &link, context);
    Ok(LinkChange::Linked(link.upstream))
}

/// Removes one of the user's links, unless it is their last way to sign in
/// (no password, no passkey, no other link).
pub async fn unlink(
    server: &AuthorizationServer,
    session: &Session,
    upstream: &str,
    subject: &str,
    context: &RequestContext,
) -> Result<LinkChange, OAuthError> {
    let store = server.store.as_ref();
    let links = store.list_upstream_links(&session.user_id).await?;
    let Some(link) = links
        .iter()
        .find(|link| link.upstream == upstream && link.subject == subject)
    else {
        return Ok(LinkChange::Refused(404, "That link does not exist."));
    };
    let has_password = store
        .get_user(&session.user_id)
        .await?
        .is_some_and(|user| user.password_hash.is_some());
    let has_passkey = !store.list_passkeys(&session.user_id).await?.is_empty();
    if !has_password && !has_passkey && links.len() <= 1 {
        return Ok(LinkChange::Refused(
            409,
            "This provider is your only way to sign in. Set a password or add a passkey first.",
        ));
    }
    if store
        .delete_upstream_link(&session.user_id, upstream, subject)
        .await?
    {
        audit(server, AuditKind::UpstreamUnlinked, link, context);
    }
    Ok(LinkChange::Unlinked(upstream.to_owned()))
}

fn audit(
    server: &AuthorizationServer,
    kind: AuditKind,
    link: &UpstreamLink,
    context: &RequestContext,
) {
    server.audit(
        AuditEvent::new(kind, context.now)
            .user(&link.user_id)
            .address(context.address)
            .request(&context.id)
            .detail("upstream", link.upstream.as_str())
            .detail("subject", link.subject.as_str()),
    );
}
