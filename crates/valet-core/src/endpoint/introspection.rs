//! Token introspection (RFC 7662).

use serde_json::{Map, Value};
use valet_protocol::Form;
use valet_protocol::token::IntrospectionRequest;

use crate::AuthorizationServer;
use crate::error::OAuthError;
use crate::token::access_token::ACCESS_TOKEN_TYP;

/// RFC 7662 §2.1: the caller must be authorized; Valet requires a confidential
/// client. Any token that is not a live access token of this issuer answers
/// `{"active": false}` and nothing more (§2.2).
pub async fn introspect(
    server: &AuthorizationServer,
    authorization: Option<&[u8]>,
    form: &Form,
) -> Result<Map<String, Value>, OAuthError> {
    let now = server.clock.now();
    let client = server.authenticate_client(authorization, form, now).await?;
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client(
            "introspection requires a confidential client",
        ));
    }
    let request = IntrospectionRequest::from_form(form)?;
    let mut claims = match server.live_access_token(&request.token, now).await? {
        Some(claims) => claims,
        None => Map::new(),
    };
    let active = !claims.is_empty();
    if active {
        claims.insert("token_type".into(), Value::from("Bearer"));
    }
    claims.insert("active".into(), Value::Bool(active));
    Ok(claims)
}

/// Verifies `token` as an access token of this issuer and returns its claims if it
/// is live: signature by a published key, `typ` (RFC 9068 §4), `iss`, `exp`,
/// `nbf`, not revoked, and its client still registered.
pub(crate) async fn live_access_token(
    server: &AuthorizationServer,
    token: &str,
    now: i64,
) -> Result<Option<Map<String, Value>>, OAuthError> {
    let Ok(verified) = server
        .keyring
        .verification_keys()
        .verify(token, ACCESS_TOKEN_TYP)
    else {
        return Ok(None);
    };
    let claims = verified.claims;
    let issuer_matches =
        claims.get("iss").and_then(Value::as_str) == Some(server.settings.issuer.as_str());
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims.get("nbf").and_then(Value::as_i64);
    let (Some(jti), Some(client_id), Some(exp)) = (
        claims.get("jti").and_then(Value::as_str),
        claims.get("client_id").and_then(Value::as_str),
        exp,
    ) else {
        return Ok(None);
    };
    if !issuer_matches || exp <= now || nbf.is_some_and(|nbf| nbf > now) {
        return Ok(None);
    }
    if server.store.is_revoked(jti).await? {
        return Ok(None);
    }
    let client_exists = server
        .authenticator
        .clients()
        .get(server.store.as_ref(), client_id, now)
        .await?
        .is_some();
    if !client_exists {
        return Ok(None);
    }
    Ok(Some(claims))
}
