//! Second factors (TOTP credentials, recovery codes): the same SQL on every
//! backend, written once in `valet-store-sql`.

use valet_core::store::{MfaStore, TotpCredential};

use super::*;

valet_store_sql::shared_mfa_store! {
    store: PostgresStore,
    row: PgRow,
    connection: PgConnection,
    reader: pool,
    writer: pool,
}
