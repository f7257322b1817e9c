//! Single-use mail tokens: the secret in a password reset or email
//! verification link.
//!
//! The link carries a random 256-bit handle; the store keeps only its SHA-256,
//! as a [`SingleUse`] record of the purpose's own kind
//! ([`SingleUseKind::PasswordReset`], [`SingleUseKind::EmailVerification`]), so
//! a handle made for one purpose is unknown to the other. The record names the
//! user and is bound to the user's credentials as they were when the link was
//! made: a fingerprint of the password hash (and, for a verification, the
//! email). Redeeming consumes the record atomically (a replay finds it
//! consumed) and then checks the binding, so a password change, by any means,
//! voids every link made before it. A tampered handle hashes to a key nobody
//! stored.

use serde::{Deserialize, Serialize};
use valet_jose::{b64url, random_bytes, sha256};

use super::Message;
use crate::AuthorizationServer;
use crate::endpoint::metadata::paths;
use crate::error::OAuthError;
use crate::store::{SingleUse, SingleUseKind, User};

/// What the record of a token says.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    user_id: String,
    /// [`binding`] of the user when the link was made.
    binding: String,
    /// For a verification: the address the link was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// For an email change: `email` is the new address, and `binding` also
    /// covers the address the account had when the link was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    change: bool,
}

/// Why a link does not work. One answer for all, on purpose: the page says the
/// link is invalid or expired, and asks for a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Unknown, expired, already used, or voided by a change of the account.
    Invalid,
}

/// A fingerprint of what a link must not outlive: the password hash (a new
/// password, set by any means, changes it) and whether the user is disabled.
fn binding(user: &User) -> String {
    let mut input = b"valet mail token binding v1\0".to_vec();
    input.extend_from_slice(user.password_hash.as_deref().unwrap_or_default().as_bytes());
    b64url(sha256(&input))
}

/// The binding of an email change link: the password and the current address
/// (so any later change of the address, this link's own included, voids it).
fn change_binding(user: &User) -> String {
    let mut input = b"valet mail token email change v1\0".to_vec();
    input.extend_from_slice(binding(user).as_bytes());
    input.push(0);
    input.extend_from_slice(user.email.as_deref().unwrap_or_default().as_bytes());
    b64url(sha256(&input))
}

/// The store key of a handle.
fn key(handle: &str) -> Vec<u8> {
    sha256(handle.as_bytes()).to_vec()
}

/// A new handle and its record for `user`, live for `ttl` seconds.
fn issue(
    kind: SingleUseKind,
    user: &User,
    email: Option<&str>,
    ttl: i64,
    now: i64,
) -> Result<(String, SingleUse), OAuthError> {
    let handle = b64url(random_bytes::<32>().map_err(OAuthError::server)?);
    let payload = Payload {
        user_id: user.user_id.clone(),
        binding: binding(user),
        email: email.map(str::to_owned),
        change: false,
    };
    let record = SingleUse {
        kind,
        key: key(&handle),
        payload: serde_json::to_string(&payload).map_err(OAuthError::server)?,
        expires_at: now.saturating_add(ttl),
        consumed: false,
    };
    Ok((handle, record))
}

/// Whether `handle` is a live token of `kind` (the link's page, before the
/// form is sent: reading consumes nothing, as mail scanners open links too).
pub(crate) async fn is_live(
    server: &AuthorizationServer,
    kind: SingleUseKind,
    handle: &str,
    now: i64,
) -> Result<bool, OAuthError> {
    if !plausible(handle) {
        return Ok(false);
    }
    Ok(server
        .store
        .get_single_use(kind, &key(handle), now)
        .await?
        .is_some())
}

/// Consumes the token (whatever comes next, it is used) and returns its user,
/// if the user still is as the link was made for.
pub(crate) async fn redeem(
    server: &AuthorizationServer,
    kind: SingleUseKind,
    handle: &str,
    now: i64,
) -> Result<Result<User, LinkRefusal>, OAuthError> {
    Ok(redeem_verification(server, kind, handle, now)
        .await?
        .map(|(user, _)| user))
}

/// As [`redeem`], and for an email change link also the new address.
pub(crate) async fn redeem_verification(
    server: &AuthorizationServer,
    kind: SingleUseKind,
    handle: &str,
    now: i64,
) -> Result<Result<(User, Option<String>), LinkRefusal>, OAuthError> {
    if !plausible(handle) {
        return Ok(Err(LinkRefusal::Invalid));
    }
    let Some(record) = server
        .store
        .take_single_use(kind, &key(handle), now)
        .await?
    else {
        return Ok(Err(LinkRefusal::Invalid));
    };
    let payload: Payload = serde_json::from_str(&record.payload).map_err(OAuthError::server)?;
    let Some(user) = server.store.get_user(&payload.user_id).await? else {
        return Ok(Err(LinkRefusal::Invalid));
    };
    let (same_email, expected) = if payload.change {
        (payload.email.is_some(), change_binding(&user))
    } else {
        (
            payload.email.is_none() || payload.email == user.email,
            binding(&user),
        )
    };
    if user.disabled
        || !same_email
        || !valet_jose::constant_time_eq(expected.as_bytes(), payload.binding.as_bytes())
    {
        return Ok(Err(LinkRefusal::Invalid));
    }
    let new_email = payload.email.filter(|_| payload.change);
    Ok(Ok((user, new_email)))
}

/// A handle is 43 base64url characters; anything else is not looked up.
fn plausible(handle: &str) -> bool {
    handle.len() == 43
        && handle
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The reset mail for the account `login` names, with its token; `None` when
/// there is no such account, it is disabled, or it has no email.
pub(crate) async fn reset_message(
    server: &AuthorizationServer,
    login: &str,
    locale: &str,
    now: i64,
) -> Result<Option<(Message, SingleUse)>, OAuthError> {
    let user = match server.store.find_user_by_login(login).await? {
        Some(user) if !user.disabled => user,
        _ => return Ok(None),
    };
    let Some(email) = user.email.clone() else {
        return Ok(None);
    };
    let ttl = server.settings.password_reset_ttl;
    let (handle, record) = issue(SingleUseKind::PasswordReset, &user, None, ttl, now)?;
    let link = format!(
        "{}{}?token={handle}",
        server.settings.issuer,
        paths::RESET_CONFIRM
    );
    let minutes = (ttl / 60).to_string();
    let message = server.write_mail(
        locale,
        "mail.reset",
        email,
        &[
            ("name", user.name.as_deref().unwrap_or(&user.username)),
            ("username", &user.username),
            ("issuer", &server.settings.issuer),
            ("minutes", &minutes),
            ("link", &link),
        ],
    );
    Ok(Some((message, record)))
}

/// How long an invitation works: a week.
pub const INVITE_TTL: i64 = 7 * 24 * 3600;

/// What an invitation's record says.
#[derive(Debug, Serialize, Deserialize)]
struct InvitePayload {
    email: String,
}

/// The invitation mail for `email`, with its token.
pub(crate) fn invite_message(
    server: &AuthorizationServer,
    email: &str,
    locale: &str,
    now: i64,
) -> Result<Option<(Message, SingleUse)>, OAuthError> {
    let handle = b64url(random_bytes::<32>().map_err(OAuthError::server)?);
    let payload = InvitePayload {
        email: email.to_owned(),
    };
    let record = SingleUse {
        kind: SingleUseKind::Invite,
        key: key(&handle),
        payload: serde_json::to_string(&payload).map_err(OAuthError::server)?,
        expires_at: now.saturating_add(INVITE_TTL),
        consumed: false,
    };
    let link = format!(
        "{}{}?invite={handle}",
        server.settings.issuer,
        paths::REGISTER
    );
    let days = (INVITE_TTL / (24 * 3600)).to_string();
    let message = server.write_mail(
        locale,
        "mail.invite",
        email.to_owned(),
        &[
            ("issuer", &server.settings.issuer),
            ("days", &days),
            ("link", &link),
        ],
    );
    Ok(Some((message, record)))
}

/// The address an invitation is for, if `handle` is a live one (consumes
/// nothing).
pub(crate) async fn invite_email(
    server: &AuthorizationServer,
    handle: &str,
    now: i64,
) -> Result<Option<String>, OAuthError> {
    if !plausible(handle) {
        return Ok(None);
    }
    let Some(record) = server
        .store
        .get_single_use(SingleUseKind::Invite, &key(handle), now)
        .await?
    else {
        return Ok(None);
    };
    let payload: InvitePayload =
        serde_json::from_str(&record.payload).map_err(OAuthError::server)?;
    Ok(Some(payload.email))
}

/// Consumes an invitation; whether this call did (a second use fails).
pub(crate) async fn take_invite(
    server: &AuthorizationServer,
    handle: &str,
    now: i64,
) -> Result<bool, OAuthError> {
    if !plausible(handle) {
        return Ok(false);
    }
    Ok(server
        .store
        .take_single_use(SingleUseKind::Invite, &key(handle), now)
        .await?
        .is_some())
}

/// The verification mail for the user's current email, with its token;
/// `None` when the user is gone, disabled, has no email or it is verified.
pub(crate) async fn verification_message(
    server: &AuthorizationServer,
    user_id: &str,
    locale: &str,
    now: i64,
) -> Result<Option<(Message, SingleUse)>, OAuthError> {
    let user = match server.store.get_user(user_id).await? {
        Some(user) if !user.disabled && !user.email_verified => user,
        _ => return Ok(None),
    };
    let Some(email) = user.email.clone() else {
        return Ok(None);
    };
    let ttl = server.settings.email_verification_ttl;
    let (handle, record) = issue(
        SingleUseKind::EmailVerification,
        &user,
        Some(&email),
        ttl,
        now,
    )?;
    let link = format!(
        "{}{}?token={handle}",
        server.settings.issuer,
        paths::VERIFY_EMAIL
    );
    let hours = (ttl / 3600).to_string();
    let message = server.write_mail(
        locale,
        "mail.verify",
        email.clone(),
        &[
            ("name", user.name.as_deref().unwrap_or(&user.username)),
            ("email", &email),
            ("username", &user.username),
            ("issuer", &server.settings.issuer),
            ("hours", &hours),
            ("link", &link),
        ],
    );
    Ok(Some((message, record)))
}

/// The mail to `new_email` with the link that makes it the user's address;
/// `None` when the user is gone or disabled, or the address already is theirs.
pub(crate) async fn change_message(
    server: &AuthorizationServer,
    user_id: &str,
    new_email: &str,
    locale: &str,
    now: i64,
) -> Result<Option<(Message, SingleUse)>, OAuthError> {
    let user = match server.store.get_user(user_id).await? {
        Some(user) if !user.disabled && user.email.as_deref() != Some(new_email) => user,
        _ => return Ok(None),
    };
    let ttl = server.settings.email_verification_ttl;
    let (handle, mut record) = issue(
        SingleUseKind::EmailVerification,
        &user,
        Some(new_email),
        ttl,
        now,
    )?;
    let payload = Payload {
        user_id: user.user_id.clone(),
        binding: change_binding(&user),
        email: Some(new_email.to_owned()),
        change: true,
    };
    record.payload = serde_json::to_string(&payload).map_err(OAuthError::server)?;
    let link = format!(
        "{}{}?token={handle}",
        server.settings.issuer,
        paths::VERIFY_EMAIL
    );
    let hours = (ttl / 3600).to_string();
    let message = server.write_mail(
        locale,
        "mail.change",
        new_email.to_owned(),
        &[
            ("name", user.name.as_deref().unwrap_or(&user.username)),
            ("new_email", new_email),
            ("username", &user.username),
            ("issuer", &server.settings.issuer),
            ("hours", &hours),
            ("link", &link),
        ],
    );
    Ok(Some((message, record)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn user(hash: Option<&str>) -> User {
        User {
            user_id: "u1".into(),
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            email_verified: false,
            name: None,
            given_name: None,
            family_name: None,
            password_hash: hash.map(str::to_owned),
            disabled: false,
            created_at: 0,
            updated_at: 0,
            admin: false,
        }
    }

    #[test]
    fn a_new_password_changes_the_binding() {
        let before = binding(&user(Some("$argon2id$a")));
        assert_eq!(before, binding(&user(Some("$argon2id$a"))));
        assert_ne!(before, binding(&user(Some("$argon2id$b"))));
        assert_ne!(before, binding(&user(None)));
    }

    #[test]
    fn an_email_change_binding_covers_the_current_address() {
        let alice = user(Some("h"));
        let moved = User {
            email: Some("alice@elsewhere.test".into()),
            ..user(Some("h"))
        };
        assert_ne!(change_binding(&alice), change_binding(&moved));
        assert_ne!(change_binding(&alice), binding(&alice));
        assert_ne!(change_binding(&alice), change_binding(&user(Some("h2"))));
    }

    #[test]
    fn handles_are_random_and_stored_hashed() {
        let alice = user(Some("h"));
        let (a, record) = issue(SingleUseKind::PasswordReset, &alice, None, 60, 100).unwrap();
        let (b, _) = issue(SingleUseKind::PasswordReset, &alice, None, 60, 100).unwrap();
        assert_ne!(a, b);
        assert!(plausible(&a));
        assert_eq!(record.key, key(&a));
        assert!(!record.payload.contains(&a));
        assert_eq!(record.expires_at, 160);
        assert!(!plausible("short"));
        assert!(!plausible(&format!("{}!", &a[..42])));
    }
}
