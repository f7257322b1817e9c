//! The choices for an upstream identity no account is linked to: a new
//! account (`POST /upstream/identity/create`), or a link made on the account
//! page after a local sign-in (`POST /upstream/identity/link` keeps the
//! identity for that). Never a link by email: an identity whose email is a
//! local account's gets no account of its own with that email; its owner
//! must sign in and link it.

use valet_protocol::Form;

use super::login::resume_waiting_for_login;
use super::upstream::{UpstreamOutcome, interaction_form};
use crate::AuthorizationServer;
use crate::admin::NewUser;
use crate::admin::users::insert_user;
use crate::audit::{AuditEvent, AuditKind};
use crate::authn::identify::Resumed;
use crate::authn::step::Step;
use crate::authn::verify::{Method, Proved};
use crate::authorize::{AuthorizeOutcome, PageError};
use crate::config::Registration;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session::{Cookies, NewSession};
use crate::store::{SingleUseKind, StoreError, UpstreamLink};
use crate::upstream::records::{self, PendingIdentity};

fn page(status: u16, title: &'static str, message: impl Into<String>) -> UpstreamOutcome {
    UpstreamOutcome::Step(AuthorizeOutcome::ErrorPage(PageError::new(
        status, title, message,
    )))
}

fn gone() -> PageError {
    PageError::new(
        400,
        "Sign-in expired",
        "This sign-in has expired or was already used. Go back to the app and start again.",
    )
}

/// The pending identity the form names, if it is this browser's and the
/// form carries this browser's CSRF value; left in place.
async fn pending_of(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    now: i64,
) -> Result<Option<(String, PendingIdentity)>, OAuthError> {
    let csrf_form = form.optional("csrf").ok().flatten();
    let (Some(cookie), Some(sent)) = (cookies.csrf, csrf_form) else {
        return Ok(None);
    };
    if cookie.is_empty() || !valet_jose::constant_time_eq(cookie.as_bytes(), sent.as_bytes()) {
        return Ok(None);
    }
    let Ok(Some(handle)) = form.optional("identity") else {
        return Ok(None);
    };
    let store = server.store.as_ref();
    let kind = SingleUseKind::UpstreamIdentity;
    let pending = records::peek::<PendingIdentity>(store, kind, handle, now).await?;
    Ok(pending
        .filter(|pending| records::same_browser(&pending.browser, cookies.csrf))
        .map(|pending| (handle.to_owned(), pending)))
}

/// `POST /upstream/identity/link`: the identity stays pending for the
/// account page, which links it once the user signed in locally and
/// confirms. The handle to keep in the browser (a cookie), or the page.
pub async fn keep_for_linking(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<Result<String, PageError>, OAuthError> {
    Ok(
        match pending_of(server, form, cookies, context.now).await? {
            Some((handle, _)) => Ok(handle),
            None => Err(gone()),
        },
    )
}

/// `POST /upstream/identity/create`: a new account for the identity, if
/// registration is open and its email is nobody's; linked, and the sign-in
/// goes on as that user's.
pub async fn create_upstream_account(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<(UpstreamOutcome, Option<NewSession>), OAuthError> {
    let Some((handle, pending)) = pending_of(server, form, cookies, context.now).await? else {
        return Ok((
            UpstreamOutcome::Step(AuthorizeOutcome::ErrorPage(gone())),
            None,
        ));
    };
    if let Some(refused) = refusal(server, &pending).await? {
        return Ok((refused, None));
    }
    let store = server.store.as_ref();
    let identity = &pending.identity;
    let kind = SingleUseKind::UpstreamIdentity;
    if records::take::<PendingIdentity>(store, kind, &handle, context.now)
        .await?
        .is_none()
    {
        return Ok((
            UpstreamOutcome::Step(AuthorizeOutcome::ErrorPage(gone())),
            None,
        ));
    }
    let username = free_username(server, &pending).await?;
    let new = NewUser {
        username,
        email: identity.email.clone(),
        email_verified: identity.email_verified,
        name: identity.name.clone(),
        given_name: None,
        family_name: None,
        password: None,
        // A provider's identity never brings the console role with it.
        admin: false,
    };
    let user = match insert_user(store, &server.hasher, new, context.now).await {
        Ok(user) => user,
        Err(error) => {
            tracing::info!(%error, "account for an upstream identity refused");
            return Ok((
                page(
                    409,
                    "Account not created",
                    "An account could not be created for this sign-in (its email or name is taken or not usable). Sign in another way.",
                ),
                None,
            ));
        }
    };
    let link = UpstreamLink {
        upstream: pending.upstream.clone(),
        subject: identity.subject.clone(),
        user_id: user.user_id.clone(),
        linked_at: context.now,
    };
    match store.insert_upstream_link(&link).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            // Linked meanwhile (another browser): the new account stays unlinked.
            store.delete_user(&user.user_id).await?;
            return Ok((
                page(
                    409,
                    "Already linked",
                    "This provider account is linked to an account already. Sign in with it again.",
                ),
                None,
            ));
        }
        Err(error) => return Err(error.into()),
    }
    audit_created(server, &link, context);
    continue_signed_in(server, &pending, link.user_id, cookies, context).await
}

/// Why no account may be created for `pending`: registration is closed, or
/// its email is a local account's (which it must not take over).
async fn refusal(
    server: &AuthorizationServer,
    pending: &PendingIdentity,
) -> Result<Option<UpstreamOutcome>, OAuthError> {
    if server.settings.registration != Registration::Open {
        return Ok(Some(page(
            403,
            "Registration closed",
            "New accounts cannot be created here. If you have an account, sign in to it and link this provider from your account page.",
        )));
    }
    if let Some(email) = &pending.identity.email
        && server.store.find_user_by_login(email).await?.is_some()
    {
        return Ok(Some(page(
            409,
            "Account exists",
            "An account with this email address exists already. If it is yours, sign in to it with its password, then link this provider from your account page.",
        )));
    }
    Ok(None)
}

fn audit_created(server: &AuthorizationServer, link: &UpstreamLink, context: &RequestContext) {
    for kind in [AuditKind::UserCreated, AuditKind::UpstreamLinked] {
        server.audit(
            AuditEvent::new(kind, context.now)
                .user(&link.user_id)
                .address(context.address)
                .request(&context.id)
                .detail("upstream", link.upstream.as_str())
                .detail("via", "upstream"),
        );
    }
}

/// The sign-in goes on with the upstream as the first factor.
async fn continue_signed_in(
    server: &AuthorizationServer,
    pending: &PendingIdentity,
    user_id: String,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<(UpstreamOutcome, Option<NewSession>), OAuthError> {
    let form = interaction_form(&pending.interaction, cookies.csrf);
    let Resumed {
        at,
        request,
        client,
    } = match resume_waiting_for_login(server, &form, cookies, context).await? {
        Ok(resumed) => resumed,
        Err(error) => {
            return Ok((
                UpstreamOutcome::Step(AuthorizeOutcome::ErrorPage(error)),
                None,
            ));
        }
    };
    let step = Step {
        client: &client,
        at,
        csrf: cookies.csrf.unwrap_or_default().to_owned(),
        login: None,
        signing_in: None,
        username: None,
    };
    let proved = Proved::first(user_id, Method::Upstream);
    let (outcome, session) = step
        .proved(server, request, proved, cookies.session, context)
        .await?;
    Ok((UpstreamOutcome::Step(outcome), session))
}

/// A username nobody has: the email's local part (or the upstream's name)
/// in the allowed characters, with a random suffix when taken.
async fn free_username(
    server: &AuthorizationServer,
    pending: &PendingIdentity,
) -> Result<String, OAuthError> {
    let base: String = pending
        .identity
        .email
        .as_deref()
        .and_then(|email| email.split('@').next())
        .unwrap_or(&pending.upstream)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(40)
        .collect();
    let base = if base.is_empty() {
        pending.upstream.clone()
    } else {
        base
    };
    if server.store.find_user_by_login(&base).await?.is_none() {
        return Ok(base);
    }
    let suffix: String = records::random_handle()?
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    Ok(format!("{base}-{suffix}"))
}
