//! Bearer tokens presented to a protected resource (RFC 6750): Valet's UserInfo
//! endpoint and its status event stream.

/// RFC 6750 §2.1: the token of an `Authorization: Bearer <token>` header (the
/// scheme compared case-insensitively); `None` without a header, with another
/// scheme, or with an empty token.
pub fn bearer_token(authorization: Option<&[u8]>) -> Option<&str> {
    let text = std::str::from_utf8(authorization?).ok()?;
    let (scheme, token) = text.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_nonempty_bearer_credential_is_a_token() {
        assert_eq!(bearer_token(Some(b"Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer_token(Some(b"bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(None), None);
        assert_eq!(bearer_token(Some(b"Basic YTpi")), None);
        assert_eq!(bearer_token(Some(b"Bearer ")), None);
        assert_eq!(bearer_token(Some(b"Bearer")), None);
        assert_eq!(bearer_token(Some(b"Bearer \xff")), None);
    }
}
