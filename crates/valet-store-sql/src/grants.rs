//! The parts of the grant store that are the same on both backends: the SQL of
//! its inserts, lookups and purge, and the `GrantStore` glue over them.

/// Stamps into a backend's grant module the column lists (`grant_columns!`,
/// `code_columns!`, `refresh_columns!`), the row decoders, the inserts, the
/// lookups and the purge, with its types `$db`, `$row` and `$conn`. The
/// redemption, rotation, recording and revocation stay in the backend: how they
/// lock is what makes them right (SQLite's one writer, PostgreSQL's row and
/// advisory locks), and they keep exactly their statements.
#[macro_export]
macro_rules! shared_grant_parts {
    (
        database: $db:ty,
        row: $row:ty,
        connection: $conn:ty $(,)?
    ) => {
        macro_rules! grant_columns {
            () => {
                "grant_id, client_id, user_id, scope, sid, auth_time, amr, created_at, expires_at, \
                 revoked_at, status_idx, resources"
            };
        }

        macro_rules! code_columns {
            () => {
                "code_hash, grant_id, client_id, redirect_uri, code_challenge, nonce, scope, \
                 resources, created_at, expires_at, consumed_at, dpop_jkt"
            };
        }

        /// What a family read (`get_code_family_in`, `get_refresh_family_in`)
        /// takes from the grant `g` under its own column names, and whether its
        /// user may get tokens.
        macro_rules! family_columns {
            () => {
                "g.grant_id, g.client_id, g.user_id, g.scope, g.sid, g.auth_time, g.amr, \
                 g.created_at, g.expires_at, g.revoked_at, g.status_idx, g.resources, \
                 EXISTS (SELECT 1 FROM users u \
                         WHERE u.user_id = g.user_id AND NOT u.disabled) AS user_enabled"
            };
        }

        /// Consumes a live, unconsumed code of a live grant (`$1` now, `$2` its
        /// hash), returning it; the same statement on both backends.
        macro_rules! redeem_code {
            () => {
                concat!(
                    "UPDATE authorization_codes SET consumed_at = $1 \
                     WHERE code_hash = $2 AND consumed_at IS NULL AND expires_at > $1 \
                     AND EXISTS (SELECT 1 FROM grants g \
                                 WHERE g.grant_id = authorization_codes.grant_id \
                                 AND g.revoked_at IS NULL AND g.expires_at > $1) \
                     RETURNING ",
                    code_columns!()
                )
            };
        }

        macro_rules! refresh_columns {
            () => {
                "token_hash, grant_id, client_id, scope, created_at, expires_at, rotated_at, \
                 sealed_successor, dpop_jkt"
            };
        }

        /// Which grants a revocation is about.
        #[derive(Debug, Clone, Copy)]
        pub(super) enum GrantsOf<'a> {
            Grant(&'a str),
            Session(&'a str),
            User(&'a str),
            Client(&'a str),
        }

        /// Whose deletion cascades to grants.
        #[derive(Debug, Clone, Copy)]
        pub(super) enum Owner<'a> {
            User(&'a str),
            Client(&'a str),
        }

        /// The grant with this id, revoked or not.
        pub(super) async fn get_grant_in<'e, E>(executor: E, grant_id: &str) -> Result<Option<Grant>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE grant_id = $1"
            ))
            .bind(grant_id)
            .fetch_optional(executor)
            .await
            .map_err(query_error)?
            .as_ref()
            .map(grant_from_row)
            .transpose()
        }

        /// The (first) grant holding this status list index.
        pub(super) async fn grant_by_status_idx_in<'e, E>(
            executor: E,
            status_idx: i64,
        ) -> Result<Option<Grant>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE status_idx = $1 ORDER BY created_at LIMIT 1"
            ))
            .bind(status_idx)
            .fetch_optional(executor)
            .await
            .map_err(query_error)?
            .as_ref()
            .map(grant_from_row)
            .transpose()
        }

        /// The live grants of a user or a client, oldest first.
        pub(super) async fn list_live_grants_in<'e, E>(
            executor: E,
            owner: Owner<'_>,
            now: i64,
        ) -> Result<Vec<Grant>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let (sql, key) = match owner {
                Owner::User(user_id) => (
                    concat!(
                        "SELECT ",
                        grant_columns!(),
                        " FROM grants WHERE user_id = $1 AND revoked_at IS NULL \
                         AND expires_at > $2 ORDER BY created_at, grant_id"
                    ),
                    user_id,
                ),
                Owner::Client(client_id) => (
                    concat!(
                        "SELECT ",
                        grant_columns!(),
                        " FROM grants WHERE client_id = $1 AND revoked_at IS NULL \
                         AND expires_at > $2 ORDER BY created_at, grant_id"
                    ),
                    client_id,
                ),
            };
            sqlx::query(sql)
                .bind(key)
                .bind(now)
                .fetch_all(executor)
                .await
                .map_err(query_error)?
                .iter()
                .map(grant_from_row)
                .collect()
        }

        /// The authorization code with this hash, whatever its state.
        pub(super) async fn get_code_in<'e, E>(
            executor: E,
            code_hash: &[u8],
        ) -> Result<Option<AuthorizationCode>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(concat!(
                "SELECT ",
                code_columns!(),
                " FROM authorization_codes WHERE code_hash = $1"
            ))
            .bind(code_hash)
            .fetch_optional(executor)
            .await
            .map_err(query_error)?
            .as_ref()
            .map(code_from_row)
            .transpose()
        }

        /// The outcome of a redemption whose `redeem_code!` returned `consumed`:
        /// otherwise a consumed code is `Replayed` whatever its expiry or its
        /// grant's state (read by a fresh statement, after any winner committed),
        /// and anything else is `Unknown`.
        pub(super) async fn redemption(
            conn: &mut $conn,
            consumed: Option<$row>,
            code_hash: &[u8],
        ) -> Result<CodeRedemption, StoreError> {
            if let Some(row) = consumed {
                return Ok(CodeRedemption::Redeemed(code_from_row(&row)?));
            }
            let stored = get_code_in(&mut *conn, code_hash).await?;
            Ok(match stored {
                Some(code) if code.consumed_at.is_some() => CodeRedemption::Replayed(code),
                _ => CodeRedemption::Unknown,
            })
        }

        /// A live, unconsumed code of a live grant is consumed by one conditional
        /// `UPDATE`, so of concurrent callers exactly one sees the row change. On
        /// SQLite every write runs in the committer's transaction on the one
        /// writer connection. On PostgreSQL concurrent callers (in other batches or
        /// on other nodes) queue on the row lock and, once the first has
        /// committed, find `consumed_at` set when PostgreSQL re-checks the
        /// condition; a later write of the same batch sees it set already.
        pub(super) async fn redeem_code_in(
            conn: &mut $conn,
            code_hash: &[u8],
            now: i64,
        ) -> Result<CodeRedemption, StoreError> {
            let consumed = sqlx::query(redeem_code!())
                .bind(now)
                .bind(code_hash)
                .fetch_optional(&mut *conn)
                .await
                .map_err(query_error)?;
            redemption(conn, consumed, code_hash).await
        }

        /// Binds a backend's rotation query: `$1` now, `$2` the sealed successor
        /// response, `$3` the presented token's hash, `$4`–`$12` the successor,
        /// and `$13`, `$14` the access token's jti and expiry, if recorded.
        pub(super) fn bind_rotation<'q>(
            sql: &'static str,
            (presented_hash, now): (&'q [u8], i64),
            successor: &'q RefreshToken,
            sealed_successor: Option<&'q [u8]>,
            access_token: Option<(&'q str, i64)>,
        ) -> Result<sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>, StoreError> {
            let query = sqlx::query(sql)
                .bind(now)
                .bind(sealed_successor)
                .bind(presented_hash);
            let mut query = bind_refresh_token(query, successor)?;
            if let Some((jti, expires_at)) = access_token {
                query = query.bind(jti).bind(expires_at);
            }
            Ok(query)
        }

        /// Runs a backend's query that redeems a code and records what was
        /// issued from it (`$1` now, `$2` the code's hash, `$3` and `$4` the
        /// access token's jti and expiry, `$5`–`$13` the refresh token, if any),
        /// and tells how the redemption went.
        pub(super) async fn redeem_and_record_with(
            conn: &mut $conn,
            sql: &'static str,
            code_hash: &[u8],
            now: i64,
            (jti, expires_at): (&str, i64),
            refresh: Option<&RefreshToken>,
        ) -> Result<CodeRedemption, StoreError> {
            let query = sqlx::query(sql)
                .bind(now)
                .bind(code_hash)
                .bind(jti)
                .bind(expires_at);
            let query = match refresh {
                Some(token) => bind_refresh_token(query, token)?,
                None => query,
            };
            let consumed = query.fetch_all(&mut *conn).await.map_err(query_error)?;
            redemption(conn, consumed.into_iter().next(), code_hash).await
        }

        /// The code with this hash, its grant and whether the grant's user may get
        /// tokens, in one statement (the code exchange's checks). A code always
        /// has its grant: deleting a grant deletes its codes.
        pub(super) async fn get_code_family_in<'e, E>(
            executor: E,
            code_hash: &[u8],
        ) -> Result<Option<CodeFamily>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let row = sqlx::query(concat!(
                "SELECT ",
                family_columns!(),
                ", c.code_hash, c.client_id AS code_client_id, c.redirect_uri, \
                   c.code_challenge, c.nonce, c.scope AS code_scope, \
                   c.resources AS code_resources, c.created_at AS code_created_at, \
                   c.expires_at AS code_expires_at, c.consumed_at, c.dpop_jkt \
                 FROM authorization_codes c JOIN grants g ON g.grant_id = c.grant_id \
                 WHERE c.code_hash = $1"
            ))
            .bind(code_hash)
            .fetch_optional(executor)
            .await
            .map_err(query_error)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let grant = grant_from_row(&row)?;
            let code = AuthorizationCode {
                code_hash: get(&row, "code_hash")?,
                grant_id: grant.grant_id.clone(),
                client_id: get(&row, "code_client_id")?,
                redirect_uri: get(&row, "redirect_uri")?,
                code_challenge: get(&row, "code_challenge")?,
                nonce: get(&row, "nonce")?,
                scope: from_json(&row, "code_scope")?,
                resources: from_json(&row, "code_resources")?,
                created_at: get(&row, "code_created_at")?,
                expires_at: get(&row, "code_expires_at")?,
                consumed_at: get(&row, "consumed_at")?,
                dpop_jkt: get(&row, "dpop_jkt")?,
            };
            Ok(Some(CodeFamily {
                code,
                grant,
                user_enabled: get(&row, "user_enabled")?,
            }))
        }

        /// The refresh token with this hash, whatever its state.
        pub(super) async fn get_refresh_token_in<'e, E>(
            executor: E,
            token_hash: &[u8],
        ) -> Result<Option<RefreshToken>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(concat!(
                "SELECT ",
                refresh_columns!(),
                " FROM refresh_tokens WHERE token_hash = $1"
            ))
            .bind(token_hash)
            .fetch_optional(executor)
            .await
            .map_err(query_error)?
            .as_ref()
            .map(refresh_from_row)
            .transpose()
        }

        /// The refresh token with this hash, its grant and whether the grant's
        /// user may get tokens, in one statement (the refresh grant's checks).
        pub(super) async fn get_refresh_family_in<'e, E>(
            executor: E,
            token_hash: &[u8],
        ) -> Result<Option<RefreshFamily>, StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            let row = sqlx::query(concat!(
                "SELECT ",
                family_columns!(),
                ", t.token_hash, t.client_id AS token_client_id, t.scope AS token_scope, \
                   t.created_at AS token_created_at, t.expires_at AS token_expires_at, \
                   t.rotated_at, t.sealed_successor, t.dpop_jkt \
                 FROM refresh_tokens t JOIN grants g ON g.grant_id = t.grant_id \
                 WHERE t.token_hash = $1"
            ))
            .bind(token_hash)
            .fetch_optional(executor)
            .await
            .map_err(query_error)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let grant = grant_from_row(&row)?;
            let token = RefreshToken {
                token_hash: get(&row, "token_hash")?,
                grant_id: grant.grant_id.clone(),
                client_id: get(&row, "token_client_id")?,
                scope: from_json(&row, "token_scope")?,
                created_at: get(&row, "token_created_at")?,
                expires_at: get(&row, "token_expires_at")?,
                rotated_at: get(&row, "rotated_at")?,
                sealed_successor: get(&row, "sealed_successor")?,
                dpop_jkt: get(&row, "dpop_jkt")?,
            };
            Ok(Some(RefreshFamily {
                token,
                grant,
                user_enabled: get(&row, "user_enabled")?,
            }))
        }

        /// Binds the next twelve parameters to `grant`'s columns, in the order of
        /// `grant_columns!` (each backend's `insert_grant_with_code_in`).
        pub(super) fn bind_grant<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            grant: &'q Grant,
        ) -> Result<sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>, StoreError> {
            Ok(query
                .bind(&grant.grant_id)
                .bind(&grant.client_id)
                .bind(&grant.user_id)
                .bind(to_json(&grant.scope)?)
                .bind(grant.sid.as_deref())
                .bind(grant.auth_time)
                .bind(to_json(&grant.amr)?)
                .bind(grant.created_at)
                .bind(grant.expires_at)
                .bind(grant.revoked_at)
                .bind(grant.status_idx)
                .bind(to_json(&grant.resources)?))
        }

        /// Binds the next twelve parameters to `code`'s columns, in the order of
        /// `code_columns!`.
        pub(super) fn bind_code<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            code: &'q AuthorizationCode,
        ) -> Result<sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>, StoreError> {
            Ok(query
                .bind(&code.code_hash)
                .bind(&code.grant_id)
                .bind(&code.client_id)
                .bind(&code.redirect_uri)
                .bind(&code.code_challenge)
                .bind(code.nonce.as_deref())
                .bind(to_json(&code.scope)?)
                .bind(to_json(&code.resources)?)
                .bind(code.created_at)
                .bind(code.expires_at)
                .bind(code.consumed_at)
                .bind(code.dpop_jkt.as_deref()))
        }

        /// Binds the next seven parameters to a sign-in form's new session:
        /// `session_hash, sid, user_id, auth_time, amr, created_at, expires_at`,
        /// its `amr` already encoded (each backend's `grants/form.rs`).
        pub(super) fn bind_session<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            session: &'q valet_core::store::Session,
            amr: &'q str,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            query
                .bind(&session.session_hash)
                .bind(&session.sid)
                .bind(&session.user_id)
                .bind(session.auth_time)
                .bind(amr)
                .bind(session.created_at)
                .bind(session.expires_at)
        }

        /// Binds the next four parameters to the interaction a sign-in form
        /// names next, as a `single_use` row: `kind, key, payload, expires_at`.
        pub(super) fn bind_next_interaction<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            key: &'q [u8],
            next: &'q valet_core::store::Interaction,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            query
                .bind(valet_core::store::SingleUseKind::Interaction.as_str())
                .bind(key)
                .bind(&next.payload)
                .bind(next.expires_at)
        }

        pub(super) async fn insert_refresh_token_in<'e, E>(executor: E, token: &RefreshToken) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            bind_refresh_token(
                sqlx::query(concat!(
                    "INSERT INTO refresh_tokens (",
                    refresh_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                )),
                token,
            )?
            .execute(executor)
            .await
            .map_err(query_error)?;
            Ok(())
        }

        /// Binds the next nine parameters to `token`'s columns, in the order of
        /// `refresh_columns!`.
        pub(super) fn bind_refresh_token<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            token: &'q RefreshToken,
        ) -> Result<sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>, StoreError> {
            Ok(query
                .bind(&token.token_hash)
                .bind(&token.grant_id)
                .bind(&token.client_id)
                .bind(to_json(&token.scope)?)
                .bind(token.created_at)
                .bind(token.expires_at)
                .bind(token.rotated_at)
                .bind(token.sealed_successor.as_deref())
                .bind(token.dpop_jkt.as_deref()))
        }

        /// Deletes up to `limit` expired rows of each table, oldest first. Two nodes
        /// purging at once may pick the same rows; the second delete then finds fewer,
        /// which is harmless.
        pub(super) async fn purge_grants_in(
            conn: &mut $conn,
            now: i64,
            limit: u32,
        ) -> Result<u64, StoreError> {
            let limit = i64::from(limit);
            let mut purged = 0;
            for sql in [
                "DELETE FROM authorization_codes WHERE code_hash IN \
                 (SELECT code_hash FROM authorization_codes WHERE expires_at < $1 \
                  ORDER BY expires_at LIMIT $2)",
                "DELETE FROM refresh_tokens WHERE token_hash IN \
                 (SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 \
                  ORDER BY expires_at LIMIT $2)",
                "DELETE FROM grant_access_tokens WHERE (grant_id, jti) IN \
                 (SELECT grant_id, jti FROM grant_access_tokens WHERE expires_at < $1 \
                  ORDER BY expires_at LIMIT $2)",
                "DELETE FROM grants WHERE grant_id IN \
                 (SELECT grant_id FROM grants WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
            ] {
                purged += sqlx::query(sql)
                    .bind(now)
                    .bind(limit)
                    .execute(&mut *conn)
                    .await
                    .map_err(query_error)?
                    .rows_affected();
            }
            Ok(purged)
        }

        pub(super) fn grant_from_row(row: &$row) -> Result<Grant, StoreError> {
            Ok(Grant {
                grant_id: get(row, "grant_id")?,
                client_id: get(row, "client_id")?,
                user_id: get(row, "user_id")?,
                scope: from_json(row, "scope")?,
                sid: get(row, "sid")?,
                auth_time: get(row, "auth_time")?,
                amr: from_json(row, "amr")?,
                created_at: get(row, "created_at")?,
                expires_at: get(row, "expires_at")?,
                revoked_at: get(row, "revoked_at")?,
                status_idx: get(row, "status_idx")?,
                resources: from_json(row, "resources")?,
            })
        }

        pub(super) fn code_from_row(row: &$row) -> Result<AuthorizationCode, StoreError> {
            Ok(AuthorizationCode {
                code_hash: get(row, "code_hash")?,
                grant_id: get(row, "grant_id")?,
                client_id: get(row, "client_id")?,
                redirect_uri: get(row, "redirect_uri")?,
                code_challenge: get(row, "code_challenge")?,
                nonce: get(row, "nonce")?,
                scope: from_json(row, "scope")?,
                resources: from_json(row, "resources")?,
                created_at: get(row, "created_at")?,
                expires_at: get(row, "expires_at")?,
                consumed_at: get(row, "consumed_at")?,
                dpop_jkt: get(row, "dpop_jkt")?,
            })
        }

        pub(super) fn refresh_from_row(row: &$row) -> Result<RefreshToken, StoreError> {
            Ok(RefreshToken {
                token_hash: get(row, "token_hash")?,
                grant_id: get(row, "grant_id")?,
                client_id: get(row, "client_id")?,
                scope: from_json(row, "scope")?,
                created_at: get(row, "created_at")?,
                expires_at: get(row, "expires_at")?,
                rotated_at: get(row, "rotated_at")?,
                sealed_successor: get(row, "sealed_successor")?,
                dpop_jkt: get(row, "dpop_jkt")?,
            })
        }
    };
}

/// Stamps into a backend's grant module its `GrantStore` implementation on
/// `$store`: reads on the pool `$reader`, transactions begun on `$writer` with the
/// backend's `begin_write`, durable writes through its group commit
/// (`self.commits`). Each method hands its work to a function of the backend's
/// grant module (`write_form_in` for the `FormStore`, `rotate_refresh_token_in`, `revoke_in`, ...) or
/// of [`shared_grant_parts`]: how a statement locks stays with the backend; only
/// this glue, the same on both, lives here.
#[macro_export]
macro_rules! shared_grant_store {
    (
        store: $store:ty,
        reader: $reader:ident,
        writer: $writer:ident $(,)?
    ) => {
        #[async_trait]
        impl FormStore for $store {
            async fn write_form(&self, write: &FormWrite) -> Result<FormWritten, StoreError> {
                self.commits
                    .write(write.clone(), |conn, write| {
                        Box::pin(write_form_in(conn, write))
                    })
                    .await
            }
        }

        #[async_trait]
        impl GrantStore for $store {
            async fn insert_grant_with_code(
                &self,
                grant: &Grant,
                code: &AuthorizationCode,
            ) -> Result<(), StoreError> {
                self.commits
                    .write((grant.clone(), code.clone()), |conn, (grant, code)| {
                        Box::pin(insert_grant_with_code_in(conn, grant, code))
                    })
                    .await
            }

            async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
                get_grant_in(&self.$reader, grant_id).await
            }

            async fn grant_by_status_idx(
                &self,
                status_idx: i64,
            ) -> Result<Option<Grant>, StoreError> {
                grant_by_status_idx_in(&self.$reader, status_idx).await
            }

            async fn list_grants_of_user(
                &self,
                user_id: &str,
                now: i64,
            ) -> Result<Vec<Grant>, StoreError> {
                list_live_grants_in(&self.$reader, Owner::User(user_id), now).await
            }

            async fn list_grants_of_client(
                &self,
                client_id: &str,
                now: i64,
            ) -> Result<Vec<Grant>, StoreError> {
                list_live_grants_in(&self.$reader, Owner::Client(client_id), now).await
            }

            async fn get_code_family(
                &self,
                code_hash: &[u8],
                now: i64,
            ) -> Result<Option<CodeFamily>, StoreError> {
                // A consumed code is found whatever its expiry (a replay must be seen).
                Ok(get_code_family_in(&self.$reader, code_hash)
                    .await?
                    .filter(|family| {
                        family.code.consumed_at.is_some() || family.code.expires_at > now
                    }))
            }

            async fn redeem_code(
                &self,
                code_hash: &[u8],
                now: i64,
            ) -> Result<CodeRedemption, StoreError> {
                self.commits
                    .write(code_hash.to_vec(), move |conn, code_hash| {
                        Box::pin(redeem_code_in(conn, code_hash, now))
                    })
                    .await
            }

            async fn redeem_code_and_record(
                &self,
                code_hash: &[u8],
                now: i64,
                jti: &str,
                expires_at: i64,
                refresh: Option<&RefreshToken>,
            ) -> Result<CodeRedemption, StoreError> {
                let input = (code_hash.to_vec(), jti.to_owned(), refresh.cloned());
                self.commits
                    .write(input, move |conn, (code_hash, jti, refresh)| {
                        Box::pin(redeem_code_and_record_in(
                            conn,
                            code_hash,
                            now,
                            jti,
                            expires_at,
                            refresh.as_ref(),
                        ))
                    })
                    .await
            }

            async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
                self.commits
                    .write(token.clone(), |conn, token| {
                        Box::pin(insert_refresh_token_in(conn, token))
                    })
                    .await
            }

            /// If the grant is already revoked, the `jti` is revoked at once (with the
            /// grant's `revoked_at`): a token minted while the grant was being revoked
            /// does not escape. An unknown grant is an error (foreign key).
            async fn record_issued(
                &self,
                grant_id: &str,
                jti: &str,
                expires_at: i64,
                refresh: Option<&RefreshToken>,
            ) -> Result<(), StoreError> {
                let input = (grant_id.to_owned(), jti.to_owned(), refresh.cloned());
                self.commits
                    .write(input, move |conn, (grant_id, jti, refresh)| {
                        Box::pin(record_issued_in(
                            conn,
                            grant_id,
                            jti,
                            expires_at,
                            refresh.as_ref(),
                        ))
                    })
                    .await
            }

            async fn rotate_refresh_token(
                &self,
                presented_hash: &[u8],
                successor: &RefreshToken,
                sealed_successor: Option<&[u8]>,
                access_token: Option<(&str, i64)>,
                now: i64,
            ) -> Result<Rotation, StoreError> {
                let input = (
                    presented_hash.to_vec(),
                    successor.clone(),
                    sealed_successor.map(<[u8]>::to_vec),
                    access_token.map(|(jti, expires_at)| (jti.to_owned(), expires_at)),
                );
                self.commits
                    .write(
                        input,
                        move |conn, (presented_hash, successor, sealed, access)| {
                            Box::pin(rotate_refresh_token_in(
                                conn,
                                presented_hash,
                                successor,
                                sealed.as_deref(),
                                access
                                    .as_ref()
                                    .map(|(jti, expires_at)| (jti.as_str(), *expires_at)),
                                now,
                            ))
                        },
                    )
                    .await
            }

            async fn get_refresh_token(
                &self,
                token_hash: &[u8],
            ) -> Result<Option<RefreshToken>, StoreError> {
                get_refresh_token_in(&self.$reader, token_hash).await
            }

            async fn get_refresh_family(
                &self,
                token_hash: &[u8],
            ) -> Result<Option<RefreshFamily>, StoreError> {
                get_refresh_family_in(&self.$reader, token_hash).await
            }

            /// "Live" here means not yet revoked: an expired grant that was never revoked
            /// is revoked too (its access tokens may outlive it) and counts as matched.
            async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
                self.revoke(GrantsOf::Grant(grant_id), now)
                    .await
                    .map(|count| count > 0)
            }

            async fn revoke_grants_of_session(
                &self,
                sid: &str,
                now: i64,
            ) -> Result<u64, StoreError> {
                self.revoke(GrantsOf::Session(sid), now).await
            }

            async fn revoke_grants_of_user(
                &self,
                user_id: &str,
                now: i64,
            ) -> Result<u64, StoreError> {
                self.revoke(GrantsOf::User(user_id), now).await
            }

            async fn revoke_grants_of_client(
                &self,
                client_id: &str,
                now: i64,
            ) -> Result<u64, StoreError> {
                self.revoke(GrantsOf::Client(client_id), now).await
            }

            async fn revoke_consent(
                &self,
                user_id: &str,
                client_id: &str,
                now: i64,
            ) -> Result<u64, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = revoke_consent_in(&mut tx, user_id, client_id, now).await;
                finish(tx, outcome).await
            }

            /// Consumed codes go too once expired. Deleting a grant cascades to whatever
            /// of its descendants is left; those rows are not counted.
            async fn purge_grants(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = purge_grants_in(&mut tx, now, limit).await;
                finish(tx, outcome).await
            }
        }

        impl $store {
            async fn revoke(&self, which: GrantsOf<'_>, now: i64) -> Result<u64, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = revoke_in(&mut tx, which, now).await;
                finish(tx, outcome).await
            }
        }
    };
}
