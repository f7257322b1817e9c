//! StatusStore on SQLite: the token status list.

use super::*;

// ---------------------------------------------------------------------------------
// Token status list
//
// Indices come from the one-row `status_allocator`, moved forward by the size of
// each block in the transaction that records the block. Revoked ranges are
// half-open, `[start, end_idx)`, numbered by an AUTOINCREMENT `seq`: writes are
// serialized on the writer connection, so seq order is commit order and a reader
// polling with `status_revocations_after` never misses a row. `purge_status` never
// deletes the newest revocation, so `last_status_seq` never goes back.

valet_store_sql::shared_status_parts! {
    database: Sqlite,
    row: SqliteRow,
    connection: SqliteConnection,
}

#[async_trait]
impl StatusStore for SqliteStore {
    /// A `size` below 1 is an error.
    async fn reserve_status_block(
        &self,
        client_id: &str,
        size: i64,
        valid_until: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        valet_store_sql::check_block_size(size)?;
        let mut tx = begin_write(&self.writer).await?;
        let outcome = reserve_status_block_in(&mut tx, client_id, size, valid_until, now).await;
        finish(tx, outcome).await
    }

    /// An unknown block (never reserved, or purged), or one whose client is gone,
    /// is left alone; one statement on the writer, so no deletion interleaves.
    async fn extend_status_block(&self, start: i64, valid_until: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE status_blocks SET valid_until = max(valid_until, ?1) WHERE start = ?2 \
             AND EXISTS (SELECT 1 FROM clients c WHERE c.client_id = status_blocks.client_id)",
        )
        .bind(valid_until)
        .bind(start)
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(updated > 0)
    }

    /// An empty range (`end <= start`) or a negative `start` is an error. Recording
    /// a range twice records it twice.
    async fn revoke_status_range(
        &self,
        start: i64,
        end: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        valet_store_sql::check_status_range(start, end)?;
        sqlx::query(
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(start)
        .bind(end)
        .bind(expires_at)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    /// One range per block, `[start, start + size)`, revoked until the block's
    /// `valid_until`; one statement, so one transaction.
    async fn revoke_status_blocks_of_client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut conn = self.writer.acquire().await.map_err(backend)?;
        revoke_status_blocks_of_client_in(&mut conn, client_id, now).await
    }

    /// Oldest first.
    async fn status_revocations_between(
        &self,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Vec<StatusRevocation>, StoreError> {
        status_revocations_between_in(&self.reader, start, end, now).await
    }

    /// Expired revocations too, until they are purged.
    async fn status_revocations_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<StatusRevocation>, StoreError> {
        status_revocations_after_in(&self.reader, seq, limit).await
    }

    async fn last_status_seq(&self) -> Result<i64, StoreError> {
        last_status_seq_in(&self.reader).await
    }

    /// `(lowest start, highest end)` over the live blocks: the span is half-open.
    async fn live_status_span(&self, now: i64) -> Result<Option<(i64, i64)>, StoreError> {
        live_status_span_in(&self.reader, now).await
    }

    /// Revocations that expired before `now`, except the newest one (so that
    /// `last_status_seq` never goes back), and blocks whose `valid_until` is before
    /// `now` and that no revocation expiring at `now` or later overlaps; oldest
    /// first.
    async fn purge_status(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = purge_status_in(&mut tx, now, limit).await;
        finish(tx, outcome).await
    }
}

async fn reserve_status_block_in(
    conn: &mut SqliteConnection,
    client_id: &str,
    size: i64,
    valid_until: i64,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    // In the write transaction: a deletion of the client either committed before
    // (no client, nothing reserved) or runs after and revokes this block.
    let registered = sqlx::query("SELECT 1 FROM clients WHERE client_id = ?")
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_error)?
        .is_some();
    if !registered {
        return Ok(None);
    }
    let start: i64 = sqlx::query_scalar(
        "UPDATE status_allocator SET next_idx = next_idx + ?1 WHERE id = 1 \
         RETURNING next_idx - ?1",
    )
    .bind(size)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error)?
    .ok_or_else(|| StoreError::Corrupt("the status_allocator row is missing".to_owned()))?;
    sqlx::query(
        "INSERT INTO status_blocks (start, size, client_id, valid_until, reserved_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(start)
    .bind(size)
    .bind(client_id)
    .bind(valid_until)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(Some(start))
}

pub(super) async fn revoke_status_blocks_of_client_in(
    conn: &mut SqliteConnection,
    client_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let revoked = sqlx::query(
        "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
         SELECT start, start + size, valid_until, ?1 FROM status_blocks \
         WHERE client_id = ?2 AND valid_until > ?1 ORDER BY start",
    )
    .bind(now)
    .bind(client_id)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    Ok(revoked)
}
