//! Scope policy (RFC 6749 §3.3).

use valet_protocol::{ErrorCode, Scope};

use crate::error::OAuthError;

/// The scope to grant: what was asked if the client may have all of it, or, when
/// nothing was asked, everything the client is registered for (the documented
/// default RFC 6749 §3.3 allows).
pub fn resolve(requested: Option<&Scope>, allowed: &[String]) -> Result<Scope, OAuthError> {
    let allowed = Scope::from_tokens(allowed.iter().map(String::as_str))
        .map_err(|_| OAuthError::server("a registered scope is not a valid scope token"))?;
    match requested {
        None => Ok(allowed),
        Some(requested) if requested.is_subset_of(&allowed) => Ok(requested.clone()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope registered for this client",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(text: &str) -> Scope {
        Scope::parse(text).unwrap_or_default()
    }

    #[test]
    fn grants_requested_subset_or_everything_by_default() {
        let allowed = vec!["read".to_owned(), "write".to_owned()];
        assert_eq!(
            resolve(Some(&scope("read")), &allowed).ok(),
            Some(scope("read"))
        );
        assert_eq!(resolve(None, &allowed).ok(), Some(scope("read write")));
        let error = resolve(Some(&scope("read admin")), &allowed).err();
        assert_eq!(error.map(|e| e.code()), Some(ErrorCode::InvalidScope));
    }
}
