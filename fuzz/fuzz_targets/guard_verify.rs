//! valet-guard's offline verification (size, compact JWS parsing, `kid` and `alg`,
//! signature, `typ`, claims) and JWK Set parsing, against a fixed key set: the TEST-ONLY
//! ES256 (`ec-test-1`) and RS256 keys of valet-jose's fixtures.
//!
//! The first byte says what the rest is:
//! - `R`: a token, as text;
//! - `S`: `HEADER\nPAYLOAD`, signed here with the ES256 key (an empty header line stands
//!   for the header Valet writes);
//! - `T`: a payload, signed here with Valet's header, then the byte at the position given
//!   by the two bytes before it changed to the third;
//! - `J`: a JWK Set document, as a JWKS endpoint serves it.
//!
//! Beyond "no panic":
//! - whatever verifies was signed by one of the two keys, under its `kid`, and its claims
//!   are exactly its payload; the guard's typed view agrees with the claims and the rules
//!   (`iss`, `aud`, `exp`/`iat` with leeway, `sub`, `client_id`, `scope`, `status`);
//! - a token signed with Valet's header over a JSON object as `serde_json` writes it (what
//!   Valet signs) always passes the signature and `typ` checks: no false rejection (but
//!   see `has_structured_time_or_subject`);
//! - a signed token with any one byte changed never verifies.

#![no_main]

use std::sync::LazyLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use valet_guard::TokenError;
use valet_guard::fuzzing::verify_access_token;
use valet_jose::{Algorithm, SigningKey, VerificationKeys, b64url, import_jwk_set};

const ISSUER: &str = "https://id.example";
const AUDIENCE: &str = "https://api.example";
const LEEWAY: i64 = 30;
/// 2027-01-15: the seeds' tokens are valid then.
const NOW: i64 = 1_800_000_000;
const ES256_KID: &str = "ec-test-1";
/// The header `SigningKey::sign_jwt` writes for the ES256 key.
const VALET_HEADER: &str = r#"{"alg":"ES256","typ":"at+jwt","kid":"ec-test-1"}"#;

struct Fixture {
    keys: VerificationKeys,
    kids: Vec<(String, Algorithm)>,
    es256: EcdsaKeyPair,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let imported = import_jwk_set(include_str!(
        "../../crates/valet-jose/tests/fixtures/private_jwks.json"
    ))
    .expect("the fixture key set imports");
    let signing: Vec<SigningKey> = imported
        .iter()
        .map(|key| SigningKey::from_der(key.alg, &key.kid, key.der.as_bytes()).expect("key"))
        .collect();
    let es256 = imported
        .iter()
        .find(|key| key.kid == ES256_KID)
        .expect("the ES256 fixture key");
    Fixture {
        keys: VerificationKeys::from_signing_keys(&signing).expect("public keys"),
        kids: signing
            .iter()
            .map(|key| (key.kid().to_owned(), key.alg()))
            .collect(),
        es256: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, es256.der.as_bytes())
            .expect("PKCS#8"),
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        b'R' => {
            if let Ok(token) = std::str::from_utf8(rest) {
                let _ = verify(token);
            }
        }
        b'S' => {
            let (header, payload) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (&b""[..], rest),
            };
            let header = if header.is_empty() {
                VALET_HEADER.as_bytes()
            } else {
                header
            };
            let token = sign(header, payload);
            let verified = verify(&token);
            if header == VALET_HEADER.as_bytes()
                && is_canonical_object(payload)
                && !has_structured_time_or_subject(payload)
            {
                let jws = FIXTURE
                    .keys
                    .verify_bounded(&token, "at+jwt", usize::MAX)
                    .unwrap_or_else(|e| panic!("Valet's own token refused: {e:?}"));
                assert_eq!(jws.claims, as_object(payload).expect("an object"));
                if token.len() <= valet_guard::MAX_ACCESS_TOKEN_LEN {
                    assert!(!matches!(
                        verified,
                        Err(TokenError::Malformed(_)
                            | TokenError::InvalidSignature
                            | TokenError::UnsupportedHeader
                            | TokenError::WrongType
                            | TokenError::UnknownKey)
                    ));
                }
            }
        }
        b'T' => {
            let [high, low, byte, payload @ ..] = rest else {
                return;
            };
            let token = sign(VALET_HEADER.as_bytes(), payload);
            let mut tampered = token.clone().into_bytes();
            let at = usize::from(u16::from_be_bytes([*high, *low])) % tampered.len();
            if tampered[at] == *byte {
                return;
            }
            tampered[at] = *byte;
            if let Ok(tampered) = String::from_utf8(tampered) {
                assert!(
                    FIXTURE
                        .keys
                        .verify_bounded(&tampered, "at+jwt", usize::MAX)
                        .is_err(),
                    "a changed byte still verifies: {tampered}"
                );
            }
        }
        b'J' => {
            if let Ok(json) = std::str::from_utf8(rest)
                && let Ok(keys) = VerificationKeys::from_jwk_set_json(json)
            {
                let set = serde_json::from_str::<Value>(json).expect("a parsed set is JSON");
                let listed = set["keys"].as_array().expect("a parsed set has a keys array");
                assert!(keys.len() <= listed.len());
                // Every imported key is a listed JWK of its algorithm's key type, and
                // of that algorithm where the JWK names one.
                for kid in keys.kids() {
                    let alg = keys.algorithm_of(kid).expect("an imported kid has an algorithm");
                    let kty = match alg {
                        Algorithm::Es256 => "EC",
                        Algorithm::Rs256 => "RSA",
                    };
                    assert!(listed.iter().any(|jwk| {
                        jwk["kid"] == kid
                            && jwk["kty"] == kty
                            && jwk.get("alg").is_none_or(|listed| listed == alg.as_str())
                    }));
                }
            }
        }
        _ => {}
    }
});

/// The guard's steps 1 to 4, and the invariants of what passes them.
fn verify(token: &str) -> Result<(), TokenError> {
    let (verified, status) =
        verify_access_token(&FIXTURE.keys, token, ISSUER, AUDIENCE, LEEWAY, NOW)?;
    let jws = FIXTURE
        .keys
        .verify(token, "at+jwt")
        .expect("what the guard accepts, valet-jose verifies");
    assert!(FIXTURE.kids.contains(&(jws.kid.clone(), jws.alg)));
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|segment| valet_jose::b64url_decode(segment).ok())
        .and_then(|payload| as_object(&payload))
        .expect("a verified payload is a JSON object");
    assert_eq!(&jws.claims, &payload);
    let claims = verified.claims();
    assert_eq!(claims, &payload);

    assert_eq!(claims["iss"], ISSUER);
    assert!(verified.audiences().iter().any(|aud| aud == AUDIENCE));
    match &claims["aud"] {
        Value::String(aud) => assert_eq!(verified.audiences(), [aud.clone()]),
        Value::Array(list) => assert_eq!(verified.audiences().len(), list.len()),
        other => panic!("aud accepted as {other}"),
    }
    assert!(NOW < verified.expires_at().saturating_add(LEEWAY));
    assert!(verified.issued_at().is_none_or(|iat| iat <= NOW + LEEWAY));
    assert_eq!(claims["sub"], verified.subject());
    assert_eq!(claims["client_id"], verified.client_id());
    assert_eq!(claims.get("jti").and_then(Value::as_str), verified.jti());
    let scope = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert_eq!(verified.scopes().join(" "), single_spaced(scope));
    for scope in verified.scopes() {
        assert!(!scope.is_empty() && !scope.contains(' '));
    }
    let reference = claims
        .get("status")
        .and_then(|status| status.get("status_list"));
    match (status, reference) {
        (Some((uri, idx)), Some(reference)) => {
            assert_eq!(reference["uri"], uri.as_str());
            assert_eq!(reference["idx"].as_u64(), Some(idx));
        }
        (None, None) => {}
        (status, reference) => panic!("status {status:?} from claim {reference:?}"),
    }
    Ok(())
}

/// A compact JWS over exactly these header and payload bytes.
fn sign(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64url(header), b64url(payload));
    let signature = FIXTURE
        .es256
        .sign(&SystemRandom::new(), input.as_bytes())
        .expect("ES256 signing");
    format!("{input}.{}", b64url(signature.as_ref()))
}

fn as_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice(bytes).ok()
}

/// A JSON object exactly as `serde_json` writes it (as `sign_jwt` does): no duplicate
/// member, no insignificant whitespace.
fn is_canonical_object(payload: &[u8]) -> bool {
    as_object(payload)
        .and_then(|object| serde_json::to_vec(&object).ok())
        .is_some_and(|written| written == payload)
}

/// `exp`, `nbf` or `sub` is an array or object. jsonwebtoken reads these three for its own
/// checks even when they are off, and such a value derails its parser: the whole token is
/// refused as malformed JSON. The guard refuses such a token anyway (the claim is invalid,
/// and Valet never writes one), so this is a difference of error, not a false rejection.
fn has_structured_time_or_subject(payload: &[u8]) -> bool {
    as_object(payload).is_some_and(|claims| {
        ["exp", "nbf", "sub"]
            .into_iter()
            .any(|name| matches!(claims.get(name), Some(Value::Array(_) | Value::Object(_))))
    })
}

/// The non-empty space-separated parts of `scope`, joined by one space.
fn single_spaced(scope: &str) -> String {
    scope
        .split(' ')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
