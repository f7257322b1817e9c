//! The storage traits. Backends live in their own crates (`valet-store-sqlite`,
//! `valet-store-postgres`) and all pass the shared suite in [`conformance`].
//!
//! Every method is a single transaction: when it returns `Ok`, the change is durable.

#[cfg(feature = "store-tests")]
pub mod conformance;

mod model;

use async_trait::async_trait;

pub use model::{Client, KeyInsert, RevokedToken, StoredKey};

/// Why a store call failed. Backends map their driver errors here; the message of
/// `Backend` goes to logs only, never to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with the same primary key already exists.
    #[error("a record with this key already exists")]
    Conflict,
    /// A stored record could not be decoded (a bug or a hand-edited database).
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Registered clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Inserts a new client; [`StoreError::Conflict`] if the `client_id` is taken.
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    async fn get_client(&self, client_id: &str) -> Result<Option<Client>, StoreError>;
    /// All clients, ordered by `created_at` then `client_id`.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Returns whether a client was deleted.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;
    /// Replaces the secret hash of a confidential client; returns whether one matched
    /// (a public client never does: it cannot be given a secret this way).
    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        updated_at: i64,
    ) -> Result<bool, StoreError>;
}

/// Signing keys, private parts sealed by the caller before they reach the store.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Inserts a key unless another key of the same `alg` already holds its
    /// `generation`: that is how concurrent rotations on several nodes agree on one
    /// winner.
    async fn insert_key(&self, key: &StoredKey) -> Result<KeyInsert, StoreError>;
    /// All keys, ordered by `alg` then `generation`.
    async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Sets `activates_at` of one key; returns whether a key matched.
    async fn set_key_activation(&self, kid: &str, activates_at: i64) -> Result<bool, StoreError>;
    /// Sets `publish_until` of one key, only if it is unset or later than the
    /// given time (a key's publication never gets longer once it is bounded).
    async fn set_key_publish_until(
        &self,
        kid: &str,
        publish_until: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes keys whose `publish_until` is before `now`; returns how many.
    async fn delete_unpublished_keys(&self, now: i64) -> Result<u64, StoreError>;
}

/// Revoked access tokens, kept until they would have expired anyway.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Records a revocation; recording the same `jti` twice is not an error.
    async fn insert_revocation(&self, revoked: &RevokedToken) -> Result<(), StoreError>;
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Deletes up to `limit` records whose token expired before `now`; returns how many.
    async fn purge_revocations(&self, now: i64, limit: u32) -> Result<u64, StoreError>;
}

/// Everything Valet keeps. Implemented for any type with all the parts.
#[async_trait]
pub trait Store: ClientStore + KeyStore + RevocationStore {
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
}
