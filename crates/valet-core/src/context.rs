//! What every request carries into the core: the time, read once; the client's
//! address; the request's id; and the language it is answered in. The HTTP layer builds one per request and the
//! endpoints take it instead of reading the clock or the peer themselves, so one
//! request sees one instant (a code issued and its expiry agree) and every log
//! and audit line of a request can name it.

use std::fmt;
use std::net::IpAddr;

/// The per-request facts an endpoint needs besides its parameters.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    /// Unix seconds, from the server's [`Clock`](crate::Clock), read once.
    pub now: i64,
    /// The client's address (behind trusted proxies, the forwarded one); `None`
    /// when the server does not know the peer.
    pub address: Option<IpAddr>,
    pub id: RequestId,
    /// The language the request is answered in (its pages'), so mail it
    /// causes, written later by the outbox sender, speaks it too; `None`
    /// outside a page request (the default language then).
    pub locale: Option<LanguageTag>,
}

/// Longest language tag kept: RFC 5646 §4.4.1 asks to support at least 35
/// characters; a longer one is not kept (the default language is used).
pub const MAX_LANGUAGE_TAG_LEN: usize = 35;

/// A language tag (`de`, `pt-br`) held inline, so [`RequestContext`] stays
/// `Copy`. Letters, digits and hyphens only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LanguageTag {
    bytes: [u8; MAX_LANGUAGE_TAG_LEN],
    len: u8,
}

impl LanguageTag {
    /// `tag` if it is 1 to [`MAX_LANGUAGE_TAG_LEN`] ASCII letters, digits and hyphens.
    pub fn parse(tag: &str) -> Option<Self> {
        let value = tag.as_bytes();
        let fits = (1..=MAX_LANGUAGE_TAG_LEN).contains(&value.len());
        let plain = value
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-');
        (fits && plain).then(|| {
            let mut bytes = [0; MAX_LANGUAGE_TAG_LEN];
            bytes
                .iter_mut()
                .zip(value)
                .for_each(|(slot, byte)| *slot = *byte);
            Self {
                bytes,
                len: u8::try_from(value.len()).unwrap_or(0),
            }
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `parse`).
        std::str::from_utf8(self.bytes.get(..usize::from(self.len)).unwrap_or_default())
            .unwrap_or_default()
    }
}

impl fmt::Debug for LanguageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LanguageTag({})", self.as_str())
    }
}

/// Longest request id kept: a forwarded one beyond this is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// A request's id: `{process prefix}-{counter}` when Valet made it, or the value
/// a trusted proxy sent. Held inline (no allocation) and printable ASCII only,
/// so it is safe in a header, a log line and an audit record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    bytes: [u8; MAX_REQUEST_ID_LEN],
    len: u8,
}

impl RequestId {
    /// `value` if it is 1 to [`MAX_REQUEST_ID_LEN`] bytes of letters, digits
    /// and `-._:`; anything else could smuggle text into a log or a header.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let fits = (1..=MAX_REQUEST_ID_LEN).contains(&value.len());
        let plain = value
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._:".contains(byte));
        (fits && plain).then(|| {
            let mut bytes = [0; MAX_REQUEST_ID_LEN];
            bytes
                .iter_mut()
                .zip(value)
                .for_each(|(slot, byte)| *slot = *byte);
            Self {
                bytes,
                len: u8::try_from(value.len()).unwrap_or(0),
            }
        })
    }

    /// `{prefix}-{counter in hex}`: `prefix` is per process, the counter per
    /// request, so ids are unique across nodes without a random draw per request.
    pub fn sequential(prefix: &[u8; 8], counter: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0; MAX_REQUEST_ID_LEN];
        bytes
            .iter_mut()
            .zip(prefix)
            .for_each(|(slot, byte)| *slot = *byte);
        let mut len = prefix.len();
        if let Some(slot) = bytes.get_mut(len) {
            *slot = b'-';
        }
        len += 1;
        let digits = (u64::BITS - counter.leading_zeros()).div_ceil(4).max(1);
        for digit in (0..digits).rev() {
            let nibble = (counter >> (digit * 4)) & 0xf;
            if let (Some(slot), Some(hex)) = (bytes.get_mut(len), HEX.get(nibble as usize)) {
                *slot = *hex;
            }
            len += 1;
        }
        Self {
            bytes,
            len: u8::try_from(len).unwrap_or(0),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see the constructors).
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_are_prefix_and_hex_counter() {
        assert_eq!(RequestId::sequential(b"abcdefgh", 0).as_str(), "abcdefgh-0");
        assert_eq!(
            RequestId::sequential(b"abcdefgh", 0x1f2e).as_str(),
            "abcdefgh-1f2e"
        );
        assert_eq!(
            RequestId::sequential(b"abcdefgh", u64::MAX).as_str(),
            "abcdefgh-ffffffffffffffff"
        );
    }

    #[test]
    fn language_tags_are_plain_and_short() {
        assert_eq!(
            LanguageTag::parse("de-CH").map(|t| t.as_str().to_owned()),
            Some("de-CH".to_owned())
        );
        for bad in ["", "de CH", "de\r\n", "ü", &"a".repeat(36)] {
            assert!(LanguageTag::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn only_plain_forwarded_ids_are_kept() {
        assert_eq!(
            RequestId::parse(b"lb-01:5f3a.7").map(|id| id.to_string()),
            Some("lb-01:5f3a.7".to_owned())
        );
        for bad in [
            &b""[..],
            b"a b",
            b"a\r\nSet-Cookie: x",
            b"\xff",
            &[b'a'; 65],
        ] {
            assert_eq!(RequestId::parse(bad), None);
        }
    }
}
