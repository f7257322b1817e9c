//! Sign-in with other providers ("Sign in with …"): Valet as the relying
//! party of an upstream OpenID provider, or the client of a plain OAuth 2
//! provider whose userinfo names the user.
//!
//! ```text
//!  login page ── POST /upstream/{name}/start ──▶ state record (single use,
//!     │            (interaction, csrf)           10 min: PKCE verifier, nonce,
//!     │                                          request, browser's CSRF hash)
//!     ▼
//!  provider ── GET /upstream/{name}/callback?code&state[&iss]
//!     │   state taken once and bound to this browser; iss checked (RFC 9207);
//!     │   code exchanged (PKCE); ID token verified, or userinfo mapped
//!     ▼
//!  linked (upstream, subject)? ──yes──▶ first factor proved: the sign-in
//!     │ no                               steps go on (second factor, consent)
//!     ▼
//!  identity record (single use) ──▶ "create an account" (open registration,
//!                                    email not someone's) or "link": sign in
//!                                    locally, then confirm on /account/upstreams
//! ```
//!
//! An upstream identity is never linked to a local account by its email,
//! verified or not: only the account's owner, signed in locally, links it.
//! The files: [`fetch`] (bounded HTTP), [`provider`] (endpoints, discovery),
//! [`id_token`] (ID token checks), [`identity`] (code exchange, who the user
//! is), [`admin`] (the operator's `valet upstream` commands).

pub mod admin;
pub mod fetch;
pub mod id_token;
pub mod identity;
pub mod links;
pub mod provider;
pub mod records;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use valet_jose::{JoseError, MasterKey, VerificationKeys};
use zeroize::Zeroizing;

use crate::store::{Store, Upstream, UpstreamKind};
use fetch::Http;
use provider::{DISCOVERY_PATH, Discovery, Provider};

/// The paths of the upstream sign-in (beside the others in
/// `endpoint::metadata::paths`).
pub mod paths {
    /// POST from the sign-in page: off to the provider.
    pub const START: &str = "/upstream/{name}/start";
    /// The provider's redirect back (the redirect URI registered there).
    pub const CALLBACK: &str = "/upstream/{name}/callback";
    /// POST: create an account for a pending identity.
    pub const CREATE: &str = "/upstream/identity/create";
    /// POST: keep a pending identity for linking, and go to the account page.
    pub const LINK: &str = "/upstream/identity/link";
    /// The account page's providers: links, removal, link confirmation.
    pub const ACCOUNT_UPSTREAMS: &str = "/account/upstreams";

    /// `template` with `{name}` filled in.
    pub fn named(template: &str, name: &str) -> String {
        template.replace("{name}", name)
    }
}

/// The redirect URI registered at the provider for the upstream `name`.
pub fn callback_url(issuer: &str, name: &str) -> String {
    format!("{issuer}{}", paths::named(paths::CALLBACK, name))
}

/// The purpose the key sealing upstream client secrets is derived for.
const SECRET_SEAL_PURPOSE: &[u8] = b"valet upstream client secret v1";
/// Seconds a fetched discovery document or JWK Set is used.
pub const CACHE_TTL: i64 = 3600;
/// Seconds a JWK Set is kept before a token with an unknown key may refetch it.
pub const REFETCH_INTERVAL: i64 = 30;

/// Seals an upstream's client secret, bound to its name.
pub fn seal_secret(master: &MasterKey, name: &str, secret: &str) -> Result<Vec<u8>, JoseError> {
    master
        .derive(SECRET_SEAL_PURPOSE)
        .and_then(|key| key.seal(name.as_bytes(), secret.as_bytes()))
}

/// Opens what [`seal_secret`] sealed for `name`.
pub fn open_secret(
    master: &MasterKey,
    name: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    master
        .derive(SECRET_SEAL_PURPOSE)
        .and_then(|key| key.open(name.as_bytes(), sealed))
}

/// Whether `name` can name an upstream: 1 to 32 of `a-z`, `0-9`, `-`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

struct Cached<T> {
    fetched_at: i64,
    value: Arc<T>,
}

/// Seconds the list of upstream names (the sign-in page's buttons) is kept.
pub const NAMES_TTL: i64 = 5;

/// The upstream side of the server: its HTTP client and what it caches.
#[derive(Default)]
pub struct Upstreams {
    http: Http,
    /// The upstreams' names, and when they were read.
    names: Mutex<(i64, Arc<Vec<String>>)>,
    discovery: Mutex<HashMap<String, Cached<Discovery>>>,
    keys: Mutex<HashMap<String, Cached<VerificationKeys>>>,
}

impl Upstreams {
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// The upstreams' names as last read (for the sign-in page's buttons).
    pub fn names(&self) -> Arc<Vec<String>> {
        self.names
            .lock()
            .map(|names| Arc::clone(&names.1))
            .unwrap_or_default()
    }

    /// Reads the names again if they are older than [`NAMES_TTL`] (another
    /// process, `valet upstream add`, may have changed them).
    pub async fn refresh_names(
        &self,
        store: &dyn Store,
        now: i64,
    ) -> Result<(), crate::error::OAuthError> {
        let fresh = self
            .names
            .lock()
            .is_ok_and(|names| names.0 != 0 && now.saturating_sub(names.0) < NAMES_TTL);
        if fresh {
            return Ok(());
        }
        let names: Vec<String> = store
            .list_upstreams()
            .await?
            .into_iter()
            .map(|upstream| upstream.name)
            .collect();
        if let Ok(mut cached) = self.names.lock() {
            *cached = (now, Arc::new(names));
        }
        Ok(())
    }

    /// Fetches `issuer`'s discovery document and reads it.
    pub async fn discover(&self, issuer: &str) -> Result<(Discovery, String), String> {
        let url = format!("{}{DISCOVERY_PATH}", issuer.trim_end_matches('/'));
        let answer = self.http.get_json(&url, None).await?;
        if answer.status != 200 {
            return Err(format!("discovery answered HTTP {}", answer.status));
        }
        let discovery = Discovery::parse(issuer, &answer.body)?;
        let text = serde_json::Value::Object(answer.body).to_string();
        Ok((discovery, text))
    }

    /// The upstream's endpoints at `now`: an OpenID provider's discovery
    /// document is fetched again after [`CACHE_TTL`]; if it cannot be, the
    /// one stored when the provider was added is used.
    pub async fn provider(&self, upstream: Upstream, now: i64) -> Result<Provider, String> {
        if upstream.kind == UpstreamKind::Oauth2 {
            return Provider::oauth2(upstream)
                .ok_or_else(|| "the OAuth 2 upstream lacks an endpoint".to_owned());
        }
        let issuer = upstream
            .issuer
            .clone()
            .ok_or_else(|| "the OpenID upstream has no issuer".to_owned())?;
        if let Some(found) = self.cached_discovery(&upstream.name, now) {
            return Ok(Provider::openid(upstream, &found));
        }
        let discovery = match self.discover(&issuer).await {
            Ok((discovery, _)) => discovery,
            Err(reason) => {
                tracing::warn!(upstream = %upstream.name, %reason, "upstream discovery failed; using the stored document");
                stored_discovery(&upstream, &issuer).ok_or(reason)?
            }
        };
        let discovery = Arc::new(discovery);
        if let Ok(mut cache) = self.discovery.lock() {
            cache.insert(
                upstream.name.clone(),
                Cached {
                    fetched_at: now,
                    value: Arc::clone(&discovery),
                },
            );
        }
        Ok(Provider::openid(upstream, &discovery))
    }

    fn cached_discovery(&self, name: &str, now: i64) -> Option<Arc<Discovery>> {
        let cache = self.discovery.lock().ok()?;
        let cached = cache.get(name)?;
        (now.saturating_sub(cached.fetched_at) < CACHE_TTL).then(|| Arc::clone(&cached.value))
    }

    /// The provider's signing keys: cached for [`CACHE_TTL`], or fetched
    /// again when `refetch` and the cached set is [`REFETCH_INTERVAL`] old
    /// (the provider may have rolled its keys).
    pub(crate) async fn keys(
        &self,
        jwks_uri: &str,
        refetch: bool,
        now: i64,
    ) -> Result<Arc<VerificationKeys>, String> {
        if let Ok(cache) = self.keys.lock()
            && let Some(cached) = cache.get(jwks_uri)
        {
            let age = now.saturating_sub(cached.fetched_at);
            if age < CACHE_TTL && !(refetch && age >= REFETCH_INTERVAL) {
                return Ok(Arc::clone(&cached.value));
            }
        }
        let answer = self.http.get_json(jwks_uri, None).await?;
        if answer.status != 200 {
            return Err(format!("jwks_uri answered HTTP {}", answer.status));
        }
        let text = serde_json::Value::Object(answer.body).to_string();
        let keys = VerificationKeys::from_jwk_set_json(&text).map_err(|e| e.to_string())?;
        if keys.is_empty() {
            return Err("the provider's JWK Set has no usable signature key".to_owned());
        }
        let keys = Arc::new(keys);
        if let Ok(mut cache) = self.keys.lock() {
            cache.insert(
                jwks_uri.to_owned(),
                Cached {
                    fetched_at: now,
                    value: Arc::clone(&keys),
                },
            );
        }
        Ok(keys)
    }
}

/// The discovery document stored when the upstream was added, if it reads.
fn stored_discovery(upstream: &Upstream, issuer: &str) -> Option<Discovery> {
    let text = upstream.metadata.as_deref()?;
    let document: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    Discovery::parse(issuer, &document).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_are_lowercase_words() {
        assert!(valid_name("google"));
        assert!(valid_name("corp-sso-2"));
        assert!(!valid_name(""));
        assert!(!valid_name("Google"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"a".repeat(33)));
    }

    #[test]
    fn a_secret_opens_only_under_its_name() {
        let master = MasterKey::generate().unwrap();
        let sealed = seal_secret(&master, "google", "s3cret").unwrap();
        assert_eq!(
            open_secret(&master, "google", &sealed).unwrap().as_slice(),
            b"s3cret"
        );
        assert!(open_secret(&master, "github", &sealed).is_err());
    }
}
