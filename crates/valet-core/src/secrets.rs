//! Server-generated identifiers and secrets.
//!
//! Client secrets carry 256 bits from the system RNG, so a single SHA-256 is the
//! right hash for them (no password stretching needed, and the token path stays
//! cheap); comparison is in constant time.

use std::fmt;

use valet_jose::{b64url, constant_time_eq, random_bytes, sha256};
use zeroize::Zeroizing;

use crate::error::OAuthError;

/// Marks Valet client secrets so secret scanners can find leaked ones.
pub const CLIENT_SECRET_PREFIX: &str = "vcs_";

/// A freshly generated client secret, shown to the operator once.
pub struct PlainSecret(Zeroizing<String>);

impl PlainSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainSecret(<redacted>)")
    }
}

pub fn generate_client_secret() -> Result<(PlainSecret, Vec<u8>), OAuthError> {
    let bytes = Zeroizing::new(random_bytes::<32>().map_err(OAuthError::server)?);
    let secret = Zeroizing::new(format!(
        "{CLIENT_SECRET_PREFIX}{}",
        b64url(bytes.as_slice())
    ));
    let hash = hash_client_secret(&secret);
    Ok((PlainSecret(secret), hash))
}

pub fn hash_client_secret(secret: &str) -> Vec<u8> {
    sha256(secret.as_bytes()).to_vec()
}

pub fn client_secret_matches(presented: &str, stored_hash: &[u8]) -> bool {
    constant_time_eq(&hash_client_secret(presented), stored_hash)
}

/// 128 random bits, base64url: client ids and token ids (`jti`).
pub fn random_id() -> Result<String, OAuthError> {
    random_bytes::<16>().map(b64url).map_err(OAuthError::server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_matches_only_itself() {
        let Ok((secret, hash)) = generate_client_secret() else {
            unreachable!("the system RNG failed");
        };
        assert!(secret.expose().starts_with(CLIENT_SECRET_PREFIX));
        assert_eq!(secret.expose().len(), CLIENT_SECRET_PREFIX.len() + 43);
        assert!(client_secret_matches(secret.expose(), &hash));
        assert!(!client_secret_matches("vcs_wrong", &hash));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }
}
