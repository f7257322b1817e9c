//! What one sign-in form writes ([`FormWrite`]): its interaction's change, the
//! session it starts, the next form's interaction, the consent it records and
//! the grant it issues, made in one transaction. Each of these was a write of
//! its own; a form now costs the store one round trip and one commit.

use super::model::{AuthorizationCode, Grant, Interaction, Session};

/// The writes a sign-in form ends with, in the order they are made. Nothing is
/// written if the form's interaction no longer takes the change (it was
/// completed by another submission of the same form): a form completes once.
#[derive(Debug, Clone, Default)]
pub struct FormWrite {
    /// The change to the interaction the form named; none for a request that
    /// was never stored or carried (a signed-in browser's new request).
    pub interaction: Option<InteractionChange>,
    /// The session a sign-in starts, and the browser's old one it ends.
    pub session: Option<SessionStart>,
    /// The interaction the next form names.
    pub next: Option<Interaction>,
    /// Scopes the user allowed the client, added to those allowed before.
    pub consent: Option<ConsentGiven>,
    /// A new grant and its first code, stored only if its user is enabled.
    pub grant: Option<(Grant, AuthorizationCode)>,
}

impl FormWrite {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        let Self {
            interaction,
            session,
            next,
            consent,
            grant,
        } = self;
        interaction.is_none()
            && session.is_none()
            && next.is_none()
            && consent.is_none()
            && grant.is_none()
    }
}

/// How a form changes the interaction it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractionChange {
    /// A carried request's form is completed: this record (under the id derived
    /// from the carried value) is inserted; refused if it was before.
    Remember(Interaction),
    /// A stored interaction moves to another stage: its payload is replaced;
    /// refused if it was completed.
    Update(Interaction),
    /// A stored interaction is completed (consumed); refused if it was before.
    Complete(String),
}

impl InteractionChange {
    /// The id of the interaction changed.
    pub fn interaction_id(&self) -> &str {
        match self {
            Self::Remember(record) | Self::Update(record) => &record.interaction_id,
            Self::Complete(id) => id,
        }
    }
}

/// A session a sign-in starts; the browser's old session (its hash), if any,
/// ends with it, so a session id planted before the sign-in is worth nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStart {
    pub session: Session,
    pub ends: Option<Vec<u8>>,
}

/// Scopes a user allowed a client (merged as [`super::SessionStore::add_consent`]
/// merges them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGiven {
    pub user_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub now: i64,
}

/// What [`super::FormStore::write_form`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormWritten {
    /// Everything was written.
    Written,
    /// The interaction did not take the change: nothing was written.
    Refused,
    /// The grant's user is disabled or gone: everything but the grant and its
    /// code was written.
    UserDisabled,
}
