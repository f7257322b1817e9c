//! A signed-in user's own passkeys: register one (named), list them, remove
//! one. Every call needs the browser's live session; every change also needs
//! the CSRF value of the account page (a cookie and the same value in the form).

use serde_json::Value;
use valet_jose::b64url;
use valet_protocol::Form;
use webauthn_rs::prelude::{CredentialID, Passkey, RegisterPublicKeyCredential, Uuid};

use super::{Ceremony, Challenge, begin, credential_state, hash, same_browser, take};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::authorize::PageError;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session::{self, Cookies};
use crate::store::{PasskeyRecord, Session, StoreError};

/// The longest name a passkey may have, in characters.
pub const MAX_NAME: usize = 64;

/// A passkey as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySummary {
    /// base64url of the credential id: the handle the remove form sends.
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Synced to other devices (WebAuthn backup state).
    pub backed_up: bool,
}

/// The passkeys page: whose, and their passkeys.
#[derive(Debug, Clone)]
pub struct PasskeysPage {
    pub username: String,
    pub passkeys: Vec<PasskeySummary>,
}

/// Why a request of the account page was refused.
fn not_signed_in() -> PageError {
    PageError::new(
        401,
        "Not signed in",
        "Sign in to an application first, then open this page again.",
    )
}

fn form_expired() -> PageError {
    PageError::new(
        403,
        "Form expired",
        "This form could not be verified. Reload the page and try again.",
    )
}

fn unavailable() -> PageError {
    PageError::new(
        404,
        "Passkeys unavailable",
        "This server cannot use passkeys: its issuer's host is not a domain name.",
    )
}

/// The signed-in user's passkeys; `None` without a live session.
pub async fn page(
    server: &AuthorizationServer,
    session_cookie: Option<&str>,
    now: i64,
) -> Result<Result<PasskeysPage, PageError>, OAuthError> {
    let Some(session) = session::lookup(server.store.as_ref(), session_cookie, now).await? else {
        return Ok(Err(not_signed_in()));
    };
    let username = server
        .store
        .get_user(&session.user_id)
        .await?
        .map(|user| user.username)
        .unwrap_or_default();
    let passkeys = server
        .store
        .list_passkeys(&session.user_id)
        .await?
        .into_iter()
        .map(|record| PasskeySummary {
            id: b64url(&record.credential_id),
            name: record.name,
            created_at: record.created_at,
            last_used_at: record.last_used_at,
            backed_up: record.backed_up,
        })
        .collect();
    Ok(Ok(PasskeysPage { username, passkeys }))
}

/// The session, when the form's CSRF value is the cookie's.
async fn checked(
    server: &AuthorizationServer,
    cookies: Cookies<'_>,
    form: &Form,
    now: i64,
) -> Result<Result<Session, PageError>, OAuthError> {
    let Some(session) = session::lookup(server.store.as_ref(), cookies.session, now).await? else {
        return Ok(Err(not_signed_in()));
    };
    let field = form.optional("csrf").ok().flatten();
    let same = match (cookies.csrf, field) {
        (Some(cookie), Some(field)) if !cookie.is_empty() => {
            aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), field.as_bytes())
                .is_ok()
        }
        _ => false,
    };
    if !same {
        tracing::warn!("account form rejected: CSRF value missing or not bound to this browser");
        return Ok(Err(form_expired()));
    }
    Ok(Ok(session))
}

/// Starts registering a passkey: the creation options (WebAuthn §5.4) for
/// the signed-in user, asking for a discoverable credential with user
/// verification, and excluding the credentials the user has.
pub async fn begin_registration(
    server: &AuthorizationServer,
    cookies: Cookies<'_>,
    form: &Form,
    now: i64,
) -> Result<Result<Challenge, PageError>, OAuthError> {
    let Some(relying_party) = server.passkeys.as_ref() else {
        return Ok(Err(unavailable()));
    };
    let session = match checked(server, cookies, form, now).await? {
        Ok(session) => session,
        Err(page) => return Ok(Err(page)),
    };
    let store = server.store.as_ref();
    let Some(user) = store.get_user(&session.user_id).await? else {
        return Ok(Err(not_signed_in()));
    };
    let existing = store.list_passkeys(&user.user_id).await?;
    // One user handle per user: the one of their passkeys, or a fresh one.
    let user_handle = existing
        .first()
        .and_then(|record| Uuid::parse_str(&record.user_handle).ok())
        .unwrap_or_else(Uuid::new_v4);
    let exclude: Vec<CredentialID> = existing
        .iter()
        .map(|record| CredentialID::from(record.credential_id.clone()))
        .collect();
    let display = user.name.as_deref().unwrap_or(&user.username);
    let (options, state) = relying_party
        .webauthn()
        .start_passkey_registration(user_handle, &user.username, display, Some(exclude))
        .map_err(OAuthError::server)?;
    let ceremony = Ceremony::Register {
        state,
        csrf_hash: hash(cookies.csrf.unwrap_or_default()),
        user_id: user.user_id,
        user_handle: user_handle.to_string(),
    };
    let handle = begin(store, &ceremony, now).await?;
    let mut options = serde_json::to_value(options).map_err(OAuthError::server)?;
    require_resident_key(&mut options);
    Ok(Ok(Challenge {
        ceremony: handle,
        options,
    }))
}

/// webauthn-rs's passkey registration discourages a resident key (so that
/// security keys with little storage are not filled up); sign-in without a
/// username needs one, so the browser is asked for a discoverable credential
/// (WebAuthn §5.4.6 `residentKey: "required"`). The server's checks of the
/// answer do not depend on it.
fn require_resident_key(options: &mut Value) {
    if let Some(selection) = options
        .get_mut("publicKey")
        .and_then(|key| key.get_mut("authenticatorSelection"))
        .and_then(Value::as_object_mut)
    {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
}

/// Finishes a registration: the browser's answer (`credential`, JSON) to the
/// ceremony `ceremony`, named `name`.
pub async fn finish_registration(
    server: &AuthorizationServer,
    cookies: Cookies<'_>,
    form: &Form,
    context: &RequestContext,
) -> Result<Result<(), PageError>, OAuthError> {
    let Some(relying_party) = server.passkeys.as_ref() else {
        return Ok(Err(unavailable()));
    };
    let session = match checked(server, cookies, form, context.now).await? {
        Ok(session) => session,
        Err(page) => return Ok(Err(page)),
    };
    let field = |name| form.optional(name).ok().flatten().unwrap_or_default();
    let name = field("name").trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Ok(Err(PageError::new(
            400,
            "Invalid name",
            format!("Name the passkey (at most {MAX_NAME} characters)."),
        )));
    }
    let store = server.store.as_ref();
    let Some(Ceremony::Register {
        state,
        csrf_hash,
        user_id,
        user_handle,
    }) = take(store, field("ceremony"), context.now).await?
    else {
        return Ok(Err(failed(
            "The passkey request expired or was used already.",
        )));
    };
    if user_id != session.user_id || !same_browser(&csrf_hash, cookies.csrf) {
        return Ok(Err(failed(
            "The passkey request was not made by this browser.",
        )));
    }
    let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(field("credential"))
    else {
        return Ok(Err(failed("The browser's answer could not be read.")));
    };
    let passkey: Passkey = match relying_party
        .webauthn()
        .finish_passkey_registration(&answer, &state)
    {
        Ok(passkey) => passkey,
        Err(error) => {
            tracing::info!(%error, "passkey registration refused");
            return Ok(Err(failed("The passkey could not be verified.")));
        }
    };
    let record = new_record(&passkey, user_id, user_handle, name, context.now)?;
    match store.insert_passkey(&record).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Ok(Err(failed("This passkey is registered already.")));
        }
        Err(error) => return Err(error.into()),
    }
    server.audit(
        AuditEvent::new(AuditKind::PasskeyAdded, context.now)
            .user(&record.user_id)
            .address(context.address)
            .request(&context.id)
            .detail("name", record.name.as_str()),
    );
    Ok(Ok(()))
}

/// The record of a passkey just registered.
fn new_record(
    passkey: &Passkey,
    user_id: String,
    user_handle: String,
    name: String,
    now: i64,
) -> Result<PasskeyRecord, OAuthError> {
    let (serialised, sign_count, backup_eligible, backed_up) = credential_state(passkey)?;
    Ok(PasskeyRecord {
        credential_id: passkey.cred_id().to_vec(),
        user_id,
        user_handle,
        name,
        passkey: serialised,
        sign_count,
        backup_eligible,
        backed_up,
        created_at: now,
        last_used_at: None,
    })
}

fn failed(message: &str) -> PageError {
    PageError::new(400, "Passkey not added", message)
}

/// Removes one of the signed-in user's passkeys (`passkey`: its id as listed).
pub async fn remove(
    server: &AuthorizationServer,
    cookies: Cookies<'_>,
    form: &Form,
    context: &RequestContext,
) -> Result<Result<(), PageError>, OAuthError> {
    let session = match checked(server, cookies, form, context.now).await? {
        Ok(session) => session,
        Err(page) => return Ok(Err(page)),
    };
    let id = form.optional("passkey").ok().flatten().unwrap_or_default();
    let removed = match valet_jose::b64url_decode(id) {
        Ok(credential_id) => {
            server
                .store
                .delete_passkey(&session.user_id, &credential_id)
                .await?
        }
        Err(_) => false,
    };
    if !removed {
        return Ok(Err(PageError::new(
            404,
            "No such passkey",
            "That passkey is not one of yours, or it was removed already.",
        )));
    }
    server.audit(
        AuditEvent::new(AuditKind::PasskeyRemoved, context.now)
            .user(&session.user_id)
            .address(context.address)
            .request(&context.id),
    );
    Ok(Ok(()))
}
