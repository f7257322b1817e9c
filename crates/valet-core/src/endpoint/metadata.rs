//! Authorization server metadata (RFC 8414), served at both well-known paths.

use valet_jose::Algorithm;
use valet_protocol::metadata::ServerMetadata;
use valet_protocol::token::GrantType;

use crate::config::Settings;
use crate::token::access_token::ACCESS_TOKEN_ALG;

/// Paths of the endpoints, relative to the issuer. The HTTP layer routes the same
/// constants, so metadata and routes cannot drift apart.
pub mod paths {
    pub const TOKEN: &str = "/token";
    pub const JWKS: &str = "/jwks.json";
    pub const INTROSPECT: &str = "/introspect";
    pub const REVOKE: &str = "/revoke";
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
}

const CLIENT_AUTH_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];

/// Lists only what this build implements.
pub fn metadata(settings: &Settings) -> ServerMetadata {
    let at = |path: &str| format!("{}{path}", settings.issuer);
    ServerMetadata {
        issuer: settings.issuer.clone(),
        token_endpoint: at(paths::TOKEN),
        jwks_uri: at(paths::JWKS),
        introspection_endpoint: at(paths::INTROSPECT),
        revocation_endpoint: at(paths::REVOKE),
        grant_types_supported: vec![GrantType::ClientCredentials.as_str()],
        // No authorization endpoint yet, so no response type.
        response_types_supported: Vec::new(),
        token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS.to_vec(),
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS.to_vec(),
        revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS.to_vec(),
        scopes_supported: Vec::new(),
        access_token_signing_alg_values_supported: vec![alg_name(ACCESS_TOKEN_ALG)],
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    alg.as_str()
}
