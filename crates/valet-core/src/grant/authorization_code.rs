//! The authorization code grant.
//!
//! RFC 6749 §4.1.3: the code must have been issued to the authenticated client,
//! `redirect_uri` must repeat the one of the authorization request, and per
//! RFC 7636 §4.6 `BASE64URL(SHA256(code_verifier))` must equal the challenge.
//! §4.1.2: "If an authorization code is used more than once, the authorization
//! server ... SHOULD revoke (when possible) all tokens previously issued based on
//! that authorization code." Valet does, and commits that revocation even though
//! the request fails. Every check runs before the code is consumed, so a request
//! that fails them (wrong client, `redirect_uri` or `code_verifier`) leaves the
//! code to the legitimate client; only a consumed code counts as used.

use std::net::IpAddr;

use valet_jose::{b64url, constant_time_eq, sha256};
use valet_protocol::ErrorCode;
use valet_protocol::token::{GrantType, TokenResponse};

use super::common::{self, CodeRefused};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;
use crate::store::{AuthorizationCode, Client, CodeFamily};
use crate::token::encryption::{Sealed, sealer_for};

#[allow(clippy::too_many_arguments)]
pub async fn issue(
    server: &AuthorizationServer,
    client: &AuthenticatedClient,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: &str,
    dpop_jkt: Option<&str>,
    address: Option<IpAddr>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let store = server.store.as_ref();
    let registered = client.client();
    let code_hash = sha256(code.as_bytes());
    // Checked before it is consumed: a request with the wrong client, redirect_uri
    // or code_verifier (someone who saw the code but cannot use it) must not burn
    // the legitimate client's code. Only a code that was consumed is a replay.
    let Some(CodeFamily {
        code: record,
        grant,
        user_enabled,
    }) = store.get_code_family(&code_hash, now).await?
    else {
        return Err(invalid("the authorization code is invalid or expired"));
    };
    if record.consumed_at.is_some() {
        return Err(replayed(server, client, &record.grant_id, address, now).await?);
    }
    check_presented(
        server,
        registered,
        &record,
        redirect_uri,
        code_verifier,
        address,
        now,
    )?;
    common::ensure_bound_key(record.dpop_jkt.as_deref(), dpop_jkt, "code")?;
    // The encryption key is found before the code is consumed: a client whose
    // keys cannot be had keeps its code.
    let sealer = sealer_for(server, registered, Sealed::IdToken, now).await?;
    // No token for a disabled or deleted user, and the grant goes (a disable
    // that raced the code's issue missed it). The user's state was read with
    // the code: a disable since then revokes the grant, and the redemption
    // below takes only codes of live grants.
    if !user_enabled {
        common::end_family_of_disabled_user(server, &grant, address, now).await?;
        return Err(invalid("the user's account is disabled or deleted"));
    }
    let redeemed = common::redeem_for_tokens(
        server,
        registered,
        GrantType::AuthorizationCode,
        (&record, &grant),
        record.nonce.as_deref(),
        common::Binding::new(client, dpop_jkt, None),
        sealer.as_ref(),
        address,
        now,
    )
    .await?;
    match redeemed {
        Ok(response) => Ok(response),
        Err(CodeRefused::Unknown) => Err(invalid("the authorization code is invalid or expired")),
        Err(CodeRefused::Replayed(grant_id)) => {
            Err(replayed(server, client, &grant_id, address, now).await?)
        }
    }
}

fn invalid(text: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, text)
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6, before the code is consumed: issued to
/// this client, the same `redirect_uri` as the authorization request (or, when
/// that named none, a registered one), and the verifier of the challenge.
fn check_presented(
    server: &AuthorizationServer,
    registered: &Client,
    record: &AuthorizationCode,
    redirect_uri: Option<&str>,
    code_verifier: &str,
    address: Option<IpAddr>,
    now: i64,
) -> Result<(), OAuthError> {
    if record.client_id != registered.client_id {
        server.audit(
            AuditEvent::new(AuditKind::CodeReplayed, now)
                .client(&registered.client_id)
                .address(address)
                .detail("grant_id", record.grant_id.as_str())
                .detail("issued_to", record.client_id.as_str())
                .detail("action", "refused; the code stays redeemable by its client"),
        );
        return Err(invalid(
            "the authorization code was not issued to this client",
        ));
    }
    let redirect_ok = if record.redirect_uri.is_empty() {
        redirect_uri.is_none_or(|uri| registered.redirect_uris.iter().any(|r| r == uri))
    } else {
        redirect_uri == Some(record.redirect_uri.as_str())
    };
    if !redirect_ok {
        return Err(invalid(
            "redirect_uri does not match the authorization request",
        ));
    }
    let computed = b64url(sha256(code_verifier.as_bytes()));
    if !constant_time_eq(computed.as_bytes(), record.code_challenge.as_bytes()) {
        return Err(invalid("code_verifier does not match the code_challenge"));
    }
    Ok(())
}

/// RFC 6749 §4.1.2: a code used twice revokes its grant; the revocation is
/// committed although the request fails. Returns the error to answer with.
async fn replayed(
    server: &AuthorizationServer,
    client: &AuthenticatedClient,
    grant_id: &str,
    address: Option<IpAddr>,
    now: i64,
) -> Result<OAuthError, OAuthError> {
    server.store.revoke_grant(grant_id, now).await?;
    server.status_lists.wake();
    server.audit(
        AuditEvent::new(AuditKind::CodeReplayed, now)
            .client(&client.client().client_id)
            .address(address)
            .detail("grant_id", grant_id)
            .detail("action", "revoked the grant"),
    );
    Ok(OAuthError::new(
        ErrorCode::InvalidGrant,
        "the authorization code was already used",
    ))
}
