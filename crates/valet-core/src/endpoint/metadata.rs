//! Authorization server metadata (RFC 8414), served at both well-known paths.

use crate::token::id_token::ID_TOKEN_ALGORITHMS;
use valet_protocol::metadata::ServerMetadata;
use valet_protocol::token::GrantType;

use crate::authorize::OIDC_SCOPES;
use crate::config::Settings;

/// Paths of the endpoints, relative to the issuer. The HTTP layer routes the same
/// constants, so metadata and routes cannot drift apart.
pub mod paths {
    pub const AUTHORIZE: &str = "/authorize";
    pub const LOGIN: &str = "/login";
    pub const CONSENT: &str = "/consent";
    pub const SECOND_FACTOR: &str = "/second-factor";
    /// The second-factor page's passkey button: its WebAuthn options.
    pub const SECOND_FACTOR_PASSKEY_OPTIONS: &str = "/second-factor/passkey/options";
    /// The login form's passwordless sign-in: options, then the assertion.
    pub const LOGIN_PASSKEY_OPTIONS: &str = "/login/passkey/options";
    pub const LOGIN_PASSKEY: &str = "/login/passkey";
    /// A signed-in user's passkeys: the page (GET) and adding one (POST).
    pub const ACCOUNT_PASSKEYS: &str = "/account/passkeys";
    pub const ACCOUNT_PASSKEY_OPTIONS: &str = "/account/passkeys/options";
    pub const ACCOUNT_PASSKEY_REMOVE: &str = "/account/passkeys/remove";
    /// The user's own account page (not in the discovery document).
    pub const ACCOUNT: &str = "/account";
    /// The web console for admin users; its pages are under it.
    pub const CONSOLE: &str = "/admin";
    pub const USERINFO: &str = "/userinfo";
    pub const LOGOUT: &str = "/logout";
    pub const TOKEN: &str = "/token";
    pub const STATUS_LISTS: &str = "/statuslists";
    pub const STATUS_LIST: &str = "/statuslists/{list}";
    pub const STATUS_EVENTS: &str = "/statuslists/events";
    pub const JWKS: &str = "/jwks.json";
    pub const INTROSPECT: &str = "/introspect";
    pub const REVOKE: &str = "/revoke";
    /// Self-registration.
    pub const REGISTER: &str = "/register";
    /// Asks for a password reset link.
    pub const RESET: &str = "/reset";
    /// Where a reset link leads.
    pub const RESET_CONFIRM: &str = "/reset/confirm";
    /// Where an email verification link leads.
    pub const VERIFY_EMAIL: &str = "/verify-email";
    /// RFC 8628 §3.1: the device authorization endpoint.
    pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
    /// RFC 8628 §3.3: where the user enters the user code.
    pub const DEVICE: &str = "/device";
    /// RFC 9126 §2: the pushed authorization request endpoint.
    pub const PAR: &str = "/par";
    /// Dynamic client registration (RFC 7591 §3; `/register` is the users').
    pub const REGISTRATION: &str = "/connect/register";
    /// A self-registered client's configuration endpoint (RFC 7592 §2).
    pub const REGISTRATION_CLIENT: &str = "/connect/register/{client_id}";
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
}

const CLIENT_AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
];

/// The algorithms of request objects: those of the keys Valet verifies (never
/// `none` or HMAC).
const CLIENT_SIGNING_ALGS: [&str; 3] = ["ES256", "RS256", "EdDSA"];

/// The algorithms of client assertions: the keys' (`private_key_jwt`) and the
/// HS256 of `client_secret_jwt` (RFC 7523 §2.2, OIDC Core §9; Valet secrets are
/// 47 bytes, too short for HS384/HS512 keys, RFC 7518 §3.2).
const CLIENT_AUTH_SIGNING_ALGS: [&str; 4] = ["ES256", "RS256", "EdDSA", "HS256"];

/// Lists only what this build implements.
pub fn metadata(settings: &Settings) -> ServerMetadata {
    let at = |path: &str| format!("{}{path}", settings.issuer);
    let with_none = |methods: &[&'static str]| {
        let mut all = methods.to_vec();
        all.push("none");
        all
    };
    ServerMetadata {
        issuer: settings.issuer.clone(),
        authorization_endpoint: at(paths::AUTHORIZE),
        token_endpoint: at(paths::TOKEN),
        userinfo_endpoint: at(paths::USERINFO),
        jwks_uri: at(paths::JWKS),
        introspection_endpoint: at(paths::INTROSPECT),
        revocation_endpoint: at(paths::REVOKE),
        end_session_endpoint: at(paths::LOGOUT),
        grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query", "form_post"],
        code_challenge_methods_supported: vec!["S256"],
        token_endpoint_auth_methods_supported: with_none(&CLIENT_AUTH_METHODS),
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS.to_vec(),
        revocation_endpoint_auth_methods_supported: with_none(&CLIENT_AUTH_METHODS),
        scopes_supported: OIDC_SCOPES.to_vec(),
        claims_supported: vec![
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "acr",
            "sid",
            "azp",
            "at_hash",
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "updated_at",
            "email",
            "email_verified",
        ],
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: id_token_algs(),
        prompt_values_supported: vec!["none", "login", "consent"],
        acr_values_supported: crate::mfa::ACR_VALUES.to_vec(),
        authorization_response_iss_parameter_supported: true,
        claims_parameter_supported: false,
        request_parameter_supported: true,
        request_uri_parameter_supported: false,
        status_list_aggregation_endpoint: at(paths::STATUS_LISTS),
        valet_status_list_events_endpoint: at(paths::STATUS_EVENTS),
        access_token_signing_alg_values_supported: vec![settings.keys.access_token_alg.as_str()],
        device_authorization_endpoint: at(paths::DEVICE_AUTHORIZATION),
        pushed_authorization_request_endpoint: at(paths::PAR),
        require_pushed_authorization_requests: settings.require_pushed_authorization_requests,
        dpop_signing_alg_values_supported: valet_jose::DPOP_ALGORITHMS
            .iter()
            .map(|alg| alg.as_str())
            .collect(),
        token_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_SIGNING_ALGS.to_vec(),
        introspection_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_SIGNING_ALGS.to_vec(),
        revocation_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_SIGNING_ALGS.to_vec(),
        request_object_signing_alg_values_supported: CLIENT_SIGNING_ALGS.to_vec(),
        registration_endpoint: (settings.dynamic_clients.registration
            != crate::config::ClientRegistration::Closed)
            .then(|| at(paths::REGISTRATION)),
        client_id_metadata_document_supported: settings.dynamic_clients.metadata_documents,
        ui_locales_supported: settings.catalogues.locales().map(str::to_owned).collect(),
        id_token_encryption_alg_values_supported: jwe_algs(),
        id_token_encryption_enc_values_supported: jwe_encs(),
        userinfo_signing_alg_values_supported: id_token_algs(),
        userinfo_encryption_alg_values_supported: jwe_algs(),
        userinfo_encryption_enc_values_supported: jwe_encs(),
    }
}

fn id_token_algs() -> Vec<&'static str> {
    ID_TOKEN_ALGORITHMS.iter().map(|alg| alg.as_str()).collect()
}

fn jwe_algs() -> Vec<&'static str> {
    valet_jose::KeyManagement::ALL
        .iter()
        .map(|alg| alg.as_str())
        .collect()
}

fn jwe_encs() -> Vec<&'static str> {
    valet_jose::ContentEncryption::ALL
        .iter()
        .map(|enc| enc.as_str())
        .collect()
}
