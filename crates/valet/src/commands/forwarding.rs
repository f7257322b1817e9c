//! What `valet guard` and `valet gateway` share as proxies: where a request
//! goes upstream ([`Upstream`]: the base path it stays under, the origin-form
//! target, the `Host`), which headers cross (hop-by-hop, identity and
//! forwarding headers never do), and how bodies pass (with their length; a
//! small one in one piece).

use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue};
use reqwest::Url;

use crate::storage::CliError;

/// The upstream URL and the base path every forwarded request stays under.
pub(crate) struct Upstream {
    /// Scheme, authority and base path, without a trailing `/`.
    base: String,
    /// The base path without a trailing `/` (empty for the root).
    base_path: String,
    /// Scheme and authority (`http://host:port`).
    origin: String,
    /// `host:port`, the port made explicit.
    connect_to: Arc<str>,
    host: HeaderValue,
    tls: bool,
}

impl Upstream {
    pub(crate) fn parse(upstream: &str) -> Result<Upstream, CliError> {
        let bad = |why: &str| -> CliError { format!("--upstream {upstream}: {why}").into() };
        let url = Url::parse(upstream).map_err(|error| bad(&error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("must be an http:// or https:// URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        // As the URL gave them: `url` leaves out the scheme's own port.
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Upstream {
            base: url.as_str().trim_end_matches('/').to_owned(),
            base_path: url.path().trim_end_matches('/').to_owned(),
            origin: url.origin().ascii_serialization(),
            connect_to: Arc::from(format!("{host}:{port}")),
            host: HeaderValue::try_from(authority).map_err(|error| bad(&error.to_string()))?,
            tls: url.scheme() == "https",
        })
    }

    /// The upstream URL for a request's path and query, or why there is none. The path is
    /// refused, not normalized: a path that only makes sense after removing dot segments
    /// (RFC 3986 §5.2.4) or decoding a slash is not one a client needs.
    pub(crate) fn url_for(&self, path: &str, query: Option<&str>) -> Result<Url, &'static str> {
        check_path(path)?;
        let mut target = format!("{}{path}", self.base);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        let url = Url::parse(&target).map_err(|_| "the request target is not a valid path")?;
        // Defense in depth: whatever the URL parser made of the path, it is still under
        // the base path.
        if !url.path().starts_with(&format!("{}/", self.base_path)) {
            return Err("the request path leaves the upstream's base path");
        }
        Ok(url)
    }

    /// As [`Upstream::url_for`], as the origin-form request target (RFC 9112
    /// §3.2.1: the base path, the checked path and the query) a hyper
    /// connection sends to the upstream at [`Upstream::authority`]. The URI
    /// parser neither normalizes nor decodes, so the path stays the one checked.
    pub(crate) fn target_for(
        &self,
        path: &str,
        query: Option<&str>,
    ) -> Result<axum::http::Uri, &'static str> {
        check_path(path)?;
        let mut target = String::with_capacity(
            self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1),
        );
        target.push_str(&self.base_path);
        target.push_str(path);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        let uri = axum::http::Uri::try_from(target)
            .map_err(|_| "the request target is not a valid path")?;
        // Defense in depth, as in `url_for`.
        let under_base = uri
            .path()
            .strip_prefix(self.base_path.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
        if uri.scheme().is_some() || !under_base {
            return Err("the request path leaves the upstream's base path");
        }
        Ok(uri)
    }

    /// Scheme, authority and base path, without a trailing `/`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Whether calls go out over TLS (`https://`).
    pub(crate) fn is_tls(&self) -> bool {
        self.tls
    }

    /// `host:port` to connect to (the scheme's port when the URL names none).
    pub(crate) fn authority(&self) -> &Arc<str> {
        &self.connect_to
    }

    /// The `Host` header for the upstream: its host and port as the URL gave them.
    pub(crate) fn host_header(&self) -> &HeaderValue {
        &self.host
    }

    /// The absolute URL of a request target from [`Upstream::target_for`].
    pub(crate) fn absolute(&self, target: &axum::http::Uri) -> String {
        format!("{}{target}", self.origin)
    }
}

/// Refuses a path that could leave the upstream's base path once an upstream (or the
/// URL parser) normalizes it.
pub(crate) fn check_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("the request target is not an absolute path");
    }
    // The WHATWG URL parser reads `\` as `/` in http URLs, and so do some servers.
    if path.contains('\\') {
        return Err("the request path contains a backslash");
    }
    // Neither an encoded character nor a dot: nothing below can match.
    if !path.contains(['%', '.']) {
        return Ok(());
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err("the request path contains an encoded slash or backslash");
    }
    if lower.split('/').any(is_dot_segment) {
        return Err("the request path contains a dot segment");
    }
    Ok(())
}

/// A dot segment of RFC 3986 §3.3 (`.` or `..`), with each dot possibly percent-encoded
/// (the WHATWG URL standard's "single-dot"/"double-dot" segments), also before a `;`
/// parameter (`..;x`, which servlet containers read as `..`). `segment` is lowercase.
fn is_dot_segment(segment: &str) -> bool {
    let name = segment.split(';').next().unwrap_or_default();
    matches!(name.replace("%2e", ".").as_str(), "." | "..")
}

/// Bodies of known length up to this size, request or reply, are read whole
/// before they are passed on, so they go out in one write with their head
/// (streamed, the head would go first and the body in a second system call);
/// larger bodies and those of unknown length stream.
const SMALL_BODY: u64 = 64 * 1024;

/// The length of a body worth reading whole first (see [`SMALL_BODY`]).
fn small_length(body: &Body) -> Option<usize> {
    if body.is_end_stream() {
        return None;
    }
    let length = body
        .size_hint()
        .exact()
        .filter(|&length| length <= SMALL_BODY)?;
    usize::try_from(length).ok()
}

/// All of `body` (of `length` bytes, which hyper holds a body with a
/// `Content-Length` to); a body of one piece is passed on without a copy.
async fn read_whole(mut body: Body, length: usize) -> Result<Bytes, axum::Error> {
    let mut whole = Bytes::new();
    let mut joined: Option<Vec<u8>> = None;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if whole.is_empty() => whole = data,
            None => {
                let mut both = Vec::with_capacity(length);
                both.extend_from_slice(&whole);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(whole, Bytes::from))
}

/// `body`, read whole first when it is small (see [`SMALL_BODY`]).
pub(crate) async fn whole_if_small(body: Body) -> Result<Body, axum::Error> {
    Ok(match small_length(&body) {
        Some(length) => Body::from(read_whole(body, length).await?),
        None => body,
    })
}

/// `outgoing` with `body`: none for a body that is already over (a bodiless
/// `GET` is not sent as an empty chunked one), a small one whole, any other
/// streamed; with its length when it has one, chunked when it has none.
pub(crate) async fn with_body(
    outgoing: reqwest::RequestBuilder,
    body: Body,
) -> Result<reqwest::RequestBuilder, axum::Error> {
    if let Some(length) = small_length(&body) {
        return Ok(outgoing.body(read_whole(body, length).await?));
    }
    if body.is_end_stream() {
        return Ok(outgoing);
    }
    let outgoing = match body.size_hint().exact() {
        Some(length) => outgoing.header(header::CONTENT_LENGTH, length),
        None => outgoing,
    };
    Ok(outgoing.body(reqwest::Body::wrap_stream(body.into_data_stream())))
}

/// Which way headers are being copied.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Request,
    Response,
}

/// The end-to-end headers of a request or response, without the identity
/// headers a client might try to smuggle in, and (for requests) without the
/// forwarding headers the proxy sets itself.
pub(crate) fn forwarded_headers(incoming: &HeaderMap, direction: Direction) -> HeaderMap {
    forwarded_headers_without(incoming, direction, &[])
}

/// [`forwarded_headers`] without `dropped` either.
pub(crate) fn forwarded_headers_without(
    incoming: &HeaderMap,
    direction: Direction,
    dropped: &[HeaderName],
) -> HeaderMap {
    let connection_listed: Vec<String> = incoming
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(incoming.len());
    for (name, value) in incoming {
        let lower = name.as_str();
        let end_to_end = match lower {
            // Connection-specific (RFC 9110 §7.6.1), and what the client
            // connection sets from the target and the body.
            "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length" => false,
            // `X-Valet_Subject` is the same variable as `X-Valet-Subject` to
            // CGI-style upstreams (Rack, PHP, WSGI): every spelling of the
            // prefix goes.
            _ if lower.starts_with('x') && starts_with_dashed(lower, "x-valet") => false,
            _ if direction == Direction::Request && is_forwarding_header(lower) => false,
            _ => !connection_listed.iter().any(|listed| listed == lower) && !dropped.contains(name),
        };
        if end_to_end {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The headers that tell an upstream who the client is (RFC 7239 `Forwarded` and the
/// de facto `X-Forwarded-*` and `X-Real-IP`), in any spelling of `-` as `_`: only the
/// proxy may set them.
fn is_forwarding_header(lower: &str) -> bool {
    lower == "forwarded"
        || (lower.len() == "x-real-ip".len() && starts_with_dashed(lower, "x-real-ip"))
        || starts_with_dashed(lower, "x-forwarded-")
}

/// Whether the lower-case header name `lower` starts with `prefix`, reading
/// each `_` in the name as `-`.
fn starts_with_dashed(lower: &str, prefix: &str) -> bool {
    lower.len() >= prefix.len()
        && lower
            .bytes()
            .zip(prefix.bytes())
            .all(|(have, want)| have == want || (have == b'_' && want == b'-'))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;

    #[test]
    fn paths_that_could_leave_the_base_path_are_refused() {
        let upstream = Upstream::parse("http://127.0.0.1:3000/api/").unwrap();
        assert_eq!(upstream.base, "http://127.0.0.1:3000/api");
        for bad in [
            "/..",
            "/../secret",
            "/a/../../secret",
            "/./a",
            "/a/.",
            "/%2e%2e/secret",
            "/%2E%2E/secret",
            "/.%2e/secret",
            "/%2e./secret",
            "/%2e/secret",
            "/..;x/secret",
            "/a%2f..%2fsecret",
            "/a%2F..%2Fsecret",
            "/a%5c..%5csecret",
            "/a\\..\\secret",
            "*",
            "",
        ] {
            assert!(upstream.url_for(bad, None).is_err(), "{bad}");
            assert!(upstream.target_for(bad, None).is_err(), "{bad}");
        }
        for (good, target) in [
            ("/", "/api/"),
            ("/orders", "/api/orders"),
            ("/..foo/.bar/x..", "/api/..foo/.bar/x.."),
            ("//evil.example/x", "/api//evil.example/x"),
            ("/a%20b", "/api/a%20b"),
        ] {
            let forwarded = format!("http://127.0.0.1:3000{target}");
            assert_eq!(upstream.url_for(good, None).unwrap().as_str(), forwarded);
            let uri = upstream.target_for(good, None).unwrap();
            assert_eq!(uri.to_string(), target);
            assert_eq!(upstream.absolute(&uri), forwarded);
        }
        assert_eq!(
            upstream
                .target_for("/orders", Some("next=/../x&page=2"))
                .unwrap()
                .to_string(),
            "/api/orders?next=/../x&page=2"
        );
        // Not a request target hyper would have accepted: refused, not encoded.
        assert!(upstream.target_for("/a b", None).is_err());
        assert_eq!(
            upstream
                .url_for("/orders", Some("next=/../x&page=2"))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:3000/api/orders?next=/../x&page=2"
        );
        let root = Upstream::parse("http://127.0.0.1:3000").unwrap();
        assert_eq!(
            root.url_for("/orders", None).unwrap().as_str(),
            "http://127.0.0.1:3000/orders"
        );
        assert!(root.url_for("/%2e%2e/x", None).is_err());
        assert_eq!(
            root.target_for("/orders", None).unwrap().to_string(),
            "/orders"
        );
        // An absolute path a URI parser would read as a scheme and authority.
        assert!(
            root.target_for("//evil.example/x", None)
                .is_ok_and(|t| t.host().is_none())
        );
        assert!(root.target_for("/%2e%2e/x", None).is_err());
    }

    #[test]
    fn upstreams_name_where_to_connect_and_the_host_to_send() {
        let plain = Upstream::parse("http://api.internal/v1/").unwrap();
        assert_eq!(&**plain.authority(), "api.internal:80");
        assert_eq!(plain.host_header(), "api.internal");
        assert!(!plain.is_tls());
        let tls = Upstream::parse("https://[::1]:8443/").unwrap();
        assert_eq!(&**tls.authority(), "[::1]:8443");
        assert_eq!(tls.host_header(), "[::1]:8443");
        assert!(tls.is_tls());
        let target = tls.target_for("/x", Some("a=1")).unwrap();
        assert_eq!(tls.absolute(&target), "https://[::1]:8443/x?a=1");
    }

    #[test]
    fn upstreams_are_plain_http_urls() {
        for bad in [
            "127.0.0.1:3000",
            "ftp://127.0.0.1",
            "http://127.0.0.1:3000/api?x=1",
            "http://127.0.0.1:3000/#f",
            "http://user:pw@127.0.0.1:3000",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_from_the_client_are_dropped_from_requests_only() {
        let mut incoming = HeaderMap::new();
        for name in [
            "x-forwarded-for",
            "X-Forwarded-Host",
            "x-forwarded-proto",
            "x-forwarded-port",
            "forwarded",
            "x-real-ip",
            "x_forwarded_for",
            "x_real_ip",
        ] {
            incoming.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("6.6.6.6"),
            );
        }
        incoming.insert("accept", HeaderValue::from_static("*/*"));
        let request = forwarded_headers(&incoming, Direction::Request);
        assert_eq!(request.len(), 1, "{request:?}");
        assert!(request.contains_key("accept"));
        let response = forwarded_headers(&incoming, Direction::Response);
        assert_eq!(response.len(), incoming.len());
    }
}
