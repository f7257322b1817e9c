//! Server-generated identifiers and secrets.
//!
//! Client secrets carry 256 bits from the system RNG, so a single SHA-256 is the
//! right hash for them (no password stretching needed, and the token path stays
//! cheap); comparison is in constant time.

use std::cell::RefCell;
use std::fmt;

use valet_jose::{b64url, random_bytes, sha256};
use zeroize::Zeroizing;

use crate::error::OAuthError;

/// Marks Valet client secrets so secret scanners can find leaked ones.
pub const CLIENT_SECRET_PREFIX: &str = "vcs_";

/// A freshly generated client secret, shown to the operator once.
pub struct PlainSecret(Zeroizing<String>);

impl PlainSecret {
    pub(crate) fn new(secret: &str) -> Self {
        Self(Zeroizing::new(secret.to_owned()))
    }

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

/// Marks registration access tokens (RFC 7592), so secret scanners can find leaked ones.
pub const REGISTRATION_TOKEN_PREFIX: &str = "vrat_";
/// Marks initial access tokens (RFC 7591 §3).
pub const INITIAL_TOKEN_PREFIX: &str = "viat_";

/// A new 256-bit bearer token with `prefix`, and its SHA-256 (what is stored).
pub fn generate_token(prefix: &str) -> Result<(Zeroizing<String>, Vec<u8>), OAuthError> {
    let bytes = Zeroizing::new(random_bytes::<32>().map_err(OAuthError::server)?);
    let token = Zeroizing::new(format!("{prefix}{}", b64url(bytes.as_slice())));
    let hash = sha256(token.as_bytes()).to_vec();
    Ok((token, hash))
}

pub fn hash_client_secret(secret: &str) -> Vec<u8> {
    sha256(secret.as_bytes()).to_vec()
}

/// 128 random bits, base64url: client, user, grant and interaction ids, session ids.
/// Never with a leading `-`, which command lines (Valet's own, curl's, a shell
/// script's) would take for an option; that costs 0.02 bits of the 128.
pub fn random_id() -> Result<String, OAuthError> {
    loop {
        let id = random_bytes::<ID_BYTES>()
            .map(b64url)
            .map_err(OAuthError::server)?;
        if !id.starts_with('-') {
            return Ok(id);
        }
    }
}

const ID_BYTES: usize = 16;
/// Token ids drawn from the system RNG at a time, per thread.
const POOLED_IDS: usize = 64;

/// Output of the system RNG not yet handed out as token ids.
struct IdPool {
    bytes: [u8; ID_BYTES * POOLED_IDS],
    next: usize,
}

thread_local! {
    static TOKEN_IDS: RefCell<IdPool> = const {
        RefCell::new(IdPool { bytes: [0; ID_BYTES * POOLED_IDS], next: POOLED_IDS })
    };
}

/// A token id (`jti`, RFC 7519 §4.1.7): 128 random bits, base64url, like
/// [`random_id`]. Every access token needs one, and a token id is published in
/// the token, not a secret, so ids are cut from one RNG draw per 64 tokens
/// instead of costing a call each. Nothing secret may come from here.
pub fn token_id() -> Result<String, OAuthError> {
    TOKEN_IDS.with_borrow_mut(|pool| {
        if pool.next >= POOLED_IDS {
            pool.bytes = random_bytes().map_err(OAuthError::server)?;
            pool.next = 0;
        }
        let id = pool
            .bytes
            .chunks_exact(ID_BYTES)
            .nth(pool.next)
            .map(b64url)
            .ok_or_else(|| OAuthError::server("token id pool out of range"))?;
        pool.next += 1;
        Ok(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_start_with_a_dash() {
        // With a dash in one id of 64, 10,000 ids without one would be a 1 in
        // 10^68 chance.
        for _ in 0..10_000 {
            let id = random_id().unwrap_or_default();
            assert_eq!(id.len(), 22, "128 bits of base64url: {id}");
            assert!(!id.starts_with('-'), "{id}");
        }
    }

    #[test]
    fn generated_secret_matches_only_itself() {
        let Ok((secret, hash)) = generate_client_secret() else {
            unreachable!("the system RNG failed");
        };
        assert!(secret.expose().starts_with(CLIENT_SECRET_PREFIX));
        assert_eq!(secret.expose().len(), CLIENT_SECRET_PREFIX.len() + 43);
        assert_eq!(hash_client_secret(secret.expose()), hash);
        assert_ne!(hash_client_secret("vcs_wrong"), hash);
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn token_ids_are_distinct_across_pool_refills_and_threads() {
        let draw = || -> Vec<String> {
            (0..POOLED_IDS * 5 + 3)
                .map(|_| token_id().unwrap_or_else(|_| unreachable!("the system RNG failed")))
                .collect()
        };
        let mut ids = draw();
        ids.extend(std::thread::spawn(draw).join().unwrap_or_default());
        assert_eq!(ids.len(), 2 * (POOLED_IDS * 5 + 3));
        assert!(
            ids.iter()
                .all(|id| id.len() == 22 && !id.contains(['=', '+', '/']))
        );
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
