//! Who the user is at the provider: the code exchanged at its token endpoint
//! (RFC 6749 §4.1.3, with the PKCE verifier, RFC 7636 §4.5), then the ID
//! token verified (OpenID kind) or the userinfo read through the configured
//! claim names (OAuth 2 kind).

use serde_json::{Map, Value};

use super::Upstreams;
use super::id_token::{self, Expected};
use super::provider::Provider;
use crate::store::UpstreamKind;

/// An identity at an upstream, as the provider asserted it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    /// Only when the provider said `email_verified: true`.
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Why no identity was had; the detail is for the log and the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The provider could not be reached, or answered with an error (502).
    Unavailable(String),
    /// The provider's answer does not hold (a bad ID token, no subject): 400.
    Invalid(String),
}

impl Failure {
    pub fn detail(&self) -> &str {
        match self {
            Self::Unavailable(detail) | Self::Invalid(detail) => detail,
        }
    }
}

/// What the callback exchanges.
pub struct Exchange<'a> {
    pub code: &'a str,
    pub verifier: &'a str,
    pub redirect_uri: &'a str,
    pub nonce: &'a str,
    pub secret: &'a str,
    pub now: i64,
}

impl Upstreams {
    /// Exchanges the code and establishes who the user is.
    pub async fn identity(
        &self,
        provider: &Provider,
        exchange: &Exchange<'_>,
    ) -> Result<Identity, Failure> {
        let upstream = &provider.upstream;
        let answer = self
            .http()
            .post_token(
                &provider.token_endpoint,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", exchange.code),
                    ("redirect_uri", exchange.redirect_uri),
                    ("code_verifier", exchange.verifier),
                ],
                provider.token_auth,
                &upstream.client_id,
                exchange.secret,
            )
            .await
            .map_err(|reason| Failure::Unavailable(format!("token endpoint: {reason}")))?;
        if answer.status != 200 {
            let error = answer.body.get("error").and_then(Value::as_str);
            return Err(Failure::Unavailable(format!(
                "token endpoint answered HTTP {} ({})",
                answer.status,
                error.unwrap_or("no error code")
            )));
        }
        match upstream.kind {
            UpstreamKind::Oidc => {
                self.identity_of_id_token(provider, &answer.body, exchange)
                    .await
            }
            UpstreamKind::Oauth2 => self.identity_of_userinfo(provider, &answer.body).await,
        }
    }

    async fn identity_of_id_token(
        &self,
        provider: &Provider,
        tokens: &Map<String, Value>,
        exchange: &Exchange<'_>,
    ) -> Result<Identity, Failure> {
        let upstream = &provider.upstream;
        let (Some(issuer), Some(jwks_uri)) = (&upstream.issuer, &provider.jwks_uri) else {
            return Err(Failure::Invalid("no issuer or jwks_uri".to_owned()));
        };
        let Some(token) = tokens.get("id_token").and_then(Value::as_str) else {
            return Err(Failure::Invalid(
                "the token response has no id_token".to_owned(),
            ));
        };
        let expected = Expected {
            issuer,
            client_id: &upstream.client_id,
            nonce: exchange.nonce,
            now: exchange.now,
        };
        let keys = self
            .keys(jwks_uri, false, exchange.now)
            .await
            .map_err(|reason| Failure::Unavailable(format!("jwks_uri: {reason}")))?;
        let claims = match id_token::verify(&keys, token, &expected) {
            Ok(claims) => claims,
            Err(first) => {
                // The provider may have rolled its keys since they were cached.
                let keys = self
                    .keys(jwks_uri, true, exchange.now)
                    .await
                    .map_err(|reason| Failure::Unavailable(format!("jwks_uri: {reason}")))?;
                id_token::verify(&keys, token, &expected).map_err(|_| {
                    Failure::Invalid(format!("the ID token was refused: {}", first.0))
                })?
            }
        };
        let mut claims = claims;
        if !claims.contains_key(&upstream.email_claim) {
            self.add_userinfo(provider, tokens, &mut claims).await;
        }
        mapped(
            &claims,
            "sub",
            upstream.email_claim.as_str(),
            &upstream.name_claim,
        )
    }

    /// Many providers put the email and name in userinfo only (OIDC Core
    /// §5.4): its claims are added when its `sub` is the ID token's (§5.3.4);
    /// a failure only leaves them out.
    async fn add_userinfo(
        &self,
        provider: &Provider,
        tokens: &Map<String, Value>,
        claims: &mut Map<String, Value>,
    ) {
        let (Some(endpoint), Some(access_token)) = (
            &provider.userinfo_endpoint,
            tokens.get("access_token").and_then(Value::as_str),
        ) else {
            return;
        };
        match self.http().get_json(endpoint, Some(access_token)).await {
            Ok(answer) if answer.status == 200 && answer.body.get("sub") == claims.get("sub") => {
                for (name, value) in answer.body {
                    claims.entry(name).or_insert(value);
                }
            }
            Ok(answer) => tracing::info!(
                upstream = %provider.upstream.name,
                status = answer.status,
                "userinfo not used: an error, or another subject"
            ),
            Err(reason) => {
                tracing::info!(upstream = %provider.upstream.name, %reason, "userinfo not used");
            }
        }
    }

    async fn identity_of_userinfo(
        &self,
        provider: &Provider,
        tokens: &Map<String, Value>,
    ) -> Result<Identity, Failure> {
        let Some(access_token) = tokens.get("access_token").and_then(Value::as_str) else {
            return Err(Failure::Invalid(
                "the token response has no access_token".to_owned(),
            ));
        };
        let Some(userinfo) = &provider.userinfo_endpoint else {
            return Err(Failure::Invalid("no userinfo endpoint".to_owned()));
        };
        let answer = self
            .http()
            .get_json(userinfo, Some(access_token))
            .await
            .map_err(|reason| Failure::Unavailable(format!("userinfo: {reason}")))?;
        if answer.status != 200 {
            return Err(Failure::Unavailable(format!(
                "userinfo answered HTTP {}",
                answer.status
            )));
        }
        let upstream = &provider.upstream;
        mapped(
            &answer.body,
            &upstream.subject_claim,
            &upstream.email_claim,
            &upstream.name_claim,
        )
    }
}

/// The identity in `claims` under the given claim names. A subject may be a
/// string or an integer (GitHub's `id`); an email counts as verified only
/// when `email_verified` is `true`.
pub fn mapped(
    claims: &Map<String, Value>,
    subject_claim: &str,
    email_claim: &str,
    name_claim: &str,
) -> Result<Identity, Failure> {
    let subject = match claims.get(subject_claim) {
        Some(Value::String(text)) if !text.is_empty() && text.len() <= 255 => text.clone(),
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => number.to_string(),
        _ => {
            return Err(Failure::Invalid(format!(
                "no usable subject in the {subject_claim:?} claim"
            )));
        }
    };
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty() && value.len() <= 254)
            .map(str::to_owned)
    };
    let email = text(email_claim);
    Ok(Identity {
        subject,
        email_verified: email.is_some()
            && claims.get("email_verified").and_then(Value::as_bool) == Some(true),
        email,
        name: text(name_claim),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn claims_map_to_an_identity() {
        let claims = json!({"id": 42, "mail": "a@example.com", "login": "octo"});
        let found = mapped(claims.as_object().unwrap(), "id", "mail", "login").unwrap();
        assert_eq!(found.subject, "42");
        assert_eq!(found.email.as_deref(), Some("a@example.com"));
        assert!(!found.email_verified, "no email_verified claim: unverified");
        assert_eq!(found.name.as_deref(), Some("octo"));
    }

    #[test]
    fn only_a_true_email_verified_counts() {
        for (value, verified) in [
            (json!(true), true),
            (json!("true"), false),
            (json!(false), false),
        ] {
            let claims = json!({"sub": "s", "email": "a@example.com", "email_verified": value});
            let found = mapped(claims.as_object().unwrap(), "sub", "email", "name").unwrap();
            assert_eq!(found.email_verified, verified);
        }
    }

    #[test]
    fn a_missing_subject_is_invalid() {
        let claims = json!({"sub": ""});
        assert!(mapped(claims.as_object().unwrap(), "sub", "email", "name").is_err());
        assert!(mapped(&Map::new(), "sub", "email", "name").is_err());
    }
}
