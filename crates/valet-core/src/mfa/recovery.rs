//! Recovery codes: ten single-use codes shown once at enrolment, for when the
//! authenticator is lost. Each carries 80 random bits (16 characters of a
//! 32-letter alphabet without look-alikes, shown in groups of four), so the
//! store keeps only a SHA-256 bound to the user: a database dump yields no
//! usable code.

use valet_jose::{random_bytes, sha256};
use zeroize::Zeroizing;

use crate::error::OAuthError;

/// Codes made at each enrolment or regeneration.
pub const COUNT: usize = 10;
/// Characters of a code, without the dashes.
const LEN: usize = 16;
/// Crockford-style: no I, L, O, U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// [`COUNT`] new codes, formatted `XXXX-XXXX-XXXX-XXXX`.
pub fn generate() -> Result<Zeroizing<Vec<String>>, OAuthError> {
    let mut codes = Zeroizing::new(Vec::with_capacity(COUNT));
    for _ in 0..COUNT {
        let bytes = Zeroizing::new(random_bytes::<LEN>().map_err(OAuthError::server)?);
        let mut code = String::with_capacity(LEN + 3);
        for (i, byte) in bytes.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                code.push('-');
            }
            let index = usize::from(byte & 0x1f);
            code.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'0')));
        }
        codes.push(code);
    }
    Ok(codes)
}

/// The code as the store compares it: dashes and spaces dropped, upper case,
/// and the look-alikes read as the digits they stand for; `None` if it cannot
/// be a code.
pub fn normalize(entered: &str) -> Option<String> {
    let code: String = entered
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    (code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// What the store keeps of `code` (normalized) for `user_id`.
pub fn hash(user_id: &str, code: &str) -> Vec<u8> {
    let mut input = Zeroizing::new(Vec::with_capacity(64));
    input.extend_from_slice(b"valet recovery code v1\0");
    input.extend_from_slice(user_id.as_bytes());
    input.push(0);
    input.extend_from_slice(code.as_bytes());
    sha256(&input).to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalize_and_hash_per_user() {
        let codes = generate().unwrap();
        assert_eq!(codes.len(), COUNT);
        let first = codes.first().unwrap();
        assert_eq!(first.len(), 19);
        let normal = normalize(first).unwrap();
        assert_eq!(normalize(&first.to_lowercase()), Some(normal.clone()));
        assert_eq!(normalize(&first.replace('-', " ")), Some(normal.clone()));
        assert_ne!(hash("alice", &normal), hash("bob", &normal));
        assert_eq!(normalize("too-short"), None);
        assert_eq!(normalize("UUUU-UUUU-UUUU-UUUU"), None);
    }
}
