//! GrantStore on PostgreSQL: grants, codes, refresh tokens.

use super::status::lock_status_revocations;
use super::*;

// ---------------------------------------------------------------------------------
// Grants, codes, refresh tokens
//
// A grant is live while `revoked_at IS NULL AND expires_at > now`; a code or
// refresh token of a dead grant is never redeemed or rotated. Revocation deletes
// the grant's refresh tokens and unconsumed codes but keeps consumed codes, so a
// replay after revocation is still reported as `Replayed` until the code is purged.
//
// Locking (READ COMMITTED): a revocation takes the grant's row lock with its first
// statement, and rotation, recording an access token and redeeming a code with its
// tokens take a share lock on the grant before anything else. So a revocation waits
// for a rotation or a recording in progress and then, statement by statement, sees
// what it committed (the successor token, the new jti); and one that starts after
// the revocation sees the grant revoked. Locks are always taken grant first, then
// its tokens, then (to revoke a status index) the status revocation lock (see the
// token status list below). A sign-in form's write (`form`) takes its user's and
// client's key-share locks before its consent's row, as deletions lock the user or
// client before their consents.

valet_store_sql::shared_grant_parts! {
    database: Postgres,
    row: PgRow,
    connection: PgConnection,
}

mod form;
use form::write_form_in;

valet_store_sql::shared_grant_store! {
    store: PostgresStore,
    reader: pool,
    writer: pool,
}

/// A new grant and its first code, in the caller's write: one statement, the
/// code selecting from the grant's insert.
async fn insert_grant_with_code_in(
    conn: &mut PgConnection,
    grant: &Grant,
    code: &AuthorizationCode,
) -> Result<(), StoreError> {
    let insert = sqlx::query(concat!(
        "WITH granted AS (INSERT INTO grants (",
        grant_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING 1) \
         INSERT INTO authorization_codes (",
        code_columns!(),
        ") SELECT $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24 FROM granted"
    ));
    bind_code(bind_grant(insert, grant)?, code)?
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    Ok(())
}

/// Redeems the code and, if this call did, records what was issued from it. The
/// code's grant is share-locked first (grant before its tokens, as everywhere
/// here): a revocation in progress is waited for and then seen by the
/// redemption, and one that starts now waits for this write and then sees its
/// records, so they need no carry-over.
async fn redeem_code_and_record_in(
    conn: &mut PgConnection,
    code_hash: &[u8],
    now: i64,
    jti: &str,
    expires_at: i64,
    refresh: Option<&RefreshToken>,
) -> Result<CodeRedemption, StoreError> {
    sqlx::query(
        "SELECT 1 FROM grants WHERE grant_id = \
         (SELECT grant_id FROM authorization_codes WHERE code_hash = $1) FOR SHARE",
    )
    .bind(code_hash)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    // One statement after the lock: the inserts select from the redemption's
    // result, so nothing is recorded for a code this call did not consume.
    macro_rules! redeem_and_record {
        ($($refresh:tt)*) => {
            concat!(
                "WITH consumed AS (",
                redeem_code!(),
                "), recorded AS (INSERT INTO grant_access_tokens (grant_id, jti, expires_at) \
                 SELECT grant_id, $3, $4 FROM consumed ON CONFLICT (grant_id, jti) DO NOTHING)",
                $($refresh)*
                " SELECT ",
                code_columns!(),
                " FROM consumed"
            )
        };
    }
    let sql = match refresh {
        Some(_) => redeem_and_record!(
            ", refreshed AS (INSERT INTO refresh_tokens (",
            refresh_columns!(),
            ") SELECT $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM consumed)",
        ),
        None => redeem_and_record!(),
    };
    redeem_and_record_with(conn, sql, code_hash, now, (jti, expires_at), refresh).await
}

/// The access token's record and the refresh token issued with it, in one write.
async fn record_issued_in(
    conn: &mut PgConnection,
    grant_id: &str,
    jti: &str,
    expires_at: i64,
    refresh: Option<&RefreshToken>,
) -> Result<(), StoreError> {
    record_access_token_in(&mut *conn, grant_id, jti, expires_at).await?;
    if let Some(refresh) = refresh {
        insert_refresh_token_in(&mut *conn, refresh).await?;
    }
    Ok(())
}

async fn record_access_token_in(
    conn: &mut PgConnection,
    grant_id: &str,
    jti: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    // Waits for a revocation of the grant in progress, and holds off one that
    // starts now until this commits (see the locking note above).
    sqlx::query("SELECT 1 FROM grants WHERE grant_id = $1 FOR SHARE")
        .bind(grant_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    insert_access_record_in(&mut *conn, grant_id, jti, expires_at).await?;
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
         SELECT $1, client_id, $2, revoked_at FROM grants \
         WHERE grant_id = $3 AND revoked_at IS NOT NULL \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at)
    .bind(grant_id)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}

/// The `jti` among the grant's access tokens, which a revocation of the grant
/// revokes too. The caller holds the grant's share lock.
async fn insert_access_record_in(
    conn: &mut PgConnection,
    grant_id: &str,
    jti: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grant_access_tokens (grant_id, jti, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (grant_id, jti) DO NOTHING",
    )
    .bind(grant_id)
    .bind(jti)
    .bind(expires_at)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    Ok(())
}

/// Marks a live token rotated, returning it as it was, and inserts its successor
/// (`$4`–`$12`) and the access token's record (`$13`, `$14`) only if it did: the
/// inserts select from the `UPDATE`'s result, so one statement does what four
/// round trips did.
macro_rules! rotate_refresh {
    ($record:literal) => {
        concat!(
            "WITH rotated AS (\
               UPDATE refresh_tokens SET rotated_at = $1, sealed_successor = $2 \
               WHERE token_hash = $3 AND rotated_at IS NULL AND expires_at > $1 \
               RETURNING ",
            refresh_columns!(),
            "), successor AS (INSERT INTO refresh_tokens (",
            refresh_columns!(),
            ") SELECT $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM rotated)",
            $record,
            " SELECT ",
            refresh_columns!(),
            " FROM rotated"
        )
    };
}

/// Concurrent calls for one token all take the share lock on its grant, then race
/// for the token's row lock in the conditional `UPDATE`. The winner updates and
/// inserts its successor; the others wait for it to commit, find `rotated_at` set
/// when PostgreSQL re-checks the condition (so their inserts select nothing), and
/// read the token back with a fresh statement, which sees the winner's rotation.
async fn rotate_refresh_token_in(
    conn: &mut PgConnection,
    presented_hash: &[u8],
    successor: &RefreshToken,
    sealed_successor: Option<&[u8]>,
    access_token: Option<(&str, i64)>,
    now: i64,
) -> Result<Rotation, StoreError> {
    let grant = sqlx::query(concat!(
        "SELECT ",
        grant_columns!(),
        " FROM grants WHERE grant_id = \
          (SELECT grant_id FROM refresh_tokens WHERE token_hash = $1) FOR SHARE"
    ))
    .bind(presented_hash)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error)?
    .as_ref()
    .map(grant_from_row)
    .transpose()?;
    let Some(grant) = grant else {
        return Ok(Rotation::Unknown);
    };
    if grant.revoked_at.is_some() || grant.expires_at <= now {
        return Ok(Rotation::Unknown);
    }

    // The grant's share lock is held since it was read live above, so no
    // revocation can have happened since or start before this commits: the
    // access token's record needs neither the lock nor the carry-over of
    // `record_access_token_in`.
    let sql = match access_token {
        Some(_) => rotate_refresh!(
            ", recorded AS (INSERT INTO grant_access_tokens (grant_id, jti, expires_at) \
             SELECT grant_id, $13, $14 FROM rotated ON CONFLICT (grant_id, jti) DO NOTHING)"
        ),
        None => rotate_refresh!(""),
    };
    let query = bind_rotation(
        sql,
        (presented_hash, now),
        successor,
        sealed_successor,
        access_token,
    )?;
    let rotated = query
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_error)?;
    if let Some(row) = rotated {
        // The row as it was: the update required `rotated_at IS NULL`, and the
        // sealed successor is only ever written together with it.
        let previous = RefreshToken {
            rotated_at: None,
            sealed_successor: None,
            ..refresh_from_row(&row)?
        };
        return Ok(Rotation::Rotated { previous });
    }

    let stored = get_refresh_token_in(&mut *conn, presented_hash).await?;
    Ok(match stored {
        Some(previous) if previous.rotated_at.is_some() && previous.expires_at > now => {
            Rotation::AlreadyRotated {
                previous,
                grant: Box::new(grant),
            }
        }
        _ => Rotation::Unknown,
    })
}

/// Deletes the consent and revokes the user's live grants to the client, one
/// by one (each as [`revoke_in`] revokes a grant).
async fn revoke_consent_in(
    conn: &mut PgConnection,
    user_id: &str,
    client_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
        .bind(user_id)
        .bind(client_id)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    let grants: Vec<String> = sqlx::query_scalar(
        "SELECT grant_id FROM grants WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
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

/// Revokes the not-yet-revoked grants selected by `which`; returns how many. Each
/// step is its own statement, so each sees what a rotation or recording that held
/// the grant's lock before the first one committed. The status index of each (if
/// it has one) is revoked until its last access token has expired, unless that
/// moment has passed already, as unexpired jtis are; last, so that the status lock
/// is held only until the commit.
async fn revoke_in(
    conn: &mut PgConnection,
    which: GrantsOf<'_>,
    now: i64,
) -> Result<u64, StoreError> {
    let (sql, key) = match which {
        GrantsOf::Grant(id) => (
            "UPDATE grants SET revoked_at = $1 \
             WHERE grant_id = $2 AND revoked_at IS NULL RETURNING grant_id, status_idx",
            id,
        ),
        GrantsOf::Session(sid) => (
            "UPDATE grants SET revoked_at = $1 \
             WHERE sid = $2 AND revoked_at IS NULL RETURNING grant_id, status_idx",
            sid,
        ),
        GrantsOf::User(user_id) => (
            "UPDATE grants SET revoked_at = $1 \
             WHERE user_id = $2 AND revoked_at IS NULL RETURNING grant_id, status_idx",
            user_id,
        ),
        GrantsOf::Client(client_id) => (
            "UPDATE grants SET revoked_at = $1 \
             WHERE client_id = $2 AND revoked_at IS NULL RETURNING grant_id, status_idx",
            client_id,
        ),
    };
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(sql)
        .bind(now)
        .bind(key)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_error)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let any_status_idx = rows.iter().any(|(_, status_idx)| status_idx.is_some());
    let revoked: Vec<String> = rows.into_iter().map(|(grant_id, _)| grant_id).collect();

    sqlx::query(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
         SELECT a.jti, g.client_id, a.expires_at, $1 \
         FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
         WHERE a.grant_id = ANY($2) AND a.expires_at > $1 \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(now)
    .bind(&revoked)
    .execute(&mut *conn)
    .await
    .map_err(query_error)?;
    sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = ANY($1)")
        .bind(&revoked)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    sqlx::query("DELETE FROM authorization_codes WHERE grant_id = ANY($1) AND consumed_at IS NULL")
        .bind(&revoked)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    if any_status_idx {
        lock_status_revocations(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + $2, $1 FROM grants \
             WHERE grant_id = ANY($3) AND status_idx IS NOT NULL AND expires_at + $2 > $1 \
             ORDER BY status_idx",
        )
        .bind(now)
        .bind(MAX_ACCESS_TOKEN_TTL)
        .bind(&revoked)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    }
    Ok(u64::try_from(revoked.len()).unwrap_or(u64::MAX))
}

/// Before a user or client is deleted (and its grants with it, by cascade): locks
/// its not-yet-revoked grants, so no access token can be recorded under them any
/// more, then revokes their recorded access tokens and their status indices (those
/// of revoked grants were revoked with the grant), each index until the grant's
/// last access token has expired, as [`GrantStore::revoke_grant`] does. The deletes
/// take no `now`, so the informational `revoked_at` comes from the database clock
/// and no expiry filter is applied (records of expired tokens are purged like any
/// other). This is the only clock the store reads, and nothing is decided by it.
pub(super) async fn revoke_access_tokens_before_delete(
    conn: &mut PgConnection,
    owner: Owner<'_>,
) -> Result<(), StoreError> {
    let (lock, revoke, revoke_status, key) = match owner {
        Owner::User(user_id) => (
            "SELECT status_idx FROM grants WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY grant_id FOR UPDATE",
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             SELECT a.jti, g.client_id, a.expires_at, \
                    floor(extract(epoch FROM statement_timestamp()))::bigint \
             FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
             WHERE g.user_id = $1 AND g.revoked_at IS NULL \
             ON CONFLICT (jti) DO NOTHING",
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + $2, \
                    floor(extract(epoch FROM statement_timestamp()))::bigint \
             FROM grants \
             WHERE user_id = $1 AND revoked_at IS NULL AND status_idx IS NOT NULL \
             ORDER BY status_idx",
            user_id,
        ),
        Owner::Client(client_id) => (
            "SELECT status_idx FROM grants WHERE client_id = $1 AND revoked_at IS NULL \
             ORDER BY grant_id FOR UPDATE",
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             SELECT a.jti, g.client_id, a.expires_at, \
                    floor(extract(epoch FROM statement_timestamp()))::bigint \
             FROM grant_access_tokens a JOIN grants g ON g.grant_id = a.grant_id \
             WHERE g.client_id = $1 AND g.revoked_at IS NULL \
             ON CONFLICT (jti) DO NOTHING",
            "INSERT INTO status_revocations (start, end_idx, expires_at, revoked_at) \
             SELECT status_idx, status_idx + 1, expires_at + $2, \
                    floor(extract(epoch FROM statement_timestamp()))::bigint \
             FROM grants \
             WHERE client_id = $1 AND revoked_at IS NULL AND status_idx IS NOT NULL \
             ORDER BY status_idx",
            client_id,
        ),
    };
    let status_indices: Vec<Option<i64>> = sqlx::query_scalar(lock)
        .bind(key)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_error)?;
    sqlx::query(revoke)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    if status_indices.iter().any(Option::is_some) {
        lock_status_revocations(&mut *conn).await?;
        sqlx::query(revoke_status)
            .bind(key)
            .bind(MAX_ACCESS_TOKEN_TTL)
            .execute(&mut *conn)
            .await
            .map_err(query_error)?;
    }
    Ok(())
}
