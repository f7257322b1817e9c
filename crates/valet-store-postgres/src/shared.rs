//! The clients, keys, revocations, single-use records and audit trail: the same SQL on every
//! backend, written once in `valet-store-sql` and stamped here with PostgreSQL's types.

use valet_jose::Algorithm;
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use super::users::delete_client_in;
use super::*;

valet_store_sql::shared_stores! {
    store: PostgresStore,
    row: PgRow,
    connection: PgConnection,
    reader: pool,
    writer: pool,
}
