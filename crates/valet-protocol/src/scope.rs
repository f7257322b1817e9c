//! Scope values (RFC 6749 §3.3): a space-delimited set of case-sensitive tokens.

use std::collections::BTreeSet;
use std::fmt;

/// A validated set of scope tokens, kept sorted so two equal sets print alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// A token has a character outside `%x21 / %x23-5B / %x5D-7E`.
    InvalidToken,
}

impl Scope {
    /// Parses `scope = scope-token *( SP scope-token )` (RFC 6749 §3.3). Repeated
    /// spaces are tolerated; an empty string is the empty set.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        Self::from_tokens(text.split(' ').filter(|token| !token.is_empty()))
    }

    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for token in tokens {
            if !is_scope_token(token) {
                return Err(ScopeError::InvalidToken);
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sorted() {
        let scope = Scope::parse("write  read").unwrap_or_default();
        assert_eq!(scope.to_string(), "read write");
        assert!(
            Scope::parse("read")
                .unwrap_or_default()
                .is_subset_of(&scope)
        );
    }

    #[test]
    fn rejects_quotes_and_backslashes() {
        assert_eq!(Scope::parse("a\"b"), Err(ScopeError::InvalidToken));
        assert_eq!(Scope::parse("a\\b"), Err(ScopeError::InvalidToken));
        assert_eq!(Scope::parse("caf\u{e9}"), Err(ScopeError::InvalidToken));
    }
}
