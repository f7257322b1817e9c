//! GrantStore on SQLite: grants, codes, refresh tokens.
//!
//! Statements that always run together are sent as one query: each query is a
//! hand-off to the connection's thread and back, which costs more than the
//! statements it carries. sqlx binds `?N` (and `$N`) by number across the
//! statements of a query.

use super::*;

// ---------------------------------------------------------------------------------
// Grants, codes, refresh tokens
//
// A grant is live while `revoked_at IS NULL AND expires_at > now`; a code or
// refresh token of a dead grant is never redeemed or rotated. Revocation deletes
// the grant's refresh tokens and unconsumed codes but keeps consumed codes, so a
// replay after revocation is still reported as `Replayed` until the code is purged.

valet_store_sql::shared_grant_parts! {
    database: Sqlite,
    row: SqliteRow,
    connection: SqliteConnection,
}

mod form;
use form::write_form_in;

valet_store_sql::shared_grant_store! {
    store: SqliteStore,
    reader: reader,
    writer: writer,
}

/// A new grant and its first code, in the caller's write: one query.
async fn insert_grant_with_code_in(
    conn: &mut SqliteConnection,
    grant: &Grant,
    code: &AuthorizationCode,
) -> Result<(), StoreError> {
    let query = sqlx::query(concat!(
        "INSERT INTO grants (",
        grant_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12);",
        "INSERT INTO authorization_codes (",
        code_columns!(),
        ") VALUES (?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24);"
    ));
    bind_code(bind_grant(query, grant)?, code)?
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    Ok(())
}

/// [`redeem_code_in`] (`redeem_code!`: `$1` now, `$2` the code's hash) and,
/// only if it consumed the code, the refresh token (`?5`–`?13`) and the access
/// token's record (`?3`, `?4`) in the same query (sqlx binds `$N` and `?N` alike,
/// by number):
/// each insert runs only if the statement before it changed a row (SQLite's
/// `changes()`). The grant was live at the update and nothing else writes
/// before this commits: no revocation to carry over, unlike `record_issued_in`.
async fn redeem_code_and_record_in(
    conn: &mut SqliteConnection,
    code_hash: &[u8],
    now: i64,
    jti: &str,
    expires_at: i64,
    refresh: Option<&RefreshToken>,
) -> Result<CodeRedemption, StoreError> {
    macro_rules! record_access_of_code {
        () => {
            "INSERT INTO grant_access_tokens (grant_id, jti, expires_at) \
             SELECT grant_id, ?3, ?4 FROM authorization_codes \
             WHERE code_hash = ?2 AND changes() = 1 \
             ON CONFLICT (grant_id, jti) DO NOTHING;"
        };
    }
    let sql = match refresh {
        Some(_) => concat!(
            redeem_code!(),
            ";INSERT INTO refresh_tokens (",
            refresh_columns!(),
            ") SELECT ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 WHERE changes() = 1;",
            record_access_of_code!()
        ),
        None => concat!(redeem_code!(), ";", record_access_of_code!()),
    };
    redeem_and_record_with(conn, sql, code_hash, now, (jti, expires_at), refresh).await
}

/// The access token's record, revoked at once if its grant already is (a
/// revocation that committed between the grant's read and this write), and the
/// refresh token issued with it (`?4`–`?12`): one query.
async fn record_issued_in(
    conn: &mut SqliteConnection,
    grant_id: &str,
    jti: &str,
    expires_at: i64,
    refresh: Option<&RefreshToken>,
) -> Result<(), StoreError> {
    macro_rules! record_access {
        () => {
            "INSERT INTO grant_access_tokens (grant_id, jti, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (grant_id, jti) DO NOTHING; \
             INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             SELECT ?2, client_id, ?3, revoked_at FROM grants \
             WHERE grant_id = ?1 AND revoked_at IS NOT NULL \
             ON CONFLICT (jti) DO NOTHING;"
        };
    }
    let sql = match refresh {
        Some(_) => concat!(
            record_access!(),
            "INSERT INTO refresh_tokens (",
            refresh_columns!(),
            ") VALUES (?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12);"
        ),
        None => record_access!(),
    };
    let query = sqlx::query(sql).bind(grant_id).bind(jti).bind(expires_at);
    let query = match refresh {
        Some(token) => bind_refresh_token(query, token)?,
        None => query,
    };
    query.execute(&mut *conn).await.map_err(query_error)?;
    Ok(())
}

/// Marks a live token of a live grant rotated, returning it, and inserts its
/// successor if it did.
macro_rules! rotate_refresh {
    () => {
        concat!(
            "UPDATE refresh_tokens SET rotated_at = ?1, sealed_successor = ?2 \
             WHERE token_hash = ?3 AND rotated_at IS NULL AND expires_at > ?1 \
             AND EXISTS (SELECT 1 FROM grants g WHERE g.grant_id = refresh_tokens.grant_id \
                         AND g.revoked_at IS NULL AND g.expires_at > ?1) \
             RETURNING ",
            refresh_columns!(),
            ";INSERT INTO refresh_tokens (",
            refresh_columns!(),
            ") SELECT ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 WHERE changes() = 1;"
        )
    };
}

/// Runs inside `BEGIN IMMEDIATE` on the one writer: nothing else writes until
/// it commits, so the grant the `UPDATE` finds live stays live until then. The
/// grant is read only when the token does not rotate, to tell a reuse from an
/// unknown token.
async fn rotate_refresh_token_in(
    conn: &mut SqliteConnection,
    presented_hash: &[u8],
    successor: &RefreshToken,
    sealed_successor: Option<&[u8]>,
    access_token: Option<(&str, i64)>,
    now: i64,
) -> Result<Rotation, StoreError> {
    // One query: the update, then the successor (`?4`–`?12`) and the access
    // token's record (`?13`, `?14`) only if the update changed the row: SQLite's
    // `changes()` is the row count of the statement completed just before, so
    // each insert runs only if the one before it did. The grant was live at the
    // update and nothing else writes before this commits: no revocation to
    // carry over to the jti, unlike `record_issued_in`.
    let sql = match access_token {
        Some(_) => concat!(
            rotate_refresh!(),
            "INSERT INTO grant_access_tokens (grant_id, jti, expires_at) \
             SELECT grant_id, ?13, ?14 FROM refresh_tokens \
             WHERE token_hash = ?3 AND changes() = 1 \
             ON CONFLICT (grant_id, jti) DO NOTHING;"
        ),
        None => rotate_refresh!(),
    };
    let query = bind_rotation(
        sql,
        (presented_hash, now),
        successor,
        sealed_successor,
        access_token,
    )?;
    let rotated = query.fetch_all(&mut *conn).await.map_err(query_error)?;
    if let Some(row) = rotated.first() {
        // The row as it was: the update required `rotated_at IS NULL`, and the
        // sealed successor is only ever written together with it.
        let previous = RefreshToken {
            rotated_at: None,
            sealed_successor: None,
            ..refresh_from_row(row)?
        };
        return Ok(Rotation::Rotated { previous });
    }

    let Some(RefreshFamily {
        token: stored,
        grant,
        ..
    }) = get_refresh_family_in(&mut *conn, presented_hash).await?
    else {
        return Ok(Rotation::Unknown);
    };
    let live = grant.revoked_at.is_none() && grant.expires_at > now;
    Ok(
        if live && stored.rotated_at.is_some() && stored.expires_at > now {
            Rotation::AlreadyRotated {
                previous: stored,
                grant: Box::new(grant),
            }
        } else {
            Rotation::Unknown
        },
    )
}

/// Deletes the consent and revokes the user's live grants to the client, one
/// by one (each as [`revoke_in`] revokes a grant).
async fn revoke_consent_in(
    conn: &mut SqliteConnection,
    user_id: &str,
    client_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    sqlx::query("DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2")
        .bind(user_id)
        .bind(client_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    let grants: Vec<String> = sqlx::query_scalar(
        "SELECT grant_id FROM grants WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(client_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(query_error)?;
    let mut revoked = 0;
    for grant_id in &grants {
        revoked += revoke_in(conn, GrantsOf::Grant(grant_id), now).await?;
    }
    Ok(revoked)
}

/// Revokes the not-yet-revoked grants selected by `which`; returns how many. The
/// status index of each (if it has one) is revoked until its last access token
/// has expired, unless that moment has passed already, as unexpired jtis are.
async fn revoke_in(
    conn: &mut SqliteConnection,
    which: GrantsOf<'_>,
    now: i64,
) -> Result<u64, StoreError> {
    let (sql, key) = match which {
        GrantsOf::Grant(id) => (
            "UPDATE grants SET revoked_at = ?1 \
             WHERE grant_id = ?2 AND revoked_at IS NULL RETURNING grant_id",
            id,
        ),
        GrantsOf::Session(sid) => (
            "UPDATE grants SET revoked_at = ?1 \
             WHERE sid = ?2 AND revoked_at IS NULL RETURNING grant_id",
            sid,
        ),
        GrantsOf::User(user_id) => (
            "UPDATE grants SET revoked_at = ?1 \
             WHERE user_id = ?2 AND revoked_at IS NULL RETURNING grant_id",
            user_id,
        ),
        GrantsOf::Client(client_id) => (
            "UPDATE grants SET revoked_at = ?1 \
             WHERE client_id = ?2 AND revoked_at IS NULL RETURNING grant_id",
            client_id,
        ),
    };
    let revoked: Vec<String> = sqlx::query_scalar(sql)
        .bind(now)
        .bind(key)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_error)?;
    if revoked.is_empty() {
        return Ok(0);
    }
    // The ids as a JSON array, expanded by `json_each`: SQLite has no array binds.
    let ids = to_json(&revoked)?;

    sqlx::query(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
         SELECT a.jti, g.client_id, a.expires_at, ?1 \
         FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
         WHERE a.grant_id IN (SELECT value FROM json_each(?2)) AND a.expires_at > ?1 \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(now)
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    sqlx::query("DELETE FROM refresh_tokens WHERE grant_id IN (SELECT value FROM json_each(?))")
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    sqlx::query(
        "DELETE FROM authorization_codes \
         WHERE grant_id IN (SELECT value FROM json_each(?)) AND consumed_at IS NULL",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    sqlx::query(
        "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
         SELECT status_idx, status_idx + 1, expires_at + ?2, ?1 FROM grants \
         WHERE grant_id IN (SELECT value FROM json_each(?3)) AND status_idx IS NOT NULL \
         AND expires_at + ?2 > ?1 \
         ORDER BY status_idx",
    )
    .bind(now)
    .bind(MAX_ACCESS_TOKEN_TTL)
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(u64::try_from(revoked.len()).unwrap_or(u64::MAX))
}

/// Before a user or client is deleted (and its grants with it, by cascade):
/// revokes the recorded access tokens and the status indices of its
/// not-yet-revoked grants (those of revoked grants were revoked with the grant),
/// each index until the grant's last access token has expired, as
/// [`GrantStore::revoke_grant`] does. The deletes take no `now`, so the
/// informational `revoked_at` comes from the database clock and no expiry filter is
/// applied (records of expired tokens are purged like any other). This is the only
/// clock the store reads, and nothing is decided by it.
pub(super) async fn revoke_access_tokens_before_delete(
    conn: &mut SqliteConnection,
    owner: Owner<'_>,
) -> Result<(), StoreError> {
    let (status_sql, key) = match owner {
        Owner::User(user_id) => (
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + ?2, unixepoch() FROM grants \
             WHERE user_id = ?1 AND revoked_at IS NULL AND status_idx IS NOT NULL \
             ORDER BY status_idx",
            user_id,
        ),
        Owner::Client(client_id) => (
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + ?2, unixepoch() FROM grants \
             WHERE client_id = ?1 AND revoked_at IS NULL AND status_idx IS NOT NULL \
             ORDER BY status_idx",
            client_id,
        ),
    };
    sqlx::query(status_sql)
        .bind(key)
        .bind(MAX_ACCESS_TOKEN_TTL)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;

    let (sql, key) = match owner {
        Owner::User(user_id) => (
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             SELECT a.jti, g.client_id, a.expires_at, unixepoch() \
             FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
             WHERE g.user_id = ? AND g.revoked_at IS NULL \
             ON CONFLICT (jti) DO NOTHING",
            user_id,
        ),
        Owner::Client(client_id) => (
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             SELECT a.jti, g.client_id, a.expires_at, unixepoch() \
             FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
             WHERE g.client_id = ? AND g.revoked_at IS NULL \
             ON CONFLICT (jti) DO NOTHING",
            client_id,
        ),
    };
    sqlx::query(sql)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    Ok(())
}
