//! Who may call the admin API (`/admin/v1`): a caller presenting one of
//! Valet's own access tokens (RFC 9068), live (signature, expiry, revocation
//! list and status list checked as at UserInfo), sent as its binding demands
//! (RFC 9449 §7 for a DPoP-bound one), issued for the admin audience
//! `{issuer}/admin`, and carrying `admin:read` to read or `admin:write` to
//! change. Errors are RFC 6750 §3.1's.

use serde_json::Value;
use valet_protocol::bearer::access_token;

use crate::AuthorizationServer;
use crate::admin::{Actor, Admin};
use crate::context::RequestContext;
use crate::endpoint::userinfo::{BoundRequest, UserInfoError, check_binding};
use crate::token::access_token::audience_includes;

/// The scope that lets a token read through the admin API.
pub const ADMIN_READ_SCOPE: &str = "admin:read";
/// The scope that lets a token change things through the admin API (it does
/// not imply `admin:read`).
pub const ADMIN_WRITE_SCOPE: &str = "admin:write";
/// Both admin scopes.
pub const ADMIN_SCOPES: [&str; 2] = [ADMIN_READ_SCOPE, ADMIN_WRITE_SCOPE];

/// The audience an admin API token must be issued for: the issuer followed
/// by `/admin`, so a token for any other resource server is never accepted.
pub fn admin_audience(issuer: &str) -> String {
    format!("{}/admin", issuer.trim_end_matches('/'))
}

/// What a request needs: reading (`GET`) or changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAccess {
    Read,
    Write,
}

impl AdminAccess {
    pub fn scope(self) -> &'static str {
        match self {
            Self::Read => ADMIN_READ_SCOPE,
            Self::Write => ADMIN_WRITE_SCOPE,
        }
    }
}

/// The request as the HTTP layer saw it.
pub struct AdminRequest<'a> {
    pub authorization: Option<&'a [u8]>,
    pub method: &'a str,
    /// The request's path (without the query), for a DPoP proof's `htu`.
    pub path: &'a str,
    pub dpop: &'a [&'a [u8]],
    pub access: AdminAccess,
}

/// Checks the caller's token and returns the admin service acting for the
/// client the token was issued to (recorded as the audit records' `actor`).
pub async fn authorize<'s>(
    server: &'s AuthorizationServer,
    context: &RequestContext,
    request: &AdminRequest<'_>,
) -> Result<Admin<'s>, UserInfoError> {
    let now = context.now;
    let (scheme, token) = access_token(request.authorization).ok_or(UserInfoError::MissingToken)?;
    let claims = server
        .live_access_token(token, now)
        .await?
        .ok_or(UserInfoError::InvalidToken(
            "the access token is invalid, expired or revoked",
        ))?;
    let bound = BoundRequest {
        scheme,
        token,
        method: request.method,
        path: request.path,
        dpop: request.dpop,
    };
    check_binding(server, &claims, &bound, now).await?;
    // RFC 9068 §4: a token for another audience is invalid here, whatever
    // its scope.
    if !audience_includes(&claims, &admin_audience(&server.settings.issuer)) {
        return Err(UserInfoError::InvalidToken(
            "the access token is not meant for the admin API",
        ));
    }
    let has_scope = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(' ')
        .any(|scope| scope == request.access.scope());
    if !has_scope {
        return Err(UserInfoError::InsufficientScope);
    }
    let Some(client_id) = claims.get("client_id").and_then(Value::as_str) else {
        return Err(UserInfoError::InvalidToken(
            "the access token names no client",
        ));
    };
    Ok(Admin::new(
        server.store.as_ref(),
        server.clock.as_ref(),
        &server.hasher,
        server.settings.access_token_max_ttl,
        Actor::api(client_id),
    )
    .with_master_key(&server.master))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_audience_hangs_off_the_issuer() {
        assert_eq!(
            admin_audience("https://id.example.com"),
            "https://id.example.com/admin"
        );
        assert_eq!(
            admin_audience("https://id.example.com/tenant/"),
            "https://id.example.com/tenant/admin"
        );
    }
}
