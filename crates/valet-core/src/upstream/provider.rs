//! An upstream as the flow uses it: its endpoints, from the operator's
//! settings (OAuth 2 kind) or the provider's discovery document (OpenID kind,
//! OpenID Connect Discovery 1.0 §3), and the secret to authenticate with.

use serde_json::{Map, Value};

use super::fetch::{ClientAuth, check_url};
use crate::store::{Upstream, UpstreamKind};

/// The discovery document's path under an issuer (OpenID Connect Discovery §4).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// What the flow needs of a discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
    pub token_auth: ClientAuth,
    /// RFC 9207 §3: the provider sends `iss` with every authorization response.
    pub iss_parameter: bool,
}

impl Discovery {
    /// Reads a discovery document for `issuer`: its `issuer` must be exactly
    /// the one asked for (OpenID Connect Discovery §4.3), every endpoint a
    /// usable URL, and `S256` PKCE not ruled out.
    pub fn parse(issuer: &str, document: &Map<String, Value>) -> Result<Self, String> {
        let text = |name: &str| document.get(name).and_then(Value::as_str);
        let url = |name: &'static str| -> Result<String, String> {
            let value = text(name).ok_or_else(|| format!("no {name}"))?;
            check_url(value).map_err(|error| format!("{name} {error}"))?;
            Ok(value.to_owned())
        };
        if text("issuer") != Some(issuer) {
            return Err(format!(
                "its issuer is {:?}, not {issuer:?} (OpenID Connect Discovery §4.3)",
                text("issuer").unwrap_or_default()
            ));
        }
        let listed = |name: &str, value: &str| {
            document
                .get(name)
                .and_then(Value::as_array)
                .map(|list| list.iter().any(|item| item.as_str() == Some(value)))
        };
        if listed("code_challenge_methods_supported", "S256") == Some(false) {
            return Err("it does not support PKCE with S256".to_owned());
        }
        // OIDC Discovery §3: client_secret_basic when the list is absent.
        let token_auth = match (
            listed(
                "token_endpoint_auth_methods_supported",
                "client_secret_basic",
            ),
            listed(
                "token_endpoint_auth_methods_supported",
                "client_secret_post",
            ),
        ) {
            (None | Some(true), _) => ClientAuth::Basic,
            (Some(false), Some(true)) => ClientAuth::Post,
            (Some(false), _) => {
                return Err(
                    "its token endpoint takes neither client_secret_basic nor client_secret_post"
                        .to_owned(),
                );
            }
        };
        let userinfo_endpoint = match text("userinfo_endpoint") {
            Some(_) => Some(url("userinfo_endpoint")?),
            None => None,
        };
        Ok(Self {
            issuer: issuer.to_owned(),
            authorization_endpoint: url("authorization_endpoint")?,
            token_endpoint: url("token_endpoint")?,
            userinfo_endpoint,
            jwks_uri: url("jwks_uri")?,
            token_auth,
            iss_parameter: document
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// An upstream with its endpoints resolved.
#[derive(Debug, Clone)]
pub struct Provider {
    pub upstream: Upstream,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    /// OpenID kind only.
    pub jwks_uri: Option<String>,
    pub token_auth: ClientAuth,
    pub iss_parameter: bool,
}

impl Provider {
    /// An OpenID provider by its discovery document.
    pub fn openid(upstream: Upstream, discovery: &Discovery) -> Self {
        Self {
            upstream,
            authorization_endpoint: discovery.authorization_endpoint.clone(),
            token_endpoint: discovery.token_endpoint.clone(),
            userinfo_endpoint: discovery.userinfo_endpoint.clone(),
            jwks_uri: Some(discovery.jwks_uri.clone()),
            token_auth: discovery.token_auth,
            iss_parameter: discovery.iss_parameter,
        }
    }

    /// A plain OAuth 2 provider by its configured endpoints; `None` if the
    /// upstream is not one or lacks an endpoint.
    pub fn oauth2(upstream: Upstream) -> Option<Self> {
        if upstream.kind != UpstreamKind::Oauth2 {
            return None;
        }
        Some(Self {
            authorization_endpoint: upstream.authorization_endpoint.clone()?,
            token_endpoint: upstream.token_endpoint.clone()?,
            userinfo_endpoint: Some(upstream.userinfo_endpoint.clone()?),
            jwks_uri: None,
            // GitHub-style providers take the secret in the body.
            token_auth: ClientAuth::Post,
            iss_parameter: false,
            upstream,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn document(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "issuer": "https://op.example.com",
            "authorization_endpoint": "https://op.example.com/authorize",
            "token_endpoint": "https://op.example.com/token",
            "jwks_uri": "https://op.example.com/jwks",
        });
        if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
            base.extend(extra);
        }
        base.as_object().cloned().unwrap()
    }

    #[test]
    fn discovery_is_read_and_its_issuer_must_match() {
        let found = Discovery::parse("https://op.example.com", &document(json!({}))).unwrap();
        assert_eq!(found.token_auth, ClientAuth::Basic);
        assert!(!found.iss_parameter);
        assert!(Discovery::parse("https://other.example.com", &document(json!({}))).is_err());
    }

    #[test]
    fn discovery_picks_post_auth_and_the_iss_parameter() {
        let found = Discovery::parse(
            "https://op.example.com",
            &document(json!({
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "authorization_response_iss_parameter_supported": true,
            })),
        )
        .unwrap();
        assert_eq!(found.token_auth, ClientAuth::Post);
        assert!(found.iss_parameter);
    }

    #[test]
    fn discovery_refuses_plain_only_pkce_and_http_endpoints() {
        let plain = document(json!({"code_challenge_methods_supported": ["plain"]}));
        assert!(Discovery::parse("https://op.example.com", &plain).is_err());
        let http = document(json!({"token_endpoint": "http://op.example.com/token"}));
        assert!(Discovery::parse("https://op.example.com", &http).is_err());
    }
}
