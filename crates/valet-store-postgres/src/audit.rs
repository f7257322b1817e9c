//! AuditStore on PostgreSQL: the audit trail.

use super::*;

// ---------------------------------------------------------------------------------
// Audit trail

async fn append_audit_events_in(
    conn: &mut PgConnection,
    events: &[AuditEvent],
    details: &[String],
) -> Result<(), StoreError> {
    for (event, detail) in events.iter().zip(details) {
        sqlx::query(
            "INSERT INTO audit_events (at, event, user_id, client_id, address, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(event.at)
        .bind(event.event.as_str())
        .bind(event.user_id.as_deref())
        .bind(event.client_id.as_deref())
        .bind(event.address.as_deref())
        .bind(detail)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    }
    Ok(())
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        // Serialized before the transaction opens, so only the inserts can fail in it.
        let details = events
            .iter()
            .map(|event| serde_json::to_string(&event.detail))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome = append_audit_events_in(&mut tx, events, &details).await;
        finish(tx, outcome).await
    }

    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        // Only fixed fragments make up the SQL; every value is bound.
        let mut sql = String::from(
            "SELECT at, event, user_id, client_id, address, detail FROM audit_events WHERE at >= $1",
        );
        let mut values: Vec<&str> = Vec::new();
        for (column, value) in [
            ("user_id", filter.user_id.as_deref()),
            ("client_id", filter.client_id.as_deref()),
            ("event", filter.event.map(AuditKind::as_str)),
        ] {
            if let Some(value) = value {
                values.push(value);
                sql.push_str(&format!(" AND {column} = ${}", values.len() + 1));
            }
        }
        sql.push_str(&format!(
            " ORDER BY at DESC, id DESC LIMIT ${}",
            values.len() + 2
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(filter.since.unwrap_or(i64::MIN));
        for value in values {
            query = query.bind(value);
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(query_error)?;
        rows.iter().map(audit_event).collect()
    }

    async fn purge_audit_events(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
        // A bounded batch, oldest first: never one long delete.
        let deleted = sqlx::query(
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE at < $1 ORDER BY at, id LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(deleted)
    }
}

fn audit_event(row: &PgRow) -> Result<AuditEvent, StoreError> {
    let detail: String = get(row, "detail")?;
    Ok(AuditEvent {
        at: get(row, "at")?,
        event: parse_name("event", &get::<String>(row, "event")?, AuditKind::parse)?,
        user_id: get(row, "user_id")?,
        client_id: get(row, "client_id")?,
        address: get(row, "address")?,
        detail: serde_json::from_str(&detail)
            .map_err(|err| StoreError::Corrupt(format!("column detail: {err}")))?,
    })
}
