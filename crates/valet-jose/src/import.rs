//! Import of private JWK Sets exported by other servers (Keycloak, Hydra, node-oidc-provider).
//!
//! Supported: EC P-256 keys (`d`, `x`, `y`; RFC 7518 §6.2) and two-prime RSA keys
//! (`n e d p q dp dq qi`; RFC 7518 §6.3), for ES256 and RS256, and OKP Ed25519 keys (`d`, `x`;
//! RFC 8037 §2) for EdDSA. aws-lc-rs checks that the private members belong to the public
//! ones: for EC and Ed25519 by comparing the public key derived from `d`, for RSA with `RSA_check_key` (`n = p·q`, the CRT values, `d·e ≡ 1`).
//! Every imported key comes out as PKCS#8 DER, the one format
//! [`SigningKey::from_der`](crate::SigningKey::from_der) loads.

use std::collections::HashSet;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::error::KeyRejected;
use aws_lc_rs::rsa::KeyPairComponents;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
    RsaPublicKeyComponents,
};
use serde_json::{Map, Value};
use zeroize::Zeroize;

use crate::algorithm::Algorithm;
use crate::error::{JoseError, JwkError};
use crate::jwk::{self, P256_LEN, PublicMembers};
use crate::signing::PrivateKeyDer;
use crate::text::excerpt;

/// One private key taken from a JWK Set.
#[derive(Debug)]
pub struct ImportedKey {
    /// The JWK's `kid`, or, when it has none, the RFC 7638 thumbprint of its public key.
    pub kid: String,
    /// From the JWK's `alg`, or inferred: EC P-256 → ES256, RSA → RS256.
    pub alg: Algorithm,
    /// PKCS#8 DER for [`SigningKey::from_der`](crate::SigningKey::from_der).
    pub der: PrivateKeyDer,
}

/// Imports every key of a JWK Set (RFC 7517 §5) that includes private members.
///
/// All or nothing: a key with another `kty`/`crv`/`alg`, a symmetric (`oct`) key, a `use`
/// other than `sig`, a missing private member, or private members that do not match the
/// public ones fails the whole import with [`JoseError::Jwk`] naming the key's index and
/// `kid`. Duplicate `kid`s fail with [`JoseError::DuplicateKid`]. An empty set gives an
/// empty list. The parsed copy of the input is zeroized before returning; the caller's
/// `json` is the caller's to wipe.
pub fn import_jwk_set(json: &str) -> Result<Vec<ImportedKey>, JoseError> {
    let value = serde_json::from_str::<Value>(json).map_err(|e| JoseError::JwkSetJson {
        line: e.line(),
        column: e.column(),
    })?;
    let parsed = Scrubbed(value);
    let keys = parsed
        .0
        .as_object()
        .and_then(|set| set.get("keys"))
        .and_then(Value::as_array)
        .ok_or(JoseError::JwkSetShape)?;

    let mut imported = Vec::with_capacity(keys.len());
    let mut kids = HashSet::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let fail = |kid: Option<&str>, problem| JoseError::Jwk {
            index,
            kid: kid.map(excerpt),
            problem,
        };
        let jwk = key
            .as_object()
            .ok_or_else(|| fail(None, JwkError::NotAnObject))?;
        let declared_kid = jwk::kid(jwk).map_err(|problem| fail(None, problem))?;
        let key = import_one(jwk, declared_kid).map_err(|problem| fail(declared_kid, problem))?;
        if !kids.insert(key.kid.clone()) {
            return Err(JoseError::DuplicateKid(excerpt(&key.kid)));
        }
        imported.push(key);
    }
    Ok(imported)
}

fn import_one(jwk: &Map<String, Value>, kid: Option<&str>) -> Result<ImportedKey, JwkError> {
    let alg = jwk::classify(jwk)?.alg;
    let (der, public) = match alg {
        Algorithm::Es256 => import_ec(jwk)?,
        Algorithm::Rs256 => import_rsa(jwk)?,
        Algorithm::EdDsa => import_ed25519(jwk)?,
    };
    let kid = kid.map_or_else(|| public.thumbprint(), str::to_owned);
    Ok(ImportedKey { kid, alg, der })
}

fn import_ec(jwk: &Map<String, Value>) -> Result<(PrivateKeyDer, PublicMembers), JwkError> {
    let point = jwk::ec_point(jwk)?;
    let d = jwk::fixed_member::<P256_LEN>(jwk, "d", JwkError::MissingPrivateMember)?;
    let pair = EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        d.as_slice(),
        &point,
    )
    .map_err(rejected)?;
    let der = pair
        .to_pkcs8v1()
        .map_err(|_| JwkError::KeyRejected("PKCS#8 serialization failed"))?;
    let public = PublicMembers::from_ec_point(pair.public_key().as_ref())
        .ok_or(JwkError::InvalidPublicKey)?;
    Ok((PrivateKeyDer::new(der.as_ref().to_vec().into()), public))
}

fn import_ed25519(jwk: &Map<String, Value>) -> Result<(PrivateKeyDer, PublicMembers), JwkError> {
    let x = jwk::ed25519_public(jwk)?;
    let d = jwk::exact_member(jwk, "d", JwkError::MissingPrivateMember)?;
    let pair = Ed25519KeyPair::from_seed_and_public_key(d.as_slice(), &x).map_err(rejected)?;
    let der = pair
        .to_pkcs8v1()
        .map_err(|_| JwkError::KeyRejected("PKCS#8 serialization failed"))?;
    let public = PublicMembers::from_ed25519(pair.public_key().as_ref())
        .ok_or(JwkError::InvalidPublicKey)?;
    Ok((PrivateKeyDer::new(der.as_ref().to_vec().into()), public))
}

fn import_rsa(jwk: &Map<String, Value>) -> Result<(PrivateKeyDer, PublicMembers), JwkError> {
    if jwk.contains_key("oth") {
        return Err(JwkError::MultiPrimeRsa);
    }
    let (n, e) = jwk::rsa_public(jwk)?;
    let private = |name| jwk::bytes_member(jwk, name, JwkError::MissingPrivateMember);
    let (d, p, q) = (private("d")?, private("p")?, private("q")?);
    let (dp, dq, qi) = (private("dp")?, private("dq")?, private("qi")?);
    let pair = RsaKeyPair::from_components(&KeyPairComponents {
        public_key: RsaPublicKeyComponents {
            n: n.as_slice(),
            e: e.as_slice(),
        },
        d: d.as_slice(),
        p: p.as_slice(),
        q: q.as_slice(),
        dP: dp.as_slice(),
        dQ: dq.as_slice(),
        qInv: qi.as_slice(),
    })
    .map_err(rejected)?;
    let der: Pkcs8V1Der<'static> = pair
        .as_der()
        .map_err(|_| JwkError::KeyRejected("PKCS#8 serialization failed"))?;
    let public = PublicMembers::from_rsa(&n, &e);
    Ok((PrivateKeyDer::new(der.as_ref().to_vec().into()), public))
}

/// The PKCS#8 DER of a private RSA JWK, checked as for import (for JWE decryption keys).
pub(crate) fn rsa_pkcs8(jwk: &Map<String, Value>) -> Result<PrivateKeyDer, JwkError> {
    import_rsa(jwk).map(|(der, _)| der)
}

fn rejected(error: KeyRejected) -> JwkError {
    match error.description_() {
        "InconsistentComponents" => JwkError::PrivateKeyMismatch,
        reason => JwkError::KeyRejected(reason),
    }
}

/// A parsed JWK Set whose strings (private members among them) are zeroized on drop.
struct Scrubbed(Value);

impl Drop for Scrubbed {
    fn drop(&mut self) {
        scrub(&mut self.0);
    }
}

fn scrub(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(members) => members.values_mut().for_each(scrub),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
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

    use serde_json::json;

    use super::*;
    use crate::signing::SigningKey;
    use crate::verify::VerificationKeys;

    const FIXTURE: &str = include_str!("../tests/fixtures/private_jwks.json");
    const INTEROP: &str = include_str!("../tests/fixtures/interop.json");

    fn fixture_keys() -> Vec<Map<String, Value>> {
        let set: Value = serde_json::from_str(FIXTURE).unwrap();
        set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_object().unwrap().clone())
            .collect()
    }

    fn public_part(jwk: &Map<String, Value>) -> Map<String, Value> {
        let mut public = jwk.clone();
        for name in ["d", "p", "q", "dp", "dq", "qi"] {
            public.remove(name);
        }
        public
    }

    fn set_of(keys: Vec<Map<String, Value>>) -> String {
        json!({ "keys": keys }).to_string()
    }

    fn import_error(keys: Vec<Map<String, Value>>) -> (usize, Option<String>, JwkError) {
        match import_jwk_set(&set_of(keys)) {
            Err(JoseError::Jwk {
                index,
                kid,
                problem,
            }) => (index, kid, problem),
            other => panic!("expected a JWK error, got {other:?}"),
        }
    }

    #[test]
    fn imports_the_fixture_ec_and_rsa_keys() {
        let interop: Value = serde_json::from_str(INTEROP).unwrap();
        let imported = import_jwk_set(FIXTURE).unwrap();
        assert_eq!(imported.len(), 2);

        assert_eq!(imported[0].kid, "ec-test-1");
        assert_eq!(imported[0].alg, Algorithm::Es256);
        // No kid and no alg in the RSA JWK: thumbprint (computed by Python) and inference.
        assert_eq!(imported[1].kid, interop["rsa_thumbprint"]);
        assert_eq!(imported[1].alg, Algorithm::Rs256);

        let originals = fixture_keys();
        for (key, original) in imported.iter().zip(&originals) {
            let signing = SigningKey::from_der(key.alg, &key.kid, key.der.as_bytes()).unwrap();
            for member in ["x", "y", "n", "e"] {
                assert_eq!(signing.public_jwk().get(member), original.get(member));
            }
            // Sign with the imported key, verify with the exporter's public members.
            let token = signing.sign_jwt("at+jwt", &json!({"sub": "x"})).unwrap();
            let mut public = public_part(original);
            public.insert("kid".into(), key.kid.clone().into());
            VerificationKeys::from_jwks(&[public])
                .unwrap()
                .verify(&token, "at+jwt")
                .unwrap();
        }
    }

    #[test]
    fn mismatched_private_and_public_members_are_refused() {
        let originals = fixture_keys();
        let (other_ec, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut ec = originals[0].clone();
        ec.insert("x".into(), other_ec.public_jwk()["x"].clone());
        ec.insert("y".into(), other_ec.public_jwk()["y"].clone());
        assert_eq!(
            import_error(vec![ec]),
            (0, Some("ec-test-1".into()), JwkError::PrivateKeyMismatch)
        );

        // RSA: a different public exponent no longer matches d.
        let mut rsa = originals[1].clone();
        rsa.insert("e".into(), "Aw".into());
        assert_eq!(
            import_error(vec![originals[0].clone(), rsa]),
            (1, None, JwkError::PrivateKeyMismatch)
        );

        // RSA: n from another key.
        let (other_rsa, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let mut rsa = originals[1].clone();
        rsa.insert("n".into(), other_rsa.public_jwk()["n"].clone());
        assert_eq!(import_error(vec![rsa]).2, JwkError::PrivateKeyMismatch);
    }

    #[test]
    fn missing_private_members_are_named() {
        let originals = fixture_keys();
        let mut ec = originals[0].clone();
        ec.remove("d");
        assert_eq!(
            import_error(vec![ec]).2,
            JwkError::MissingPrivateMember("d")
        );
        for name in ["d", "p", "q", "dp", "dq", "qi"] {
            let mut rsa = originals[1].clone();
            rsa.remove(name);
            assert_eq!(
                import_error(vec![rsa]).2,
                JwkError::MissingPrivateMember(name)
            );
        }
    }

    #[test]
    fn unsupported_keys_are_refused_precisely() {
        let ec = fixture_keys()[0].clone();
        let with = |name: &str, value: Value| {
            let mut jwk = ec.clone();
            jwk.insert(name.into(), value);
            jwk
        };
        let oct = json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"});
        assert_eq!(
            import_error(vec![oct.as_object().unwrap().clone()]),
            (0, Some("hmac".into()), JwkError::SymmetricKey)
        );
        assert!(matches!(
            import_error(vec![with("crv", "P-384".into())]).2,
            JwkError::UnsupportedCurve(_)
        ));
        assert!(matches!(
            import_error(vec![with("kty", "OKP".into())]).2,
            JwkError::UnsupportedCurve(_)
        ));
        assert!(matches!(
            import_error(vec![with("use", "enc".into())]).2,
            JwkError::NotForSignatures(_)
        ));
        assert!(matches!(
            import_error(vec![with("alg", "RS256".into())]).2,
            JwkError::AlgorithmKeyTypeMismatch { .. }
        ));
        assert!(matches!(
            import_error(vec![with("alg", "ES384".into())]).2,
            JwkError::UnsupportedAlgorithm(_)
        ));
        assert_eq!(
            import_error(vec![with("d", "not base64!".into())]).2,
            JwkError::NotBase64url("d")
        );
        assert_eq!(
            import_error(vec![with("kid", "".into())]).2,
            JwkError::EmptyKid
        );
        let mut rsa = fixture_keys()[1].clone();
        rsa.insert("oth".into(), json!([]));
        assert_eq!(import_error(vec![rsa]).2, JwkError::MultiPrimeRsa);
    }

    #[test]
    fn set_level_errors() {
        assert!(matches!(
            import_jwk_set("{"),
            Err(JoseError::JwkSetJson { line: 1, .. })
        ));
        assert!(matches!(import_jwk_set("[]"), Err(JoseError::JwkSetShape)));
        assert!(matches!(
            import_jwk_set(r#"{"keys": {}}"#),
            Err(JoseError::JwkSetShape)
        ));
        assert!(import_jwk_set(r#"{"keys": []}"#).unwrap().is_empty());
        let ec = fixture_keys()[0].clone();
        assert!(matches!(
            import_jwk_set(&set_of(vec![ec.clone(), ec])),
            Err(JoseError::DuplicateKid(kid)) if kid == "ec-test-1"
        ));
    }

    #[test]
    fn error_messages_carry_no_private_material() {
        let originals = fixture_keys();
        let mut rsa = originals[1].clone();
        rsa.insert("e".into(), "Aw".into());
        let mut ec = originals[0].clone();
        ec.insert("y".into(), originals[0]["x"].clone());
        for jwk in [rsa, ec] {
            let message = import_jwk_set(&set_of(vec![jwk.clone()]))
                .unwrap_err()
                .to_string();
            for name in ["d", "p", "q", "dp", "dq", "qi"] {
                if let Some(Value::String(secret)) = jwk.get(name) {
                    assert!(!message.contains(&secret[..16]), "{message}");
                }
            }
        }
    }
}
