//! Resource indicators (RFC 8707): which audiences an access token is for.

use valet_protocol::ErrorCode;

use crate::error::OAuthError;
use crate::store::Client;

/// The token's audiences: each requested `resource` must be one the client is
/// registered for (RFC 8707 §2, `invalid_target` otherwise); with none requested,
/// the client's first registered audience.
pub fn resolve(requested: &[String], client: &Client) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        return client
            .audiences
            .first()
            .map(|aud| vec![aud.clone()])
            .ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "this client has no registered audience: its registration must list one in audiences",
                )
            });
    }
    let mut audiences: Vec<String> = Vec::with_capacity(requested.len());
    for resource in requested {
        if !client.audiences.contains(resource) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the requested resource is not registered for this client",
            ));
        }
        if !audiences.contains(resource) {
            audiences.push(resource.clone());
        }
    }
    Ok(audiences)
}

/// Audiences for a token issued to a user: the requested resources (already
/// checked against the registration), else the client's first audience, else the
/// issuer itself; plus the issuer when the token may call UserInfo.
pub fn for_user(requested: &[String], client: &Client, issuer: &str, openid: bool) -> Vec<String> {
    let mut audiences = if requested.is_empty() {
        vec![
            client
                .audiences
                .first()
                .map_or_else(|| issuer.to_owned(), Clone::clone),
        ]
    } else {
        requested.to_vec()
    };
    // With `openid` the token is also for Valet's own UserInfo endpoint, which
    // checks that it is in the audience (RFC 9068 §4).
    if openid && !audiences.iter().any(|aud| aud == issuer) {
        audiences.push(issuer.to_owned());
    }
    audiences
}
