//! The device authorization grant at the token endpoint (RFC 8628 §3.4, §3.5).
//!
//! §3.5: while the user has not decided the answer is `authorization_pending`;
//! a device polling faster than its interval gets `slow_down` "and the
//! interval MUST be increased by 5 seconds for this and all subsequent
//! requests"; a refusal is `access_denied`, an expired code `expired_token`.
//! Once the user allowed, the device's poll redeems the authorization code
//! made with the grant (see `crate::device`): exactly once, and a second
//! redemption of the same device code is a replay that revokes the grant
//! (as RFC 6749 §4.1.2 asks of codes).

use std::net::IpAddr;

use valet_jose::b64url_decode;
use valet_protocol::ErrorCode;
use valet_protocol::token::{GrantType, TokenResponse};

use super::common::{self, CodeRefused};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::client_auth::AuthenticatedClient;
use crate::device::{self, Decision, Polls, SLOW_DOWN_STEP};
use crate::error::OAuthError;
use crate::store::{Client, CodeFamily};
use crate::token::encryption::{Sealed, sealer_for};

pub async fn issue(
    server: &AuthorizationServer,
    client: &AuthenticatedClient,
    device_code: &str,
    dpop_jkt: Option<&str>,
    address: Option<IpAddr>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let code_hash = approved_code(server, client, device_code, now).await?;
    let store = server.store.as_ref();
    let registered = client.client();
    // Before the device code is consumed: a client whose encryption keys cannot
    // be had may poll again.
    let sealer = sealer_for(server, registered, Sealed::IdToken, now).await?;
    // The code, its grant and its user's state in one read; then, as for an
    // authorization code, the tokens are minted and stored with the code's
    // redemption in one durable write.
    let Some(CodeFamily {
        code: record,
        grant,
        user_enabled,
    }) = store.get_code_family(&code_hash, now).await?
    else {
        return Err(invalid("the device_code is invalid or expired"));
    };
    if record.consumed_at.is_some() {
        return Err(replayed(server, registered, &record.grant_id, address, now).await?);
    }
    if !user_enabled {
        common::end_family_of_disabled_user(server, &grant, address, now).await?;
        return Err(invalid("the user's account is disabled or deleted"));
    }
    let redeemed = common::redeem_for_tokens(
        server,
        registered,
        GrantType::DeviceCode,
        (&record, &grant),
        None,
        // RFC 9449 §5: tokens are bound to the key of the polling request's proof.
        common::Binding::new(client, dpop_jkt, None),
        sealer.as_ref(),
        address,
        now,
    )
    .await?;
    match redeemed {
        Ok(response) => Ok(response),
        Err(CodeRefused::Unknown) => Err(invalid("the device_code is invalid or expired")),
        Err(CodeRefused::Replayed(grant_id)) => {
            Err(replayed(server, registered, &grant_id, address, now).await?)
        }
    }
}

/// A device code redeemed twice (RFC 8628 §3.5 with RFC 6749 §4.1.2): its
/// grant is revoked, committed although the poll fails. Returns the error.
async fn replayed(
    server: &AuthorizationServer,
    registered: &Client,
    grant_id: &str,
    address: Option<IpAddr>,
    now: i64,
) -> Result<OAuthError, OAuthError> {
    server.store.revoke_grant(grant_id, now).await?;
    server.status_lists.wake();
    server.audit(
        AuditEvent::new(AuditKind::CodeReplayed, now)
            .client(&registered.client_id)
            .address(address)
            .detail("grant_id", grant_id)
            .detail("grant_type", GrantType::DeviceCode.as_str())
            .detail("action", "revoked the grant"),
    );
    Ok(invalid("the device_code was already used"))
}

/// The hash of the code the user's approval made, or the §3.5 error that
/// answers this poll (pending, denied, expired, too fast; invalid_grant for
/// an unknown code or another client's).
async fn approved_code(
    server: &AuthorizationServer,
    client: &AuthenticatedClient,
    device_code: &str,
    now: i64,
) -> Result<Vec<u8>, OAuthError> {
    let key = device::device_key(device_code);
    let Some(request) = device::load(server.store.as_ref(), &key, now).await? else {
        return Err(invalid("the device_code is invalid or expired"));
    };
    // Another client's code is refused and left alone.
    if request.client_id != client.client().client_id {
        return Err(invalid("the device_code was not issued to this client"));
    }
    if now >= request.expires_at {
        return Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device_code has expired; start a new device authorization",
        ));
    }
    pace(server, &key, now).await?;
    match request.decision {
        Decision::Pending => Err(OAuthError::new(
            ErrorCode::AuthorizationPending,
            "the user has not yet completed the authorization",
        )),
        Decision::Denied => Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the user denied the authorization request",
        )),
        Decision::Approved { code_hash } => b64url_decode(&code_hash)
            .map_err(|_| OAuthError::server("a device request's code hash is not base64url")),
    }
}

fn invalid(text: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, text)
}

/// RFC 8628 §3.5: a poll sooner than the interval after the last one is told
/// `slow_down`, and the interval grows by 5 seconds from then on.
async fn pace(server: &AuthorizationServer, key: &[u8], now: i64) -> Result<(), OAuthError> {
    let store = server.store.as_ref();
    let polls = device::polls(store, key, now).await?.unwrap_or(Polls {
        interval: server.settings.device_poll_interval,
        last_poll_at: None,
    });
    let too_soon = polls
        .last_poll_at
        .is_some_and(|last| now.saturating_sub(last) < polls.interval);
    let interval = if too_soon {
        polls.interval.saturating_add(SLOW_DOWN_STEP)
    } else {
        polls.interval
    };
    device::save_polls(
        store,
        key,
        Polls {
            interval,
            last_poll_at: Some(now),
        },
    )
    .await?;
    if too_soon {
        return Err(OAuthError::new(
            ErrorCode::SlowDown,
            "polling too fast; wait 5 more seconds between requests from now on",
        ));
    }
    Ok(())
}
