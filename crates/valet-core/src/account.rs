//! The account page (`/account`): what a signed-in user sees of their own
//! account and the changes they may make to it. Signing in to it is not here:
//! it runs the sign-in steps (see [`crate::authn::account`]).
//!
//! Every change is a form posted with the page's CSRF value, which is derived
//! from the session cookie (a secret the page's origin alone sees), so a form
//! from another site or another browser's value is refused. A change that
//! needs proof (the password change) asks for the current password, checked
//! under the login throttle as at sign-in.

use valet_jose::{b64url, constant_time_eq, sha256};
use valet_protocol::Form;

use crate::AuthorizationServer;
use crate::admin::users::check_email;
use crate::audit::{AuditEvent, AuditKind};
use crate::authn::account::ACCOUNT_CLIENT_ID;
use crate::authn::issuer_label;
use crate::authn::verify::{self, password_check};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::mfa::{self, Enrolment};
use crate::session::{self, NewSession};
use crate::store::{Session, User};
use crate::users::check_password_rules;

/// The longest display name kept.
const MAX_NAME_LEN: usize = 200;

/// What the page shows.
#[derive(Debug, Clone)]
pub struct AccountPage {
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// A confirmed TOTP credential.
    pub totp: bool,
    pub recovery_codes_left: u64,
    /// How many passkeys the user registered.
    pub passkeys: u64,
    /// Whether the server sends mail (the email change form needs it).
    pub mail: bool,
    /// This browser's session: when it started and how (RFC 8176 `amr`).
    pub signed_in_at: i64,
    pub amr: Vec<String>,
    /// Every live session of the user, this browser's among them.
    pub sessions: Vec<SessionEntry>,
    /// The clients the user consented to.
    pub consents: Vec<ConsentEntry>,
    /// The value every form on the page must carry.
    pub csrf: String,
}

/// A session as the page lists it.
#[derive(Debug, Clone)]
pub struct SessionEntry {
    /// The public session id (the form's value to sign it out).
    pub sid: String,
    /// When the user signed in, as `YYYY-MM-DD HH:MM UTC`.
    pub signed_in: String,
    pub amr: Vec<String>,
    /// This browser's own session.
    pub current: bool,
}

/// A client the user allowed, as the page lists it.
#[derive(Debug, Clone)]
pub struct ConsentEntry {
    pub client_id: String,
    /// Its registered name (the id when it is no longer registered).
    pub client_name: String,
    pub scopes: Vec<String>,
}

/// The page's CSRF value for the session whose cookie is `cookie`.
pub fn form_token(cookie: &str) -> String {
    let mut input = b"valet account form v1\0".to_vec();
    input.extend_from_slice(cookie.as_bytes());
    b64url(sha256(&input))
}

/// Whether a form's CSRF value is the one for this browser's session.
pub fn form_token_matches(cookie: &str, form: Option<&str>) -> bool {
    form.is_some_and(|value| constant_time_eq(form_token(cookie).as_bytes(), value.as_bytes()))
}

/// The page for `session`'s user; `None` if the user is gone.
pub async fn page(
    server: &AuthorizationServer,
    session: &Session,
    cookie: &str,
    now: i64,
) -> Result<Option<AccountPage>, OAuthError> {
    let Some(user) = server.store.get_user(&session.user_id).await? else {
        return Ok(None);
    };
    let store = server.store.as_ref();
    let enrolled = mfa::enrolled(store, &user.user_id).await?;
    let sessions = store
        .list_sessions_of_user(&user.user_id, now)
        .await?
        .into_iter()
        .map(|other| SessionEntry {
            current: other.sid == session.sid,
            signed_in: utc(other.auth_time),
            sid: other.sid,
            amr: other.amr,
        })
        .collect();
    let mut consents = Vec::new();
    for consent in store.list_consents(&user.user_id).await? {
        let client_name = store
            .get_client(&consent.client_id)
            .await?
            .map_or_else(|| consent.client_id.clone(), |client| client.name);
        consents.push(ConsentEntry {
            client_id: consent.client_id,
            client_name,
            scopes: consent.scopes,
        });
    }
    Ok(Some(AccountPage {
        username: user.username,
        email: user.email,
        email_verified: user.email_verified,
        name: user.name,
        totp: enrolled.totp,
        recovery_codes_left: enrolled.recovery_codes,
        passkeys: u64::try_from(store.list_passkeys(&user.user_id).await?.len())
            .unwrap_or(u64::MAX),
        mail: server.settings.mail.is_some(),
        signed_in_at: session.auth_time,
        amr: session.amr.clone(),
        sessions,
        consents,
        csrf: form_token(cookie),
    }))
}

/// What came of a change (not `Debug`: it may hold a cookie or codes).
pub enum Changed {
    /// Done; the words to show.
    Done(&'static str),
    /// Done, and the browser's session was replaced (the others ended): its
    /// new cookie must be set.
    NewSession(NewSession, &'static str),
    /// New recovery codes, to show once.
    RecoveryCodes(Vec<String>),
    /// A TOTP enrolment waiting for a code from the app (with why, when a
    /// code was wrong: the status and words).
    Enrolling(Enrolment, Option<(u16, String)>),
    /// Refused, nothing changed: the status and why.
    Refused(u16, String),
}

/// Applies the form's `action` for `session`'s user. The CSRF value has been
/// checked by the caller.
pub async fn change(
    server: &AuthorizationServer,
    session: &Session,
    form: &Form,
    context: &RequestContext,
) -> Result<Changed, OAuthError> {
    let Some(user) = server.store.get_user(&session.user_id).await? else {
        return Ok(Changed::Refused(
            400,
            "The account no longer exists.".into(),
        ));
    };
    let field = |name| form.optional(name).ok().flatten().unwrap_or_default();
    match field("action") {
        "profile" => update_name(server, user, field("name"), context).await,
        "password" => change_password(server, &user, session, form, context).await,
        "email" => change_email(server, &user, form, context).await,
        "regenerate_recovery_codes" => {
            let store = server.store.as_ref();
            match mfa::regenerate_recovery_codes(store, &user.user_id, context.now).await? {
                Some(codes) => {
                    audit(
                        server,
                        AuditKind::MfaEnrolled,
                        &user,
                        context,
                        "recovery_codes",
                    );
                    Ok(Changed::RecoveryCodes(codes))
                }
                None => Ok(Changed::Refused(
                    400,
                    "Set up an authenticator app first.".into(),
                )),
            }
        }
        "remove_totp" => remove_totp(server, &user, form, context).await,
        "begin_totp" => begin_totp(server, &user, context.now).await,
        "confirm_totp" => confirm_totp(server, &user, form, context).await,
        "sign_out_session" => sign_out_one(server, &user, session, field("sid"), context).await,
        "revoke_consent" => revoke_consent(server, &user, field("client_id"), context).await,
        "sign_out_others" => {
            let new = replace_session(server, session, context.now).await?;
            Ok(Changed::NewSession(
                new,
                "Every other session was signed out.",
            ))
        }
        _ => Ok(Changed::Refused(400, "Unknown action.".into())),
    }
}

async fn update_name(
    server: &AuthorizationServer,
    mut user: User,
    name: &str,
    context: &RequestContext,
) -> Result<Changed, OAuthError> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Ok(Changed::Refused(
            400,
            format!(
                "The name must be at most {MAX_NAME_LEN} characters, without control characters."
            ),
        ));
    }
    user.name = Some(name.to_owned()).filter(|n| !n.is_empty());
    user.updated_at = context.now;
    server.store.update_user(&user).await?;
    audit(server, AuditKind::UserUpdated, &user, context, "name");
    Ok(Changed::Done("Your name was saved."))
}

/// The current password is checked (throttled, as at sign-in), the new one
/// must follow the password rules; on success every session of the user ends
/// and this browser gets a new one.
async fn change_password(
    server: &AuthorizationServer,
    user: &User,
    session: &Session,
    form: &Form,
    context: &RequestContext,
) -> Result<Changed, OAuthError> {
    let field = |name| form.optional(name).ok().flatten().unwrap_or_default();
    let (current, new, again) = (
        field("current_password"),
        field("new_password"),
        field("new_password_again"),
    );
    if current.is_empty() || new.is_empty() {
        return Ok(Changed::Refused(
            400,
            "Enter your current and your new password.".into(),
        ));
    }
    if new != again {
        return Ok(Changed::Refused(
            400,
            "The new passwords do not match.".into(),
        ));
    }
    if let Err(weak) = check_password_rules(new) {
        return Ok(Changed::Refused(400, format!("New password: {weak}.")));
    }
    let checked =
        password_check(server, &user.username, current, ACCOUNT_CLIENT_ID, context).await?;
    if let Err(retry) = checked {
        let message = if retry.status == 401 {
            "Your current password is not right.".to_owned()
        } else {
            retry.error
        };
        return Ok(Changed::Refused(retry.status, message));
    }
    let hash = server.hasher.hash(new).await.map_err(OAuthError::server)?;
    server
        .store
        .set_user_password(&user.user_id, &hash, context.now)
        .await?;
    audit(
        server,
        AuditKind::UserPasswordSet,
        user,
        context,
        "password",
    );
    let new_session = replace_session(server, session, context.now).await?;
    Ok(Changed::NewSession(
        new_session,
        "Your password was changed; every other session was signed out.",
    ))
}

/// Starts an email change: the current password is checked (throttled, as at
/// sign-in), then a link goes to the new address; the address changes only
/// when it is opened (see [`crate::mail::verify`]).
async fn change_email(
    server: &AuthorizationServer,
    user: &User,
    form: &Form,
    context: &RequestContext,
) -> Result<Changed, OAuthError> {
    let field = |name| form.optional(name).ok().flatten().unwrap_or_default();
    let (current, new_email) = (field("current_password"), field("new_email").trim());
    if server.settings.mail.is_none() {
        return Ok(Changed::Refused(
            400,
            "This server sends no mail, so the address cannot be changed here.".into(),
        ));
    }
    if current.is_empty() || new_email.is_empty() {
        return Ok(Changed::Refused(
            400,
            "Enter the new address and your current password.".into(),
        ));
    }
    if check_email(new_email).is_err() {
        return Ok(Changed::Refused(
            400,
            "The new address is not a valid email address.".into(),
        ));
    }
    if user.email.as_deref() == Some(new_email) {
        return Ok(Changed::Refused(
            400,
            "That already is your address.".into(),
        ));
    }
    let checked =
        password_check(server, &user.username, current, ACCOUNT_CLIENT_ID, context).await?;
    if let Err(retry) = checked {
        let message = if retry.status == 401 {
            "Your current password is not right.".to_owned()
        } else {
            retry.error
        };
        return Ok(Changed::Refused(retry.status, message));
    }
    server
        .request_email_change(context, user, new_email)
        .await?;
    Ok(Changed::Done(
        "A link was sent to the new address: your email changes when you open it.",
    ))
}

/// Starts a TOTP enrolment (the same pending credential as the sign-in's
/// enrolment step): the page shows the QR code and recovery codes.
async fn begin_totp(
    server: &AuthorizationServer,
    user: &User,
    now: i64,
) -> Result<Changed, OAuthError> {
    let issuer = issuer_label(&server.settings.issuer);
    let store = server.store.as_ref();
    let started = mfa::begin_totp(
        store,
        &server.master,
        &user.user_id,
        &user.username,
        issuer,
        now,
    )
    .await?;
    Ok(match started {
        Some(enrolment) => Changed::Enrolling(enrolment, None),
        None => Changed::Refused(400, "An authenticator app is set up already.".into()),
    })
}

/// Confirms the pending enrolment with a code from the app, checked and
/// throttled as at sign-in; a wrong code shows the same enrolment again.
async fn confirm_totp(
    server: &AuthorizationServer,
    user: &User,
    form: &Form,
    context: &RequestContext,
) -> Result<Changed, OAuthError> {
    let user_id = &user.user_id;
    match verify::totp::confirm(server, form, user_id, ACCOUNT_CLIENT_ID, context).await? {
        Ok(()) => {
            audit(server, AuditKind::MfaEnrolled, user, context, "totp");
            Ok(Changed::Done("The authenticator app is set up."))
        }
        Err(retry) => {
            let issuer = issuer_label(&server.settings.issuer);
            let store = server.store.as_ref();
            let pending =
                mfa::pending_totp(store, &server.master, user_id, &user.username, issuer).await?;
            Ok(match pending {
                Some(enrolment) => Changed::Enrolling(enrolment, Some((retry.status, retry.error))),
                None => Changed::Refused(400, "Start the set-up again.".into()),
            })
        }
    }
}

/// Removes the authenticator app and the recovery codes, after the password
/// or a current code from the app (each checked and throttled as at sign-in)
/// proves the user is at the keyboard.
async fn remove_totp(
    server: &AuthorizationServer,
    user: &User,
    form: &Form,
    context: &RequestContext,
) -> Result<Changed, OAuthError> {
    let field = |name| form.optional(name).ok().flatten().unwrap_or_default();
    let password = field("current_password");
    let checked = if !password.is_empty() {
        password_check(server, &user.username, password, ACCOUNT_CLIENT_ID, context)
            .await?
            .map(|_| ())
    } else if !field("code").trim().is_empty() {
        let user_id = &user.user_id;
        verify::totp::verify(server, form, user_id, ACCOUNT_CLIENT_ID, context).await?
    } else {
        return Ok(Changed::Refused(
            400,
            "Enter your password or a code from the app.".into(),
        ));
    };
    if let Err(retry) = checked {
        let message = if retry.status == 401 {
            "That password or code is not right.".to_owned()
        } else {
            retry.error
        };
        return Ok(Changed::Refused(retry.status, message));
    }
    if !mfa::remove_all(server.store.as_ref(), &user.user_id).await? {
        return Ok(Changed::Refused(
            400,
            "No authenticator app is set up.".into(),
        ));
    }
    audit(server, AuditKind::MfaReset, user, context, "totp");
    Ok(Changed::Done(
        "The authenticator app and the recovery codes were removed.",
    ))
}

/// Ends every other session of the session's user (their grants revoked, as
/// at logout) and gives this browser a new cookie for its own, as
/// authenticated as before (same `sid`, `auth_time` and `amr`).
async fn replace_session(
    server: &AuthorizationServer,
    session: &Session,
    now: i64,
) -> Result<NewSession, OAuthError> {
    let store = server.store.as_ref();
    for other in store.list_sessions_of_user(&session.user_id, now).await? {
        if other.sid != session.sid {
            store.revoke_grants_of_session(&other.sid, now).await?;
        }
    }
    store.delete_sessions_of_user(&session.user_id).await?;
    session::renew(store, session).await
}

/// Signs out one of the user's other sessions (its grants revoked, as at
/// logout); this browser's own is signed out by logging out.
async fn sign_out_one(
    server: &AuthorizationServer,
    user: &User,
    session: &Session,
    sid: &str,
    context: &RequestContext,
) -> Result<Changed, OAuthError> {
    if sid == session.sid {
        return Ok(Changed::Refused(
            400,
            "To sign out this browser, log out.".into(),
        ));
    }
    let store = server.store.as_ref();
    if store
        .delete_session_of_user(&user.user_id, sid)
        .await?
        .is_none()
    {
        return Ok(Changed::Refused(404, "No such session.".into()));
    }
    let grants = store.revoke_grants_of_session(sid, context.now).await?;
    server.audit(
        AuditEvent::new(AuditKind::Logout, context.now)
            .user(&user.user_id)
            .client(ACCOUNT_CLIENT_ID)
            .address(context.address)
            .request(&context.id)
            .detail("sid", sid)
            .detail("revoked_grants", grants)
            .detail("by", "account page"),
    );
    Ok(Changed::Done("The session was signed out."))
}

/// Withdraws the consent to a client and revokes the user's grants to it
/// (refresh tokens, access tokens and their status list entries).
async fn revoke_consent(
    server: &AuthorizationServer,
    user: &User,
    client_id: &str,
    context: &RequestContext,
) -> Result<Changed, OAuthError> {
    let store = server.store.as_ref();
    let consented = store.list_consents(&user.user_id).await?;
    if client_id.is_empty() || !consented.iter().any(|c| c.client_id == client_id) {
        return Ok(Changed::Refused(404, "No such application.".into()));
    }
    let grants = store
        .revoke_consent(&user.user_id, client_id, context.now)
        .await?;
    server.audit(
        AuditEvent::new(AuditKind::TokenRevoked, context.now)
            .user(&user.user_id)
            .client(client_id)
            .address(context.address)
            .request(&context.id)
            .detail("consent", "withdrawn")
            .detail("revoked_grants", grants)
            .detail("by", "account page"),
    );
    Ok(Changed::Done("The application's access was revoked."))
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (proleptic Gregorian calendar).
pub fn utc(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days to a civil date (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

fn audit(
    server: &AuthorizationServer,
    kind: AuditKind,
    user: &User,
    context: &RequestContext,
    what: &'static str,
) {
    server.audit(
        AuditEvent::new(kind, context.now)
            .user(&user.user_id)
            .client(ACCOUNT_CLIENT_ID)
            .address(context.address)
            .request(&context.id)
            .detail("changed", what)
            .detail("by", "account page"),
    );
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn unix_seconds_as_a_utc_date() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_800_000_000), "2027-01-15 08:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
