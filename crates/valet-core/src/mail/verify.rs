//! Email verification by mail (`/verify-email`): the link opens a page with a
//! button (opening it consumes nothing: mail scanners open links), and
//! confirming marks the address verified, so `email_verified` in ID tokens and
//! UserInfo becomes true. The link is bound to the address it was sent to and
//! to the password: a changed address or password voids it.
//!
//! An email change from the account page is the same link, sent to the new
//! address and bound to it, to the password and to the current address:
//! confirming it makes the new address the account's, verified. The current
//! address gets a notice (without a link). Whether the new address belongs to
//! another account is not told: the page answers the same, and that address's
//! owner gets a mail saying someone tried.

use super::Content;
use super::token::{self, LinkRefusal};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::{LanguageTag, RequestContext};
use crate::error::OAuthError;
use crate::store::{SingleUseKind, StoreError, User};

/// Why an address was not marked verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyRefusal {
    /// No mailer: there are no verification links.
    Disabled,
    BadForm(&'static str),
    InvalidLink,
}

impl AuthorizationServer {
    /// Queues a verification mail for the user's current address (nothing is
    /// sent if it is verified by the time the sender gets to it).
    pub async fn send_email_verification(&self, user_id: &str) -> Result<bool, OAuthError> {
        if self.settings.mail.is_none() {
            return Ok(false);
        }
        self.queue_mail(
            &Content::VerifyEmail {
                user_id: user_id.to_owned(),
            },
            None,
            self.clock.now(),
        )
        .await?;
        Ok(true)
    }

    /// Whether the verification link's token works (consumes nothing).
    pub async fn email_verification_link_is_live(
        &self,
        handle: &str,
        now: i64,
    ) -> Result<bool, OAuthError> {
        if self.settings.mail.is_none() {
            return Ok(false);
        }
        token::is_live(self, SingleUseKind::EmailVerification, handle, now).await
    }

    /// Marks the address the link was sent to as verified.
    pub async fn verify_email(
        &self,
        context: &RequestContext,
        handle: &str,
        csrf_ok: bool,
    ) -> Result<Result<(), VerifyRefusal>, OAuthError> {
        if self.settings.mail.is_none() {
            return Ok(Err(VerifyRefusal::Disabled));
        }
        if !csrf_ok {
            return Ok(Err(VerifyRefusal::BadForm(
                "The form has expired. Please open the link again.",
            )));
        }
        let kind = SingleUseKind::EmailVerification;
        let (user, new_email) =
            match token::redeem_verification(self, kind, handle, context.now).await? {
                Ok(redeemed) => redeemed,
                Err(LinkRefusal::Invalid) => return Ok(Err(VerifyRefusal::InvalidLink)),
            };
        let via = if new_email.is_some() {
            "email change"
        } else {
            "link"
        };
        let verified = User {
            email: new_email.or(user.email.clone()),
            email_verified: true,
            updated_at: context.now,
            ..user
        };
        match self.store.update_user(&verified).await {
            Ok(true) => {}
            Ok(false) | Err(StoreError::Conflict) => return Ok(Err(VerifyRefusal::InvalidLink)),
            Err(error) => return Err(error.into()),
        }
        self.audit(
            AuditEvent::new(AuditKind::EmailVerified, context.now)
                .user(&verified.user_id)
                .address(context.address)
                .request(&context.id)
                .detail("via", via),
        );
        Ok(Ok(()))
    }

    /// Starts changing `user`'s address to `new_email` (checked by the
    /// caller): a link to the new address, a notice to the current one, or,
    /// when another account has the new address, a note to its owner instead
    /// of the link. The same mails are queued either way.
    pub async fn request_email_change(
        &self,
        context: &RequestContext,
        user: &User,
        new_email: &str,
    ) -> Result<(), OAuthError> {
        let holder = self.store.find_user_by_login(new_email).await?;
        let locale = self.mail_locale(context.locale.as_ref().map(LanguageTag::as_str));
        let issuer = self.settings.issuer.as_str();
        let request = if holder.is_some_and(|other| other.user_id != user.user_id) {
            // Written now, in the language of the request: nothing to resolve.
            Content::Message(self.write_mail(
                &locale,
                "mail.change_taken",
                new_email.to_owned(),
                &[("issuer", issuer)],
            ))
        } else {
            Content::ChangeEmail {
                user_id: user.user_id.clone(),
                email: new_email.to_owned(),
            }
        };
        self.queue_mail(&request, context.locale, context.now)
            .await?;
        if let Some(current) = &user.email {
            let notice = self.write_mail(
                &locale,
                "mail.change_notice",
                current.clone(),
                &[
                    ("name", user.name.as_deref().unwrap_or(&user.username)),
                    ("username", &user.username),
                    ("issuer", issuer),
                ],
            );
            self.queue_mail(&Content::Message(notice), context.locale, context.now)
                .await?;
        }
        self.audit(
            AuditEvent::new(AuditKind::UserUpdated, context.now)
                .user(&user.user_id)
                .address(context.address)
                .request(&context.id)
                .detail("changed", "email_change_requested")
                .detail("by", "account page"),
        );
        Ok(())
    }
}
