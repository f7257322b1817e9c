//! Untrusted text as it may appear in this crate's error messages.

/// At most 64 characters of untrusted text, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_shortens_on_char_boundaries() {
        assert_eq!(excerpt("kid"), "kid");
        let long = "é".repeat(100);
        assert_eq!(excerpt(&long).chars().count(), 65);
    }
}
