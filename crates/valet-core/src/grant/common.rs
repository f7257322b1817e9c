//! Steps every grant shares.

use valet_protocol::ErrorCode;
use valet_protocol::token::GrantType;

use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;

/// RFC 6749 §5.2 `unauthorized_client`: the client is not registered for this grant.
pub fn ensure_grant_allowed(
    client: &AuthenticatedClient,
    grant: GrantType,
) -> Result<(), OAuthError> {
    if client
        .client()
        .grant_types
        .iter()
        .any(|g| g == grant.as_str())
    {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for this grant_type",
        ))
    }
}
