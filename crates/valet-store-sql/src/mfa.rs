//! The second-factor store (`MfaStore`): the same SQL on both backends.

/// Stamps `MfaStore` into a backend: `$store` with its write pool `$writer`
/// and read pool `$reader`, `$row` and `$conn` its row and connection types.
/// Names resolve where it is invoked, which must have in scope `MfaStore`,
/// `TotpCredential`, `StoreError`, `async_trait`, `sqlx`, this crate's helpers
/// and the backend's `begin_write(pool)`.
#[macro_export]
macro_rules! shared_mfa_store {
    (
        store: $store:ty,
        row: $row:ty,
        connection: $conn:ty,
        reader: $reader:ident,
        writer: $writer:ident $(,)?
    ) => {
        macro_rules! totp_columns {
            () => {
                "user_id, sealed_secret, sealed_recovery_codes, confirmed_at, last_step, created_at"
            };
        }

        fn totp_from_row(row: &$row) -> Result<TotpCredential, StoreError> {
            Ok(TotpCredential {
                user_id: get(row, "user_id")?,
                sealed_secret: get(row, "sealed_secret")?,
                sealed_recovery_codes: get(row, "sealed_recovery_codes")?,
                confirmed_at: get(row, "confirmed_at")?,
                last_step: get(row, "last_step")?,
                created_at: get(row, "created_at")?,
            })
        }

        async fn insert_recovery_codes_in(
            conn: &mut $conn,
            user_id: &str,
            hashes: &[Vec<u8>],
            now: i64,
        ) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await
                .map_err(query_error)?;
            for hash in hashes {
                sqlx::query(
                    "INSERT INTO recovery_codes (user_id, code_hash, used_at, created_at) \
                     VALUES ($1, $2, NULL, $3) ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(query_error)?;
            }
            Ok(())
        }

        async fn confirm_totp_in(
            conn: &mut $conn,
            user_id: &str,
            sealed_secret: &[u8],
            step: i64,
            recovery_hashes: &[Vec<u8>],
            now: i64,
        ) -> Result<bool, StoreError> {
            let confirmed = sqlx::query(
                "UPDATE totp_credentials SET confirmed_at = $3, last_step = $4, \
                 sealed_recovery_codes = NULL \
                 WHERE user_id = $1 AND sealed_secret = $2 AND confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(sealed_secret)
            .bind(now)
            .bind(step)
            .execute(&mut *conn)
            .await
            .map_err(query_error)?
            .rows_affected();
            if confirmed == 0 {
                return Ok(false);
            }
            insert_recovery_codes_in(conn, user_id, recovery_hashes, now).await?;
            Ok(true)
        }

        async fn replace_recovery_codes_in(
            conn: &mut $conn,
            user_id: &str,
            hashes: &[Vec<u8>],
            now: i64,
        ) -> Result<bool, StoreError> {
            let confirmed: Option<i64> = sqlx::query_scalar(
                "SELECT confirmed_at FROM totp_credentials \
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            )
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_error)?;
            if confirmed.is_none() {
                return Ok(false);
            }
            insert_recovery_codes_in(conn, user_id, hashes, now).await?;
            Ok(true)
        }

        async fn delete_second_factors_in(
            conn: &mut $conn,
            user_id: &str,
        ) -> Result<bool, StoreError> {
            let codes = sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await
                .map_err(query_error)?
                .rows_affected();
            let totp = sqlx::query("DELETE FROM totp_credentials WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await
                .map_err(query_error)?
                .rows_affected();
            Ok(codes + totp > 0)
        }

        #[async_trait]
        impl MfaStore for $store {
            async fn get_totp(&self, user_id: &str) -> Result<Option<TotpCredential>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    totp_columns!(),
                    " FROM totp_credentials WHERE user_id = $1"
                ))
                .bind(user_id)
                .fetch_optional(&self.$writer)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(totp_from_row)
                .transpose()
            }

            async fn begin_totp(&self, credential: &TotpCredential) -> Result<bool, StoreError> {
                let written = sqlx::query(concat!(
                    "INSERT INTO totp_credentials (",
                    totp_columns!(),
                    ") VALUES ($1, $2, $3, NULL, NULL, $4) \
                     ON CONFLICT (user_id) DO UPDATE SET \
                     sealed_secret = excluded.sealed_secret, \
                     sealed_recovery_codes = excluded.sealed_recovery_codes, \
                     created_at = excluded.created_at \
                     WHERE totp_credentials.confirmed_at IS NULL"
                ))
                .bind(&credential.user_id)
                .bind(&credential.sealed_secret)
                .bind(credential.sealed_recovery_codes.as_deref())
                .bind(credential.created_at)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(written > 0)
            }

            async fn confirm_totp(
                &self,
                user_id: &str,
                sealed_secret: &[u8],
                step: i64,
                recovery_hashes: &[Vec<u8>],
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome =
                    confirm_totp_in(&mut tx, user_id, sealed_secret, step, recovery_hashes, now)
                        .await;
                finish(tx, outcome).await
            }

            async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
                let accepted = sqlx::query(
                    "UPDATE totp_credentials SET last_step = $2 \
                     WHERE user_id = $1 AND confirmed_at IS NOT NULL \
                     AND (last_step IS NULL OR last_step < $2)",
                )
                .bind(user_id)
                .bind(step)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(accepted > 0)
            }

            async fn use_recovery_code(
                &self,
                user_id: &str,
                code_hash: &[u8],
                now: i64,
            ) -> Result<bool, StoreError> {
                let used = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 \
                     WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(code_hash)
                .bind(now)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(used > 0)
            }

            async fn replace_recovery_codes(
                &self,
                user_id: &str,
                hashes: &[Vec<u8>],
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = replace_recovery_codes_in(&mut tx, user_id, hashes, now).await;
                finish(tx, outcome).await
            }

            async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StoreError> {
                let left: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .fetch_one(&self.$reader)
                .await
                .map_err(query_error)?;
                Ok(u64::try_from(left).unwrap_or_default())
            }

            async fn delete_second_factors(&self, user_id: &str) -> Result<bool, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = delete_second_factors_in(&mut tx, user_id).await;
                finish(tx, outcome).await
            }
        }
    };
}
