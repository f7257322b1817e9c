//! Checks an upstream's ID token (OpenID Connect Core §3.1.3.7): the
//! signature with the provider's published keys (valet-jose's key-set
//! verifier: a known `kid`, the key's own algorithm), then `iss`, `aud`,
//! `azp`, `exp`, `iat` and the `nonce` this sign-in sent.

use serde_json::{Map, Value};
use valet_jose::VerificationKeys;

/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY: i64 = 60;

/// Why an ID token was refused (for the log and the audit record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// What the token expects.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: i64,
}

/// The claims of `token` once every check passed.
pub fn verify(
    keys: &VerificationKeys,
    token: &str,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, Refused> {
    let verified = keys
        .verify_foreign(token, &["JWT"])
        .map_err(|error| Refused(format!("signature: {error}")))?;
    check_claims(verified.claims, expected)
}

/// The claim checks of §3.1.3.7, steps 2 to 11, on verified claims.
pub fn check_claims(
    claims: Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, Refused> {
    let refuse = |why: &str| Err(Refused(why.to_owned()));
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(expected.issuer) {
        return refuse("iss is not the provider's issuer");
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expected.client_id) {
        return refuse("aud does not name this client");
    }
    // §3.1.3.7 steps 4 and 5: another audience needs azp, which must be us.
    match text("azp") {
        Some(azp) if azp != expected.client_id => return refuse("azp is another client"),
        None if audiences.len() > 1 => return refuse("several audiences and no azp"),
        _ => {}
    }
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return refuse("no exp");
    };
    if exp.saturating_add(LEEWAY) <= expected.now {
        return refuse("expired");
    }
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat <= expected.now.saturating_add(LEEWAY) => {}
        _ => return refuse("no iat, or iat in the future"),
    }
    if text("nonce") != Some(expected.nonce) {
        return refuse("nonce is not the one this sign-in sent");
    }
    if text("sub").is_none_or(str::is_empty) {
        return refuse("no sub");
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://op.example.com",
            client_id: "valet",
            nonce: "n-0S6",
            now: NOW,
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": "https://op.example.com", "aud": "valet", "sub": "alice",
            "exp": NOW + 300, "iat": NOW, "nonce": "n-0S6",
        });
        if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
            base.extend(extra);
        }
        base.as_object().cloned().unwrap()
    }

    #[test]
    fn good_claims_pass() {
        assert!(check_claims(claims(json!({})), &expected()).is_ok());
        let azp = json!({"aud": ["valet", "other"], "azp": "valet"});
        assert!(check_claims(claims(azp), &expected()).is_ok());
    }

    #[test]
    fn each_wrong_claim_is_refused() {
        for bad in [
            json!({"iss": "https://evil.example.com"}),
            json!({"aud": "other"}),
            json!({"aud": ["valet", "other"]}),
            json!({"azp": "other"}),
            json!({"exp": NOW - LEEWAY - 1}),
            json!({"exp": null}),
            json!({"iat": NOW + LEEWAY + 1}),
            json!({"nonce": "replayed"}),
            json!({"nonce": null}),
            json!({"sub": ""}),
        ] {
            assert!(
                check_claims(claims(bad.clone()), &expected()).is_err(),
                "{bad}"
            );
        }
    }
}
