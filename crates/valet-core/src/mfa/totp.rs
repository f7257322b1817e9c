//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1,
//! six digits, 30-second steps, one step of drift either way accepted. The
//! secret (20 random bytes, RFC 4226 §4 R6) is shown once as an `otpauth://`
//! URI and in base32, and kept sealed under a key derived from the master key
//! for this purpose only, bound to its user.

use aws_lc_rs::hmac;
use valet_jose::{MasterKey, constant_time_eq, random_bytes};
use zeroize::Zeroizing;

use crate::error::OAuthError;

/// RFC 6238 §4.1: X, the step in seconds.
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code (RFC 4226 §5.3).
pub const DIGITS: usize = 6;
/// Steps of clock drift accepted either way (RFC 6238 §5.2 recommends at most one).
const DRIFT_STEPS: i64 = 1;
/// The length of a new secret: 160 bits, HMAC-SHA-1's output (RFC 4226 §4 R6).
pub const SECRET_LEN: usize = 20;
/// The purpose the sealing key is derived for.
const SEAL_PURPOSE: &[u8] = b"valet totp secret v1";

/// A new random secret.
pub fn new_secret() -> Result<Zeroizing<Vec<u8>>, OAuthError> {
    random_bytes::<SECRET_LEN>()
        .map(|bytes| Zeroizing::new(bytes.to_vec()))
        .map_err(OAuthError::server)
}

/// The time step `now` falls in (RFC 6238 §4.2, T0 = 0).
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP_SECONDS)
}

/// The code for `step` (RFC 4226 §5.3 dynamic truncation, six digits).
pub fn code_at(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or_default() & 0x0f);
    let mut word = [0u8; 4];
    if let Some(bytes) = mac.get(offset..offset + 4) {
        word.copy_from_slice(bytes);
    }
    let value = u32::from_be_bytes(word) & 0x7fff_ffff;
    format!("{:06}", value % 1_000_000)
}

/// The step whose code `code` is, within the accepted drift of `now`, later
/// than `after` (the last step accepted: a code is good once). Every candidate
/// is compared, in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: i64, after: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut found = None;
    for step in current.saturating_sub(DRIFT_STEPS)..=current.saturating_add(DRIFT_STEPS) {
        let matches = constant_time_eq(code_at(secret, step).as_bytes(), code.as_bytes());
        if matches && after.is_none_or(|last| step > last) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 §6 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = ((buffer >> bits) & 0x1f) as usize;
            out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
        }
    }
    if bits > 0 {
        let index = ((buffer << (5 - bits)) & 0x1f) as usize;
        out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
    }
    out
}

/// The Key URI authenticator apps read from the QR code:
/// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(issuer_label: &str, account: &str, secret: &[u8]) -> String {
    let label = format!(
        "{}:{}",
        percent_encode(issuer_label),
        percent_encode(account)
    );
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        base32(secret),
        percent_encode(issuer_label),
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Seals `secret` for `user_id` (the user id is bound as associated data, so
/// a sealed secret copied to another user's row does not open).
pub fn seal(master: &MasterKey, user_id: &str, secret: &[u8]) -> Result<Vec<u8>, OAuthError> {
    master
        .derive(SEAL_PURPOSE)
        .and_then(|key| key.seal(user_id.as_bytes(), secret))
        .map_err(OAuthError::server)
}

/// Opens what [`seal`] sealed for `user_id`.
pub fn open(
    master: &MasterKey,
    user_id: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OAuthError> {
    master
        .derive(SEAL_PURPOSE)
        .and_then(|key| key.open(user_id.as_bytes(), sealed))
        .map_err(OAuthError::server)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows, last six digits.
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(secret, step_at(time)), code, "T = {time}");
        }
    }

    #[test]
    fn one_step_of_drift_and_no_step_twice() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let step = step_at(now);
        let code = code_at(secret, step - 1);
        assert_eq!(matching_step(secret, &code, now, None), Some(step - 1));
        assert_eq!(matching_step(secret, &code, now, Some(step - 1)), None);
        let old = code_at(secret, step - 2);
        assert_eq!(matching_step(secret, &old, now, None), None);
        let ahead = code_at(secret, step + 1);
        assert_eq!(
            matching_step(secret, &ahead, now, Some(step)),
            Some(step + 1)
        );
        assert_eq!(matching_step(secret, "12345", now, None), None);
        assert_eq!(matching_step(secret, "abcdef", now, None), None);
    }

    #[test]
    fn base32_and_uri() {
        // RFC 4648 §10.
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(
            otpauth_uri("Valet id", "alice@example.com", b"12345678901234567890"),
            "otpauth://totp/Valet%20id:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Valet%20id&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn sealed_for_one_user() {
        let master = MasterKey::generate().unwrap();
        let sealed = seal(&master, "alice", b"secret").unwrap();
        assert_eq!(
            open(&master, "alice", &sealed).unwrap().as_slice(),
            b"secret"
        );
        assert!(open(&master, "bob", &sealed).is_err());
    }
}
