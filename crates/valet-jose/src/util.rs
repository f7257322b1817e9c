//! Small primitives other crates need, so that they do not reach into aws-lc-rs or base64.

use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::JoseError;

/// `N` bytes from aws-lc-rs's system RNG (the only randomness Valet uses for secrets).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], JoseError> {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes).map_err(|_| JoseError::Random)?;
    Ok(bytes)
}

/// SHA-256 of `data` (FIPS 180-4).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    // SHA-256 output is always 32 bytes, so the lengths match.
    out.copy_from_slice(digest.as_ref());
    out
}

/// Whether `a == b`, in time independent of their contents (not of their lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// Unpadded base64url (RFC 4648 §5; RFC 7515 §2 "Base64url Encoding").
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes strict unpadded base64url: no padding, no whitespace, no standard alphabet,
/// no non-zero trailing bits, so every value has exactly one encoding.
pub fn b64url_decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| JoseError::Base64)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes::<32>().unwrap();
        let b = random_bytes::<32>().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn sha256_known_answer() {
        // FIPS 180-2 appendix B.1 ("abc").
        assert_eq!(
            b64url(sha256(b"abc")),
            b64url([
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad
            ])
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn b64url_is_strict() {
        assert_eq!(b64url([0xfb, 0xff]), "-_8");
        assert_eq!(b64url_decode("-_8").unwrap(), vec![0xfb, 0xff]);
        for bad in ["-_8=", "+/8", "-_ 8", "-_9", "a"] {
            assert!(b64url_decode(bad).is_err(), "{bad}");
        }
    }
}
