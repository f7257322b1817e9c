//! `application/x-www-form-urlencoded` bodies with the rules of RFC 6749 §3.1:
//! parameters without a value are treated as omitted, unknown parameters are
//! ignored, and a parameter must not be included more than once.

/// A parsed form. Keeps every value of every parameter, in order, so the caller
/// decides which parameters may repeat (RFC 8707 `resource` may, the others may
/// not). A form has a handful of parameters, so a list beats a hash map.
#[derive(Default, Clone)]
pub struct Form {
    params: Vec<(String, String)>,
}

/// Only the parameter names: values include passwords, secrets and tokens.
impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.params.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        f.debug_struct("Form")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A single-valued parameter appeared more than once (RFC 6749 §3.1).
    Repeated(&'static str),
    /// A required parameter is missing or empty.
    Missing(&'static str),
}

impl FormError {
    /// A client-safe description; names only the parameter, never its value.
    pub fn description(&self) -> String {
        match self {
            Self::Repeated(name) => format!("parameter {name} must not be included more than once"),
            Self::Missing(name) => format!("missing required parameter {name}"),
        }
    }
}

impl Form {
    /// Parses a body. Percent-decoding never fails: invalid UTF-8 becomes U+FFFD,
    /// which no valid value contains, so such values fail later checks.
    pub fn parse(body: &[u8]) -> Self {
        let params = form_urlencoded::parse(body)
            // RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if
            // they were omitted from the request."
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Self { params }
    }

    /// A form from name-value pairs, such as the members of a request object
    /// (RFC 9101 §4) or a stored pushed request; empty values are omitted as in
    /// a body.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            params: pairs
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .collect(),
        }
    }

    /// The one value of a single-valued parameter, if present.
    pub fn optional(&self, name: &'static str) -> Result<Option<&str>, FormError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(FormError::Repeated(name));
        }
        Ok(first)
    }

    pub fn required(&self, name: &'static str) -> Result<&str, FormError> {
        self.optional(name)?.ok_or(FormError::Missing(name))
    }

    /// The parameters named in `names`, in the order sent (for keeping part
    /// of a request, e.g. a pushed authorization request without credentials).
    pub fn only(&self, names: &[&str]) -> Vec<(String, String)> {
        self.params
            .iter()
            .filter(|(name, _)| names.contains(&name.as_str()))
            .cloned()
            .collect()
    }

    /// Every value of a parameter that may repeat, in the order sent.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(param, _)| param == name)
            .map(|(_, value)| value.as_str())
    }
}

/// RFC 3986 §2.3 unreserved characters stay as they are; everything else is
/// percent-encoded. Safe in a query string and in a form value alike.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes one query or form value (used for parameters appended to redirect URIs).
pub fn encode_component(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// `uri` with `params` appended to its query, each value encoded; a query the
/// registered URI already has is kept (RFC 6749 §3.1.2).
pub fn append_query<'a>(uri: &str, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut location = uri.to_owned();
    let mut separator = if uri.contains('?') { '&' } else { '?' };
    for (name, value) in params {
        location.push(separator);
        location.push_str(name);
        location.push('=');
        location.push_str(&encode_component(value));
        separator = '&';
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_parameters_keep_an_existing_query() {
        assert_eq!(
            append_query("https://app.example/cb?tenant=1", [("state", "a b&c")]),
            "https://app.example/cb?tenant=1&state=a%20b%26c"
        );
        assert_eq!(
            append_query("https://app.example/cb", [("code", "x"), ("iss", "y")]),
            "https://app.example/cb?code=x&iss=y"
        );
        assert_eq!(
            append_query("https://app.example/cb", []),
            "https://app.example/cb"
        );
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let form = Form::parse(b"grant_type=&scope=a");
        assert_eq!(form.optional("grant_type"), Ok(None));
        assert_eq!(
            form.required("grant_type"),
            Err(FormError::Missing("grant_type"))
        );
        assert_eq!(form.optional("scope"), Ok(Some("a")));
    }

    #[test]
    fn repeated_single_valued_parameter_is_an_error() {
        let form = Form::parse(b"scope=a&scope=b&resource=x&resource=y");
        assert_eq!(form.optional("scope"), Err(FormError::Repeated("scope")));
        assert_eq!(form.all("resource").collect::<Vec<_>>(), ["x", "y"]);
    }

    #[test]
    fn components_keep_only_unreserved_characters() {
        assert_eq!(encode_component("a b&c=d~_.-é"), "a%20b%26c%3Dd~_.-%C3%A9");
    }

    #[test]
    fn percent_encoding_is_decoded() {
        let form = Form::parse(b"client_id=a%2Bb&x=%FF");
        assert_eq!(form.optional("client_id"), Ok(Some("a+b")));
        assert_eq!(form.optional("x"), Ok(Some("\u{FFFD}")));
    }
}
