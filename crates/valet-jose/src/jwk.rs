//! JWK members (RFC 7517, RFC 7518 §6) and thumbprints (RFC 7638).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::algorithm::Algorithm;
use crate::error::JwkError;
use crate::text::excerpt;
use crate::util::{b64url, sha256};

/// Members that only private (or symmetric) JWKs carry (RFC 7518 §6.2.2, §6.3.2, §6.4).
pub(crate) const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Octets of a P-256 coordinate or private scalar (RFC 7518 §6.2.1.2, §6.2.2.1).
pub(crate) const P256_LEN: usize = 32;

/// Octets of an Ed25519 public key or private seed (RFC 8037 §2, RFC 8032 §5.1.5).
pub(crate) const ED25519_LEN: usize = 32;

/// The public members of a key we can sign or verify with, in canonical form: EC coordinates
/// at their full 32 octets, RSA integers without leading zero octets (RFC 7518 §6.3.1.1),
/// the Ed25519 public key as its 32 octets (RFC 8037 §2).
pub(crate) enum PublicMembers {
    Ec { x: String, y: String },
    Rsa { n: String, e: String },
    Okp { x: String },
}

impl PublicMembers {
    /// From an uncompressed SEC1 P-256 point `04 || x || y`.
    pub(crate) fn from_ec_point(point: &[u8]) -> Option<Self> {
        match point.split_first() {
            Some((0x04, xy)) if xy.len() == 2 * P256_LEN => {
                let (x, y) = xy.split_at(P256_LEN);
                Some(PublicMembers::Ec {
                    x: b64url(x),
                    y: b64url(y),
                })
            }
            _ => None,
        }
    }

    /// From the 32-octet Ed25519 public key.
    pub(crate) fn from_ed25519(public: &[u8]) -> Option<Self> {
        (public.len() == ED25519_LEN).then(|| PublicMembers::Okp { x: b64url(public) })
    }

    pub(crate) fn from_rsa(n: &[u8], e: &[u8]) -> Self {
        PublicMembers::Rsa {
            n: b64url(strip_leading_zeros(n)),
            e: b64url(strip_leading_zeros(e)),
        }
    }

    /// The RFC 7638 thumbprint: base64url SHA-256 of the required members in
    /// lexicographic order, without whitespace (§3.2, §3.3).
    pub(crate) fn thumbprint(&self) -> String {
        match self {
            PublicMembers::Ec { x, y } => {
                thumbprint_of(&[("crv", "P-256"), ("kty", "EC"), ("x", x), ("y", y)])
            }
            PublicMembers::Rsa { n, e } => thumbprint_of(&[("e", e), ("kty", "RSA"), ("n", n)]),
            PublicMembers::Okp { x } => {
                thumbprint_of(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", x)])
            }
        }
    }

    /// The public JWK: `kty`, then `crv`/`x`/`y` or `n`/`e`, then `kid`, `alg`, `use`.
    pub(crate) fn to_jwk(&self, kid: &str, alg: Algorithm) -> Map<String, Value> {
        let mut jwk = Map::new();
        let mut put = |name: &str, value: &str| {
            jwk.insert(name.to_owned(), Value::String(value.to_owned()));
        };
        put("kty", alg.key_type());
        match self {
            PublicMembers::Ec { x, y } => {
                put("crv", "P-256");
                put("x", x);
                put("y", y);
            }
            PublicMembers::Rsa { n, e } => {
                put("n", n);
                put("e", e);
            }
            PublicMembers::Okp { x } => {
                put("crv", "Ed25519");
                put("x", x);
            }
        }
        put("kid", kid);
        put("alg", alg.as_str());
        put("use", "sig");
        jwk
    }
}

/// Computes the RFC 7638 JWK thumbprint (SHA-256, base64url) of a public or private JWK,
/// from its required members exactly as given (§3.2): `crv kty x y` for EC,
/// `e kty n` for RSA, `crv kty x` for OKP, `k kty` for oct.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Result<String, JwkError> {
    let kty = required_str(jwk, "kty")?;
    let names: &[&'static str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        "oct" => &["k", "kty"],
        other => return Err(JwkError::UnsupportedKeyType(excerpt(other))),
    };
    let members = names
        .iter()
        .map(|&name| Ok((name, required_str(jwk, name)?)))
        .collect::<Result<Vec<_>, JwkError>>()?;
    Ok(thumbprint_of(&members))
}

/// `members` must already be in lexicographic order of their names.
fn thumbprint_of(members: &[(&str, &str)]) -> String {
    let mut canonical = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        // Names are fixed ASCII; values are JSON-escaped as RFC 7638 §3.3 requires.
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        canonical.push_str(&Value::String((*value).to_owned()).to_string());
    }
    canonical.push('}');
    b64url(sha256(canonical.as_bytes()))
}

/// What a JWK declares itself to be, once checked: a signing key of a supported kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyKind {
    pub(crate) alg: Algorithm,
}

/// Checks `kty`, `crv`, `use` and `alg`; infers `alg` from the key type when absent
/// (EC P-256 → ES256, RSA → RS256, OKP Ed25519 → EdDSA), since each key type has exactly one algorithm here.
pub(crate) fn classify(jwk: &Map<String, Value>) -> Result<KeyKind, JwkError> {
    let kty = required_str(jwk, "kty")?;
    let inferred = match kty {
        "EC" => {
            let crv = required_str(jwk, "crv")?;
            if crv != "P-256" {
                return Err(JwkError::UnsupportedCurve(excerpt(crv)));
            }
            Algorithm::Es256
        }
        "RSA" => Algorithm::Rs256,
        "OKP" => {
            let crv = required_str(jwk, "crv")?;
            if crv != "Ed25519" {
                return Err(JwkError::UnsupportedCurve(excerpt(crv)));
            }
            Algorithm::EdDsa
        }
        "oct" => return Err(JwkError::SymmetricKey),
        other => return Err(JwkError::UnsupportedKeyType(excerpt(other))),
    };
    if let Some(usage) = optional_str(jwk, "use")?
        && usage != "sig"
    {
        return Err(JwkError::NotForSignatures(excerpt(usage)));
    }
    let alg = match optional_str(jwk, "alg")? {
        None => inferred,
        Some(name) => {
            let alg: Algorithm = name
                .parse()
                .map_err(|_| JwkError::UnsupportedAlgorithm(excerpt(name)))?;
            if alg != inferred {
                return Err(JwkError::AlgorithmKeyTypeMismatch {
                    alg,
                    kty: inferred.key_type(),
                });
            }
            alg
        }
    };
    Ok(KeyKind { alg })
}

/// The member as a string, `None` when absent; an error when present but not a string.
pub(crate) fn optional_str<'a>(
    jwk: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, JwkError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(JwkError::NotAString(name)),
    }
}

pub(crate) fn required_str<'a>(
    jwk: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, JwkError> {
    optional_str(jwk, name)?.ok_or(JwkError::MissingMember(name))
}

/// The `kid`, if present; an empty `kid` is an error.
pub(crate) fn kid(jwk: &Map<String, Value>) -> Result<Option<&str>, JwkError> {
    match optional_str(jwk, "kid")? {
        Some("") => Err(JwkError::EmptyKid),
        other => Ok(other),
    }
}

/// A required base64url member, decoded into zeroizing memory. Padding is tolerated
/// (some exporters add it); the alphabet must be base64url.
pub(crate) fn bytes_member(
    jwk: &Map<String, Value>,
    name: &'static str,
    missing: fn(&'static str) -> JwkError,
) -> Result<Zeroizing<Vec<u8>>, JwkError> {
    let text = optional_str(jwk, name)?.ok_or(missing(name))?;
    URL_SAFE_NO_PAD_INDIFFERENT
        .decode(text)
        .map(Zeroizing::new)
        .map_err(|_| JwkError::NotBase64url(name))
}

/// A fixed-size member, left-padded with zeros if an exporter dropped leading zero octets.
pub(crate) fn fixed_member<const N: usize>(
    jwk: &Map<String, Value>,
    name: &'static str,
    missing: fn(&'static str) -> JwkError,
) -> Result<Zeroizing<[u8; N]>, JwkError> {
    let bytes = bytes_member(jwk, name, missing)?;
    let mut out = Zeroizing::new([0u8; N]);
    let start = N.checked_sub(bytes.len()).ok_or(JwkError::WrongLength {
        member: name,
        expected: N,
        found: bytes.len(),
    })?;
    if let Some(tail) = out.get_mut(start..) {
        tail.copy_from_slice(&bytes);
    }
    Ok(out)
}

/// The uncompressed SEC1 point `04 || x || y` of an EC JWK.
pub(crate) fn ec_point(jwk: &Map<String, Value>) -> Result<Vec<u8>, JwkError> {
    let x = fixed_member::<P256_LEN>(jwk, "x", JwkError::MissingMember)?;
    let y = fixed_member::<P256_LEN>(jwk, "y", JwkError::MissingMember)?;
    let mut point = Vec::with_capacity(1 + 2 * P256_LEN);
    point.push(0x04);
    point.extend_from_slice(x.as_slice());
    point.extend_from_slice(y.as_slice());
    Ok(point)
}

/// `x` of an OKP Ed25519 JWK: exactly 32 octets (RFC 8037 §2), never padded.
pub(crate) fn ed25519_public(jwk: &Map<String, Value>) -> Result<Vec<u8>, JwkError> {
    exact_member(jwk, "x", JwkError::MissingMember).map(|x| x.to_vec())
}

/// A base64url member that must decode to exactly [`ED25519_LEN`] octets.
pub(crate) fn exact_member(
    jwk: &Map<String, Value>,
    name: &'static str,
    missing: fn(&'static str) -> JwkError,
) -> Result<Zeroizing<Vec<u8>>, JwkError> {
    let bytes = bytes_member(jwk, name, missing)?;
    if bytes.len() != ED25519_LEN {
        return Err(JwkError::WrongLength {
            member: name,
            expected: ED25519_LEN,
            found: bytes.len(),
        });
    }
    Ok(bytes)
}

/// `n` and `e` of an RSA JWK, without leading zero octets, with the modulus size checked.
pub(crate) fn rsa_public(jwk: &Map<String, Value>) -> Result<(Vec<u8>, Vec<u8>), JwkError> {
    let n = bytes_member(jwk, "n", JwkError::MissingMember)?;
    let e = bytes_member(jwk, "e", JwkError::MissingMember)?;
    let n = strip_leading_zeros(&n).to_vec();
    let e = strip_leading_zeros(&e).to_vec();
    let bits = bit_length(&n);
    if !(2048..=8192).contains(&bits) {
        return Err(JwkError::RsaModulusSize(bits));
    }
    if e.is_empty() {
        return Err(JwkError::InvalidPublicKey);
    }
    Ok((n, e))
}

pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// Bit length of a big-endian unsigned integer without leading zero octets.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(&top) => (bytes.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
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

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    #[test]
    fn rfc7638_section_3_1_example() {
        let jwk = object(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }));
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let (n, e) = rsa_public(&jwk).unwrap();
        assert_eq!(
            PublicMembers::from_rsa(&n, &e).thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn thumbprint_needs_the_required_members() {
        assert_eq!(
            jwk_thumbprint(&object(json!({"kty": "EC", "crv": "P-256", "x": "AA"}))),
            Err(JwkError::MissingMember("y"))
        );
        assert!(matches!(
            jwk_thumbprint(&object(json!({"kty": "XYZ"}))),
            Err(JwkError::UnsupportedKeyType(_))
        ));
    }

    #[test]
    fn classify_infers_and_checks_alg() {
        let ec = json!({"kty": "EC", "crv": "P-256"});
        assert_eq!(classify(&object(ec)).unwrap().alg, Algorithm::Es256);
        assert_eq!(
            classify(&object(json!({"kty": "RSA"}))).unwrap().alg,
            Algorithm::Rs256
        );
        assert_eq!(
            classify(&object(
                json!({"kty": "EC", "crv": "P-256", "alg": "RS256"})
            )),
            Err(JwkError::AlgorithmKeyTypeMismatch {
                alg: Algorithm::Rs256,
                kty: "EC"
            })
        );
        assert!(matches!(
            classify(&object(json!({"kty": "RSA", "alg": "PS256"}))),
            Err(JwkError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            classify(&object(json!({"kty": "EC", "crv": "P-384"}))),
            Err(JwkError::UnsupportedCurve(_))
        ));
        assert!(matches!(
            classify(&object(json!({"kty": "RSA", "use": "enc"}))),
            Err(JwkError::NotForSignatures(_))
        ));
        assert_eq!(
            classify(&object(json!({"kty": "oct", "k": "AAAA"}))),
            Err(JwkError::SymmetricKey)
        );
        assert_eq!(
            classify(&object(json!({"kty": 1}))),
            Err(JwkError::NotAString("kty"))
        );
    }

    #[test]
    fn fixed_members_are_left_padded_but_never_truncated() {
        let jwk = object(json!({"x": b64url([1u8; 31]), "y": b64url([1u8; 33])}));
        let x = fixed_member::<32>(&jwk, "x", JwkError::MissingMember).unwrap();
        assert_eq!(x[0], 0);
        assert_eq!(x[1], 1);
        assert_eq!(
            fixed_member::<32>(&jwk, "y", JwkError::MissingMember),
            Err(JwkError::WrongLength {
                member: "y",
                expected: 32,
                found: 33
            })
        );
    }

    #[test]
    fn bit_length_and_leading_zeros() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), &[1, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), &[] as &[u8]);
    }
}
