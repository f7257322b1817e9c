//! Token introspection (RFC 7662).

use serde_json::{Map, Value};
use valet_protocol::Form;
use valet_protocol::token::IntrospectionRequest;

use crate::AuthorizationServer;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::store::Client;
use crate::token::access_token::ACCESS_TOKEN_TYP;
use crate::token::access_token::audience_includes;
use crate::token::{refresh_token, status_claim};

/// RFC 7662 §2.1: the caller must be authorized; Valet requires a confidential
/// client. Any token that is not a live access token of this issuer answers
/// `{"active": false}` and nothing more (§2.2), and so does a live token the
/// caller may not look at (§2.2 lets a server answer so "to protect
/// information"; the caller cannot tell it from an unknown token): only the
/// client it was issued to, a client named in its `aud`, or a client registered
/// with the introspection permission (`introspect_any`) sees its claims.
pub async fn introspect(
    server: &AuthorizationServer,
    context: &RequestContext,
    authorization: Option<&[u8]>,
    form: &Form,
) -> Result<Map<String, Value>, OAuthError> {
    let now = context.now;
    let client = server
        .authenticate_client(context, authorization, form)
        .await?;
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client(
            "introspection requires a confidential client",
        ));
    }
    let request = IntrospectionRequest::from_form(form)?;
    let token = request.token.expose();
    let mut claims = if refresh_token::looks_like_refresh_token(token) {
        live_refresh_token(server, token, now)
            .await?
            .unwrap_or_default()
    } else {
        match server.live_access_token(token, now).await? {
            Some(mut claims) => {
                // RFC 9449 §6.2: a bound token is a DPoP token, and `cnf` says to what.
                let bound = claims
                    .get("cnf")
                    .is_some_and(|cnf| cnf.get("jkt").is_some());
                let token_type = if bound { "DPoP" } else { "Bearer" };
                claims.insert("token_type".into(), Value::from(token_type));
                claims
            }
            None => Map::new(),
        }
    };
    if !claims.is_empty() && !may_see(client.client(), &claims) {
        tracing::debug!(client_id = %client.client().client_id, "introspection of another client's token refused");
        claims = Map::new();
    }
    let active = !claims.is_empty();
    claims.insert("active".into(), Value::Bool(active));
    Ok(claims)
}

/// Whether `caller` may read the claims of a live token: it was issued to the
/// caller, names the caller in `aud` (a string or an array, RFC 7519 §4.1.3), or
/// the caller holds the introspection permission.
fn may_see(caller: &Client, claims: &Map<String, Value>) -> bool {
    let id = caller.client_id.as_str();
    let issued_to_caller = claims.get("client_id").and_then(Value::as_str) == Some(id);
    caller.introspect_any || issued_to_caller || audience_includes(claims, id)
}

/// A refresh token that is unused, unexpired and of a live grant.
async fn live_refresh_token(
    server: &AuthorizationServer,
    token: &str,
    now: i64,
) -> Result<Option<Map<String, Value>>, OAuthError> {
    let Some(record) = server
        .store
        .get_refresh_token(&refresh_token::hash(token))
        .await?
    else {
        return Ok(None);
    };
    if record.rotated_at.is_some() || record.expires_at <= now {
        return Ok(None);
    }
    let Some(grant) = server
        .store
        .get_grant(&record.grant_id)
        .await?
        .filter(|g| g.revoked_at.is_none())
    else {
        return Ok(None);
    };
    let mut claims = Map::new();
    claims.insert("client_id".into(), Value::from(record.client_id));
    claims.insert("sub".into(), Value::from(grant.user_id));
    claims.insert("scope".into(), Value::from(record.scope.join(" ")));
    claims.insert("exp".into(), Value::from(record.expires_at));
    claims.insert("iat".into(), Value::from(record.created_at));
    claims.insert("iss".into(), Value::from(server.settings.issuer.clone()));
    claims.insert("token_type".into(), Value::from("refresh_token"));
    if let Some(jkt) = record.dpop_jkt {
        claims.insert("cnf".into(), serde_json::json!({ "jkt": jkt }));
    }
    Ok(Some(claims))
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
    // An exchanged token (RFC 8693 `act`) shares its subject token's status
    // list entry but is not one of the grant's recorded tokens: it is dead when
    // that grant is revoked, as guards see through the status list.
    if claims.contains_key("act")
        && let Some(idx) = status_claim::global_index(&server.settings.issuer, &claims)
        && let Some(grant) = server.store.grant_by_status_idx(idx).await?
        && grant.revoked_at.is_some()
    {
        return Ok(None);
    }
    Ok(Some(claims))
}
