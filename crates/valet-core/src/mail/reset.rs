//! Password reset by mail (`/reset`, `/reset/confirm`).
//!
//! ```text
//!  POST /reset (username or email)
//!     ├─ throttled (per account and address, per address) ─▶ 429, same for every login
//!     └─ queue PasswordReset{login} ─▶ "if the account exists, a mail is on its way"
//!            sender: account with email? ─▶ token + link mailed : dropped
//!  GET  /reset/confirm?token=… ─▶ the form (nothing consumed: scanners open links)
//!  POST /reset/confirm ─▶ rules ─▶ hash ─▶ consume the token ─▶ binding still holds?
//!            ─▶ new password, every session ended, every grant revoked, audited
//! ```
//!
//! The request path does the same work whether or not the account exists
//! (check the throttle, queue one sealed row) and answers the same page; only
//! the sender, later and elsewhere, looks the account up.

use valet_jose::constant_time_eq;

use super::Content;
use super::token::{self, LinkRefusal};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::store::SingleUseKind;
use crate::throttle::Throttled;
use crate::users::{MAX_EMAIL_BYTES, PasswordError, WeakPassword};

/// Why a reset request was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetRequestRefusal {
    /// Reset is not switched on (`password_reset`).
    Disabled,
    /// The form is not from this browser's page (CSRF), or the login is empty.
    BadForm(&'static str),
    /// Too many requests for this account or from this address.
    Throttled { retry_after_seconds: i64 },
}

/// Why a new password was not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetRefusal {
    Disabled,
    BadForm(&'static str),
    /// The link is unknown, expired, used, or voided by a change of the account.
    InvalidLink,
    /// The new password breaks a rule (the link stays usable).
    Weak(WeakPassword),
    /// The passwords typed do not match (the link stays usable).
    Mismatch,
    /// The hasher is overloaded (the link stays usable).
    Busy {
        retry_after_seconds: i64,
    },
}

/// Whether the form's CSRF field is the browser's CSRF cookie.
pub fn csrf_matches(cookie: Option<&str>, field: Option<&str>) -> bool {
    match (cookie, field) {
        (Some(cookie), Some(field)) => {
            cookie.len() == 43 && constant_time_eq(cookie.as_bytes(), field.as_bytes())
        }
        _ => false,
    }
}

impl AuthorizationServer {
    /// Asks for a reset link for the account `login` names (username or
    /// email). The answer does not depend on whether there is such an account.
    pub async fn request_password_reset(
        &self,
        context: &RequestContext,
        login: &str,
        csrf_ok: bool,
    ) -> Result<Result<(), ResetRequestRefusal>, OAuthError> {
        if !self.settings.password_reset {
            return Ok(Err(ResetRequestRefusal::Disabled));
        }
        if !csrf_ok {
            return Ok(Err(ResetRequestRefusal::BadForm(
                "The form has expired. Please try again.",
            )));
        }
        let login = login.trim();
        if login.is_empty() || login.len() > MAX_EMAIL_BYTES {
            return Ok(Err(ResetRequestRefusal::BadForm(
                "Enter your username or email.",
            )));
        }
        // Every request counts, like a failed sign-in: the per-account and
        // per-address limits bound the mail one can make Valet send.
        if let Err(Throttled {
            retry_after_seconds,
        }) = self
            .reset_throttle
            .admit(login, context.address, context.now)
        {
            return Ok(Err(ResetRequestRefusal::Throttled {
                retry_after_seconds,
            }));
        }
        self.queue_mail(
            &Content::PasswordReset {
                login: login.to_owned(),
            },
            context.locale,
            context.now,
        )
        .await?;
        self.audit(
            AuditEvent::new(AuditKind::PasswordResetRequested, context.now)
                .address(context.address)
                .request(&context.id),
        );
        Ok(Ok(()))
    }

    /// Whether the reset link's token works (for the page it opens; consumes
    /// nothing).
    pub async fn password_reset_link_is_live(
        &self,
        handle: &str,
        now: i64,
    ) -> Result<bool, OAuthError> {
        if !self.settings.password_reset {
            return Ok(false);
        }
        token::is_live(self, SingleUseKind::PasswordReset, handle, now).await
    }

    /// Sets a new password with a reset link's token: ends every session of the
    /// user and revokes every grant (refresh tokens at once, access tokens
    /// through the status list), as `valet user disable` does.
    pub async fn reset_password(
        &self,
        context: &RequestContext,
        handle: &str,
        password: &str,
        confirmation: &str,
        csrf_ok: bool,
    ) -> Result<Result<(), ResetRefusal>, OAuthError> {
        if !self.settings.password_reset {
            return Ok(Err(ResetRefusal::Disabled));
        }
        if !csrf_ok {
            return Ok(Err(ResetRefusal::BadForm(
                "The form has expired. Please open the link again.",
            )));
        }
        if password != confirmation {
            return Ok(Err(ResetRefusal::Mismatch));
        }
        if let Err(weak) = crate::users::check_password_rules(password) {
            return Ok(Err(ResetRefusal::Weak(weak)));
        }
        // Checked before the costly hash, so unknown links cost no argon2.
        if !token::is_live(self, SingleUseKind::PasswordReset, handle, context.now).await? {
            return Ok(Err(ResetRefusal::InvalidLink));
        }
        let hash = match self.hasher.hash(password).await {
            Ok(hash) => hash,
            Err(PasswordError::Weak(weak)) => return Ok(Err(ResetRefusal::Weak(weak))),
            Err(PasswordError::Overloaded {
                retry_after_seconds,
            }) => {
                return Ok(Err(ResetRefusal::Busy {
                    retry_after_seconds,
                }));
            }
            Err(error @ PasswordError::Hashing(_)) => return Err(OAuthError::server(error)),
        };
        let user =
            match token::redeem(self, SingleUseKind::PasswordReset, handle, context.now).await? {
                Ok(user) => user,
                Err(LinkRefusal::Invalid) => return Ok(Err(ResetRefusal::InvalidLink)),
            };
        let now = context.now;
        if !self
            .store
            .set_user_password(&user.user_id, &hash, now)
            .await?
        {
            return Ok(Err(ResetRefusal::InvalidLink));
        }
        let sessions = self.store.delete_sessions_of_user(&user.user_id).await?;
        let grants = self.store.revoke_grants_of_user(&user.user_id, now).await?;
        if grants > 0 {
            self.status_lists.wake();
        }
        self.audit(
            AuditEvent::new(AuditKind::PasswordReset, now)
                .user(&user.user_id)
                .address(context.address)
                .request(&context.id)
                .detail("revoked_grants", grants)
                .detail("ended_sessions", sessions),
        );
        Ok(Ok(()))
    }
}
