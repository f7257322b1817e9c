//! StatusStore on PostgreSQL: the token status list.

use super::*;

// ---------------------------------------------------------------------------------
// Token status list
//
// Indices come from the one-row `status_allocator`: a reservation moves it forward
// by the block's size with one `UPDATE ... RETURNING`, so concurrent reservations
// queue on its row lock and get disjoint, contiguous blocks. Revoked ranges are
// half-open, `[start, end_idx)`.
//
// Ordering of `seq`: a poller reads `seq > last seen` and must never miss a row.
// An identity column alone does not ensure that: transaction A draws 7, B draws 8
// and commits, a poll sees 8 and moves past 7, then A commits 7, never to be seen.
// So every insert into `status_revocations` first takes `lock_status_revocations`
// (a transaction-level lock held until commit or rollback) and draws its seq under
// it: whoever draws a seq has seen every smaller one committed or rolled back, and
// a poll sees a prefix of the seq order. Every transaction takes it after its
// grant row locks and takes no row lock after it, except a user or client deletion,
// which locked the live grants concerned first; so it adds no deadlock.
// `purge_status` never deletes the newest revocation, so `last_status_seq` (the
// highest committed seq) never goes back.

valet_store_sql::shared_status_parts! {
    database: Postgres,
    row: PgRow,
    connection: PgConnection,
}

/// First key of the two-key advisory lock that orders inserts into
/// `status_revocations` (ASCII "VSLS"); the second is the table's OID, so each
/// schema has its own lock.
const STATUS_SEQ_LOCK: i32 = 0x5653_4c53;

/// Takes the lock that makes seq order commit order (see the note above). An
/// advisory lock rather than `LOCK TABLE ... IN SHARE ROW EXCLUSIVE MODE`: that
/// mode conflicts with the one (auto)vacuum and analyze take, so every revocation
/// would stall behind a vacuum of the table (up to `deadlock_timeout` for
/// autovacuum, the whole run for a manual one); the advisory lock only meets other
/// writers of revocations.
pub(super) async fn lock_status_revocations(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, 'status_revocations'::regclass::oid::int)")
        .bind(STATUS_SEQ_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    Ok(())
}

#[async_trait]
impl StatusStore for PostgresStore {
    /// A `size` below 1 is an error.
    async fn reserve_status_block(
        &self,
        client_id: &str,
        size: i64,
        valid_until: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        valet_store_sql::check_block_size(size)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = reserve_status_block_in(&mut tx, client_id, size, valid_until, now).await;
        finish(tx, outcome).await
    }

    /// An unknown block (never reserved, or purged) is left alone. The client's
    /// row is share-locked as in `reserve_status_block_in`.
    async fn extend_status_block(&self, start: i64, valid_until: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = extend_status_block_in(&mut tx, start, valid_until).await;
        finish(tx, outcome).await
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = revoke_status_range_in(&mut tx, start, end, expires_at, now).await;
        finish(tx, outcome).await
    }

    /// One range per block, `[start, start + size)`, revoked until the block's
    /// `valid_until`.
    async fn revoke_status_blocks_of_client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = revoke_status_blocks_of_client_in(&mut tx, client_id, now).await;
        finish(tx, outcome).await
    }

    /// Oldest first.
    async fn status_revocations_between(
        &self,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Vec<StatusRevocation>, StoreError> {
        status_revocations_between_in(&self.pool, start, end, now).await
    }

    /// Expired revocations too, until they are purged.
    async fn status_revocations_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<StatusRevocation>, StoreError> {
        status_revocations_after_in(&self.pool, seq, limit).await
    }

    /// The highest committed seq (not the identity's last value, which may belong
    /// to a transaction still in flight).
    async fn last_status_seq(&self) -> Result<i64, StoreError> {
        last_status_seq_in(&self.pool).await
    }

    /// `(lowest start, highest end)` over the live blocks: the span is half-open.
    async fn live_status_span(&self, now: i64) -> Result<Option<(i64, i64)>, StoreError> {
        live_status_span_in(&self.pool, now).await
    }

    /// Revocations that expired before `now`, except the newest one (so that
    /// `last_status_seq` never goes back), and blocks whose `valid_until` is before
    /// `now` and that no revocation expiring at `now` or later overlaps; oldest
    /// first. Deleting needs no lock: a poller only ever misses expired rows.
    async fn purge_status(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = purge_status_in(&mut tx, now, limit).await;
        finish(tx, outcome).await
    }
}

/// Takes a share lock on the client's row, if it is registered: a deletion
/// (`delete_client_in`) locks it for update before it revokes the client's blocks,
/// so a block is either reserved before the deletion (and revoked by it) or not at
/// all.
async fn lock_client_for_blocks(
    conn: &mut PgConnection,
    client_id: &str,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT 1 FROM clients WHERE client_id = $1 FOR SHARE")
            .bind(client_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_error)?
            .is_some(),
    )
}

async fn extend_status_block_in(
    conn: &mut PgConnection,
    start: i64,
    valid_until: i64,
) -> Result<bool, StoreError> {
    let client_id: Option<String> =
        sqlx::query_scalar("SELECT client_id FROM status_blocks WHERE start = $1")
            .bind(start)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_error)?;
    let Some(client_id) = client_id else {
        return Ok(false);
    };
    if !lock_client_for_blocks(conn, &client_id).await? {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE status_blocks SET valid_until = GREATEST(valid_until, $1) WHERE start = $2",
    )
    .bind(valid_until)
    .bind(start)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(true)
}

async fn reserve_status_block_in(
    conn: &mut PgConnection,
    client_id: &str,
    size: i64,
    valid_until: i64,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    if !lock_client_for_blocks(conn, client_id).await? {
        return Ok(None);
    }
    let start: i64 = sqlx::query_scalar(
        "UPDATE status_allocator SET next_idx = next_idx + $1 WHERE id = 1 \
         RETURNING next_idx - $1",
    )
    .bind(size)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error)?
    .ok_or_else(|| StoreError::Corrupt("the status_allocator row is missing".to_owned()))?;
    sqlx::query(
        "INSERT INTO status_blocks (start, size, client_id, valid_until, reserved_at) \
         VALUES ($1, $2, $3, $4, $5)",
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

async fn revoke_status_range_in(
    conn: &mut PgConnection,
    start: i64,
    end: i64,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    lock_status_revocations(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(start)
    .bind(end)
    .bind(expires_at)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}

pub(super) async fn revoke_status_blocks_of_client_in(
    conn: &mut PgConnection,
    client_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    lock_status_revocations(&mut *conn).await?;
    let revoked = sqlx::query(
        "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
         SELECT start, start + size, valid_until, $1 FROM status_blocks \
         WHERE client_id = $2 AND valid_until > $1 ORDER BY start",
    )
    .bind(now)
    .bind(client_id)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    Ok(revoked)
}
