//! Clients, keys, revocations, users, sessions, single-use records, the mail
//! outbox, passkeys and the audit trail: the same SQL on every backend, written
//! once in `valet-store-sql`
//! and stamped here with SQLite's types.

use valet_core::store::UserPageQuery;
use valet_jose::Algorithm;
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use super::grants::{Owner, revoke_access_tokens_before_delete};
use super::sessions::add_consent_to;
use super::users::delete_client_in;
use super::*;

valet_store_sql::shared_stores! {
    store: SqliteStore,
    row: SqliteRow,
    connection: SqliteConnection,
    reader: reader,
    writer: writer,
    // SQLite's `lower` folds ASCII case only.
    login_match: "username = $1 OR lower(email) = lower($1) ORDER BY username = $1 DESC LIMIT 1",
    greatest: "max",
    audit_actor: "(CASE WHEN json_type(detail, '$.actor') = 'text' \
                  THEN json_extract(detail, '$.actor') END)",
    lower_username: "lower(username)",
    lower_email: "lower(email)",
}

valet_store_sql::shared_outbox_store! {
    store: SqliteStore,
    row: SqliteRow,
    reader: reader,
    writer: writer,
    // One writer runs claims one after the other.
    claim_lock: "",
}

valet_store_sql::shared_passkey_store! {
    store: SqliteStore,
    row: SqliteRow,
    reader: reader,
    writer: writer,
}

valet_store_sql::shared_upstream_store! {
    store: SqliteStore,
    row: SqliteRow,
    reader: reader,
    writer: writer,
}
