//! Passwordless sign-in with a passkey (a discoverable WebAuthn credential):
//! the options a login page's script asks for, then the browser's assertion
//! (WebAuthn §7.2). The user is the one the credential was registered to,
//! found by its credential id; the user handle the authenticator returns must
//! be that credential's. webauthn-rs checks the challenge, the origin, the RP
//! id hash, user presence and verification, the signature and the counter.

use valet_protocol::Form;
use webauthn_rs::prelude::{AuthenticationResult, Passkey, PublicKeyCredential};

use super::{Method, Retry};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::passkeys::{self, Ceremony, Challenge, credential_state};
use crate::store::PasskeyRecord;

/// The words of every refused assertion: which check failed is for the log.
const FAILED: &str = "That passkey could not be used to sign in. Try again, or use your password.";
/// The same, on the second-factor page.
const FAILED_SECOND: &str = "That passkey could not be used. Try again, or use another way.";

/// Starts a sign-in ceremony for the login form whose interaction value is
/// `binding`, in the browser holding `csrf`: `None` when this server has no
/// relying party (its issuer's host is no domain name).
pub(crate) async fn begin(
    server: &AuthorizationServer,
    binding: &str,
    csrf: &str,
    now: i64,
) -> Result<Option<Challenge>, OAuthError> {
    let Some(relying_party) = server.passkeys.as_ref() else {
        return Ok(None);
    };
    let (options, state) = relying_party
        .webauthn()
        .start_discoverable_authentication()
        .map_err(OAuthError::server)?;
    let ceremony = Ceremony::SignIn {
        state,
        csrf_hash: passkeys::hash(csrf),
        binding: passkeys::hash(binding),
    };
    let handle = passkeys::begin(server.store.as_ref(), &ceremony, now).await?;
    let mut options = serde_json::to_value(options).map_err(OAuthError::server)?;
    // A button starts it: a modal request, not the autofill (conditional) kind.
    if let Some(object) = options.as_object_mut() {
        object.remove("mediation");
    }
    Ok(Some(Challenge {
        ceremony: handle,
        options,
    }))
}

/// Who signed in, and how.
pub(crate) struct Verified {
    pub user_id: String,
    pub method: Method,
}

/// Checks the assertion in `form` (`ceremony`, `credential`) for the login
/// form `binding` in the browser holding `csrf_cookie`.
pub(crate) async fn verify(
    server: &AuthorizationServer,
    form: &Form,
    binding: &str,
    csrf_cookie: Option<&str>,
    client_id: &str,
    context: &RequestContext,
) -> Result<Result<Verified, Retry>, OAuthError> {
    let failure = |user_id: Option<&str>, why: &'static str| {
        tracing::info!(reason = why, "passkey sign-in refused");
        let mut event = AuditEvent::new(AuditKind::LoginFailed, context.now)
            .client(client_id)
            .address(context.address)
            .request(&context.id)
            .detail("method", "passkey")
            .detail("reason", why);
        event.user_id = user_id.map(str::to_owned);
        server.audit(event);
        Retry::new(401, FAILED)
    };
    let Some(relying_party) = server.passkeys.as_ref() else {
        return Ok(Err(failure(None, "passkeys unavailable")));
    };
    let field = |name| form.optional(name).ok().flatten().unwrap_or_default();
    let store = server.store.as_ref();
    let Some(ceremony) = passkeys::take(store, field("ceremony"), context.now).await? else {
        return Ok(Err(failure(None, "ceremony unknown, expired or used")));
    };
    let Ceremony::SignIn {
        state,
        csrf_hash,
        binding: bound,
    } = ceremony
    else {
        return Ok(Err(failure(None, "ceremony of another purpose")));
    };
    if bound != passkeys::hash(binding) || !passkeys::same_browser(&csrf_hash, csrf_cookie) {
        return Ok(Err(failure(None, "ceremony of another browser or request")));
    }
    let Ok(assertion) = serde_json::from_str::<PublicKeyCredential>(field("credential")) else {
        return Ok(Err(failure(None, "assertion unreadable")));
    };
    let webauthn = relying_party.webauthn();
    let Ok((user_handle, credential_id)) =
        webauthn.identify_discoverable_authentication(&assertion)
    else {
        return Ok(Err(failure(None, "no user handle")));
    };
    let Some(record) = store.get_passkey(credential_id).await? else {
        return Ok(Err(failure(None, "credential unknown")));
    };
    let user_id = record.user_id.clone();
    if record.user_handle != user_handle.to_string() {
        return Ok(Err(failure(Some(&user_id), "user handle of another user")));
    }
    let Ok(passkey) = serde_json::from_str::<Passkey>(&record.passkey) else {
        return Ok(Err(failure(Some(&user_id), "stored credential unreadable")));
    };
    let result = match webauthn.finish_discoverable_authentication_v2(&assertion, state, &passkey) {
        Ok(result) => result,
        Err(error) => {
            tracing::info!(%error, "passkey assertion refused");
            return Ok(Err(failure(Some(&user_id), "assertion refused")));
        }
    };
    match store.get_user(&user_id).await? {
        Some(user) if !user.disabled => {}
        _ => return Ok(Err(failure(Some(&user_id), "user disabled"))),
    }
    let synced = record_use(store, record, passkey, &result, context.now).await?;
    Ok(Ok(Verified {
        user_id,
        method: Method::Passkey { synced },
    }))
}

/// Whether `user_id` has a passkey this server can ask for.
pub(crate) async fn enrolled(
    server: &AuthorizationServer,
    user_id: &str,
) -> Result<bool, OAuthError> {
    if server.passkeys.is_none() {
        return Ok(false);
    }
    Ok(!server.store.list_passkeys(user_id).await?.is_empty())
}

/// Starts a second-factor ceremony for `user_id`'s passkeys, for the form
/// whose interaction value is `binding`, in the browser holding `csrf`:
/// `None` when the user has none (or the server no relying party).
pub(crate) async fn begin_second_factor(
    server: &AuthorizationServer,
    binding: &str,
    csrf: &str,
    user_id: &str,
    now: i64,
) -> Result<Option<Challenge>, OAuthError> {
    let Some(relying_party) = server.passkeys.as_ref() else {
        return Ok(None);
    };
    let store = server.store.as_ref();
    let passkeys: Vec<Passkey> = store
        .list_passkeys(user_id)
        .await?
        .iter()
        .filter_map(|record| serde_json::from_str(&record.passkey).ok())
        .collect();
    if passkeys.is_empty() {
        return Ok(None);
    }
    let (options, state) = relying_party
        .webauthn()
        .start_passkey_authentication(&passkeys)
        .map_err(OAuthError::server)?;
    let ceremony = Ceremony::SecondFactor {
        state,
        csrf_hash: passkeys::hash(csrf),
        binding: passkeys::hash(binding),
        user_id: user_id.to_owned(),
    };
    let handle = passkeys::begin(store, &ceremony, now).await?;
    let options = serde_json::to_value(options).map_err(OAuthError::server)?;
    Ok(Some(Challenge {
        ceremony: handle,
        options,
    }))
}

/// Checks the second-factor form's assertion (`ceremony`, `credential`):
/// one of `user_id`'s own passkeys, for this form (its `interaction`, and
/// its `csrf`, which the pipeline checked is the browser's cookie).
pub(crate) async fn verify_second_factor(
    server: &AuthorizationServer,
    form: &Form,
    user_id: &str,
    client_id: &str,
    context: &RequestContext,
) -> Result<Result<Method, Retry>, OAuthError> {
    let failure = |why: &'static str| {
        tracing::info!(reason = why, "passkey second factor refused");
        server.audit(
            AuditEvent::new(AuditKind::SecondFactorFailed, context.now)
                .user(user_id)
                .client(client_id)
                .address(context.address)
                .request(&context.id)
                .detail("method", "passkey")
                .detail("reason", why),
        );
        Retry::new(401, FAILED_SECOND)
    };
    let Some(relying_party) = server.passkeys.as_ref() else {
        return Ok(Err(failure("passkeys unavailable")));
    };
    let field = |name| form.optional(name).ok().flatten().unwrap_or_default();
    let store = server.store.as_ref();
    let Some(ceremony) = passkeys::take(store, field("ceremony"), context.now).await? else {
        return Ok(Err(failure("ceremony unknown, expired or used")));
    };
    let Ceremony::SecondFactor {
        state,
        csrf_hash,
        binding,
        user_id: ceremony_user,
    } = ceremony
    else {
        return Ok(Err(failure("ceremony of another purpose")));
    };
    let same_form = binding == passkeys::hash(field("interaction"))
        && passkeys::same_browser(&csrf_hash, Some(field("csrf")));
    if !same_form || ceremony_user != user_id {
        return Ok(Err(failure("ceremony of another browser, request or user")));
    }
    let Ok(assertion) = serde_json::from_str::<PublicKeyCredential>(field("credential")) else {
        return Ok(Err(failure("assertion unreadable")));
    };
    let Some(record) = store.get_passkey(assertion.get_credential_id()).await? else {
        return Ok(Err(failure("credential unknown")));
    };
    if record.user_id != user_id {
        return Ok(Err(failure("credential of another user")));
    }
    let Ok(passkey) = serde_json::from_str::<Passkey>(&record.passkey) else {
        return Ok(Err(failure("stored credential unreadable")));
    };
    let result = match relying_party
        .webauthn()
        .finish_passkey_authentication(&assertion, &state)
    {
        Ok(result) => result,
        Err(error) => {
            tracing::info!(%error, "passkey assertion refused");
            return Ok(Err(failure("assertion refused")));
        }
    };
    let synced = record_use(store, record, passkey, &result, context.now).await?;
    Ok(Ok(Method::Passkey { synced }))
}

/// Records a use of `record` (its credential updated by `result`); returns
/// whether it is synced (backup eligible).
async fn record_use(
    store: &dyn crate::store::Store,
    record: PasskeyRecord,
    mut passkey: Passkey,
    result: &AuthenticationResult,
    now: i64,
) -> Result<bool, OAuthError> {
    passkey.update_credential(result);
    let (serialised, sign_count, backup_eligible, backed_up) = credential_state(&passkey)?;
    let used = PasskeyRecord {
        passkey: serialised,
        sign_count,
        backup_eligible,
        backed_up,
        last_used_at: Some(now),
        ..record
    };
    store.record_passkey_use(&used).await?;
    Ok(backup_eligible)
}
