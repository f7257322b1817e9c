//! Bounded HTTP calls to an upstream provider: every URL is the operator's
//! (or the provider's discovery document's), https except on a loopback host,
//! never followed through a redirect, [`TIMEOUT`] for the whole call and at
//! most [`MAX_BODY`] bytes read. The errors are for the log only (they may
//! name the provider's URL, never a secret).

use std::time::Duration;

use base64::Engine as _;
use reqwest::{Url, redirect};
use serde_json::{Map, Value};
use valet_protocol::form::encode_component;

use crate::outbound_url::check_outbound_url;

/// The whole call, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest response body read (discovery, JWKS, token and userinfo).
pub const MAX_BODY: usize = 256 * 1024;

/// Checks an endpoint URL by the rule of every URL Valet calls out to
/// ([`check_outbound_url`]).
pub fn check_url(uri: &str) -> Result<Url, String> {
    check_outbound_url(uri)
}

/// How the client authenticates at the provider's token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// The HTTP client for upstream calls.
pub struct Http {
    client: Option<reqwest::Client>,
}

impl Default for Http {
    fn default() -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("valet/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .inspect_err(
                |error| tracing::warn!(%error, "no HTTP client: upstream sign-in unusable"),
            )
            .ok();
        Self { client }
    }
}

/// A JSON object an upstream answered with, and the HTTP status.
pub struct Answer {
    pub status: u16,
    pub body: Map<String, Value>,
}

impl Http {
    fn client(&self) -> Result<&reqwest::Client, String> {
        self.client
            .as_ref()
            .ok_or_else(|| "no HTTP client".to_owned())
    }

    /// GETs a JSON object; `bearer` is sent as the access token (RFC 6750 §2.1).
    pub async fn get_json(&self, uri: &str, bearer: Option<&str>) -> Result<Answer, String> {
        let url = check_url(uri)?;
        let mut request = self
            .client()?
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        read_json(request.send().await.map_err(|e| e.to_string())?).await
    }

    /// POSTs a form to a token endpoint, authenticating as `client_id` with `secret`.
    pub async fn post_token(
        &self,
        uri: &str,
        params: &[(&str, &str)],
        auth: ClientAuth,
        client_id: &str,
        secret: &str,
    ) -> Result<Answer, String> {
        let url = check_url(uri)?;
        let mut pairs: Vec<(&str, &str)> = params.to_vec();
        let mut request = self
            .client()?
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        match auth {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: each part form-encoded, then Basic.
                let credentials = format!(
                    "{}:{}",
                    encode_component(client_id),
                    encode_component(secret)
                );
                let value = base64::engine::general_purpose::STANDARD.encode(credentials);
                request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {value}"));
            }
            ClientAuth::Post => {
                pairs.push(("client_id", client_id));
                pairs.push(("client_secret", secret));
            }
        }
        let body = pairs
            .iter()
            .map(|(name, value)| format!("{}={}", encode_component(name), encode_component(value)))
            .collect::<Vec<_>>()
            .join("&");
        read_json(request.body(body).send().await.map_err(|e| e.to_string())?).await
    }
}

/// The body as a JSON object, at most [`MAX_BODY`] bytes.
async fn read_json(mut response: reqwest::Response) -> Result<Answer, String> {
    let status = response.status().as_u16();
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY as u64)
    {
        return Err(format!("HTTP {status}: larger than {MAX_BODY} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
        if body.len().saturating_add(chunk.len()) > MAX_BODY {
            return Err(format!("HTTP {status}: larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(body)) => Ok(Answer { status, body }),
        _ => Err(format!("HTTP {status}: the body is not a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert!(check_url("https://accounts.example.com/auth").is_ok());
        assert!(check_url("http://127.0.0.1:8080/token").is_ok());
        assert!(check_url("http://localhost/token").is_ok());
        assert!(check_url("http://example.com/token").is_err());
        assert!(check_url("https://user:pw@example.com/token").is_err());
        assert!(check_url("https://example.com/token#x").is_err());
        assert!(check_url("/token").is_err());
    }
}
