//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! which the MCP authorization spec prefers to dynamic registration): with
//! `client_id_metadata_documents` on, a `client_id` that is an https URL with a
//! path names a JSON document of client metadata at that URL. Valet fetches it
//! when the client is first used and again when its copy expires, and keeps
//! the copy in the clients table (so grants, consents and revocation work as
//! for every client).
//!
//! What a document may say is the policy for clients no operator registered
//! ([`crate::config::DynamicClients`]): public clients (`none`) using
//! `authorization_code` and `refresh_token`, the configured scopes and
//! audiences, redirect URIs as for every client, consent every time. Its
//! `client_id` must be its own URL exactly (§4.1).
//!
//! The fetch itself ([`DocumentFetcher`]) is the HTTP layer's: https only, no
//! redirects, a size cap and a timeout, and the host's addresses checked with
//! [`forbidden_address`] before connecting to exactly those (no DNS
//! rebinding between the check and the connection). Here: which URLs qualify
//! ([`is_document_url`]), the cache lifetime, single flight per URL, a short
//! memory of refused documents (so Valet cannot be made to fetch a bad URL in
//! a loop), and the checks of the document.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use valet_protocol::registration::ClientMetadata;

use super::new_client;
use crate::admin::clients::{Provenance, build_client};
use crate::client_auth::ClientResolver;
use crate::config::DynamicClients;
use crate::error::OAuthError;
use crate::store::{Client, Store};

/// The most a document may weigh (the draft suggests 5 KB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// How long a fetch may take, connection included.
pub const FETCH_TIMEOUT_SECONDS: u64 = 5;
/// Refused URLs remembered at most; beyond, the memory starts over.
const MAX_REMEMBERED_REFUSALS: usize = 10_000;

/// A document as fetched: its body, and the lifetime its `Cache-Control`
/// gives (`max-age`; 0 for `no-store` / `no-cache`), if any.
#[derive(Debug, Clone)]
pub struct FetchedDocument {
    pub body: Vec<u8>,
    pub max_age: Option<i64>,
}

/// Why a document could not be had; the text is for the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Fetches a metadata document. The HTTP layer implements it (see the
/// module doc for what it must refuse).
#[async_trait]
pub trait DocumentFetcher: Send + Sync {
    /// `url` passed [`is_document_url`].
    async fn fetch(&self, url: &str) -> Result<FetchedDocument, FetchError>;
}

/// Whether `client_id` is a URL Valet would fetch as a metadata document
/// (§3): https (or, with the development escape hatch, http on a loopback
/// host), a host, a path other than `/` without `.` or `..` segments, and no
/// userinfo, query or fragment.
pub fn is_document_url(client_id: &str, allow_loopback: bool) -> bool {
    let (rest, loopback_only) = if let Some(rest) = client_id.strip_prefix("https://") {
        (rest, false)
    } else if let Some(rest) = client_id.strip_prefix("http://")
        && allow_loopback
    {
        (rest, true)
    } else {
        return false;
    };
    let Some(slash) = rest.find('/') else {
        return false;
    };
    let (authority, path) = rest.split_at(slash);
    let well_formed = !authority.is_empty()
        && !authority.contains('@')
        && path.len() > 1
        && !client_id.contains(['?', '#', '\\', ' '])
        && client_id.bytes().all(|b| b.is_ascii_graphic())
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    if !well_formed {
        return false;
    }
    !loopback_only || is_loopback_host(host_of(authority))
}

fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .and_then(|end| authority.get(..=end))
            .unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Whether Valet must not connect to `ip` for a document: anything but a
/// public unicast address (loopback only with the development escape hatch).
/// Private, shared (CGNAT), link-local (cloud metadata services), multicast,
/// unspecified, broadcast, documentation, benchmarking and reserved ranges,
/// IPv6 unique-local and site-local, and IPv6 forms that embed an IPv4
/// address (mapped, NAT64, 6to4, Teredo) are refused.
pub fn forbidden_address(ip: IpAddr, allow_loopback: bool) -> bool {
    let ip = ip.to_canonical();
    if ip.is_loopback() {
        return !allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || (segments[0] & 0xffc0) == 0xfec0
                || (segments[0] == 0x2001 && segments[1] == 0x0db8)
                || (segments[0] == 0x0064 && segments[1] == 0xff9b)
                || segments[0] == 0x2002
                || (segments[0] == 0x2001 && segments[1] == 0)
        }
    }
}

/// The documents of this node: the fetcher, the policy, single flight, and
/// the refusals remembered.
pub struct MetadataDocuments {
    fetcher: Arc<dyn DocumentFetcher>,
    policy: DynamicClients,
    access_token_max_ttl: i64,
    /// One lock per URL being fetched, so concurrent first uses fetch once.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// URL → until when a refused document is not fetched again.
    refused: Mutex<HashMap<String, i64>>,
}

impl MetadataDocuments {
    pub fn new(
        fetcher: Arc<dyn DocumentFetcher>,
        policy: DynamicClients,
        access_token_max_ttl: i64,
    ) -> Self {
        Self {
            fetcher,
            policy,
            access_token_max_ttl,
            in_flight: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// The client of the document at `url`: the stored copy while it is
    /// fresh, else a newly fetched and checked one (stored before it is
    /// returned); `None` if the document cannot be had or is refused.
    async fn resolve_document(
        &self,
        store: &dyn Store,
        url: &str,
        now: i64,
    ) -> Result<Option<Client>, OAuthError> {
        if self.refused_until(url).is_some_and(|until| now < until) {
            return Ok(None);
        }
        let flight = {
            let mut in_flight = self
                .in_flight
                .lock()
                .map_err(|_| OAuthError::server("metadata document locks poisoned"))?;
            Arc::clone(in_flight.entry(url.to_owned()).or_default())
        };
        let _turn = flight.lock().await;
        // Another request may have fetched it while this one waited.
        let outcome = match store.get_client(url).await? {
            Some(client) if client.metadata_expires_at.is_some_and(|until| now < until) => {
                Ok(Some(client))
            }
            _ => self.fetch_and_store(store, url, now).await,
        };
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(url);
        }
        outcome
    }

    async fn fetch_and_store(
        &self,
        store: &dyn Store,
        url: &str,
        now: i64,
    ) -> Result<Option<Client>, OAuthError> {
        let checked = match self.fetcher.fetch(url).await {
            Ok(document) => self.check(url, &document, now),
            Err(error) => Err(error.0),
        };
        let client = match checked {
            Ok(client) => client,
            Err(reason) => {
                tracing::warn!(client_id = url, %reason, "client metadata document refused");
                self.remember_refusal(url, now);
                return Ok(None);
            }
        };
        if !store.upsert_metadata_client(&client).await? {
            tracing::warn!(
                client_id = url,
                "a client registered otherwise has this id: its metadata document is ignored"
            );
            return Ok(None);
        }
        tracing::info!(client_id = url, "client metadata document fetched");
        Ok(Some(client))
    }

    /// The client a fetched document describes, or why it is refused.
    fn check(&self, url: &str, document: &FetchedDocument, now: i64) -> Result<Client, String> {
        let metadata: ClientMetadata = serde_json::from_slice(&document.body)
            .map_err(|error| format!("not a JSON object of client metadata: {error}"))?;
        // §4.1: the document names itself.
        if metadata.client_id.as_deref() != Some(url) {
            return Err("its client_id is not the URL it was fetched from".to_owned());
        }
        if metadata.client_secret.is_some() {
            return Err("a metadata document must not carry a client_secret".to_owned());
        }
        match metadata.token_endpoint_auth_method.as_deref() {
            None | Some("none") => {}
            Some(other) => {
                return Err(format!(
                    "token_endpoint_auth_method {other} is not supported for metadata documents (only none)"
                ));
            }
        }
        let metadata = ClientMetadata {
            token_endpoint_auth_method: Some("none".to_owned()),
            client_id: None,
            ..metadata
        };
        let new = new_client(&metadata, &self.policy)
            .map_err(|error| error.description().unwrap_or("refused").to_owned())?;
        let ttl = document
            .max_age
            .unwrap_or(self.policy.metadata_min_ttl)
            .clamp(self.policy.metadata_min_ttl, self.policy.metadata_max_ttl);
        let provenance = Provenance {
            client_id: Some(url.to_owned()),
            registration_token_hash: None,
            metadata_expires_at: Some(now.saturating_add(ttl)),
        };
        let (client, _) = build_client(new, provenance, now, self.access_token_max_ttl, None)
            .map_err(|error| error.to_string())?;
        Ok(client)
    }

    fn refused_until(&self, url: &str) -> Option<i64> {
        self.refused.lock().ok()?.get(url).copied()
    }

    fn remember_refusal(&self, url: &str, now: i64) {
        if let Ok(mut refused) = self.refused.lock() {
            if refused.len() >= MAX_REMEMBERED_REFUSALS {
                refused.retain(|_, until| now < *until);
                if refused.len() >= MAX_REMEMBERED_REFUSALS {
                    refused.clear();
                }
            }
            refused.insert(
                url.to_owned(),
                now.saturating_add(self.policy.metadata_min_ttl),
            );
        }
    }
}

#[async_trait]
impl ClientResolver for MetadataDocuments {
    fn applies_to(&self, client_id: &str) -> bool {
        is_document_url(client_id, self.policy.dangerous_metadata_allow_loopback)
    }

    async fn resolve(
        &self,
        store: &dyn Store,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Client>, OAuthError> {
        self.resolve_document(store, client_id, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_client_ids_are_document_urls() {
        for good in [
            "https://app.example/client.json",
            "https://app.example:8443/oauth/client",
            "https://[2001:db8::1]/c",
        ] {
            assert!(is_document_url(good, false), "{good}");
        }
        for bad in [
            "https://app.example",
            "https://app.example/",
            "https://user@app.example/c",
            "https://app.example/c#frag",
            "https://app.example/c?q=1",
            "https://app.example/a/../c",
            "https://app.example/./c",
            "http://app.example/c",
            "http://127.0.0.1:8080/c",
            "https:///c",
            "abc123",
        ] {
            assert!(!is_document_url(bad, false), "{bad}");
        }
        assert!(is_document_url("http://127.0.0.1:8080/c", true));
        assert!(is_document_url("http://localhost:8080/c", true));
        assert!(is_document_url("http://[::1]:8080/c", true));
        assert!(!is_document_url("http://127.0.0.1.evil.example/c", true));
        assert!(!is_document_url("http://10.0.0.1/c", true));
    }

    #[test]
    fn only_public_addresses_are_fetched() {
        for forbidden in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "ff02::1",
        ] {
            let ip: IpAddr = forbidden.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
            assert!(forbidden_address(ip, false), "{forbidden}");
        }
        for allowed in ["93.184.215.14", "2606:4700::6810:84e5", "8.8.8.8"] {
            let ip: IpAddr = allowed.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
            assert!(!forbidden_address(ip, false), "{allowed}");
        }
        assert!(!forbidden_address(IpAddr::from([127, 0, 0, 1]), true));
        assert!(forbidden_address(IpAddr::from([10, 0, 0, 1]), true));
    }
}
