//! The issue step: the grant and its one-time code, and the redirect that
//! carries the code back to the client (RFC 6749 §4.1.2).

use valet_jose::{b64url, random_bytes, sha256};
use valet_protocol::ErrorCode;

use super::pending::PendingAuthorization;
use super::verify::SignedIn;
use crate::AuthorizationServer;
use crate::authorize::AuthorizationResponse;
use crate::config::CODE_TTL;
use crate::error::OAuthError;
use crate::secrets::random_id;
use crate::store::{AuthorizationCode, Client, FormWrite, Grant};

/// A grant, its code's record and the redirect carrying the code: made, not
/// stored yet. The form's write ([`crate::store::FormWrite::grant`]) stores the
/// grant and code only if the user is still enabled; if not, [`refused`] is the
/// answer. A disable racing past that check is caught at redemption.
pub(crate) struct Issuing {
    pub(crate) grant: Grant,
    pub(crate) code: AuthorizationCode,
    pub(crate) response: AuthorizationResponse,
}

impl Issuing {
    /// Adds the grant and its code to the form's `write`; the redirect to
    /// answer with once it is made.
    pub(crate) fn add_to(self, write: &mut FormWrite) -> AuthorizationResponse {
        write.grant = Some((self.grant, self.code));
        self.response
    }
}

pub(crate) async fn prepare(
    server: &AuthorizationServer,
    client: &Client,
    request: &PendingAuthorization,
    signed_in: &SignedIn,
    now: i64,
) -> Result<Issuing, OAuthError> {
    let code = b64url(random_bytes::<32>().map_err(OAuthError::server)?);
    let mut grant = grant(server, client, request, signed_in, now)?;
    grant.status_idx = Some(
        server
            .allocate_status(&client.client_id, Some(grant.expires_at), now)
            .await?,
    );
    let record = code_record(&code, &grant, request, now);
    let response = AuthorizationResponse::code(
        &request.redirect_uri,
        request.response_mode,
        code,
        request.state.as_deref(),
        &server.settings.issuer,
    );
    Ok(Issuing {
        grant,
        code: record,
        response,
    })
}

/// `access_denied` to the client: the user was disabled (or deleted) since the
/// session or the sign-in was checked.
pub(crate) fn refused(
    server: &AuthorizationServer,
    request: &PendingAuthorization,
) -> AuthorizationResponse {
    AuthorizationResponse::error(
        &request.redirect_uri,
        request.response_mode,
        ErrorCode::AccessDenied,
        "the user's account is disabled",
        request.state.as_deref(),
        &server.settings.issuer,
    )
}

/// The grant the code stands for, living as long as its refresh tokens may.
pub(super) fn grant(
    server: &AuthorizationServer,
    client: &Client,
    request: &PendingAuthorization,
    signed_in: &SignedIn,
    now: i64,
) -> Result<Grant, OAuthError> {
    Ok(Grant {
        grant_id: random_id()?,
        client_id: client.client_id.clone(),
        user_id: signed_in.user_id.clone(),
        scope: request.scope.clone(),
        sid: Some(signed_in.sid.clone()),
        auth_time: signed_in.auth_time,
        amr: signed_in.amr.clone(),
        created_at: now,
        expires_at: now.saturating_add(server.settings.refresh_token_absolute_ttl),
        revoked_at: None,
        status_idx: None,
        resources: request.resources.clone(),
    })
}

/// The code's record: only its hash is stored, with what redemption checks
/// (the redirect URI if one was given, RFC 6749 §4.1.3; the PKCE challenge).
fn code_record(
    code: &str,
    grant: &Grant,
    request: &PendingAuthorization,
    now: i64,
) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: sha256(code.as_bytes()).to_vec(),
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: if request.redirect_uri_given {
            request.redirect_uri.clone()
        } else {
            String::new()
        },
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scope.clone(),
        resources: request.resources.clone(),
        created_at: now,
        expires_at: now.saturating_add(CODE_TTL),
        consumed_at: None,
        dpop_jkt: request.dpop_jkt.clone(),
    }
}
