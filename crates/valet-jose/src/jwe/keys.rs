//! Recipient keys for JWE: public keys a client registers for encryption (RFC 7517 §4.2
//! `use: enc`) and, for tests and future use, private keys to decrypt with.

use aws_lc_rs::agreement::{ECDH_P256, ParsedPublicKey, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::rsa::{
    OaepPrivateDecryptingKey, PrivateDecryptingKey, PublicEncryptingKey, PublicKeyComponents,
};
use serde_json::{Map, Value};

use super::algorithms::KeyManagement;
use crate::error::{JoseError, JwkError};
use crate::jwk::{self, P256_LEN, PRIVATE_MEMBERS};
use crate::text::excerpt;

/// The public part a JWE is encrypted to.
#[derive(Clone, Debug)]
pub(crate) enum Recipient {
    /// RSA modulus and exponent, without leading zero octets.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed SEC1 P-256 point.
    EcP256 { point: Vec<u8> },
}

/// A public key to encrypt to: EC P-256 (ECDH-ES, ECDH-ES+A256KW) or RSA (RSA-OAEP-256).
#[derive(Clone, Debug)]
pub struct EncryptionKey {
    kid: Option<String>,
    declared_alg: Option<KeyManagement>,
    declared_enc_use: bool,
    pub(crate) recipient: Recipient,
}

impl EncryptionKey {
    /// From a public JWK whose `use`, if present, is `enc` and whose `alg`, if present, is a
    /// supported key management algorithm for its `kty`. Private members are refused.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<EncryptionKey, JwkError> {
        let kty = jwk::required_str(jwk, "kty")?;
        let declared_enc_use = match jwk::optional_str(jwk, "use")? {
            None => false,
            Some("enc") => true,
            Some(other) => return Err(JwkError::NotForEncryption(excerpt(other))),
        };
        if let Some(name) = PRIVATE_MEMBERS
            .into_iter()
            .find(|name| jwk.contains_key(*name))
        {
            return Err(JwkError::PrivateMemberInPublicKey(name));
        }
        let recipient = match kty {
            "RSA" => {
                let (n, e) = jwk::rsa_public(jwk)?;
                let _: PublicEncryptingKey = PublicKeyComponents { n: &n, e: &e }
                    .try_into()
                    .map_err(|_| JwkError::InvalidPublicKey)?;
                Recipient::Rsa { n, e }
            }
            "EC" => {
                let crv = jwk::required_str(jwk, "crv")?;
                if crv != "P-256" {
                    return Err(JwkError::UnsupportedCurve(excerpt(crv)));
                }
                let point = jwk::ec_point(jwk)?;
                ParsedPublicKey::try_from(&UnparsedPublicKey::new(&ECDH_P256, &point))
                    .map_err(|_| JwkError::InvalidPublicKey)?;
                Recipient::EcP256 { point }
            }
            "oct" => return Err(JwkError::SymmetricKey),
            other => return Err(JwkError::UnsupportedKeyType(excerpt(other))),
        };
        let declared_alg = match jwk::optional_str(jwk, "alg")? {
            None => None,
            Some(name) => {
                let alg: KeyManagement = name
                    .parse()
                    .map_err(|_| JwkError::UnsupportedAlgorithm(excerpt(name)))?;
                if alg.key_type() != kty {
                    return Err(JwkError::UnsupportedAlgorithm(excerpt(name)));
                }
                Some(alg)
            }
        };
        Ok(EncryptionKey {
            kid: jwk::kid(jwk)?.map(str::to_owned),
            declared_alg,
            declared_enc_use,
            recipient,
        })
    }

    /// The JWK's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether this key can receive a JWE made with `alg`: the right key type, and the
    /// JWK's `alg`, if declared, is `alg`.
    pub fn fits(&self, alg: KeyManagement) -> bool {
        let type_fits = matches!(
            (&self.recipient, alg),
            (Recipient::Rsa { .. }, KeyManagement::RsaOaep256)
                | (
                    Recipient::EcP256 { .. },
                    KeyManagement::EcdhEs | KeyManagement::EcdhEsA256Kw
                )
        );
        type_fits && self.declared_alg.is_none_or(|declared| declared == alg)
    }

    /// Whether the JWK says it is for encryption (`use: enc` or a JWE `alg`), rather than
    /// being a key without either that may serve signatures too.
    pub fn is_declared_for_encryption(&self) -> bool {
        self.declared_enc_use || self.declared_alg.is_some()
    }
}

/// Whether a JWK declares itself an encryption key (`use: enc`, or an `alg` that is a JWE
/// key management algorithm), so that it must never verify a signature.
pub fn declares_encryption(jwk: &Map<String, Value>) -> bool {
    let use_enc = jwk.get("use").and_then(Value::as_str) == Some("enc");
    let alg_jwe = jwk.get("alg").and_then(Value::as_str).is_some_and(|alg| {
        [
            "RSA-OAEP", "RSA1_5", "ECDH-ES", "A128KW", "A192KW", "A256KW", "dir", "PBES2",
        ]
        .iter()
        .any(|prefix| alg.starts_with(prefix))
    });
    use_enc || alg_jwe
}

/// The encryption keys of a JWK Set: the keys [`EncryptionKey::from_jwk`] accepts.
#[derive(Clone, Debug, Default)]
pub struct EncryptionKeys {
    keys: Vec<EncryptionKey>,
}

impl EncryptionKeys {
    /// From the JWKs of a set, ignoring keys that are not encryption keys of a kind used
    /// here (RFC 7517 §5). A key that declares itself for encryption and is malformed
    /// is still ignored; [`EncryptionKeys::strict`] is for sets an operator registers.
    pub fn lenient(keys: &[Map<String, Value>]) -> EncryptionKeys {
        EncryptionKeys {
            keys: keys
                .iter()
                .filter_map(|jwk| EncryptionKey::from_jwk(jwk).ok())
                .collect(),
        }
    }

    /// From the JWKs of a set: every key that declares itself for encryption must be
    /// usable, others are taken when they fit and ignored when not.
    pub fn strict(keys: &[Map<String, Value>]) -> Result<EncryptionKeys, JoseError> {
        let mut set = Vec::new();
        for (index, jwk) in keys.iter().enumerate() {
            match EncryptionKey::from_jwk(jwk) {
                Ok(key) => set.push(key),
                Err(problem) if declares_encryption(jwk) => {
                    return Err(JoseError::Jwk {
                        index,
                        kid: jwk::kid(jwk).ok().flatten().map(excerpt),
                        problem,
                    });
                }
                Err(_) => {}
            }
        }
        Ok(EncryptionKeys { keys: set })
    }

    /// From a JWK Set document, leniently.
    pub fn from_jwk_set_json(json: &str) -> Result<EncryptionKeys, JoseError> {
        let set: Value = serde_json::from_str(json).map_err(|e| JoseError::JwkSetJson {
            line: e.line(),
            column: e.column(),
        })?;
        let keys: Vec<Map<String, Value>> = set
            .as_object()
            .and_then(|set| set.get("keys"))
            .and_then(Value::as_array)
            .ok_or(JoseError::JwkSetShape)?
            .iter()
            .filter_map(|key| key.as_object().cloned())
            .collect();
        Ok(EncryptionKeys::lenient(&keys))
    }

    /// The key to encrypt to with `alg`: among the keys that fit, the first declared for
    /// encryption, else the first without a declared `use`.
    pub fn for_algorithm(&self, alg: KeyManagement) -> Option<&EncryptionKey> {
        let mut fitting = self.keys.iter().filter(|key| key.fits(alg));
        let first = fitting.clone().next();
        fitting
            .find(|key| key.is_declared_for_encryption())
            .or(first)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A private key to decrypt with.
pub(crate) enum Private {
    Rsa(OaepPrivateDecryptingKey),
    EcP256(PrivateKey),
}

/// A private JWK loaded for decryption (RSA with CRT members, or EC P-256 with `d`).
pub struct DecryptionKey {
    pub(crate) kid: Option<String>,
    pub(crate) private: Private,
}

impl core::fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DecryptionKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DecryptionKey {
    /// From a private JWK: RSA (`n e d p q dp dq qi`) or EC P-256 (`x y d`). The private
    /// members must match the public ones.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<DecryptionKey, JwkError> {
        let private = match jwk::required_str(jwk, "kty")? {
            "RSA" => {
                let der = crate::import::rsa_pkcs8(jwk)?;
                let key = PrivateDecryptingKey::from_pkcs8(der.as_bytes())
                    .map_err(|_| JwkError::KeyRejected("RSA key rejected"))?;
                Private::Rsa(
                    OaepPrivateDecryptingKey::new(key)
                        .map_err(|_| JwkError::KeyRejected("RSA key rejected"))?,
                )
            }
            "EC" => {
                let crv = jwk::required_str(jwk, "crv")?;
                if crv != "P-256" {
                    return Err(JwkError::UnsupportedCurve(excerpt(crv)));
                }
                let point = jwk::ec_point(jwk)?;
                let d = jwk::fixed_member::<P256_LEN>(jwk, "d", JwkError::MissingPrivateMember)?;
                let key = PrivateKey::from_private_key(&ECDH_P256, d.as_slice())
                    .map_err(|_| JwkError::KeyRejected("EC key rejected"))?;
                let public = key
                    .compute_public_key()
                    .map_err(|_| JwkError::InvalidPublicKey)?;
                if public.as_ref() != point.as_slice() {
                    return Err(JwkError::PrivateKeyMismatch);
                }
                Private::EcP256(key)
            }
            other => return Err(JwkError::UnsupportedKeyType(excerpt(other))),
        };
        Ok(DecryptionKey {
            kid: jwk::kid(jwk)?.map(str::to_owned),
            private,
        })
    }
}
