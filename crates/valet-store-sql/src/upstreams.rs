//! The upstream provider store: the same SQL on both backends.

/// Stamps `UpstreamStore` into a backend, with its `$store`, `$row`, and pools
/// `$reader` and `$writer`. Names resolve where it is invoked, which must have in
/// scope `UpstreamStore`, `Upstream`, `UpstreamKind`, `UpstreamLink`,
/// `StoreError`, `async_trait`, `sqlx` and this crate's helpers.
#[macro_export]
macro_rules! shared_upstream_store {
    (
        store: $store:ty,
        row: $row:ty,
        reader: $reader:ident,
        writer: $writer:ident $(,)?
    ) => {
        macro_rules! upstream_columns {
            () => {
                "name, kind, issuer, client_id, sealed_secret, scopes, authorization_endpoint, \
                 token_endpoint, userinfo_endpoint, subject_claim, email_claim, name_claim, \
                 metadata, created_at"
            };
        }

        #[async_trait]
        impl UpstreamStore for $store {
            async fn insert_upstream(&self, upstream: &Upstream) -> Result<(), StoreError> {
                sqlx::query(concat!(
                    "INSERT INTO upstreams (",
                    upstream_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))
                .bind(&upstream.name)
                .bind(upstream.kind.as_str())
                .bind(&upstream.issuer)
                .bind(&upstream.client_id)
                .bind(&upstream.sealed_secret)
                .bind(to_json(&upstream.scopes)?)
                .bind(&upstream.authorization_endpoint)
                .bind(&upstream.token_endpoint)
                .bind(&upstream.userinfo_endpoint)
                .bind(&upstream.subject_claim)
                .bind(&upstream.email_claim)
                .bind(&upstream.name_claim)
                .bind(&upstream.metadata)
                .bind(upstream.created_at)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?;
                Ok(())
            }

            async fn get_upstream(&self, name: &str) -> Result<Option<Upstream>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    upstream_columns!(),
                    " FROM upstreams WHERE name = $1"
                ))
                .bind(name)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(upstream_from_row)
                .transpose()
            }

            async fn list_upstreams(&self) -> Result<Vec<Upstream>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    upstream_columns!(),
                    " FROM upstreams ORDER BY name"
                ))
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?
                .iter()
                .map(upstream_from_row)
                .collect()
            }

            async fn delete_upstream(&self, name: &str) -> Result<bool, StoreError> {
                let deleted = sqlx::query("DELETE FROM upstreams WHERE name = $1")
                    .bind(name)
                    .execute(&self.$writer)
                    .await
                    .map_err(query_error)?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn insert_upstream_link(&self, link: &UpstreamLink) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO upstream_links (upstream, subject, user_id, linked_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&link.upstream)
                .bind(&link.subject)
                .bind(&link.user_id)
                .bind(link.linked_at)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?;
                Ok(())
            }

            async fn get_upstream_link(
                &self,
                upstream: &str,
                subject: &str,
            ) -> Result<Option<UpstreamLink>, StoreError> {
                sqlx::query(
                    "SELECT upstream, subject, user_id, linked_at FROM upstream_links \
                     WHERE upstream = $1 AND subject = $2",
                )
                .bind(upstream)
                .bind(subject)
                .fetch_optional(&self.$reader)
                .await
                .map_err(query_error)?
                .as_ref()
                .map(upstream_link_from_row)
                .transpose()
            }

            async fn list_upstream_links(
                &self,
                user_id: &str,
            ) -> Result<Vec<UpstreamLink>, StoreError> {
                sqlx::query(
                    "SELECT upstream, subject, user_id, linked_at FROM upstream_links \
                     WHERE user_id = $1 ORDER BY linked_at, upstream, subject",
                )
                .bind(user_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(query_error)?
                .iter()
                .map(upstream_link_from_row)
                .collect()
            }

            async fn delete_upstream_link(
                &self,
                user_id: &str,
                upstream: &str,
                subject: &str,
            ) -> Result<bool, StoreError> {
                let deleted = sqlx::query(
                    "DELETE FROM upstream_links WHERE user_id = $1 AND upstream = $2 \
                     AND subject = $3",
                )
                .bind(user_id)
                .bind(upstream)
                .bind(subject)
                .execute(&self.$writer)
                .await
                .map_err(query_error)?
                .rows_affected();
                Ok(deleted > 0)
            }
        }

        fn upstream_from_row(row: &$row) -> Result<Upstream, StoreError> {
            let kind: String = get(row, "kind")?;
            Ok(Upstream {
                name: get(row, "name")?,
                kind: parse_name("kind", &kind, UpstreamKind::parse)?,
                issuer: get(row, "issuer")?,
                client_id: get(row, "client_id")?,
                sealed_secret: get(row, "sealed_secret")?,
                scopes: from_json(row, "scopes")?,
                authorization_endpoint: get(row, "authorization_endpoint")?,
                token_endpoint: get(row, "token_endpoint")?,
                userinfo_endpoint: get(row, "userinfo_endpoint")?,
                subject_claim: get(row, "subject_claim")?,
                email_claim: get(row, "email_claim")?,
                name_claim: get(row, "name_claim")?,
                metadata: get(row, "metadata")?,
                created_at: get(row, "created_at")?,
            })
        }

        fn upstream_link_from_row(row: &$row) -> Result<UpstreamLink, StoreError> {
            Ok(UpstreamLink {
                upstream: get(row, "upstream")?,
                subject: get(row, "subject")?,
                user_id: get(row, "user_id")?,
                linked_at: get(row, "linked_at")?,
            })
        }
    };
}
