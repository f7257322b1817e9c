//! JWS verification against a set of public JWKs, through `jsonwebtoken`.
//!
//! The rules of RFC 8725 that belong at this layer:
//! - the key is chosen by `kid`, and the algorithm is the key's, never the token's alone:
//!   a header `alg` other than the key's is refused, and `none`/HMAC are not even
//!   expressible (§3.1, §3.2);
//! - the explicit type `typ` must be the one expected (§3.11; RFC 9068 §4);
//! - input is bounded before any parsing.
//!
//! Claims (`iss`, `aud`, `exp`, `nbf`, ...) are *not* checked here: the caller checks them
//! with its own clock. `jsonwebtoken` is therefore run with every claim check off.

use std::collections::HashMap;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents,
};
use jsonwebtoken::crypto::{CryptoProvider, aws_lc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::error::{JoseError, JwkError};
use crate::jwk::{self, PRIVATE_MEMBERS};
use crate::signing::SigningKey;
use crate::text::excerpt;
use crate::util::b64url_decode;

/// Tokens longer than this (16 KiB) are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A JWS whose signature verified with a known key, with the expected `typ`.
/// Its claims are *not* validated yet.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VerifiedJws {
    /// The `kid` of the key that verified it.
    pub kid: String,
    /// The key's (and so the token's) algorithm.
    pub alg: Algorithm,
    /// The header's `typ`, as sent.
    pub typ: String,
    /// The payload, a JSON object.
    pub claims: Map<String, Value>,
}

/// Public keys by `kid`, each with its one algorithm.
#[derive(Clone, Default)]
pub struct VerificationKeys {
    keys: HashMap<String, Entry>,
}

#[derive(Clone)]
struct Entry {
    alg: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

/// The members of the JOSE header read before choosing a key.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
}

impl VerificationKeys {
    /// From public JWKs, strictly: each must be a usable EC P-256, RSA or OKP Ed25519 signature key with
    /// a `kid` and no private members, and `kid`s must be unique. For keys Valet controls.
    pub fn from_jwks(keys: &[Map<String, Value>]) -> Result<VerificationKeys, JoseError> {
        let mut set = VerificationKeys::default();
        for (index, jwk) in keys.iter().enumerate() {
            set.insert_jwk(index, jwk)?;
        }
        Ok(set)
    }

    /// From a JWK Set document (RFC 7517 §5) published by someone else, such as a JWKS
    /// endpoint. As §5 recommends, keys of a kind not used here are ignored: other `kty` or
    /// `crv` values, other `alg`s, `use` other than `sig`, symmetric keys, keys without `kid`.
    /// A supported key that is malformed, a private member anywhere, or a duplicate `kid`
    /// is an error.
    pub fn from_jwk_set_json(json: &str) -> Result<VerificationKeys, JoseError> {
        let set: Value = serde_json::from_str(json).map_err(|e| JoseError::JwkSetJson {
            line: e.line(),
            column: e.column(),
        })?;
        let keys = set
            .as_object()
            .and_then(|set| set.get("keys"))
            .and_then(Value::as_array)
            .ok_or(JoseError::JwkSetShape)?;
        let mut verification_keys = VerificationKeys::default();
        for (index, jwk) in keys.iter().enumerate() {
            match verification_keys.insert_jwk_value(index, jwk) {
                Err(JoseError::Jwk { problem, .. }) if is_foreign(&problem) => {}
                other => other?,
            }
        }
        Ok(verification_keys)
    }

    /// From our own signing keys' public JWKs.
    pub fn from_signing_keys<'a>(
        keys: impl IntoIterator<Item = &'a SigningKey>,
    ) -> Result<VerificationKeys, JoseError> {
        let mut set = VerificationKeys::default();
        for (index, key) in keys.into_iter().enumerate() {
            set.insert_jwk(index, key.public_jwk())?;
        }
        Ok(set)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The algorithm of the key with this `kid`, if known.
    pub fn algorithm_of(&self, kid: &str) -> Option<Algorithm> {
        self.keys.get(kid).map(|entry| entry.alg)
    }

    /// The known `kid`s, in no particular order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    fn insert_jwk_value(&mut self, index: usize, jwk: &Value) -> Result<(), JoseError> {
        let jwk = jwk.as_object().ok_or(JoseError::Jwk {
            index,
            kid: None,
            problem: JwkError::NotAnObject,
        })?;
        self.insert_jwk(index, jwk)
    }

    fn insert_jwk(&mut self, index: usize, jwk: &Map<String, Value>) -> Result<(), JoseError> {
        let kid = jwk::kid(jwk).ok().flatten();
        let at = |problem| JoseError::Jwk {
            index,
            kid: kid.map(excerpt),
            problem,
        };
        let kid = jwk::kid(jwk).map_err(at)?.ok_or(at(JwkError::MissingKid))?;
        let entry = parse_public_jwk(jwk).map_err(at)?;
        if self.keys.contains_key(kid) {
            return Err(JoseError::DuplicateKid(excerpt(kid)));
        }
        self.keys.insert(kid.to_owned(), entry);
        Ok(())
    }

    /// Verifies a compact JWS (RFC 7515 §5.2) and returns its header facts and claims.
    ///
    /// In order: size ≤ [`MAX_TOKEN_LEN`]; three non-empty segments; header is base64url
    /// JSON with a string `alg` that is ES256, RS256 or EdDSA; a known `kid`; the header `alg`
    /// equals the key's; `typ` equals `expected_typ` (ASCII case-insensitive, an
    /// `application/` prefix ignored on either side, RFC 7515 §4.1.9); then the signature,
    /// checked by `jsonwebtoken` (which also refuses unknown `crit` and `b64: false`);
    /// the payload must be a JSON object. No claim is validated.
    pub fn verify(&self, token: &str, expected_typ: &str) -> Result<VerifiedJws, JoseError> {
        self.verify_bounded(token, expected_typ, MAX_TOKEN_LEN)
    }

    /// [`verify`](Self::verify) with a caller-chosen size bound in place of
    /// [`MAX_TOKEN_LEN`], for signed documents larger than tokens: a status list token
    /// (draft-ietf-oauth-status-list §5) carries a compressed bitstring that can outgrow
    /// 16 KiB. Every other check is the same.
    pub fn verify_bounded(
        &self,
        token: &str,
        expected_typ: &str,
        max_len: usize,
    ) -> Result<VerifiedJws, JoseError> {
        self.verify_checked(token, max_len, false, |found| match found {
            Some(typ) if typ_matches(typ, expected_typ) => Ok(typ.to_owned()),
            found => Err(JoseError::TypMismatch {
                expected: expected_typ.to_owned(),
                found: found.map(excerpt),
            }),
        })
    }

    /// [`verify`](Self::verify) for a JWS made by someone else's library (a client's
    /// assertion or request object), where `typ` is often absent: `typ` may be absent or
    /// one of `accepted_typs`; without a `kid` the set's only key is used (RFC 7515
    /// §4.1.4 makes `kid` optional), and a set of several keys needs one. Every other
    /// check is the same, the algorithm still the key's own.
    pub fn verify_foreign(
        &self,
        token: &str,
        accepted_typs: &[&str],
    ) -> Result<VerifiedJws, JoseError> {
        self.verify_checked(token, MAX_TOKEN_LEN, true, |found| match found {
            None => Ok(String::new()),
            Some(typ) if accepted_typs.iter().any(|ok| typ_matches(typ, ok)) => Ok(typ.to_owned()),
            Some(typ) => Err(JoseError::TypMismatch {
                expected: accepted_typs.join(" or "),
                found: Some(excerpt(typ)),
            }),
        })
    }

    fn verify_checked(
        &self,
        token: &str,
        max_len: usize,
        sole_key_without_kid: bool,
        check_typ: impl FnOnce(Option<&str>) -> Result<String, JoseError>,
    ) -> Result<VerifiedJws, JoseError> {
        let header = decoded_header(token, max_len)?;
        let header: Header = serde_json::from_slice(&header).map_err(|_| {
            JoseError::MalformedToken("the header is not a JSON object with a string alg")
        })?;

        let alg: Algorithm = header.alg.parse()?;
        let (kid, entry) = match header.kid {
            Some(kid) => {
                let entry = self
                    .keys
                    .get(&kid)
                    .ok_or_else(|| JoseError::UnknownKid(excerpt(&kid)))?;
                (kid, entry)
            }
            None if sole_key_without_kid && self.keys.len() == 1 => self
                .keys
                .iter()
                .next()
                .map(|(kid, entry)| (kid.clone(), entry))
                .ok_or(JoseError::MissingKid)?,
            None => return Err(JoseError::MissingKid),
        };
        if alg != entry.alg {
            return Err(JoseError::AlgorithmMismatch {
                token: alg,
                key: entry.alg,
            });
        }
        let typ = check_typ(header.typ.as_deref())?;

        if !crypto_provider_ready() {
            return Err(JoseError::CryptoProvider);
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &entry.key, &entry.validation)
            .map_err(from_jsonwebtoken)?;
        Ok(VerifiedJws {
            kid,
            alg,
            typ,
            claims: data.claims,
        })
    }
}

/// A JWS verified with the public key in its own header's `jwk` member (RFC 7515
/// §4.1.3), as proof-of-possession JWTs are (RFC 9449 §4.2). It proves only that the
/// sender holds that key's private part; the caller decides what the key is trusted for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SelfSignedJws {
    /// The algorithm, the key's.
    pub alg: Algorithm,
    /// The RFC 7638 thumbprint (SHA-256, base64url) of the header's `jwk`.
    pub jwk_thumbprint: String,
    /// The payload, a JSON object.
    pub claims: Map<String, Value>,
}

#[derive(Deserialize)]
struct SelfSignedHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    jwk: Option<Value>,
}

/// Verifies a compact JWS signed by the key in its header's `jwk`: at most `max_len`
/// bytes, three segments, `alg` ES256, RS256 or EdDSA and the key's own, `typ` equal
/// to `expected_typ`, a public `jwk` (a private member is an error, RFC 9449 §4.3
/// point 7), then the signature (through `jsonwebtoken`). No claim is validated.
pub fn verify_self_signed(
    token: &str,
    expected_typ: &str,
    max_len: usize,
) -> Result<SelfSignedJws, JoseError> {
    let header = decoded_header(token, max_len)?;
    let header: SelfSignedHeader = serde_json::from_slice(&header).map_err(|_| {
        JoseError::MalformedToken("the header is not a JSON object with a string alg")
    })?;
    let alg: Algorithm = header.alg.parse()?;
    match header.typ {
        Some(typ) if typ_matches(&typ, expected_typ) => {}
        found => {
            return Err(JoseError::TypMismatch {
                expected: expected_typ.to_owned(),
                found: found.as_deref().map(excerpt),
            });
        }
    }
    let Some(Value::Object(jwk)) = header.jwk else {
        return Err(JoseError::MalformedToken(
            "the header has no jwk object with the public key",
        ));
    };
    let problem = |problem| JoseError::Jwk {
        index: 0,
        kid: None,
        problem,
    };
    let entry = parse_public_jwk(&jwk).map_err(problem)?;
    if alg != entry.alg {
        return Err(JoseError::AlgorithmMismatch {
            token: alg,
            key: entry.alg,
        });
    }
    let jwk_thumbprint = jwk::jwk_thumbprint(&jwk).map_err(problem)?;
    if !crypto_provider_ready() {
        return Err(JoseError::CryptoProvider);
    }
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &entry.key, &entry.validation)
        .map_err(from_jsonwebtoken)?;
    Ok(SelfSignedJws {
        alg,
        jwk_thumbprint,
        claims: data.claims,
    })
}

impl core::fmt::Debug for VerificationKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map()
            .entries(self.keys.iter().map(|(kid, entry)| (kid, entry.alg)))
            .finish()
    }
}

/// Problems that mean "a kind of key this crate does not use" (RFC 7517 §5: ignore them).
/// The decoded header of a compact JWS of at most `max_len` bytes with three
/// non-empty segments (RFC 7515 §7.1), before anything else is read from it.
fn decoded_header(token: &str, max_len: usize) -> Result<Vec<u8>, JoseError> {
    if token.len() > max_len {
        return Err(JoseError::TokenTooLarge {
            len: token.len(),
            max: max_len,
        });
    }
    let mut segments = token.split('.');
    let header = match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(header), Some(payload), Some(signature), None)
            if !header.is_empty() && !payload.is_empty() && !signature.is_empty() =>
        {
            header
        }
        _ => {
            return Err(JoseError::MalformedToken(
                "expected three non-empty dot-separated segments",
            ));
        }
    };
    b64url_decode(header).map_err(|_| JoseError::MalformedToken("the header is not base64url"))
}

fn is_foreign(problem: &JwkError) -> bool {
    matches!(
        problem,
        JwkError::UnsupportedKeyType(_)
            | JwkError::UnsupportedCurve(_)
            | JwkError::UnsupportedAlgorithm(_)
            | JwkError::NotForSignatures(_)
            | JwkError::SymmetricKey
            | JwkError::MissingKid
    )
}

fn parse_public_jwk(jwk: &Map<String, Value>) -> Result<Entry, JwkError> {
    let alg = jwk::classify(jwk)?.alg;
    if let Some(name) = PRIVATE_MEMBERS
        .into_iter()
        .find(|name| jwk.contains_key(*name))
    {
        return Err(JwkError::PrivateMemberInPublicKey(name));
    }
    let key = match alg {
        Algorithm::Es256 => {
            let point = jwk::ec_point(jwk)?;
            // Checks that the point is on P-256 now rather than at the first token.
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                .map_err(|_| JwkError::InvalidPublicKey)?;
            // jsonwebtoken hands these bytes to aws-lc-rs as the SEC1 point, exactly what
            // `DecodingKey::from_ec_components` builds from `x` and `y`.
            DecodingKey::from_ec_der(&point)
        }
        Algorithm::Rs256 => {
            let (n, e) = jwk::rsa_public(jwk)?;
            RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                .map_err(|_| JwkError::InvalidPublicKey)?;
            DecodingKey::from_rsa_raw_components(&n, &e)
        }
        Algorithm::EdDsa => {
            let x = jwk::ed25519_public(jwk)?;
            ParsedPublicKey::new(&ED25519, &x).map_err(|_| JwkError::InvalidPublicKey)?;
            // The raw 32 octets, as `DecodingKey::from_ed_components` builds from `x`.
            DecodingKey::from_ed_der(&x)
        }
    };
    Ok(Entry {
        alg,
        key,
        validation: signature_only_validation(alg),
    })
}

/// A `Validation` that checks the signature for exactly `alg` and nothing else: no claim is
/// required and no time, issuer or audience check runs, because the caller checks claims
/// with its own clock and configuration.
fn signature_only_validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg.to_jsonwebtoken());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation
}

/// RFC 7515 §4.1.9: `typ` is compared case-insensitively, and a value without `/` means the
/// same as with `application/` in front.
fn typ_matches(found: &str, expected: &str) -> bool {
    fn short(typ: &str) -> &str {
        const PREFIX: &str = "application/";
        match typ.get(..PREFIX.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(PREFIX) => {
                typ.get(PREFIX.len()..).unwrap_or_default()
            }
            _ => typ,
        }
    }
    short(found).eq_ignore_ascii_case(short(expected))
}

/// `jsonwebtoken` uses a process-wide provider, chosen by its crate features. If feature
/// unification enabled both backends, it has none and would panic: install aws-lc-rs then.
fn crypto_provider_ready() -> bool {
    CryptoProvider::try_get_default().is_some()
        || aws_lc::DEFAULT_PROVIDER.install_default().is_ok()
        || CryptoProvider::try_get_default().is_some()
}

fn from_jsonwebtoken(error: jsonwebtoken::errors::Error) -> JoseError {
    match error.kind() {
        ErrorKind::InvalidSignature => JoseError::InvalidSignature,
        ErrorKind::Base64(_) => {
            JoseError::MalformedToken("the payload or signature is not base64url")
        }
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            JoseError::MalformedToken("the header or payload is not the expected JSON")
        }
        _ => JoseError::Jwt(error),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use std::sync::LazyLock;

    use jsonwebtoken::{EncodingKey, Header as JwtHeader};
    use serde_json::json;

    use super::*;
    use crate::util::b64url;

    struct Fixture {
        es: SigningKey,
        rs: SigningKey,
        keys: VerificationKeys,
    }

    static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
        let (es, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let (rs, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let keys = VerificationKeys::from_signing_keys([&es, &rs]).unwrap();
        Fixture { es, rs, keys }
    });

    fn claims() -> Value {
        json!({"iss": "https://as.example", "sub": "alice", "exp": 1, "nbf": 4102444800u64})
    }

    /// A token with this header and payload, signed by `key` over exactly these bytes.
    fn forge(key: &SigningKey, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string()),
            b64url(payload.to_string())
        );
        let signature = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(signature))
    }

    fn rejected(token: &str) -> JoseError {
        FIXTURE.keys.verify(token, "at+jwt").unwrap_err()
    }

    #[test]
    fn valid_tokens_verify_without_any_claim_check() {
        for key in [&FIXTURE.es, &FIXTURE.rs] {
            // exp in the past and nbf in the future: not this layer's business.
            let token = key.sign_jwt("at+jwt", &claims()).unwrap();
            let verified = FIXTURE.keys.verify(&token, "at+jwt").unwrap();
            assert_eq!(Value::Object(verified.claims), claims());
            assert_eq!(verified.typ, "at+jwt");
        }
    }

    #[test]
    fn typ_is_compared_per_rfc_7515() {
        let token = FIXTURE
            .es
            .sign_jwt("application/AT+JWT", &claims())
            .unwrap();
        assert!(FIXTURE.keys.verify(&token, "at+jwt").is_ok());
        let token = FIXTURE.es.sign_jwt("at+jwt", &claims()).unwrap();
        assert!(FIXTURE.keys.verify(&token, "application/at+jwt").is_ok());
        for wrong in ["JWT", "at+jwt2", "text/at+jwt", ""] {
            let token = FIXTURE.es.sign_jwt(wrong, &claims()).unwrap();
            assert!(
                matches!(rejected(&token), JoseError::TypMismatch { .. }),
                "{wrong}"
            );
        }
        let header = json!({"alg": "ES256", "kid": FIXTURE.es.kid()});
        assert!(matches!(
            rejected(&forge(&FIXTURE.es, &header, &claims())),
            JoseError::TypMismatch { found: None, .. }
        ));
    }

    #[test]
    fn tampered_payload_or_signature_fails() {
        for key in [&FIXTURE.es, &FIXTURE.rs] {
            let token = key.sign_jwt("at+jwt", &claims()).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            let mut other = claims();
            other["sub"] = "mallory".into();
            let swapped = format!("{}.{}.{}", parts[0], b64url(other.to_string()), parts[2]);
            assert!(matches!(rejected(&swapped), JoseError::InvalidSignature));

            let mut signature = b64url_decode(parts[2]).unwrap();
            signature[5] ^= 1;
            let flipped = format!("{}.{}.{}", parts[0], parts[1], b64url(&signature));
            assert!(matches!(rejected(&flipped), JoseError::InvalidSignature));

            let truncated = format!("{}.{}.{}", parts[0], parts[1], b64url(&signature[..10]));
            assert!(matches!(rejected(&truncated), JoseError::InvalidSignature));
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let header = json!({"alg": "none", "typ": "at+jwt", "kid": FIXTURE.es.kid()});
        let token = format!(
            "{}.{}.",
            b64url(header.to_string()),
            b64url(claims().to_string())
        );
        assert!(matches!(rejected(&token), JoseError::MalformedToken(_)));
        let with_sig = format!("{token}AAAA");
        assert!(matches!(
            rejected(&with_sig),
            JoseError::UnsupportedAlgorithm(alg) if alg == "none"
        ));
    }

    /// The classic key-confusion attack: HS256 "signed" with the public key as the secret.
    #[test]
    fn hs256_with_the_public_key_as_secret_is_refused() {
        for key in [&FIXTURE.es, &FIXTURE.rs] {
            let mut header = JwtHeader::new(jsonwebtoken::Algorithm::HS256);
            header.typ = Some("at+jwt".into());
            header.kid = Some(key.kid().into());
            let jwk_text = serde_json::to_string(key.public_jwk()).unwrap();
            let mut secrets = vec![jwk_text.into_bytes()];
            for member in ["x", "n"] {
                if let Some(Value::String(text)) = key.public_jwk().get(member) {
                    secrets.push(b64url_decode(text).unwrap());
                    secrets.push(text.clone().into_bytes());
                }
            }
            for secret in secrets {
                let token = jsonwebtoken::encode(
                    &header,
                    &claims(),
                    &EncodingKey::from_secret(&secret).unwrap(),
                )
                .unwrap();
                assert!(matches!(
                    rejected(&token),
                    JoseError::UnsupportedAlgorithm(alg) if alg == "HS256"
                ));
            }
        }
    }

    #[test]
    fn alg_must_be_the_keys() {
        // RS256 header naming the EC key, signed by the RSA key.
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": FIXTURE.es.kid()});
        assert!(matches!(
            rejected(&forge(&FIXTURE.rs, &header, &claims())),
            JoseError::AlgorithmMismatch {
                token: Algorithm::Rs256,
                key: Algorithm::Es256
            }
        ));
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": FIXTURE.rs.kid()});
        assert!(matches!(
            rejected(&forge(&FIXTURE.es, &header, &claims())),
            JoseError::AlgorithmMismatch { .. }
        ));
    }

    #[test]
    fn kid_must_be_present_and_known() {
        let (stranger, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let token = stranger.sign_jwt("at+jwt", &claims()).unwrap();
        assert!(matches!(rejected(&token), JoseError::UnknownKid(_)));
        let header = json!({"alg": "ES256", "typ": "at+jwt"});
        assert!(matches!(
            rejected(&forge(&FIXTURE.es, &header, &claims())),
            JoseError::MissingKid
        ));
        // A known kid with another key's signature.
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": FIXTURE.es.kid()});
        assert!(matches!(
            rejected(&forge(&stranger, &header, &claims())),
            JoseError::InvalidSignature
        ));
    }

    #[test]
    fn shape_size_and_encoding_are_checked() {
        let token = FIXTURE.es.sign_jwt("at+jwt", &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        for bad in [
            String::new(),
            format!("{}.{}", parts[0], parts[1]),
            format!("{token}.{}", parts[2]),
            format!("{}..{}", parts[0], parts[2]),
            format!(".{}.{}", parts[1], parts[2]),
            "a.b".into(),
        ] {
            assert!(
                matches!(rejected(&bad), JoseError::MalformedToken(_)),
                "{bad}"
            );
        }
        for bad in [
            format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}", b64url("not json"), parts[1], parts[2]),
            format!("{}.{}.{}", b64url("[1]"), parts[1], parts[2]),
            format!("{}.{}.{}", b64url(r#"{"alg":1}"#), parts[1], parts[2]),
        ] {
            assert!(
                matches!(rejected(&bad), JoseError::MalformedToken(_)),
                "{bad}"
            );
        }
        // The signature covers the payload's text, so a garbled payload fails as a signature.
        let bad_payload = format!("{}.{}*.{}", parts[0], parts[1], parts[2]);
        assert!(matches!(
            rejected(&bad_payload),
            JoseError::InvalidSignature
        ));
        let bad_signature = format!("{}.{}.{}*", parts[0], parts[1], parts[2]);
        assert!(matches!(
            rejected(&bad_signature),
            JoseError::MalformedToken(_)
        ));
        let huge = format!("{}.{}.{}", parts[0], "A".repeat(MAX_TOKEN_LEN), parts[2]);
        assert!(matches!(
            rejected(&huge),
            JoseError::TokenTooLarge {
                max: MAX_TOKEN_LEN,
                ..
            }
        ));
    }

    #[test]
    fn verify_bounded_moves_only_the_size_limit() {
        let big = json!({"sub": "alice", "lst": "A".repeat(MAX_TOKEN_LEN)});
        let token = FIXTURE.es.sign_jwt("statuslist+jwt", &big).unwrap();
        assert!(matches!(
            FIXTURE.keys.verify(&token, "statuslist+jwt"),
            Err(JoseError::TokenTooLarge { .. })
        ));
        let verified = FIXTURE
            .keys
            .verify_bounded(&token, "statuslist+jwt", 4 * MAX_TOKEN_LEN)
            .unwrap();
        assert_eq!(verified.claims["sub"], "alice");
        assert!(matches!(
            FIXTURE
                .keys
                .verify_bounded(&token, "at+jwt", 4 * MAX_TOKEN_LEN),
            Err(JoseError::TypMismatch { .. })
        ));
        assert!(matches!(
            FIXTURE.keys.verify_bounded(&token, "statuslist+jwt", 100),
            Err(JoseError::TokenTooLarge { len: _, max: 100 })
        ));
    }

    #[test]
    fn payload_must_be_a_json_object() {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": FIXTURE.es.kid()});
        for payload in [json!([1, 2]), json!("text"), json!(null)] {
            assert!(matches!(
                rejected(&forge(&FIXTURE.es, &header, &payload)),
                JoseError::MalformedToken(_)
            ));
        }
    }

    /// RFC 8725 §3.1: keys are chosen by `kid` among ours only; a key carried in or
    /// pointed to by the header (`jwk`, `jku`, `x5u`, `x5c`) is never used.
    #[test]
    fn embedded_or_linked_keys_are_ignored() {
        let (attacker, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let links = json!({
            "jwk": attacker.public_jwk(),
            "jku": "https://attacker.example/jwks.json",
            "x5u": "https://attacker.example/cert.pem",
            "x5c": ["MIIBszCCAVmgAwIBAgIUQ"],
        });
        for kid in [attacker.kid(), FIXTURE.es.kid()] {
            let mut header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
            header
                .as_object_mut()
                .unwrap()
                .extend(links.as_object().unwrap().clone());
            let error = rejected(&forge(&attacker, &header, &claims()));
            assert!(
                matches!(
                    error,
                    JoseError::UnknownKid(_) | JoseError::InvalidSignature
                ),
                "{error:?}"
            );
        }
        // Our own key with those headers present still verifies: they are ignored.
        let header = json!({
            "alg": "ES256", "typ": "at+jwt", "kid": FIXTURE.es.kid(),
            "jku": "https://attacker.example/jwks.json"
        });
        assert!(
            FIXTURE
                .keys
                .verify(&forge(&FIXTURE.es, &header, &claims()), "at+jwt")
                .is_ok()
        );
    }

    #[test]
    fn unknown_crit_is_refused() {
        let header = json!({
            "alg": "ES256", "typ": "at+jwt", "kid": FIXTURE.es.kid(), "crit": ["exp"], "exp": 1
        });
        assert!(matches!(
            rejected(&forge(&FIXTURE.es, &header, &claims())),
            JoseError::Jwt(_)
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let token = FIXTURE.rs.sign_jwt("at+jwt", &claims()).unwrap();
        for cut in 0..token.len() {
            let _ = FIXTURE.keys.verify(&token[..cut], "at+jwt");
            let mut bytes = token.clone().into_bytes();
            bytes[cut] = b'.';
            let _ = FIXTURE
                .keys
                .verify(&String::from_utf8(bytes).unwrap(), "at+jwt");
        }
        for junk in ["...", "..", ".", "é.é.é", "\0.\0.\0"] {
            assert!(FIXTURE.keys.verify(junk, "at+jwt").is_err());
        }
    }

    #[test]
    fn tokens_signed_by_python_cryptography_verify() {
        let interop: Value =
            serde_json::from_str(include_str!("../tests/fixtures/interop.json")).unwrap();
        let set: Value =
            serde_json::from_str(include_str!("../tests/fixtures/private_jwks.json")).unwrap();
        let public: Vec<Map<String, Value>> = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let mut k = k.as_object().unwrap().clone();
                for name in ["d", "p", "q", "dp", "dq", "qi"] {
                    k.remove(name);
                }
                k.entry("kid")
                    .or_insert_with(|| interop["rsa_thumbprint"].clone());
                k
            })
            .collect();
        let keys = VerificationKeys::from_jwks(&public).unwrap();
        let es = keys
            .verify(interop["es256_token"].as_str().unwrap(), "at+jwt")
            .unwrap();
        assert_eq!((es.kid.as_str(), es.alg), ("ec-test-1", Algorithm::Es256));
        let rs = keys
            .verify(interop["rs256_token"].as_str().unwrap(), "at+jwt")
            .unwrap();
        assert_eq!(rs.alg, Algorithm::Rs256);
        assert_eq!(rs.typ, "application/at+jwt");
        assert_eq!(rs.claims["sub"], "alice");
    }

    #[test]
    fn strict_key_lists() {
        let es = FIXTURE.es.public_jwk().clone();
        assert!(matches!(
            VerificationKeys::from_jwks(&[es.clone(), es.clone()]),
            Err(JoseError::DuplicateKid(_))
        ));
        let mut private = es.clone();
        private.insert("d".into(), "AAAA".into());
        assert!(matches!(
            VerificationKeys::from_jwks(&[private]),
            Err(JoseError::Jwk {
                problem: JwkError::PrivateMemberInPublicKey("d"),
                ..
            })
        ));
        let mut no_kid = es.clone();
        no_kid.remove("kid");
        assert!(matches!(
            VerificationKeys::from_jwks(&[no_kid]),
            Err(JoseError::Jwk {
                problem: JwkError::MissingKid,
                ..
            })
        ));
        let mut off_curve = es.clone();
        off_curve.insert("y".into(), off_curve["x"].clone());
        assert!(matches!(
            VerificationKeys::from_jwks(&[off_curve]),
            Err(JoseError::Jwk {
                problem: JwkError::InvalidPublicKey,
                index: 0,
                ..
            })
        ));
        let mut small = FIXTURE.rs.public_jwk().clone();
        small.insert("n".into(), b64url([0xffu8; 128]).into());
        assert!(matches!(
            VerificationKeys::from_jwks(&[small]),
            Err(JoseError::Jwk {
                problem: JwkError::RsaModulusSize(1024),
                ..
            })
        ));
    }

    #[test]
    fn published_sets_skip_foreign_keys() {
        let document = json!({"keys": [
            {"kty": "OKP", "crv": "X25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "h", "k": "AAAA"},
            FIXTURE.es.public_jwk(),
            FIXTURE.rs.public_jwk(),
        ]});
        let keys = VerificationKeys::from_jwk_set_json(&document.to_string()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.algorithm_of(FIXTURE.es.kid()), Some(Algorithm::Es256));
        let token = FIXTURE.rs.sign_jwt("at+jwt", &claims()).unwrap();
        keys.verify(&token, "at+jwt").unwrap();

        let broken =
            json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k", "x": "AA", "y": "AA"}]});
        assert!(VerificationKeys::from_jwk_set_json(&broken.to_string()).is_err());
        assert!(matches!(
            VerificationKeys::from_jwk_set_json("{\"keys\": 1}"),
            Err(JoseError::JwkSetShape)
        ));
    }

    #[test]
    fn typ_matching_rules() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("AT+JWT", "at+jwt"));
        assert!(typ_matches("Application/at+jwt", "at+jwt"));
        assert!(typ_matches("at+jwt", "application/at+jwt"));
        assert!(!typ_matches("application/", "at+jwt"));
        assert!(!typ_matches("jwt", "at+jwt"));
        assert!(!typ_matches("x/at+jwt", "at+jwt"));
    }

    #[test]
    fn foreign_tokens_may_omit_typ_and_a_sole_keys_kid() {
        let only_es = VerificationKeys::from_signing_keys([&FIXTURE.es]).unwrap();
        let payload = json!({"iss": "client"});
        for header in [
            json!({"alg": "ES256"}),
            json!({"alg": "ES256", "typ": "JWT"}),
            json!({"alg": "ES256", "typ": "application/oauth-authz-req+jwt", "kid": FIXTURE.es.kid()}),
        ] {
            let token = forge(&FIXTURE.es, &header, &payload);
            let verified = only_es
                .verify_foreign(&token, &["JWT", "oauth-authz-req+jwt"])
                .unwrap_or_else(|e| panic!("{header}: {e}"));
            assert_eq!(verified.kid, FIXTURE.es.kid());
        }
        // Another typ is refused; so is a missing kid among several keys; the
        // key's algorithm still rules.
        let at = forge(
            &FIXTURE.es,
            &json!({"alg": "ES256", "typ": "at+jwt"}),
            &payload,
        );
        assert!(matches!(
            only_es.verify_foreign(&at, &["JWT"]),
            Err(JoseError::TypMismatch { .. })
        ));
        let kidless = forge(&FIXTURE.es, &json!({"alg": "ES256"}), &payload);
        assert!(matches!(
            FIXTURE.keys.verify_foreign(&kidless, &["JWT"]),
            Err(JoseError::MissingKid)
        ));
        let wrong_alg = forge(&FIXTURE.es, &json!({"alg": "RS256"}), &payload);
        assert!(only_es.verify_foreign(&wrong_alg, &["JWT"]).is_err());
        // The strict verify still wants its typ and a kid.
        assert!(matches!(
            only_es.verify(&kidless, "JWT"),
            Err(JoseError::MissingKid)
        ));
    }
}
