//! Which browser origins may read Valet's answers (the Fetch standard's CORS
//! protocol): the origins of every *public* client's redirect URIs (a single-page
//! app calls `/token` from the page its redirect lands on) and each client's
//! explicit `allowed_origins`. A confidential client's redirect URIs name its
//! server, not a browser app: its origins count only when listed explicitly.
//!
//! The set is the union over all clients, held in memory and read again from the
//! store after `client_cache_ttl` seconds (the bound that already applies to
//! client records), so a cross-origin token request costs no store read.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crate::store::{Client, Store, StoreError};

/// The allowed origins of all clients, cached.
pub struct AllowedOrigins {
    ttl: i64,
    /// When the set was read, and the set.
    loaded: RwLock<Option<(i64, Arc<HashSet<String>>)>>,
    /// One reload at a time: the others wait for it instead of each reading the store.
    reloading: tokio::sync::Mutex<()>,
}

impl AllowedOrigins {
    pub fn new(ttl: i64) -> Self {
        Self {
            ttl,
            loaded: RwLock::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether `origin` (an `Origin` header's value, compared exactly) is one a
    /// client registered. `null` and anything that is not a serialized origin
    /// never match.
    pub async fn allows(
        &self,
        store: &dyn Store,
        origin: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        if let Some(origins) = self.fresh(now) {
            return Ok(origins.contains(origin));
        }
        let _reloading = self.reloading.lock().await;
        if let Some(origins) = self.fresh(now) {
            return Ok(origins.contains(origin));
        }
        let clients = store.list_clients().await?;
        let origins: Arc<HashSet<String>> =
            Arc::new(clients.iter().flat_map(client_origins).collect());
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = Some((now, Arc::clone(&origins)));
        }
        Ok(origins.contains(origin))
    }

    fn fresh(&self, now: i64) -> Option<Arc<HashSet<String>>> {
        let loaded = self.loaded.read().ok()?;
        let (read_at, origins) = loaded.as_ref()?;
        (now.saturating_sub(*read_at) < self.ttl).then(|| Arc::clone(origins))
    }
}

/// The origins a client's browser app may call from: its explicit ones, and for a
/// public client the origins of its http(s) redirect URIs.
pub fn client_origins(client: &Client) -> Vec<String> {
    let derived = client
        .is_public()
        .then(|| client.redirect_uris.iter().filter_map(|uri| origin_of(uri)))
        .into_iter()
        .flatten();
    derived
        .chain(client.allowed_origins.iter().cloned())
        .collect()
}

/// The ASCII serialization of an http(s) URL's origin (RFC 6454 §6.2, as browsers
/// send it in `Origin`): lowercase scheme and host, the port only when it is not
/// the scheme's default. `None` for other schemes, user info, or no host.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    if authority.is_empty() || authority.contains(['@', '\\']) {
        return None;
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return None;
    }
    let host = host.to_ascii_lowercase();
    match port {
        Some(port) if port != default_port => Some(format!("{scheme}://{host}:{port}")),
        _ => Some(format!("{scheme}://{host}")),
    }
}

/// `host[:port]` or `[v6][:port]`; the port, when present, is 1 to 5 digits
/// without leading zeros (as a browser serializes it).
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let host = authority.get(..=close)?;
        match authority.get(close + 1..)? {
            "" => (host, None),
            rest => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        let digits_ok = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && !port.starts_with('0');
        if !digits_ok || port.parse::<u16>().is_err() {
            return None;
        }
    }
    Some((host, port))
}

/// An origin as an operator registers it (`--allowed-origin`): `https://host[:port]`,
/// or `http://` on a loopback host, with nothing after the authority but an
/// optional `/`. Returns its serialization, or why it is not one.
pub fn parse_allowed_origin(input: &str) -> Result<String, &'static str> {
    if input.contains('*') {
        return Err("must not contain a wildcard (*): list each origin");
    }
    if !input.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces");
    }
    let origin = origin_of(input)
        .ok_or("must be an origin: https://host[:port], or http:// on a loopback host")?;
    let after_scheme = input.split_once("://").map_or("", |(_, rest)| rest);
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    if !matches!(after_scheme.get(authority_end..), Some("" | "/")) {
        return Err("must be an origin alone: no path, query or fragment");
    }
    if origin.starts_with("http://") {
        let host = origin
            .trim_start_matches("http://")
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(origin.trim_start_matches("http://"), |(host, _)| host);
        if !matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
            return Err(
                "http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https",
            );
        }
    }
    Ok(origin)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_urls_as_browsers_serialize_them() {
        for (url, origin) in [
            (
                "https://app.example.com/cb",
                Some("https://app.example.com"),
            ),
            (
                "HTTPS://App.Example.COM:443/cb",
                Some("https://app.example.com"),
            ),
            (
                "https://app.example.com:8443",
                Some("https://app.example.com:8443"),
            ),
            (
                "http://127.0.0.1:3000/cb?x=1",
                Some("http://127.0.0.1:3000"),
            ),
            ("http://localhost:80/", Some("http://localhost")),
            ("http://[::1]:8080/cb", Some("http://[::1]:8080")),
            ("com.example.app:/oauth", None),
            ("https://user@app.example.com/cb", None),
            ("https:///cb", None),
            ("https://app.example.com:0443/", None),
            ("https://app.example.com:99999/", None),
        ] {
            assert_eq!(origin_of(url).as_deref(), origin, "{url}");
        }
    }

    #[test]
    fn allowed_origins_are_origins_alone() {
        assert_eq!(
            parse_allowed_origin("https://spa.example.com/").unwrap(),
            "https://spa.example.com"
        );
        assert_eq!(
            parse_allowed_origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        for bad in [
            "null",
            "*",
            "https://*.example.com",
            "https://spa.example.com/app",
            "https://spa.example.com?x",
            "http://spa.example.com",
            "http://127.0.0.1.evil.example",
            "spa.example.com",
            "https://spa example.com",
        ] {
            assert!(parse_allowed_origin(bad).is_err(), "{bad}");
        }
    }
}
