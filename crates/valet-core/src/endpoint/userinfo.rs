//! The UserInfo endpoint (OIDC Core §5.3): claims about the user, by scope,
//! for a Bearer access token carrying `openid` (RFC 6750 errors).

use serde_json::{Map, Value, json};
use valet_protocol::bearer::bearer_token;

use crate::AuthorizationServer;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::token::access_token::audience_includes;

/// A UserInfo request that is refused, with the RFC 6750 §3.1 code.
#[derive(Debug)]
pub enum UserInfoError {
    /// 401 with `WWW-Authenticate: Bearer` and no error code: no token was sent
    /// (RFC 6750 §3.1).
    MissingToken,
    /// 401 `invalid_token`.
    InvalidToken(&'static str),
    /// 403 `insufficient_scope`.
    InsufficientScope,
    Server(OAuthError),
}

impl From<crate::store::StoreError> for UserInfoError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::Server(error.into())
    }
}

impl From<OAuthError> for UserInfoError {
    fn from(error: OAuthError) -> Self {
        Self::Server(error)
    }
}

pub async fn userinfo(
    server: &AuthorizationServer,
    context: &RequestContext,
    authorization: Option<&[u8]>,
) -> Result<Map<String, Value>, UserInfoError> {
    let now = context.now;
    let token = bearer_token(authorization).ok_or(UserInfoError::MissingToken)?;
    let claims = server
        .live_access_token(token, now)
        .await?
        .ok_or(UserInfoError::InvalidToken(
            "the access token is invalid, expired or revoked",
        ))?;
    let scope: Vec<&str> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(' ')
        .collect();
    // RFC 9068 §4: only a token meant for this server; one minted for an API
    // (without `openid`) is refused as invalid, not as insufficient.
    let issuer = server.settings.issuer.as_str();
    let for_us = audience_includes(&claims, issuer);
    if !scope.contains(&"openid") {
        return Err(UserInfoError::InsufficientScope);
    }
    if !for_us {
        return Err(UserInfoError::InvalidToken(
            "the access token is not meant for this server",
        ));
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // A client_credentials token's subject is a client, not a user.
    let Some(user) = server
        .store
        .get_user(subject)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Err(UserInfoError::InvalidToken(
            "the access token does not belong to an active user",
        ));
    };
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.user_id));
    if scope.contains(&"profile") {
        out.insert("preferred_username".into(), json!(user.username));
        for (name, value) in [
            ("name", &user.name),
            ("given_name", &user.given_name),
            ("family_name", &user.family_name),
        ] {
            if let Some(value) = value {
                out.insert(name.into(), json!(value));
            }
        }
        out.insert("updated_at".into(), json!(user.updated_at));
    }
    if scope.contains(&"email")
        && let Some(email) = &user.email
    {
        out.insert("email".into(), json!(email));
        out.insert("email_verified".into(), json!(user.email_verified));
    }
    Ok(out)
}
