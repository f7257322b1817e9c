//! Dynamic client registration (RFC 7591) and its management protocol
//! (RFC 7592): a client registers itself at the registration endpoint, and
//! reads, replaces or deletes its registration at its configuration endpoint
//! with the registration access token it was given.
//!
//! Off by default (`client_registration = closed`: 404). With `initial_token`
//! a registration needs an initial access token an operator created (RFC 7591
//! §3, `Authorization: Bearer`); with `open` anyone may register, at a rate per
//! address. Either way the policy of [`DynamicClients`] holds: grant types
//! `authorization_code` and `refresh_token` only, redirect URIs as for every
//! client (https, RFC 8252 loopback or private-use schemes, exact, no
//! wildcards), scopes and audiences from the configured lists, and never the
//! operator-only settings (`skip_consent` and the like). Registration goes
//! through the admin service, so a client is checked exactly as `valet client
//! create` checks it, and is audited as `client.created` with `via=registration`.
//!
//! Tokens are 256-bit random values stored as SHA-256 hashes and compared as
//! hashes; a wrong registration access token and an unknown client get the
//! same answer (RFC 7592 §2: 401 `invalid_token`).

use valet_jose::{constant_time_eq, sha256};
use valet_protocol::ErrorCode;
use valet_protocol::bearer::bearer_token;
use valet_protocol::registration::{ClientInformation, ClientMetadata, describe_json_error};
use valet_protocol::token::TokenEndpointAuthMethod;

use crate::admin::clients::{Provenance, build_client};
use crate::admin::{Actor, Admin, AdminError, ClientRecord, ClientUpdate, Via};
use crate::config::ClientRegistration;
use crate::dynamic_clients::{invalid_metadata, new_client, printable};
use crate::endpoint::metadata::paths;
use crate::error::OAuthError;
use crate::secrets::{REGISTRATION_TOKEN_PREFIX, generate_token, hash_client_secret};
use crate::store::{Client, ClientOrigin};
use crate::{AuthorizationServer, RequestContext};

/// Why a registration request changed nothing.
#[derive(Debug)]
pub enum RegistrationError {
    /// Registration is closed: the endpoint does not exist (404).
    Disabled,
    /// No bearer token where one is needed (RFC 6750 §3.1: a bare challenge).
    MissingToken,
    /// RFC 6750 §3.1 `invalid_token` (401): a wrong, expired or spent initial
    /// access token, or a registration access token that is not this client's.
    InvalidToken(&'static str),
    /// `invalid_client_metadata`, `invalid_redirect_uri`, throttling, or a
    /// server failure.
    OAuth(OAuthError),
}

impl From<OAuthError> for RegistrationError {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

impl From<crate::store::StoreError> for RegistrationError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::OAuth(error.into())
    }
}

/// RFC 7591 §3.1: registers a client from the JSON body.
pub async fn register(
    server: &AuthorizationServer,
    context: &RequestContext,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<ClientInformation, RegistrationError> {
    let policy = &server.settings.dynamic_clients;
    let now = context.now;
    let initial_token = match policy.registration {
        ClientRegistration::Closed => return Err(RegistrationError::Disabled),
        ClientRegistration::InitialToken => {
            let token = bearer_token(authorization).ok_or(RegistrationError::MissingToken)?;
            let hash = sha256(token.as_bytes()).to_vec();
            if server.store.live_initial_token(&hash, now).await?.is_none() {
                return Err(RegistrationError::InvalidToken(
                    "the initial access token is unknown, expired or used up",
                ));
            }
            Some(hash)
        }
        ClientRegistration::Open => {
            if let Err(throttled) = server.registration_throttle.admit(context.address, now) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "too many client registrations from this address; try again in {} seconds",
                        throttled.retry_after_seconds
                    ),
                )
                .with_retry_after(throttled.retry_after_seconds)
                .into());
            }
            None
        }
    };
    let metadata = parse(body)?;
    if metadata.client_id.is_some() || metadata.client_secret.is_some() {
        return Err(invalid_metadata(
            "client_id and client_secret are assigned by the server, not registered",
        )
        .into());
    }
    let new = new_client(&metadata, policy)?;
    let (registration_token, registration_hash) = generate_token(REGISTRATION_TOKEN_PREFIX)?;
    // Checked before a use of the initial token is spent: a refused request
    // changes nothing.
    build_client(
        new.clone(),
        Provenance::default(),
        now,
        server.settings.access_token_max_ttl,
        None,
    )
    .map_err(admin_error)?;
    let admin = admin(server, context, None);
    if let Some(hash) = initial_token
        && !server.store.use_initial_token(&hash, now).await?
    {
        return Err(RegistrationError::InvalidToken(
            "the initial access token is unknown, expired or used up",
        ));
    }
    let registered = admin
        .register_client_as(
            new,
            Provenance {
                registration_token_hash: Some(registration_hash),
                ..Provenance::default()
            },
        )
        .await
        .map_err(admin_error)?;
    Ok(information(
        server,
        &registered.client,
        registered.secret.as_ref().map(|secret| secret.expose()),
        Some(&registration_token),
    ))
}

/// RFC 7592 §2.1: the client's registration as it is now.
pub async fn read(
    server: &AuthorizationServer,
    client_id: &str,
    authorization: Option<&[u8]>,
) -> Result<ClientInformation, RegistrationError> {
    let client = authorized_client(server, client_id, authorization).await?;
    Ok(information(
        server,
        &ClientRecord::from(&client),
        None,
        None,
    ))
}

/// RFC 7592 §2.2: replaces the registration with the metadata sent (fields left
/// out return to their defaults); the grant types and the authentication method
/// are fixed. The registration access token is rotated: the answer carries the
/// new one, and the old one stops working.
pub async fn replace(
    server: &AuthorizationServer,
    context: &RequestContext,
    client_id: &str,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<ClientInformation, RegistrationError> {
    let client = authorized_client(server, client_id, authorization).await?;
    let metadata = parse(body)?;
    if metadata.client_id.as_deref() != Some(client_id) {
        return Err(invalid_metadata(
            "client_id must be sent and must be the id of the client being updated (RFC 7592 section 2.2)",
        )
        .into());
    }
    if let Some(secret) = &metadata.client_secret {
        let matches = client
            .secret_hash
            .as_deref()
            .is_some_and(|stored| constant_time_eq(stored, &hash_client_secret(secret)));
        if !matches {
            return Err(
                invalid_metadata("client_secret is not the client's current secret").into(),
            );
        }
    }
    let policy = &server.settings.dynamic_clients;
    let wanted = new_client(&metadata, policy)?;
    let stored_grants: Vec<String> = client
        .grant_types
        .iter()
        .map(|grant| grant.as_str().to_owned())
        .collect();
    if wanted.public != client.is_public() || sorted(&wanted.grant_types) != sorted(&stored_grants)
    {
        return Err(invalid_metadata(
            "grant_types and token_endpoint_auth_method cannot change after registration: register a new client instead",
        )
        .into());
    }
    let admin = admin(server, context, Some(client_id));
    let update = ClientUpdate {
        name: Some(wanted.name),
        redirect_uris: Some(wanted.redirect_uris),
        post_logout_redirect_uris: Some(wanted.post_logout_redirect_uris),
        scopes: Some(wanted.scopes),
        ..ClientUpdate::default()
    };
    let updated = admin
        .update_client(client_id, update)
        .await
        .map_err(admin_error)?;
    let (registration_token, registration_hash) = generate_token(REGISTRATION_TOKEN_PREFIX)?;
    if !server
        .store
        .set_registration_token(client_id, &registration_hash, context.now)
        .await?
    {
        return Err(RegistrationError::InvalidToken(INVALID_REGISTRATION_TOKEN));
    }
    server.authenticator.clients().invalidate(client_id);
    Ok(information(
        server,
        &updated.client,
        None,
        Some(&registration_token),
    ))
}

/// RFC 7592 §2.3: deletes the client and everything issued to it.
pub async fn delete(
    server: &AuthorizationServer,
    context: &RequestContext,
    client_id: &str,
    authorization: Option<&[u8]>,
) -> Result<(), RegistrationError> {
    authorized_client(server, client_id, authorization).await?;
    admin(server, context, Some(client_id))
        .delete_client(client_id)
        .await
        .map_err(admin_error)?;
    server.authenticator.clients().invalidate(client_id);
    Ok(())
}

const INVALID_REGISTRATION_TOKEN: &str =
    "the registration access token is not valid for this client";

/// The client, if `authorization` carries its registration access token. An
/// unknown client and a wrong token get the same answer.
async fn authorized_client(
    server: &AuthorizationServer,
    client_id: &str,
    authorization: Option<&[u8]>,
) -> Result<Client, RegistrationError> {
    if server.settings.dynamic_clients.registration == ClientRegistration::Closed {
        return Err(RegistrationError::Disabled);
    }
    let token = bearer_token(authorization).ok_or(RegistrationError::MissingToken)?;
    let presented = sha256(token.as_bytes());
    let client = server.store.get_client(client_id).await?;
    match client {
        Some(client)
            if client.origin() == ClientOrigin::Dynamic
                && client
                    .registration_token_hash
                    .as_deref()
                    .is_some_and(|stored| constant_time_eq(stored, &presented)) =>
        {
            Ok(client)
        }
        _ => Err(RegistrationError::InvalidToken(INVALID_REGISTRATION_TOKEN)),
    }
}

fn admin<'a>(
    server: &'a AuthorizationServer,
    context: &RequestContext,
    client_id: Option<&str>,
) -> Admin<'a> {
    let id = client_id
        .map(str::to_owned)
        .or_else(|| context.address.map(|address| address.to_string()));
    Admin::new(
        server.store.as_ref(),
        server.clock.as_ref(),
        &server.hasher,
        server.settings.access_token_max_ttl,
        Actor {
            via: Via::Registration,
            id,
        },
    )
}

fn parse(body: &[u8]) -> Result<ClientMetadata, OAuthError> {
    serde_json::from_slice(body).map_err(|error| invalid_metadata(describe_json_error(&error)))
}

/// The admin service's refusal in RFC 7591 §3.2.2 terms, with the field named
/// as the metadata spells it.
pub(crate) fn admin_error(error: AdminError) -> RegistrationError {
    match error {
        AdminError::Invalid(field) | AdminError::Conflict(field) => {
            let code = if field.field.name.contains("redirect_uris") {
                ErrorCode::InvalidRedirectUri
            } else {
                ErrorCode::InvalidClientMetadata
            };
            let name = match field.field.name {
                "name" => "client_name",
                "scopes" => "scope",
                other => other,
            };
            let at = field
                .field
                .index
                .map(|index| format!("[{index}]"))
                .unwrap_or_default();
            RegistrationError::OAuth(OAuthError::new(
                code,
                printable(&format!("{name}{at}: {}", field.reason)),
            ))
        }
        AdminError::NotFound { .. } => RegistrationError::InvalidToken(INVALID_REGISTRATION_TOKEN),
        AdminError::Store(error) => RegistrationError::OAuth(error.into()),
        other => RegistrationError::OAuth(OAuthError::server(other.to_string())),
    }
}

fn sorted(values: &[String]) -> Vec<String> {
    let mut values = values.to_vec();
    values.sort();
    values.dedup();
    values
}

/// RFC 7591 §3.2.1 / RFC 7592 §3.
fn information(
    server: &AuthorizationServer,
    client: &ClientRecord,
    secret: Option<&str>,
    registration_token: Option<&str>,
) -> ClientInformation {
    let public = client.kind == "public";
    ClientInformation {
        client_id: client.client_id.clone(),
        client_secret: secret.map(str::to_owned),
        client_id_issued_at: client.created_at,
        client_secret_expires_at: (!public).then_some(0),
        registration_access_token: registration_token.map(str::to_owned),
        registration_client_uri: registration_client_uri(server, &client.client_id),
        client_name: client.name.clone(),
        redirect_uris: client.redirect_uris.clone(),
        post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
        token_endpoint_auth_method: if public {
            TokenEndpointAuthMethod::None.as_str()
        } else {
            TokenEndpointAuthMethod::ClientSecretBasic.as_str()
        },
        grant_types: client.grant_types.clone(),
        response_types: vec!["code"],
        scope: client.scopes.join(" "),
        id_token_signed_response_alg: client.id_token_signed_response_alg.clone(),
    }
}

/// Where the client manages its registration (RFC 7592 §3).
pub fn registration_client_uri(server: &AuthorizationServer, client_id: &str) -> String {
    format!(
        "{}{}/{client_id}",
        server.settings.issuer,
        paths::REGISTRATION
    )
}

impl AuthorizationServer {
    /// The registration endpoint (RFC 7591 §3); `authorization` is the
    /// request's `Authorization` header (an initial access token).
    pub async fn register_client(
        &self,
        context: &RequestContext,
        authorization: Option<&[u8]>,
        body: &[u8],
    ) -> Result<ClientInformation, RegistrationError> {
        register(self, context, authorization, body).await
    }

    /// RFC 7592 §2.1.
    pub async fn read_registration(
        &self,
        client_id: &str,
        authorization: Option<&[u8]>,
    ) -> Result<ClientInformation, RegistrationError> {
        read(self, client_id, authorization).await
    }

    /// RFC 7592 §2.2.
    pub async fn replace_registration(
        &self,
        context: &RequestContext,
        client_id: &str,
        authorization: Option<&[u8]>,
        body: &[u8],
    ) -> Result<ClientInformation, RegistrationError> {
        replace(self, context, client_id, authorization, body).await
    }

    /// RFC 7592 §2.3.
    pub async fn delete_registration(
        &self,
        context: &RequestContext,
        client_id: &str,
        authorization: Option<&[u8]>,
    ) -> Result<(), RegistrationError> {
        delete(self, context, client_id, authorization).await
    }
}
