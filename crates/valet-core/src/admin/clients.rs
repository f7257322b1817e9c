//! Clients: register, list, get, update, rotate the secret, delete.

use serde::Serialize;
use valet_jose::{Algorithm, MasterKey};
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use super::client_encryption_rules::{EncryptionNames, check_encryption, names_of};
use super::client_rules::{
    MAX_SECRET_OVERLAP_SECONDS, NewClient, check_allowed_origins, check_auth_method, dedup,
    default_grant_types, validate,
};
use super::paging::{Page, PageRequest};
use super::{Admin, AdminError, Field, Resource};
use crate::audit::{AuditEvent, AuditKind};
use crate::secrets::{PlainSecret, generate_client_secret, random_id};
use crate::store::Client;

/// Where a registration comes from, besides an operator: a self-registered
/// client (RFC 7591) carries its registration access token's hash, a client
/// known by its metadata document its URL as id and the document's expiry.
#[derive(Default)]
pub(crate) struct Provenance {
    pub client_id: Option<String>,
    pub registration_token_hash: Option<Vec<u8>>,
    pub metadata_expires_at: Option<i64>,
}

/// A change to a client's mutable settings; `None` leaves a field as it is, a
/// list given replaces the stored one. The client's type and grant types are
/// fixed at registration.
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// `Some(None)` drops the override: the configured default applies.
    pub access_token_ttl: Option<Option<i64>>,
    pub skip_consent: Option<bool>,
    pub require_mfa: Option<bool>,
    pub refresh_grace_seconds: Option<i64>,
    pub introspect_any: Option<bool>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub dpop_bound_access_tokens: Option<bool>,
    /// `Some(None)` removes the inline keys.
    pub jwks: Option<Option<String>>,
    /// `Some(None)` removes the key URL.
    pub jwks_uri: Option<Option<String>>,
    pub token_exchange_audiences: Option<Vec<String>>,
    /// `Some(None)` stops encrypting ID tokens.
    pub id_token_encryption: Option<Option<EncryptionNames>>,
    /// `Some(None)` stops signing UserInfo answers.
    pub userinfo_signed_response_alg: Option<Option<String>>,
    /// `Some(None)` stops encrypting UserInfo answers.
    pub userinfo_encryption: Option<Option<EncryptionNames>>,
}

/// A client as the admin interfaces show it: everything but secret hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    /// `public` or `confidential`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub access_token_ttl: Option<i64>,
    pub skip_consent: bool,
    pub require_mfa: bool,
    pub refresh_grace_seconds: i64,
    pub id_token_signed_response_alg: Option<String>,
    pub introspect_any: bool,
    pub dpop_bound_access_tokens: bool,
    /// `operator`, `dynamic` (RFC 7591) or `metadata_document`.
    #[schema(value_type = String)]
    pub origin: &'static str,
    /// Until when the secret replaced by an overlapping rotation still works.
    pub previous_secret_valid_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub require_pushed_authorization_requests: bool,
    /// How it authenticates (RFC 7591 names).
    pub token_endpoint_auth_methods: Vec<String>,
    /// Its public keys (a JWK Set), if registered inline.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub token_exchange_audiences: Vec<String>,
    /// OIDC Registration §2 names; absent when not set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_encrypted_response_alg: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_encrypted_response_enc: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_encrypted_response_alg: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_encrypted_response_enc: Option<&'static str>,
}

impl From<&Client> for ClientRecord {
    fn from(client: &Client) -> Self {
        Self {
            client_id: client.client_id.clone(),
            name: client.name.clone(),
            kind: if client.is_public() {
                "public"
            } else {
                "confidential"
            },
            grant_types: grant_names(&client.grant_types),
            scopes: client.scopes.clone(),
            audiences: client.audiences.clone(),
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            allowed_origins: client.allowed_origins.clone(),
            access_token_ttl: client.access_token_ttl,
            skip_consent: client.skip_consent,
            require_mfa: client.require_mfa,
            refresh_grace_seconds: client.refresh_grace_seconds,
            id_token_signed_response_alg: client
                .id_token_signed_response_alg
                .map(|alg| alg.to_string()),
            introspect_any: client.introspect_any,
            dpop_bound_access_tokens: client.dpop_bound_access_tokens,
            origin: client.origin().as_str(),
            previous_secret_valid_until: client.previous_secret_expires_at,
            created_at: client.created_at,
            updated_at: client.updated_at,
            require_pushed_authorization_requests: client.require_pushed_authorization_requests,
            token_endpoint_auth_methods: client
                .token_endpoint_auth_methods
                .iter()
                .map(|method| method.as_str().to_owned())
                .collect(),
            jwks: client
                .jwks
                .as_deref()
                .and_then(|jwks| serde_json::from_str(jwks).ok()),
            jwks_uri: client.jwks_uri.clone(),
            token_exchange_audiences: client.token_exchange_audiences.clone(),
            id_token_encrypted_response_alg: client.id_token_encryption.map(|c| c.alg.as_str()),
            id_token_encrypted_response_enc: client.id_token_encryption.map(|c| c.enc.as_str()),
            userinfo_signed_response_alg: client
                .userinfo_signed_response_alg
                .map(Algorithm::as_str),
            userinfo_encrypted_response_alg: client.userinfo_encryption.map(|c| c.alg.as_str()),
            userinfo_encrypted_response_enc: client.userinfo_encryption.map(|c| c.enc.as_str()),
        }
    }
}

/// A new client, with the secret of a confidential one: it is not stored and
/// cannot be shown again.
#[derive(Debug)]
pub struct RegisteredClient {
    pub client: ClientRecord,
    pub secret: Option<PlainSecret>,
}

/// An updated client, and how many of its grants the update revoked.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UpdatedClient {
    pub client: ClientRecord,
    /// The fields that changed, by name.
    #[schema(value_type = Vec<String>)]
    pub changed: Vec<&'static str>,
    pub revoked_grants: u64,
}

/// A new secret, and until when the replaced one still works (`None`: it
/// stopped working at once).
#[derive(Debug)]
pub struct RotatedSecret {
    pub client_id: String,
    pub secret: PlainSecret,
    pub previous_valid_until: Option<i64>,
}

impl Admin<'_> {
    /// Registers a client after checking every field; audited as `client.created`.
    pub async fn register_client(&self, new: NewClient) -> Result<RegisteredClient, AdminError> {
        self.register_client_as(new, Provenance::default()).await
    }

    /// Registers a client of the given provenance (a self-registered one has
    /// its registration access token's hash); audited as `client.created` with
    /// its `origin`.
    pub(crate) async fn register_client_as(
        &self,
        new: NewClient,
        provenance: Provenance,
    ) -> Result<RegisteredClient, AdminError> {
        let now = self.now();
        let (client, secret) =
            build_client(new, provenance, now, self.access_token_max_ttl, self.master)?;
        self.store.insert_client(&client).await?;
        self.record(
            AuditEvent::new(AuditKind::ClientCreated, now)
                .client(&client.client_id)
                .detail("name", client.name.as_str())
                .detail("grant_types", grant_names(&client.grant_types).join(" "))
                .detail("scope", client.scopes.join(" "))
                .detail(
                    "token_endpoint_auth_method",
                    client
                        .token_endpoint_auth_methods
                        .iter()
                        .map(|method| method.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                )
                .detail("origin", client.origin().as_str()),
        )
        .await;
        Ok(RegisteredClient {
            client: ClientRecord::from(&client),
            secret,
        })
    }

    /// All clients, oldest first.
    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, AdminError> {
        let clients = self.store.list_clients().await?;
        Ok(clients.iter().map(ClientRecord::from).collect())
    }

    /// A page of clients, oldest first (by creation time, then id).
    pub async fn list_clients_page(
        &self,
        page: &PageRequest,
    ) -> Result<Page<ClientRecord>, AdminError> {
        let limit = page.limit()?;
        let after = page.after()?;
        let clients = self
            .store
            .list_clients_after(
                after.as_ref().map(|(at, id)| (*at, id.as_str())),
                u32::try_from(limit.saturating_add(1)).unwrap_or(u32::MAX),
            )
            .await?;
        let records = clients.iter().map(ClientRecord::from).collect();
        Ok(PageRequest::finish(
            limit,
            records,
            |client: &ClientRecord| (client.created_at, client.client_id.as_str()),
        ))
    }

    pub async fn get_client(&self, client_id: &str) -> Result<ClientRecord, AdminError> {
        let client = self.stored_client(client_id).await?;
        Ok(ClientRecord::from(&client))
    }

    async fn stored_client(&self, client_id: &str) -> Result<Client, AdminError> {
        self.store
            .get_client(client_id)
            .await?
            .ok_or_else(|| AdminError::not_found(Resource::Client, client_id))
    }

    /// Changes a client's mutable settings, checked as at registration; audited
    /// as `client.updated` with the changed fields. Removing a scope or an
    /// audience revokes every grant of the client: a refresh token would
    /// otherwise keep getting what the client may no longer have (a refresh keeps
    /// the grant's scope and resources, RFC 6749 §6, RFC 8707 §2.2). Access
    /// tokens already issued keep what they were issued with until they expire.
    /// Other nodes see the change within `client_cache_ttl`.
    pub async fn update_client(
        &self,
        client_id: &str,
        update: ClientUpdate,
    ) -> Result<UpdatedClient, AdminError> {
        let now = self.now();
        let stored = self.stored_client(client_id).await?;
        let (updated, changed, names) = apply(&stored, update);
        let shape = shape_of(&updated, names);
        validate(&shape, &shape.grant_types, self.access_token_max_ttl)?;
        let encryption = check_encryption(&shape)?;
        check_auth_method(&shape)?;
        let allowed_origins = check_allowed_origins(&shape.allowed_origins)?;
        if changed.is_empty() {
            return Ok(UpdatedClient {
                client: ClientRecord::from(&stored),
                changed,
                revoked_grants: 0,
            });
        }
        let updated = Client {
            name: updated.name.trim().to_owned(),
            redirect_uris: dedup(&updated.redirect_uris),
            post_logout_redirect_uris: dedup(&updated.post_logout_redirect_uris),
            allowed_origins,
            scopes: dedup(&updated.scopes),
            audiences: dedup(&updated.audiences),
            token_exchange_audiences: dedup(&updated.token_exchange_audiences),
            id_token_encryption: encryption.id_token,
            userinfo_signed_response_alg: encryption.userinfo_signed,
            userinfo_encryption: encryption.userinfo,
            updated_at: now,
            ..updated
        };
        if !self.store.update_client(&updated).await? {
            return Err(AdminError::not_found(Resource::Client, client_id));
        }
        let narrowed = removes_any(&stored.scopes, &updated.scopes)
            || removes_any(&stored.audiences, &updated.audiences);
        let revoked_grants = if narrowed {
            self.store.revoke_grants_of_client(client_id, now).await?
        } else {
            0
        };
        self.record(
            AuditEvent::new(AuditKind::ClientUpdated, now)
                .client(client_id)
                .detail("changed", changed.join(" "))
                .detail("revoked_grants", revoked_grants),
        )
        .await;
        Ok(UpdatedClient {
            client: ClientRecord::from(&updated),
            changed,
            revoked_grants,
        })
    }

    /// Replaces a confidential client's secret; audited as
    /// `client.secret_rotated`. The new one works at once on every node (a node
    /// whose cached record does not know it re-reads the client); with
    /// `overlap_seconds` > 0 the old one keeps working until `now +
    /// overlap_seconds`, so services can roll without downtime, and stops then
    /// everywhere. Only one previous secret is kept: rotating again drops the
    /// oldest. Without overlap the old one stops at once on this node and within
    /// the client cache lifetime on others.
    pub async fn rotate_client_secret(
        &self,
        client_id: &str,
        overlap_seconds: i64,
    ) -> Result<RotatedSecret, AdminError> {
        if !(0..=MAX_SECRET_OVERLAP_SECONDS).contains(&overlap_seconds) {
            return Err(AdminError::invalid(
                Field::new("overlap_seconds"),
                Some(overlap_seconds.to_string()),
                "must be between 0 and 30 days",
            ));
        }
        let now = self.now();
        let not_found = || AdminError::not_found(Resource::ConfidentialClient, client_id);
        let client = match self.store.get_client(client_id).await? {
            Some(client) if !client.is_public() => client,
            _ => return Err(not_found()),
        };
        let secret_jwt = client.allows_auth_method(TokenEndpointAuthMethod::ClientSecretJwt);
        if secret_jwt && overlap_seconds > 0 {
            // Only one secret can be sealed: the old one cannot keep working.
            return Err(AdminError::invalid(
                Field::new("overlap_seconds"),
                Some(overlap_seconds.to_string()),
                "a client_secret_jwt client has one secret at a time: rotate without overlap",
            ));
        }
        let (secret, hash) = generate_client_secret().map_err(internal)?;
        let sealed = if secret_jwt {
            Some(self.seal_secret(client_id, &secret)?)
        } else {
            None
        };
        let previous_valid_until =
            (overlap_seconds > 0).then(|| now.saturating_add(overlap_seconds));
        if !self
            .store
            .set_client_secret(
                client_id,
                &hash,
                previous_valid_until,
                now,
                sealed.as_deref(),
            )
            .await?
        {
            return Err(not_found());
        }
        let mut event = AuditEvent::new(AuditKind::ClientSecretRotated, now)
            .client(client_id)
            .detail("overlap_seconds", overlap_seconds);
        if let Some(until) = previous_valid_until {
            event = event.detail("previous_secret_valid_until", until);
        }
        self.record(event).await;
        Ok(RotatedSecret {
            client_id: client_id.to_owned(),
            secret,
            previous_valid_until,
        })
    }

    fn seal_secret(&self, client_id: &str, secret: &PlainSecret) -> Result<Vec<u8>, AdminError> {
        seal_secret(self.master, client_id, secret)
    }

    /// Deletes a client after revoking every grant it holds; audited as
    /// `client.deleted`. The store's deletion revokes every status list block
    /// reserved for it in the same transaction and refuses new blocks from then
    /// on, so its refresh tokens die with it and its access tokens — also those a
    /// node still caching the client mints afterwards — turn inactive at
    /// introspection and at every resource server.
    pub async fn delete_client(&self, client_id: &str) -> Result<(), AdminError> {
        let now = self.now();
        self.store.revoke_grants_of_client(client_id, now).await?;
        if !self.store.delete_client(client_id, now).await? {
            return Err(AdminError::not_found(Resource::Client, client_id));
        }
        self.record(AuditEvent::new(AuditKind::ClientDeleted, now).client(client_id))
            .await;
        Ok(())
    }
}

/// The client record a registration makes, after checking every field;
/// nothing is stored.
pub(crate) fn build_client(
    new: NewClient,
    provenance: Provenance,
    now: i64,
    access_token_max_ttl: i64,
    master: Option<&MasterKey>,
) -> Result<(Client, Option<PlainSecret>), AdminError> {
    let grant_types = if new.grant_types.is_empty() {
        default_grant_types(&new)
    } else {
        dedup(&new.grant_types)
    };
    let (grant_types, id_token_alg) = validate(&new, &grant_types, access_token_max_ttl)?;
    let encryption = check_encryption(&new)?;
    let allowed_origins = check_allowed_origins(&new.allowed_origins)?;
    let method = check_auth_method(&new)?;
    let client_id = match provenance.client_id {
        Some(client_id) => client_id,
        None => random_id().map_err(internal)?,
    };
    // A confidential client may send its secret either way, as every client
    // could before the method was recorded (RFC 6749 §2.3.1).
    let (token_endpoint_auth_methods, secret, secret_hash, sealed_secret) = if new.public {
        (vec![TokenEndpointAuthMethod::None], None, None, None)
    } else if method == Some(TokenEndpointAuthMethod::PrivateKeyJwt) {
        (
            vec![TokenEndpointAuthMethod::PrivateKeyJwt],
            None,
            None,
            None,
        )
    } else if method == Some(TokenEndpointAuthMethod::ClientSecretJwt) {
        // RFC 7523 §2.2: the secret is the MAC key, so it is kept (sealed);
        // its hash too, so a rotation works as for any secret.
        let (secret, hash) = generate_client_secret().map_err(internal)?;
        let sealed = seal_secret(master, &client_id, &secret)?;
        (
            vec![TokenEndpointAuthMethod::ClientSecretJwt],
            Some(secret),
            Some(hash),
            Some(sealed),
        )
    } else {
        let (secret, hash) = generate_client_secret().map_err(internal)?;
        (
            vec![
                TokenEndpointAuthMethod::ClientSecretBasic,
                TokenEndpointAuthMethod::ClientSecretPost,
            ],
            Some(secret),
            Some(hash),
            None,
        )
    };
    let client = Client {
        client_id,
        name: new.name.trim().to_owned(),
        token_endpoint_auth_methods,
        secret_hash,
        redirect_uris: dedup(&new.redirect_uris),
        post_logout_redirect_uris: dedup(&new.post_logout_redirect_uris),
        allowed_origins,
        grant_types,
        scopes: dedup(&new.scopes),
        audiences: dedup(&new.audiences),
        access_token_ttl: new.access_token_ttl,
        skip_consent: new.skip_consent,
        require_mfa: new.require_mfa,
        refresh_grace_seconds: new.refresh_grace_seconds,
        id_token_signed_response_alg: id_token_alg,
        created_at: now,
        updated_at: now,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        introspect_any: new.introspect_any,
        require_pushed_authorization_requests: new.require_pushed_authorization_requests,
        dpop_bound_access_tokens: new.dpop_bound_access_tokens,
        jwks: new.jwks.clone(),
        jwks_uri: new.jwks_uri.clone(),
        token_exchange_audiences: dedup(&new.token_exchange_audiences),
        registration_token_hash: provenance.registration_token_hash,
        metadata_expires_at: provenance.metadata_expires_at,
        sealed_secret,
        id_token_encryption: encryption.id_token,
        userinfo_signed_response_alg: encryption.userinfo_signed,
        userinfo_encryption: encryption.userinfo,
    };
    Ok((client, secret))
}

/// A `client_secret_jwt` client's secret sealed for it; refused without the
/// master key.
fn seal_secret(
    master: Option<&MasterKey>,
    client_id: &str,
    secret: &PlainSecret,
) -> Result<Vec<u8>, AdminError> {
    let master = master.ok_or_else(|| {
        AdminError::Internal(
            "client_secret_jwt needs the master key to seal the client's secret, and none was given"
                .to_owned(),
        )
    })?;
    crate::client_auth::secret_jwt::seal(master, client_id, secret.expose())
        .map_err(|error| AdminError::Internal(format!("could not seal the client secret: {error}")))
}

fn internal(error: impl std::fmt::Display) -> AdminError {
    AdminError::Internal(format!("could not generate a secret or id: {error}"))
}

/// The stored client with the update applied (not yet checked), and the names
/// of the fields that differ.
/// An updated client as a registration, to check it with the same rules.
fn shape_of(updated: &Client, names: EncryptionUpdate) -> NewClient {
    let (id_token_encryption, userinfo_signed_response_alg, userinfo_encryption) = names;
    NewClient {
        name: updated.name.clone(),
        public: updated.is_public(),
        redirect_uris: updated.redirect_uris.clone(),
        post_logout_redirect_uris: updated.post_logout_redirect_uris.clone(),
        allowed_origins: updated.allowed_origins.clone(),
        grant_types: grant_names(&updated.grant_types),
        scopes: updated.scopes.clone(),
        audiences: updated.audiences.clone(),
        access_token_ttl: updated.access_token_ttl,
        skip_consent: updated.skip_consent,
        require_mfa: updated.require_mfa,
        refresh_grace_seconds: updated.refresh_grace_seconds,
        id_token_signed_response_alg: updated
            .id_token_signed_response_alg
            .map(|alg| alg.to_string()),
        introspect_any: updated.introspect_any,
        require_pushed_authorization_requests: updated.require_pushed_authorization_requests,
        dpop_bound_access_tokens: updated.dpop_bound_access_tokens,
        token_endpoint_auth_method: [
            TokenEndpointAuthMethod::PrivateKeyJwt,
            TokenEndpointAuthMethod::ClientSecretJwt,
        ]
        .into_iter()
        .find(|method| updated.allows_auth_method(*method))
        .map(|method| method.as_str().to_owned()),
        jwks: updated.jwks.clone(),
        jwks_uri: updated.jwks_uri.clone(),
        token_exchange_audiences: updated.token_exchange_audiences.clone(),
        id_token_encryption,
        userinfo_signed_response_alg,
        userinfo_encryption,
    }
}

/// The stored encryption settings as names, with the update's replacements.
type EncryptionUpdate = (
    Option<EncryptionNames>,
    Option<String>,
    Option<EncryptionNames>,
);

fn apply(
    stored: &Client,
    mut update: ClientUpdate,
) -> (Client, Vec<&'static str>, EncryptionUpdate) {
    let mut client = stored.clone();
    let mut changed = Vec::new();
    let mut set = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    if let Some(name) = update.name.take() {
        set("name", name.trim() != client.name);
        client.name = name;
    }
    if let Some(uris) = update.redirect_uris.take() {
        set("redirect_uris", dedup(&uris) != client.redirect_uris);
        client.redirect_uris = uris;
    }
    if let Some(uris) = update.post_logout_redirect_uris.take() {
        set(
            "post_logout_redirect_uris",
            dedup(&uris) != client.post_logout_redirect_uris,
        );
        client.post_logout_redirect_uris = uris;
    }
    if let Some(origins) = update.allowed_origins.take() {
        set(
            "allowed_origins",
            check_allowed_origins(&origins).ok().as_ref() != Some(&client.allowed_origins),
        );
        client.allowed_origins = origins;
    }
    if let Some(scopes) = update.scopes.take() {
        set("scopes", dedup(&scopes) != client.scopes);
        client.scopes = scopes;
    }
    if let Some(audiences) = update.audiences.take() {
        set("audiences", dedup(&audiences) != client.audiences);
        client.audiences = audiences;
    }
    apply_settings(&mut client, &update, &mut changed);
    let names = apply_encryption(stored, &mut update, &mut changed);
    apply_keys(
        &mut client,
        (update.jwks, update.jwks_uri),
        update.token_exchange_audiences,
        &mut changed,
    );
    (client, changed, names)
}

/// The encryption part of [`apply`]: names, checked with the rest of the shape.
fn apply_encryption(
    stored: &Client,
    update: &mut ClientUpdate,
    changed: &mut Vec<&'static str>,
) -> EncryptionUpdate {
    let (mut id_token, mut signed, mut userinfo) = names_of(stored);
    // `enc` left out means A256GCM: naming it is no change.
    let same = |a: &Option<EncryptionNames>, b: &Option<EncryptionNames>| {
        a.as_ref().map(EncryptionNames::with_default_enc)
            == b.as_ref().map(EncryptionNames::with_default_enc)
    };
    if let Some(new) = update.id_token_encryption.take() {
        if !same(&new, &id_token) {
            changed.push("id_token_encryption");
        }
        id_token = new;
    }
    if let Some(new) = update.userinfo_signed_response_alg.take() {
        if new != signed {
            changed.push("userinfo_signed_response_alg");
        }
        signed = new;
    }
    if let Some(new) = update.userinfo_encryption.take() {
        if !same(&new, &userinfo) {
            changed.push("userinfo_encryption");
        }
        userinfo = new;
    }
    (id_token, signed, userinfo)
}

/// The single-valued settings part of [`apply`].
fn apply_settings(c: &mut Client, update: &ClientUpdate, changed: &mut Vec<&'static str>) {
    replace(
        changed,
        "access_token_ttl",
        &mut c.access_token_ttl,
        update.access_token_ttl,
    );
    replace(
        changed,
        "skip_consent",
        &mut c.skip_consent,
        update.skip_consent,
    );
    replace(
        changed,
        "require_mfa",
        &mut c.require_mfa,
        update.require_mfa,
    );
    replace(
        changed,
        "require_pushed_authorization_requests",
        &mut c.require_pushed_authorization_requests,
        update.require_pushed_authorization_requests,
    );
    replace(
        changed,
        "refresh_grace_seconds",
        &mut c.refresh_grace_seconds,
        update.refresh_grace_seconds,
    );
    replace(
        changed,
        "introspect_any",
        &mut c.introspect_any,
        update.introspect_any,
    );
    replace(
        changed,
        "dpop_bound_access_tokens",
        &mut c.dpop_bound_access_tokens,
        update.dpop_bound_access_tokens,
    );
}

/// Sets `field` to `new` when given, noting `name` in `changed` if it differs.
fn replace<T: PartialEq>(
    changed: &mut Vec<&'static str>,
    name: &'static str,
    field: &mut T,
    new: Option<T>,
) {
    if let Some(new) = new {
        if new != *field {
            changed.push(name);
        }
        *field = new;
    }
}

/// The key and token exchange part of [`apply`].
fn apply_keys(
    client: &mut Client,
    keys: (Option<Option<String>>, Option<Option<String>>),
    token_exchange_audiences: Option<Vec<String>>,
    changed: &mut Vec<&'static str>,
) {
    // Keys given one way replace keys registered the other way.
    let (jwks, jwks_uri) = match keys {
        (Some(Some(jwks)), None) => (Some(Some(jwks)), Some(None)),
        (None, Some(Some(uri))) => (Some(None), Some(Some(uri))),
        other => other,
    };
    if let Some(jwks) = jwks {
        if jwks != client.jwks {
            changed.push("jwks");
        }
        client.jwks = jwks;
    }
    if let Some(uri) = jwks_uri {
        if uri != client.jwks_uri {
            changed.push("jwks_uri");
        }
        client.jwks_uri = uri;
    }
    if let Some(audiences) = token_exchange_audiences {
        if dedup(&audiences) != client.token_exchange_audiences {
            changed.push("token_exchange_audiences");
        }
        client.token_exchange_audiences = audiences;
    }
}

fn removes_any(before: &[String], after: &[String]) -> bool {
    before.iter().any(|value| !after.contains(value))
}

/// The names of grant types, as registration takes and the records show them.
fn grant_names(grants: &[GrantType]) -> Vec<String> {
    grants
        .iter()
        .map(|grant| grant.as_str().to_owned())
        .collect()
}
