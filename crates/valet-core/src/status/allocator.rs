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

/// One per node. Taking an index is a map lookup; only when a client's block runs
/// out (or its window passes) does the store see a write.
#[derive(Default)]
pub struct StatusAllocator {
    blocks: Mutex<HashMap<String, Block>>,
}

impl StatusAllocator {
    pub async fn allocate(
        &self,
        store: &dyn Store,
        client_id: &str,
        now: i64,
    ) -> Result<i64, OAuthError> {
        let mut blocks = self.blocks.lock().await;
        if let Some(block) = blocks.get_mut(client_id)
            && block.next < block.end
            && now < block.use_until
        {
            let idx = block.next;
            block.next += 1;
            return Ok(idx);
        }
        // The lock is held across the reservation on purpose: concurrent requests
        // for the same client wait for one block instead of each reserving one.
        let use_until = now.saturating_add(BLOCK_WINDOW);
        let valid_until = use_until.saturating_add(MAX_ACCESS_TOKEN_TTL);
        let start = store
            .reserve_status_block(client_id, BLOCK_SIZE, valid_until, now)
            .await?;
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
            .blocks
            .lock()
            .await
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
    pub async fn forget(&self, client_id: &str) {
        self.blocks.lock().await.remove(client_id);
    }
}
