//! Clients: register, list, get, update, rotate the secret, delete.

use serde::Serialize;
use valet_jose::{Algorithm, MasterKey};
use valet_protocol::scope::is_scope_token;
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use super::{Admin, AdminError, Field, Resource};
use crate::audit::{AuditEvent, AuditKind};
use crate::client_auth::keys::{check_jwks, check_jwks_uri};
use crate::cors::parse_allowed_origin;
use crate::secrets::{PlainSecret, generate_client_secret, random_id};
use crate::store::Client;
use crate::token::id_token::ID_TOKEN_ALGORITHMS;

/// The longest refresh grace window a client may ask for: long enough for a retry
/// over a flaky network, short enough that a stolen token is still caught.
pub const MAX_REFRESH_GRACE_SECONDS: i64 = 60;

/// The longest overlap a rotation may give the old secret: long enough to roll a
/// fleet of services, short enough that a leaked secret does not linger.
pub const MAX_SECRET_OVERLAP_SECONDS: i64 = 30 * 86_400;

/// A registration. Checked before anything is stored.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins that may call the token, UserInfo and revocation
    /// endpoints (CORS), besides a public client's redirect URI origins.
    pub allowed_origins: Vec<String>,
    /// Empty means the default for the client's shape (see [`default_grant_types`]).
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<i64>,
    /// First-party app: no consent page.
    pub skip_consent: bool,
    /// Users must sign in with a second factor (enrolling one if they have none).
    pub require_mfa: bool,
    /// Refresh rotation grace window in seconds (0 = strict).
    pub refresh_grace_seconds: i64,
    /// `RS256` (default) or `ES256`.
    pub id_token_signed_response_alg: Option<String>,
    /// May introspect any token, not only those issued to it or naming it in
    /// `aud` (a resource server that is registered under another id).
    pub introspect_any: bool,
    /// Its authorization requests must be pushed to `/par` first (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: bool,
    /// `private_key_jwt` for a confidential client that authenticates with a
    /// signed assertion instead of a secret (it then gets no secret and needs
    /// `jwks` or `jwks_uri`); `None` for the default: a secret (confidential) or
    /// `none` (public). `client_secret_jwt` for a confidential client that MACs
    /// assertions with its (Valet-generated) secret: the secret is then also
    /// stored sealed under the master key.
    pub token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JWK Set document (JSON text).
    pub jwks: Option<String>,
    /// Where the client publishes its JWK Set.
    pub jwks_uri: Option<String>,
    /// Audiences it may exchange tokens into (RFC 8693); needs the
    /// token-exchange grant type.
    pub token_exchange_audiences: Vec<String>,
}

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
}

/// A client as the admin interfaces show it: everything but secret hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    /// `public` or `confidential`.
    #[serde(rename = "type")]
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
    pub origin: &'static str,
    /// Until when the secret replaced by an overlapping rotation still works.
    pub previous_secret_valid_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub require_pushed_authorization_requests: bool,
    /// How it authenticates (RFC 7591 names).
    pub token_endpoint_auth_methods: Vec<String>,
    /// Its public keys (a JWK Set), if registered inline.
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub token_exchange_audiences: Vec<String>,
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
#[derive(Debug, Clone, Serialize)]
pub struct UpdatedClient {
    pub client: ClientRecord,
    /// The fields that changed, by name.
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

/// Grant types when none are given: a client with redirect URIs signs users in,
/// one without is a service.
pub fn default_grant_types(new: &NewClient) -> Vec<String> {
    let grants = if new.public || !new.redirect_uris.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        vec![GrantType::ClientCredentials]
    };
    grants.into_iter().map(|g| g.as_str().to_owned()).collect()
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
        let (updated, changed) = apply(&stored, update);
        let shape = NewClient {
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
        };
        validate(&shape, &shape.grant_types, self.access_token_max_ttl)?;
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
fn apply(stored: &Client, mut update: ClientUpdate) -> (Client, Vec<&'static str>) {
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
    apply_keys(
        &mut client,
        (update.jwks, update.jwks_uri),
        update.token_exchange_audiences,
        &mut changed,
    );
    (client, changed)
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

/// Each origin checked and serialized as browsers send it (RFC 6454 §6.2),
/// without repeats.
fn check_allowed_origins(origins: &[String]) -> Result<Vec<String>, AdminError> {
    let mut checked = Vec::with_capacity(origins.len());
    for (index, origin) in origins.iter().enumerate() {
        let serialized = parse_allowed_origin(origin).map_err(|reason| {
            AdminError::invalid(
                Field::at("allowed_origins", index),
                Some(origin.clone()),
                reason,
            )
        })?;
        checked.push(serialized);
    }
    Ok(dedup(&checked))
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

/// The rules every client's settings follow, at registration and at update;
/// returns the grant types and the ID token algorithm, parsed.
fn validate(
    new: &NewClient,
    grant_types: &[String],
    max_ttl: i64,
) -> Result<(Vec<GrantType>, Option<Algorithm>), AdminError> {
    check_name(&new.name)?;
    let grants = check_grant_types(new, grant_types)?;
    let has = |grant: GrantType| grants.contains(&grant);
    if has(GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
        return Err(AdminError::invalid(
            Field::new("redirect_uris"),
            None,
            "authorization_code needs at least one redirect URI",
        ));
    }
    if has(GrantType::ClientCredentials) && new.audiences.is_empty() {
        return Err(AdminError::invalid(
            Field::new("audiences"),
            None,
            "client_credentials needs at least one audience (the API its tokens are for)",
        ));
    }
    for (index, uri) in new.redirect_uris.iter().enumerate() {
        check_redirect_uri(Field::at("redirect_uris", index), uri)?;
    }
    for (index, uri) in new.post_logout_redirect_uris.iter().enumerate() {
        check_redirect_uri(Field::at("post_logout_redirect_uris", index), uri)?;
    }
    if let Some((index, scope)) = new
        .scopes
        .iter()
        .enumerate()
        .find(|(_, s)| !is_scope_token(s))
    {
        return Err(AdminError::invalid(
            Field::at("scopes", index),
            Some(scope.clone()),
            "not a valid scope token (RFC 6749 §3.3: printable ASCII, no space, quote or backslash)",
        ));
    }
    if let Some((index, aud)) =
        new.audiences.iter().enumerate().find(|(_, a)| {
            a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic()) || a.contains('#')
        })
    {
        return Err(AdminError::invalid(
            Field::at("audiences", index),
            Some(aud.clone()),
            "must be non-empty printable ASCII without spaces",
        ));
    }
    if let Some((index, aud)) = new
        .token_exchange_audiences
        .iter()
        .enumerate()
        .find(|(_, a)| a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic()) || a.contains('#'))
    {
        return Err(AdminError::invalid(
            Field::at("token_exchange_audiences", index),
            Some(aud.clone()),
            "must be non-empty printable ASCII without spaces or fragment",
        ));
    }
    check_keys(new)?;
    let id_token_alg = check_numbers(new, max_ttl)?;
    Ok((grants, id_token_alg))
}

/// RFC 7591 §2: `jwks` and `jwks_uri` are not both given; each is checked.
fn check_keys(new: &NewClient) -> Result<(), AdminError> {
    if new.jwks.is_some() && new.jwks_uri.is_some() {
        return Err(AdminError::invalid(
            Field::new("jwks_uri"),
            None,
            "give either jwks or jwks_uri, not both (RFC 7591 §2)",
        ));
    }
    if let Some(jwks) = &new.jwks {
        check_jwks(jwks).map_err(|reason| {
            AdminError::invalid(
                Field::new("jwks"),
                None,
                format!("not a usable JWK Set: {reason}"),
            )
        })?;
    }
    if let Some(uri) = &new.jwks_uri {
        check_jwks_uri(uri).map_err(|reason| {
            AdminError::invalid(Field::new("jwks_uri"), Some(uri.clone()), reason)
        })?;
    }
    Ok(())
}

/// The client's assertion method (`private_key_jwt` or `client_secret_jwt`),
/// if it asked for one, checked against its type and keys; `None` for the
/// default (a secret, or none for a public client).
fn check_auth_method(new: &NewClient) -> Result<Option<TokenEndpointAuthMethod>, AdminError> {
    let field = || Field::new("token_endpoint_auth_method");
    match new.token_endpoint_auth_method.as_deref() {
        None => Ok(None),
        Some(name) => match TokenEndpointAuthMethod::parse(name) {
            Some(
                TokenEndpointAuthMethod::PrivateKeyJwt | TokenEndpointAuthMethod::ClientSecretJwt,
            ) if new.public => Err(AdminError::invalid(
                field(),
                Some(name.to_owned()),
                "a public client authenticates with none",
            )),
            Some(TokenEndpointAuthMethod::PrivateKeyJwt)
                if new.jwks.is_none() && new.jwks_uri.is_none() =>
            {
                Err(AdminError::invalid(
                    field(),
                    Some(name.to_owned()),
                    "private_key_jwt needs the client's public keys: jwks or jwks_uri",
                ))
            }
            Some(
                method @ (TokenEndpointAuthMethod::PrivateKeyJwt
                | TokenEndpointAuthMethod::ClientSecretJwt),
            ) => Ok(Some(method)),
            Some(
                TokenEndpointAuthMethod::ClientSecretBasic
                | TokenEndpointAuthMethod::ClientSecretPost,
            ) if !new.public => Ok(None),
            Some(TokenEndpointAuthMethod::None) if new.public => Ok(None),
            _ => Err(AdminError::invalid(
                field(),
                Some(name.to_owned()),
                "must be private_key_jwt or client_secret_jwt, or left out for the default (a secret, or none for a public client)",
            )),
        },
    }
}

fn check_name(name: &str) -> Result<(), AdminError> {
    let name = name.trim();
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.chars().count() > 200 || name.chars().any(char::is_control) {
        "at most 200 characters, no control characters"
    } else {
        return Ok(());
    };
    Err(AdminError::invalid(Field::new("name"), None, reason))
}

/// Each grant type known, and the combination one a client of this type may have.
fn check_grant_types(
    new: &NewClient,
    grant_types: &[String],
) -> Result<Vec<GrantType>, AdminError> {
    let mut grants = Vec::with_capacity(grant_types.len());
    for (index, name) in grant_types.iter().enumerate() {
        // The short name stands for RFC 8693's URN.
        let grant = match name.as_str() {
            "token_exchange" | "token-exchange" => Some(GrantType::TokenExchange),
            name => GrantType::parse(name),
        };
        grants.push(grant.ok_or_else(|| {
            AdminError::invalid(
                Field::at("grant_types", index),
                Some(name.clone()),
                "unknown grant type (known: authorization_code, client_credentials, refresh_token, device_code, token_exchange)",
            )
        })?);
    }
    let has = |grant: GrantType| grants.contains(&grant);
    let problem = if new.public && has(GrantType::TokenExchange) {
        Some((
            Some(GrantType::TokenExchange.as_str()),
            "a public client cannot authenticate and cannot exchange tokens",
        ))
    } else if has(GrantType::TokenExchange) && new.token_exchange_audiences.is_empty() {
        Some((
            Some(GrantType::TokenExchange.as_str()),
            "token exchange needs at least one token exchange audience (the APIs it may exchange tokens for)",
        ))
    } else if !has(GrantType::TokenExchange) && !new.token_exchange_audiences.is_empty() {
        Some((
            None,
            "token exchange audiences need the token_exchange grant type",
        ))
    } else if new.public && has(GrantType::ClientCredentials) {
        Some((
            Some("client_credentials"),
            "a public client has no secret and cannot use client_credentials",
        ))
    } else if new.public && !has(GrantType::AuthorizationCode) && !has(GrantType::DeviceCode) {
        Some((
            None,
            "a public client can only use authorization_code (with redirect URIs) or device_code",
        ))
    } else if has(GrantType::RefreshToken)
        && !has(GrantType::AuthorizationCode)
        && !has(GrantType::DeviceCode)
    {
        Some((
            Some("refresh_token"),
            "only together with authorization_code or device_code",
        ))
    } else {
        None
    };
    match problem {
        Some((value, reason)) => Err(AdminError::invalid(
            Field::new("grant_types"),
            value.map(str::to_owned),
            reason,
        )),
        None => Ok(grants),
    }
}

/// The numbers and the ID token algorithm; returns the algorithm, parsed.
fn check_numbers(new: &NewClient, max_ttl: i64) -> Result<Option<Algorithm>, AdminError> {
    if !(0..=MAX_REFRESH_GRACE_SECONDS).contains(&new.refresh_grace_seconds) {
        return Err(AdminError::invalid(
            Field::new("refresh_grace_seconds"),
            Some(new.refresh_grace_seconds.to_string()),
            "must be between 0 and 60",
        ));
    }
    let id_token_alg = match &new.id_token_signed_response_alg {
        None => None,
        // EdDSA is for access tokens only: relying parties need not know it (OIDC Core
        // §15.1 makes only RS256 mandatory) and discovery does not offer it for ID tokens.
        Some(alg) => Some(
            alg.parse::<Algorithm>()
                .ok()
                .filter(|alg| ID_TOKEN_ALGORITHMS.contains(alg))
                .ok_or_else(|| {
                    AdminError::invalid(
                        Field::new("id_token_signed_response_alg"),
                        Some(alg.clone()),
                        "must be RS256 or ES256",
                    )
                })?,
        ),
    };
    if let Some(ttl) = new.access_token_ttl
        && (ttl < 1 || ttl > max_ttl)
    {
        return Err(AdminError::invalid(
            Field::new("access_token_ttl"),
            Some(ttl.to_string()),
            format!(
                "must be between 1 and the configured maximum of {max_ttl} seconds (access_token_max_ttl)"
            ),
        ));
    }
    Ok(id_token_alg)
}

/// RFC 6749 §3.1.2 and RFC 9700 §2.1: an absolute URI without a fragment; `https`,
/// or `http` only on a loopback host (RFC 8252 §7.3), or a private-use scheme
/// with a dot in it for native apps (RFC 8252 §7.1).
fn check_redirect_uri(field: Field, uri: &str) -> Result<(), AdminError> {
    let invalid = |reason: &'static str| AdminError::invalid(field, Some(uri.to_owned()), reason);
    if uri.contains('#') {
        return Err(invalid("must not contain a fragment"));
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("must be printable ASCII without spaces"));
    }
    // Matching is exact (RFC 9700 §4.1.3, §2.1): a `*` would be taken literally,
    // never as a pattern, so refuse it rather than register something that
    // never matches what the operator meant.
    if uri.contains('*') {
        return Err(invalid(
            "must not contain a wildcard (*): redirect URIs are matched exactly; register each URI (loopback ports are matched for any port)",
        ));
    }
    // Browsers read `\` as `/`: `http://evil.example\@127.0.0.1/` goes to evil.example.
    if uri.contains('\\') {
        return Err(invalid("must not contain a backslash"));
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err(invalid("must be an absolute URI"));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(invalid("must be an absolute URI"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {
            if authority(rest).is_none_or(str::is_empty) {
                return Err(invalid("must name a host"));
            }
        }
        "http" => {
            let host = authority(rest).map(host_of);
            if !matches!(host, Some("127.0.0.1" | "[::1]" | "localhost")) {
                return Err(invalid(
                    "http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https",
                ));
            }
        }
        other if other.contains('.') => {}
        _ => {
            return Err(invalid(
                "use https, http on a loopback host, or a private-use scheme such as com.example.app:/callback",
            ));
        }
    }
    Ok(())
}

fn authority(rest: &str) -> Option<&str> {
    let rest = rest.strip_prefix("//")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    rest.get(..end)
}

fn host_of(authority: &str) -> &str {
    let without_user = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if without_user.starts_with('[') {
        return without_user
            .find(']')
            .and_then(|end| without_user.get(..=end))
            .unwrap_or(without_user);
    }
    without_user.split(':').next().unwrap_or(without_user)
}

fn dedup(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn field_of<T: std::fmt::Debug>(result: Result<T, AdminError>) -> String {
        match result {
            Err(AdminError::Invalid(error)) => error.field.to_string(),
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn redirect_uri_rules() {
        let field = Field::at("redirect_uris", 0);
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8000/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth",
        ] {
            assert!(check_redirect_uri(field, ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "http://127.0.0.1.evil.com/cb",
            "javascript:alert(1)",
            "/relative",
            "https:///nohost",
            "https://a b",
            "http://evil.example\\@127.0.0.1/cb",
            "https://*.example.com/cb",
            "https://app.example.com/*",
        ] {
            assert!(check_redirect_uri(field, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shapes_are_checked_and_errors_name_fields() {
        let service = NewClient {
            name: "svc".into(),
            audiences: vec!["https://api.example.com".into()],
            ..NewClient::default()
        };
        let grants = default_grant_types(&service);
        assert_eq!(grants, ["client_credentials"]);
        assert!(validate(&service, &grants, 3600).is_ok());

        let no_audience = NewClient {
            audiences: vec![],
            ..service.clone()
        };
        assert_eq!(field_of(validate(&no_audience, &grants, 3600)), "audiences");
        let public_cc = NewClient {
            public: true,
            ..service.clone()
        };
        let Err(AdminError::Invalid(error)) = validate(&public_cc, &grants, 3600) else {
            panic!("public client_credentials accepted");
        };
        assert_eq!(
            error.to_string(),
            "grant_types: a public client has no secret and cannot use client_credentials"
        );
        // RFC 8628: a device needs no redirect URI, public or not; refresh
        // tokens go with it. Typed as `device_code`, stored as its URN.
        let device = NewClient {
            public: true,
            audiences: vec![],
            ..service.clone()
        };
        let device_grants = ["device_code".to_owned(), "refresh_token".to_owned()];
        assert!(validate(&device, &device_grants, 3600).is_ok());
        let Err(error) = validate(&device, &["refresh_token".to_owned()], 3600) else {
            panic!("refresh_token alone accepted");
        };
        assert!(error.to_string().contains("device_code"), "{error}");
        assert_eq!(
            GrantType::parse("device_code").map(GrantType::as_str),
            Some("urn:ietf:params:oauth:grant-type:device_code")
        );
        let long_ttl = NewClient {
            access_token_ttl: Some(7200),
            ..service.clone()
        };
        let Err(error) = validate(&long_ttl, &grants, 3600) else {
            panic!("a TTL over the maximum accepted");
        };
        assert_eq!(
            error.to_string(),
            "access_token_ttl: must be between 1 and the configured maximum of 3600 seconds (access_token_max_ttl)"
        );
        let second_uri_bad = NewClient {
            redirect_uris: vec![
                "https://app.example.com/cb".into(),
                "http://evil.example/cb".into(),
            ],
            ..service.clone()
        };
        let Err(error) = validate(&second_uri_bad, &grants, 3600) else {
            panic!("an http redirect URI accepted");
        };
        assert!(
            error
                .to_string()
                .starts_with("redirect_uris[1]: http is allowed only"),
            "{error}"
        );
        let unknown = vec!["client_credentials".into(), "password".into()];
        assert_eq!(
            field_of(validate(&service, &unknown, 3600)),
            "grant_types[1]"
        );
        let bad_audience = NewClient {
            audiences: vec!["https://api.example.com".into(), "a b".into()],
            ..service
        };
        assert_eq!(
            field_of(validate(&bad_audience, &grants, 3600)),
            "audiences[1]"
        );
    }
}
