//! Authorization server metadata (RFC 8414 §2), also served as OpenID Connect
//! discovery. Lists only what Valet implements.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// RFC 9068 access tokens are signed with these.
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
}
