//! Authorization server metadata (RFC 8414 §2), also served as OpenID Connect
//! discovery (OIDC Discovery §3). Lists only what Valet implements.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub end_session_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    /// OIDC Discovery §3: the `acr` values the ID token may carry.
    pub acr_values_supported: Vec<&'static str>,
    /// RFC 9207 §3
    pub authorization_response_iss_parameter_supported: bool,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    /// draft-ietf-oauth-status-list §9.3: lists every status list in use.
    pub status_list_aggregation_endpoint: String,
    /// Valet's push channel of revocation notices (Server-Sent Events).
    pub valet_status_list_events_endpoint: String,
    /// RFC 9068 access tokens are signed with these.
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 8628 §4
    pub device_authorization_endpoint: String,
    /// RFC 9126 §5
    pub pushed_authorization_request_endpoint: String,
    /// RFC 9126 §5: every client must push its requests (some may have to
    /// although this is false: see their registration).
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.1: the JWS algorithms accepted for DPoP proofs.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 8414 §2: algorithms of `private_key_jwt` client assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 9101 §10.5 / OIDC Discovery §3: algorithms of request objects.
    pub request_object_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 7591 §3 / RFC 8414 §2: present while dynamic registration is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// draft-ietf-oauth-client-id-metadata-document §5: an https URL may be
    /// a `client_id` (present, `true`, while the setting is on).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub client_id_metadata_document_supported: bool,
    /// OIDC Discovery §3: the languages of the user-facing pages, as
    /// `ui_locales` may ask for them (BCP 47 tags).
    pub ui_locales_supported: Vec<String>,
    /// OIDC Discovery §3: JWE `alg` and `enc` values for encrypted ID tokens.
    pub id_token_encryption_alg_values_supported: Vec<&'static str>,
    pub id_token_encryption_enc_values_supported: Vec<&'static str>,
    /// OIDC Discovery §3: signed and encrypted UserInfo answers.
    pub userinfo_signing_alg_values_supported: Vec<&'static str>,
    pub userinfo_encryption_alg_values_supported: Vec<&'static str>,
    pub userinfo_encryption_enc_values_supported: Vec<&'static str>,
}
