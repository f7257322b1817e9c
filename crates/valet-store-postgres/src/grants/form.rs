//! A sign-in form's writes ([`FormWrite`]) on PostgreSQL, in the group
//! commit's transaction, one statement after the other (PostgreSQL takes no
//! multi-statement queries with parameters). The interaction's change comes
//! first: when it is refused, nothing has been written.
//!
//! Lock order: a consent's row is locked only after the key-share locks on
//! its user and client, the order the foreign keys of a new consent or grant
//! take them in. Deleting a client or a user locks its row, then its consents
//! (by cascade); taking the consent's row first could deadlock against it.

use valet_core::store::{FormWrite, FormWritten, InteractionChange, SessionStart, interaction_key};

use super::*;
use crate::sessions::add_consent_in;
use crate::shared::insert_session_in;

pub(super) async fn write_form_in(
    conn: &mut PgConnection,
    write: &FormWrite,
) -> Result<FormWritten, StoreError> {
    if let Some(change) = &write.interaction
        && !change_interaction_in(conn, change).await?
    {
        return Ok(FormWritten::Refused);
    }
    if let Some(start) = &write.session {
        start_session_in(conn, start).await?;
    }
    let interaction = SingleUseKind::Interaction.as_str();
    if let Some(next) = &write.next {
        sqlx::query(
            "INSERT INTO single_use (kind, key, payload, expires_at, consumed) \
             VALUES ($1, $2, $3, $4, FALSE)",
        )
        .bind(interaction)
        .bind(interaction_key(&next.interaction_id).to_vec())
        .bind(&next.payload)
        .bind(next.expires_at)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
    }
    if let Some(consent) = &write.consent {
        let (user, client) = (&consent.user_id, &consent.client_id);
        sqlx::query(
            "SELECT 1 FROM users u, clients c \
             WHERE u.user_id = $1 AND c.client_id = $2 FOR KEY SHARE",
        )
        .bind(user)
        .bind(client)
        .execute(&mut *conn)
        .await
        .map_err(query_error)?;
        add_consent_in(conn, user, client, &consent.scopes, consent.now).await?;
    }
    if let Some((grant, code)) = &write.grant
        && !insert_grant_with_code_if(conn, grant, code, GrantFor::EnabledUser).await?
    {
        return Ok(FormWritten::UserDisabled);
    }
    Ok(FormWritten::Written)
}

/// The form's change to its interaction; whether the interaction took it.
async fn change_interaction_in(
    conn: &mut PgConnection,
    change: &InteractionChange,
) -> Result<bool, StoreError> {
    let interaction = SingleUseKind::Interaction.as_str();
    let key = interaction_key(change.interaction_id()).to_vec();
    let query = match change {
        InteractionChange::Remember(record) => sqlx::query(
            "INSERT INTO single_use (kind, key, payload, expires_at, consumed) \
             VALUES ($1, $2, $3, $4, FALSE) ON CONFLICT (kind, key) DO NOTHING",
        )
        .bind(interaction)
        .bind(&key)
        .bind(&record.payload)
        .bind(record.expires_at),
        InteractionChange::Update(record) => sqlx::query(
            "UPDATE single_use SET payload = $3 \
             WHERE kind = $1 AND key = $2 AND NOT consumed",
        )
        .bind(interaction)
        .bind(&key)
        .bind(&record.payload),
        InteractionChange::Complete(_) => sqlx::query(
            "UPDATE single_use SET consumed = TRUE \
             WHERE kind = $1 AND key = $2 AND NOT consumed",
        )
        .bind(interaction)
        .bind(&key),
    };
    let changed = query
        .execute(&mut *conn)
        .await
        .map_err(query_error)?
        .rows_affected();
    Ok(changed == 1)
}

/// The session a sign-in starts, and the end of the browser's old one.
async fn start_session_in(conn: &mut PgConnection, start: &SessionStart) -> Result<(), StoreError> {
    insert_session_in(conn, &start.session).await?;
    if let Some(old) = &start.ends {
        sqlx::query("DELETE FROM sessions WHERE session_hash = $1")
            .bind(old)
            .execute(&mut *conn)
            .await
            .map_err(query_error)?;
    }
    Ok(())
}
