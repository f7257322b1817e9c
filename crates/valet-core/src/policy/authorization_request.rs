//! What a client may ask for in an authorization request (RFC 6749 §4.1.1,
//! §3.3; RFC 8707 §2), wherever the request arrives: `/authorize`, or pushed
//! to `/par` (RFC 9126 §2.1).

use valet_protocol::ErrorCode;
use valet_protocol::authorize::AuthorizationParameters;
use valet_protocol::token::GrantType;

use crate::authorize::OIDC_SCOPES;
use crate::store::Client;

/// The scopes granted if the request is within what `client` may ask for:
/// the code flow, registered (or OpenID) scopes, registered resources (RFC 8707).
pub fn permitted(
    client: &Client,
    params: &AuthorizationParameters,
) -> Result<Vec<String>, (ErrorCode, &'static str)> {
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err((
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization code flow",
        ));
    }
    let scope: Vec<String> = if params.scope.is_empty() {
        client.scopes.clone()
    } else {
        params.scope.iter().map(str::to_owned).collect()
    };
    if let Some(extra) = scope
        .iter()
        .find(|s| !client.scopes.contains(s) && !OIDC_SCOPES.contains(&s.as_str()))
    {
        tracing::debug!(client_id = %client.client_id, scope = %extra, "scope not registered");
        return Err((
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope registered for this client",
        ));
    }
    if params
        .resources
        .iter()
        .any(|r| !client.audiences.contains(r))
    {
        return Err((
            ErrorCode::InvalidTarget,
            "the requested resource is not registered for this client",
        ));
    }
    Ok(scope)
}
