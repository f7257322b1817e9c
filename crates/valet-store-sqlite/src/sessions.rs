//! SessionStore on SQLite: sessions and consent (interactions are
//! single-use records, see `single_use`).

use super::shared::purge_single_use_in;
use super::*;

// ---------------------------------------------------------------------------------
// Sessions, consent

macro_rules! session_columns {
    () => {
        "session_hash, sid, user_id, auth_time, amr, created_at, expires_at"
    };
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO sessions (",
            session_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&session.session_hash)
        .bind(&session.sid)
        .bind(&session.user_id)
        .bind(session.auth_time)
        .bind(to_json(&session.amr)?)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.writer)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    async fn get_session(
        &self,
        session_hash: &[u8],
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE session_hash = ? AND expires_at > ?"
        ))
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    /// Returns the session whether or not it had expired.
    async fn delete_session(&self, session_hash: &[u8]) -> Result<Option<Session>, StoreError> {
        sqlx::query(concat!(
            "DELETE FROM sessions WHERE session_hash = ? RETURNING ",
            session_columns!()
        ))
        .bind(session_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    async fn delete_sessions_of_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.writer)
            .await
            .map_err(query_error)?
            .rows_affected();
        Ok(deleted)
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE user_id = ? AND client_id = ?")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(query_error)?;
        match row {
            Some(row) => from_json(&row, "scopes"),
            None => Ok(Vec::new()),
        }
    }

    /// The stored list keeps its order; new scopes are appended once each.
    async fn add_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = add_consent_in(&mut tx, user_id, client_id, scopes, now).await;
        finish(tx, outcome).await
    }

    async fn purge_sessions(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = purge_sessions_in(&mut tx, now, limit).await;
        finish(tx, outcome).await
    }
}

async fn add_consent_in(
    conn: &mut SqliteConnection,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT scopes FROM consents WHERE user_id = ? AND client_id = ?")
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_error)?;
    let mut merged = match &row {
        Some(row) => from_json(row, "scopes")?,
        None => Vec::new(),
    };
    union_into(&mut merged, scopes);
    sqlx::query(
        "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4) \
         ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = ?3, updated_at = ?4",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(to_json(&merged)?)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}

async fn purge_sessions_in(
    conn: &mut SqliteConnection,
    now: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE session_hash IN \
         (SELECT session_hash FROM sessions WHERE expires_at < ? ORDER BY expires_at LIMIT ?)",
    )
    .bind(now)
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await
    .map_err(query_error)?
    .rows_affected();
    let single_use = purge_single_use_in(conn, now, limit).await?;
    Ok(sessions + single_use)
}

fn session_from_row(row: &SqliteRow) -> Result<Session, StoreError> {
    Ok(Session {
        session_hash: get(row, "session_hash")?,
        sid: get(row, "sid")?,
        user_id: get(row, "user_id")?,
        auth_time: get(row, "auth_time")?,
        amr: from_json(row, "amr")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}
