//! The guard's own access token for the issuer's status list event stream, obtained with
//! the configured client credentials (see
//! [`GuardConfigBuilder::status_credentials`](crate::GuardConfigBuilder::status_credentials)).
//!
//! Neither the client secret nor the token is ever logged: both travel only in header
//! values marked sensitive, and no type here implements `Debug` with them.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::ClientCredentials;
use crate::http::{FetchError, Http};

/// The scope Valet requires of a token for its status list event stream.
pub(crate) const STATUS_SCOPE: &str = "valet:status";

/// A token is replaced this long before its `expires_in` ends, so that it never expires
/// between being read from the cache and reaching the issuer.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// The longest a stream token is kept, whatever `expires_in` says (Valet's access
/// tokens live at most a day).
const MAX_TOKEN_LIFETIME: u64 = 86_400;

/// Token responses are small JSON documents.
const MAX_TOKEN_RESPONSE_LEN: usize = 64 * 1024;

/// Fetches and caches the stream token.
pub(crate) struct StreamToken {
    http: Http,
    token_endpoint: String,
    /// The form sent to the token endpoint (no secret in it).
    form: String,
    credentials: ClientCredentials,
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    /// `Bearer …`, marked sensitive.
    authorization: HeaderValue,
    /// When to fetch a new one: `EXPIRY_MARGIN` before it expires.
    refresh_at: Instant,
}

/// RFC 6749 §5.1.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl StreamToken {
    /// For tokens from `token_endpoint`, meant for the issuer itself (RFC 8707
    /// `resource={issuer}`).
    pub(crate) fn new(
        http: Http,
        token_endpoint: String,
        issuer: &str,
        credentials: ClientCredentials,
    ) -> StreamToken {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("scope", STATUS_SCOPE)
            .append_pair("resource", issuer)
            .finish();
        StreamToken {
            http,
            token_endpoint,
            form,
            credentials,
            cached: Mutex::new(None),
        }
    }

    /// The token endpoint, for logs.
    pub(crate) fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The `Authorization` value to present: the cached token while it is more than 30 s
    /// from expiry, else a freshly obtained one.
    pub(crate) async fn authorization(&self) -> Result<HeaderValue, FetchError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.authorization.clone());
        }
        let fresh = self.fetch().await?;
        let authorization = fresh.authorization.clone();
        *cached = Some(fresh);
        Ok(authorization)
    }

    /// Forgets `used` (the stream refused it), so the next call obtains a new token. A
    /// token cached since by another caller is kept.
    pub(crate) async fn invalidate(&self, used: &HeaderValue) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|token| token.authorization == *used)
        {
            *cached = None;
        }
    }

    /// The client credentials grant (RFC 6749 §4.4.2) with HTTP Basic client
    /// authentication, the id and secret form-urlencoded first (RFC 6749 §2.3.1).
    async fn fetch(&self) -> Result<Cached, FetchError> {
        let started = Instant::now();
        let document = self
            .http
            .post_form(
                &self.token_endpoint,
                self.basic()?,
                self.form.clone(),
                MAX_TOKEN_RESPONSE_LEN,
            )
            .await?;
        let response: TokenResponse = serde_json::from_slice(&document.body)
            .map_err(|_| FetchError::Invalid("the token response is not RFC 6749 JSON"))?;
        // RFC 6749 §7.1: the type is case-insensitive; only bearer tokens are presentable.
        if !response.token_type.eq_ignore_ascii_case("bearer") {
            return Err(FetchError::Invalid(
                "the token endpoint issued a non-bearer token",
            ));
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", response.access_token))
            .map_err(|_| FetchError::Invalid("the access token cannot be sent in a header"))?;
        authorization.set_sensitive(true);
        // Without `expires_in` the token is used for this one subscription only. A
        // lifetime beyond a day is taken as a day: an issuer's number must not be
        // able to overflow the clock (`Instant + Duration` panics on overflow).
        let lifetime =
            Duration::from_secs(response.expires_in.unwrap_or(0).min(MAX_TOKEN_LIFETIME));
        Ok(Cached {
            authorization,
            refresh_at: started + lifetime.saturating_sub(EXPIRY_MARGIN),
        })
    }

    fn basic(&self) -> Result<HeaderValue, FetchError> {
        let encode =
            |part: &str| form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
        let pair = format!(
            "{}:{}",
            encode(&self.credentials.client_id),
            encode(&self.credentials.client_secret)
        );
        let mut value = HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
        .map_err(|_| FetchError::Invalid("unusable client credentials"))?;
        value.set_sensitive(true);
        Ok(value)
    }
}
