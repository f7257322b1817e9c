//! JWS signing with prepared aws-lc-rs key pairs (RFC 7515 §5.1, compact form §7.1).
//!
//! `jsonwebtoken::encode` parses the private key again for every token; here a key is parsed
//! once, in [`SigningKey::from_der`] or [`SigningKey::generate`], and signing is header and
//! payload serialization plus one aws-lc-rs signature.

use core::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::algorithm::Algorithm;
use crate::error::JoseError;
use crate::jwk::PublicMembers;

/// Size of RSA keys made by [`SigningKey::generate`] (RFC 7518 §3.3 requires at least 2048).
pub const RSA_KEY_BITS: usize = 2048;

/// Length of `len` bytes in unpadded base64url.
fn encoded_len(len: usize) -> usize {
    base64::encoded_len(len, false).unwrap_or(usize::MAX)
}

/// Appends `input` to `out` as unpadded base64url, without an intermediate buffer.
fn append_base64url(input: &[u8], out: &mut Vec<u8>) -> Result<(), JoseError> {
    let start = out.len();
    out.resize(start + encoded_len(input.len()), 0);
    let written = out
        .get_mut(start..)
        .and_then(|free| URL_SAFE_NO_PAD.encode_slice(input, free).ok())
        .ok_or(JoseError::Signing)?;
    out.truncate(start + written);
    Ok(())
}

/// A private key in DER: PKCS#8 v1 (RFC 5208) for keys this crate produces.
/// Zeroized on drop; `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyDer(Zeroizing<Vec<u8>>);

impl PrivateKeyDer {
    /// Wraps DER bytes (for example, just opened with [`MasterKey::open`](crate::MasterKey::open)).
    pub fn new(der: Zeroizing<Vec<u8>>) -> Self {
        PrivateKeyDer(der)
    }

    /// The DER bytes: to be sealed with the master key, never logged.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn copy_of(der: &[u8]) -> Self {
        PrivateKeyDer(Zeroizing::new(der.to_vec()))
    }
}

impl fmt::Debug for PrivateKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKeyDer([redacted; {} bytes])", self.0.len())
    }
}

/// A signing key, parsed once: its `kid`, its algorithm, the aws-lc-rs key pair, and its
/// public JWK. `Send + Sync`; share it behind an `Arc`.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    pair: Pair,
    public_jwk: Map<String, Value>,
}

enum Pair {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// The JOSE header of every token we sign: exactly these members, in this order.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

impl SigningKey {
    /// Generates a key: P-256 for ES256, RSA of [`RSA_KEY_BITS`] for RS256, Ed25519 for
    /// EdDSA. Its `kid` is the
    /// RFC 7638 thumbprint (SHA-256, base64url) of the public key. Returns the PKCS#8 DER to
    /// store (sealed) alongside.
    pub fn generate(alg: Algorithm) -> Result<(SigningKey, PrivateKeyDer), JoseError> {
        let (pair, der) = match alg {
            Algorithm::Es256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| JoseError::KeyGeneration)?;
                let der = pair.to_pkcs8v1().map_err(|_| JoseError::KeyGeneration)?;
                let der = PrivateKeyDer::copy_of(der.as_ref());
                (Pair::Es256(pair), der)
            }
            Algorithm::Rs256 => {
                let pair =
                    RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| JoseError::KeyGeneration)?;
                let der: Pkcs8V1Der<'static> =
                    pair.as_der().map_err(|_| JoseError::KeyGeneration)?;
                let der = PrivateKeyDer::copy_of(der.as_ref());
                (Pair::Rs256(pair), der)
            }
            Algorithm::EdDsa => {
                let pair = Ed25519KeyPair::generate().map_err(|_| JoseError::KeyGeneration)?;
                let der = pair.to_pkcs8v1().map_err(|_| JoseError::KeyGeneration)?;
                let der = PrivateKeyDer::copy_of(der.as_ref());
                (Pair::EdDsa(pair), der)
            }
        };
        let public = pair.public_members()?;
        let kid = public.thumbprint();
        Ok((SigningKey::assemble(kid, alg, pair, &public), der))
    }

    /// Loads a key from DER: PKCS#8 v1/v2 for every algorithm (what [`generate`] and
    /// [`import_jwk_set`] produce); also RFC 5915 `ECPrivateKey` for ES256 and PKCS#1
    /// `RSAPrivateKey` for RS256. aws-lc-rs checks the key's consistency and, for RS256,
    /// a modulus of 2048 to 8192 bits.
    ///
    /// [`generate`]: SigningKey::generate
    /// [`import_jwk_set`]: crate::import_jwk_set
    pub fn from_der(alg: Algorithm, kid: &str, der: &[u8]) -> Result<SigningKey, JoseError> {
        if kid.is_empty() {
            return Err(JoseError::EmptyKid);
        }
        let rejected = |e: aws_lc_rs::error::KeyRejected| JoseError::InvalidPrivateKey {
            alg,
            reason: e.description_(),
        };
        let pair = match alg {
            Algorithm::Es256 => Pair::Es256(
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?,
            ),
            Algorithm::Rs256 => Pair::Rs256(
                RsaKeyPair::from_pkcs8(der)
                    .or_else(|_| RsaKeyPair::from_der(der))
                    .map_err(rejected)?,
            ),
            Algorithm::EdDsa => {
                Pair::EdDsa(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?)
            }
        };
        let public = pair.public_members()?;
        Ok(SigningKey::assemble(kid.to_owned(), alg, pair, &public))
    }

    fn assemble(kid: String, alg: Algorithm, pair: Pair, public: &PublicMembers) -> SigningKey {
        let public_jwk = public.to_jwk(&kid, alg);
        SigningKey {
            kid,
            alg,
            pair,
            public_jwk,
        }
    }

    /// The key id, sent as the JOSE header `kid` (RFC 7515 §4.1.4).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signing algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK (RFC 7517 §4, RFC 7518 §6.2.1 / §6.3.1, RFC 8037 §2): `kty`, `crv`
    /// `x` `y`, `n` `e` or `crv` `x`, `kid`, `alg`, `use: "sig"`. Public members only.
    pub fn public_jwk(&self) -> &Map<String, Value> {
        &self.public_jwk
    }

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) whose header is exactly
    /// `{"alg":…,"typ":…,"kid":…}`. `typ` is the explicit type (RFC 8725 §3.11), such as
    /// `at+jwt` (RFC 9068 §2.1) or `JWT`. ES256 signatures are the 64-byte `R || S`
    /// of RFC 7518 §3.4; EdDSA signatures the 64-byte Ed25519 signature (RFC 8037 §3.1).
    pub fn sign_jwt<C: Serialize + ?Sized>(
        &self,
        typ: &str,
        claims: &C,
    ) -> Result<String, JoseError> {
        let header = serde_json::to_vec(&Header {
            alg: self.alg.as_str(),
            typ,
            kid: &self.kid,
        })
        .map_err(JoseError::Json)?;
        let mut payload = Vec::with_capacity(512);
        serde_json::to_writer(&mut payload, claims).map_err(JoseError::Json)?;

        // One buffer for the whole token: the signature's length is known up front.
        let mut token = Vec::with_capacity(
            encoded_len(header.len())
                + encoded_len(payload.len())
                + encoded_len(self.signature_len())
                + 2,
        );
        append_base64url(&header, &mut token)?;
        token.push(b'.');
        append_base64url(&payload, &mut token)?;
        let signature = self.sign(&token)?;
        token.push(b'.');
        append_base64url(&signature, &mut token)?;
        // Base64url and dots only, so this never fails.
        String::from_utf8(token).map_err(|_| JoseError::Signing)
    }

    /// Signs `claims` under exactly `header` (which should name this key's `alg`), for
    /// JWTs whose header carries more than `kid`, such as a DPoP proof with its public
    /// `jwk` (RFC 9449 §4.2). Nothing in `header` is checked.
    pub fn sign_with_header<H: Serialize + ?Sized, C: Serialize + ?Sized>(
        &self,
        header: &H,
        claims: &C,
    ) -> Result<String, JoseError> {
        let header = serde_json::to_vec(header).map_err(JoseError::Json)?;
        let payload = serde_json::to_vec(claims).map_err(JoseError::Json)?;
        let mut token = Vec::with_capacity(
            encoded_len(header.len())
                + encoded_len(payload.len())
                + encoded_len(self.signature_len())
                + 2,
        );
        append_base64url(&header, &mut token)?;
        token.push(b'.');
        append_base64url(&payload, &mut token)?;
        let signature = self.sign(&token)?;
        token.push(b'.');
        append_base64url(&signature, &mut token)?;
        String::from_utf8(token).map_err(|_| JoseError::Signing)
    }

    /// Bytes in a signature: 64 for ES256 (`R || S`) and EdDSA, the modulus length for RS256.
    fn signature_len(&self) -> usize {
        match &self.pair {
            Pair::Es256(_) | Pair::EdDsa(_) => 64,
            Pair::Rs256(pair) => pair.public_modulus_len(),
        }
    }

    /// The JWS signature of the signing input (RFC 7515 §5.1 step 5).
    pub(crate) fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, JoseError> {
        // aws-lc-rs ignores the RNG argument (it draws from its own DRBG); the API needs one.
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Es256(pair) => pair
                .sign(&rng, signing_input)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| JoseError::Signing),
            Pair::Rs256(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, signing_input, &mut signature)
                    .map_err(|_| JoseError::Signing)?;
                Ok(signature)
            }
            Pair::EdDsa(pair) => pair
                .try_sign(signing_input)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| JoseError::Signing),
        }
    }
}

impl Pair {
    fn public_members(&self) -> Result<PublicMembers, JoseError> {
        match self {
            Pair::Es256(pair) => PublicMembers::from_ec_point(pair.public_key().as_ref()).ok_or(
                JoseError::InvalidPrivateKey {
                    alg: Algorithm::Es256,
                    reason: "public key is not an uncompressed P-256 point",
                },
            ),
            Pair::Rs256(pair) => {
                let public = pair.public_key();
                Ok(PublicMembers::from_rsa(
                    public.modulus().big_endian_without_leading_zero(),
                    public.exponent().big_endian_without_leading_zero(),
                ))
            }
            Pair::EdDsa(pair) => PublicMembers::from_ed25519(pair.public_key().as_ref()).ok_or(
                JoseError::InvalidPrivateKey {
                    alg: Algorithm::EdDsa,
                    reason: "public key is not 32 octets",
                },
            ),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
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
    use crate::jwk::jwk_thumbprint;
    use crate::util::b64url_decode;
    use crate::verify::VerificationKeys;

    fn segments(token: &str) -> Vec<Vec<u8>> {
        token
            .split('.')
            .map(|s| b64url_decode(s).unwrap())
            .collect()
    }

    #[test]
    fn signing_key_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SigningKey>();
    }

    #[test]
    fn sign_then_verify_round_trip_for_every_algorithm() {
        for alg in Algorithm::ALL {
            let (key, _der) = SigningKey::generate(alg).unwrap();
            let claims = json!({"sub": "alice", "exp": 1, "scope": "a b"});
            let token = key.sign_jwt("at+jwt", &claims).unwrap();
            let keys = VerificationKeys::from_jwks(&[key.public_jwk().clone()]).unwrap();
            let verified = keys.verify(&token, "at+jwt").unwrap();
            assert_eq!(verified.kid, key.kid());
            assert_eq!(verified.alg, alg);
            assert_eq!(Value::Object(verified.claims), claims);
        }
    }

    #[test]
    fn header_is_exactly_alg_typ_kid_in_order() {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let token = key.sign_jwt("at+jwt", &json!({})).unwrap();
        let header = String::from_utf8(segments(&token)[0].clone()).unwrap();
        assert_eq!(
            header,
            format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{}"}}"#, key.kid())
        );
    }

    #[test]
    fn signature_sizes() {
        let (es, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let (rs, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let (ed, _) = SigningKey::generate(Algorithm::EdDsa).unwrap();
        assert_eq!(
            segments(&ed.sign_jwt("JWT", &json!({})).unwrap())[2].len(),
            64
        );
        assert_eq!(
            segments(&es.sign_jwt("JWT", &json!({})).unwrap())[2].len(),
            64
        );
        assert_eq!(
            segments(&rs.sign_jwt("JWT", &json!({})).unwrap())[2].len(),
            RSA_KEY_BITS / 8
        );
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint_and_jwk_is_public_only() {
        for alg in Algorithm::ALL {
            let (key, _) = SigningKey::generate(alg).unwrap();
            let jwk = key.public_jwk();
            assert_eq!(jwk_thumbprint(jwk).unwrap(), key.kid());
            assert_eq!(key.kid().len(), 43);
            let names: Vec<&str> = jwk.keys().map(String::as_str).collect();
            let mut expected = match alg {
                Algorithm::Es256 => vec!["kty", "crv", "x", "y", "kid", "alg", "use"],
                Algorithm::Rs256 => vec!["kty", "n", "e", "kid", "alg", "use"],
                Algorithm::EdDsa => vec!["kty", "crv", "x", "kid", "alg", "use"],
            };
            let mut sorted = names.clone();
            sorted.sort_unstable();
            expected.sort_unstable();
            assert_eq!(sorted, expected);
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], "sig");
            if alg == Algorithm::Rs256 {
                assert_eq!(jwk["e"], "AQAB");
            }
        }
    }

    #[test]
    fn der_round_trip_keeps_the_key() {
        for alg in Algorithm::ALL {
            let (key, der) = SigningKey::generate(alg).unwrap();
            let loaded = SigningKey::from_der(alg, key.kid(), der.as_bytes()).unwrap();
            assert_eq!(loaded.public_jwk(), key.public_jwk());
            let token = loaded.sign_jwt("at+jwt", &json!({"n": 1})).unwrap();
            let keys = VerificationKeys::from_jwks(&[key.public_jwk().clone()]).unwrap();
            keys.verify(&token, "at+jwt").unwrap();
        }
    }

    #[test]
    fn from_der_refuses_wrong_algorithm_garbage_and_empty_kid() {
        let (_, ec_der) = SigningKey::generate(Algorithm::Es256).unwrap();
        assert!(matches!(
            SigningKey::from_der(Algorithm::Rs256, "k", ec_der.as_bytes()),
            Err(JoseError::InvalidPrivateKey { .. })
        ));
        assert!(matches!(
            SigningKey::from_der(Algorithm::Es256, "k", b"\x30\x03\x02\x01\x00"),
            Err(JoseError::InvalidPrivateKey { .. })
        ));
        assert!(matches!(
            SigningKey::from_der(Algorithm::Es256, "", ec_der.as_bytes()),
            Err(JoseError::EmptyKid)
        ));
    }

    /// RFC 8037 Appendix A.1 (the Ed25519 key), A.3 (its thumbprint), A.4 (a signature).
    const RFC8037_KEY: &str = r#"{"keys": [{"kty": "OKP", "crv": "Ed25519",
        "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    #[test]
    fn ed25519_matches_the_rfc_8037_test_vectors() {
        let imported = crate::import_jwk_set(RFC8037_KEY).unwrap();
        assert_eq!(imported.len(), 1);
        let imported = &imported[0];
        assert_eq!(imported.alg, Algorithm::EdDsa);
        // A.3: the kid of an imported key without one is its RFC 7638 thumbprint.
        assert_eq!(imported.kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let key =
            SigningKey::from_der(Algorithm::EdDsa, &imported.kid, imported.der.as_bytes()).unwrap();
        assert_eq!(
            key.public_jwk()["x"],
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(key.public_jwk()["kty"], "OKP");
        assert_eq!(key.public_jwk()["crv"], "Ed25519");
        assert_eq!(jwk_thumbprint(key.public_jwk()).unwrap(), key.kid());
        // A.4: Ed25519 is deterministic, so the signature is the RFC's to the bit.
        let signature = key
            .sign(b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc")
            .unwrap();
        assert_eq!(
            crate::util::b64url(&signature),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn ed25519_import_checks_its_members() {
        let base: Value = serde_json::from_str(RFC8037_KEY).unwrap();
        let jwk = base["keys"][0].as_object().unwrap().clone();
        let import = |edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut jwk = jwk.clone();
            edit(&mut jwk);
            crate::import_jwk_set(&json!({ "keys": [jwk] }).to_string())
        };
        let (other, _) = SigningKey::generate(Algorithm::EdDsa).unwrap();
        // `d` of one key with `x` of another.
        assert!(
            import(&|k| {
                k.insert("x".into(), other.public_jwk()["x"].clone());
            })
            .is_err()
        );
        // A short seed is not left-padded into some other key.
        assert!(
            import(&|k| {
                k.insert("d".into(), json!(crate::util::b64url([7u8; 31])));
            })
            .is_err()
        );
        assert!(
            import(&|k| {
                k.remove("d");
            })
            .is_err()
        );
        assert!(
            import(&|k| {
                k.insert("crv".into(), json!("Ed448"));
            })
            .is_err()
        );
        assert!(
            import(&|k| {
                k.insert("alg".into(), json!("ES256"));
            })
            .is_err()
        );
        assert!(import(&|_| {}).is_ok());
    }

    #[test]
    fn eddsa_keys_serve_eddsa_only() {
        let (ed, ed_der) = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let (es, es_der) = SigningKey::generate(Algorithm::Es256).unwrap();
        assert!(matches!(
            SigningKey::from_der(Algorithm::Es256, "k", ed_der.as_bytes()),
            Err(JoseError::InvalidPrivateKey { .. })
        ));
        assert!(matches!(
            SigningKey::from_der(Algorithm::EdDsa, "k", es_der.as_bytes()),
            Err(JoseError::InvalidPrivateKey { .. })
        ));
        // A JWK that says OKP but claims another algorithm is refused, both ways round.
        let mut lying = ed.public_jwk().clone();
        lying.insert("alg".into(), json!("ES256"));
        assert!(VerificationKeys::from_jwks(&[lying]).is_err());
        let mut lying = es.public_jwk().clone();
        lying.insert("alg".into(), json!("EdDSA"));
        assert!(VerificationKeys::from_jwks(&[lying]).is_err());
        // An EdDSA token naming the ES256 key's kid, and the reverse, do not verify.
        let keys = VerificationKeys::from_jwks(&[ed.public_jwk().clone(), es.public_jwk().clone()])
            .unwrap();
        let forged = |signer: &SigningKey, named: &SigningKey| {
            let header = json!({"alg": signer.alg().as_str(), "typ": "at+jwt", "kid": named.kid()});
            let input = format!(
                "{}.{}",
                crate::util::b64url(header.to_string()),
                crate::util::b64url(b"{}")
            );
            let signature = signer.sign(input.as_bytes()).unwrap();
            format!("{input}.{}", crate::util::b64url(signature))
        };
        assert!(matches!(
            keys.verify(&forged(&ed, &es), "at+jwt"),
            Err(JoseError::AlgorithmMismatch {
                token: Algorithm::EdDsa,
                key: Algorithm::Es256
            })
        ));
        assert!(matches!(
            keys.verify(&forged(&es, &ed), "at+jwt"),
            Err(JoseError::AlgorithmMismatch {
                token: Algorithm::Es256,
                key: Algorithm::EdDsa
            })
        ));
        keys.verify(&forged(&ed, &ed), "at+jwt").unwrap();
        // A tampered EdDSA signature fails.
        let token = ed.sign_jwt("at+jwt", &json!({"sub": "a"})).unwrap();
        let tampered = format!("{}A", &token[..token.len() - 1]);
        let tampered = if tampered == token {
            format!("{}B", &token[..token.len() - 1])
        } else {
            tampered
        };
        assert!(keys.verify(&tampered, "at+jwt").is_err());
    }

    #[test]
    fn debug_output_is_redacted() {
        let (key, der) = SigningKey::generate(Algorithm::Es256).unwrap();
        let shown = format!("{key:?} {der:?}");
        assert!(shown.contains(key.kid()));
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&crate::util::b64url(der.as_bytes())));
        assert!(!shown.contains(&format!("{:?}", der.as_bytes())));
    }

    #[test]
    fn unserializable_claims_are_an_error() {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut claims = std::collections::HashMap::new();
        claims.insert(vec![1u8], 1);
        assert!(matches!(
            key.sign_jwt("JWT", &claims),
            Err(JoseError::Json(_))
        ));
    }
}
