//! Token exchange (RFC 8693) for delegation: a client presents an access token
//! Valet issued (the subject token) and gets a new one for another audience,
//! naming itself, or the party of an `actor_token`, as the actor.
//!
//! RFC 8693 §2.1: "The client makes a token exchange request to the token
//! endpoint with an extension grant type". Valet's rules:
//! - the client is registered for the grant and a set of audiences it may
//!   exchange into (`token_exchange_audiences`; none by default);
//! - the subject token (and the actor token, if sent) is a live Valet access
//!   token: signature by a published key, `typ` at+jwt, issuer, expiry, not
//!   revoked, its client and its grant still there (§2.2.2: else
//!   `invalid_request`);
//! - the subject token was issued to this client or names it in `aud`: a
//!   client exchanges the tokens sent to it, not any token it got hold of;
//! - `audience` and `resource` values (§2.1) must each be one of the client's
//!   exchange audiences (§2.2.2: else `invalid_target`); none means the first;
//! - `scope` is at most the subject token's scopes that the client is
//!   registered for; none requested means all of those (§2.1);
//! - the new token has the subject's `sub`, the client's `client_id`, an `act`
//!   claim (§4.1) naming the actor with any earlier `act` nested inside, the
//!   subject's status list entry (revoking the subject's grant revokes it too),
//!   and never outlives the subject token;
//! - the response carries `issued_token_type` (§2.2.1) and no refresh token.

use std::net::IpAddr;

use serde_json::{Map, Value};
use valet_protocol::token::{ACCESS_TOKEN_TYPE, TokenExchangeRequest, TokenResponse};
use valet_protocol::{ErrorCode, Scope};

use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;
use crate::token::access_token::{self, Minting, audience_includes};
use crate::token::status_claim::{self, StatusClaim};

pub async fn issue(
    server: &AuthorizationServer,
    client: &AuthenticatedClient,
    request: TokenExchangeRequest,
    dpop_jkt: Option<&str>,
    address: Option<IpAddr>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let registered = client.client();
    let subject = live_token(server, request.subject_token.expose(), "subject_token", now).await?;
    let issued_to_caller =
        subject.get("client_id").and_then(Value::as_str) == Some(registered.client_id.as_str());
    if !issued_to_caller && !audience_includes(&subject, &registered.client_id) {
        return Err(OAuthError::invalid_request(
            "the subject_token was neither issued to this client nor names it in aud",
        ));
    }
    let actor = match &request.actor_token {
        Some(token) => {
            let actor = live_token(server, token.expose(), "actor_token", now).await?;
            actor
                .get("sub")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| OAuthError::invalid_request("the actor_token has no sub"))?
        }
        None => registered.client_id.clone(),
    };
    let audiences = targets(&request, &registered.token_exchange_audiences)?;
    let scope = narrowed_scope(request.scope.as_ref(), &subject, &registered.scopes)?;
    let (Some(sub), Some(subject_exp)) = (
        subject.get("sub").and_then(Value::as_str),
        subject.get("exp").and_then(Value::as_i64),
    ) else {
        return Err(OAuthError::invalid_request(
            "the subject_token has no sub or exp",
        ));
    };
    let act = act_claim(&actor, &subject);
    let status = status_of(server, &subject, &registered.client_id, now).await?;
    let expires_in = access_token::lifetime(&server.settings, registered)
        .min(subject_exp.saturating_sub(now))
        .max(1);
    let minted = access_token::mint_with(
        &server.settings,
        &server.keyring,
        Minting {
            client: registered,
            subject: sub,
            audiences: &audiences,
            scope: &scope,
            status: Some(&status),
            act: Some(&act),
            // RFC 9449 §5: bound to the key of this request's proof, if any.
            dpop_jkt,
            expires_in,
        },
        now,
    )?;
    server.audit(
        AuditEvent::new(AuditKind::TokenExchanged, now)
            .client(&registered.client_id)
            .address(address)
            .detail("audience", audiences.join(" "))
            .detail("actor", actor.as_str())
            .detail("scope", minted.scope.as_deref().unwrap_or_default())
            .detail("jti", minted.jti.as_str()),
    );
    Ok(TokenResponse {
        access_token: minted.token,
        token_type: access_token::token_type(dpop_jkt).to_owned(),
        expires_in: minted.expires_in,
        scope: minted.scope,
        refresh_token: None,
        id_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE.to_owned()),
    })
}

/// §4.1: the current actor outermost, the earlier ones (the subject token's
/// `act`) nested inside.
fn act_claim(actor: &str, subject: &Map<String, Value>) -> Value {
    let mut act = Map::new();
    act.insert("sub".into(), Value::from(actor));
    if let Some(earlier) = subject.get("act").filter(|act| act.is_object()) {
        act.insert("act".into(), earlier.clone());
    }
    Value::Object(act)
}

/// The subject token's status list entry, so that revoking the subject's
/// grant revokes the new token too; a fresh one if it has none.
async fn status_of(
    server: &AuthorizationServer,
    subject: &Map<String, Value>,
    client_id: &str,
    now: i64,
) -> Result<StatusClaim, OAuthError> {
    let issuer = &server.settings.issuer;
    let idx = match status_claim::global_index(issuer, subject) {
        Some(idx) => idx,
        None => server.allocate_status(client_id, None, now).await?,
    };
    Ok(StatusClaim::new(issuer, idx))
}

/// The claims of a live Valet access token; its grant, if it has one, not
/// revoked. §2.2.2: an invalid token is `invalid_request`.
async fn live_token(
    server: &AuthorizationServer,
    token: &str,
    name: &str,
    now: i64,
) -> Result<Map<String, Value>, OAuthError> {
    let invalid = || {
        OAuthError::invalid_request(format!(
            "the {name} is not an active access token of this issuer"
        ))
    };
    let claims = server
        .live_access_token(token, now)
        .await?
        .ok_or_else(invalid)?;
    if let Some(idx) = status_claim::global_index(&server.settings.issuer, &claims)
        && let Some(grant) = server.store.grant_by_status_idx(idx).await?
        && grant.revoked_at.is_some()
    {
        return Err(invalid());
    }
    Ok(claims)
}

/// The audiences of the new token: every `audience` and `resource` asked for,
/// each one the client may exchange into; none asked: the first of those.
fn targets(request: &TokenExchangeRequest, allowed: &[String]) -> Result<Vec<String>, OAuthError> {
    let mut wanted: Vec<String> = Vec::new();
    for target in request.audiences.iter().chain(&request.resources) {
        if !allowed.contains(target) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "this client may not exchange tokens for the requested audience or resource",
            ));
        }
        if !wanted.contains(target) {
            wanted.push(target.clone());
        }
    }
    if wanted.is_empty() {
        let first = allowed.first().ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client has no token exchange audiences",
            )
        })?;
        wanted.push(first.clone());
    }
    Ok(wanted)
}

/// The subject token's scopes the client is registered for, or the requested
/// part of them.
fn narrowed_scope(
    requested: Option<&Scope>,
    subject: &Map<String, Value>,
    registered: &[String],
) -> Result<Scope, OAuthError> {
    let subject_scope = subject
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let available = Scope::from_tokens(
        subject_scope
            .split(' ')
            .filter(|scope| registered.iter().any(|r| r == scope)),
    )
    .map_err(|_| OAuthError::invalid_request("the subject_token's scope is malformed"))?;
    match requested {
        None => Ok(available),
        Some(requested) if requested.is_subset_of(&available) => Ok(requested.clone()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "the requested scope exceeds the subject token's scope or the client's registered scope",
        )),
    }
}
