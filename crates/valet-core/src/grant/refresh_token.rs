//! The refresh token grant with rotation.
//!
//! RFC 6749 §6: the refresh token must have been issued to the authenticated
//! client; the new scope must not exceed the original. RFC 9700 §4.14.2: refresh
//! tokens of public clients must be sender-constrained or rotated; Valet rotates
//! every refresh token on every use, and a token used a second time revokes its
//! whole family (the grant), as a leaked token in two hands would.
//!
//! A client may opt into a grace window: a repeat of the same request within it
//! (a retry after a lost response) gets the *same* successor pair back, sealed in
//! the store by the first request; a new family is never started.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use valet_protocol::token::{GrantType, TokenResponse};
use valet_protocol::{ErrorCode, Scope};

use super::common::{self, tokens_for_grant};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;
use crate::store::{Client, Grant, RefreshFamily, RefreshToken, Rotation};
use crate::token::encryption::{Sealed, sealer_for};
use crate::token::refresh_token;

/// The purpose the successors' keys are derived for.
pub(crate) const SUCCESSOR_KEY_PURPOSE: &[u8] = b"valet refresh successor v1";
/// How long one key seals successors: every rotation of a client with a grace
/// window seals one, so the key changes hourly rather than serving the store's
/// whole life (random nonces: at most about 2^32 seals per key, SP 800-38D
/// §8.3). At least the longest grace window, so a successor sealed at the end
/// of a period still opens (the current and the previous period's keys open).
pub(crate) const SUCCESSOR_KEY_PERIOD: i64 = 3600;
const _: () = assert!(SUCCESSOR_KEY_PERIOD >= crate::admin::MAX_REFRESH_GRACE_SECONDS);

/// What is sealed on the rotated token for the grace window.
#[derive(Serialize, Deserialize)]
struct SealedSuccessor {
    requested_scope: Option<String>,
    response: TokenResponse,
}

pub async fn issue(
    server: &AuthorizationServer,
    client: &AuthenticatedClient,
    presented: &str,
    requested_scope: Option<&Scope>,
    dpop_jkt: Option<&str>,
    address: Option<IpAddr>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let registered = client.client();
    let presented_hash = refresh_token::hash(presented);
    let (current, grant) = live_family(server, registered, &presented_hash, address, now).await?;
    // RFC 9449 §5: a bound refresh token is used only with its key; checked
    // before rotation, so a thief without the key burns nothing.
    common::ensure_bound_key(current.dpop_jkt.as_deref(), dpop_jkt, "refresh")?;
    let scope = refreshed_scope(&current, requested_scope)?;
    // Before rotation: a client whose encryption keys cannot be had keeps its token.
    let sealer = sealer_for(server, registered, Sealed::IdToken, now).await?;
    // RFC 8707 §2.2: a refreshed access token is for the resources of the grant.
    let issued = tokens_for_grant(
        server,
        registered,
        &grant,
        &scope,
        &grant.resources,
        None,
        common::Binding::new(client, dpop_jkt, current.dpop_jkt.as_deref()),
        sealer.as_ref(),
        now,
    )?;
    let successor = match issued.refresh.clone() {
        Some(successor) => successor,
        // The client lost the refresh_token grant type since: nothing to rotate into.
        None => {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client may no longer refresh tokens",
            ));
        }
    };
    // Only a grace window ever reads the sealed pair back: without one, neither
    // the sealing work nor a copy of live tokens in the store is worth having.
    let sealed = if registered.refresh_grace_seconds > 0 {
        Some(seal(
            server,
            &grant.grant_id,
            requested_scope,
            &issued.response,
            now,
        )?)
    } else {
        None
    };
    match server
        .store
        .rotate_refresh_token(
            &presented_hash,
            &successor,
            sealed.as_deref(),
            // Recorded with the rotation, in one transaction: a revocation of
            // the family reaches this access token whatever crashes when.
            Some((issued.access_jti.as_str(), issued.access_expires_at)),
            now,
        )
        .await?
    {
        Rotation::Rotated { .. } => {
            common::audit_issued(
                server,
                GrantType::RefreshToken,
                registered,
                &grant,
                &issued,
                address,
                now,
            );
            Ok(issued.response)
        }
        Rotation::Unknown => Err(invalid("the refresh token is invalid, expired or revoked")),
        Rotation::AlreadyRotated { previous, grant } => {
            replay_or_revoke(
                server,
                registered,
                &previous,
                &grant,
                requested_scope,
                address,
                now,
            )
            .await
        }
    }
}

fn invalid(text: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, text)
}

/// The presented token's record and its grant, if the token is this client's
/// (RFC 6749 §6: another client's token changes nothing), the grant is not
/// revoked, and its user may still get tokens (else the family is revoked).
/// One read: token, grant and user together.
async fn live_family(
    server: &AuthorizationServer,
    registered: &Client,
    presented_hash: &[u8],
    address: Option<IpAddr>,
    now: i64,
) -> Result<(RefreshToken, Grant), OAuthError> {
    let Some(RefreshFamily {
        token: current,
        grant,
        user_enabled,
    }) = server.store.get_refresh_family(presented_hash).await?
    else {
        return Err(invalid("the refresh token is invalid, expired or revoked"));
    };
    if current.client_id != registered.client_id {
        return Err(invalid("the refresh token was not issued to this client"));
    }
    if grant.revoked_at.is_some() {
        return Err(invalid("the refresh token is invalid, expired or revoked"));
    }
    // No token for a disabled or deleted user, and the family goes with it.
    if !user_enabled {
        common::end_family_of_disabled_user(server, &grant, address, now).await?;
        return Err(invalid("the user's account is disabled or deleted"));
    }
    Ok((current, grant))
}

/// RFC 6749 §6: the requested scope, which must not exceed the one the token
/// carries; without one, the token's own.
fn refreshed_scope(
    current: &RefreshToken,
    requested_scope: Option<&Scope>,
) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested_scope else {
        return Ok(current.scope.clone());
    };
    if let Some(extra) = requested
        .iter()
        .find(|s| !current.scope.iter().any(|g| g == s))
    {
        tracing::debug!(scope = %extra, "refresh asked for more than was granted");
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope originally granted",
        ));
    }
    Ok(requested.iter().map(str::to_owned).collect())
}

/// `previous`, already rotated, used again: within the grace window a retry of
/// the same request gets the same successor pair; otherwise the whole family
/// (`grant`) is revoked (RFC 9700 §4.14.2).
async fn replay_or_revoke(
    server: &AuthorizationServer,
    registered: &Client,
    previous: &RefreshToken,
    grant: &Grant,
    requested_scope: Option<&Scope>,
    address: Option<IpAddr>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    if let Some(response) = grace_replay(
        server,
        registered.refresh_grace_seconds,
        previous,
        requested_scope,
        now,
    )
    .await?
    {
        tracing::info!(client_id = %registered.client_id, grant_id = %grant.grant_id, "refresh retried within the grace window; same pair returned");
        return Ok(response);
    }
    server.store.revoke_grant(&grant.grant_id, now).await?;
    server.status_lists.wake();
    server.audit(
        AuditEvent::new(AuditKind::RefreshTokenReused, now)
            .user(&grant.user_id)
            .client(&registered.client_id)
            .address(address)
            .detail("grant_id", grant.grant_id.as_str())
            .detail("action", "revoked the grant"),
    );
    Err(invalid("the refresh token was already used"))
}

/// The successor pair of `previous`, if this is a retry of the same request
/// within the client's grace window and the successor is still unused.
async fn grace_replay(
    server: &AuthorizationServer,
    grace_seconds: i64,
    previous: &RefreshToken,
    requested_scope: Option<&Scope>,
    now: i64,
) -> Result<Option<TokenResponse>, OAuthError> {
    let within = grace_seconds > 0
        && previous
            .rotated_at
            .is_some_and(|at| now.saturating_sub(at) <= grace_seconds);
    let Some(sealed) = previous.sealed_successor.as_deref().filter(|_| within) else {
        return Ok(None);
    };
    let aad = previous.grant_id.as_bytes();
    // Sealed under the master key itself by a node from before the per-period
    // keys: only within a grace window of the upgrade.
    let Ok(plain) = server
        .successor_keys
        .open(aad, sealed, now)
        .or_else(|_| server.master.open(aad, sealed))
    else {
        return Ok(None);
    };
    let Ok(successor) = serde_json::from_slice::<SealedSuccessor>(&plain) else {
        return Ok(None);
    };
    if successor.requested_scope != requested_scope.map(ToString::to_string) {
        return Ok(None);
    }
    let Some(token) = successor.response.refresh_token.as_deref() else {
        return Ok(None);
    };
    let unused = server
        .store
        .get_refresh_token(&refresh_token::hash(token))
        .await?
        .is_some_and(|t| t.rotated_at.is_none() && t.expires_at > now);
    Ok(unused.then_some(successor.response))
}

fn seal(
    server: &AuthorizationServer,
    grant_id: &str,
    requested_scope: Option<&Scope>,
    response: &TokenResponse,
    now: i64,
) -> Result<Vec<u8>, OAuthError> {
    let plain = serde_json::to_vec(&SealedSuccessor {
        requested_scope: requested_scope.map(ToString::to_string),
        response: response.clone(),
    })
    .map_err(OAuthError::server)?;
    server
        .successor_keys
        .seal(grant_id.as_bytes(), &plain, now)
        .map_err(OAuthError::server)
}
