//! Encryption of private keys at rest with AES-256-GCM (NIST SP 800-38D) under a master key.
//!
//! Sealed layout: `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The nonce is random for every seal (aws-lc-rs `RandomizedNonceKey`), so one key may seal at
//! most about 2^32 values before the chance of a repeated nonce passes 2^-32 (SP 800-38D
//! §8.3), and a repeated nonce under GCM gives away the authentication key (forgeries). The
//! master key itself seals only the signing keys at rest (a few per rotation). What is sealed
//! at request rate (authorization requests carried by the browser, refresh successors kept for
//! a grace window) is sealed by [`PeriodKeys`]: a key derived per purpose *and per period*, so
//! no key's seal count grows with the life of a store. The additional authenticated data is
//! `version || aad`: the caller's `aad` (Valet passes the key's `kid`) binds a blob to its
//! row, and the version byte is authenticated too.

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
        self.expand(&[purpose])
    }

    /// The key of `purpose` for one `period` (see [`PeriodKeys`]): HKDF-SHA256
    /// with `purpose || 0x00 || "period" || period (8 bytes, big-endian)` as the
    /// info, so every period has a key of its own, apart from [`Self::derive`]'s.
    pub fn derive_for_period(&self, purpose: &[u8], period: u64) -> Result<MasterKey, JoseError> {
        let period = period.to_be_bytes();
        self.expand(&[purpose, b"\0period", &period])
    }

    /// HKDF-SHA256 (RFC 5869) of this key with `info`, as a key of its own.
    fn expand(&self, info: &[&[u8]]) -> Result<MasterKey, JoseError> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"valet master key derivation v1");
        let prk = salt.extract(self.bytes.as_slice());
        let okm = prk
            .expand(info, hkdf::HKDF_SHA256)
            .map_err(|_| JoseError::Seal)?;
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        okm.fill(bytes.as_mut_slice())
            .map_err(|_| JoseError::Seal)?;
        MasterKey::from_bytes(bytes.as_slice())
    }
}

/// Seals values of one purpose under a key derived for the current period of
/// `period_seconds` (a period is `now / period_seconds`), and opens values
/// sealed in the current or the previous period: a value sealed just before a
/// boundary still opens, one two periods old does not. Each period's key seals
/// only what that period's traffic seals, which keeps it far below the 2^32
/// random-nonce bound of SP 800-38D §8.3 whatever the life of the store.
///
/// Sealed layout: `period (8 bytes, big-endian) || MasterKey::seal output`. The
/// period is carried rather than found by trying both keys, so a value names its
/// key, an opening costs one AES-GCM check (a forged value too), and a value of
/// an older period is refused before any cryptography; it is bound to the
/// ciphertext as part of the additional authenticated data. A key is derived per
/// call (HKDF-SHA256 and an AES key schedule: microseconds, no lock).
#[derive(Debug)]
pub struct PeriodKeys {
    master: std::sync::Arc<MasterKey>,
    purpose: &'static [u8],
    period_seconds: i64,
}

const PERIOD_LEN: usize = 8;

impl PeriodKeys {
    /// Keys for `purpose`, one per `period_seconds` (at least one second).
    pub fn new(
        master: std::sync::Arc<MasterKey>,
        purpose: &'static [u8],
        period_seconds: i64,
    ) -> Self {
        Self {
            master,
            purpose,
            period_seconds: period_seconds.max(1),
        }
    }

    /// The period `now` (Unix seconds) falls in.
    pub fn period(&self, now: i64) -> u64 {
        u64::try_from(now.div_euclid(self.period_seconds)).unwrap_or(0)
    }

    /// The key of one period (for tests and diagnostics; [`Self::seal`] and
    /// [`Self::open`] pick it).
    pub fn key(&self, period: u64) -> Result<MasterKey, JoseError> {
        self.master.derive_for_period(self.purpose, period)
    }

    /// Seals `plaintext` under the key of `now`'s period, binding `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8], now: i64) -> Result<Vec<u8>, JoseError> {
        let current = self.period(now);
        let period = current.to_be_bytes();
        let sealed = self
            .key(current)?
            .seal(&period_aad(&period, aad), plaintext)?;
        let mut out = Vec::with_capacity(PERIOD_LEN + sealed.len());
        out.extend_from_slice(&period);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Self::seal`] sealed with the same `aad` in `now`'s period
    /// or the one before; anything else fails with [`JoseError::Open`].
    pub fn open(
        &self,
        aad: &[u8],
        sealed: &[u8],
        now: i64,
    ) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        let (period, rest) = sealed
            .split_first_chunk::<PERIOD_LEN>()
            .ok_or(JoseError::SealedTruncated)?;
        let value = u64::from_be_bytes(*period);
        let current = self.period(now);
        if value != current && Some(value) != current.checked_sub(1) {
            return Err(JoseError::Open);
        }
        self.key(value)?.open(&period_aad(period, aad), rest)
    }
}

fn period_aad(period: &[u8; PERIOD_LEN], aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(PERIOD_LEN + aad.len());
    full.extend_from_slice(period);
    full.extend_from_slice(aad);
    full
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
    fn keys_for_different_periods_differ() {
        let key = MasterKey::from_bytes(&[9u8; 32]).unwrap();
        let first = key.derive_for_period(b"purpose a", 7).unwrap();
        let next = key.derive_for_period(b"purpose a", 8).unwrap();
        let other = key.derive_for_period(b"purpose b", 7).unwrap();
        let plain = key.derive(b"purpose a").unwrap();
        let again = MasterKey::from_bytes(&[9u8; 32])
            .unwrap()
            .derive_for_period(b"purpose a", 7)
            .unwrap();
        assert_eq!(first.to_base64url(), again.to_base64url());
        for different in [&next, &other, &plain, &key] {
            assert_ne!(first.to_base64url(), different.to_base64url());
        }
        let keys = PeriodKeys::new(std::sync::Arc::new(key), b"purpose a", 3600);
        assert_eq!(keys.period(7 * 3600), 7);
        assert_eq!(keys.period(8 * 3600 - 1), 7);
        assert_eq!(keys.key(7).unwrap().to_base64url(), first.to_base64url());
    }

    #[test]
    fn a_period_sealed_value_opens_in_the_next_period_not_two_later() {
        let keys = PeriodKeys::new(
            std::sync::Arc::new(MasterKey::generate().unwrap()),
            b"p",
            3600,
        );
        let t0 = 1_800_000_000 / 3600 * 3600;
        // Sealed in the last second of a period.
        let sealed = keys.seal(b"aad", b"request", t0 + 3599).unwrap();
        assert_eq!(sealed[..8], keys.period(t0).to_be_bytes());
        assert_eq!(
            keys.open(b"aad", &sealed, t0 + 3599).unwrap().as_slice(),
            b"request"
        );
        // The next period: still opens.
        assert_eq!(
            keys.open(b"aad", &sealed, t0 + 3600).unwrap().as_slice(),
            b"request"
        );
        assert_eq!(
            keys.open(b"aad", &sealed, t0 + 7199).unwrap().as_slice(),
            b"request"
        );
        // Two periods later: refused.
        assert!(matches!(
            keys.open(b"aad", &sealed, t0 + 7200),
            Err(JoseError::Open)
        ));
        // Before its period (a clock gone back, a forged header): refused.
        assert!(matches!(
            keys.open(b"aad", &sealed, t0 - 1),
            Err(JoseError::Open)
        ));
        // A different aad, or the period in the header changed: refused.
        assert!(keys.open(b"other", &sealed, t0).is_err());
        let mut moved = sealed.clone();
        moved[7] ^= 1;
        assert!(keys.open(b"aad", &moved, t0 + 3600).is_err());
        // Keys of another period or the plain derivation do not open it.
        assert!(
            keys.key(keys.period(t0) + 1)
                .unwrap()
                .open(b"aad", &sealed[8..])
                .is_err()
        );
        // Too short to hold a period.
        assert!(matches!(
            keys.open(b"aad", &sealed[..5], t0),
            Err(JoseError::SealedTruncated)
        ));
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
