//! The issuer's metadata (RFC 8414; OpenID Connect Discovery 1.0 as a fallback).

use reqwest::Url;
use serde::Deserialize;

use crate::error::GuardError;
use crate::http::{FetchError, Http};

/// Metadata documents are small; anything bigger is not one.
const MAX_METADATA_LEN: usize = 256 * 1024;

/// What the guard uses of the issuer's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub(crate) jwks_uri: String,
    /// Valet's revocation feed (Server-Sent Events), if advertised under the issuer.
    pub(crate) events_endpoint: Option<String>,
    /// RFC 8414 §2 `token_endpoint`, where the guard obtains its own token for the event
    /// stream (when it has credentials).
    pub(crate) token_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    valet_status_list_events_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
}

/// Fetches `{issuer}/.well-known/oauth-authorization-server` (Valet's), the RFC 8414 §3.1
/// form (`/.well-known/…` inserted before the issuer's path) when the issuer has a path,
/// and `{issuer}/.well-known/openid-configuration`; the first that answers is used, and its
/// `issuer` must equal the configured issuer exactly (RFC 8414 §3.3).
pub(crate) async fn discover(http: &Http, issuer: &str) -> Result<Metadata, GuardError> {
    let mut last = GuardError::Metadata("no metadata URL");
    for url in metadata_urls(issuer) {
        match http.get(&url, "application/json", MAX_METADATA_LEN).await {
            Ok(document) => return parse(&document.body, issuer, &url),
            Err(error) => {
                tracing::debug!(%url, %error, "issuer metadata not available here");
                // An unreachable host will not answer at another path: only an HTTP
                // error status (say 404) moves on to the next location.
                let unreachable = matches!(error, FetchError::Transport(_));
                last = GuardError::Discovery {
                    url,
                    reason: error.to_string(),
                };
                if unreachable {
                    break;
                }
            }
        }
    }
    Err(last)
}

fn metadata_urls(issuer: &str) -> Vec<String> {
    let base = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{base}/.well-known/oauth-authorization-server")];
    if let Ok(url) = Url::parse(issuer) {
        let path = url.path().trim_end_matches('/');
        if !path.is_empty() {
            let mut inserted = url.clone();
            inserted.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
            urls.push(inserted.to_string());
        }
    }
    urls.push(format!("{base}/.well-known/openid-configuration"));
    urls
}

fn parse(body: &[u8], issuer: &str, url: &str) -> Result<Metadata, GuardError> {
    let document: Document =
        serde_json::from_slice(body).map_err(|error| GuardError::Discovery {
            url: url.to_owned(),
            reason: format!("not a metadata document: {error}"),
        })?;
    if document.issuer != issuer {
        return Err(GuardError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: document.issuer,
        });
    }
    let jwks_uri = document
        .jwks_uri
        .ok_or(GuardError::Metadata("no jwks_uri"))?;
    if !same_security(issuer, &jwks_uri) {
        return Err(GuardError::Metadata(
            "jwks_uri must be an absolute https URL (http only for an http issuer)",
        ));
    }
    let events_endpoint = document
        .valet_status_list_events_endpoint
        .filter(|endpoint| {
            let under_issuer = endpoint.starts_with(&format!("{}/", issuer.trim_end_matches('/')));
            if !under_issuer {
                tracing::warn!(%endpoint, "ignoring a status events endpoint outside the issuer");
            }
            under_issuer
        });
    // The client secret is sent there: never in the clear unless the issuer itself is.
    let token_endpoint = document
        .token_endpoint
        .filter(|endpoint| same_security(issuer, endpoint));
    Ok(Metadata {
        jwks_uri,
        events_endpoint,
        token_endpoint,
    })
}

/// `uri` is an absolute URL whose scheme is https, or http when the issuer itself is http
/// (which the configuration allowed).
fn same_security(issuer: &str, uri: &str) -> bool {
    match Url::parse(uri) {
        Ok(url) if url.scheme() == "https" => true,
        Ok(url) if url.scheme() == "http" => issuer.starts_with("http:"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use serde_json::json;

    use super::*;

    #[test]
    fn metadata_locations() {
        assert_eq!(
            metadata_urls("https://id.example"),
            [
                "https://id.example/.well-known/oauth-authorization-server",
                "https://id.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://id.example/tenant"),
            [
                "https://id.example/tenant/.well-known/oauth-authorization-server",
                "https://id.example/.well-known/oauth-authorization-server/tenant",
                "https://id.example/tenant/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn issuer_must_match_and_jwks_uri_be_https() {
        let issuer = "https://id.example";
        let doc = |v: serde_json::Value| v.to_string().into_bytes();
        let ok = parse(
            &doc(json!({
                "issuer": issuer, "jwks_uri": "https://id.example/jwks.json",
                "valet_status_list_events_endpoint": "https://id.example/statuslists/events",
                "token_endpoint": "https://id.example/token"
            })),
            issuer,
            "u",
        )
        .unwrap();
        assert_eq!(ok.jwks_uri, "https://id.example/jwks.json");
        assert_eq!(
            ok.events_endpoint.as_deref(),
            Some("https://id.example/statuslists/events")
        );
        assert_eq!(
            ok.token_endpoint.as_deref(),
            Some("https://id.example/token")
        );
        let cleartext = parse(
            &doc(json!({
                "issuer": issuer, "jwks_uri": "https://id.example/jwks.json",
                "token_endpoint": "http://id.example/token"
            })),
            issuer,
            "u",
        )
        .unwrap();
        assert_eq!(cleartext.token_endpoint, None, "no secret over plain http");
        assert!(matches!(
            parse(
                &doc(json!({"issuer": "https://id.example/", "jwks_uri": "https://x"})),
                issuer,
                "u"
            ),
            Err(GuardError::IssuerMismatch { .. })
        ));
        assert!(matches!(
            parse(&doc(json!({"issuer": issuer})), issuer, "u"),
            Err(GuardError::Metadata(_))
        ));
        for jwks in ["http://id.example/jwks", "/jwks", "file:///etc/passwd"] {
            assert!(matches!(
                parse(
                    &doc(json!({"issuer": issuer, "jwks_uri": jwks})),
                    issuer,
                    "u"
                ),
                Err(GuardError::Metadata(_))
            ));
        }
        let elsewhere = parse(
            &doc(json!({
                "issuer": issuer, "jwks_uri": "https://cdn.example/jwks",
                "valet_status_list_events_endpoint": "https://evil.example/events"
            })),
            issuer,
            "u",
        )
        .unwrap();
        assert_eq!(elsewhere.events_endpoint, None);
        assert!(parse(b"not json", issuer, "u").is_err());
    }
}
