//! The one error type of the admin service. Its messages name fields as the
//! admin API and the configuration spell them (`redirect_uris[1]`); a front end
//! that spells them otherwise (the CLI's `--redirect-uri`) renders [`FieldError`]
//! from its parts.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::keys::KeyError;
use crate::store::StoreError;

/// Why an admin operation changed nothing. `Store` and `Internal` are server
/// failures (their text is for the operator's log, not for an API caller);
/// the others are the caller's to fix.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such record (HTTP 404).
    #[error("no {resource} {key}")]
    NotFound { resource: Resource, key: String },
    /// The request clashes with what is stored (HTTP 409).
    #[error("{0}")]
    Conflict(FieldError),
    /// A field of the request is invalid (HTTP 400 / 422).
    #[error("{0}")]
    Invalid(FieldError),
    /// A key of this algorithm already waits to sign (HTTP 409): a second one
    /// would only stack up in the JWKS.
    #[error(
        "{alg} key {kid} is already pending (it signs from {activates_at}, Unix time): wait until it signs, then rotate again"
    )]
    KeyPending {
        alg: String,
        kid: String,
        activates_at: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Randomness, hashing or the master key failed.
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    pub(crate) fn invalid(
        field: Field,
        value: Option<String>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Invalid(FieldError {
            field,
            value,
            reason: reason.into(),
        })
    }

    pub(crate) fn conflict(
        field: Field,
        value: Option<String>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Conflict(FieldError {
            field,
            value,
            reason: reason.into(),
        })
    }

    pub(crate) fn not_found(resource: Resource, key: &str) -> Self {
        Self::NotFound {
            resource,
            key: key.to_owned(),
        }
    }

    /// The field at fault, for an invalid or conflicting request.
    pub fn field_error(&self) -> Option<&FieldError> {
        match self {
            Self::Invalid(error) | Self::Conflict(error) => Some(error),
            _ => None,
        }
    }
}

impl From<KeyError> for AdminError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Store(error) => Self::Store(error),
            KeyError::NotFound(kid) => Self::not_found(Resource::Key, &kid),
            KeyError::DuplicateKid(kid) => Self::conflict(
                Field::new("kid"),
                Some(kid),
                "a key with this kid already exists",
            ),
            KeyError::RetireSigning(kid) => Self::conflict(
                Field::new("kid"),
                Some(kid),
                "the current signing key cannot be retired: rotate its algorithm and retire it once its successor signs",
            ),
            KeyError::PendingExists {
                alg,
                kid,
                activates_at,
            } => Self::KeyPending {
                alg: alg.to_string(),
                kid,
                activates_at,
            },
            other @ (KeyError::WrongMasterKey { .. }
            | KeyError::MasterKeyMismatch
            | KeyError::Corrupt(_)
            | KeyError::Jose(_)) => Self::Internal(other.to_string()),
        }
    }
}

/// What kind of record was not found; the text completes "no … {key}".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Client,
    /// Secret rotation needs a client that has a secret.
    ConfidentialClient,
    /// Looked up by user id, username or email.
    User,
    Key,
    /// An initial access token for client registration, by its id.
    InitialToken,
    /// A live grant, by its id.
    Grant,
    /// An admin API path that does not exist (the key is empty).
    Route,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client with id",
            Self::ConfidentialClient => "confidential client with id",
            Self::User => "user with id, username or email",
            Self::Key => "key with kid",
            Self::InitialToken => "initial access token with id",
            Self::Grant => "live grant with id",
            Self::Route => "such route",
        })
    }
}

/// A request field by its API name, and for a list the position of the
/// offending entry: `redirect_uris[1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub index: Option<usize>,
}

impl Field {
    pub const fn new(name: &'static str) -> Self {
        Self { name, index: None }
    }

    pub const fn at(name: &'static str, index: usize) -> Self {
        Self {
            name,
            index: Some(index),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(index) => write!(f, "{}[{index}]", self.name),
            None => f.write_str(self.name),
        }
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An invalid or conflicting field: which, the value at fault (never a secret
/// or password), and why, as a phrase that does not repeat the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: Field,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub reason: Cow<'static, str>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}
