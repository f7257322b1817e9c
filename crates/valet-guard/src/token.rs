//! The claims of an RFC 9068 access token, checked, and the proof type that says so.

use serde_json::{Map, Value};

use crate::error::TokenError;

/// An access token whose signature, type, issuer, audience, lifetime, scopes and status
/// were all checked by a [`Guard`](crate::Guard). Only the guard can make one, so code that
/// asks for a `VerifiedToken` knows the checks ran.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    subject: String,
    client_id: String,
    scopes: Vec<String>,
    expires_at: i64,
    issued_at: Option<i64>,
    audiences: Vec<String>,
    jti: Option<String>,
    claims: Map<String, Value>,
}

impl VerifiedToken {
    /// `sub`: the resource owner, or the client itself for client credentials
    /// (RFC 9068 §2.2).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `client_id`: the client the token was issued to (RFC 9068 §2.2).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The space-separated `scope` claim, split (RFC 9068 §2.2.3); empty without one.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `exp`, in Unix seconds.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// `iat`, in Unix seconds, if present.
    pub fn issued_at(&self) -> Option<i64> {
        self.issued_at
    }

    /// `aud` as a list (a single string becomes one entry).
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// `jti`, the token's unique identifier, if present.
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }

    /// Every claim of the payload, as sent.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// `cnf.jkt` (RFC 9449 §6.1): the thumbprint of the DPoP key the token is bound
    /// to; such a token was accepted only with a proof made with that key.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.claims.get("cnf")?.get("jkt")?.as_str()
    }

    /// Which of `required` this token lacks, as `InsufficientScope` naming all of them.
    pub(crate) fn require_scopes<'a>(
        &self,
        required: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), TokenError> {
        if required
            .clone()
            .into_iter()
            .all(|scope| self.has_scope(scope))
        {
            return Ok(());
        }
        let mut names: Vec<String> = Vec::new();
        for scope in required {
            if !names.iter().any(|s| s == scope) {
                names.push(scope.to_owned());
            }
        }
        Err(TokenError::InsufficientScope { required: names })
    }
}

/// Where a token's status is published (draft-ietf-oauth-status-list §6.1): index `idx`
/// of the list at `uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusReference {
    pub(crate) uri: String,
    pub(crate) idx: u64,
}

/// What the claim check needs from the configuration.
pub(crate) struct ClaimRules<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: &'a str,
    /// Seconds.
    pub(crate) leeway: i64,
}

/// Checks the claims of a signature-verified access token against `rules` at `now`
/// (RFC 9068 §4, RFC 7519 §4.1), in order: `iss` exact; `aud` (string or array) contains
/// the audience; `exp` present and `now < exp + leeway`; `nbf`, if present,
/// `nbf <= now + leeway`; `iat`, if present, not beyond `now + leeway`; `sub` and
/// `client_id` strings; `scope`, if present, a string; `jti`, if present, a string;
/// `status`, if present, a well-formed status list reference.
pub(crate) fn check_claims(
    claims: Map<String, Value>,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<(VerifiedToken, Option<StatusReference>), TokenError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == rules.issuer => {}
        Some(Value::String(_)) => return Err(TokenError::InvalidIssuer),
        Some(_) => return Err(TokenError::InvalidClaim("iss")),
        None => return Err(TokenError::MissingClaim("iss")),
    }
    let audiences = audiences(&claims)?;
    if !audiences.iter().any(|aud| aud == rules.audience) {
        return Err(TokenError::InvalidAudience);
    }
    let expires_at = numeric_date(&claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if now >= expires_at.saturating_add(rules.leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(not_before) = numeric_date(&claims, "nbf")?
        && not_before > now.saturating_add(rules.leeway)
    {
        return Err(TokenError::NotYetValid);
    }
    let issued_at = numeric_date(&claims, "iat")?;
    if issued_at.is_some_and(|iat| iat > now.saturating_add(rules.leeway)) {
        return Err(TokenError::IssuedInFuture);
    }
    let subject = required_string(&claims, "sub")?;
    let client_id = required_string(&claims, "client_id")?;
    let scopes = match claims.get("scope") {
        None => Vec::new(),
        Some(Value::String(scope)) => scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err(TokenError::InvalidClaim("scope")),
    };
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(jti)) => Some(jti.clone()),
        Some(_) => return Err(TokenError::InvalidClaim("jti")),
    };
    // RFC 7800 §3.1: a confirmation this guard cannot check (anything but RFC 9449's
    // `jkt`) would make a sender-constrained token a bearer token: refused.
    match claims.get("cnf") {
        None => {}
        Some(Value::Object(cnf)) if cnf.get("jkt").is_some_and(Value::is_string) => {}
        Some(_) => return Err(TokenError::InvalidClaim("cnf")),
    }
    let status = status_reference(&claims)?;
    Ok((
        VerifiedToken {
            subject,
            client_id,
            scopes,
            expires_at,
            issued_at,
            audiences,
            jti,
            claims,
        },
        status,
    ))
}

fn audiences(claims: &Map<String, Value>) -> Result<Vec<String>, TokenError> {
    match claims.get("aud") {
        Some(Value::String(aud)) => Ok(vec![aud.clone()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|aud| match aud {
                Value::String(aud) => Ok(aud.clone()),
                _ => Err(TokenError::InvalidClaim("aud")),
            })
            .collect(),
        Some(_) => Err(TokenError::InvalidClaim("aud")),
        None => Err(TokenError::MissingClaim("aud")),
    }
}

fn required_string(claims: &Map<String, Value>, name: &'static str) -> Result<String, TokenError> {
    match claims.get(name) {
        Some(Value::String(value)) => Ok(value.clone()),
        Some(_) => Err(TokenError::InvalidClaim(name)),
        None => Err(TokenError::MissingClaim(name)),
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, possibly fractional (floored);
/// values beyond `i64` saturate.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, TokenError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(number) = value else {
        return Err(TokenError::InvalidClaim(name));
    };
    if let Some(seconds) = number.as_i64() {
        return Ok(Some(seconds));
    }
    if number.as_u64().is_some() {
        return Ok(Some(i64::MAX));
    }
    match number.as_f64() {
        // `as` saturates: 1e300 becomes i64::MAX, -1e300 i64::MIN.
        #[allow(clippy::cast_possible_truncation)]
        Some(seconds) if seconds.is_finite() => Ok(Some(seconds.floor() as i64)),
        _ => Err(TokenError::InvalidClaim(name)),
    }
}

/// `"status": {"status_list": {"idx": N, "uri": "…"}}` (draft-ietf-oauth-status-list
/// §6.1). A `status` without `status_list` names another mechanism and is ignored here.
fn status_reference(claims: &Map<String, Value>) -> Result<Option<StatusReference>, TokenError> {
    const BAD: TokenError = TokenError::InvalidClaim("status");
    let status = match claims.get("status") {
        None => return Ok(None),
        Some(Value::Object(status)) => status,
        Some(_) => return Err(BAD),
    };
    let list = match status.get("status_list") {
        None => return Ok(None),
        Some(Value::Object(list)) => list,
        Some(_) => return Err(BAD),
    };
    let idx = list.get("idx").and_then(Value::as_u64).ok_or(BAD)?;
    let uri = list.get("uri").and_then(Value::as_str).ok_or(BAD)?;
    Ok(Some(StatusReference {
        uri: uri.to_owned(),
        idx,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;
    const RULES: ClaimRules<'static> = ClaimRules {
        issuer: "https://id.example",
        audience: "https://api.example",
        leeway: 30,
    };

    fn claims() -> Value {
        json!({
            "iss": "https://id.example", "sub": "alice", "aud": "https://api.example",
            "exp": NOW + 600, "iat": NOW, "jti": "j1", "client_id": "app",
            "scope": "orders:read  orders:write",
            "status": {"status_list": {"idx": 7, "uri": "https://id.example/statuslists/0"}},
        })
    }

    fn check(claims: Value) -> Result<(VerifiedToken, Option<StatusReference>), TokenError> {
        check_at(claims, NOW)
    }

    fn check_at(
        claims: Value,
        now: i64,
    ) -> Result<(VerifiedToken, Option<StatusReference>), TokenError> {
        let Value::Object(map) = claims else { panic!() };
        check_claims(map, &RULES, now)
    }

    fn with(name: &str, value: Value) -> Value {
        let mut claims = claims();
        claims[name] = value;
        claims
    }

    fn without(name: &str) -> Value {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    #[test]
    fn a_valid_token_is_taken_apart() {
        let (token, status) = check(claims()).unwrap();
        assert_eq!(token.subject(), "alice");
        assert_eq!(token.client_id(), "app");
        assert_eq!(token.scopes(), ["orders:read", "orders:write"]);
        assert!(token.has_scope("orders:write") && !token.has_scope("orders"));
        assert_eq!(token.expires_at(), NOW + 600);
        assert_eq!(token.issued_at(), Some(NOW));
        assert_eq!(token.audiences(), ["https://api.example"]);
        assert_eq!(token.jti(), Some("j1"));
        assert_eq!(token.claims()["sub"], "alice");
        assert_eq!(
            status,
            Some(StatusReference {
                uri: "https://id.example/statuslists/0".into(),
                idx: 7
            })
        );
    }

    #[test]
    fn issuer_is_exact() {
        for iss in [
            "https://id.example/",
            "https://ID.example",
            "https://id.example.evil",
        ] {
            assert_eq!(
                check(with("iss", json!(iss))).unwrap_err(),
                TokenError::InvalidIssuer
            );
        }
        assert_eq!(
            check(without("iss")).unwrap_err(),
            TokenError::MissingClaim("iss")
        );
        assert_eq!(
            check(with("iss", json!(1))).unwrap_err(),
            TokenError::InvalidClaim("iss")
        );
    }

    #[test]
    fn audience_string_or_array() {
        let both = with(
            "aud",
            json!(["https://other.example", "https://api.example"]),
        );
        assert_eq!(check(both).unwrap().0.audiences().len(), 2);
        for aud in [
            json!("https://other.example"),
            json!([]),
            json!(["https://api.example/"]),
        ] {
            assert_eq!(
                check(with("aud", aud)).unwrap_err(),
                TokenError::InvalidAudience
            );
        }
        assert_eq!(
            check(with("aud", json!(["https://api.example", 3]))).unwrap_err(),
            TokenError::InvalidClaim("aud")
        );
        assert_eq!(
            check(without("aud")).unwrap_err(),
            TokenError::MissingClaim("aud")
        );
    }

    #[test]
    fn lifetime_with_leeway() {
        let exp = NOW + 600;
        assert!(check_at(claims(), exp + 29).is_ok());
        assert_eq!(
            check_at(claims(), exp + 30).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            check(without("exp")).unwrap_err(),
            TokenError::MissingClaim("exp")
        );
        assert_eq!(
            check(with("exp", json!("soon"))).unwrap_err(),
            TokenError::InvalidClaim("exp")
        );
        assert!(check(with("nbf", json!(NOW + 30))).is_ok());
        assert_eq!(
            check(with("nbf", json!(NOW + 31))).unwrap_err(),
            TokenError::NotYetValid
        );
        assert!(check(with("iat", json!(NOW + 30))).is_ok());
        assert_eq!(
            check(with("iat", json!(NOW + 31))).unwrap_err(),
            TokenError::IssuedInFuture
        );
        assert!(check(without("iat")).unwrap().0.issued_at().is_none());
    }

    #[test]
    fn numeric_dates_of_any_size_never_overflow() {
        assert!(check(with("exp", json!(u64::MAX))).is_ok());
        assert!(check(with("exp", json!(1e300))).is_ok());
        assert!(check(with("exp", json!(i64::MAX))).is_ok());
        assert_eq!(
            check(with("exp", json!(i64::MIN))).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            check(with("exp", json!(-1e300))).unwrap_err(),
            TokenError::Expired
        );
        assert!(check(with("exp", json!(NOW as f64 + 0.5))).is_ok());
        assert_eq!(
            check(with("nbf", json!(1e300))).unwrap_err(),
            TokenError::NotYetValid
        );
        assert!(check_at(with("exp", json!(i64::MAX)), i64::MAX).is_err());
        assert_eq!(
            check_at(claims(), i64::MIN).unwrap_err(),
            TokenError::IssuedInFuture
        );
    }

    #[test]
    fn subject_client_scope_jti_types() {
        for name in ["sub", "client_id"] {
            assert!(
                matches!(check(without(name)).unwrap_err(), TokenError::MissingClaim(n) if n == name)
            );
            assert!(
                matches!(check(with(name, json!(5))).unwrap_err(), TokenError::InvalidClaim(n) if n == name)
            );
        }
        assert!(check(without("scope")).unwrap().0.scopes().is_empty());
        assert_eq!(
            check(with("scope", json!(["a"]))).unwrap_err(),
            TokenError::InvalidClaim("scope")
        );
        assert_eq!(
            check(with("jti", json!(1))).unwrap_err(),
            TokenError::InvalidClaim("jti")
        );
    }

    #[test]
    fn status_claim_shapes() {
        assert_eq!(check(without("status")).unwrap().1, None);
        assert_eq!(check(with("status", json!({"other": {}}))).unwrap().1, None);
        for bad in [
            json!("x"),
            json!({"status_list": 1}),
            json!({"status_list": {"idx": -1, "uri": "u"}}),
            json!({"status_list": {"idx": 1.5, "uri": "u"}}),
            json!({"status_list": {"idx": "1", "uri": "u"}}),
            json!({"status_list": {"idx": 1}}),
            json!({"status_list": {"uri": "u"}}),
        ] {
            assert_eq!(
                check(with("status", bad)).unwrap_err(),
                TokenError::InvalidClaim("status")
            );
        }
    }

    #[test]
    fn scope_requirements_name_every_required_scope() {
        let (token, _) = check(claims()).unwrap();
        assert!(token.require_scopes(["orders:read"]).is_ok());
        assert!(token.require_scopes([]).is_ok());
        assert_eq!(
            token
                .require_scopes(["orders:read", "admin", "admin"])
                .unwrap_err(),
            TokenError::InsufficientScope {
                required: vec!["orders:read".into(), "admin".into()]
            }
        );
    }
}
