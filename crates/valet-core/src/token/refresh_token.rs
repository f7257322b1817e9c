//! Opaque refresh tokens: 256 random bits with a `vrt_` prefix, stored as SHA-256.

use valet_jose::{b64url, random_bytes, sha256};

use crate::error::OAuthError;

/// Marks Valet refresh tokens for secret scanners, and tells revocation and
/// introspection which kind of token they were given.
pub const REFRESH_TOKEN_PREFIX: &str = "vrt_";

pub fn generate() -> Result<String, OAuthError> {
    let bytes = random_bytes::<32>().map_err(OAuthError::server)?;
    Ok(format!("{REFRESH_TOKEN_PREFIX}{}", b64url(bytes)))
}

pub fn hash(token: &str) -> Vec<u8> {
    sha256(token.as_bytes()).to_vec()
}

pub fn looks_like_refresh_token(token: &str) -> bool {
    token.starts_with(REFRESH_TOKEN_PREFIX) && token.len() <= 128
}
