//! Encryption of private keys at rest with AES-256-GCM (NIST SP 800-38D) under a master key.
//!
//! Sealed layout: `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The nonce is random for every seal (aws-lc-rs `RandomizedNonceKey`); at 2^32 seals per key
//! the collision probability stays under 2^-32 (SP 800-38D §8.3), far beyond the few keys a
//! server seals. The additional authenticated data is `version || aad`: the caller's `aad`
//! (Valet passes the key's `kid`) binds a blob to its row, and the version byte is
//! authenticated too.

use core::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf;
use base64::Engine;
use base64::engine::general_purpose::{
    STANDARD_PAD_INDIFFERENT, URL_SAFE_NO_PAD, URL_SAFE_PAD_INDIFFERENT,
};
use zeroize::Zeroizing;

use crate::error::JoseError;
use crate::util::random_bytes;

/// Length of a master key in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

const VERSION_AES_256_GCM: u8 = 1;
const TAG_LEN: usize = 16;

/// The 32-byte key that seals signing keys at rest. Zeroized on drop; `Debug` is redacted.
pub struct MasterKey {
    bytes: Zeroizing<[u8; MASTER_KEY_LEN]>,
    aead: RandomizedNonceKey,
}

impl MasterKey {
    /// A new random master key from the system RNG.
    pub fn generate() -> Result<MasterKey, JoseError> {
        let bytes = Zeroizing::new(random_bytes::<MASTER_KEY_LEN>()?);
        MasterKey::from_bytes(bytes.as_slice())
    }

    /// From exactly 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, JoseError> {
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        if bytes.len() != MASTER_KEY_LEN {
            return Err(JoseError::MasterKeyLength);
        }
        key.copy_from_slice(bytes);
        let aead = RandomizedNonceKey::new(&AES_256_GCM, key.as_slice())
            .map_err(|_| JoseError::MasterKeyLength)?;
        Ok(MasterKey { bytes: key, aead })
    }

    /// From text such as a `VALET_MASTER_KEY` value: base64url or standard base64, padded or
    /// not, surrounding whitespace ignored; it must decode to exactly 32 bytes.
    pub fn from_base64url(text: &str) -> Result<MasterKey, JoseError> {
        let text = text.trim();
        let bytes = URL_SAFE_PAD_INDIFFERENT
            .decode(text)
            .or_else(|_| STANDARD_PAD_INDIFFERENT.decode(text))
            .map(Zeroizing::new)
            .map_err(|_| JoseError::MasterKeyEncoding)?;
        MasterKey::from_bytes(&bytes)
    }

    /// The key as unpadded base64url (43 characters), for showing once to an operator.
    pub fn to_base64url(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(self.bytes.as_slice()))
    }

    /// Encrypts and authenticates `plaintext`, binding `aad` (authenticated, not encrypted).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, JoseError> {
        let mut in_out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        in_out.extend_from_slice(plaintext);
        let nonce = self
            .aead
            .seal_in_place_append_tag(Aad::from(full_aad(aad)), &mut in_out)
            .map_err(|_| JoseError::Seal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(VERSION_AES_256_GCM);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts what [`seal`](MasterKey::seal) produced with the same `aad`. A wrong master
    /// key, a wrong `aad` and any modification all fail alike with [`JoseError::Open`].
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        let (&version, rest) = sealed.split_first().ok_or(JoseError::SealedTruncated)?;
        if version != VERSION_AES_256_GCM {
            return Err(JoseError::SealedVersion(version));
        }
        let (nonce, ciphertext) = rest
            .split_at_checked(NONCE_LEN)
            .filter(|(_, ciphertext)| ciphertext.len() >= TAG_LEN)
            .ok_or(JoseError::SealedTruncated)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| JoseError::Open)?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plaintext_len = self
            .aead
            .open_in_place(nonce, Aad::from(full_aad(aad)), &mut in_out)
            .map_err(|_| JoseError::Open)?
            .len();
        in_out.truncate(plaintext_len);
        Ok(in_out)
    }

    /// A key of its own for one `purpose`, derived from this one with HKDF-SHA256
    /// (RFC 5869). What a purpose seals at request rate then draws on its own
    /// nonce budget (SP 800-38D §8.3), and no purpose's blob opens as another's.
    pub fn derive(&self, purpose: &[u8]) -> Result<MasterKey, JoseError> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"valet master key derivation v1");
        let prk = salt.extract(self.bytes.as_slice());
        let info = [purpose];
        let okm = prk
            .expand(&info, hkdf::HKDF_SHA256)
            .map_err(|_| JoseError::Seal)?;
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        okm.fill(bytes.as_mut_slice())
            .map_err(|_| JoseError::Seal)?;
        MasterKey::from_bytes(bytes.as_slice())
    }
}

fn full_aad(aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(1 + aad.len());
    full.push(VERSION_AES_256_GCM);
    full.extend_from_slice(aad);
    full
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
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

    use base64::engine::general_purpose::STANDARD;

    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let key = MasterKey::generate().unwrap();
        for plaintext in [&b""[..], b"x", &[7u8; 1000]] {
            let sealed = key.seal(b"kid-1", plaintext).unwrap();
            assert_eq!(sealed.len(), 1 + 12 + plaintext.len() + 16);
            assert_eq!(sealed[0], 1);
            assert_eq!(key.open(b"kid-1", &sealed).unwrap().as_slice(), plaintext);
        }
    }

    #[test]
    fn derived_keys_are_stable_and_apart() {
        let key = MasterKey::from_bytes(&[9u8; 32]).unwrap();
        let a = key.derive(b"purpose a").unwrap();
        let again = MasterKey::from_bytes(&[9u8; 32])
            .unwrap()
            .derive(b"purpose a")
            .unwrap();
        let b = key.derive(b"purpose b").unwrap();
        let sealed = a.seal(b"", b"hello").unwrap();
        assert_eq!(again.open(b"", &sealed).unwrap().as_slice(), b"hello");
        assert!(b.open(b"", &sealed).is_err());
        assert!(key.open(b"", &sealed).is_err());
        assert_ne!(a.to_base64url(), key.to_base64url());
    }

    #[test]
    fn nonces_are_fresh() {
        let key = MasterKey::generate().unwrap();
        assert_ne!(
            key.seal(b"a", b"same").unwrap(),
            key.seal(b"a", b"same").unwrap()
        );
    }

    #[test]
    fn wrong_key_or_aad_fails() {
        let key = MasterKey::generate().unwrap();
        let other = MasterKey::generate().unwrap();
        let sealed = key.seal(b"kid-1", b"secret").unwrap();
        assert!(matches!(
            other.open(b"kid-1", &sealed),
            Err(JoseError::Open)
        ));
        assert!(matches!(key.open(b"kid-2", &sealed), Err(JoseError::Open)));
        assert!(matches!(key.open(b"", &sealed), Err(JoseError::Open)));
    }

    #[test]
    fn any_flipped_bit_fails() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"kid", b"private key der").unwrap();
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert!(key.open(b"kid", &tampered).is_err(), "byte {i}");
        }
        assert!(matches!(
            key.open(b"kid", &[2u8; 40]),
            Err(JoseError::SealedVersion(2))
        ));
    }

    #[test]
    fn truncated_blobs_fail_without_panicking() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"kid", b"abc").unwrap();
        for len in 0..sealed.len() {
            assert!(key.open(b"kid", &sealed[..len]).is_err(), "len {len}");
        }
        assert!(matches!(
            key.open(b"kid", &[]),
            Err(JoseError::SealedTruncated)
        ));
        assert!(matches!(
            key.open(b"kid", &sealed[..1 + 12 + 15]),
            Err(JoseError::SealedTruncated)
        ));
    }

    #[test]
    fn text_forms_are_accepted() {
        let raw: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(250))
            .collect();
        let key = MasterKey::from_bytes(&raw).unwrap();
        let url = key.to_base64url();
        assert_eq!(url.len(), 43);
        let standard = STANDARD.encode(&raw);
        assert!(standard.contains('+') || standard.contains('/'));
        let sealed = key.seal(b"k", b"p").unwrap();
        for text in [
            url.to_string(),
            format!("{}=", url.as_str()),
            standard.clone(),
            standard.trim_end_matches('=').to_owned(),
            format!("  {}\n", url.as_str()),
        ] {
            let parsed = MasterKey::from_base64url(&text).unwrap();
            assert_eq!(parsed.to_base64url(), url, "{text}");
            assert_eq!(parsed.open(b"k", &sealed).unwrap().as_slice(), b"p");
        }
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(
            MasterKey::from_bytes(&[0; 31]),
            Err(JoseError::MasterKeyLength)
        ));
        assert!(matches!(
            MasterKey::from_bytes(&[0; 33]),
            Err(JoseError::MasterKeyLength)
        ));
        assert!(matches!(
            MasterKey::from_base64url(&URL_SAFE_NO_PAD.encode([0u8; 16])),
            Err(JoseError::MasterKeyLength)
        ));
        assert!(matches!(
            MasterKey::from_base64url("not base64 at all!"),
            Err(JoseError::MasterKeyEncoding)
        ));
        assert!(matches!(
            MasterKey::from_base64url(""),
            Err(JoseError::MasterKeyLength)
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::generate().unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, "MasterKey([redacted])");
        assert!(!shown.contains(key.to_base64url().as_str()));
    }
}
