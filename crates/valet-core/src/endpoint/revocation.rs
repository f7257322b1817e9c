//! Token revocation (RFC 7009).

use serde_json::Value;
use valet_protocol::token::RevocationRequest;
use valet_protocol::{ErrorCode, Form};

use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::store::{Client, RevokedToken};
use crate::token::{refresh_token, status_claim};

/// RFC 7009 §2.2: unknown, invalid or already-expired tokens answer 200 as if
/// revoked. A token issued to another client is refused (§2.1). A revoked access
/// token is recorded by its `jti` until it would have expired; from then on it is
/// inactive at introspection.
pub async fn revoke(
    server: &AuthorizationServer,
    context: &RequestContext,
    authorization: Option<&[u8]>,
    form: &Form,
) -> Result<(), OAuthError> {
    let client = server
        .authenticate_client(context, authorization, form)
        .await?;
    let request = RevocationRequest::from_form(form)?;
    let token = request.token.expose();
    if refresh_token::looks_like_refresh_token(token) {
        revoke_refresh_token(server, context, client.client(), token).await
    } else {
        revoke_access_token(server, context, client.client(), token).await
    }
}

/// RFC 7009 §2.1: revoking a refresh token also invalidates the access tokens
/// of the same grant; Valet revokes the whole grant.
async fn revoke_refresh_token(
    server: &AuthorizationServer,
    context: &RequestContext,
    client: &Client,
    token: &str,
) -> Result<(), OAuthError> {
    let now = context.now;
    let Some(record) = server
        .store
        .get_refresh_token(&refresh_token::hash(token))
        .await?
    else {
        return Ok(());
    };
    if record.client_id != client.client_id {
        return Err(not_this_clients());
    }
    server.store.revoke_grant(&record.grant_id, now).await?;
    server.status_lists.wake();
    server.audit(
        AuditEvent::new(AuditKind::TokenRevoked, now)
            .client(&record.client_id)
            .address(context.address)
            .request(&context.id)
            .detail("token_type", "refresh_token")
            .detail("grant_id", record.grant_id.as_str()),
    );
    Ok(())
}

async fn revoke_access_token(
    server: &AuthorizationServer,
    context: &RequestContext,
    client: &Client,
    token: &str,
) -> Result<(), OAuthError> {
    let now = context.now;
    let Some(claims) = server.live_access_token(token, now).await? else {
        return Ok(());
    };
    let owner = claims.get("client_id").and_then(Value::as_str);
    if owner != Some(client.client_id.as_str()) {
        return Err(not_this_clients());
    }
    let (Some(jti), Some(exp)) = (
        claims.get("jti").and_then(Value::as_str),
        claims.get("exp").and_then(Value::as_i64),
    ) else {
        return Ok(());
    };
    server
        .store
        .insert_revocation(&RevokedToken {
            jti: jti.to_owned(),
            client_id: client.client_id.clone(),
            expires_at: exp,
            revoked_at: now,
        })
        .await?;
    // An exchanged token (RFC 8693 `act`) shares its subject token's status
    // entry: setting that bit would revoke the subject, which is not this
    // client's. Its own revocation is the record above (introspection).
    if let Some(idx) = status_claim::global_index(&server.settings.issuer, &claims)
        && !claims.contains_key("act")
    {
        revoke_status(server, client, idx, exp, now).await?;
    }
    let mut event = AuditEvent::new(AuditKind::TokenRevoked, now)
        .client(&client.client_id)
        .address(context.address)
        .request(&context.id)
        .detail("token_type", "access_token")
        .detail("jti", jti);
    event.user_id = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|sub| *sub != client.client_id)
        .map(str::to_owned);
    server.audit(event);
    Ok(())
}

/// Resource servers learn of a revoked access token through the status list. A
/// user's access token shares its index with its whole grant, so the grant goes;
/// a client credentials token has an index of its own.
async fn revoke_status(
    server: &AuthorizationServer,
    client: &Client,
    idx: i64,
    expires_at: i64,
    now: i64,
) -> Result<(), OAuthError> {
    match server.store.grant_by_status_idx(idx).await? {
        Some(grant) if grant.client_id == client.client_id => {
            server.store.revoke_grant(&grant.grant_id, now).await?;
        }
        Some(_) => {}
        None => {
            server
                .store
                .revoke_status_range(idx, idx + 1, expires_at, now)
                .await?
        }
    }
    server.status_lists.wake();
    Ok(())
}

/// RFC 7009 §2.1: a client may revoke only its own tokens.
fn not_this_clients() -> OAuthError {
    OAuthError::new(
        ErrorCode::UnauthorizedClient,
        "the token was not issued to this client",
    )
}
