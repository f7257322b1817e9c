//! Hands out status list indices from blocks reserved per client in advance.

use std::collections::HashMap;

use tokio::sync::Mutex;

use super::{BLOCK_SIZE, BLOCK_WINDOW};
use crate::store::{MAX_ACCESS_TOKEN_TTL, Store, StoreError};

/// Why no status list index was handed out.
#[derive(Debug, thiserror::Error)]
pub enum AllocationError {
    /// The store refused a block: the client is no longer registered (deleted
    /// while this node still knew it).
    #[error("the client is no longer registered")]
    ClientGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Block {
    start: i64,
    next: i64,
    end: i64,
    /// After this the node reserves a fresh block.
    use_until: i64,
    /// The store holds at least this `valid_until` for the block (this node set
    /// it; another node may only have moved it later).
    valid_until: i64,
}

impl Block {
    fn new(start: i64, use_until: i64, valid_until: i64) -> Self {
        Self {
            start,
            next: start,
            end: start + BLOCK_SIZE,
            use_until,
            valid_until,
        }
    }

    fn contains(&self, idx: i64) -> bool {
        (self.start..self.end).contains(&idx)
    }
}

/// A client's block in use, and the next one once it has been reserved.
struct ClientBlocks {
    current: Block,
    spare: Option<Block>,
    /// Reserving ahead failed for this block: not tried again before it runs out,
    /// so a store outage does not cost every token request a failed write.
    ahead_failed: bool,
}

/// When this many indices of the current block are left, the next block is
/// reserved: at tens of thousands of tokens a second, a block lasts tens of
/// milliseconds, and half of one covers a slow store write.
const RESERVE_AHEAD_AT: i64 = BLOCK_SIZE / 2;

/// A block extended for a grant is extended this much further than that grant
/// needs, so the grants that follow (expiring a little later each) find it long
/// enough and cost no store write: one extension per block and window instead of
/// one per grant. The list is served that much longer, which costs nothing.
const GRANT_EXTENSION_AHEAD: i64 = BLOCK_WINDOW;

/// One per node. Taking an index is a short lock and a map lookup. The request
/// that takes the index half-way through a block reserves the next block (one
/// store write) while the others go on drawing from the current one, so in steady
/// state no request waits for the store. Only a client's first token, or one after
/// a reservation failed, waits; concurrent requests then wait for one reservation
/// instead of each making one.
#[derive(Default)]
pub struct StatusAllocator {
    blocks: std::sync::Mutex<HashMap<String, ClientBlocks>>,
    reserving: Mutex<()>,
}

/// For a block reserved or extended at `now`: until when this node draws from it,
/// and until when a token from it may be live (its `valid_until` in the store).
fn windows(now: i64) -> (i64, i64) {
    let use_until = now.saturating_add(BLOCK_WINDOW);
    (use_until, use_until.saturating_add(MAX_ACCESS_TOKEN_TTL))
}

/// An index taken from a client's current block.
struct Taken {
    idx: i64,
    /// The current block is down to [`RESERVE_AHEAD_AT`] and no spare is held.
    reserve_ahead: bool,
}

impl StatusAllocator {
    pub async fn allocate(
        &self,
        store: &dyn Store,
        client_id: &str,
        now: i64,
    ) -> Result<i64, AllocationError> {
        if let Some(taken) = self.take(client_id, now) {
            if taken.reserve_ahead
                && let Ok(_reserving) = self.reserving.try_lock()
            {
                self.reserve_spare(store, client_id, now).await;
            }
            return Ok(taken.idx);
        }
        let _reserving = self.reserving.lock().await;
        if let Some(taken) = self.take(client_id, now) {
            return Ok(taken.idx);
        }
        let (use_until, valid_until) = windows(now);
        // A block whose window passed with indices left is extended, not
        // abandoned: indices are never reused, so wasting them would run the
        // index space down for nothing.
        let unfinished = self
            .lock()
            .get(client_id)
            .filter(|blocks| blocks.current.next < blocks.current.end)
            .map(|blocks| blocks.current.start);
        if let Some(start) = unfinished {
            if !store.extend_status_block(start, valid_until).await? {
                return Err(self.client_gone(client_id));
            }
            if let Some(blocks) = self.lock().get_mut(client_id) {
                blocks.current.use_until = use_until;
                blocks.current.valid_until = blocks.current.valid_until.max(valid_until);
            }
            if let Some(taken) = self.take(client_id, now) {
                return Ok(taken.idx);
            }
        }
        let Some(start) = store
            .reserve_status_block(client_id, BLOCK_SIZE, valid_until, now)
            .await?
        else {
            return Err(self.client_gone(client_id));
        };
        let mut blocks = self.lock();
        if blocks.len() > 100_000 {
            blocks.clear();
        }
        let mut current = Block::new(start, use_until, valid_until);
        current.next += 1;
        blocks.insert(
            client_id.to_owned(),
            ClientBlocks {
                current,
                spare: None,
                ahead_failed: false,
            },
        );
        Ok(start)
    }

    /// Reserves the block that follows the client's current one. A failure is
    /// logged and not the request's: it already has its index, and the request
    /// that finds the block used up reserves one itself.
    async fn reserve_spare(&self, store: &dyn Store, client_id: &str, now: i64) {
        let wanted = self
            .lock()
            .get(client_id)
            .is_some_and(|blocks| blocks.spare.is_none());
        if !wanted {
            return;
        }
        let (use_until, valid_until) = windows(now);
        match store
            .reserve_status_block(client_id, BLOCK_SIZE, valid_until, now)
            .await
        {
            Ok(Some(start)) => {
                if let Some(blocks) = self.lock().get_mut(client_id) {
                    blocks.spare = Some(Block::new(start, use_until, valid_until));
                }
            }
            // Deleted meanwhile: the deletion revoked the current block, and the
            // next request that finds it used up learns that the client is gone.
            Ok(None) => {
                if let Some(blocks) = self.lock().get_mut(client_id) {
                    blocks.ahead_failed = true;
                }
            }
            Err(error) => {
                if let Some(blocks) = self.lock().get_mut(client_id) {
                    blocks.ahead_failed = true;
                }
                tracing::warn!(%error, "reserving the next status list block failed; retried when the current one runs out");
            }
        }
    }

    fn take(&self, client_id: &str, now: i64) -> Option<Taken> {
        let mut blocks = self.lock();
        let blocks = blocks.get_mut(client_id)?;
        if blocks.current.next >= blocks.current.end
            && let Some(spare) = blocks.spare.take()
        {
            blocks.current = spare;
        }
        let block = &mut blocks.current;
        if block.next < block.end && now < block.use_until {
            let idx = block.next;
            block.next += 1;
            Some(Taken {
                idx,
                reserve_ahead: blocks.spare.is_none()
                    && !blocks.ahead_failed
                    && block.end - block.next <= RESERVE_AHEAD_AT,
            })
        } else {
            None
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ClientBlocks>> {
        self.blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An index for a user grant. Its block stays valid as long as the grant can
    /// still mint tokens, so the list holding it is served (and listed) that long;
    /// the store is written only when the block is not yet valid that long.
    pub async fn allocate_for_grant(
        &self,
        store: &dyn Store,
        client_id: &str,
        grant_expires_at: i64,
        now: i64,
    ) -> Result<i64, AllocationError> {
        let idx = self.allocate(store, client_id, now).await?;
        let needed = grant_expires_at.saturating_add(MAX_ACCESS_TOKEN_TTL);
        let short_block = self.lock().get(client_id).and_then(|blocks| {
            [Some(&blocks.current), blocks.spare.as_ref()]
                .into_iter()
                .flatten()
                .find(|block| block.contains(idx) && block.valid_until < needed)
                .map(|block| block.start)
        });
        let Some(start) = short_block else {
            return Ok(idx);
        };
        let valid_until = needed.saturating_add(GRANT_EXTENSION_AHEAD);
        if !store.extend_status_block(start, valid_until).await? {
            return Err(self.client_gone(client_id));
        }
        let mut blocks = self.lock();
        let extended = blocks.get_mut(client_id).and_then(|blocks| {
            [Some(&mut blocks.current), blocks.spare.as_mut()]
                .into_iter()
                .flatten()
                .find(|block| block.start == start)
        });
        if let Some(block) = extended {
            block.valid_until = block.valid_until.max(valid_until);
        }
        Ok(idx)
    }

    /// The store refused a block for a client that is no longer registered: its
    /// blocks here were revoked by the deletion and are dropped.
    fn client_gone(&self, client_id: &str) -> AllocationError {
        self.forget(client_id);
        tracing::info!(%client_id, "status list block refused: the client was deleted");
        AllocationError::ClientGone
    }

    /// Forgets a client's block (after the client was deleted).
    pub fn forget(&self, client_id: &str) {
        self.lock().remove(client_id);
    }
}
