//! Clients, keys, revocations, users, sessions, single-use records, the mail
//! outbox, passkeys and the audit trail: the same SQL on every backend, written
//! once in `valet-store-sql`
//! and stamped here with PostgreSQL's types.

use valet_core::store::UserPageQuery;
use valet_jose::Algorithm;
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use super::grants::{Owner, revoke_access_tokens_before_delete};
use super::sessions::add_consent_to;
use super::users::delete_client_in;
use super::*;

valet_store_sql::shared_stores! {
    store: PostgresStore,
    row: PgRow,
    connection: PgConnection,
    reader: pool,
    writer: pool,
    // `lower` under the "C" collation folds ASCII case only, as SQLite's does,
    // whatever the database's locale; it is the `users_email` index's expression.
    login_match: "username = $1 OR lower(email) = lower($1::text COLLATE \"C\") \
                  ORDER BY (username = $1) DESC LIMIT 1",
    greatest: "GREATEST",
    // `detail` is TEXT holding a JSON object; `->>` would turn a number into
    // text too, so only a string member counts.
    audit_actor: "(CASE WHEN jsonb_typeof(detail::jsonb -> 'actor') = 'string' \
                  THEN detail::jsonb ->> 'actor' END)",
    // Under the "C" collation `lower` folds ASCII only, as SQLite's does.
    lower_username: "lower(username COLLATE \"C\")",
    lower_email: "lower(email COLLATE \"C\")",
}

valet_store_sql::shared_outbox_store! {
    store: PostgresStore,
    row: PgRow,
    reader: pool,
    writer: pool,
    // Concurrent senders skip the rows another is claiming instead of waiting.
    claim_lock: "FOR UPDATE SKIP LOCKED",
}

valet_store_sql::shared_passkey_store! {
    store: PostgresStore,
    row: PgRow,
    reader: pool,
    writer: pool,
}

valet_store_sql::shared_upstream_store! {
    store: PostgresStore,
    row: PgRow,
    reader: pool,
    writer: pool,
}
