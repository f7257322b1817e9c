//! One module per grant type. [`issue`] dispatches on the parsed request.

mod client_credentials;
mod common;

use valet_protocol::token::{TokenRequest, TokenResponse};

use crate::AuthorizationServer;
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;

pub async fn issue(
    server: &AuthorizationServer,
    client: &AuthenticatedClient,
    request: TokenRequest,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    common::ensure_grant_allowed(client, request.grant_type())?;
    match request {
        TokenRequest::ClientCredentials { scope, resources } => {
            client_credentials::issue(server, client, scope.as_ref(), &resources, now)
        }
    }
}
