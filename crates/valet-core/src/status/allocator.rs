//! Hands out status list indices from blocks reserved per client in advance.

use std::collections::HashMap;

use tokio::sync::Mutex;

use super::{BLOCK_SIZE, BLOCK_WINDOW};
use crate::error::OAuthError;
use crate::store::{MAX_ACCESS_TOKEN_TTL, Store};

struct Block {
    start: i64,
    next: i64,
    end: i64,
    /// After this the node reserves a fresh block.
    use_until: i64,
}

/// One per node. Taking an index is a short lock and a map lookup; only when a
/// client's block runs out (or its window passes) does the store see a write, and
/// concurrent requests then wait for one reservation instead of each making one.
#[derive(Default)]
pub struct StatusAllocator {
    blocks: std::sync::Mutex<HashMap<String, Block>>,
    reserving: Mutex<()>,
}

impl StatusAllocator {
    pub async fn allocate(
        &self,
        store: &dyn Store,
        client_id: &str,
        now: i64,
    ) -> Result<i64, OAuthError> {
        if let Some(idx) = self.take(client_id, now) {
            return Ok(idx);
        }
        let _reserving = self.reserving.lock().await;
        if let Some(idx) = self.take(client_id, now) {
            return Ok(idx);
        }
        let use_until = now.saturating_add(BLOCK_WINDOW);
        let valid_until = use_until.saturating_add(MAX_ACCESS_TOKEN_TTL);
        // A block whose window passed with indices left is extended, not
        // abandoned: indices are never reused, so wasting them would run the
        // index space down for nothing.
        let unfinished = self
            .lock()
            .get(client_id)
            .filter(|block| block.next < block.end)
            .map(|block| block.start);
        if let Some(start) = unfinished {
            store.extend_status_block(start, valid_until).await?;
            if let Some(block) = self.lock().get_mut(client_id) {
                block.use_until = use_until;
            }
            if let Some(idx) = self.take(client_id, now) {
                return Ok(idx);
            }
        }
        let start = store
            .reserve_status_block(client_id, BLOCK_SIZE, valid_until, now)
            .await?;
        let mut blocks = self.lock();
        if blocks.len() > 100_000 {
            blocks.clear();
        }
        blocks.insert(
            client_id.to_owned(),
            Block {
                start,
                next: start + 1,
                end: start + BLOCK_SIZE,
                use_until,
            },
        );
        Ok(start)
    }

    fn take(&self, client_id: &str, now: i64) -> Option<i64> {
        let mut blocks = self.lock();
        let block = blocks.get_mut(client_id)?;
        if block.next < block.end && now < block.use_until {
            let idx = block.next;
            block.next += 1;
            Some(idx)
        } else {
            None
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Block>> {
        self.blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An index for a user grant. Its block stays valid as long as the grant can
    /// still mint tokens, so the list holding it is served (and listed) that long.
    pub async fn allocate_for_grant(
        &self,
        store: &dyn Store,
        client_id: &str,
        grant_expires_at: i64,
        now: i64,
    ) -> Result<i64, OAuthError> {
        let idx = self.allocate(store, client_id, now).await?;
        let block_start = self
            .lock()
            .get(client_id)
            .map(|block| block.start)
            .filter(|start| (*start..*start + BLOCK_SIZE).contains(&idx));
        if let Some(start) = block_start {
            store
                .extend_status_block(start, grant_expires_at.saturating_add(MAX_ACCESS_TOKEN_TTL))
                .await?;
        }
        Ok(idx)
    }

    /// Forgets a client's block (after the client was deleted).
    pub fn forget(&self, client_id: &str) {
        self.lock().remove(client_id);
    }
}
