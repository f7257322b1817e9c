//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3). The only way to get an [`AuthenticatedClient`] is through
//! [`ClientAuthenticator::authenticate`].

pub mod assertion;
mod cache;
pub mod keys;
pub mod secret_jwt;

use std::net::IpAddr;
use std::sync::Arc;

use valet_jose::{MasterKey, constant_time_eq};
/// How the client proved who it is: the registered method it used.
pub use valet_protocol::token::TokenEndpointAuthMethod as AuthMethod;
use valet_protocol::token::{ClientAuthentication, ClientAuthenticationError};

use crate::audit::{AuditEvent, AuditKind, AuditLog};
use crate::error::OAuthError;
use crate::secrets::hash_client_secret;
use crate::store::{Client, Store};
use crate::throttle::ClientAuthThrottle;

pub use cache::{ClientCache, ClientResolver};
pub use keys::ClientKeys;

/// Proof that a client was identified (and, unless public, authenticated).
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    client: Arc<Client>,
    method: AuthMethod,
}

impl AuthenticatedClient {
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// True when the client proved possession of a secret.
    pub fn is_confidential(&self) -> bool {
        self.method != AuthMethod::None
    }
}

pub struct ClientAuthenticator {
    clients: ClientCache,
    keys: ClientKeys,
    /// The `aud` values a client assertion may name: the issuer, then the
    /// endpoints where clients authenticate.
    assertion_audiences: Vec<String>,
    throttle: ClientAuthThrottle,
    /// Opens `client_secret_jwt` clients' sealed secrets.
    master: Arc<MasterKey>,
}

/// One description for every credential failure, so a caller cannot tell an
/// unknown client from a wrong secret.
const AUTH_FAILED: &str = "client authentication failed";

/// The answer to a client that is not (or no longer) registered: the same as to
/// a wrong secret, so neither tells which it was.
pub fn unknown_client() -> OAuthError {
    OAuthError::invalid_client(AUTH_FAILED)
}

impl ClientAuthenticator {
    /// `assertion_audiences`: the issuer first, then the endpoint URLs a
    /// client assertion may name as its `aud`.
    pub fn new(
        clients: ClientCache,
        assertion_audiences: Vec<String>,
        master: Arc<MasterKey>,
    ) -> Self {
        Self {
            clients,
            keys: ClientKeys::default(),
            assertion_audiences,
            throttle: ClientAuthThrottle::default(),
            master,
        }
    }

    pub fn clients(&self) -> &ClientCache {
        &self.clients
    }

    /// Clients' public keys (inline or fetched), for assertions and request objects.
    pub fn keys(&self) -> &ClientKeys {
        &self.keys
    }

    /// Reads the credentials and checks them against the registered client.
    /// Secrets presented from `address` count towards its throttle: a wrong one,
    /// or one for an unknown client, is a failure.
    pub async fn authenticate(
        &self,
        store: &dyn Store,
        presented: Result<ClientAuthentication, ClientAuthenticationError>,
        address: Option<IpAddr>,
        audit: &AuditLog,
        now: i64,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let presented = presented.map_err(|error| match error {
            ClientAuthenticationError::MalformedBasic => OAuthError::invalid_client(
                "the Authorization header is not valid HTTP Basic client authentication",
            ),
            ClientAuthenticationError::MultipleMethods => OAuthError::invalid_request(
                "the client must use only one authentication method per request",
            ),
            ClientAuthenticationError::Form(error) => {
                OAuthError::invalid_request(error.description())
            }
            ClientAuthenticationError::IncompleteAssertion => OAuthError::invalid_request(
                "client_assertion and client_assertion_type must be sent together",
            ),
            ClientAuthenticationError::UnsupportedAssertionType => OAuthError::invalid_client(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
        })?;
        let (client_id, secret, method) = match &presented {
            ClientAuthentication::Basic { client_id, secret } => {
                (client_id, Some(secret), AuthMethod::ClientSecretBasic)
            }
            ClientAuthentication::Post { client_id, secret } => {
                (client_id, Some(secret), AuthMethod::ClientSecretPost)
            }
            ClientAuthentication::None { client_id } => (client_id, None, AuthMethod::None),
            ClientAuthentication::JwtBearer {
                client_id,
                assertion,
            } => {
                return self
                    .authenticate_assertion(
                        store,
                        client_id.as_deref(),
                        assertion.expose(),
                        address,
                        audit,
                        now,
                    )
                    .await;
            }
            ClientAuthentication::Absent => {
                return Err(OAuthError::invalid_client(
                    "client authentication is required",
                ));
            }
        };
        if secret.is_some()
            && let Err(throttled) = self.throttle.check(address, now)
        {
            audit.record(
                AuditEvent::new(AuditKind::ClientAuthThrottled, now)
                    .client(client_id)
                    .address(address),
            );
            return Err(OAuthError::client_throttled(throttled.retry_after_seconds));
        }
        // Hashed once, whatever it is compared with below.
        let presented = secret.map(|secret| hash_client_secret(secret.expose()));
        let mut client = self.clients.get(store, client_id, now).await?;
        if let (Some(cached), Some(presented)) = (&client, &presented)
            && !Self::secret_matches(cached, presented, now)
        {
            // Perhaps rotated since this node cached the client: a new secret
            // works at once on every node, not after the cache lifetime.
            client = self.clients.refresh(store, client_id, now).await?;
        }
        let outcome = Self::check(client, presented.as_deref(), method, now);
        if secret.is_some() && outcome.is_err() {
            self.throttle.failed(address, now);
            audit.record(
                AuditEvent::new(AuditKind::ClientAuthFailed, now)
                    .client(client_id)
                    .address(address),
            );
        }
        outcome
    }

    /// `private_key_jwt` (see [`assertion`]) or `client_secret_jwt` (see
    /// [`secret_jwt`]). Failures count towards the
    /// address's throttle, as wrong secrets do.
    async fn authenticate_assertion(
        &self,
        store: &dyn Store,
        body_client_id: Option<&str>,
        presented: &str,
        address: Option<IpAddr>,
        audit: &AuditLog,
        now: i64,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let peeked = assertion::peek(presented)?;
        let client_id = peeked.sub.as_str();
        if let Err(throttled) = self.throttle.check(address, now) {
            audit.record(
                AuditEvent::new(AuditKind::ClientAuthThrottled, now)
                    .client(client_id)
                    .address(address),
            );
            return Err(OAuthError::client_throttled(throttled.retry_after_seconds));
        }
        let outcome = self
            .check_assertion(store, body_client_id, &peeked, presented, now)
            .await;
        if outcome.is_err() {
            self.throttle.failed(address, now);
            audit.record(
                AuditEvent::new(AuditKind::ClientAuthFailed, now)
                    .client(client_id)
                    .address(address),
            );
        }
        outcome
    }

    async fn check_assertion(
        &self,
        store: &dyn Store,
        body_client_id: Option<&str>,
        peeked: &assertion::Peeked,
        presented: &str,
        now: i64,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let client_id = peeked.sub.as_str();
        if body_client_id.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_client(
                "client_id does not match the client assertion's sub",
            ));
        }
        let client = self
            .clients
            .get(store, client_id, now)
            .await?
            .ok_or_else(unknown_client)?;
        if client.allows_auth_method(AuthMethod::ClientSecretJwt) {
            return self
                .check_secret_assertion(store, client, presented, now)
                .await;
        }
        if !client.allows_auth_method(AuthMethod::PrivateKeyJwt) {
            return Err(OAuthError::invalid_client(if client.is_public() {
                "this client is public and has no keys: it cannot use private_key_jwt"
            } else {
                "this client is not registered for private_key_jwt or client_secret_jwt: authenticate with its secret"
            }));
        }
        let keys = self
            .keys
            .of(&client, peeked.kid.as_deref(), now)
            .await
            .map_err(|error| OAuthError::invalid_client(error.description()))?;
        let (jti, exp) =
            assertion::verify(&keys, presented, client_id, &self.assertion_audiences, now)?;
        assertion::consume_jti(store, client_id, &jti, exp).await?;
        Ok(AuthenticatedClient {
            client,
            method: AuthMethod::PrivateKeyJwt,
        })
    }

    /// `client_secret_jwt`: the MAC under the client's unsealed secret, then the
    /// same claim and `jti` rules as `private_key_jwt` (RFC 7523 §3).
    async fn check_secret_assertion(
        &self,
        store: &dyn Store,
        mut client: Arc<Client>,
        presented: &str,
        now: i64,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let client_id = client.client_id.clone();
        let verify =
            |client: &Client| -> Result<serde_json::Map<String, serde_json::Value>, OAuthError> {
                let sealed = client.sealed_secret.as_deref().ok_or_else(|| {
                    OAuthError::server("a client_secret_jwt client has no sealed secret")
                })?;
                let secret =
                    secret_jwt::open(&self.master, &client.client_id, sealed).map_err(|_| {
                        // Not this client's (copied from another row) or not this
                        // master key's: nothing the caller can fix.
                        tracing::error!(
                            client_id = %client.client_id,
                            "a client_secret_jwt client's sealed secret does not open"
                        );
                        OAuthError::invalid_client(AUTH_FAILED)
                    })?;
                secret_jwt::verify_mac(&secret, presented)
            };
        let claims = match verify(&client) {
            Ok(claims) => claims,
            Err(first) => {
                // Perhaps rotated since this node cached the client: a new
                // secret works at once on every node.
                match self.clients.refresh(store, &client_id, now).await? {
                    Some(fresh)
                        if fresh.sealed_secret != client.sealed_secret
                            && fresh.allows_auth_method(AuthMethod::ClientSecretJwt) =>
                    {
                        client = fresh;
                        verify(&client)?
                    }
                    _ => return Err(first),
                }
            }
        };
        let (jti, exp) =
            assertion::check_claims(&claims, &client_id, &self.assertion_audiences, now)?;
        assertion::consume_jti(store, &client_id, &jti, exp).await?;
        Ok(AuthenticatedClient {
            client,
            method: AuthMethod::ClientSecretJwt,
        })
    }

    /// Whether `presented` (a secret's hash) is the current secret's, or the
    /// previous one's while its rotation overlap runs at `now`. Both are compared,
    /// so the time taken does not tell which matched.
    fn secret_matches(client: &Client, presented: &[u8], now: i64) -> bool {
        let current = client
            .secret_hash
            .as_deref()
            .is_some_and(|hash| constant_time_eq(presented, hash));
        let previous = client
            .previous_secret_at(now)
            .is_some_and(|hash| constant_time_eq(presented, hash));
        current | previous
    }

    /// A right secret sent by a method the client did not register is refused
    /// (RFC 6749 §2.3.1, RFC 7591 §2 `token_endpoint_auth_method`).
    fn check(
        client: Option<Arc<Client>>,
        presented: Option<&[u8]>,
        method: AuthMethod,
        now: i64,
    ) -> Result<AuthenticatedClient, OAuthError> {
        match (client, presented) {
            (Some(client), Some(presented)) => {
                if !Self::secret_matches(&client, presented, now) {
                    Err(OAuthError::invalid_client(AUTH_FAILED))
                } else if client.allows_auth_method(AuthMethod::ClientSecretJwt) {
                    // RFC 7591 §2: the registered method only. Told only to
                    // whoever holds the right secret.
                    Err(OAuthError::invalid_client(
                        "this client is registered for client_secret_jwt: send a client assertion \
                         MACed with HS256 and its secret, not the secret itself",
                    ))
                } else if !client.allows_auth_method(method) {
                    Err(OAuthError::invalid_client(match method {
                        AuthMethod::ClientSecretPost => {
                            "this client is not registered for client_secret_post: \
                             send its secret with HTTP Basic authentication"
                        }
                        _ => {
                            "this client is not registered for client_secret_basic: \
                             send its secret in the request body"
                        }
                    }))
                } else {
                    Ok(AuthenticatedClient { client, method })
                }
            }
            (Some(client), None) if client.is_public() => {
                Ok(AuthenticatedClient { client, method })
            }
            (Some(client), None) if client.allows_auth_method(AuthMethod::PrivateKeyJwt) => {
                Err(OAuthError::invalid_client(
                    "this client must authenticate with a client assertion (private_key_jwt)",
                ))
            }
            (Some(client), None) if client.allows_auth_method(AuthMethod::ClientSecretJwt) => {
                Err(OAuthError::invalid_client(
                    "this client must authenticate with a client assertion (client_secret_jwt)",
                ))
            }
            (Some(_), None) => Err(OAuthError::invalid_client(
                "this client is confidential and must authenticate with its secret",
            )),
            (None, presented) => {
                // Spend the same work as a real comparison.
                if let Some(presented) = presented {
                    let _ = constant_time_eq(presented, &[0; 32]);
                }
                Err(OAuthError::invalid_client(AUTH_FAILED))
            }
        }
    }
}
