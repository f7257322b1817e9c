//! The admin service: every change an operator makes to clients, users and
//! signing keys, and the audit query. The `valet` CLI calls it now; the admin
//! HTTP API will call the same functions, so validation, revocation and auditing
//! happen in one place whoever asks.
//!
//! Inputs are typed request structs, results typed records (serializable, for a
//! JSON API), errors one [`AdminError`] whose messages name the *field* as the
//! API and the configuration spell it (`redirect_uris[1]`), never a CLI flag.
//! Every change is audited exactly once, with the actor ([`Actor`]).
//!
//! One file per resource: [`clients`], [`users`], [`keys`], [`grants`] (and
//! sessions), [`audit`]; lists page through [`paging`]; what a
//! client's settings may be is [`client_rules`], shared by registration and update.

pub mod access;
pub mod audit;
pub mod bootstrap;
pub mod client_encryption_rules;
pub mod client_rules;
pub mod clients;
mod error;
pub mod grants;
pub mod keys;
pub mod paging;
pub mod registration;
pub mod users;

use std::sync::Mutex;

use valet_jose::MasterKey;

use crate::Clock;
use crate::audit::AuditEvent;
use crate::store::Store;
use crate::users::PasswordHasher;

pub use audit::AuditQuery;
pub use bootstrap::DEFAULT_ADMIN_CLIENT_ID;
pub use client_encryption_rules::EncryptionNames;
pub use client_rules::{MAX_REFRESH_GRACE_SECONDS, MAX_SECRET_OVERLAP_SECONDS, NewClient};
pub use clients::{ClientRecord, ClientUpdate, RegisteredClient, RotatedSecret, UpdatedClient};
pub use error::{AdminError, Field, FieldError, Resource};
pub use grants::{EndedSessions, GrantFilter, GrantRecord, SessionRecord};
pub use keys::{KeyAdmin, KeyRecord, RotatedKey};
pub use paging::{Page, PageRequest};
pub use registration::{CreatedInitialToken, InitialTokenRecord};
pub use users::{NewUser, UserRecord, UserUpdate};

/// Through which door a change came, recorded as the audit record's `via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The `valet` command line, run on the data directory.
    Cli,
    /// The admin HTTP API.
    Api,
    /// Dynamic client registration (RFC 7591, RFC 7592): the client itself.
    Registration,
    /// The web console at `/admin`, by a signed-in admin user.
    Console,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Api => "api",
            Self::Registration => "registration",
            Self::Console => "console",
        }
    }
}

/// Who makes a change: the door, and for the API the client whose token
/// authorised it (recorded as `actor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub via: Via,
    pub id: Option<String>,
}

impl Actor {
    /// An operator at the command line (no id: whoever can read the store).
    pub fn cli() -> Self {
        Self {
            via: Via::Cli,
            id: None,
        }
    }

    /// A caller of the admin API, by the client id its token was issued to.
    pub fn api(client_id: impl Into<String>) -> Self {
        Self {
            via: Via::Api,
            id: Some(client_id.into()),
        }
    }

    /// An admin user at the web console, by their user id.
    pub fn console(user_id: impl Into<String>) -> Self {
        Self {
            via: Via::Console,
            id: Some(user_id.into()),
        }
    }
}

/// The admin service over one store. Cheap to build (it borrows), so the API
/// can make one per request with that request's actor.
pub struct Admin<'a> {
    store: &'a dyn Store,
    clock: &'a dyn Clock,
    hasher: &'a PasswordHasher,
    /// The configured `access_token_max_ttl`: no client may ask for more.
    access_token_max_ttl: i64,
    actor: Actor,
    /// Seals `client_secret_jwt` clients' secrets; without it such clients
    /// cannot be registered or rotated.
    master: Option<&'a MasterKey>,
    /// Audit records that could not be stored, for the caller to report.
    warnings: Mutex<Vec<String>>,
}

impl<'a> Admin<'a> {
    pub fn new(
        store: &'a dyn Store,
        clock: &'a dyn Clock,
        hasher: &'a PasswordHasher,
        access_token_max_ttl: i64,
        actor: Actor,
    ) -> Self {
        Self {
            store,
            clock,
            hasher,
            access_token_max_ttl,
            actor,
            master: None,
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// With the master key, which `client_secret_jwt` clients need (their
    /// secret is stored sealed under it).
    pub fn with_master_key(mut self, master: &'a MasterKey) -> Self {
        self.master = Some(master);
        self
    }

    pub fn store(&self) -> &'a dyn Store {
        self.store
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// What went wrong with auditing since the last call: the changes were
    /// made, but their audit records could not be stored. The caller reports it.
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut warnings| std::mem::take(&mut *warnings))
            .unwrap_or_default()
    }

    /// Records a change in the audit trail and the log, with the actor. The
    /// change is made already, so a failure to store the record is not an
    /// error: it is logged and kept for [`Self::take_warnings`].
    pub(crate) async fn record(&self, event: AuditEvent) {
        let mut event = event.detail("via", self.actor.via.as_str());
        if let Some(id) = &self.actor.id {
            event = event.detail("actor", id.as_str());
        }
        event.log();
        let stored = self
            .store
            .append_audit_events(std::slice::from_ref(&event))
            .await;
        if let (Err(error), Ok(mut warnings)) = (stored, self.warnings.lock()) {
            warnings.push(format!(
                "the audit record of this change could not be stored: {error}"
            ));
        }
    }
}
