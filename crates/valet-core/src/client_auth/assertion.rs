//! `private_key_jwt` (RFC 7523 §2.2 and §3, OIDC Core §9): the client signs a
//! short-lived JWT with one of its registered keys and sends it as
//! `client_assertion`. `client_secret_jwt` (see [`super::secret_jwt`]) differs
//! only in rule 3: the JWT is MACed (HS256) with the client's secret.
//!
//! The rules, in the order they are checked:
//! 1. the unverified payload names the client in `sub` (and a body `client_id`,
//!    if sent, agrees): only this picks the keys;
//! 2. the client is registered for `private_key_jwt`;
//! 3. the signature verifies with one of its keys, in the key's own algorithm
//!    (ES256, RS256, EdDSA: `none` and HMAC are not expressible, so an HS256
//!    token "signed" with a public key is refused, RFC 8725 §3.1); `typ`, if
//!    present, is `JWT` or `client-authentication+jwt`;
//! 4. `iss` = `sub` = the client id (RFC 7523 §3 items 1-2);
//! 5. `aud` holds the issuer or one of Valet's client-authenticated endpoint
//!    URLs (§3 item 3; OIDC Core §9 names the token endpoint, RFC 7523bis the
//!    issuer: both are accepted);
//! 6. `exp` is present and in the future, at most [`MAX_LIFETIME`] ahead (and
//!    `exp - iat` no more than that), `nbf` if present not in the future (§3
//!    items 4-6);
//! 7. `jti` is present and used once (§3 item 7): it is recorded until `exp`,
//!    and a second use is refused.

use serde_json::{Map, Value};
use valet_jose::{JoseError, MAX_TOKEN_LEN, VerificationKeys, b64url_decode, sha256};

use crate::error::OAuthError;
use crate::store::{SingleUseKind, Store, StoreError};

/// The longest an assertion may live: long enough for a clock a little off,
/// short enough that its `jti` record is short-lived too.
pub const MAX_LIFETIME: i64 = 300;
/// Tolerated clock difference for `nbf` and `iat` in the future.
const CLOCK_SKEW: i64 = 30;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// `typ` values accepted when present (RFC 7523bis registers the second).
pub const ACCEPTED_TYPS: [&str; 2] = ["JWT", "client-authentication+jwt"];

/// What is read from an assertion before anything about it is trusted.
pub(crate) struct Peeked {
    pub sub: String,
    pub kid: Option<String>,
}

/// Reads `sub` and the header's `kid` without verifying anything.
pub(crate) fn peek(assertion: &str) -> Result<Peeked, OAuthError> {
    let malformed = || OAuthError::invalid_client("client_assertion is not a well-formed JWT");
    if assertion.len() > MAX_TOKEN_LEN {
        return Err(OAuthError::invalid_client(
            "client_assertion is longer than 16 KiB",
        ));
    }
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let object = |segment: &str| -> Option<Map<String, Value>> {
        serde_json::from_slice(&b64url_decode(segment).ok()?).ok()
    };
    let (header, payload) = (
        object(header).ok_or_else(malformed)?,
        object(payload).ok_or_else(malformed)?,
    );
    let sub = payload
        .get("sub")
        .and_then(Value::as_str)
        .filter(|sub| !sub.is_empty())
        .ok_or_else(|| {
            OAuthError::invalid_client("the client assertion has no sub (the client_id)")
        })?
        .to_owned();
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok(Peeked { sub, kid })
}

/// Verifies the signature and the claims (rules 3 to 6 above), and returns the
/// `jti` and `exp` to record.
pub(crate) fn verify(
    keys: &VerificationKeys,
    assertion: &str,
    client_id: &str,
    audiences: &[String],
    now: i64,
) -> Result<(String, i64), OAuthError> {
    let verified = keys
        .verify_foreign(assertion, &ACCEPTED_TYPS)
        .map_err(|error| rejected(&error))?;
    check_claims(&verified.claims, client_id, audiences, now)
}

/// Rules 4 to 6 and the presence of `jti`, for any assertion whose MAC or
/// signature verified; returns the `jti` and `exp` to record.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    client_id: &str,
    audiences: &[String],
    now: i64,
) -> Result<(String, i64), OAuthError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err(OAuthError::invalid_client(
            "the client assertion's iss and sub must both be the client_id",
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audiences.contains(aud),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| audiences.iter().any(|ok| ok == aud)),
        _ => false,
    };
    if !aud_ok {
        return Err(OAuthError::invalid_client(format!(
            "the client assertion's aud must be the issuer ({}) or the endpoint URL",
            audiences.first().map(String::as_str).unwrap_or_default()
        )));
    }
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    let exp = number("exp")
        .ok_or_else(|| OAuthError::invalid_client("the client assertion has no exp"))?;
    if exp <= now {
        return Err(OAuthError::invalid_client(
            "the client assertion has expired",
        ));
    }
    let lifetime_from_iat = number("iat").map(|iat| exp.saturating_sub(iat));
    if exp.saturating_sub(now) > MAX_LIFETIME
        || lifetime_from_iat.is_some_and(|lifetime| lifetime > MAX_LIFETIME)
    {
        return Err(OAuthError::invalid_client(
            "the client assertion lives too long: exp must be at most 300 seconds after iat and now",
        ));
    }
    if number("nbf").is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW))
        || number("iat").is_some_and(|iat| iat > now.saturating_add(CLOCK_SKEW))
    {
        return Err(OAuthError::invalid_client(
            "the client assertion is not valid yet (nbf or iat in the future)",
        ));
    }
    let jti = text("jti")
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_LEN)
        .ok_or_else(|| {
            OAuthError::invalid_client("the client assertion needs a jti of 1 to 256 characters")
        })?;
    Ok((jti.to_owned(), exp))
}

/// Rule 7: records the `jti` until `exp`; a second use is refused.
pub(crate) async fn consume_jti(
    store: &dyn Store,
    client_id: &str,
    jti: &str,
    exp: i64,
) -> Result<(), OAuthError> {
    let key = sha256(format!("{client_id}\0{jti}").as_bytes());
    match store
        .insert_single_use(SingleUseKind::ClientAssertion, &key, "", exp)
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict) => Err(OAuthError::invalid_client(
            "the client assertion was already used: its jti must be new for every request",
        )),
        Err(error) => Err(error.into()),
    }
}

fn rejected(error: &JoseError) -> OAuthError {
    // The verifier's own words name the header problem (alg, kid, typ) and
    // never any key material.
    OAuthError::invalid_client(format!(
        "the client assertion does not verify with the client's registered keys: {}",
        plain(&error.to_string())
    ))
}

/// `text` in the characters an `error_description` may hold (RFC 6749 §5.2:
/// printable ASCII without `"` and `\`): quotes become `'`, anything else `?`.
pub(crate) fn plain(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}
