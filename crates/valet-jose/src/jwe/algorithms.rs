//! The JWE algorithms Valet encrypts with: key management `alg` (RFC 7518 §4) and content
//! encryption `enc` (RFC 7518 §5). Closed sets, like [`Algorithm`](crate::Algorithm): RSA1_5,
//! `dir` with a shared secret and the password-based algorithms cannot be expressed.

use core::fmt;
use core::str::FromStr;

use crate::text::excerpt;

/// A JWE `alg` value (RFC 7516 §4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyManagement {
    /// RSAES OAEP using SHA-256 and MGF1 with SHA-256 (RFC 7518 §4.3).
    RsaOaep256,
    /// ECDH-ES on P-256, the agreed key used directly as the CEK (RFC 7518 §4.6).
    EcdhEs,
    /// ECDH-ES on P-256, the agreed key wrapping a random CEK with AES-256 Key Wrap
    /// (RFC 7518 §4.6, RFC 3394).
    EcdhEsA256Kw,
}

impl KeyManagement {
    /// Every supported key management algorithm.
    pub const ALL: [KeyManagement; 3] = [
        KeyManagement::RsaOaep256,
        KeyManagement::EcdhEs,
        KeyManagement::EcdhEsA256Kw,
    ];

    /// The registered name (RFC 7518 §4.1).
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyManagement::RsaOaep256 => "RSA-OAEP-256",
            KeyManagement::EcdhEs => "ECDH-ES",
            KeyManagement::EcdhEsA256Kw => "ECDH-ES+A256KW",
        }
    }

    /// The JWK `kty` of a recipient key for this algorithm.
    pub const fn key_type(self) -> &'static str {
        match self {
            KeyManagement::RsaOaep256 => "RSA",
            KeyManagement::EcdhEs | KeyManagement::EcdhEsA256Kw => "EC",
        }
    }
}

/// A JWE `enc` value (RFC 7516 §4.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ContentEncryption {
    /// AES-128 in GCM (RFC 7518 §5.3).
    A128Gcm,
    /// AES-256 in GCM (RFC 7518 §5.3). The default.
    #[default]
    A256Gcm,
}

impl ContentEncryption {
    /// Every supported content encryption algorithm.
    pub const ALL: [ContentEncryption; 2] =
        [ContentEncryption::A128Gcm, ContentEncryption::A256Gcm];

    /// The registered name (RFC 7518 §5.1).
    pub const fn as_str(self) -> &'static str {
        match self {
            ContentEncryption::A128Gcm => "A128GCM",
            ContentEncryption::A256Gcm => "A256GCM",
        }
    }

    /// Octets of the content encryption key.
    pub(crate) const fn key_len(self) -> usize {
        match self {
            ContentEncryption::A128Gcm => 16,
            ContentEncryption::A256Gcm => 32,
        }
    }

    pub(crate) fn aead(self) -> &'static aws_lc_rs::aead::Algorithm {
        match self {
            ContentEncryption::A128Gcm => &aws_lc_rs::aead::AES_128_GCM,
            ContentEncryption::A256Gcm => &aws_lc_rs::aead::AES_256_GCM,
        }
    }
}

/// A name that is not a supported JWE `alg` or `enc`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported JWE algorithm {0:?}")]
pub struct UnsupportedJweAlgorithm(pub String);

impl FromStr for KeyManagement {
    type Err = UnsupportedJweAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        KeyManagement::ALL
            .into_iter()
            .find(|alg| alg.as_str() == name)
            .ok_or_else(|| UnsupportedJweAlgorithm(excerpt(name)))
    }
}

impl FromStr for ContentEncryption {
    type Err = UnsupportedJweAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ContentEncryption::ALL
            .into_iter()
            .find(|enc| enc.as_str() == name)
            .ok_or_else(|| UnsupportedJweAlgorithm(excerpt(name)))
    }
}

impl fmt::Display for KeyManagement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ContentEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
