//! `client_secret_jwt` (RFC 7523 §2.2, OIDC Core §9): the client MACs a
//! short-lived JWT with HS256, its secret's octets as the key, and sends it as
//! `client_assertion`. The claims follow the same rules as `private_key_jwt`'s
//! ([`super::assertion`]); only the MAC check differs.
//!
//! Checking a MAC needs the secret itself, so such a client's secret is kept
//! sealed (AES-256-GCM under a key derived from the master key for this
//! purpose only, the client id bound as associated data so a sealed secret
//! copied to another client's row does not open) besides its hash.

use aws_lc_rs::hmac;
use serde::Deserialize;
use serde_json::{Map, Value};
use valet_jose::{MasterKey, b64url_decode};
use zeroize::Zeroizing;

use super::assertion::{ACCEPTED_TYPS, plain};
use crate::error::OAuthError;

/// The purpose the sealing key is derived for.
const SEAL_PURPOSE: &[u8] = b"valet client secret v1";

/// The only MAC accepted. Valet's secrets are 47 bytes: enough for HS256, not
/// for HS384/HS512, whose keys must be at least as long as the hash (RFC 7518
/// §3.2).
pub const ALGORITHM: &str = "HS256";

/// Seals a `client_secret_jwt` client's secret for `client_id`.
pub fn seal(master: &MasterKey, client_id: &str, secret: &str) -> Result<Vec<u8>, OAuthError> {
    master
        .derive(SEAL_PURPOSE)
        .and_then(|key| key.seal(client_id.as_bytes(), secret.as_bytes()))
        .map_err(OAuthError::server)
}

/// Opens what [`seal`] sealed for `client_id`.
pub fn open(
    master: &MasterKey,
    client_id: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OAuthError> {
    master
        .derive(SEAL_PURPOSE)
        .and_then(|key| key.open(client_id.as_bytes(), sealed))
        .map_err(OAuthError::server)
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
}

/// Checks the JWS's header (`alg` HS256 only: never `none` nor an asymmetric
/// algorithm, RFC 8725 §3.1; `typ`, if present, one of [`ACCEPTED_TYPS`]) and
/// its MAC under `secret`, and returns its claims. The comparison is
/// aws-lc-rs's constant-time [`hmac::verify`].
pub(crate) fn verify_mac(secret: &[u8], assertion: &str) -> Result<Map<String, Value>, OAuthError> {
    let malformed = || OAuthError::invalid_client("client_assertion is not a well-formed JWT");
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let parsed: Header = b64url_decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(malformed)?;
    if parsed.alg != ALGORITHM {
        return Err(OAuthError::invalid_client(format!(
            "this client is registered for client_secret_jwt: its client assertion must be MACed with HS256 and its secret, not {}",
            plain(&parsed.alg.chars().take(32).collect::<String>())
        )));
    }
    if let Some(typ) = &parsed.typ
        && !ACCEPTED_TYPS.iter().any(|ok| typ.eq_ignore_ascii_case(ok))
    {
        return Err(OAuthError::invalid_client(
            "the client assertion's typ must be JWT or client-authentication+jwt",
        ));
    }
    let mac = b64url_decode(mac).map_err(|_| malformed())?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    // The signing input is the encoded header and payload as sent (RFC 7515 §5.2).
    let signing_input = &assertion[..header.len() + 1 + payload.len()];
    hmac::verify(&key, signing_input.as_bytes(), &mac).map_err(|_| {
        OAuthError::invalid_client(
            "the client assertion's HS256 MAC does not verify with the client's secret",
        )
    })?;
    b64url_decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use valet_jose::b64url;

    fn mac(secret: &[u8], header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.as_bytes()),
            b64url(payload.as_bytes())
        );
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
        format!("{input}.{}", b64url(tag.as_ref()))
    }

    #[test]
    fn sealed_secret_opens_only_for_its_client() -> Result<(), OAuthError> {
        let master = MasterKey::generate().map_err(OAuthError::server)?;
        let sealed = seal(&master, "a", "vcs_secret")?;
        assert!(!sealed.windows(10).any(|w| w == b"vcs_secret"));
        assert_eq!(open(&master, "a", &sealed)?.as_slice(), b"vcs_secret");
        assert!(open(&master, "b", &sealed).is_err());
        let other = MasterKey::generate().map_err(OAuthError::server)?;
        assert!(open(&other, "a", &sealed).is_err());
        Ok(())
    }

    #[test]
    fn mac_checks_alg_and_key() {
        let good = mac(b"right", r#"{"alg":"HS256","typ":"JWT"}"#, r#"{"sub":"c"}"#);
        let claims = verify_mac(b"right", &good).ok();
        assert_eq!(
            claims.and_then(|c| c.get("sub").cloned()),
            Some(Value::from("c"))
        );
        assert!(verify_mac(b"wrong", &good).is_err());
        let other_alg = mac(b"right", r#"{"alg":"HS512"}"#, r#"{"sub":"c"}"#);
        assert!(verify_mac(b"right", &other_alg).is_err());
        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none"}"#),
            b64url(br#"{"sub":"c"}"#)
        );
        assert!(verify_mac(b"right", &none).is_err());
        let bad_typ = mac(
            b"right",
            r#"{"alg":"HS256","typ":"at+jwt"}"#,
            r#"{"sub":"c"}"#,
        );
        assert!(verify_mac(b"right", &bad_typ).is_err());
    }
}
