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

mod keyring;
mod schedule;

pub use keyring::{Keyring, PublishedKey};
pub use schedule::{ALGORITHMS, KeyError, KeyManager, KeyState, KeyStatus};
