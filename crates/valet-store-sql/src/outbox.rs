//! The mail outbox's SQL, the same on both backends but for how a claim skips
//! rows another sender is claiming.

/// Stamps `OutboxStore` into a backend, with its types `$store` (pools
/// `$reader`, `$writer`) and `$row`. `$claim_lock` ends the subquery that picks
/// the rows a claim takes: PostgreSQL's `FOR UPDATE SKIP LOCKED`, so concurrent
/// senders on several nodes take disjoint rows without waiting for each other;
/// nothing on SQLite, whose one writer runs claims one after the other. Either
/// way the outer `UPDATE` checks the lease again, so a row is never handed to
/// two senders within one lease. Names resolve where it is invoked, which must
/// have in scope the store traits and records, `async_trait`, `sqlx`, this
/// crate's helpers and the backend's `begin_write(pool)`.
#[macro_export]
macro_rules! shared_outbox_store {
    (
        store: $store:ty,
        row: $row:ty,
        reader: $reader:ident,
        writer: $writer:ident,
        claim_lock: $claim_lock:literal $(,)?
    ) => {
        macro_rules! mail_columns {
            () => {
                "mail_id, sealed, attempts, next_attempt_at, created_at, finished_at, outcome"
            };
        }

        #[async_trait]
        impl OutboxStore for $store {
            async fn enqueue_mail(&self, mail: &OutboxMail) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO mail_outbox (mail_id, sealed, attempts, next_attempt_at, \
                     leased_until, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
                )
                .bind(&mail.mail_id)
                .bind(&mail.sealed)
                .bind(mail.attempts)
                .bind(mail.next_attempt_at)
                .bind(mail.created_at)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?;
                Ok(())
            }

            async fn claim_mail(
                &self,
                now: i64,
                leased_until: i64,
                limit: u32,
            ) -> Result<Vec<OutboxMail>, StoreError> {
                let rows = sqlx::query(concat!(
                    "UPDATE mail_outbox SET leased_until = $2, attempts = attempts + 1 \
                     WHERE mail_id IN (SELECT mail_id FROM mail_outbox \
                       WHERE finished_at IS NULL AND next_attempt_at <= $1 AND leased_until <= $1 \
                       ORDER BY next_attempt_at LIMIT $3 ",
                    $claim_lock,
                    ") AND finished_at IS NULL AND leased_until <= $1 RETURNING ",
                    mail_columns!()
                ))
                .bind(now)
                .bind(leased_until)
                .bind(i64::from(limit))
                .fetch_all(&self.$writer)
                .await
                .map_err(query_error)?;
                let mut mails = rows
                    .iter()
                    .map(mail_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                mails.sort_by_key(|mail| (mail.next_attempt_at, mail.created_at));
                Ok(mails)
            }

            async fn resolve_mail(
                &self,
                mail_id: &str,
                sealed: &[u8],
                token: Option<&SingleUse>,
            ) -> Result<bool, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = async {
                    let updated = sqlx::query(
                        "UPDATE mail_outbox SET sealed = $1 \
                         WHERE mail_id = $2 AND finished_at IS NULL",
                    )
                    .bind(sealed)
                    .bind(mail_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error)?
                    .rows_affected();
                    if updated == 0 {
                        return Ok(false);
                    }
                    if let Some(token) = token {
                        sqlx::query(
                            "INSERT INTO single_use (kind, key, payload, expires_at, consumed) \
                             VALUES ($1, $2, $3, $4, FALSE)",
                        )
                        .bind(token.kind.as_str())
                        .bind(&token.key)
                        .bind(&token.payload)
                        .bind(token.expires_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error)?;
                    }
                    Ok(true)
                }
                .await;
                finish(tx, outcome).await
            }

            async fn finish_mail(
                &self,
                mail_id: &str,
                outcome: MailOutcome,
                now: i64,
            ) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE mail_outbox SET sealed = NULL, finished_at = $1, outcome = $2, \
                     leased_until = 0 WHERE mail_id = $3 AND finished_at IS NULL",
                )
                .bind(now)
                .bind(outcome.as_str())
                .bind(mail_id)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn retry_mail(
                &self,
                mail_id: &str,
                next_attempt_at: i64,
            ) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE mail_outbox SET next_attempt_at = $1, leased_until = 0 \
                     WHERE mail_id = $2 AND finished_at IS NULL",
                )
                .bind(next_attempt_at)
                .bind(mail_id)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn get_mail(&self, mail_id: &str) -> Result<Option<OutboxMail>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    mail_columns!(),
                    " FROM mail_outbox WHERE mail_id = $1"
                ))
                .bind(mail_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(mail_from_row)
                .transpose()
            }

            async fn list_mail(&self, limit: u32) -> Result<Vec<OutboxMail>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    mail_columns!(),
                    " FROM mail_outbox ORDER BY created_at, mail_id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?;
                rows.iter().map(mail_from_row).collect()
            }

            async fn purge_mail(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
                let deleted = sqlx::query(
                    "DELETE FROM mail_outbox WHERE mail_id IN \
                     (SELECT mail_id FROM mail_outbox WHERE finished_at < $1 \
                      ORDER BY finished_at LIMIT $2)",
                )
                .bind(before)
                .bind(i64::from(limit))
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(deleted)
            }
        }

        fn mail_from_row(row: &$row) -> Result<OutboxMail, StoreError> {
            let outcome: Option<String> = get(row, "outcome")?;
            Ok(OutboxMail {
                mail_id: get(row, "mail_id")?,
                sealed: get::<Option<Vec<u8>>, _>(row, "sealed")?.unwrap_or_default(),
                attempts: get(row, "attempts")?,
                next_attempt_at: get(row, "next_attempt_at")?,
                created_at: get(row, "created_at")?,
                finished_at: get(row, "finished_at")?,
                outcome: outcome
                    .map(|name| parse_name("outcome", &name, MailOutcome::parse))
                    .transpose()?,
            })
        }
    };
}
