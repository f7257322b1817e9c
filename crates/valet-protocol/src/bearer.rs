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

/// The scheme an access token was presented with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750 §2.1.
    Bearer,
    /// RFC 9449 §7.1: a DPoP-bound token, with a proof in the `DPoP` header.
    Dpop,
}

/// The token of an `Authorization: Bearer <token>` or `Authorization: DPoP <token>`
/// header (schemes compared case-insensitively) and which scheme it came with.
pub fn access_token(authorization: Option<&[u8]>) -> Option<(Scheme, &str)> {
    let text = std::str::from_utf8(authorization?).ok()?;
    let (scheme, token) = text.trim().split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return None;
    };
    let token = token.trim();
    (!token.is_empty()).then_some((scheme, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpop_and_bearer_schemes_are_told_apart() {
        assert_eq!(access_token(Some(b"DPoP abc")), Some((Scheme::Dpop, "abc")));
        assert_eq!(
            access_token(Some(b"bearer abc")),
            Some((Scheme::Bearer, "abc"))
        );
        assert_eq!(access_token(Some(b"DPoP ")), None);
        assert_eq!(access_token(Some(b"Basic abc")), None);
    }

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
