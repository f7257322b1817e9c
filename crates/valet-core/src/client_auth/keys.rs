//! A client's public keys (RFC 7591 §2 `jwks` and `jwks_uri`): checked when an
//! operator registers them, and read when a client assertion or a request object
//! is verified. A `jwks_uri` document is fetched with bounds (https only, except
//! on a loopback host; no redirects; [`FETCH_TIMEOUT`]; [`MAX_JWKS_LEN`]) and
//! cached for [`CACHE_TTL`] seconds; a `kid` the cached set does not know makes
//! one early re-fetch, at most every [`REFETCH_INTERVAL`] seconds, so a client
//! can roll its keys without waiting for the cache.
//!
//! One set holds two kinds of keys, kept apart: signature keys (for assertions and
//! request objects) and encryption keys (`use: enc`, or a JWE `alg`; for encrypted ID
//! tokens and UserInfo answers, OIDC Core §10.2). A key that declares itself for
//! encryption never verifies a signature, and a signature key (`use: sig` or a JWS
//! `alg`) is never encrypted to; only a key with neither may serve both (RFC 7517 §4.2).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::redirect;
use serde_json::Map;
use serde_json::Value;
use valet_jose::{EncryptionKeys, JoseError, VerificationKeys, declares_encryption};

use crate::outbound_url::check_outbound_url;
use crate::store::Client;

/// The largest JWK Set accepted, inline or fetched.
pub const MAX_JWKS_LEN: usize = 64 * 1024;
/// How long a fetched JWK Set is used before it is fetched again.
pub const CACHE_TTL: i64 = 300;
/// The shortest time between two fetches of one `jwks_uri`.
pub const REFETCH_INTERVAL: i64 = 30;
/// The whole fetch, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// More cached sets than this and the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// Checks a JWK Set an operator registers inline: a JSON object with a non-empty
/// `keys` array; every key that declares itself for encryption (`use: enc` or a JWE
/// `alg`) a public EC P-256 or RSA key Valet encrypts to; every other key a public
/// signature key Valet verifies (EC P-256 `ES256`, RSA `RS256`, OKP Ed25519 `EdDSA`)
/// with a unique `kid`; no private member. Strict, unlike a fetched set: a key that
/// would be ignored is a mistake the operator should hear about now.
pub fn check_jwks(json: &str) -> Result<VerificationKeys, String> {
    let keys = registered_keys(json)?;
    EncryptionKeys::strict(&keys).map_err(|error| error.to_string())?;
    let signing: Vec<_> = keys
        .into_iter()
        .filter(|key| !declares_encryption(key))
        .collect();
    VerificationKeys::from_jwks(&signing).map_err(|error| error.to_string())
}

/// The encryption keys of a registered inline JWK Set, checked as [`check_jwks`] does.
pub fn check_encryption_jwks(json: &str) -> Result<EncryptionKeys, String> {
    check_jwks(json)?;
    EncryptionKeys::strict(&registered_keys(json)?).map_err(|error| error.to_string())
}

fn registered_keys(json: &str) -> Result<Vec<Map<String, Value>>, String> {
    if json.len() > MAX_JWKS_LEN {
        return Err(format!("larger than {MAX_JWKS_LEN} bytes"));
    }
    let set: Value = serde_json::from_str(json).map_err(|error| {
        format!(
            "not JSON (line {}, column {})",
            error.line(),
            error.column()
        )
    })?;
    let keys = set
        .as_object()
        .and_then(|set| set.get("keys"))
        .and_then(Value::as_array)
        .ok_or("not a JWK Set: expected an object with a \"keys\" array (RFC 7517 §5)")?;
    let keys: Vec<_> = keys
        .iter()
        .map(|key| {
            key.as_object()
                .cloned()
                .ok_or("each key must be a JSON object")
        })
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        return Err("the \"keys\" array is empty".to_owned());
    }
    Ok(keys)
}

/// Checks a `jwks_uri` by the rule of every URL Valet calls out to
/// ([`check_outbound_url`]).
pub fn check_jwks_uri(uri: &str) -> Result<(), String> {
    check_outbound_url(uri).map(|_| ())
}

/// Why a client's keys could not be had. The text is for the client's developer
/// (it names no secret); the detail of a failed fetch goes to the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysError {
    /// The client registered no keys.
    NoKeys,
    /// The registered `jwks` does not parse any more (it was checked when set).
    Registered(String),
    /// The `jwks_uri` could not be fetched or did not hold a usable JWK Set.
    Fetch,
}

impl KeysError {
    pub fn description(&self) -> &'static str {
        match self {
            Self::NoKeys => "the client has no registered keys (jwks or jwks_uri)",
            Self::Registered(_) => "the client's registered jwks is not usable",
            Self::Fetch => "the client's jwks_uri could not be fetched or holds no usable key",
        }
    }
}

struct Cached {
    fetched_at: i64,
    keys: Arc<VerificationKeys>,
    encryption: Arc<EncryptionKeys>,
}

/// Both kinds of keys of one fetched set.
struct Fetched {
    keys: Arc<VerificationKeys>,
    encryption: Arc<EncryptionKeys>,
}

/// Keys of clients that registered a `jwks_uri`, by URI.
pub struct ClientKeys {
    http: Option<reqwest::Client>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Default for ClientKeys {
    fn default() -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("valet/", env!("CARGO_PKG_VERSION")))
            // Every URL fetched is the one the operator registered.
            .redirect(redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()
            .inspect_err(|error| tracing::warn!(%error, "no HTTP client: jwks_uri unusable"))
            .ok();
        Self {
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl ClientKeys {
    /// The client's signature keys at `now`. With `unknown_kid`, a fetched set older
    /// than [`REFETCH_INTERVAL`] is fetched again first: the client may have rolled
    /// its keys.
    pub async fn of(
        &self,
        client: &Client,
        unknown_kid: Option<&str>,
        now: i64,
    ) -> Result<Arc<VerificationKeys>, KeysError> {
        if let Some(jwks) = &client.jwks {
            return check_jwks(jwks)
                .map(Arc::new)
                .map_err(KeysError::Registered);
        }
        Ok(self.fetched(client, unknown_kid, now).await?.keys)
    }

    /// The client's encryption keys at `now` (for encrypted ID tokens and UserInfo).
    pub async fn encryption_keys_of(
        &self,
        client: &Client,
        now: i64,
    ) -> Result<Arc<EncryptionKeys>, KeysError> {
        if let Some(jwks) = &client.jwks {
            return check_encryption_jwks(jwks)
                .map(Arc::new)
                .map_err(KeysError::Registered);
        }
        Ok(self.fetched(client, None, now).await?.encryption)
    }

    async fn fetched(
        &self,
        client: &Client,
        unknown_kid: Option<&str>,
        now: i64,
    ) -> Result<Fetched, KeysError> {
        let Some(uri) = &client.jwks_uri else {
            return Err(KeysError::NoKeys);
        };
        if let Some(fetched) = self.cached(uri, unknown_kid, now) {
            return Ok(fetched);
        }
        let fetched = match self.fetch(uri).await {
            Ok(fetched) => fetched,
            Err(reason) => {
                tracing::warn!(client_id = %client.client_id, jwks_uri = %uri, %reason, "client jwks_uri fetch failed");
                return Err(KeysError::Fetch);
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(
                uri.clone(),
                Cached {
                    fetched_at: now,
                    keys: Arc::clone(&fetched.keys),
                    encryption: Arc::clone(&fetched.encryption),
                },
            );
        }
        Ok(fetched)
    }

    fn cached(&self, uri: &str, unknown_kid: Option<&str>, now: i64) -> Option<Fetched> {
        let cache = self.cache.lock().ok()?;
        let cached = cache.get(uri)?;
        let age = now.saturating_sub(cached.fetched_at);
        let stale = age >= CACHE_TTL
            || unknown_kid.is_some_and(|kid| {
                cached.keys.algorithm_of(kid).is_none() && age >= REFETCH_INTERVAL
            });
        (!stale).then(|| Fetched {
            keys: Arc::clone(&cached.keys),
            encryption: Arc::clone(&cached.encryption),
        })
    }

    async fn fetch(&self, uri: &str) -> Result<Fetched, String> {
        check_jwks_uri(uri)?;
        let http = self.http.as_ref().ok_or("no HTTP client")?;
        let mut response = http
            .get(uri)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|error| error.to_string())?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("HTTP status {}", response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_LEN as u64)
        {
            return Err(format!("larger than {MAX_JWKS_LEN} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
            if body.len().saturating_add(chunk.len()) > MAX_JWKS_LEN {
                return Err(format!("larger than {MAX_JWKS_LEN} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| "not UTF-8".to_owned())?;
        // RFC 7517 §5: keys of kinds not used here are ignored in a published set.
        let keys = VerificationKeys::from_jwk_set_json(&text)
            .map_err(|error: JoseError| error.to_string())?;
        let encryption = EncryptionKeys::from_jwk_set_json(&text)
            .map_err(|error: JoseError| error.to_string())?;
        if keys.is_empty() && encryption.is_empty() {
            return Err("no usable signature or encryption key".to_owned());
        }
        Ok(Fetched {
            keys: Arc::new(keys),
            encryption: Arc::new(encryption),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const EC_ENC_KEY: &str = r#"{"kty":"EC","crv":"P-256","use":"enc","kid":"e1","x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ","y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"}"#;
    const ED_KEY: &str = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}"#;

    #[test]
    fn registered_sets_are_checked_strictly() {
        assert!(check_jwks(&format!(r#"{{"keys":[{ED_KEY}]}}"#)).is_ok());
        // An encryption key beside it is kept apart: not a signature key.
        let both = format!(r#"{{"keys":[{ED_KEY},{EC_ENC_KEY}]}}"#);
        let signing = check_jwks(&both).unwrap();
        assert_eq!(signing.kids().collect::<Vec<_>>(), ["k1"]);
        let encryption = check_encryption_jwks(&both).unwrap();
        assert_eq!(encryption.len(), 1);
        assert!(
            encryption
                .for_algorithm(valet_jose::KeyManagement::EcdhEs)
                .is_some()
        );
        // A signature-only set has no key to encrypt to.
        assert!(
            check_encryption_jwks(&format!(r#"{{"keys":[{ED_KEY}]}}"#))
                .unwrap()
                .is_empty()
        );
        for (set, why) in [
            ("[]", "jwk set"),
            (r#"{"keys":[]}"#, "empty"),
            ("{", "not JSON"),
            (
                r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#,
                "symmetric",
            ),
            (
                r#"{"keys":[{"kty":"EC","crv":"P-384","use":"enc","x":"AA","y":"AA","kid":"e"}]}"#,
                "curve",
            ),
            (
                r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","kid":"p"}]}"#,
                "private",
            ),
            (
                r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
                "kid",
            ),
        ] {
            let error = check_jwks(set).expect_err(set);
            assert!(
                error.to_lowercase().contains(&why.to_lowercase()),
                "{set}: {error}"
            );
        }
    }

    #[test]
    fn jwks_uri_is_https_or_loopback() {
        for ok in [
            "https://client.example/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://[::1]/jwks",
            "http://localhost/jwks",
        ] {
            assert_eq!(check_jwks_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://client.example/jwks.json",
            "https://client.example/jwks#x",
            "https://user:pw@client.example/jwks",
            "ftp://client.example/jwks",
            "/jwks.json",
        ] {
            assert!(check_jwks_uri(bad).is_err(), "{bad}");
        }
    }
}
