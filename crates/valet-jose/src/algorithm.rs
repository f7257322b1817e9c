//! The JWS algorithms Valet signs and verifies with (RFC 7518 §3.1).

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::text::excerpt;

/// A JWS `alg` value (RFC 7515 §4.1.1, RFC 7518 §3.1).
///
/// Deliberately closed: `none` and the HMAC algorithms cannot be expressed, so a key can
/// never be used with them (RFC 8725 §3.1, §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// ECDSA using P-256 and SHA-256 (RFC 7518 §3.4). The default: fast to sign and small.
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 using SHA-256 (RFC 7518 §3.3), for relying parties that only
    /// know RS256 (OpenID Connect Core §15.1 makes it mandatory to implement).
    #[serde(rename = "RS256")]
    Rs256,
    /// EdDSA with Ed25519 (RFC 8037 §3.1): an option for access tokens, the fastest to sign.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 3] = [Algorithm::Es256, Algorithm::Rs256, Algorithm::EdDsa];

    /// The registered `alg` name (RFC 7518 §3.1).
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The JWK `kty` of keys for this algorithm (RFC 7518 §6.1).
    pub const fn key_type(self) -> &'static str {
        match self {
            Algorithm::Es256 => "EC",
            Algorithm::Rs256 => "RSA",
            Algorithm::EdDsa => "OKP",
        }
    }

    pub(crate) const fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so tables can align it with a width.
        f.pad(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = UnsupportedAlgorithm;

    /// Parses an `alg` value; case-sensitive, as RFC 7515 §4.1.1 requires.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(Algorithm::Es256),
            "RS256" => Ok(Algorithm::Rs256),
            "EdDSA" => Ok(Algorithm::EdDsa),
            other => Err(UnsupportedAlgorithm(excerpt(other))),
        }
    }
}

/// An `alg` value other than ES256, RS256 and EdDSA (this includes `none` and every HMAC
/// algorithm), shortened; `?` turns it into `JoseError::UnsupportedAlgorithm`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported algorithm {0:?}: only ES256, RS256 and EdDSA are accepted")]
pub struct UnsupportedAlgorithm(pub String);

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;
    use crate::JoseError;

    #[test]
    fn names_round_trip_through_display_fromstr_and_serde() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.to_string().parse::<Algorithm>().unwrap(), alg);
            let json = serde_json::to_string(&alg).unwrap();
            assert_eq!(json, format!("\"{alg}\""));
            assert_eq!(serde_json::from_str::<Algorithm>(&json).unwrap(), alg);
        }
    }

    #[test]
    fn none_hmac_and_wrong_case_are_refused() {
        for name in [
            "none", "HS256", "es256", "PS256", "ES384", "", "eddsa", "EDDSA", "Ed25519",
        ] {
            assert!(matches!(
                name.parse::<Algorithm>(),
                Err(UnsupportedAlgorithm(refused)) if refused == name
            ));
            let refused = name.parse::<Algorithm>().map_err(JoseError::from);
            assert!(matches!(refused, Err(JoseError::UnsupportedAlgorithm(n)) if n == name));
            assert!(serde_json::from_str::<Algorithm>(&format!("\"{name}\"")).is_err());
        }
    }
}
