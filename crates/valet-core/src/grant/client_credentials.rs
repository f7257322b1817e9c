//! The client credentials grant.
//!
//! RFC 6749 §4.4: "The client can request an access token using only its client
//! credentials ... The client credentials grant type MUST only be used by
//! confidential clients." No refresh token is issued (§4.4.3).
//!
//! Nothing here writes to the store: issuing a token costs one ES256 signature
//! (the status list index comes from a block reserved in advance).

use std::net::IpAddr;

use valet_protocol::token::TokenResponse;
use valet_protocol::{ErrorCode, Scope};

use crate::AuthorizationServer;
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;
use crate::policy;
use crate::token::access_token;
use crate::token::status_claim::StatusClaim;

pub async fn issue(
    server: &AuthorizationServer,
    client: &AuthenticatedClient,
    scope: Option<&Scope>,
    resources: &[String],
    dpop_jkt: Option<&str>,
    address: Option<IpAddr>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    if !client.is_confidential() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials is only for confidential clients",
        ));
    }
    let registered = client.client();
    let scope = policy::scope::resolve(scope, &registered.scopes)?;
    let audiences = policy::resource::resolve(resources, registered)?;
    let idx = server
        .allocate_status(&registered.client_id, None, now)
        .await?;
    let status = StatusClaim::new(&server.settings.issuer, idx);
    // RFC 9068 §2.2: with no resource owner, `sub` is the client's own id.
    let minted = access_token::mint(
        &server.settings,
        &server.keyring,
        registered,
        &registered.client_id,
        &audiences,
        &scope,
        Some(&status),
        dpop_jkt,
        now,
    )?;
    server.audit.record_client_credentials(
        &registered.client_id,
        minted.scope.as_deref().unwrap_or_default(),
        address,
        now,
    );
    Ok(TokenResponse {
        access_token: minted.token,
        token_type: access_token::token_type(dpop_jkt).to_owned(),
        expires_in: minted.expires_in,
        scope: minted.scope,
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
    })
}
