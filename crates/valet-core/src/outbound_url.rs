//! The one rule for URLs Valet itself calls out to (a client's `jwks_uri`, an
//! upstream provider's endpoints): absolute `https`, or `http` on a loopback
//! host for development, without user information or a fragment.

use std::net::IpAddr;

use reqwest::Url;

/// Parses and checks `uri`; the error says what is wrong, for the caller to
/// put after the setting's name.
pub fn check_outbound_url(uri: &str) -> Result<Url, String> {
    let url = Url::parse(uri).map_err(|error| format!("not an absolute URL: {error}"))?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("must not have a fragment or user information".to_owned());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err("must be https (http only on a loopback host)".to_owned()),
    }
}

/// `localhost` or a loopback address (IPv4 or bracketed IPv6).
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        for good in [
            "https://keys.example.com/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://[::1]/jwks",
            "http://localhost/jwks",
        ] {
            assert!(check_outbound_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://keys.example.com/jwks",
            "https://user:pw@keys.example.com/jwks",
            "https://keys.example.com/jwks#frag",
            "ftp://keys.example.com/jwks",
            "/relative",
        ] {
            assert!(check_outbound_url(bad).is_err(), "{bad}");
        }
    }
}
