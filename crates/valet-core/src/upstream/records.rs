//! The two single-use records of an upstream sign-in, each under the SHA-256
//! of a random handle and bound to the browser by the hash of its CSRF
//! cookie (the cookie the sign-in page set; SameSite=Lax, so the provider's
//! redirect back carries it):
//! - the state sent to the provider ([`SignInState`], `state` is its handle),
//!   taken once by the callback;
//! - an identity nobody is linked to yet ([`PendingIdentity`]), waiting for
//!   the user's choice: create an account, or link it after a local sign-in.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use valet_jose::{b64url, constant_time_eq, random_bytes, sha256};

use super::identity::Identity;
use crate::error::OAuthError;
use crate::store::{SingleUseKind, Store};

/// Seconds an upstream sign-in may take, and an identity may wait for a choice.
pub const RECORD_TTL: i64 = 600;

/// A sign-in sent to an upstream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignInState {
    pub upstream: String,
    /// RFC 7636 §4.1 `code_verifier`.
    pub verifier: String,
    /// OIDC Core §3.1.2.1 `nonce`.
    pub nonce: String,
    /// The sign-in page's `interaction` value: the request signed in for.
    pub interaction: String,
    pub browser: String,
}

/// An identity no local account is linked to, as the provider asserted it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingIdentity {
    pub upstream: String,
    pub identity: Identity,
    pub interaction: String,
    pub browser: String,
}

/// The browser binding of a record: the hash of its CSRF cookie.
pub fn browser_binding(csrf_cookie: &str) -> String {
    b64url(sha256(csrf_cookie.as_bytes()))
}

/// Whether the browser with `csrf_cookie` is the one `binding` was made for.
pub fn same_browser(binding: &str, csrf_cookie: Option<&str>) -> bool {
    csrf_cookie.is_some_and(|cookie| {
        !cookie.is_empty()
            && constant_time_eq(browser_binding(cookie).as_bytes(), binding.as_bytes())
    })
}

/// 256 random bits, base64url.
pub fn random_handle() -> Result<String, OAuthError> {
    random_bytes::<32>().map(b64url).map_err(OAuthError::server)
}

/// Stores `record` under a new handle, returned.
pub async fn put<T: Serialize>(
    store: &dyn Store,
    kind: SingleUseKind,
    record: &T,
    now: i64,
) -> Result<String, OAuthError> {
    let handle = random_handle()?;
    let payload = serde_json::to_string(record).map_err(OAuthError::server)?;
    store
        .insert_single_use(
            kind,
            &sha256(handle.as_bytes()),
            &payload,
            now.saturating_add(RECORD_TTL),
        )
        .await?;
    Ok(handle)
}

/// The live record under `handle`, consumed; `None` if unknown, used or expired.
pub async fn take<T: DeserializeOwned>(
    store: &dyn Store,
    kind: SingleUseKind,
    handle: &str,
    now: i64,
) -> Result<Option<T>, OAuthError> {
    let Some(record) = store
        .take_single_use(kind, &sha256(handle.as_bytes()), now)
        .await?
    else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&record.payload).ok())
}

/// The live record under `handle`, left in place.
pub async fn peek<T: DeserializeOwned>(
    store: &dyn Store,
    kind: SingleUseKind,
    handle: &str,
    now: i64,
) -> Result<Option<T>, OAuthError> {
    let Some(record) = store
        .get_single_use(kind, &sha256(handle.as_bytes()), now)
        .await?
    else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&record.payload).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_holds_for_its_browser_only() {
        let binding = browser_binding("cookie-a");
        assert!(same_browser(&binding, Some("cookie-a")));
        assert!(!same_browser(&binding, Some("cookie-b")));
        assert!(!same_browser(&binding, None));
        assert!(!same_browser(&browser_binding(""), Some("")));
    }
}
