//! The policy for clients no operator registered: those that register
//! themselves (RFC 7591, `endpoint::registration`) and those known by the URL
//! of their metadata document ([`document`]). Either may use
//! `authorization_code` and `refresh_token` only, never skips consent, and
//! gets only the scopes and audiences of [`DynamicClients`]; the admin service
//! then checks the client as it checks every client.

pub mod document;

use std::borrow::Cow;

use valet_protocol::ErrorCode;
use valet_protocol::registration::ClientMetadata;
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use crate::admin::NewClient;
use crate::config::DynamicClients;
use crate::error::OAuthError;

/// The name a client that gives none is shown under.
const UNNAMED: &str = "Unnamed application";

/// RFC 7591 §3.2.2 `invalid_client_metadata`, saying which field and why.
pub fn invalid_metadata(description: impl Into<Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// The client a registration asks for, within the policy for clients no
/// operator registered; the admin service then checks it as every client.
pub fn new_client(
    metadata: &ClientMetadata,
    policy: &DynamicClients,
) -> Result<NewClient, OAuthError> {
    refuse_unaccepted_fields(metadata)?;
    let public = match metadata
        .token_endpoint_auth_method
        .as_deref()
        .map(TokenEndpointAuthMethod::parse)
    {
        // RFC 7591 §2: client_secret_basic when none is given.
        None => false,
        Some(Some(TokenEndpointAuthMethod::None)) => true,
        Some(Some(
            TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost,
        )) => false,
        // Keys are not accepted from self-registered clients, and a sealed
        // secret is for operator-registered ones only.
        Some(Some(
            method @ (TokenEndpointAuthMethod::PrivateKeyJwt
            | TokenEndpointAuthMethod::ClientSecretJwt),
        )) => {
            return Err(invalid_metadata(format!(
                "token_endpoint_auth_method {method} is not available to self-registered clients: use none, client_secret_basic or client_secret_post, or ask an operator to register the client",
            )));
        }
        Some(None) => {
            return Err(invalid_metadata(
                "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
            ));
        }
    };
    // RFC 7591 §2: authorization_code when none are given.
    let grant_types = metadata
        .grant_types
        .clone()
        .unwrap_or_else(|| vec![GrantType::AuthorizationCode.as_str().to_owned()]);
    if let Some(other) = grant_types.iter().find(|grant| {
        GrantType::parse(grant).is_none_or(|grant| {
            !matches!(
                grant,
                GrantType::AuthorizationCode | GrantType::RefreshToken
            )
        })
    }) {
        return Err(invalid_metadata(format!(
            "grant type {} is not available to self-registered clients: use authorization_code and refresh_token",
            printable(other)
        )));
    }
    // RFC 7591 §2.1: response type `code` goes with authorization_code.
    let response_types = metadata
        .response_types
        .clone()
        .unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|response| response != "code") {
        return Err(invalid_metadata("response_types may hold code only"));
    }
    if !grant_types
        .iter()
        .any(|grant| grant == GrantType::AuthorizationCode.as_str())
    {
        return Err(invalid_metadata(
            "grant_types must include authorization_code (response type code, RFC 7591 section 2.1)",
        ));
    }
    let scopes = scopes_within(metadata.scope.as_deref(), policy)?;
    let name = metadata
        .client_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or(UNNAMED)
        .to_owned();
    Ok(NewClient {
        name,
        public,
        redirect_uris: metadata.redirect_uris.clone().unwrap_or_default(),
        post_logout_redirect_uris: metadata
            .post_logout_redirect_uris
            .clone()
            .unwrap_or_default(),
        grant_types,
        scopes,
        audiences: policy.audiences.clone(),
        id_token_signed_response_alg: metadata.id_token_signed_response_alg.clone(),
        ..NewClient::default()
    })
}

/// The fields Valet reads only to refuse them: operator settings, keys and
/// software statements.
fn refuse_unaccepted_fields(metadata: &ClientMetadata) -> Result<(), OAuthError> {
    for (present, name) in [
        (metadata.skip_consent.is_some(), "skip_consent"),
        (metadata.introspect_any.is_some(), "introspect_any"),
        (metadata.require_mfa.is_some(), "require_mfa"),
        (metadata.access_token_ttl.is_some(), "access_token_ttl"),
        (metadata.audiences.is_some(), "audiences"),
    ] {
        if present {
            return Err(invalid_metadata(format!(
                "{name} is an operator setting: a client cannot register it"
            )));
        }
    }
    for (present, name) in [
        (
            metadata.id_token_encrypted_response_alg.is_some(),
            "id_token_encrypted_response_alg",
        ),
        (
            metadata.id_token_encrypted_response_enc.is_some(),
            "id_token_encrypted_response_enc",
        ),
        (
            metadata.userinfo_signed_response_alg.is_some(),
            "userinfo_signed_response_alg",
        ),
        (
            metadata.userinfo_encrypted_response_alg.is_some(),
            "userinfo_encrypted_response_alg",
        ),
        (
            metadata.userinfo_encrypted_response_enc.is_some(),
            "userinfo_encrypted_response_enc",
        ),
    ] {
        if present {
            return Err(invalid_metadata(format!(
                "{name} is not accepted: encrypted and signed responses need the client's keys, which an operator registers"
            )));
        }
    }
    if metadata.jwks.is_some() || metadata.jwks_uri.is_some() {
        return Err(invalid_metadata(
            "jwks and jwks_uri are not accepted: register with token_endpoint_auth_method none, client_secret_basic or client_secret_post",
        ));
    }
    if metadata.software_statement.is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "software statements are not accepted here",
        ));
    }
    Ok(())
}

/// The scopes asked for, each in the configured list; all of it when none are.
fn scopes_within(scope: Option<&str>, policy: &DynamicClients) -> Result<Vec<String>, OAuthError> {
    let Some(scope) = scope else {
        return Ok(policy.scopes.clone());
    };
    let scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unavailable) = scopes.iter().find(|s| !policy.scopes.contains(s)) {
        return Err(invalid_metadata(format!(
            "scope {} is not available to self-registered clients (available: {})",
            printable(unavailable),
            policy.scopes.join(" ")
        )));
    }
    Ok(scopes)
}

/// Text a client may be shown (RFC 6749 §5.2 allows printable ASCII without
/// `"` and `\` in a description).
pub fn printable(text: &str) -> String {
    text.replace('§', "section ")
        .chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '?',
        })
        .collect()
}
