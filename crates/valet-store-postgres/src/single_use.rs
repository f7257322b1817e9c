//! SingleUseStore on PostgreSQL: short-lived single-use records.

use super::*;

// ---------------------------------------------------------------------------------
// Single-use records

macro_rules! single_use_columns {
    () => {
        "kind, key, payload, expires_at, consumed"
    };
}

#[async_trait]
impl SingleUseStore for PostgresStore {
    async fn insert_single_use(
        &self,
        kind: SingleUseKind,
        key: &[u8],
        payload: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO single_use (kind, key, payload, expires_at, consumed) \
             VALUES ($1, $2, $3, $4, FALSE) ON CONFLICT (kind, key) DO NOTHING",
        )
        .bind(kind.as_str())
        .bind(key)
        .bind(payload)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(query_error)?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn get_single_use(
        &self,
        kind: SingleUseKind,
        key: &[u8],
        now: i64,
    ) -> Result<Option<SingleUse>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            single_use_columns!(),
            " FROM single_use \
             WHERE kind = $1 AND key = $2 AND NOT consumed AND expires_at > $3"
        ))
        .bind(kind.as_str())
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(single_use_from_row)
        .transpose()
    }

    async fn update_single_use(
        &self,
        kind: SingleUseKind,
        key: &[u8],
        payload: &str,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE single_use SET payload = $1 \
             WHERE kind = $2 AND key = $3 AND NOT consumed",
        )
        .bind(payload)
        .bind(kind.as_str())
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(updated > 0)
    }

    /// One conditional update: the row lock makes a concurrent taker wait and then find it consumed.
    async fn take_single_use(
        &self,
        kind: SingleUseKind,
        key: &[u8],
        now: i64,
    ) -> Result<Option<SingleUse>, StoreError> {
        sqlx::query(concat!(
            "UPDATE single_use SET consumed = TRUE \
             WHERE kind = $1 AND key = $2 AND NOT consumed AND expires_at > $3 \
             RETURNING ",
            single_use_columns!()
        ))
        .bind(kind.as_str())
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(single_use_from_row)
        .transpose()
    }

    async fn purge_single_use(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        purge_single_use_in(&mut conn, now, limit).await
    }
}

/// Deletes up to `limit` records that expired before `now`, oldest first.
pub(crate) async fn purge_single_use_in(
    conn: &mut PgConnection,
    now: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let deleted = sqlx::query(
        "DELETE FROM single_use WHERE (kind, key) IN \
         (SELECT kind, key FROM single_use WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    Ok(deleted)
}

fn single_use_from_row(row: &PgRow) -> Result<SingleUse, StoreError> {
    Ok(SingleUse {
        kind: parse_name("kind", &get::<String>(row, "kind")?, SingleUseKind::parse)?,
        key: get(row, "key")?,
        payload: get(row, "payload")?,
        expires_at: get(row, "expires_at")?,
        consumed: get(row, "consumed")?,
    })
}
