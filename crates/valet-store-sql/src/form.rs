//! What both backends' sign-in form writes bind that a [`FormWrite`] holds in
//! another form.

use valet_core::store::{FormWrite, FormWritten, StoreError, interaction_key};

use crate::{to_json, union_into};

/// The keys, the session's methods and the consent's scopes of a form write,
/// encoded as the form's statements bind them (empty where the write has no
/// such part).
pub struct FormValues {
    /// The key of the interaction the form changes.
    pub change_key: Vec<u8>,
    /// The key of the next form's interaction.
    pub next_key: Vec<u8>,
    /// The new session's `amr`, as JSON.
    pub amr: String,
    /// The consent's scopes, each once, as JSON.
    pub scopes: String,
}

impl FormValues {
    pub fn of(write: &FormWrite) -> Result<Self, StoreError> {
        let key_of = |id: &str| interaction_key(id).to_vec();
        let amr = match &write.session {
            Some(start) => to_json(&start.session.amr)?,
            None => String::new(),
        };
        let scopes = match &write.consent {
            Some(consent) => {
                let mut once = Vec::with_capacity(consent.scopes.len());
                union_into(&mut once, &consent.scopes);
                to_json(&once)?
            }
            None => String::new(),
        };
        Ok(Self {
            change_key: (write.interaction.as_ref())
                .map(|change| key_of(change.interaction_id()))
                .unwrap_or_default(),
            next_key: (write.next.as_ref())
                .map(|next| key_of(&next.interaction_id))
                .unwrap_or_default(),
            amr,
            scopes,
        })
    }
}

/// What a form write did, from whether its interaction's change took and
/// whether its grant was stored (each `true` where the write has no such part).
pub fn written(write: &FormWrite, changed: bool, granted: bool) -> FormWritten {
    if write.interaction.is_some() && !changed {
        FormWritten::Refused
    } else if write.grant.is_some() && !granted {
        FormWritten::UserDisabled
    } else {
        FormWritten::Written
    }
}
