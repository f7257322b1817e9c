//! The passkey store: the same SQL on both backends.

/// Stamps `PasskeyStore` into a backend, with its `$store`, `$row`, and pools
/// `$reader` and `$writer`. Names resolve where it is invoked, which must have in
/// scope `PasskeyStore`, `PasskeyRecord`, `StoreError`, `async_trait`, `sqlx`
/// and this crate's helpers.
#[macro_export]
macro_rules! shared_passkey_store {
    (
        store: $store:ty,
        row: $row:ty,
        reader: $reader:ident,
        writer: $writer:ident $(,)?
    ) => {
        macro_rules! passkey_columns {
            () => {
                "credential_id, user_id, user_handle, name, passkey, sign_count, \
                 backup_eligible, backed_up, created_at, last_used_at"
            };
        }

        #[async_trait]
        impl PasskeyStore for $store {
            async fn insert_passkey(&self, passkey: &PasskeyRecord) -> Result<(), StoreError> {
                sqlx::query(concat!(
                    "INSERT INTO passkeys (",
                    passkey_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .bind(&passkey.credential_id)
                .bind(&passkey.user_id)
                .bind(&passkey.user_handle)
                .bind(&passkey.name)
                .bind(&passkey.passkey)
                .bind(passkey.sign_count)
                .bind(passkey.backup_eligible)
                .bind(passkey.backed_up)
                .bind(passkey.created_at)
                .bind(passkey.last_used_at)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?;
                Ok(())
            }

            async fn get_passkey(
                &self,
                credential_id: &[u8],
            ) -> Result<Option<PasskeyRecord>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    passkey_columns!(),
                    " FROM passkeys WHERE credential_id = $1"
                ))
                .bind(credential_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(passkey_from_row)
                .transpose()
            }

            async fn list_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    passkey_columns!(),
                    " FROM passkeys WHERE user_id = $1 ORDER BY created_at, credential_id"
                ))
                .bind(user_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?
                .iter()
                .map(passkey_from_row)
                .collect()
            }

            async fn record_passkey_use(&self, passkey: &PasskeyRecord) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE passkeys SET passkey = $1, sign_count = $2, backup_eligible = $3, \
                     backed_up = $4, last_used_at = $5 WHERE credential_id = $6 AND user_id = $7",
                )
                .bind(&passkey.passkey)
                .bind(passkey.sign_count)
                .bind(passkey.backup_eligible)
                .bind(passkey.backed_up)
                .bind(passkey.last_used_at)
                .bind(&passkey.credential_id)
                .bind(&passkey.user_id)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn delete_passkey(
                &self,
                user_id: &str,
                credential_id: &[u8],
            ) -> Result<bool, StoreError> {
                let deleted = sqlx::query(
                    "DELETE FROM passkeys WHERE credential_id = $1 AND user_id = $2",
                )
                .bind(credential_id)
                .bind(user_id)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(deleted > 0)
            }
        }

        fn passkey_from_row(row: &$row) -> Result<PasskeyRecord, StoreError> {
            Ok(PasskeyRecord {
                credential_id: get(row, "credential_id")?,
                user_id: get(row, "user_id")?,
                user_handle: get(row, "user_handle")?,
                name: get(row, "name")?,
                passkey: get(row, "passkey")?,
                sign_count: get(row, "sign_count")?,
                backup_eligible: get(row, "backup_eligible")?,
                backed_up: get(row, "backed_up")?,
                created_at: get(row, "created_at")?,
                last_used_at: get(row, "last_used_at")?,
            })
        }
    };
}
