//! The parts of the status list store whose SQL is the same on both backends.

/// Stamps into a backend's status module the revocation columns and decoder,
/// the reads and the purge, with its types `$db`, `$row` and `$conn`. Reserving,
/// extending and revoking stay in the backend: SQLite relies on its one writer,
/// PostgreSQL on row locks and an advisory lock that makes `seq` order commit
/// order, and the reservation keeps exactly its statements.
#[macro_export]
macro_rules! shared_status_parts {
    (
        database: $db:ty,
        row: $row:ty,
        connection: $conn:ty $(,)?
    ) => {
        macro_rules! status_revocation_columns {
            () => {
                "seq, start, end_idx, expires_at, revoked_at"
            };
        }

        /// The revocations in force at `now` that overlap `[start, end)`, oldest first.
        pub(super) async fn status_revocations_between_in<'e, E>(
            executor: E,
            start: i64,
            end: i64,
            now: i64,
        ) -> Result<Vec<StatusRevocation>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(concat!(
                "SELECT ",
                status_revocation_columns!(),
                " FROM status_revocations \
                  WHERE start < $1 AND end_idx > $2 AND expires_at > $3 ORDER BY seq"
            ))
            .bind(end)
            .bind(start)
            .bind(now)
            .fetch_all(executor)
            .await
            .map_err(query_error)?
            .iter()
            .map(status_revocation_from_row)
            .collect()
        }

        /// Up to `limit` revocations after `seq`, in seq order, expired ones too.
        pub(super) async fn status_revocations_after_in<'e, E>(
            executor: E,
            seq: i64,
            limit: u32,
        ) -> Result<Vec<StatusRevocation>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(concat!(
                "SELECT ",
                status_revocation_columns!(),
                " FROM status_revocations WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))
            .bind(seq)
            .bind(i64::from(limit))
            .fetch_all(executor)
            .await
            .map_err(query_error)?
            .iter()
            .map(status_revocation_from_row)
            .collect()
        }

        /// The highest committed seq (0 when none).
        pub(super) async fn last_status_seq_in<'e, E>(executor: E) -> Result<i64, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM status_revocations")
                .fetch_one(executor)
                .await
                .map_err(query_error)
        }

        /// `(lowest start, highest end)` over the blocks live at `now`: half-open.
        pub(super) async fn live_status_span_in<'e, E>(
            executor: E,
            now: i64,
        ) -> Result<Option<(i64, i64)>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let (low, high): (Option<i64>, Option<i64>) = sqlx::query_as(
                "SELECT min(start), max(start + size) FROM status_blocks WHERE valid_until > $1",
            )
            .bind(now)
            .fetch_one(executor)
            .await
            .map_err(query_error)?;
            Ok(low.zip(high))
        }

        /// Deletes expired revocations (all but the newest) first, so a block they held
        /// can go in the same call, then expired blocks no revocation in force overlaps.
        /// Two nodes purging at once may pick the same rows; the second delete then
        /// finds fewer.
        pub(super) async fn purge_status_in(
            conn: &mut $conn,
            now: i64,
            limit: u32,
        ) -> Result<u64, StoreError> {
            let limit = i64::from(limit);
            let revocations = sqlx::query(
                "DELETE FROM status_revocations WHERE seq IN \
                 (SELECT seq FROM status_revocations WHERE expires_at < $1 \
                  AND seq < (SELECT max(seq) FROM status_revocations) \
                  ORDER BY expires_at LIMIT $2)",
            )
            .bind(now)
            .bind(limit)
            .execute(&mut *conn)
            .await
            .map_err(query_error)?
            .rows_affected();
            let blocks = sqlx::query(
                "DELETE FROM status_blocks WHERE start IN \
                 (SELECT b.start FROM status_blocks b WHERE b.valid_until < $1 \
                  AND NOT EXISTS (SELECT 1 FROM status_revocations r \
                                  WHERE r.start < b.start + b.size AND r.end_idx > b.start \
                                  AND r.expires_at >= $1) \
                  ORDER BY b.valid_until LIMIT $2)",
            )
            .bind(now)
            .bind(limit)
            .execute(&mut *conn)
            .await
            .map_err(query_error)?
            .rows_affected();
            Ok(revocations + blocks)
        }

        pub(super) fn status_revocation_from_row(
            row: &$row,
        ) -> Result<StatusRevocation, StoreError> {
            Ok(StatusRevocation {
                seq: get(row, "seq")?,
                start: get(row, "start")?,
                end: get(row, "end_idx")?,
                expires_at: get(row, "expires_at")?,
                revoked_at: get(row, "revoked_at")?,
            })
        }
    };
}
