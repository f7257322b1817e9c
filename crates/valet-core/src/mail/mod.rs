//! Mail: a durable outbox in the store, and the sender that empties it.
//!
//! ```text
//!  request path                      sender (every node, valet-server's mail task)
//!  ────────────                      ──────────────────────────────────────────────
//!  queue(Content) ─▶ outbox row ─▶ claim (lease) ─▶ open ─┬─ Message ──────────────▶ send
//!                    (sealed)                             └─ request (e.g. a reset) ─▶ resolve:
//!                                                             find the account, store its
//!                                                             token and the message in one
//!                                                             transaction ─▶ send, or drop
//!  send ok ─▶ finish(sent): content deleted
//!  send failed ─▶ retry at now + backoff (30 s doubling, at most an hour), or after
//!                 MAX_ATTEMPTS finish(failed) and audit `mail.failed`
//! ```
//!
//! A mail is stored before the request that causes it is answered, and finished
//! only after the SMTP server took it, so a crash or an outage delays mail but
//! loses none. A crash between the hand-over and `finish` sends it again when
//! the lease runs out: delivery is at least once.
//!
//! Requests that must not tell whether an account exists (a password reset)
//! queue the same row whatever the answer would be, and the sender decides:
//! the request path does the same work either way.
//!
//! The content (recipient, subject, body with its link, and the language of
//! the request that caused it, see [`text`]) is sealed with
//! AES-256-GCM under a key derived from the master key for this purpose only
//! ([`OUTBOX_KEY_PURPOSE`]), with the mail id as associated data, so a row
//! cannot be read or moved to another id. One key without periods is enough:
//! mail comes at a few per second at most, far below the nonce budget of
//! random 96-bit nonces (2^32 messages), and a row may wait for hours of
//! retries.

pub mod reset;
mod text;
pub mod token;
pub mod verify;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use valet_jose::MasterKey;

use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::LanguageTag;
use crate::error::OAuthError;
use crate::secrets::random_id;
use crate::store::{MailOutcome, OutboxMail, SingleUse};

/// The HKDF purpose of the outbox's sealing key.
pub const OUTBOX_KEY_PURPOSE: &[u8] = b"valet mail outbox v1";
/// Attempts before a mail is given up.
pub const MAX_ATTEMPTS: i64 = 10;
/// The first retry waits this long; each next one twice as long.
pub const FIRST_RETRY_SECONDS: i64 = 30;
/// No retry waits longer than this.
pub const MAX_RETRY_SECONDS: i64 = 3600;
/// How long a claim holds a mail: longer than any SMTP exchange may take (the
/// transport's own timeouts are far shorter), so no second sender takes it
/// while the first may still deliver it.
pub const LEASE_SECONDS: i64 = 300;
/// Mails claimed per round.
pub const BATCH: u32 = 20;
/// Finished mails (without content) are kept this long, then purged.
pub const FINISHED_RETENTION: i64 = 7 * 24 * 3600;

/// What an outbox row holds, before sealing.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Content {
    /// Ready to send.
    Message(Message),
    /// A password reset asked for by username or email: the sender finds the
    /// account and, if it can receive mail, writes the link.
    PasswordReset { login: String },
    /// A link to confirm the user's email address, as it is when the sender
    /// resolves it.
    VerifyEmail { user_id: String },
    /// An invitation to register with this address.
    Invite { email: String },
    /// A link that makes `email` the user's address once opened.
    ChangeEmail { user_id: String, email: String },
}

/// What is sealed: the content, and the language to write it in (absent in
/// rows sealed before mail had languages: the default language then).
#[derive(Deserialize)]
struct Sealed {
    #[serde(flatten)]
    content: Content,
    #[serde(default)]
    locale: Option<String>,
}

/// [`Sealed`], borrowed, for sealing.
#[derive(Serialize)]
struct SealedRef<'a> {
    #[serde(flatten)]
    content: &'a Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
}

/// A message ready to go out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub to: String,
    pub subject: String,
    /// Plain text. May carry a link with a secret token.
    pub body: String,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a transport did not deliver a message.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt later (connection refused, timeout, 4xx).
    #[error("temporary mail failure: {0}")]
    Temporary(String),
    /// Will not work however often tried (5xx, a bad address).
    #[error("permanent mail failure: {0}")]
    Permanent(String),
}

/// Hands messages to the world (SMTP, or the development log): `valet-server`
/// implements it. The sender is [`MailSettings::from`]; the message says whom to.
///
/// [`MailSettings::from`]: crate::config::MailSettings::from
#[async_trait]
pub trait MailTransport: Send + Sync {
    async fn send(&self, from: &str, message: &Message) -> Result<(), SendError>;
}

/// Seals and opens outbox content.
pub(crate) struct OutboxSeal {
    key: MasterKey,
}

impl OutboxSeal {
    pub(crate) fn new(master: &MasterKey) -> Result<Self, valet_jose::JoseError> {
        Ok(Self {
            key: master.derive(OUTBOX_KEY_PURPOSE)?,
        })
    }

    fn seal(
        &self,
        mail_id: &str,
        content: &Content,
        locale: Option<&str>,
    ) -> Result<Vec<u8>, OAuthError> {
        let sealed = SealedRef { content, locale };
        let json =
            zeroize::Zeroizing::new(serde_json::to_vec(&sealed).map_err(OAuthError::server)?);
        self.key
            .seal(mail_id.as_bytes(), &json)
            .map_err(OAuthError::server)
    }

    fn open(&self, mail: &OutboxMail) -> Result<Sealed, String> {
        let json = self
            .key
            .open(mail.mail_id.as_bytes(), &mail.sealed)
            .map_err(|_| "the mail does not open with this master key".to_owned())?;
        serde_json::from_slice(&json).map_err(|error| format!("unreadable content: {error}"))
    }
}

/// Queues an invitation to register for `email` into `store`, sealed with
/// `master`'s outbox key, for a running server's sender to resolve (it makes
/// the link) and send. For `valet user invite`, which has the store and the
/// master key but no server.
pub async fn queue_invite(
    store: &dyn crate::store::Store,
    master: &MasterKey,
    email: &str,
    now: i64,
) -> Result<(), OAuthError> {
    let seal = OutboxSeal::new(master).map_err(OAuthError::server)?;
    let mail_id = random_id()?;
    let sealed = seal.seal(
        &mail_id,
        &Content::Invite {
            email: email.to_owned(),
        },
        None,
    )?;
    store
        .enqueue_mail(&OutboxMail {
            mail_id,
            sealed,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            finished_at: None,
            outcome: None,
        })
        .await?;
    Ok(())
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones.
pub fn backoff(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    FIRST_RETRY_SECONDS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_RETRY_SECONDS)
}

/// What one round of sending did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub dropped: usize,
    pub retried: usize,
    pub failed: usize,
}

impl Round {
    /// Mails the round claimed.
    pub fn claimed(&self) -> usize {
        self.sent + self.dropped + self.retried + self.failed
    }
}

impl AuthorizationServer {
    /// Queues `content` for the sender, to be written in `locale` (the
    /// request's language); durable when this returns.
    pub(crate) async fn queue_mail(
        &self,
        content: &Content,
        locale: Option<LanguageTag>,
        now: i64,
    ) -> Result<(), OAuthError> {
        let mail_id = random_id()?;
        let locale = locale.as_ref().map(LanguageTag::as_str);
        let sealed = self.outbox.seal(&mail_id, content, locale)?;
        self.store
            .enqueue_mail(&OutboxMail {
                mail_id,
                sealed,
                attempts: 0,
                next_attempt_at: now,
                created_at: now,
                finished_at: None,
                outcome: None,
            })
            .await?;
        self.mail_queued.notify_one();
        Ok(())
    }

    /// Resolves when mail has been queued on this node (the sender also polls,
    /// for mail queued elsewhere and for retries).
    pub async fn mail_queued(&self) {
        self.mail_queued.notified().await;
    }

    /// Claims the mail that is due and sends it through `transport`: one round.
    pub async fn send_due_mail(&self, transport: &dyn MailTransport) -> Result<Round, OAuthError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_mail(now, now.saturating_add(LEASE_SECONDS), BATCH)
            .await?;
        let mut round = Round::default();
        for mail in claimed {
            self.send_one(transport, mail, &mut round).await?;
        }
        Ok(round)
    }

    async fn send_one(
        &self,
        transport: &dyn MailTransport,
        mail: OutboxMail,
        round: &mut Round,
    ) -> Result<(), OAuthError> {
        let now = self.clock.now();
        let Sealed { content, locale } = match self.outbox.open(&mail) {
            Ok(sealed) => sealed,
            Err(reason) => return self.give_up(&mail, &reason, now, round).await,
        };
        let message = match content {
            Content::Message(message) => Some(message),
            request => {
                let locale = self.mail_locale(locale.as_deref());
                self.resolve(&mail, request, &locale, now).await?
            }
        };
        let Some(message) = message else {
            self.store
                .finish_mail(&mail.mail_id, MailOutcome::Dropped, now)
                .await?;
            round.dropped += 1;
            return Ok(());
        };
        let Some(mail_settings) = &self.settings.mail else {
            // No mailer (it was switched off while mail waited): keep it.
            self.store
                .retry_mail(&mail.mail_id, now.saturating_add(MAX_RETRY_SECONDS))
                .await?;
            round.retried += 1;
            return Ok(());
        };
        match transport.send(&mail_settings.from, &message).await {
            Ok(()) => {
                self.store
                    .finish_mail(&mail.mail_id, MailOutcome::Sent, self.clock.now())
                    .await?;
                round.sent += 1;
            }
            Err(SendError::Temporary(reason)) if mail.attempts < MAX_ATTEMPTS => {
                tracing::warn!(mail_id = %mail.mail_id, attempts = mail.attempts, %reason, "mail not sent; will retry");
                self.store
                    .retry_mail(&mail.mail_id, now.saturating_add(backoff(mail.attempts)))
                    .await?;
                round.retried += 1;
            }
            Err(error) => self.give_up(&mail, &error.to_string(), now, round).await?,
        }
        Ok(())
    }

    async fn give_up(
        &self,
        mail: &OutboxMail,
        reason: &str,
        now: i64,
        round: &mut Round,
    ) -> Result<(), OAuthError> {
        tracing::error!(mail_id = %mail.mail_id, attempts = mail.attempts, %reason, "mail given up");
        self.store
            .finish_mail(&mail.mail_id, MailOutcome::Failed, now)
            .await?;
        self.audit(
            AuditEvent::new(AuditKind::MailFailed, now)
                .detail("mail_id", mail.mail_id.as_str())
                .detail("attempts", mail.attempts)
                .detail("reason", reason),
        );
        round.failed += 1;
        Ok(())
    }

    /// Turns a request into its message in `locale` (with the token it
    /// carries, stored in the same transaction), or `None` when there is
    /// nothing to send.
    async fn resolve(
        &self,
        mail: &OutboxMail,
        request: Content,
        locale: &str,
        now: i64,
    ) -> Result<Option<Message>, OAuthError> {
        use crate::mail::token;
        let resolved: Option<(Message, SingleUse)> = match request {
            Content::Message(message) => return Ok(Some(message)),
            Content::PasswordReset { login } => {
                token::reset_message(self, &login, locale, now).await?
            }
            Content::VerifyEmail { user_id } => {
                token::verification_message(self, &user_id, locale, now).await?
            }
            Content::Invite { email } => token::invite_message(self, &email, locale, now)?,
            Content::ChangeEmail { user_id, email } => {
                token::change_message(self, &user_id, &email, locale, now).await?
            }
        };
        let Some((message, token)) = resolved else {
            return Ok(None);
        };
        let sealed = self.outbox.seal(
            &mail.mail_id,
            &Content::Message(message.clone()),
            Some(locale),
        )?;
        if self
            .store
            .resolve_mail(&mail.mail_id, &sealed, Some(&token))
            .await?
        {
            Ok(Some(message))
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), 30);
        assert_eq!(backoff(2), 60);
        assert_eq!(backoff(3), 120);
        assert_eq!(backoff(8), 3600);
        assert_eq!(backoff(100), 3600);
        assert_eq!(backoff(0), 30);
    }

    #[test]
    fn content_opens_only_under_its_own_id() {
        let master = MasterKey::generate().unwrap();
        let seal = OutboxSeal::new(&master).unwrap();
        let content = Content::PasswordReset {
            login: "alice".into(),
        };
        let sealed = seal.seal("m1", &content, Some("de")).unwrap();
        let mail = |id: &str| OutboxMail {
            mail_id: id.into(),
            sealed: sealed.clone(),
            attempts: 0,
            next_attempt_at: 0,
            created_at: 0,
            finished_at: None,
            outcome: None,
        };
        assert!(matches!(
            seal.open(&mail("m1")),
            Ok(Sealed { content: Content::PasswordReset { login }, locale: Some(locale) })
                if login == "alice" && locale == "de"
        ));
        assert!(seal.open(&mail("m2")).is_err());
        let other = OutboxSeal::new(&MasterKey::generate().unwrap()).unwrap();
        assert!(other.open(&mail("m1")).is_err());
    }

    /// Rows sealed before mail had languages open, without one.
    #[test]
    fn content_without_a_language_opens() {
        let master = MasterKey::generate().unwrap();
        let seal = OutboxSeal::new(&master).unwrap();
        let old = br#"{"type":"verify_email","user_id":"u1"}"#;
        let sealed = seal.key.seal(b"m1", old).unwrap();
        let mail = OutboxMail {
            mail_id: "m1".into(),
            sealed,
            attempts: 0,
            next_attempt_at: 0,
            created_at: 0,
            finished_at: None,
            outcome: None,
        };
        assert!(matches!(
            seal.open(&mail),
            Ok(Sealed { content: Content::VerifyEmail { user_id }, locale: None }) if user_id == "u1"
        ));
    }
}
