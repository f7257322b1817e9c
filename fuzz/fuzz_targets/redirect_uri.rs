//! Redirect URI matching in valet-core (`policy::redirect_uri::verify`: RFC 6749 §3.1.2,
//! RFC 9700 §4.1.3, RFC 8252 §7.3).
//!
//! Input, as lines: the requested `redirect_uri` (an empty line: none, as an empty form
//! value is omitted per RFC 6749 §3.1), then the client's registered URIs. Lines rather
//! than `arbitrary` so that the committed seeds are real URIs to read and edit.
//!
//! Beyond "no panic":
//! - a URI that matches is byte-equal to a registered one, or is a registered loopback
//!   IP URI (`http://127.0.0.1…`, `http://[::1]…`) with another port: the same bytes but
//!   the port, a port that is a number up to 65535, and, read by the `url` crate, the same
//!   loopback host with no user info and the same path, query and fragment;
//! - every registered URI matches itself, and every registered loopback IP URI (port, if
//!   any, a number up to 65535) matches with any port 0 to 65535 but not with a port that
//!   is empty, too large or not a number;
//! - without a requested URI, only a client with exactly one registered URI gets one: it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use url::{Host, Url};
use valet_core::policy::redirect_uri::verify;
use valet_core::store::Client;

const GOOD_PORTS: [&str; 5] = ["0", "1", "80", "8080", "65535"];
const BAD_PORTS: [&str; 7] = ["", "65536", "99999", "-1", "+80", "80a", "000080"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let requested = lines.next().filter(|line| !line.is_empty());
    let client = client(lines.map(str::to_owned).collect());

    match (verify(&client, requested), requested) {
        (Some(verified), Some(requested)) => {
            assert!(verified.was_given());
            assert_eq!(verified.as_str(), requested);
            if !client.redirect_uris.iter().any(|r| r == requested) {
                assert_loopback_variant(&client.redirect_uris, requested);
            }
        }
        (Some(verified), None) => {
            assert!(!verified.was_given());
            assert_eq!(client.redirect_uris, [verified.as_str()]);
        }
        (None, Some(requested)) => {
            assert!(!client.redirect_uris.iter().any(|r| r == requested));
        }
        (None, None) => assert_ne!(client.redirect_uris.len(), 1),
    }

    for registered in &client.redirect_uris {
        assert!(verify(&client, Some(registered)).is_some(), "{registered}");
        let Some((base, rest, port)) = split_port(registered) else {
            continue;
        };
        if !port.is_none_or(is_port) {
            continue;
        }
        for port in GOOD_PORTS {
            let variant = format!("{base}:{port}{rest}");
            assert!(verify(&client, Some(&variant)).is_some(), "{variant}");
        }
        for port in BAD_PORTS {
            let variant = format!("{base}:{port}{rest}");
            let registered_as_is = client.redirect_uris.contains(&variant);
            assert_eq!(
                verify(&client, Some(&variant)).is_some(),
                registered_as_is,
                "{variant}"
            );
        }
    }
});

fn client(redirect_uris: Vec<String>) -> Client {
    Client {
        client_id: "fuzz".into(),
        name: "fuzz".into(),
        token_endpoint_auth_methods: vec![valet_protocol::token::TokenEndpointAuthMethod::None],
        secret_hash: None,
        redirect_uris,
        post_logout_redirect_uris: vec![],
        grant_types: vec![valet_protocol::token::GrantType::AuthorizationCode],
        scopes: vec![],
        audiences: vec![],
        access_token_ttl: None,
        skip_consent: false,
        refresh_grace_seconds: 0,
        id_token_signed_response_alg: None,
        created_at: 0,
        updated_at: 0,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        introspect_any: false,
    }
}

/// `requested` matched without being registered: it must be a port variant of a
/// registered loopback URI.
fn assert_loopback_variant(registered: &[String], requested: &str) {
    let (base, rest, port) = split_port(requested).expect("a loopback URI");
    assert!(port.is_none_or(is_port), "{requested}");
    let origin = registered
        .iter()
        .find(|r| {
            split_port(r).is_some_and(|(b, r, p)| b == base && r == rest && p.is_none_or(is_port))
        })
        .expect("a registered loopback IP URI that differs only in the port");

    let url = Url::parse(requested).expect("a matched loopback URI is a URL");
    assert_eq!(url.scheme(), "http");
    assert!(
        matches!(url.host(), Some(Host::Ipv4(ip)) if ip.is_loopback())
            || matches!(url.host(), Some(Host::Ipv6(ip)) if ip.is_loopback()),
        "{requested}"
    );
    assert!(url.username().is_empty() && url.password().is_none());
    if let Ok(origin) = Url::parse(origin) {
        assert_eq!(url.host(), origin.host());
        assert_eq!(
            (url.path(), url.query(), url.fragment()),
            (origin.path(), origin.query(), origin.fragment())
        );
    }
}

/// `(scheme and host, rest, port)` of `http://127.0.0.1[:PORT]REST` or
/// `http://[::1][:PORT]REST`, where `REST` is empty or starts with `/` or `?` and `PORT`
/// runs to the first `/` or `?`.
fn split_port(uri: &str) -> Option<(&str, &str, Option<&str>)> {
    let base_len = ["http://127.0.0.1", "http://[::1]"]
        .into_iter()
        .find(|base| uri.starts_with(base))?
        .len();
    let (base, after) = uri.split_at(base_len);
    let (port, rest) = match after.strip_prefix(':') {
        Some(port_and_rest) => {
            let end = port_and_rest
                .find(['/', '?'])
                .unwrap_or(port_and_rest.len());
            let (port, rest) = port_and_rest.split_at(end);
            (Some(port), rest)
        }
        None => (None, after),
    };
    (rest.is_empty() || rest.starts_with(['/', '?'])).then_some((base, rest, port))
}

/// A port as RFC 3986 §3.2.3 writes it, up to 65535 (at most five digits).
fn is_port(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok()
}
