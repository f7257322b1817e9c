//! The authorization response: where the browser goes back to, and with what.

use valet_protocol::authorize::ResponseMode;
use valet_protocol::{ErrorCode, append_query};

/// A redirect (or form_post) to a verified redirect URI. Always carries `iss`
/// (RFC 9207 §2) and `state` as it was sent (RFC 6749 §4.1.2).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(&'static str, String)>,
}

/// The parameters (the code among them) are not printed.
impl std::fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("redirect_uri", &self.redirect_uri)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl AuthorizationResponse {
    pub fn code(
        redirect_uri: &str,
        mode: ResponseMode,
        code: String,
        state: Option<&str>,
        issuer: &str,
    ) -> Self {
        let mut params = vec![("code", code)];
        push_common(&mut params, state, issuer);
        Self {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            params,
        }
    }

    /// RFC 6749 §4.1.2.1
    pub fn error(
        redirect_uri: &str,
        mode: ResponseMode,
        code: ErrorCode,
        description: &str,
        state: Option<&str>,
        issuer: &str,
    ) -> Self {
        let mut params = vec![
            ("error", code.as_str().to_owned()),
            ("error_description", description.to_owned()),
        ];
        push_common(&mut params, state, issuer);
        Self {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            params,
        }
    }

    /// The full URL for `response_mode=query`: the parameters are appended to any
    /// query the registered URI already has.
    pub fn location(&self) -> String {
        append_query(
            &self.redirect_uri,
            self.params
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
        )
    }
}

fn push_common(params: &mut Vec<(&'static str, String)>, state: Option<&str>, issuer: &str) {
    if let Some(state) = state {
        params.push(("state", state.to_owned()));
    }
    params.push(("iss", issuer.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_keeps_existing_query_and_encodes() {
        let response = AuthorizationResponse::code(
            "https://app.example/cb?tenant=1",
            ResponseMode::Query,
            "abc".into(),
            Some("a b&c"),
            "https://id.example",
        );
        assert_eq!(
            response.location(),
            "https://app.example/cb?tenant=1&code=abc&state=a%20b%26c&iss=https%3A%2F%2Fid.example"
        );
    }
}
