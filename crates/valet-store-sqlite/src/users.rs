//! UserStore on SQLite.

use super::grants::{Owner, revoke_access_tokens_before_delete};
use super::status::revoke_status_blocks_of_client_in;
use super::*;

// ---------------------------------------------------------------------------------
// Users

macro_rules! user_columns {
    () => {
        "user_id, username, email, email_verified, name, given_name, family_name, \
         password_hash, disabled, created_at, updated_at"
    };
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        // Any of the three unique keys (user_id, username, lower(email)) taken is
        // a unique violation, which `query_error` turns into `Conflict`.
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&user.user_id)
        .bind(&user.username)
        .bind(user.email.as_deref())
        .bind(user.email_verified)
        .bind(user.name.as_deref())
        .bind(user.given_name.as_deref())
        .bind(user.family_name.as_deref())
        .bind(user.password_hash.as_deref())
        .bind(user.disabled)
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&self.writer)
        .await
        .map_err(query_error)?;
        Ok(())
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE user_id = ?"
        ))
        .bind(user_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    /// Emails compare with ASCII case folding (SQLite's `lower`).
    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        // At most one user has the username and at most one the email; when they
        // differ, the username match wins.
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username = ?1 OR lower(email) = lower(?1) \
             ORDER BY username = ?1 DESC LIMIT 1"
        ))
        .bind(login)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, user_id"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(query_error)?
        .iter()
        .map(user_from_row)
        .collect()
    }

    async fn set_user_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE user_id = ?")
                .bind(password_hash)
                .bind(now)
                .bind(user_id)
                .execute(&self.writer)
                .await
                .map_err(query_error)?
                .rows_affected();
        Ok(updated > 0)
    }

    async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE user_id = ?")
                .bind(disabled)
                .bind(now)
                .bind(user_id)
                .execute(&self.writer)
                .await
                .map_err(query_error)?
                .rows_affected();
        Ok(updated > 0)
    }

    /// A taken email is a unique violation, which `query_error` turns into
    /// `Conflict`.
    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE users SET email = ?1, email_verified = ?2, name = ?3, given_name = ?4, \
               family_name = ?5, updated_at = ?6 WHERE user_id = ?7",
        )
        .bind(user.email.as_deref())
        .bind(user.email_verified)
        .bind(user.name.as_deref())
        .bind(user.given_name.as_deref())
        .bind(user.family_name.as_deref())
        .bind(user.updated_at)
        .bind(&user.user_id)
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(updated > 0)
    }

    /// Sessions, consents and grants (with their codes, refresh tokens and access
    /// token records) go by cascade; the live access tokens of the user's grants
    /// are revoked first.
    async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.writer).await?;
        let outcome = delete_user_in(&mut tx, user_id).await;
        finish(tx, outcome).await
    }

    async fn set_user_unlocked(&self, user_id: &str, at: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE users SET unlocked_at = max(coalesce(unlocked_at, ?1), ?1) WHERE user_id = ?2",
        )
        .bind(at)
        .bind(user_id)
        .execute(&self.writer)
        .await
        .map_err(query_error)?
        .rows_affected();
        Ok(updated > 0)
    }

    async fn login_unlocked_at(&self, login: &str) -> Result<Option<i64>, StoreError> {
        let row: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT unlocked_at FROM users WHERE username = ?1 OR lower(email) = lower(?1) \
             ORDER BY username = ?1 DESC LIMIT 1",
        )
        .bind(login)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_error)?;
        Ok(row.flatten())
    }
}

async fn delete_user_in(conn: &mut SqliteConnection, user_id: &str) -> Result<bool, StoreError> {
    revoke_access_tokens_before_delete(conn, Owner::User(user_id)).await?;
    let deleted = sqlx::query("DELETE FROM users WHERE user_id = ?")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?
        .rows_affected();
    Ok(deleted > 0)
}

pub(super) async fn delete_client_in(
    conn: &mut SqliteConnection,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let exists = sqlx::query("SELECT 1 FROM clients WHERE client_id = ?")
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_error)?
        .is_some();
    if !exists {
        return Ok(false);
    }
    revoke_access_tokens_before_delete(conn, Owner::Client(client_id)).await?;
    revoke_status_blocks_of_client_in(conn, client_id, now).await?;
    let deleted = sqlx::query("DELETE FROM clients WHERE client_id = ?")
        .bind(client_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?
        .rows_affected();
    Ok(deleted > 0)
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        user_id: get(row, "user_id")?,
        username: get(row, "username")?,
        email: get(row, "email")?,
        email_verified: get(row, "email_verified")?,
        name: get(row, "name")?,
        given_name: get(row, "given_name")?,
        family_name: get(row, "family_name")?,
        password_hash: get(row, "password_hash")?,
        disabled: get(row, "disabled")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}
