//! OpenID Connect ID tokens (OIDC Core §2, §3.1.3.6).

use serde::Serialize;
use valet_jose::{Algorithm, b64url, sha256};

use crate::config::Settings;
use crate::error::OAuthError;
use crate::keys::Keyring;
use crate::store::{Client, Grant};

/// What ID tokens may be signed with: RS256 and ES256, never EdDSA, which relying parties
/// need not know (an `access_token_alg` option only).
pub const ID_TOKEN_ALGORITHMS: [Algorithm; 2] = [Algorithm::Rs256, Algorithm::Es256];

/// RS256 unless the client registered ES256: RS256 is the one algorithm every
/// relying party must support (OIDC Core §15.1).
pub fn algorithm_for(client: &Client) -> Algorithm {
    client
        .id_token_signed_response_alg
        .unwrap_or(Algorithm::Rs256)
}

#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    amr: &'a [String],
    /// What the methods in `amr` add up to (see [`crate::mfa::acr_for`]).
    acr: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    azp: &'a str,
}

/// OIDC Core §3.1.3.6: `at_hash` is the base64url of the left half of the hash
/// of the access token, with the hash of the ID token's algorithm (SHA-256 for
/// both RS256 and ES256).
pub fn at_hash(access_token: &str) -> String {
    let digest = sha256(access_token.as_bytes());
    b64url(digest.get(..16).unwrap_or_default())
}

pub fn mint(
    settings: &Settings,
    keyring: &Keyring,
    client: &Client,
    grant: &Grant,
    nonce: Option<&str>,
    access_token: &str,
    now: i64,
) -> Result<String, OAuthError> {
    let alg = algorithm_for(client);
    let key = keyring
        .signing_key(alg, now)
        .ok_or_else(|| OAuthError::server(format!("no active {alg} signing key")))?;
    let claims = IdTokenClaims {
        iss: &settings.issuer,
        sub: &grant.user_id,
        aud: &client.client_id,
        exp: now.saturating_add(settings.id_token_ttl),
        iat: now,
        auth_time: grant.auth_time,
        nonce,
        at_hash: at_hash(access_token),
        amr: &grant.amr,
        acr: crate::mfa::acr_for(&grant.amr),
        sid: grant.sid.as_deref(),
        azp: &client.client_id,
    };
    key.sign_jwt("JWT", &claims).map_err(OAuthError::server)
}
