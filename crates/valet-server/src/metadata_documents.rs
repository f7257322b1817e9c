//! The HTTP side of Client ID Metadata Documents
//! (`valet_core::dynamic_clients::document`): fetching a client's document with
//! the protections a server-side fetch of a URL chosen by anyone needs.
//!
//! - The URL passed the core's check (https, a path, no userinfo, query or
//!   fragment; http only on loopback with the development escape hatch).
//! - The host is resolved here, every address checked with
//!   `forbidden_address` (no private, loopback, link-local — cloud metadata —
//!   or other non-public address), and the connection made to exactly those
//!   addresses, so the name cannot be re-pointed between check and connect.
//! - No proxy from the environment, no redirects (a 3xx is refused), a
//!   timeout over the whole fetch, and at most `MAX_DOCUMENT_BYTES` read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH};
use valet_core::AuthorizationServer;
use valet_core::dynamic_clients::document::{
    DocumentFetcher, FETCH_TIMEOUT_SECONDS, FetchError, FetchedDocument, MAX_DOCUMENT_BYTES,
    forbidden_address,
};

/// Lets the server resolve metadata document URLs, if its settings say so.
pub fn attach_document_fetcher(server: &AuthorizationServer) {
    let allow_loopback = server
        .settings()
        .dynamic_clients
        .dangerous_metadata_allow_loopback;
    server.use_document_fetcher(Arc::new(HttpDocumentFetcher { allow_loopback }));
}

pub struct HttpDocumentFetcher {
    allow_loopback: bool,
}

#[async_trait]
impl DocumentFetcher for HttpDocumentFetcher {
    async fn fetch(&self, url: &str) -> Result<FetchedDocument, FetchError> {
        let timeout = Duration::from_secs(FETCH_TIMEOUT_SECONDS);
        tokio::time::timeout(timeout, self.fetch_checked(url, timeout))
            .await
            .map_err(|_| refused("the fetch took too long"))?
    }
}

impl HttpDocumentFetcher {
    async fn fetch_checked(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<FetchedDocument, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| refused("not a URL"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refused("a URL with userinfo"));
        }
        let (domain, addresses) = self.checked_addresses(&parsed).await?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(domain) = &domain {
            builder = builder.resolve_to_addrs(domain, &addresses);
        }
        let client = builder
            .build()
            .map_err(|error| refused(&format!("no HTTP client: {error}")))?;
        let response = client
            .get(parsed)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| refused(&format!("the fetch failed: {error}")))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(refused(
                "it answered with a redirect, which is not followed",
            ));
        }
        if !status.is_success() {
            return Err(refused(&format!("it answered {status}")));
        }
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64) {
            return Err(too_large());
        }
        let max_age = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age);
        let body = read_capped(response).await?;
        Ok(FetchedDocument { body, max_age })
    }

    /// The addresses of the URL's host, each checked, and the host name when
    /// it is not an address (to pin the connection to the checked addresses).
    async fn checked_addresses(
        &self,
        parsed: &reqwest::Url,
    ) -> Result<(Option<String>, Vec<SocketAddr>), FetchError> {
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| refused("no port"))?;
        let host = parsed.host_str().ok_or_else(|| refused("no host"))?;
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        let (domain, addresses): (Option<String>, Vec<SocketAddr>) = match literal {
            Some(ip) => (None, vec![SocketAddr::new(ip, port)]),
            None => {
                let addresses = tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|error| refused(&format!("the host does not resolve: {error}")))?
                    .collect();
                (Some(host.to_owned()), addresses)
            }
        };
        if addresses.is_empty() {
            return Err(refused("the host has no address"));
        }
        if let Some(address) = addresses
            .iter()
            .find(|address| forbidden_address(address.ip(), self.allow_loopback))
        {
            return Err(refused(&format!(
                "the host resolves to {}, which is not a public address",
                address.ip()
            )));
        }
        Ok((domain, addresses))
    }
}

/// The body, at most `MAX_DOCUMENT_BYTES` of it.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| refused(&format!("the body could not be read: {error}")))?
    {
        if body.len().saturating_add(chunk.len()) > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// RFC 9111 §5.2.2: `no-store` and `no-cache` mean no reuse (the core then
/// keeps it for its minimum); else `max-age`, if given.
fn max_age(cache_control: &str) -> Option<i64> {
    let mut max_age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            max_age = seconds.trim_matches('"').parse::<i64>().ok();
        }
    }
    max_age
}

fn refused(reason: &str) -> FetchError {
    FetchError(reason.to_owned())
}

fn too_large() -> FetchError {
    FetchError(format!(
        "the document is larger than {MAX_DOCUMENT_BYTES} bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::max_age;

    #[test]
    fn cache_control_gives_the_lifetime() {
        assert_eq!(max_age("public, max-age=600"), Some(600));
        assert_eq!(max_age("max-age=60, no-store"), Some(0));
        assert_eq!(max_age("no-cache"), Some(0));
        assert_eq!(max_age("public"), None);
    }
}
