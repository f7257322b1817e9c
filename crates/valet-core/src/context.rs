//! What every request carries into the core: the time, read once; the client's
//! address; and the request's id. The HTTP layer builds one per request and the
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
