//! Self-registration (`/register`), when `registration = "open"`.
//!
//! ```text
//!  POST /register (username, email, password twice)
//!     ├─ closed ─▶ 404          ├─ bad form / CSRF ─▶ the form again, 400
//!     ├─ throttled (per address, per email) ─▶ 429
//!     ├─ fields invalid, password weak ─▶ the form again, 400, saying why
//!     ├─ username taken ─▶ the form again, 409 (a username is public anyway)
//!     ├─ email taken ─▶ hash (the same work) + mail "someone tried" to that address ─┐
//!     └─ new user (email unverified) + verification mail ─────────────────────────────┴▶ "check your mail"
//! ```
//!
//! Whether an address is registered is never told: a taken address gets the
//! same page as a fresh one, after the same work (one argon2 hash, one outbox
//! row), and its owner gets a mail saying someone tried.

use crate::AuthorizationServer;
use crate::admin::users::{check_email, check_username, email_taken, insert_user};
use crate::admin::{Admin, AdminError, NewUser};
use crate::audit::{AuditEvent, AuditKind};
use crate::config::Registration;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::mail::{Content, token};
use crate::throttle::Throttled;
use crate::users::{Password, PasswordError, WeakPassword, check_password_rules};

/// The form, as typed.
#[derive(Debug)]
pub struct RegistrationForm<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub confirmation: &'a str,
    /// The invitation's token (`registration = "invite"`).
    pub invite: &'a str,
}

/// Why nobody was registered; each says what to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterRefusal {
    /// Registration is closed.
    Disabled,
    /// The form is stale (CSRF), or a field is wrong: the words say which.
    BadForm(String),
    /// The username belongs to someone else.
    UsernameTaken,
    /// Registration needs an invitation, and this one is unknown, expired or
    /// used.
    InvalidInvite,
    Throttled {
        retry_after_seconds: i64,
    },
    /// The password hasher is overloaded.
    Busy {
        retry_after_seconds: i64,
    },
}

/// Passwords too common to allow whatever their length: the most frequent ones
/// of public breach corpora that pass the length rule. Offline, no lookup.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "12345678",
    "123456789",
    "1234567890",
    "12345678910",
    "87654321",
    "11111111",
    "00000000",
    "qwertyuiop",
    "qwerty123",
    "qwerty1234",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "zaq12wsx",
    "abcd1234",
    "abc12345",
    "abcdefgh",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "trustno1",
    "superman",
    "starwars",
    "whatever",
    "letmein1",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "qwertyui",
    "asdfghjkl",
    "zxcvbnm1",
    "computer",
    "michelle",
    "jennifer",
    "changeme",
    "changeit",
    "administrator",
    "admin123",
    "admin1234",
    "secret123",
    "monkey123",
    "dragon123",
    "master123",
    "login123",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "aa123456",
    "a1234567",
    "123123123",
    "11223344",
    "112233445566",
    "123qweasd",
    "qweasdzxc",
    "asdf1234",
    "password!",
    "welcome!",
    "letmein!",
];

impl Admin<'_> {
    /// Invites `email` to register (with `registration = "invite"`): queues
    /// the invitation, sealed with `master`'s outbox key, for a running
    /// server to make its link and send it. Audited as `user.invited`.
    pub async fn invite_user(
        &self,
        master: &valet_jose::MasterKey,
        email: &str,
    ) -> Result<(), AdminError> {
        let email = email.trim();
        check_email(email)?;
        if self.store().find_user_by_login(email).await?.is_some() {
            return Err(email_taken(email));
        }
        let now = self.now();
        crate::mail::queue_invite(self.store(), master, email, now)
            .await
            .map_err(|error| AdminError::Internal(error.to_string()))?;
        self.record(AuditEvent::new(AuditKind::UserInvited, now).detail("email", email))
            .await;
        Ok(())
    }
}

impl AuthorizationServer {
    /// The address a live invitation is for (the registration page shows it;
    /// opening the link consumes nothing).
    pub async fn invitation(&self, handle: &str, now: i64) -> Result<Option<String>, OAuthError> {
        token::invite_email(self, handle, now).await
    }

    /// Queues an invitation for `email` (what `valet user invite` does through
    /// the store, for callers that hold the server).
    pub async fn invite(&self, email: &str) -> Result<(), OAuthError> {
        self.queue_mail(
            &Content::Invite {
                email: email.trim().to_owned(),
            },
            None,
            self.clock.now(),
        )
        .await
    }
}

/// The strength rules of a self-chosen password beyond the length rules: not
/// the username or email (or a case variant of them), not a very common one.
pub fn check_new_password(password: &str, username: &str, email: &str) -> Result<(), &'static str> {
    check_password_rules(password).map_err(|weak| match weak {
        WeakPassword::TooShort => "The password must be at least 8 characters long.",
        WeakPassword::TooLong => "The password must be at most 1024 bytes long.",
        WeakPassword::Blank => "The password must not consist only of whitespace.",
    })?;
    let folded = password.to_lowercase();
    let local_part = email.split('@').next().unwrap_or_default().to_lowercase();
    if folded == username.to_lowercase()
        || folded == email.to_lowercase()
        || (local_part.len() >= 4 && folded.contains(&local_part))
        || (username.len() >= 4 && folded.contains(&username.to_lowercase()))
    {
        return Err("The password must not contain your username or email.");
    }
    if COMMON_PASSWORDS.contains(&folded.as_str()) {
        return Err("This password is one of the most common ones. Choose another.");
    }
    Ok(())
}

impl AuthorizationServer {
    /// Registers a new user from the form, or answers as if it had when the
    /// email is taken (see the module docs).
    pub async fn register(
        &self,
        context: &RequestContext,
        form: &RegistrationForm<'_>,
        csrf_ok: bool,
    ) -> Result<Result<(), RegisterRefusal>, OAuthError> {
        if self.settings.registration == Registration::Closed {
            return Ok(Err(RegisterRefusal::Disabled));
        }
        if !csrf_ok {
            return Ok(Err(RegisterRefusal::BadForm(
                "The form has expired. Please try again.".to_owned(),
            )));
        }
        let username = form.username.trim();
        let invited = match self.settings.registration {
            Registration::Invite => {
                match token::invite_email(self, form.invite, context.now).await? {
                    Some(email) => Some(email),
                    None => return Ok(Err(RegisterRefusal::InvalidInvite)),
                }
            }
            _ => None,
        };
        let email = invited.as_deref().unwrap_or(form.email).trim();
        if let Err(refusal) = check_fields(username, email, form) {
            return Ok(Err(refusal));
        }
        if let Err(Throttled {
            retry_after_seconds,
        }) = self
            .reset_throttle
            .admit(email, context.address, context.now)
        {
            return Ok(Err(RegisterRefusal::Throttled {
                retry_after_seconds,
            }));
        }
        let store = self.store.as_ref();
        if store.find_user_by_login(username).await?.is_some() {
            return Ok(Err(RegisterRefusal::UsernameTaken));
        }
        // An invitation is used once, whatever comes of it from here.
        if invited.is_some() && !token::take_invite(self, form.invite, context.now).await? {
            return Ok(Err(RegisterRefusal::InvalidInvite));
        }
        if store.find_user_by_login(email).await?.is_some() {
            return self.someone_tried(context, email, form.password).await;
        }
        let new = NewUser {
            username: username.to_owned(),
            email: Some(email.to_owned()),
            email_verified: false,
            password: Some(Password::new(form.password.to_owned())),
            ..NewUser::default()
        };
        let user = match insert_user(store, &self.hasher, new, context.now).await {
            Ok(user) => user,
            // Taken in between by a concurrent registration.
            Err(crate::admin::AdminError::Conflict(_)) => {
                return Ok(Err(RegisterRefusal::UsernameTaken));
            }
            Err(crate::admin::AdminError::Internal(reason)) if reason.contains("too many") => {
                return Ok(Err(RegisterRefusal::Busy {
                    retry_after_seconds: 1,
                }));
            }
            Err(error) => return Err(OAuthError::server(error)),
        };
        self.queue_mail(
            &Content::VerifyEmail {
                user_id: user.user_id.clone(),
            },
            context.locale,
            context.now,
        )
        .await?;
        self.audit(
            AuditEvent::new(AuditKind::UserCreated, context.now)
                .user(&user.user_id)
                .address(context.address)
                .request(&context.id)
                .detail("username", user.username.as_str())
                .detail("via", "registration"),
        );
        Ok(Ok(()))
    }

    /// The answer for a taken email: the same work and page as a registration,
    /// and a note to the address's owner.
    async fn someone_tried(
        &self,
        context: &RequestContext,
        email: &str,
        password: &str,
    ) -> Result<Result<(), RegisterRefusal>, OAuthError> {
        match self.hasher.hash(password).await {
            Ok(_) => {}
            Err(PasswordError::Overloaded {
                retry_after_seconds,
            }) => {
                return Ok(Err(RegisterRefusal::Busy {
                    retry_after_seconds,
                }));
            }
            Err(error) => return Err(OAuthError::server(error)),
        }
        let locale = self.mail_locale(context.locale.as_ref().map(crate::LanguageTag::as_str));
        let reset = format!(
            "{}{}",
            self.settings.issuer,
            crate::endpoint::metadata::paths::RESET
        );
        let message = self.write_mail(
            &locale,
            "mail.signup_taken",
            email.to_owned(),
            &[("issuer", &self.settings.issuer), ("reset", &reset)],
        );
        self.queue_mail(&Content::Message(message), context.locale, context.now)
            .await?;
        Ok(Ok(()))
    }
}

fn check_fields(
    username: &str,
    email: &str,
    form: &RegistrationForm<'_>,
) -> Result<(), RegisterRefusal> {
    let bad = |message: String| Err(RegisterRefusal::BadForm(message));
    if let Err(error) = check_username(username) {
        return bad(format!("Username: {}.", reason(&error)));
    }
    if let Err(error) = check_email(email) {
        return bad(format!("Email: {}.", reason(&error)));
    }
    if form.password != form.confirmation {
        return bad("The two passwords differ.".to_owned());
    }
    if let Err(message) = check_new_password(form.password, username, email) {
        return bad(message.to_owned());
    }
    Ok(())
}

fn reason(error: &crate::admin::AdminError) -> String {
    match error {
        crate::admin::AdminError::Invalid(field) | crate::admin::AdminError::Conflict(field) => {
            field.reason.to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused() {
        for (password, why) in [
            ("short", "at least 8"),
            ("alice-wonder", "username"),
            ("ALICE@example.com", "username or email"),
            ("my-alice-pass", "username"),
            ("Password123", "common"),
            ("qwertyuiop", "common"),
        ] {
            let error = check_new_password(password, "alice", "alice@example.com").unwrap_err();
            assert!(error.contains(why), "{password}: {error}");
        }
        assert_eq!(
            check_new_password("correct horse battery", "alice", "alice@example.com"),
            Ok(())
        );
    }
}
