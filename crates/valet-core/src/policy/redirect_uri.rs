//! Redirect URI matching (RFC 6749 §3.1.2, RFC 9700 §4.1.3, RFC 8252 §7.3).

use crate::store::Client;

/// A redirect URI that matched the client's registration. Only [`verify`] makes
/// one, and only a verified URI is ever redirected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRedirectUri {
    uri: String,
    /// Whether the request named it (then the token request must repeat it).
    given: bool,
}

impl VerifiedRedirectUri {
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    pub fn was_given(&self) -> bool {
        self.given
    }
}

/// Exact string comparison against the registered URIs, with one exception: for a
/// registered loopback IP URI (`http://127.0.0.1/…`, `http://[::1]/…`) any port is
/// accepted (RFC 8252 §7.3). Without a `redirect_uri`, the client's only
/// registered URI is used; with several registered, one must be named.
pub fn verify(client: &Client, requested: Option<&str>) -> Option<VerifiedRedirectUri> {
    match requested {
        None => match client.redirect_uris.as_slice() {
            [only] => Some(VerifiedRedirectUri {
                uri: only.clone(),
                given: false,
            }),
            _ => None,
        },
        Some(requested) => client
            .redirect_uris
            .iter()
            .any(|registered| registered == requested || loopback_matches(registered, requested))
            .then(|| VerifiedRedirectUri {
                uri: requested.to_owned(),
                given: true,
            }),
    }
}

/// Both are loopback IP URIs that differ at most in the port. The registered one must be
/// one too: `http://127.0.0.1:1@localhost/cb` names the host `localhost`, so it gets no
/// port freedom and `http://127.0.0.1:8080/cb` does not match it.
fn loopback_matches(registered: &str, requested: &str) -> bool {
    match (split_loopback(registered), split_loopback(requested)) {
        (Some((host_a, rest_a)), Some((host_b, rest_b))) => host_a == host_b && rest_a == rest_b,
        _ => false,
    }
}

/// `(HOST, REST)` of `http://HOST[:PORT]REST` with HOST a loopback IP literal, PORT a
/// number up to 65535, and REST empty or starting with `/` or `?`.
fn split_loopback(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let (host, after) = if rest.starts_with("[::1]") {
        rest.split_at(5)
    } else if rest.starts_with("127.0.0.1") {
        rest.split_at(9)
    } else {
        return None;
    };
    match after.strip_prefix(':') {
        Some(port_and_rest) => {
            let end = port_and_rest
                .find(['/', '?'])
                .unwrap_or(port_and_rest.len());
            let (port, rest) = port_and_rest.split_at(end);
            is_port(port).then_some((host, rest))
        }
        None if after.is_empty() || after.starts_with(['/', '?']) => Some((host, after)),
        None => None,
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client {
            client_id: "c".into(),
            name: "c".into(),
            token_endpoint_auth_methods: vec![valet_protocol::token::TokenEndpointAuthMethod::None],
            secret_hash: None,
            redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            post_logout_redirect_uris: vec![],
            allowed_origins: vec![],
            grant_types: vec![],
            scopes: vec![],
            audiences: vec![],
            access_token_ttl: None,
            skip_consent: false,
            require_mfa: false,
            require_pushed_authorization_requests: false,
            refresh_grace_seconds: 0,
            id_token_signed_response_alg: None,
            created_at: 0,
            updated_at: 0,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            introspect_any: false,
            dpop_bound_access_tokens: false,
            jwks: None,
            jwks_uri: None,
            token_exchange_audiences: Vec::new(),
            registration_token_hash: None,
            metadata_expires_at: None,
            sealed_secret: None,
            id_token_encryption: None,
            userinfo_signed_response_alg: None,
            userinfo_encryption: None,
        }
    }

    #[test]
    fn exact_match_only() {
        let c = client(&["https://app.example/cb"]);
        assert!(verify(&c, Some("https://app.example/cb")).is_some());
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example/cb#f",
            "https://APP.example/cb",
            "https://app.example:443/cb",
            "https://app.example.evil/cb",
            "https://evil.example/cb",
            "http://app.example/cb",
            "https://app.example/cb/../cb",
            "https://app.example/c%62",
            "https://user@app.example/cb",
            "https://app.example\\@evil/cb",
        ] {
            assert!(verify(&c, Some(bad)).is_none(), "{bad}");
        }
        assert_eq!(verify(&c, None).map(|u| u.was_given()), Some(false));
        let two = client(&["https://a.example/cb", "https://b.example/cb"]);
        assert!(verify(&two, None).is_none());
    }

    #[test]
    fn loopback_any_port() {
        let c = client(&["http://127.0.0.1/callback", "http://[::1]/cb"]);
        assert!(verify(&c, Some("http://127.0.0.1:53117/callback")).is_some());
        assert!(verify(&c, Some("http://127.0.0.1/callback")).is_some());
        assert!(verify(&c, Some("http://[::1]:8000/cb")).is_some());
        for bad in [
            "http://127.0.0.1:53117/other",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1.evil.example/callback",
            "http://127.0.0.1:80@evil.example/callback",
            "http://localhost:8000/callback",
            "https://127.0.0.1:8000/callback",
            "http://127.0.0.2:8000/callback",
        ] {
            assert!(verify(&c, Some(bad)).is_none(), "{bad}");
        }
    }

    /// Found by the `redirect_uri` fuzz target: a registered URI whose "port" is not a
    /// port (here user info before another host) was given the loopback port freedom.
    #[test]
    fn only_registered_loopback_ip_uris_get_any_port() {
        let c = client(&["http://127.0.0.1:1@localhost/cb", "http://[::1]:6@attt"]);
        for bad in [
            "http://127.0.0.1:8080/cb",
            "http://127.0.0.1/cb",
            "http://[::1]",
            "http://[::1]:6",
        ] {
            assert!(verify(&c, Some(bad)).is_none(), "{bad}");
        }
        assert!(verify(&c, Some("http://127.0.0.1:1@localhost/cb")).is_some());
        let c = client(&["http://127.0.0.1:3000/cb"]);
        assert!(verify(&c, Some("http://127.0.0.1:53117/cb")).is_some());
        assert!(verify(&c, Some("http://127.0.0.1/cb")).is_some());
    }

    /// A host that only starts like a loopback address is a DNS name.
    #[test]
    fn names_that_start_like_loopback_get_no_port_freedom() {
        let c = client(&["http://127.0.0.1:3000/cb"]);
        for bad in [
            "http://127.0.0.1.evil.example:3000/cb",
            "http://127.evil.example:3000/cb",
            "http://127.0.0.1@evil.example:3000/cb",
        ] {
            assert!(verify(&c, Some(bad)).is_none(), "{bad}");
        }
    }
}
