//! The clients, keys, revocations, single-use records and audit trail: the same SQL on every
//! backend, written once in `valet-store-sql` and stamped here with SQLite's types.

use valet_jose::Algorithm;
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use super::users::delete_client_in;
use super::*;

valet_store_sql::shared_stores! {
    store: SqliteStore,
    row: SqliteRow,
    connection: SqliteConnection,
    reader: reader,
    writer: writer,
}
