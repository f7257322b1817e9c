//! The Token Status List (draft-ietf-oauth-status-list, JWT form): how access
//! tokens stay revocable although APIs verify them without calling Valet.
//!
//! Every access token carries `"status": {"status_list": {"idx": N, "uri": …}}`.
//! What one index stands for:
//!
//! - a token from the client credentials grant has an index of its own, taken from
//!   a block of indices this node reserved for the client in advance (one store
//!   write per [`BLOCK_SIZE`] tokens, none per token): revoking it kills that token;
//! - every access token of one user grant (one sign-in of a user into a client,
//!   and all its refreshes) shares the grant's index: revoking the grant — by
//!   logout, refresh token reuse, code replay, disabling the user, or revoking any
//!   of its tokens — kills all of them;
//! - deleting a client revokes every block reserved for it and all its grants.
//!
//! Lists are windows of [`LIST_SIZE`] consecutive indices, served as signed
//! `statuslist+jwt` tokens at `{issuer}/statuslists/{n}` and rebuilt when a
//! revocation touches them; the events endpoint pushes a notice per revocation.
//! How a token's claim names its list and position is in [`status_claim`].
//!
//! [`LIST_SIZE`]: crate::token::status_claim::LIST_SIZE
//! [`status_claim`]: crate::token::status_claim

mod allocator;
mod lists;
pub mod stream;

pub use allocator::{AllocationError, StatusAllocator};
pub use lists::{StatusEvent, StatusLists};
pub use stream::{StatusStream, StreamRefusal};

/// Indices reserved per client and node at a time.
pub const BLOCK_SIZE: i64 = 1024;

/// A node stops drawing from a block after this long and reserves a new one, so a
/// block's `valid_until` (this window plus the longest token lifetime) holds.
pub const BLOCK_WINDOW: i64 = 600;

/// How long a resource server may cache a list without the push channel (`ttl`).
pub const LIST_TTL: i64 = 30;
