//! Signing keys: the in-memory keyring the token path signs with, and the rotation
//! schedule kept in the store.
//!
//! A key's life, all decided by timestamps in the store so every node agrees:
//!
//! ```text
//!  created ──publish_lead──▶ activates_at ──rotation_period──▶ successor activates
//!  (in JWKS, not signing)     (signing)                        (in JWKS, not signing)
//!                                                              ──max token ttl + margin──▶ publish_until → deleted
//! ```
//!
//! The signing key of an algorithm is the key with the highest `generation` among
//! those already active and still published.

mod check;
mod keyring;
mod schedule;

pub use check::{MasterKeyCheck, check_master_key, store_has_no_sealed_keys};
pub use keyring::Keyring;
pub use schedule::{ALGORITHMS, CreatedKey, KeyError, KeyManager, KeyState, KeyStatus};

/// A key is in the JWKS until its `publish_until` (unbounded while unset).
fn is_published(publish_until: Option<i64>, now: i64) -> bool {
    publish_until.is_none_or(|until| until > now)
}

/// A key may sign once active and while published; of those, the highest
/// generation of an algorithm is the one that does.
fn signs_at(activates_at: Option<i64>, publish_until: Option<i64>, now: i64) -> bool {
    activates_at.is_some_and(|at| at <= now) && is_published(publish_until, now)
}
