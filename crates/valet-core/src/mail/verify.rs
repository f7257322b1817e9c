//! Email verification by mail (`/verify-email`): the link opens a page with a
//! button (opening it consumes nothing: mail scanners open links), and
//! confirming marks the address verified, so `email_verified` in ID tokens and
//! UserInfo becomes true. The link is bound to the address it was sent to and
//! to the password: a changed address or password voids it.

use super::Content;
use super::token::{self, LinkRefusal};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::RequestContext;
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
        let user = match token::redeem(self, SingleUseKind::EmailVerification, handle, context.now)
            .await?
        {
            Ok(user) => user,
            Err(LinkRefusal::Invalid) => return Ok(Err(VerifyRefusal::InvalidLink)),
        };
        let verified = User {
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
                .detail("via", "link"),
        );
        Ok(Ok(()))
    }
}
