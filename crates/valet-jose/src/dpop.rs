//! DPoP proofs (RFC 9449 §4): the checks of §4.3 that need nothing but the proof, the
//! request and a clock. Both the authorization server and `valet-guard` run them, which
//! is why they live here rather than in either. What needs state is the caller's: that
//! the `jti` was not seen before (§11.1), and whether a server `nonce` is required and
//! still good (§8, §9).

use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::error::{JoseError, JwkError};
use crate::util::{b64url, constant_time_eq, sha256};
use crate::verify::verify_self_signed;

/// RFC 9449 §4.2: the `typ` header of a proof.
pub const DPOP_TYP: &str = "dpop+jwt";

/// The algorithms accepted for proofs (advertised as `dpop_signing_alg_values_supported`):
/// asymmetric only, never `none` or HMAC (§4.3 point 5).
pub const DPOP_ALGORITHMS: [Algorithm; 3] = Algorithm::ALL;

/// Proofs longer than this (8 KiB, room for an RSA-8192 `jwk`) are refused unparsed.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// Longest `jti` accepted: §4.2 asks for 96 bits of randomness; 256 characters is
/// generous and keeps replay caches small.
const MAX_JTI_LEN: usize = 256;

/// What the proof must match: the request it came with, and the clock's window.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequirements<'a> {
    /// The request's method (`htm`, §4.3 point 8), compared exactly (methods are
    /// case-sensitive, RFC 9110 §9.1).
    pub method: &'a str,
    /// The URL the request was sent to (`htu`, §4.3 point 9); query and fragment
    /// are ignored on both sides.
    pub url: &'a str,
    /// Unix seconds, read once by the caller.
    pub now: i64,
    /// Oldest accepted `iat`: `now - max_age` (§4.3 point 11, §11.1).
    pub max_age: i64,
    /// Latest accepted `iat`: `now + leeway`, for clocks that run ahead.
    pub leeway: i64,
    /// The access token the request presents: `ath` must be its hash (§4.3 point 12).
    /// `None` at the token endpoint, where an `ath` is not looked at.
    pub access_token: Option<&'a str>,
}

/// A proof that passed every stateless check of §4.3.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpopProof {
    /// The RFC 7638 thumbprint of the proof's key: what tokens are bound to (`cnf.jkt`).
    pub jkt: String,
    /// The proof's unique id, for the caller's replay cache.
    pub jti: String,
    /// When the client made it.
    pub iat: i64,
    /// The server nonce it carries, if any (the caller decides if it is good).
    pub nonce: Option<String>,
    /// The key's algorithm.
    pub alg: Algorithm,
}

impl DpopProof {
    /// Until when a replay cache must remember this proof's `jti`: past that, its
    /// `iat` is outside the window anyway.
    pub fn replay_horizon(&self, requirements: &ProofRequirements<'_>) -> i64 {
        self.iat
            .saturating_add(requirements.max_age)
            .max(requirements.now.saturating_add(requirements.leeway))
    }
}

/// Why a proof was refused. Every variant answers `invalid_dpop_proof` (§7.1) with
/// the fixed text of [`DpopError::description`]; `Display` is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// Not a compact JWS, or too large.
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    /// `typ` is not `dpop+jwt`.
    #[error("typ is not dpop+jwt")]
    WrongType,
    /// `alg` is `none`, HMAC or unsupported, or not the `jwk`'s.
    #[error("unacceptable alg")]
    Algorithm,
    /// The `jwk` is missing, unusable, or carries private members.
    #[error("unusable jwk: {0}")]
    Key(String),
    /// The header `jwk` holds a private key (§4.3 point 7).
    #[error("the jwk holds a private key")]
    PrivateKey,
    /// The signature does not verify with the `jwk`.
    #[error("invalid signature")]
    Signature,
    /// A required claim is missing or of the wrong type.
    #[error("missing or invalid claim {0}")]
    Claim(&'static str),
    /// `htm` is not the request's method.
    #[error("htm does not match the request method")]
    Method,
    /// `htu` is not the request's URL.
    #[error("htu does not match the request URL")]
    Url,
    /// `iat` is outside the accepted window.
    #[error("iat outside the accepted window")]
    Stale,
    /// `ath` is missing or not the hash of the presented access token.
    #[error("ath does not match the access token")]
    AccessTokenHash,
    /// A fault of this process (no crypto provider).
    #[error("internal error")]
    Internal,
}

impl DpopError {
    /// Client-safe text for `error_description`: fixed, printable ASCII, no quotes.
    pub fn description(&self) -> &'static str {
        match self {
            DpopError::Malformed(_) => "the DPoP proof is not a well-formed JWT",
            DpopError::WrongType => "the DPoP proof typ must be dpop+jwt",
            DpopError::Algorithm => {
                "the DPoP proof alg must be one of ES256, RS256 or EdDSA and match its jwk"
            }
            DpopError::Key(_) => "the DPoP proof jwk is missing or not a supported public key",
            DpopError::PrivateKey => "the DPoP proof jwk must not contain a private key",
            DpopError::Signature => "the DPoP proof signature does not verify with its jwk",
            DpopError::Claim(_) => {
                "the DPoP proof must carry jti, htm, htu and iat (and ath with an access token)"
            }
            DpopError::Method => "the DPoP proof htm does not match the request method",
            DpopError::Url => "the DPoP proof htu does not match the request URL",
            DpopError::Stale => "the DPoP proof iat is too old or in the future",
            DpopError::AccessTokenHash => "the DPoP proof ath does not match the access token",
            DpopError::Internal => "internal error",
        }
    }
}

impl From<JoseError> for DpopError {
    fn from(error: JoseError) -> Self {
        match error {
            JoseError::TokenTooLarge { .. } => DpopError::Malformed("too large"),
            JoseError::MalformedToken(reason) => DpopError::Malformed(reason),
            JoseError::TypMismatch { .. } => DpopError::WrongType,
            JoseError::UnsupportedAlgorithm(_) | JoseError::AlgorithmMismatch { .. } => {
                DpopError::Algorithm
            }
            JoseError::Jwk {
                problem: JwkError::PrivateMemberInPublicKey(_),
                ..
            } => DpopError::PrivateKey,
            JoseError::Jwk { problem, .. } => DpopError::Key(problem.to_string()),
            JoseError::InvalidSignature => DpopError::Signature,
            JoseError::CryptoProvider => DpopError::Internal,
            _ => DpopError::Malformed("rejected by the JWS verifier"),
        }
    }
}

/// RFC 9449 §4.2 `ath`: base64url SHA-256 of the access token's ASCII.
pub fn access_token_hash(access_token: &str) -> String {
    b64url(sha256(access_token.as_bytes()))
}

/// Checks a proof per RFC 9449 §4.3 points 2–9, 11 and 12: a JWT with `typ`
/// `dpop+jwt`, an asymmetric `alg` of [`DPOP_ALGORITHMS`] that is its public
/// `jwk`'s, a good signature, `jti` `htm` `htu` `iat` present, `htm` and `htu`
/// those of the request, `iat` within `[now - max_age, now + leeway]`, and `ath`
/// the hash of the access token when there is one. Points 1 (one header), 10
/// (nonce) and the `jti` replay check are the caller's.
pub fn verify_proof(
    proof: &str,
    requirements: &ProofRequirements<'_>,
) -> Result<DpopProof, DpopError> {
    let jws = verify_self_signed(proof, DPOP_TYP, MAX_PROOF_LEN)?;
    let claims = &jws.claims;
    let jti = string_claim(claims, "jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(DpopError::Claim("jti"));
    }
    let htm = string_claim(claims, "htm")?;
    let htu = string_claim(claims, "htu")?;
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(DpopError::Claim("iat"))?;
    if htm != requirements.method {
        return Err(DpopError::Method);
    }
    if !same_target(htu, requirements.url) {
        return Err(DpopError::Url);
    }
    let oldest = requirements.now.saturating_sub(requirements.max_age);
    let newest = requirements.now.saturating_add(requirements.leeway);
    if !(oldest..=newest).contains(&iat) {
        return Err(DpopError::Stale);
    }
    if let Some(access_token) = requirements.access_token {
        let ath = claims
            .get("ath")
            .and_then(Value::as_str)
            .ok_or(DpopError::AccessTokenHash)?;
        let expected = access_token_hash(access_token);
        if !constant_time_eq(ath.as_bytes(), expected.as_bytes()) {
            return Err(DpopError::AccessTokenHash);
        }
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(nonce)) => Some(nonce.clone()),
        Some(_) => return Err(DpopError::Claim("nonce")),
    };
    Ok(DpopProof {
        jkt: jws.jwk_thumbprint,
        jti: jti.to_owned(),
        iat,
        nonce,
        alg: jws.alg,
    })
}

fn string_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, DpopError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or(DpopError::Claim(name))
}

/// §4.3 point 9: the URIs are compared without query and fragment. Scheme and host
/// are case-insensitive (RFC 3986 §6.2.2.1); the rest is compared exactly.
fn same_target(htu: &str, expected: &str) -> bool {
    fn split(url: &str) -> (&str, &str) {
        let end = url.find(['?', '#']).unwrap_or(url.len());
        let url = url.get(..end).unwrap_or(url);
        // "scheme://authority" then the path.
        let path_at = url
            .find("://")
            .and_then(|at| {
                url.get(at + 3..)
                    .and_then(|rest| rest.find('/'))
                    .map(|p| p + at + 3)
            })
            .unwrap_or(url.len());
        (
            url.get(..path_at).unwrap_or(url),
            url.get(path_at..).unwrap_or(""),
        )
    }
    let (origin, path) = split(htu);
    let (want_origin, want_path) = split(expected);
    let path = if path.is_empty() { "/" } else { path };
    let want_path = if want_path.is_empty() { "/" } else { want_path };
    origin.eq_ignore_ascii_case(want_origin) && path == want_path
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
    use crate::signing::SigningKey;

    const URL: &str = "https://as.example/token";

    fn requirements(now: i64) -> ProofRequirements<'static> {
        ProofRequirements {
            method: "POST",
            url: URL,
            now,
            max_age: 60,
            leeway: 5,
            access_token: None,
        }
    }

    /// A proof signed by `key` with its public JWK in the header.
    fn proof(key: &SigningKey, header: Value, claims: Value) -> String {
        let mut jwk = key.public_jwk().clone();
        jwk.remove("kid");
        jwk.remove("use");
        let mut full = json!({"typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": jwk});
        for (name, value) in header.as_object().unwrap() {
            full[name] = value.clone();
        }
        key.sign_with_header(&full, &claims).unwrap()
    }

    fn claims(iat: i64) -> Value {
        json!({"jti": "j1", "htm": "POST", "htu": URL, "iat": iat})
    }

    #[test]
    fn a_good_proof_gives_the_key_thumbprint() {
        for alg in Algorithm::ALL {
            let (key, _) = SigningKey::generate(alg).unwrap();
            let verified =
                verify_proof(&proof(&key, json!({}), claims(1000)), &requirements(1000)).unwrap();
            let thumbprint = crate::jwk_thumbprint(key.public_jwk()).unwrap();
            assert_eq!(verified.jkt, thumbprint);
            assert_eq!(verified.jti, "j1");
            assert_eq!(verified.alg, alg);
        }
    }

    #[test]
    fn each_rule_of_section_4_3_is_enforced() {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let check = |header: Value, claims: Value| {
            verify_proof(&proof(&key, header, claims), &requirements(1000))
        };
        assert_eq!(
            check(json!({"typ": "JWT"}), claims(1000)),
            Err(DpopError::WrongType)
        );
        assert_eq!(
            check(json!({"alg": "RS256"}), claims(1000)),
            Err(DpopError::Algorithm)
        );
        assert_eq!(
            check(json!({}), json!({"htm": "POST", "htu": URL, "iat": 1000})),
            Err(DpopError::Claim("jti"))
        );
        let mut wrong_method = claims(1000);
        wrong_method["htm"] = json!("GET");
        assert_eq!(check(json!({}), wrong_method), Err(DpopError::Method));
        let mut wrong_url = claims(1000);
        wrong_url["htu"] = json!("https://as.example/userinfo");
        assert_eq!(check(json!({}), wrong_url), Err(DpopError::Url));
        let mut with_query = claims(1000);
        with_query["htu"] = json!("HTTPS://AS.example/token?x=1#f");
        assert!(check(json!({}), with_query).is_ok());
        assert_eq!(check(json!({}), claims(900)), Err(DpopError::Stale));
        assert_eq!(check(json!({}), claims(1010)), Err(DpopError::Stale));
        assert!(check(json!({}), claims(1004)).is_ok());
    }

    #[test]
    fn private_keys_none_and_hmac_are_refused() {
        let (key, der) = SigningKey::generate(Algorithm::Es256).unwrap();
        let _ = der;
        let mut jwk = key.public_jwk().clone();
        jwk.insert("d".into(), json!("AAAA"));
        let with_private = proof(&key, json!({"jwk": jwk}), claims(1000));
        assert_eq!(
            verify_proof(&with_private, &requirements(1000)),
            Err(DpopError::PrivateKey)
        );
        let unsigned = format!(
            "{}.{}.",
            b64url(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()}).to_string()),
            b64url(claims(1000).to_string())
        );
        assert!(matches!(
            verify_proof(&unsigned, &requirements(1000)),
            Err(DpopError::Malformed(_))
        ));
        let hmac = format!(
            "{}.{}.c2ln",
            b64url(
                json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}})
                    .to_string()
            ),
            b64url(claims(1000).to_string())
        );
        assert_eq!(
            verify_proof(&hmac, &requirements(1000)),
            Err(DpopError::Algorithm)
        );
    }

    #[test]
    fn ath_must_hash_the_presented_token() {
        let (key, _) = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let mut with_ath = claims(1000);
        with_ath["ath"] = json!(access_token_hash("the-token"));
        let proof = proof(&key, json!({}), with_ath);
        let mut needs = requirements(1000);
        needs.access_token = Some("the-token");
        assert!(verify_proof(&proof, &needs).is_ok());
        needs.access_token = Some("another-token");
        assert_eq!(
            verify_proof(&proof, &needs),
            Err(DpopError::AccessTokenHash)
        );
    }
}
