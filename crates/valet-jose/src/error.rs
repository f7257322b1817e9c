//! The errors of this crate. Messages name members, indexes and key ids, never key material.

use crate::algorithm::{Algorithm, UnsupportedAlgorithm};

/// Every way an operation of this crate can fail.
///
/// Strings carried here come from key ids, algorithm names or token headers, shortened;
/// never from private or secret key members, plaintexts or master keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// An `alg` other than ES256, RS256 and EdDSA (this includes `none` and every HMAC algorithm).
    #[error("unsupported algorithm {0:?}: only ES256, RS256 and EdDSA are accepted")]
    UnsupportedAlgorithm(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// aws-lc-rs could not generate or serialize a new key pair.
    #[error("key generation failed")]
    KeyGeneration,
    /// A private key DER could not be loaded for the given algorithm.
    #[error("private key DER rejected for {alg}: {reason}")]
    InvalidPrivateKey {
        /// The algorithm the key was loaded for.
        alg: Algorithm,
        /// aws-lc-rs's reason (`InvalidEncoding`, `WrongAlgorithm`, `TooSmall`, ...).
        reason: &'static str,
    },
    /// A key id must be a non-empty string.
    #[error("a key id must not be empty")]
    EmptyKid,
    /// aws-lc-rs failed to sign.
    #[error("signing failed")]
    Signing,
    /// Claims (or a header) could not be serialized as JSON.
    #[error("JSON serialization failed: {0}")]
    Json(#[source] serde_json::Error),

    /// A master key must be exactly 32 bytes (AES-256).
    #[error("the master key must be exactly 32 bytes")]
    MasterKeyLength,
    /// A master key text was not base64 or base64url.
    #[error("the master key is not valid base64 or base64url")]
    MasterKeyEncoding,
    /// AES-GCM sealing failed.
    #[error("encryption failed")]
    Seal,
    /// The sealed blob is too short to hold version, nonce and tag.
    #[error("sealed data is truncated")]
    SealedTruncated,
    /// The sealed blob starts with a version byte this build does not know.
    #[error("sealed data has unknown format version {0}")]
    SealedVersion(u8),
    /// Authentication failed: wrong master key, wrong associated data, or tampered data.
    #[error("decryption failed: wrong master key, wrong associated data, or tampered data")]
    Open,

    /// Input that should be base64url (RFC 4648 §5, unpadded) is not.
    #[error("invalid base64url")]
    Base64,
    /// A JWK Set is not JSON at all.
    #[error("the JWK Set is not valid JSON (line {line}, column {column})")]
    JwkSetJson {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
    },
    /// A JWK Set is JSON but not an object with a `keys` array (RFC 7517 §5).
    #[error("the JWK Set must be a JSON object with a \"keys\" array")]
    JwkSetShape,
    /// One JWK of a set (or list) is unusable.
    #[error("JWK #{index} (kid {kid:?}): {problem}")]
    Jwk {
        /// 0-based position in the set.
        index: usize,
        /// The JWK's `kid`, if it has one.
        kid: Option<String>,
        /// What is wrong with it.
        problem: JwkError,
    },
    /// Two keys of one set share a `kid`, so a token's `kid` would be ambiguous.
    #[error("duplicate kid {0:?}")]
    DuplicateKid(String),

    /// A token over [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN), refused before any parsing.
    #[error("token of {len} bytes exceeds the {max}-byte limit")]
    TokenTooLarge {
        /// The token's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    /// The JOSE header has no `kid`, so no key can be chosen.
    #[error("the token header has no kid")]
    MissingKid,
    /// No key with this `kid` is known.
    #[error("unknown kid {0:?}")]
    UnknownKid(String),
    /// The header's `alg` is not the algorithm of the key named by `kid` (RFC 8725 §3.1).
    #[error("token alg {token} does not match alg {key} of its key")]
    AlgorithmMismatch {
        /// The `alg` the token claims.
        token: Algorithm,
        /// The algorithm of the key.
        key: Algorithm,
    },
    /// The header's `typ` is absent or not the expected one (RFC 8725 §3.11).
    #[error("token typ {found:?} is not {expected:?}")]
    TypMismatch {
        /// The expected type.
        expected: String,
        /// The token's `typ`, if any (shortened).
        found: Option<String>,
    },
    /// The signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// No `jsonwebtoken` crypto provider could be selected (both or neither backend enabled).
    #[error("no jsonwebtoken crypto provider is available")]
    CryptoProvider,
    /// The recipient key cannot be used with this JWE `alg` (wrong key type or declared `alg`).
    #[error("the recipient key does not fit JWE alg {0}")]
    JweKeyMismatch(&'static str),
    /// aws-lc-rs failed while encrypting a JWE.
    #[error("JWE encryption failed")]
    JweEncrypt,
    /// A JWE did not decrypt: wrong key, or a tampered header, key, IV, ciphertext or tag.
    #[error("JWE decryption failed: wrong key or tampered token")]
    JweDecrypt,
    /// Any other refusal by `jsonwebtoken` (for example an unsupported `crit` header).
    #[error("token rejected: {0}")]
    Jwt(#[source] jsonwebtoken::errors::Error),
}

impl From<UnsupportedAlgorithm> for JoseError {
    fn from(UnsupportedAlgorithm(name): UnsupportedAlgorithm) -> Self {
        Self::UnsupportedAlgorithm(name)
    }
}

/// Why one JWK is unusable. Names members, never their values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// The JWK is not a JSON object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A required public member is absent.
    #[error("missing member {0:?}")]
    MissingMember(&'static str),
    /// A member that must be a string is not one.
    #[error("member {0:?} must be a string")]
    NotAString(&'static str),
    /// A member that must be base64url is not.
    #[error("member {0:?} is not base64url")]
    NotBase64url(&'static str),
    /// A fixed-size member has the wrong size (RFC 7518 §6.2.1.2, §6.2.2.1).
    #[error("member {member:?} has {found} octets, expected {expected}")]
    WrongLength {
        /// The member.
        member: &'static str,
        /// Expected octets.
        expected: usize,
        /// Octets found.
        found: usize,
    },
    /// `kid` is present but empty.
    #[error("kid must not be empty")]
    EmptyKid,
    /// The key has no `kid` (required to select it for verification).
    #[error("missing kid")]
    MissingKid,
    /// A `kty` other than EC and RSA.
    #[error("unsupported key type {0:?}: only EC (P-256) and RSA")]
    UnsupportedKeyType(String),
    /// A symmetric key (`kty` "oct"): it cannot sign tokens that others verify.
    #[error("symmetric (\"oct\") keys are refused: tokens must be verifiable with a public key")]
    SymmetricKey,
    /// An EC curve other than P-256.
    #[error("unsupported curve {0:?}: only P-256 (EC) and Ed25519 (OKP)")]
    UnsupportedCurve(String),
    /// An `alg` other than ES256, RS256 and EdDSA.
    #[error("unsupported alg {0:?}: only ES256, RS256 and EdDSA")]
    UnsupportedAlgorithm(String),
    /// The `alg` does not fit the `kty` (say ES256 on an RSA key).
    #[error("alg {alg} does not fit key type {kty}")]
    AlgorithmKeyTypeMismatch {
        /// The declared algorithm.
        alg: Algorithm,
        /// The key type.
        kty: &'static str,
    },
    /// `use` is present and not "sig" (RFC 7517 §4.2).
    #[error("use is {0:?}, not \"sig\"")]
    NotForSignatures(String),
    /// `use` is present and not "enc" (RFC 7517 §4.2), for a key to encrypt to.
    #[error("use is {0:?}, not \"enc\"")]
    NotForEncryption(String),
    /// A private member needed to sign is absent.
    #[error("missing private member {0:?}")]
    MissingPrivateMember(&'static str),
    /// A private member appears where only a public key belongs.
    #[error("private member {0:?} in a key that must be public")]
    PrivateMemberInPublicKey(&'static str),
    /// Multi-prime RSA (`oth`, RFC 7518 §6.3.2.7) is not supported.
    #[error("multi-prime RSA keys (\"oth\") are not supported")]
    MultiPrimeRsa,
    /// RSA modulus outside 2048..=8192 bits.
    #[error("RSA modulus of {0} bits is outside 2048..=8192")]
    RsaModulusSize(usize),
    /// The private members do not belong to the public members.
    #[error("the private key does not match the public members")]
    PrivateKeyMismatch,
    /// The public members do not form a valid public key (say, a point not on P-256).
    #[error("invalid public key")]
    InvalidPublicKey,
    /// aws-lc-rs refused the key for another reason.
    #[error("key rejected: {0}")]
    KeyRejected(&'static str),
}
