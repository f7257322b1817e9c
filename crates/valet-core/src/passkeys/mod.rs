//! Passkeys (WebAuthn, through webauthn-rs): the relying party Valet is, the
//! state of a ceremony kept between a browser's two requests, and a signed-in
//! user's own passkeys (`account`: register, list, remove). Signing in with a
//! passkey is a method of the sign-in pipeline (`authn/verify/passkey.rs`).
//!
//! The relying party id is the issuer's host and the only origin accepted is
//! the issuer's (WebAuthn §5.1.4.1, §7.2 steps 9 and 13): an assertion made for
//! another site or another host fails. A ceremony's state (its challenge) is a
//! single-use record: consumed by the first answer, bound to the browser by the
//! hash of its CSRF cookie, and short-lived, so an answer for another challenge,
//! from another browser, or a replayed one fails.

pub mod account;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use valet_jose::{b64url, random_bytes, sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, Url, Webauthn,
    WebauthnBuilder,
};

use crate::error::OAuthError;
use crate::store::{SingleUseKind, Store, StoreError};

/// How long a browser has to answer a ceremony, in seconds: webauthn-rs's own
/// timeout for the authenticator (five minutes) and a little more.
pub const CEREMONY_TTL: i64 = 330;

/// The relying party: webauthn-rs configured for the issuer.
pub struct RelyingParty {
    webauthn: Webauthn,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty").finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// The relying party of `issuer`: its host as the RP id, its origin as the
    /// one origin. `Err` (why, for the log) when the issuer cannot be one: an
    /// IP address is no RP id (WebAuthn §5.1.4.1 asks for a domain).
    pub fn for_issuer(issuer: &str, name: &str) -> Result<Self, String> {
        let issuer = Url::parse(issuer).map_err(|err| format!("issuer: {err}"))?;
        // The origin only: an issuer with a path (`https://host/valet`) is
        // still the origin `https://host` to a browser (WebAuthn §5.8.1).
        let origin = Url::parse(&issuer.origin().ascii_serialization())
            .map_err(|err| format!("issuer origin: {err}"))?;
        let host = origin.host_str().unwrap_or_default().to_owned();
        if host.is_empty() || host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
            return Err("the issuer's host is not a domain name".into());
        }
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .and_then(|builder| builder.rp_name(name).build())
            .map_err(|err| format!("webauthn: {err}"))?;
        Ok(Self { webauthn })
    }

    pub(crate) fn webauthn(&self) -> &Webauthn {
        &self.webauthn
    }
}

/// A ceremony between its options and the browser's answer, kept as a
/// [`SingleUseKind::PasskeyCeremony`] record.
#[derive(Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub(crate) enum Ceremony {
    /// Passwordless sign-in with a discoverable credential, for one
    /// authorization request (`binding`: the hash of its interaction value).
    SignIn {
        state: DiscoverableAuthentication,
        csrf_hash: String,
        binding: String,
    },
    /// A second factor after the password: one of `user_id`'s passkeys, for
    /// one authorization request.
    SecondFactor {
        state: PasskeyAuthentication,
        csrf_hash: String,
        binding: String,
        user_id: String,
    },
    /// A signed-in user registering a passkey.
    Register {
        state: PasskeyRegistration,
        csrf_hash: String,
        user_id: String,
        user_handle: String,
    },
}

/// Whether the browser answering holds the CSRF cookie whose hash a ceremony
/// began with.
pub(crate) fn same_browser(csrf_hash: &str, csrf_cookie: Option<&str>) -> bool {
    csrf_cookie.is_some_and(|cookie| {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            csrf_hash.as_bytes(),
            hash(cookie).as_bytes(),
        )
        .is_ok()
    })
}

/// What a page's script hands to `navigator.credentials`: the ceremony's handle
/// and the `publicKey` options (WebAuthn §5.4, §5.5) as JSON.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub ceremony: String,
    pub options: Value,
}

/// A fresh CSRF value for a page that starts ceremonies.
pub fn new_csrf() -> Result<String, OAuthError> {
    random_bytes::<32>().map(b64url).map_err(OAuthError::server)
}

/// The base64url SHA-256 of a value a ceremony is bound to.
pub(crate) fn hash(value: &str) -> String {
    b64url(sha256(value.as_bytes()))
}

/// Stores `ceremony` under a fresh handle and returns the handle.
pub(crate) async fn begin(
    store: &dyn Store,
    ceremony: &Ceremony,
    now: i64,
) -> Result<String, OAuthError> {
    let handle = random_bytes::<32>()
        .map(b64url)
        .map_err(OAuthError::server)?;
    let payload = serde_json::to_string(ceremony).map_err(OAuthError::server)?;
    store
        .insert_single_use(
            SingleUseKind::PasskeyCeremony,
            &sha256(handle.as_bytes()),
            &payload,
            now.saturating_add(CEREMONY_TTL),
        )
        .await?;
    Ok(handle)
}

/// Consumes the ceremony with this handle, if it is live: a second answer to
/// the same ceremony finds nothing.
pub(crate) async fn take(
    store: &dyn Store,
    handle: &str,
    now: i64,
) -> Result<Option<Ceremony>, OAuthError> {
    if handle.is_empty() || handle.len() > 64 {
        return Ok(None);
    }
    let key = sha256(handle.as_bytes());
    let Some(record) = store
        .take_single_use(SingleUseKind::PasskeyCeremony, &key, now)
        .await?
    else {
        return Ok(None);
    };
    serde_json::from_str(&record.payload)
        .map(Some)
        .map_err(|err| StoreError::Corrupt(format!("passkey ceremony: {err}")).into())
}

/// The counter and backup flags of a credential, read from webauthn-rs's own
/// serialisation (the crate keeps them private): `(sign_count, backup
/// eligible, backed up)`.
pub(crate) fn credential_state(passkey: &Passkey) -> Result<(String, i64, bool, bool), OAuthError> {
    let json = serde_json::to_value(passkey).map_err(OAuthError::server)?;
    let cred = json.get("cred");
    let flag = |name| {
        cred.and_then(|c| c.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let count = cred
        .and_then(|c| c.get("counter"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let (eligible, backed_up) = (flag("backup_eligible"), flag("backup_state"));
    Ok((json.to_string(), count, eligible, backed_up))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_host_and_origin() {
        for issuer in [
            "https://id.example.com",
            "https://id.example.com/valet",
            "http://localhost:8080",
        ] {
            assert!(
                RelyingParty::for_issuer(issuer, "Valet").is_ok(),
                "{issuer}"
            );
        }
        for issuer in ["http://127.0.0.1:8080", "http://[::1]:8080", "not a url"] {
            assert!(
                RelyingParty::for_issuer(issuer, "Valet").is_err(),
                "{issuer}"
            );
        }
    }
}
