//! The gateway as an OpenID Connect relying party: discovery, the token
//! endpoint (code, refresh, revocation) with client_secret_basic, and the
//! checks on ID tokens (OIDC Core §3.1.3.7) and logout tokens (OIDC
//! Back-Channel Logout 1.0 §2.6) against the issuer's JWKS.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use valet_jose::{JoseError, VerificationKeys, constant_time_eq};

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECONDS: i64 = 30;
/// The JWKS is fetched again for an unknown `kid` at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(10);
/// OIDC Back-Channel Logout 1.0 §2.4: the event a logout token carries.
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How old a logout token's `iat` may be.
const LOGOUT_TOKEN_MAX_AGE: i64 = 300;

/// What discovery tells the gateway.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// A token endpoint answer (RFC 6749 §5.1).
#[derive(Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub expires_in: Option<i64>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

/// Why a token request failed: the issuer refused (`invalid_grant`: the refresh
/// token is gone) or could not be asked.
#[derive(Debug)]
pub enum TokenError {
    Refused(String),
    Unavailable(String),
}

/// The issuer as this gateway's client sees it.
pub struct Provider {
    pub metadata: Metadata,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
    keys: RwLock<(Instant, VerificationKeys)>,
}

impl Provider {
    /// Reads `{issuer}/.well-known/openid-configuration` and the JWKS; the
    /// metadata's `issuer` must be the one configured (OIDC Discovery §4.3).
    pub async fn discover(
        http: reqwest::Client,
        issuer: &str,
        client_id: String,
        client_secret: String,
    ) -> Result<Provider, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let metadata: Metadata = fetch_json(&http, &url).await?;
        if metadata.issuer != issuer {
            return Err(format!(
                "discovery at {url} names the issuer {:?}, not {issuer:?}",
                metadata.issuer
            ));
        }
        let keys = fetch_keys(&http, &metadata.jwks_uri).await?;
        Ok(Provider {
            metadata,
            client_id,
            client_secret,
            http,
            keys: RwLock::new((Instant::now(), keys)),
        })
    }

    /// RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5).
    pub async fn redeem_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<Tokens, TokenError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ])
        .await
    }

    /// RFC 6749 §6.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, TokenError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// RFC 7009: best effort, at logout.
    pub async fn revoke(&self, token: &str) {
        let Some(endpoint) = &self.metadata.revocation_endpoint else {
            return;
        };
        let sent = self
            .http
            .post(endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("token", token),
                ("token_type_hint", "refresh_token"),
            ]))
            .send()
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, "revoking the refresh token at logout failed");
        }
    }

    async fn token_request(&self, fields: &[(&str, &str)]) -> Result<Tokens, TokenError> {
        let reply = self
            .http
            .post(&self.metadata.token_endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
            .await
            .map_err(|error| TokenError::Unavailable(error.to_string()))?;
        let status = reply.status();
        let body = reply
            .bytes()
            .await
            .map_err(|error| TokenError::Unavailable(error.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|error| TokenError::Unavailable(format!("token response: {error}")));
        }
        let code = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|body| body.get("error")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| status.to_string());
        if status.is_client_error() {
            Err(TokenError::Refused(code))
        } else {
            Err(TokenError::Unavailable(code))
        }
    }

    /// Verifies a JWS of this issuer with typ `typ`, fetching the JWKS again
    /// (at most every ten seconds) when the key is unknown (rotation).
    async fn verify(&self, token: &str, typ: &str) -> Result<Map<String, Value>, String> {
        let first = self.with_keys(|keys| keys.verify(token, typ))?;
        match first {
            Err(JoseError::UnknownKid(_)) if self.may_refetch() => {
                let keys = fetch_keys(&self.http, &self.metadata.jwks_uri).await?;
                let verified = keys.verify(token, typ);
                if let Ok(mut slot) = self.keys.write() {
                    *slot = (Instant::now(), keys);
                }
                verified
            }
            other => other,
        }
        .map(|jws| jws.claims)
        .map_err(|error| format!("signature: {error}"))
    }

    fn with_keys<T>(&self, f: impl FnOnce(&VerificationKeys) -> T) -> Result<T, String> {
        let keys = self
            .keys
            .read()
            .map_err(|_| "key cache poisoned".to_owned())?;
        Ok(f(&keys.1))
    }

    fn may_refetch(&self) -> bool {
        self.keys
            .read()
            .map(|keys| keys.0.elapsed() >= JWKS_REFETCH)
            .unwrap_or(false)
    }

    /// OIDC Core §3.1.3.7: signature, `iss`, `aud` (and `azp` with several
    /// audiences), `exp`, and the `nonce` this login sent.
    pub async fn verify_id_token(
        &self,
        id_token: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Map<String, Value>, String> {
        let claims = self.verify(id_token, "JWT").await?;
        self.check_issuer_and_audience(&claims)?;
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or("no exp")?;
        if exp + LEEWAY_SECONDS <= now {
            return Err("expired".into());
        }
        let sent = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), nonce.as_bytes()) {
            return Err("the nonce is not this login's".into());
        }
        if claims.get("sub").and_then(Value::as_str).is_none() {
            return Err("no sub".into());
        }
        Ok(claims)
    }

    /// OIDC Back-Channel Logout 1.0 §2.6: signature with typ `logout+jwt`, `iss`,
    /// `aud`, a recent `iat`, the logout event, `sub` or `sid`, and no `nonce`.
    /// Returns the `sub` and `sid` it names.
    pub async fn verify_logout_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<(Option<String>, Option<String>), String> {
        let claims = self.verify(token, "logout+jwt").await?;
        self.check_issuer_and_audience(&claims)?;
        let iat = claims.get("iat").and_then(Value::as_i64).ok_or("no iat")?;
        if iat > now + LEEWAY_SECONDS || iat < now - LOGOUT_TOKEN_MAX_AGE {
            return Err("iat is not recent".into());
        }
        if let Some(exp) = claims.get("exp").and_then(Value::as_i64)
            && exp + LEEWAY_SECONDS <= now
        {
            return Err("expired".into());
        }
        let has_event = claims
            .get("events")
            .and_then(Value::as_object)
            .is_some_and(|events| {
                events
                    .get(BACKCHANNEL_LOGOUT_EVENT)
                    .is_some_and(Value::is_object)
            });
        if !has_event {
            return Err("no back-channel logout event".into());
        }
        if claims.contains_key("nonce") {
            return Err("a logout token has no nonce".into());
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let (sub, sid) = (text("sub"), text("sid"));
        if sub.is_none() && sid.is_none() {
            return Err("names neither sub nor sid".into());
        }
        Ok((sub, sid))
    }

    fn check_issuer_and_audience(&self, claims: &Map<String, Value>) -> Result<(), String> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.metadata.issuer.as_str()) {
            return Err("iss is not the issuer".into());
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&self.client_id.as_str()) {
            return Err("aud does not name this client".into());
        }
        if audiences.len() > 1
            && claims.get("azp").and_then(Value::as_str) != Some(self.client_id.as_str())
        {
            return Err("azp is not this client".into());
        }
        Ok(())
    }
}

async fn fetch_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let reply = http
        .get(url)
        .send()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    if !reply.status().is_success() {
        return Err(format!("{url}: HTTP {}", reply.status()));
    }
    let body = reply
        .bytes()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    serde_json::from_slice(&body).map_err(|error| format!("{url}: {error}"))
}

async fn fetch_keys(http: &reqwest::Client, url: &str) -> Result<VerificationKeys, String> {
    let reply = http
        .get(url)
        .send()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let text = reply
        .text()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    VerificationKeys::from_jwk_set_json(&text).map_err(|error| format!("{url}: {error}"))
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(fields: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}
