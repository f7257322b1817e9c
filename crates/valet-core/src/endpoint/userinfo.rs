//! The UserInfo endpoint (OIDC Core §5.3): claims about the user, by scope,
//! for a Bearer access token carrying `openid` (RFC 6750 errors).

use serde_json::{Map, Value, json};
use valet_protocol::ErrorCode;
use valet_protocol::bearer::{Scheme, access_token};

use crate::AuthorizationServer;
use crate::context::RequestContext;
use crate::dpop::{ProofTarget, invalid_proof};
use crate::endpoint::metadata::paths;
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
    /// RFC 9449 §7.1: 401 with a `DPoP` challenge, `invalid_dpop_proof` or
    /// `use_dpop_nonce` (with the nonce to send).
    Dpop(OAuthError),
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
    method: &str,
    dpop: &[&[u8]],
) -> Result<Map<String, Value>, UserInfoError> {
    let now = context.now;
    let (scheme, token) = access_token(authorization).ok_or(UserInfoError::MissingToken)?;
    let claims = server
        .live_access_token(token, now)
        .await?
        .ok_or(UserInfoError::InvalidToken(
            "the access token is invalid, expired or revoked",
        ))?;
    let request = BoundRequest {
        scheme,
        token,
        method,
        path: paths::USERINFO,
        dpop,
    };
    check_binding(server, &claims, &request, now).await?;
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

/// A request presenting an access token: how (`Bearer` or `DPoP`), to which
/// method and path, with which `DPoP` header values.
#[derive(Clone, Copy)]
pub(crate) struct BoundRequest<'a> {
    pub scheme: Scheme,
    pub token: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub dpop: &'a [&'a [u8]],
}

/// RFC 9449 §7: a token bound to a key (`cnf.jkt`) is accepted only with the `DPoP`
/// scheme and a proof for this request made with that key; sent as `Bearer` it is
/// refused (§7.2), and an unbound token is not accepted under the `DPoP` scheme.
pub(crate) async fn check_binding(
    server: &AuthorizationServer,
    claims: &Map<String, Value>,
    request: &BoundRequest<'_>,
    now: i64,
) -> Result<(), UserInfoError> {
    let BoundRequest {
        scheme,
        token,
        method,
        path,
        dpop,
    } = *request;
    let bound = claims
        .get("cnf")
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(Value::as_str);
    match (scheme, bound) {
        (Scheme::Bearer, None) => Ok(()),
        (Scheme::Bearer, Some(_)) => Err(UserInfoError::InvalidToken(
            "this access token is DPoP-bound; send it as Authorization: DPoP with a DPoP proof",
        )),
        (Scheme::Dpop, None) => Err(UserInfoError::InvalidToken(
            "this access token is not DPoP-bound; send it as a Bearer token",
        )),
        (Scheme::Dpop, Some(jkt)) => {
            let target = ProofTarget {
                method,
                path,
                access_token: Some(token),
            };
            let proof = server
                .check_dpop_proof(dpop, &target, now)
                .await
                .map_err(|error| match error.code() {
                    ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => {
                        UserInfoError::Server(error)
                    }
                    _ => UserInfoError::Dpop(error),
                })?
                .ok_or_else(|| {
                    UserInfoError::Dpop(invalid_proof("the DPoP scheme needs a DPoP proof header"))
                })?;
            if !valet_jose::constant_time_eq(proof.jkt.as_bytes(), jkt.as_bytes()) {
                return Err(UserInfoError::Dpop(invalid_proof(
                    "the DPoP proof key is not the one the access token is bound to",
                )));
            }
            Ok(())
        }
    }
}
