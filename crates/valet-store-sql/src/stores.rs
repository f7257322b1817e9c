//! The store implementations whose SQL is the same on both backends.

/// Stamps into a backend the implementations of `ClientStore`, `KeyStore`,
/// `RevocationStore`, `UserStore`, `SessionStore`, `SingleUseStore` and `AuditStore`, and `purge_single_use_in` (which its
/// session purge calls) and `insert_session_in` (which its sign-in forms' write calls), with the backend's own types: `$store` (with pools
/// `$reader` for reads and `$writer` for writes, the same pool on PostgreSQL),
/// `$row` and `$conn`. What each database spells its own way is given
/// literally: `$login_match`, the condition and order that find a user by
/// username or (ASCII case-insensitive) email, `$1`; `$greatest`, the name of
/// the two-argument maximum; `$audit_actor`, the expression reading the text
/// `actor` member of an audit record's JSON `detail` (NULL when absent);
/// `$lower_username` and `$lower_email`, those columns with ASCII letters
/// (only) in lower case, for the user search. Names resolve where it is invoked, which must have in
/// scope the store traits and records, `async_trait`, `sqlx`, this crate's
/// helpers, `Algorithm`, `GrantType`, `TokenEndpointAuthMethod`, and the
/// backend's `begin_write(pool)`, `delete_client_in(conn, client_id, now)`,
/// `add_consent_to(writer, user_id, client_id, scopes, now)` and
/// `revoke_access_tokens_before_delete(conn, owner)`:
/// the parts whose locking differs.
#[macro_export]
macro_rules! shared_stores {
    (
        store: $store:ty,
        row: $row:ty,
        connection: $conn:ty,
        reader: $reader:ident,
        writer: $writer:ident,
        login_match: $login_match:literal,
        greatest: $greatest:literal,
        audit_actor: $audit_actor:literal,
        lower_username: $lower_username:literal,
        lower_email: $lower_email:literal $(,)?
    ) => {
        // ---------------------------------------------------------------------------------
        // Clients

        macro_rules! client_columns {
            () => {
                "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, \
                 grant_types, scopes, audiences, access_token_ttl, skip_consent, \
                 refresh_grace_seconds, id_token_signed_response_alg, created_at, updated_at, \
                 previous_secret_hash, previous_secret_expires_at, introspect_any, \
                 token_endpoint_auth_methods, require_mfa, allowed_origins, \
                 require_pushed_authorization_requests, dpop_bound_access_tokens, \
                 jwks, jwks_uri, token_exchange_audiences, registration_token_hash, \
                 metadata_expires_at, sealed_secret, id_token_encrypted_response_alg, \
                 id_token_encrypted_response_enc, userinfo_signed_response_alg, \
                 userinfo_encrypted_response_alg, userinfo_encrypted_response_enc"
            };
        }

        /// Binds every column of `client_columns!` in order, for the statements
        /// that write a whole client (insert, and a metadata document's upsert).
        fn bind_client<'q>(
            query: sqlx::query::Query<
                'q,
                <$row as sqlx::Row>::Database,
                <<$row as sqlx::Row>::Database as sqlx::Database>::Arguments,
            >,
            client: &Client,
        ) -> Result<
            sqlx::query::Query<
                'q,
                <$row as sqlx::Row>::Database,
                <<$row as sqlx::Row>::Database as sqlx::Database>::Arguments,
            >,
            StoreError,
        > {
            Ok(query
            .bind(&client.client_id)
            .bind(&client.name)
            .bind(client.secret_hash.as_deref())
            .bind(to_json(&client.redirect_uris)?)
            .bind(to_json(&client.post_logout_redirect_uris)?)
            .bind(names_json(&client.grant_types, GrantType::as_str)?)
            .bind(to_json(&client.scopes)?)
            .bind(to_json(&client.audiences)?)
            .bind(client.access_token_ttl)
            .bind(client.skip_consent)
            .bind(client.refresh_grace_seconds)
            .bind(client.id_token_signed_response_alg.map(Algorithm::as_str))
            .bind(client.created_at)
            .bind(client.updated_at)
            .bind(client.previous_secret_hash.as_deref())
            .bind(client.previous_secret_expires_at)
            .bind(client.introspect_any)
            .bind(names_json(
                    &client.token_endpoint_auth_methods,
                    TokenEndpointAuthMethod::as_str,
                )?)
            .bind(client.require_mfa)
            .bind(to_json(&client.allowed_origins)?)
            .bind(client.require_pushed_authorization_requests)
            .bind(client.dpop_bound_access_tokens)
            .bind(client.jwks.as_deref())
            .bind(client.jwks_uri.as_deref())
            .bind(to_json(&client.token_exchange_audiences)?)
            .bind(client.registration_token_hash.as_deref())
            .bind(client.metadata_expires_at)
            .bind(client.sealed_secret.as_deref())
            .bind(client.id_token_encryption.map(|jwe| jwe.alg.as_str()))
            .bind(client.id_token_encryption.map(|jwe| jwe.enc.as_str()))
            .bind(client.userinfo_signed_response_alg.map(Algorithm::as_str))
            .bind(client.userinfo_encryption.map(|jwe| jwe.alg.as_str()))
            .bind(client.userinfo_encryption.map(|jwe| jwe.enc.as_str())))
        }

        #[async_trait]
        impl ClientStore for $store {
            async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
                let inserted = bind_client(sqlx::query(concat!(
                    "INSERT INTO clients (",
                    client_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33) \
                     ON CONFLICT (client_id) DO NOTHING"
                )), client)?
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                if inserted == 0 {
                    return Err(StoreError::Conflict);
                }
                Ok(())
            }

            async fn get_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    client_columns!(),
                    " FROM clients WHERE client_id = $1"
                ))
                .bind(client_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(client_from_row)
                .transpose()
            }

            async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    client_columns!(),
                    " FROM clients ORDER BY created_at, client_id"
                ))
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?
                .iter()
                .map(client_from_row)
                .collect()
            }

            async fn list_clients_after(
                &self,
                after: Option<(i64, &str)>,
                limit: u32,
            ) -> Result<Vec<Client>, StoreError> {
                // Keyset paging on the `clients_created_at` index: no offset scan.
                let (created_at, client_id) = after.unwrap_or((i64::MIN, ""));
                sqlx::query(concat!(
                    "SELECT ",
                    client_columns!(),
                    " FROM clients WHERE (created_at, client_id) > ($1, $2) \
                     ORDER BY created_at, client_id LIMIT $3"
                ))
                .bind(created_at)
                .bind(client_id)
                .bind(i64::from(limit))
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?
                .iter()
                .map(client_from_row)
                .collect()
            }

            /// Also deletes everything issued to the client (consents, grants and their
            /// descendants), first revoking the live access tokens of its grants and its
            /// status list blocks. Writes are serialized on the writer connection, so a
            /// reservation either committed before (its block is revoked here) or runs
            /// after and finds no client.
            async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = delete_client_in(&mut tx, client_id, now).await;
                finish(tx, outcome).await
            }

            async fn set_client_secret(
                &self,
                client_id: &str,
                secret_hash: &[u8],
                previous_until: Option<i64>,
                updated_at: i64,
                sealed_secret: Option<&[u8]>,
            ) -> Result<bool, StoreError> {
                // SET expressions read the row as it was: the old secret becomes the previous.
                let updated = sqlx::query(
                    "UPDATE clients SET \
                       previous_secret_hash = CASE WHEN CAST($2 AS BIGINT) IS NULL THEN NULL ELSE secret_hash END, \
                       previous_secret_expires_at = $2, secret_hash = $1, updated_at = $3, \
                       sealed_secret = $5 \
                     WHERE client_id = $4 AND secret_hash IS NOT NULL",
                )
                .bind(secret_hash)
                .bind(previous_until)
                .bind(updated_at)
                .bind(client_id)
                .bind(sealed_secret)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE clients SET name = $1, redirect_uris = $2, post_logout_redirect_uris = $3, \
                       scopes = $4, audiences = $5, access_token_ttl = $6, skip_consent = $7, \
                       refresh_grace_seconds = $8, id_token_signed_response_alg = $9, \
                       introspect_any = $10, updated_at = $11, allowed_origins = $12, \
                       require_mfa = $14, require_pushed_authorization_requests = $15, \
                       dpop_bound_access_tokens = $16, jwks = $17, jwks_uri = $18, \
                       token_exchange_audiences = $19, \
                       id_token_encrypted_response_alg = $20, id_token_encrypted_response_enc = $21, \
                       userinfo_signed_response_alg = $22, userinfo_encrypted_response_alg = $23, \
                       userinfo_encrypted_response_enc = $24 \
                     WHERE client_id = $13",
                )
                .bind(&client.name)
                .bind(to_json(&client.redirect_uris)?)
                .bind(to_json(&client.post_logout_redirect_uris)?)
                .bind(to_json(&client.scopes)?)
                .bind(to_json(&client.audiences)?)
                .bind(client.access_token_ttl)
                .bind(client.skip_consent)
                .bind(client.refresh_grace_seconds)
                .bind(client.id_token_signed_response_alg.map(Algorithm::as_str))
                .bind(client.introspect_any)
                .bind(client.updated_at)
                .bind(to_json(&client.allowed_origins)?)
                .bind(&client.client_id)
                .bind(client.require_mfa)
                .bind(client.require_pushed_authorization_requests)
                .bind(client.dpop_bound_access_tokens)
                .bind(client.jwks.as_deref())
                .bind(client.jwks_uri.as_deref())
                .bind(to_json(&client.token_exchange_audiences)?)
                .bind(client.id_token_encryption.map(|jwe| jwe.alg.as_str()))
                .bind(client.id_token_encryption.map(|jwe| jwe.enc.as_str()))
                .bind(client.userinfo_signed_response_alg.map(Algorithm::as_str))
                .bind(client.userinfo_encryption.map(|jwe| jwe.alg.as_str()))
                .bind(client.userinfo_encryption.map(|jwe| jwe.enc.as_str()))
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }
        }

        fn client_from_row(row: &$row) -> Result<Client, StoreError> {
            Ok(Client {
                client_id: get(row, "client_id")?,
                name: get(row, "name")?,
                token_endpoint_auth_methods: from_names(
                    row,
                    "token_endpoint_auth_methods",
                    TokenEndpointAuthMethod::parse,
                )?,
                secret_hash: get(row, "secret_hash")?,
                redirect_uris: from_json(row, "redirect_uris")?,
                post_logout_redirect_uris: from_json(row, "post_logout_redirect_uris")?,
                allowed_origins: from_json(row, "allowed_origins")?,
                grant_types: from_names(row, "grant_types", GrantType::parse)?,
                scopes: from_json(row, "scopes")?,
                audiences: from_json(row, "audiences")?,
                access_token_ttl: get(row, "access_token_ttl")?,
                skip_consent: get(row, "skip_consent")?,
                require_mfa: get(row, "require_mfa")?,
                require_pushed_authorization_requests: get(
                    row,
                    "require_pushed_authorization_requests",
                )?,
                refresh_grace_seconds: get(row, "refresh_grace_seconds")?,
                id_token_signed_response_alg: get::<Option<String>, _>(row, "id_token_signed_response_alg")?
                    .map(|alg| parse_name("id_token_signed_response_alg", &alg, |alg| alg.parse().ok()))
                    .transpose()?,
                created_at: get(row, "created_at")?,
                updated_at: get(row, "updated_at")?,
                previous_secret_hash: get(row, "previous_secret_hash")?,
                previous_secret_expires_at: get(row, "previous_secret_expires_at")?,
                introspect_any: get(row, "introspect_any")?,
                dpop_bound_access_tokens: get(row, "dpop_bound_access_tokens")?,
                jwks: get(row, "jwks")?,
                jwks_uri: get(row, "jwks_uri")?,
                token_exchange_audiences: from_json(row, "token_exchange_audiences")?,
                registration_token_hash: get(row, "registration_token_hash")?,
                metadata_expires_at: get(row, "metadata_expires_at")?,
                sealed_secret: get(row, "sealed_secret")?,
                id_token_encryption: jwe_choice(
                    row,
                    "id_token_encrypted_response_alg",
                    "id_token_encrypted_response_enc",
                )?,
                userinfo_signed_response_alg: get::<Option<String>, _>(row, "userinfo_signed_response_alg")?
                    .map(|alg| parse_name("userinfo_signed_response_alg", &alg, |alg| alg.parse().ok()))
                    .transpose()?,
                userinfo_encryption: jwe_choice(
                    row,
                    "userinfo_encrypted_response_alg",
                    "userinfo_encrypted_response_enc",
                )?,
            })
        }

        /// An `*_encrypted_response_alg`/`_enc` pair (OIDC Registration §2); `enc`
        /// defaults to A256GCM when only `alg` is stored.
        fn jwe_choice(
            row: &$row,
            alg_column: &'static str,
            enc_column: &'static str,
        ) -> Result<Option<valet_core::store::JweChoice>, StoreError> {
            let Some(alg) = get::<Option<String>, _>(row, alg_column)? else {
                return Ok(None);
            };
            let alg = parse_name(alg_column, &alg, |alg| alg.parse().ok())?;
            let enc = get::<Option<String>, _>(row, enc_column)?
                .map(|enc| parse_name(enc_column, &enc, |enc| enc.parse().ok()))
                .transpose()?
                .unwrap_or_default();
            Ok(Some(valet_core::store::JweChoice { alg, enc }))
        }

        // ---------------------------------------------------------------------------------
        // Dynamic registration

        #[async_trait]
        impl RegistrationStore for $store {
            async fn insert_initial_token(&self, token: &InitialAccessToken) -> Result<(), StoreError> {
                let inserted = sqlx::query(
                    "INSERT INTO initial_access_tokens (token_id, token_hash, note, created_at, \
                     expires_at, uses_left) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(&token.token_id)
                .bind(&token.token_hash)
                .bind(&token.note)
                .bind(token.created_at)
                .bind(token.expires_at)
                .bind(token.uses_left)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                if inserted == 0 {
                    return Err(StoreError::Conflict);
                }
                Ok(())
            }

            async fn live_initial_token(
                &self,
                token_hash: &[u8],
                now: i64,
            ) -> Result<Option<InitialAccessToken>, StoreError> {
                sqlx::query(
                    "SELECT token_id, token_hash, note, created_at, expires_at, uses_left \
                     FROM initial_access_tokens WHERE token_hash = $1 AND expires_at > $2 \
                     AND (uses_left IS NULL OR uses_left > 0)",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(initial_token_from_row)
                .transpose()
            }

            async fn use_initial_token(&self, token_hash: &[u8], now: i64) -> Result<bool, StoreError> {
                // One conditional statement: concurrent uses cannot both take the last one.
                let used = sqlx::query(
                    "UPDATE initial_access_tokens SET uses_left = uses_left - 1 \
                     WHERE token_hash = $1 AND expires_at > $2 AND (uses_left IS NULL OR uses_left > 0)",
                )
                .bind(token_hash)
                .bind(now)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(used > 0)
            }

            async fn list_initial_tokens(&self) -> Result<Vec<InitialAccessToken>, StoreError> {
                sqlx::query(
                    "SELECT token_id, token_hash, note, created_at, expires_at, uses_left \
                     FROM initial_access_tokens ORDER BY created_at, token_id",
                )
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?
                .iter()
                .map(initial_token_from_row)
                .collect()
            }

            async fn delete_initial_token(&self, token_id: &str) -> Result<bool, StoreError> {
                let deleted = sqlx::query("DELETE FROM initial_access_tokens WHERE token_id = $1")
                    .bind(token_id)
                    .execute(&self.$writer)
                    .await
                    .map_err(query_error)?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn purge_initial_tokens(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
                let deleted = sqlx::query(
                    "DELETE FROM initial_access_tokens WHERE token_id IN (SELECT token_id \
                     FROM initial_access_tokens WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
                )
                .bind(now)
                .bind(i64::from(limit))
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(deleted)
            }

            async fn set_registration_token(
                &self,
                client_id: &str,
                token_hash: &[u8],
                updated_at: i64,
            ) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE clients SET registration_token_hash = $1, updated_at = $2 \
                     WHERE client_id = $3 AND registration_token_hash IS NOT NULL",
                )
                .bind(token_hash)
                .bind(updated_at)
                .bind(client_id)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn upsert_metadata_client(&self, client: &Client) -> Result<bool, StoreError> {
                // Only a row that is a metadata-document client already is replaced.
                let written = bind_client(sqlx::query(concat!(
                    "INSERT INTO clients (",
                    client_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33) \
                     ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, \
                       redirect_uris = excluded.redirect_uris, \
                       post_logout_redirect_uris = excluded.post_logout_redirect_uris, \
                       grant_types = excluded.grant_types, scopes = excluded.scopes, \
                       token_endpoint_auth_methods = excluded.token_endpoint_auth_methods, \
                       id_token_signed_response_alg = excluded.id_token_signed_response_alg, \
                       updated_at = excluded.updated_at, \
                       metadata_expires_at = excluded.metadata_expires_at \
                     WHERE clients.metadata_expires_at IS NOT NULL"
                )), client)?
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(written > 0)
            }
        }

        fn initial_token_from_row(row: &$row) -> Result<InitialAccessToken, StoreError> {
            Ok(InitialAccessToken {
                token_id: get(row, "token_id")?,
                token_hash: get(row, "token_hash")?,
                note: get(row, "note")?,
                created_at: get(row, "created_at")?,
                expires_at: get(row, "expires_at")?,
                uses_left: get(row, "uses_left")?,
            })
        }

        // ---------------------------------------------------------------------------------
        // Signing keys

        #[async_trait]
        impl KeyStore for $store {
            async fn insert_key(&self, key: &StoredKey) -> Result<KeyInsert, StoreError> {
                // No conflict target: a taken `kid` and a taken `(alg, generation)` both
                // leave the table as it is.
                let inserted = sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, generation, public_jwk, sealed_private_key, \
                     created_at, activates_at, publish_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&key.kid)
                .bind(key.alg.as_str())
                .bind(key.generation)
                .bind(&key.public_jwk)
                .bind(&key.sealed_private_key)
                .bind(key.created_at)
                .bind(key.activates_at)
                .bind(key.publish_until)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(if inserted == 0 {
                    KeyInsert::GenerationTaken
                } else {
                    KeyInsert::Inserted
                })
            }

            async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
                sqlx::query(
                    "SELECT kid, alg, generation, public_jwk, sealed_private_key, created_at, \
                     activates_at, publish_until FROM signing_keys ORDER BY alg, generation",
                )
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?
                .iter()
                .map(|row| {
                    Ok(StoredKey {
                        kid: get(row, "kid")?,
                        alg: parse_name("alg", &get::<String, _>(row, "alg")?, |alg| alg.parse().ok())?,
                        generation: get(row, "generation")?,
                        public_jwk: get(row, "public_jwk")?,
                        sealed_private_key: get(row, "sealed_private_key")?,
                        created_at: get(row, "created_at")?,
                        activates_at: get(row, "activates_at")?,
                        publish_until: get(row, "publish_until")?,
                    })
                })
                .collect()
            }

            async fn set_key_activation(&self, kid: &str, activates_at: i64) -> Result<bool, StoreError> {
                let updated = sqlx::query("UPDATE signing_keys SET activates_at = $1 WHERE kid = $2")
                    .bind(activates_at)
                    .bind(kid)
                    .execute(&self.$writer)
                    .await
                    .map_err(query_error)?
                    .rows_affected();
                Ok(updated > 0)
            }

            /// Returns whether the kid exists, whether or not its bound moved.
            async fn set_key_publish_until(
                &self,
                kid: &str,
                publish_until: i64,
            ) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE signing_keys SET publish_until = CASE \
                     WHEN publish_until IS NULL OR publish_until > $1 THEN $1 \
                     ELSE publish_until END \
                     WHERE kid = $2",
                )
                .bind(publish_until)
                .bind(kid)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn delete_unpublished_keys(&self, now: i64) -> Result<u64, StoreError> {
                let deleted = sqlx::query("DELETE FROM signing_keys WHERE publish_until < $1")
                    .bind(now)
                    .execute(&self.$writer)
                    .await
                    .map_err(query_error)?
                    .rows_affected();
                Ok(deleted)
            }

            async fn master_key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
                sqlx::query_scalar("SELECT value FROM meta WHERE name = 'master_key_check'")
                    .fetch_optional(&self.$reader)
                    .await
                    .map_err(query_error)
            }

            async fn insert_master_key_check(&self, sealed: &[u8]) -> Result<bool, StoreError> {
                let inserted = sqlx::query(
                    "INSERT INTO meta (name, value) VALUES ('master_key_check', $1) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(sealed)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(inserted > 0)
            }
        }

        // ---------------------------------------------------------------------------------
        // Revocations

        #[async_trait]
        impl RevocationStore for $store {
            async fn insert_revocation(&self, revoked: &RevokedToken) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
                )
                .bind(&revoked.jti)
                .bind(&revoked.client_id)
                .bind(revoked.expires_at)
                .bind(revoked.revoked_at)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?;
                Ok(())
            }

            async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
                let found = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.$reader)
                    .await
                    .map_err(query_error)?;
                Ok(found.is_some())
            }

            async fn purge_revocations(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
                // A bounded batch, oldest first, so a large backlog never holds the write
                // lock for long.
                let deleted = sqlx::query(
                    "DELETE FROM revoked_tokens WHERE jti IN \
                     (SELECT jti FROM revoked_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
                )
                .bind(now)
                .bind(i64::from(limit))
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(deleted)
            }
        }

        // ---------------------------------------------------------------------------------
        // Single-use records

        macro_rules! single_use_columns {
            () => {
                "kind, key, payload, expires_at, consumed"
            };
        }

        #[async_trait]
        impl SingleUseStore for $store {
            async fn insert_single_use(
                &self,
                kind: SingleUseKind,
                key: &[u8],
                payload: &str,
                expires_at: i64,
            ) -> Result<(), StoreError> {
                let inserted = sqlx::query(
                    "INSERT INTO single_use (kind, key, payload, expires_at, consumed) \
                     VALUES ($1, $2, $3, $4, FALSE) ON CONFLICT (kind, key) DO NOTHING",
                )
                .bind(kind.as_str())
                .bind(key)
                .bind(payload)
                .bind(expires_at)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                if inserted == 0 {
                    return Err(StoreError::Conflict);
                }
                Ok(())
            }

            async fn get_single_use(
                &self,
                kind: SingleUseKind,
                key: &[u8],
                now: i64,
            ) -> Result<Option<SingleUse>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    single_use_columns!(),
                    " FROM single_use \
                     WHERE kind = $1 AND key = $2 AND NOT consumed AND expires_at > $3"
                ))
                .bind(kind.as_str())
                .bind(key)
                .bind(now)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(single_use_from_row)
                .transpose()
            }

            async fn update_single_use(
                &self,
                kind: SingleUseKind,
                key: &[u8],
                payload: &str,
            ) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE single_use SET payload = $1 \
                     WHERE kind = $2 AND key = $3 AND NOT consumed",
                )
                .bind(payload)
                .bind(kind.as_str())
                .bind(key)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            /// One conditional update: only a row not consumed yet matches. SQLite runs
            /// writers one at a time; PostgreSQL makes a second updater wait for the row,
            /// then re-checks the condition and finds it consumed.
            async fn take_single_use(
                &self,
                kind: SingleUseKind,
                key: &[u8],
                now: i64,
            ) -> Result<Option<SingleUse>, StoreError> {
                sqlx::query(concat!(
                    "UPDATE single_use SET consumed = TRUE \
                     WHERE kind = $1 AND key = $2 AND NOT consumed AND expires_at > $3 \
                     RETURNING ",
                    single_use_columns!()
                ))
                .bind(kind.as_str())
                .bind(key)
                .bind(now)
                .fetch_optional(&self.$writer)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(single_use_from_row)
                .transpose()
            }

            async fn purge_single_use(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
                let mut conn = self.$writer.acquire().await.map_err(backend)?;
                purge_single_use_in(&mut conn, now, limit).await
            }
        }

        /// Deletes up to `limit` records that expired before `now`, oldest first.
        pub(crate) async fn purge_single_use_in(
            conn: &mut $conn,
            now: i64,
            limit: u32,
        ) -> Result<u64, StoreError> {
            let deleted = sqlx::query(
                "DELETE FROM single_use WHERE (kind, key) IN \
                 (SELECT kind, key FROM single_use WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
            )
            .bind(now)
            .bind(i64::from(limit))
            .execute(&mut *conn)
            .await
            .map_err(query_error)?
            .rows_affected();
            Ok(deleted)
        }

        fn single_use_from_row(row: &$row) -> Result<SingleUse, StoreError> {
            Ok(SingleUse {
                kind: parse_name("kind", &get::<String, _>(row, "kind")?, SingleUseKind::parse)?,
                key: get(row, "key")?,
                payload: get(row, "payload")?,
                expires_at: get(row, "expires_at")?,
                consumed: get(row, "consumed")?,
            })
        }

        // ---------------------------------------------------------------------------------
        // Audit trail

        /// Rows per INSERT of the audit flush (6 bound values each). SQLite finds
        /// each bound value's name by a scan over all of its statement's, so
        /// binding one INSERT costs the square of its rows: at 200 rows that was
        /// 2.6 % of the CPU under refresh load. 32 keeps it small and the
        /// statements few (a flush of 5,000 events makes 157), and at most 32
        /// different statements to prepare and cache.
        const AUDIT_ROWS_PER_INSERT: usize = 32;

        async fn append_audit_events_in(
            conn: &mut $conn,
            events: &[AuditEvent],
            details: &[String],
        ) -> Result<(), StoreError> {
            for (events, details) in events
                .chunks(AUDIT_ROWS_PER_INSERT)
                .zip(details.chunks(AUDIT_ROWS_PER_INSERT))
            {
                // Only placeholders make up the SQL; every value is bound.
                let mut sql = String::from(
                    "INSERT INTO audit_events (at, event, user_id, client_id, address, detail) VALUES ",
                );
                for row in 0..events.len() {
                    let first = row * 6 + 1;
                    if row > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${}, ${})",
                        first,
                        first + 1,
                        first + 2,
                        first + 3,
                        first + 4,
                        first + 5
                    ));
                }
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for (event, detail) in events.iter().zip(details) {
                    query = query
                        .bind(event.at)
                        .bind(event.event.as_str())
                        .bind(event.user_id.as_deref())
                        .bind(event.client_id.as_deref())
                        .bind(event.address.as_deref())
                        .bind(detail);
                }
                query.execute(&mut *conn).await.map_err(query_error)?;
            }
            Ok(())
        }

        #[async_trait]
        impl AuditStore for $store {
            async fn append_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
                // Serialized before the transaction opens, so only the inserts can fail in it.
                let details = events
                    .iter()
                    .map(|event| serde_json::to_string(&event.detail))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend)?;
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = append_audit_events_in(&mut tx, events, &details).await;
                finish(tx, outcome).await
            }

            async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
                // Only fixed fragments make up the SQL; every value is bound.
                let mut sql = String::from(
                    "SELECT at, event, user_id, client_id, address, detail FROM audit_events \
                     WHERE at >= $1 AND at <= $2",
                );
                let mut values: Vec<&str> = Vec::new();
                // The actor lives in `detail`; no index serves it, but the other
                // filters and the time range narrow the scan first.
                for (column, value) in [
                    ("user_id", filter.user_id.as_deref()),
                    ("client_id", filter.client_id.as_deref()),
                    ("event", filter.event.map(AuditKind::as_str)),
                    ($audit_actor, filter.actor.as_deref()),
                ] {
                    if let Some(value) = value {
                        values.push(value);
                        sql.push_str(&format!(" AND {column} = ${}", values.len() + 2));
                    }
                }
                sql.push_str(&format!(
                    " ORDER BY at DESC, id DESC LIMIT ${}",
                    values.len() + 3
                ));
                let mut query = sqlx::query(AssertSqlSafe(sql))
                    .bind(filter.since.unwrap_or(i64::MIN))
                    .bind(filter.until.unwrap_or(i64::MAX));
                for value in values {
                    query = query.bind(value);
                }
                let rows = query
                    .bind(i64::from(filter.limit))
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(query_error)?;
                rows.iter().map(audit_event).collect()
            }

            async fn purge_audit_events(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
                // A bounded batch, oldest first: never one long delete.
                let deleted = sqlx::query(
                    "DELETE FROM audit_events WHERE id IN \
                     (SELECT id FROM audit_events WHERE at < $1 ORDER BY at, id LIMIT $2)",
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

        fn audit_event(row: &$row) -> Result<AuditEvent, StoreError> {
            let detail: String = get(row, "detail")?;
            Ok(AuditEvent {
                at: get(row, "at")?,
                event: parse_name("event", &get::<String, _>(row, "event")?, AuditKind::parse)?,
                user_id: get(row, "user_id")?,
                client_id: get(row, "client_id")?,
                address: get(row, "address")?,
                detail: serde_json::from_str(&detail)
                    .map_err(|err| StoreError::Corrupt(format!("column detail: {err}")))?,
            })
        }

        // ---------------------------------------------------------------------------------
        // Sessions, consent

        macro_rules! session_columns {
            () => {
                "session_hash, sid, user_id, auth_time, amr, created_at, expires_at"
            };
        }

        /// Stores a new session, in the caller's write (a sign-in form's, too).
        pub(crate) async fn insert_session_in(
            conn: &mut $conn,
            session: &Session,
        ) -> Result<(), StoreError> {
            sqlx::query(concat!(
                "INSERT INTO sessions (",
                session_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .bind(&session.session_hash)
            .bind(&session.sid)
            .bind(&session.user_id)
            .bind(session.auth_time)
            .bind(to_json(&session.amr)?)
            .bind(session.created_at)
            .bind(session.expires_at)
            .execute(&mut *conn)
            .await
            .map_err(query_error)?;
            Ok(())
        }

        #[async_trait]
        impl SessionStore for $store {
            async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
                let mut conn = self.$writer.acquire().await.map_err(backend)?;
                insert_session_in(&mut conn, session).await
            }

            async fn get_live_session(
                &self,
                session_hash: &[u8],
                now: i64,
            ) -> Result<Option<Session>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE session_hash = $1 AND expires_at > $2 \
                      AND EXISTS (SELECT 1 FROM users u \
                                  WHERE u.user_id = sessions.user_id AND NOT u.disabled)"
                ))
                .bind(session_hash)
                .bind(now)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(session_from_row)
                .transpose()
            }

            /// Returns the session whether or not it had expired.
            async fn delete_session(&self, session_hash: &[u8]) -> Result<Option<Session>, StoreError> {
                sqlx::query(concat!(
                    "DELETE FROM sessions WHERE session_hash = $1 RETURNING ",
                    session_columns!()
                ))
                .bind(session_hash)
                .fetch_optional(&self.$writer)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(session_from_row)
                .transpose()
            }

            async fn delete_sessions_of_user(&self, user_id: &str) -> Result<u64, StoreError> {
                let deleted = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.$writer)
                    .await
                    .map_err(query_error)?
                    .rows_affected();
                Ok(deleted)
            }

            async fn list_sessions_of_user(
                &self,
                user_id: &str,
                now: i64,
            ) -> Result<Vec<Session>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, sid"
                ))
                .bind(user_id)
                .bind(now)
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?
                .iter()
                .map(session_from_row)
                .collect()
            }

            async fn delete_session_of_user(
                &self,
                user_id: &str,
                sid: &str,
            ) -> Result<Option<Session>, StoreError> {
                sqlx::query(concat!(
                    "DELETE FROM sessions WHERE user_id = $1 AND sid = $2 RETURNING ",
                    session_columns!()
                ))
                .bind(user_id)
                .bind(sid)
                .fetch_optional(&self.$writer)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(session_from_row)
                .transpose()
            }

            async fn list_consents(&self, user_id: &str) -> Result<Vec<Consent>, StoreError> {
                let rows = sqlx::query(
                    "SELECT client_id, scopes, updated_at FROM consents WHERE user_id = $1 ORDER BY client_id",
                )
                .bind(user_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(Consent {
                            client_id: get(row, "client_id")?,
                            scopes: from_json(row, "scopes")?,
                            updated_at: get(row, "updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, StoreError> {
                let row = sqlx::query("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
                    .bind(user_id)
                    .bind(client_id)
                    .fetch_optional(&self.$reader)
                    .await
                    .map_err(query_error)?;
                match row {
                    Some(row) => from_json(&row, "scopes"),
                    None => Ok(Vec::new()),
                }
            }

            /// The stored list keeps its order; new scopes are appended once each.
            async fn add_consent(
                &self,
                user_id: &str,
                client_id: &str,
                scopes: &[String],
                now: i64,
            ) -> Result<(), StoreError> {
                add_consent_to(&self.$writer, user_id, client_id, scopes, now).await
            }

            async fn purge_sessions(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = purge_sessions_in(&mut tx, now, limit).await;
                finish(tx, outcome).await
            }
        }

        async fn purge_sessions_in(
            conn: &mut $conn,
            now: i64,
            limit: u32,
        ) -> Result<u64, StoreError> {
            let sessions = sqlx::query(
                "DELETE FROM sessions WHERE session_hash IN \
                 (SELECT session_hash FROM sessions WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
            )
            .bind(now)
            .bind(i64::from(limit))
            .execute(&mut *conn)
            .await
            .map_err(query_error)?
            .rows_affected();
            let single_use = purge_single_use_in(conn, now, limit).await?;
            Ok(sessions + single_use)
        }

        fn session_from_row(row: &$row) -> Result<Session, StoreError> {
            Ok(Session {
                session_hash: get(row, "session_hash")?,
                sid: get(row, "sid")?,
                user_id: get(row, "user_id")?,
                auth_time: get(row, "auth_time")?,
                amr: from_json(row, "amr")?,
                created_at: get(row, "created_at")?,
                expires_at: get(row, "expires_at")?,
            })
        }

        // ---------------------------------------------------------------------------------
        // Users

        macro_rules! user_columns {
            () => {
                "user_id, username, email, email_verified, name, given_name, family_name, \
                 password_hash, disabled, created_at, updated_at, admin"
            };
        }

        #[async_trait]
        impl UserStore for $store {
            async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
                // Any of the three unique keys (user_id, username, lower(email)) taken is
                // a unique violation, which `query_error` turns into `Conflict`.
                sqlx::query(concat!(
                    "INSERT INTO users (",
                    user_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(&user.user_id)
                .bind(&user.username)
                .bind(user.email.as_deref())
                .bind(user.email_verified)
                .bind(user.name.as_deref())
                .bind(user.given_name.as_deref())
                .bind(user.family_name.as_deref())
                .bind(user.password_hash.as_deref())
                .bind(user.disabled)
                .bind(user.created_at)
                .bind(user.updated_at)
                .bind(user.admin)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?;
                Ok(())
            }

            async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE user_id = $1"
                ))
                .bind(user_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(user_from_row)
                .transpose()
            }

            /// Emails compare with ASCII case folding (`$login_match` of each backend).
            async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
                // At most one user has the username and at most one the email; when they
                // differ, the username match wins.
                sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE ",
                    $login_match
                ))
                .bind(login)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(user_from_row)
                .transpose()
            }

            async fn list_users(&self) -> Result<Vec<User>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users ORDER BY created_at, user_id"
                ))
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?
                .iter()
                .map(user_from_row)
                .collect()
            }

            async fn list_users_page(&self, query: &UserPageQuery) -> Result<Vec<User>, StoreError> {
                // Keyset paging on the `users_created_at` index; only fixed
                // fragments make up the SQL and every value is bound.
                let mut sql = String::from(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE (created_at, user_id) > ($1, $2)"
                ));
                let pattern = query.like_pattern();
                if pattern.is_some() {
                    sql.push_str(concat!(
                        " AND (", $lower_username, " LIKE $5 ESCAPE '\\' OR ",
                        $lower_email, " LIKE $5 ESCAPE '\\')"
                    ));
                }
                sql.push_str(" ORDER BY created_at, user_id LIMIT $3 OFFSET $4");
                let (created_at, user_id) = query
                    .after
                    .as_ref()
                    .map_or((i64::MIN, ""), |(at, id)| (*at, id.as_str()));
                let mut statement = sqlx::query(AssertSqlSafe(sql))
                    .bind(created_at)
                    .bind(user_id)
                    .bind(i64::from(query.limit))
                    .bind(i64::from(query.offset));
                if let Some(pattern) = &pattern {
                    statement = statement.bind(pattern.as_str());
                }
                statement
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(query_error)?
                    .iter()
                    .map(user_from_row)
                    .collect()
            }

            async fn count_users(&self, search: Option<&str>) -> Result<u64, StoreError> {
                let query = UserPageQuery {
                    search: search.map(str::to_owned),
                    ..UserPageQuery::default()
                };
                let count: i64 = match query.like_pattern() {
                    Some(pattern) => sqlx::query_scalar(concat!(
                        "SELECT count(*) FROM users WHERE ", $lower_username,
                        " LIKE $1 ESCAPE '\\' OR ", $lower_email, " LIKE $1 ESCAPE '\\'"
                    ))
                    .bind(pattern)
                    .fetch_one(&self.$reader)
                    .await,
                    None => {
                        sqlx::query_scalar("SELECT count(*) FROM users")
                            .fetch_one(&self.$reader)
                            .await
                    }
                }
                .map_err(query_error)?;
                Ok(u64::try_from(count).unwrap_or(0))
            }

            async fn set_user_password(
                &self,
                user_id: &str,
                password_hash: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                let updated =
                    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE user_id = $3")
                        .bind(password_hash)
                        .bind(now)
                        .bind(user_id)
                        .execute(&self.$writer)
                        .await
                        .map_err(query_error)?
                        .rows_affected();
                Ok(updated > 0)
            }

            async fn upgrade_password_hash(
                &self,
                user_id: &str,
                expected: &str,
                upgraded: &str,
            ) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE users SET password_hash = $1 WHERE user_id = $2 AND password_hash = $3",
                )
                .bind(upgraded)
                .bind(user_id)
                .bind(expected)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn set_user_disabled(
                &self,
                user_id: &str,
                disabled: bool,
                now: i64,
            ) -> Result<bool, StoreError> {
                let updated =
                    sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE user_id = $3")
                        .bind(disabled)
                        .bind(now)
                        .bind(user_id)
                        .execute(&self.$writer)
                        .await
                        .map_err(query_error)?
                        .rows_affected();
                Ok(updated > 0)
            }

            /// A taken email is a unique violation, which `query_error` turns into
            /// `Conflict`.
            async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    "UPDATE users SET email = $1, email_verified = $2, name = $3, given_name = $4, \
                       family_name = $5, updated_at = $6, admin = $7 WHERE user_id = $8",
                )
                .bind(user.email.as_deref())
                .bind(user.email_verified)
                .bind(user.name.as_deref())
                .bind(user.given_name.as_deref())
                .bind(user.family_name.as_deref())
                .bind(user.updated_at)
                .bind(user.admin)
                .bind(&user.user_id)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            /// Sessions, consents and grants (with their codes, refresh tokens and access
            /// token records) go by cascade; the live access tokens of the user's grants
            /// are revoked first.
            async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
                let mut tx = begin_write(&self.$writer).await?;
                let outcome = delete_user_in(&mut tx, user_id).await;
                finish(tx, outcome).await
            }

            async fn set_user_unlocked(&self, user_id: &str, at: i64) -> Result<bool, StoreError> {
                let updated = sqlx::query(
                    concat!(
                        "UPDATE users SET unlocked_at = ",
                        $greatest,
                        "(coalesce(unlocked_at, $1), $1) WHERE user_id = $2"
                    ),
                )
                .bind(at)
                .bind(user_id)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn login_unlocked_at(&self, login: &str) -> Result<Option<i64>, StoreError> {
                let row: Option<Option<i64>> = sqlx::query_scalar(
                    concat!("SELECT unlocked_at FROM users WHERE ", $login_match),
                )
                .bind(login)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?;
                Ok(row.flatten())
            }
        }

        async fn delete_user_in(conn: &mut $conn, user_id: &str) -> Result<bool, StoreError> {
            revoke_access_tokens_before_delete(conn, Owner::User(user_id)).await?;
            let deleted = sqlx::query("DELETE FROM users WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await
                .map_err(query_error)?
                .rows_affected();
            Ok(deleted > 0)
        }

        fn user_from_row(row: &$row) -> Result<User, StoreError> {
            Ok(User {
                user_id: get(row, "user_id")?,
                username: get(row, "username")?,
                email: get(row, "email")?,
                email_verified: get(row, "email_verified")?,
                name: get(row, "name")?,
                given_name: get(row, "given_name")?,
                family_name: get(row, "family_name")?,
                password_hash: get(row, "password_hash")?,
                disabled: get(row, "disabled")?,
                created_at: get(row, "created_at")?,
                updated_at: get(row, "updated_at")?,
                admin: get(row, "admin")?,
            })
        }
    };
}
