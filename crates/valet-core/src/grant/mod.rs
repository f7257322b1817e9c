//! One module per grant type. [`issue`] dispatches on the parsed request.

mod authorization_code;
mod client_credentials;
mod common;
mod device_code;
pub(crate) mod refresh_token;
mod token_exchange;

use std::net::IpAddr;

use valet_protocol::token::{TokenRequest, TokenResponse};

use crate::AuthorizationServer;
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;

/// The two grants that write to the store hold kilobytes of state across their
/// awaits; they are boxed so that this future, which every token request builds
/// and moves, stays the size of the client_credentials path.
pub async fn issue(
    server: &AuthorizationServer,
    client: &AuthenticatedClient,
    request: TokenRequest,
    dpop_jkt: Option<&str>,
    address: Option<IpAddr>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    common::ensure_grant_allowed(client, request.grant_type())?;
    match request {
        TokenRequest::ClientCredentials { scope, resources } => {
            client_credentials::issue(
                server,
                client,
                scope.as_ref(),
                &resources,
                dpop_jkt,
                address,
                now,
            )
            .await
        }
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            Box::pin(authorization_code::issue(
                server,
                client,
                code.expose(),
                redirect_uri.as_deref(),
                code_verifier.expose(),
                dpop_jkt,
                address,
                now,
            ))
            .await
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            Box::pin(refresh_token::issue(
                server,
                client,
                refresh_token.expose(),
                scope.as_ref(),
                dpop_jkt,
                address,
                now,
            ))
            .await
        }
        TokenRequest::DeviceCode { device_code } => {
            Box::pin(device_code::issue(
                server,
                client,
                device_code.expose(),
                dpop_jkt,
                address,
                now,
            ))
            .await
        }
        TokenRequest::TokenExchange(exchange) => {
            Box::pin(token_exchange::issue(
                server, client, exchange, dpop_jkt, address, now,
            ))
            .await
        }
    }
}
