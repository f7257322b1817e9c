//! A status list token (draft-ietf-oauth-status-list §4, §5, JWT form), taken apart.

use std::io::Read;
use std::time::Duration;

use flate2::read::ZlibDecoder;
use serde_json::{Map, Value};
use valet_jose::b64url_decode;

/// A decompressed list larger than this (16 MiB, 134 million one-bit entries) is refused:
/// a zip bomb is an error, not an allocation.
pub(crate) const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;

/// The `ttl` is clamped to this range (draft §5.1 lets the relying party bound it).
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(60 * 60);

/// Without a `ttl`, a list is refreshed this often.
const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The status bits, `bits` per token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
}

impl StatusList {
    /// `lst` is base64url of the ZLIB (RFC 1950) compressed bytes; `bits` is 1, 2, 4 or 8
    /// (draft §4.1).
    pub(crate) fn decode(bits: u64, lst: &str) -> Result<StatusList, ListError> {
        let bits = match bits {
            1 | 2 | 4 | 8 => bits as u8,
            _ => return Err(ListError::Bits),
        };
        let compressed = b64url_decode(lst).map_err(|_| ListError::Encoding)?;
        let mut bytes = Vec::new();
        ZlibDecoder::new(compressed.as_slice())
            .take(MAX_LIST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| ListError::Compression)?;
        if bytes.len() > MAX_LIST_BYTES {
            return Err(ListError::TooLarge);
        }
        Ok(StatusList { bits, bytes })
    }

    /// The status of index `idx` (draft §4.1: byte `idx * bits / 8`, starting at bit
    /// `(idx * bits) % 8` counted from the least significant); `None` beyond the list.
    pub(crate) fn status(&self, idx: u64) -> Option<u8> {
        let bits = u64::from(self.bits);
        let position = idx.checked_mul(bits)?;
        let byte = *self.bytes.get(usize::try_from(position / 8).ok()?)?;
        let mask = u8::MAX >> (8 - self.bits);
        Some((byte >> (position % 8)) & mask)
    }
}

/// A verified status list token's claims, checked.
#[derive(Debug)]
pub(crate) struct ListToken {
    pub(crate) list: StatusList,
    pub(crate) exp: Option<i64>,
    /// `ttl` clamped to 1 s ..= 1 h.
    pub(crate) ttl: Duration,
}

/// Checks the claims of a signature-verified `statuslist+jwt` (draft §5.1): `sub` is the
/// `uri` it was fetched from, `iss` the issuer, `iat` present, `exp` (if present) not past
/// (with leeway), `ttl` (if present) a non-negative integer, `status_list` well formed.
pub(crate) fn check_list_claims(
    claims: &Map<String, Value>,
    uri: &str,
    issuer: &str,
    now: i64,
    leeway: i64,
) -> Result<ListToken, ListError> {
    if claims.get("sub").and_then(Value::as_str) != Some(uri) {
        return Err(ListError::Claim("sub"));
    }
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(ListError::Claim("iss"));
    }
    if !claims.get("iat").is_some_and(Value::is_number) {
        return Err(ListError::Claim("iat"));
    }
    let exp = match claims.get("exp") {
        None => None,
        Some(exp) => Some(exp.as_i64().ok_or(ListError::Claim("exp"))?),
    };
    if exp.is_some_and(|exp| now >= exp.saturating_add(leeway)) {
        return Err(ListError::Expired);
    }
    let ttl = match claims.get("ttl") {
        None => DEFAULT_TTL,
        Some(ttl) => Duration::from_secs(ttl.as_u64().ok_or(ListError::Claim("ttl"))?),
    }
    .clamp(MIN_TTL, MAX_TTL);
    let status_list = claims
        .get("status_list")
        .and_then(Value::as_object)
        .ok_or(ListError::Claim("status_list"))?;
    let bits = status_list
        .get("bits")
        .and_then(Value::as_u64)
        .ok_or(ListError::Bits)?;
    let lst = status_list
        .get("lst")
        .and_then(Value::as_str)
        .ok_or(ListError::Claim("lst"))?;
    Ok(ListToken {
        list: StatusList::decode(bits, lst)?,
        exp,
        ttl,
    })
}

/// Why a status list token was refused; for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ListError {
    #[error("claim {0} is missing or wrong")]
    Claim(&'static str),
    #[error("the list has expired")]
    Expired,
    #[error("bits must be 1, 2, 4 or 8")]
    Bits,
    #[error("lst is not base64url")]
    Encoding,
    #[error("lst is not valid ZLIB data")]
    Compression,
    #[error("the decompressed list exceeds {MAX_LIST_BYTES} bytes")]
    TooLarge,
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;
    use serde_json::json;
    use valet_jose::b64url;

    use super::*;

    fn lst(bytes: &[u8]) -> String {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        b64url(encoder.finish().unwrap())
    }

    /// draft-ietf-oauth-status-list §4.1, the 1-bit example: statuses
    /// 1 0 0 1 1 1 0 1 / 1 1 0 0 0 1 0 1 for indices 0..16, that is bytes B9 A3.
    #[test]
    fn one_bit_example_of_the_draft() {
        let list = StatusList::decode(1, "eNrbuRgAAhcBXQ").unwrap();
        let expected = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
        for (idx, status) in expected.into_iter().enumerate() {
            assert_eq!(list.status(idx as u64), Some(status), "index {idx}");
        }
        assert_eq!(list.status(16), None);
        assert_eq!(list.status(u64::MAX), None);
    }

    /// The draft's 2-bit example: statuses 1 2 0 3 0 1 0 1 1 2 3 3 → bytes C9 44 F9.
    #[test]
    fn two_bit_example_of_the_draft() {
        let list = StatusList::decode(2, "eNo76fITAAPfAgc").unwrap();
        let expected = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3];
        for (idx, status) in expected.into_iter().enumerate() {
            assert_eq!(list.status(idx as u64), Some(status), "index {idx}");
        }
    }

    #[test]
    fn wider_entries() {
        let list = StatusList::decode(4, &lst(&[0x21, 0xf0])).unwrap();
        assert_eq!(
            (0..4).map(|i| list.status(i).unwrap()).collect::<Vec<_>>(),
            [1, 2, 0, 15]
        );
        let list = StatusList::decode(8, &lst(&[0, 7])).unwrap();
        assert_eq!(
            (list.status(0), list.status(1), list.status(2)),
            (Some(0), Some(7), None)
        );
    }

    #[test]
    fn bad_lists_are_errors() {
        for bits in [0, 3, 16, u64::MAX] {
            assert_eq!(
                StatusList::decode(bits, &lst(&[0])).unwrap_err(),
                ListError::Bits
            );
        }
        assert_eq!(
            StatusList::decode(1, "!!").unwrap_err(),
            ListError::Encoding
        );
        assert_eq!(
            StatusList::decode(1, &b64url(b"plain")).unwrap_err(),
            ListError::Compression
        );
        let mut truncated = lst(&[0; 100]);
        truncated.truncate(8);
        assert!(StatusList::decode(1, &truncated).is_err());
    }

    #[test]
    fn zip_bomb_is_refused() {
        let bomb = lst(&vec![0u8; MAX_LIST_BYTES + 1]);
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        assert_eq!(
            StatusList::decode(1, &bomb).unwrap_err(),
            ListError::TooLarge
        );
        assert!(StatusList::decode(1, &lst(&vec![0u8; MAX_LIST_BYTES])).is_ok());
    }

    #[test]
    fn list_claims() {
        let uri = "https://id.example/statuslists/0";
        let claims = |f: &dyn Fn(&mut Value)| {
            let mut claims = json!({
                "iss": "https://id.example", "sub": uri, "iat": 100, "exp": 1000, "ttl": 30,
                "status_list": {"bits": 1, "lst": lst(&[0b10])},
            });
            f(&mut claims);
            check_list_claims(
                claims.as_object().unwrap(),
                uri,
                "https://id.example",
                500,
                30,
            )
        };
        let ok = claims(&|_| {}).unwrap();
        assert_eq!(ok.ttl, Duration::from_secs(30));
        assert_eq!(ok.exp, Some(1000));
        assert_eq!(ok.list.status(1), Some(1));
        assert_eq!(claims(&|c| c["ttl"] = json!(0)).unwrap().ttl, MIN_TTL);
        assert_eq!(
            claims(&|c| c["ttl"] = json!(1e9 as u64)).unwrap().ttl,
            MAX_TTL
        );
        assert_eq!(
            claims(&|c| {
                c.as_object_mut().unwrap().remove("ttl");
            })
            .unwrap()
            .ttl,
            DEFAULT_TTL
        );
        assert_eq!(
            claims(&|c| c["sub"] = json!("https://id.example/statuslists/1")).unwrap_err(),
            ListError::Claim("sub")
        );
        assert_eq!(
            claims(&|c| c["iss"] = json!("https://evil.example")).unwrap_err(),
            ListError::Claim("iss")
        );
        assert_eq!(
            claims(&|c| {
                c.as_object_mut().unwrap().remove("iat");
            })
            .unwrap_err(),
            ListError::Claim("iat")
        );
        assert_eq!(
            claims(&|c| c["exp"] = json!(470)).unwrap_err(),
            ListError::Expired
        );
        assert!(claims(&|c| c["exp"] = json!(471)).is_ok());
        assert_eq!(
            claims(&|c| c["ttl"] = json!(-1)).unwrap_err(),
            ListError::Claim("ttl")
        );
        assert_eq!(
            claims(&|c| c["status_list"] = json!("x")).unwrap_err(),
            ListError::Claim("status_list")
        );
        assert_eq!(
            claims(&|c| c["status_list"]["bits"] = json!(3)).unwrap_err(),
            ListError::Bits
        );
    }
}
