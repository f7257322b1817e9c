//! Records as the store keeps them. Secrets appear only as hashes or sealed bytes.

use std::fmt;

/// A registered OAuth client (RFC 6749 §2).
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// SHA-256 of the client secret; `None` for a public client.
    pub secret_hash: Option<Vec<u8>>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant type names as in RFC 6749 (`client_credentials`, ...).
    pub grant_types: Vec<String>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// Audiences (RFC 8707 resources) its tokens may be issued for; the first is the default.
    pub audiences: Vec<String>,
    /// Access token lifetime override in seconds.
    pub access_token_ttl: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field(
                "secret_hash",
                &self.secret_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .field("audiences", &self.audiences)
            .field("access_token_ttl", &self.access_token_ttl)
            .finish_non_exhaustive()
    }
}

/// A signing key. The private key is sealed (AES-256-GCM under the master key)
/// before it reaches the store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    /// JWS algorithm name: `ES256` or `RS256`.
    pub alg: String,
    /// Position in the key sequence of its algorithm; unique per `alg`.
    pub generation: i64,
    /// The public JWK, as JSON text.
    pub public_jwk: String,
    /// The sealed private key.
    pub sealed_private_key: Vec<u8>,
    pub created_at: i64,
    /// When the key starts signing; `None` for a key that is published but never signs.
    pub activates_at: Option<i64>,
    /// When the key leaves the JWKS; `None` while no successor has been scheduled.
    pub publish_until: Option<i64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("generation", &self.generation)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

/// Outcome of [`super::KeyStore::insert_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyInsert {
    Inserted,
    /// Another key of this algorithm already has that generation (or that kid).
    GenerationTaken,
}

/// A revoked access token, identified by its `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    pub jti: String,
    pub client_id: String,
    /// The token's `exp`: after it, the record can go.
    pub expires_at: i64,
    pub revoked_at: i64,
}
