//! Request objects (RFC 9101, JAR): the authorization request's parameters in a
//! JWT the client signed with one of its registered keys, sent by value in the
//! `request` parameter. [`open`] checks one and returns its parameters as a
//! form, the only parameters the request then has (§6.3: "the authorization
//! server MUST only use the parameters in the Request Object even if the same
//! parameter is provided in the query parameter"). PAR calls it with a pushed
//! request's `request` too.
//!
//! Checked, in order: signed by one of the client's keys in the key's own
//! algorithm (`none` and HMAC are refused, §6.1 / RFC 8725 §3.1); `typ`, when
//! present, `oauth-authz-req+jwt` (§4) or `JWT`; `iss` is the client id and
//! `aud` names the issuer (§4, §6.3 needs iss/aud when signed); `client_id`
//! inside equals the one outside (§5); `exp` present, in the future and at
//! most [`MAX_LIFETIME`] away, `nbf` not in the future; no `request` or
//! `request_uri` inside (§4). `request_uri` by reference to a URL is not
//! supported (discovery says `request_uri_parameter_supported: false`).

use serde_json::Value;
use valet_jose::b64url_decode;
use valet_protocol::{ErrorCode, Form};

use crate::AuthorizationServer;
use crate::client_auth::assertion::plain;
use crate::error::OAuthError;
use crate::store::Client;

/// RFC 9101 §4: the media type of a request object.
pub const REQUEST_OBJECT_TYP: &str = "oauth-authz-req+jwt";
/// The longest a request object may be valid for.
pub const MAX_LIFETIME: i64 = 3600;
/// Tolerated clock difference for `nbf` in the future.
const CLOCK_SKEW: i64 = 30;
/// Members that describe the JWT itself, not the authorization request.
const JWT_MEMBERS: [&str; 6] = ["iss", "aud", "exp", "iat", "nbf", "jti"];

/// The request object's authorization parameters, after every check above.
/// Errors are `invalid_request_object` with a description for the client's
/// developer.
pub async fn open(
    server: &AuthorizationServer,
    client: &Client,
    request: &str,
    now: i64,
) -> Result<Form, OAuthError> {
    let invalid = |text: String| OAuthError::new(ErrorCode::InvalidRequestObject, text);
    let kid = header_kid(request);
    let keys = server
        .authenticator
        .keys()
        .of(client, kid.as_deref(), now)
        .await
        .map_err(|error| {
            invalid(format!(
                "cannot verify the request object: {}",
                error.description()
            ))
        })?;
    let verified = keys
        .verify_foreign(request, &[REQUEST_OBJECT_TYP, "JWT"])
        .map_err(|error| {
            invalid(format!(
                "the request object does not verify with the client's registered keys: {}",
                plain(&error.to_string())
            ))
        })?;
    let claims = verified.claims;
    check_claims(&claims, client, &server.settings.issuer, now)?;
    parameters(&claims)
}

/// The claims about the object itself: `iss`, `aud`, `client_id`, `exp`, `nbf`.
fn check_claims(
    claims: &serde_json::Map<String, Value>,
    client: &Client,
    issuer: &str,
    now: i64,
) -> Result<(), OAuthError> {
    let invalid = |text: String| OAuthError::new(ErrorCode::InvalidRequestObject, text);
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client.client_id.as_str()) {
        return Err(invalid(
            "the request object's iss must be the client_id".into(),
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid(format!(
            "the request object's aud must be the issuer ({issuer})"
        )));
    }
    if text("client_id") != Some(client.client_id.as_str()) {
        return Err(invalid(
            "the request object's client_id must be the client_id of the request".into(),
        ));
    }
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    match number("exp") {
        None => return Err(invalid("the request object has no exp".into())),
        Some(exp) if exp <= now => {
            return Err(invalid("the request object has expired".into()));
        }
        Some(exp) if exp.saturating_sub(now) > MAX_LIFETIME => {
            return Err(invalid(
                "the request object's exp is more than an hour away".into(),
            ));
        }
        Some(_) => {}
    }
    if number("nbf").is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW)) {
        return Err(invalid("the request object is not valid yet (nbf)".into()));
    }
    Ok(())
}

/// The authorization request's parameters: every member but those about the
/// JWT itself, strings as they are, numbers and booleans as text, arrays of
/// strings as repeated parameters.
fn parameters(claims: &serde_json::Map<String, Value>) -> Result<Form, OAuthError> {
    let invalid = |text: String| OAuthError::new(ErrorCode::InvalidRequestObject, text);
    let mut pairs = Vec::with_capacity(claims.len());
    for (name, value) in claims {
        if JWT_MEMBERS.contains(&name.as_str()) {
            continue;
        }
        if name == "request" || name == "request_uri" {
            return Err(invalid(format!(
                "a request object must not contain {name} (RFC 9101 section 4)"
            )));
        }
        match value {
            Value::String(text) => pairs.push((name.clone(), text.clone())),
            Value::Number(number) => pairs.push((name.clone(), number.to_string())),
            Value::Bool(flag) => pairs.push((name.clone(), flag.to_string())),
            // RFC 8707 resources may be sent as an array.
            Value::Array(items) if items.iter().all(Value::is_string) => {
                for item in items.iter().filter_map(Value::as_str) {
                    pairs.push((name.clone(), item.to_owned()));
                }
            }
            Value::Null => {}
            _ => {
                return Err(invalid(format!(
                    "the request object's {name} must be a string, number or array of strings"
                )));
            }
        }
    }
    Ok(Form::from_pairs(pairs))
}

/// The `kid` of a JWS header, read before verifying (to know whether a cached
/// key set may be missing it).
fn header_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&b64url_decode(header).ok()?).ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}
