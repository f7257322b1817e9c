//! Dynamic client registration (RFC 7591), its management protocol (RFC 7592)
//! and Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document):
//! client metadata as JSON, in and out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Client metadata as a client sends it (RFC 7591 §2), to `POST` the
/// registration endpoint or `PUT` its configuration endpoint (RFC 7592 §2.2),
/// or as it publishes it in a metadata document. Unknown fields are ignored
/// (RFC 7591 §2: "the authorization server MUST ignore any client metadata sent
/// by the client that it does not understand"); a repeated field is refused by
/// the parser. Fields Valet reads but does not accept (`jwks`, `jwks_uri`,
/// `software_statement`, and its own operator-only settings) are kept as raw
/// values so that their presence can be refused with a precise message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    pub redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    /// Space-separated (RFC 7591 §2).
    pub scope: Option<String>,
    /// OIDC RP-Initiated Logout §3.1.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// OIDC Registration §2.
    pub id_token_signed_response_alg: Option<String>,
    /// RFC 7592 §2.2: a PUT repeats the client's id; a metadata document names
    /// its own URL.
    pub client_id: Option<String>,
    /// RFC 7592 §2.2: a PUT may repeat the secret; it must then be the current one.
    pub client_secret: Option<String>,
    pub jwks_uri: Option<Value>,
    pub jwks: Option<Value>,
    pub software_statement: Option<Value>,
    /// Valet's operator-only settings: refused when sent by a client.
    pub skip_consent: Option<Value>,
    pub introspect_any: Option<Value>,
    pub require_mfa: Option<Value>,
    pub access_token_ttl: Option<Value>,
    pub audiences: Option<Value>,
    /// OIDC Registration §2 encryption and UserInfo signing: they need the
    /// client's keys, which a self-registered client cannot give, so they are
    /// refused rather than ignored (a client asking for encryption must not get
    /// clear tokens).
    pub id_token_encrypted_response_alg: Option<Value>,
    pub id_token_encrypted_response_enc: Option<Value>,
    pub userinfo_signed_response_alg: Option<Value>,
    pub userinfo_encrypted_response_alg: Option<Value>,
    pub userinfo_encrypted_response_enc: Option<Value>,
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
#[derive(Debug, Clone, Serialize)]
pub struct ClientInformation {
    pub client_id: String,
    /// Only in the answer that created (or rotated) it: it is stored hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    /// Present with a secret; 0: it does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// Only in the answers that issued it (registration and PUT): it is stored hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    pub registration_client_uri: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: &'static str,
    pub grant_types: Vec<String>,
    pub response_types: Vec<&'static str>,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
}

/// A JSON parse error as a description a client may be shown (RFC 6749 §5.2
/// allows no `"` or `\` there).
pub fn describe_json_error(error: &serde_json::Error) -> String {
    let text = format!("the body is not client metadata as RFC 7591 section 2 defines: {error}");
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '`' => '\'',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::is_valid_description;

    #[test]
    fn unknown_fields_are_ignored_and_duplicates_refused() {
        let metadata: ClientMetadata =
            serde_json::from_str(r#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"x"}"#)
                .unwrap();
        assert_eq!(
            metadata.redirect_uris.as_deref(),
            Some(&["https://a.example/cb".to_owned()][..])
        );
        let error =
            serde_json::from_str::<ClientMetadata>(r#"{"client_name":"a","client_name":"b"}"#)
                .unwrap_err();
        assert!(is_valid_description(&describe_json_error(&error)));
        let error =
            serde_json::from_str::<ClientMetadata>(r#"{"redirect_uris":"https://a"}"#).unwrap_err();
        let text = describe_json_error(&error);
        assert!(is_valid_description(&text), "{text}");
        assert!(
            text.contains("redirect_uris") || text.contains("sequence"),
            "{text}"
        );
    }
}
