//! The token endpoint (RFC 6749 §3.2).

use valet_protocol::Form;
use valet_protocol::token::{GrantType, TokenRequest, TokenResponse};

use crate::AuthorizationServer;
use crate::context::RequestContext;
use crate::dpop::ProofTarget;
use crate::endpoint::metadata::paths;
use crate::error::OAuthError;
use crate::grant;

/// The client is authenticated before the request is looked at, so an
/// unauthenticated caller learns nothing about what would have been granted.
pub async fn token(
    server: &AuthorizationServer,
    context: &RequestContext,
    authorization: Option<&[u8]>,
    dpop: &[&[u8]],
    form: &Form,
) -> Result<(GrantType, TokenResponse), OAuthError> {
    let now = context.now;
    let client = server
        .authenticate_client(context, authorization, form)
        .await?;
    let request = TokenRequest::from_form(form)?;
    let grant_type = request.grant_type();
    // RFC 9449 §5: a proof for this endpoint, checked (and its `jti` spent)
    // before the grant looks at the code or refresh token it binds.
    let target = ProofTarget {
        method: "POST",
        path: paths::TOKEN,
        access_token: None,
    };
    let proof = server.check_dpop_proof(dpop, &target, now).await?;
    // RFC 9449 §5.2 `dpop_bound_access_tokens`: such a client never gets a bearer token.
    if proof.is_none() && client.client().dpop_bound_access_tokens {
        return Err(crate::dpop::invalid_proof(
            "this client must send a DPoP proof with every token request",
        ));
    }
    let response = grant::issue(
        server,
        &client,
        request,
        proof.as_ref().map(|proof| proof.jkt.as_str()),
        context.address,
        now,
    )
    .await?;
    tracing::debug!(client_id = %client.client().client_id, grant = %grant_type, "issued token");
    Ok((grant_type, response))
}
