//! `valet guard`: a verifying reverse proxy for APIs not written in Rust.
//!
//! Every request must carry a valid access token for `--audience` (checked by
//! `valet-guard`: signature, claims, required scopes, token status list). Valid
//! requests are forwarded to `--upstream` with bodies streamed both ways and the
//! verified identity in `X-Valet-Subject`, `X-Valet-Client-Id` and `X-Valet-Scope`
//! (copies of those headers sent by the client are removed first). Invalid ones
//! get the RFC 6750 answer and never reach the upstream.
//!
//! - **Start-up.** The proxy listens at once, even while the issuer is unreachable: until
//!   the issuer's metadata and keys are loaded (retried with backoff, up to 10 s apart)
//!   every proxied request is answered 503 with `Retry-After`.
//! - **Its own endpoints**, answered by the proxy and never forwarded: [`HEALTH_PATH`]
//!   (liveness: 200 while the process serves) and [`READY_PATH`] (200 once the keys are
//!   loaded, else 503 with `Retry-After`).
//! - **Paths.** A request path with a dot segment (`.`, `..`, also percent-encoded as
//!   `%2e` in any case, and before a `;` parameter), an encoded slash or backslash
//!   (`%2f`, `%5c`), a raw backslash, or not starting with `/` is refused with 400 before
//!   the token is looked at: it could name something outside the upstream's base path
//!   once normalized. Every forwarded URL is also checked to lie under that base path.
//! - **Forwarding headers.** `Forwarded`, `X-Real-IP` and every `X-Forwarded-*` header sent
//!   by the client are dropped (in any case, and with `_` for `-`); the proxy sets
//!   `X-Forwarded-For` (the peer address it sees), `X-Forwarded-Proto` (`http`) and
//!   `X-Forwarded-Host` (the request's `Host`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use reqwest::Url;
use valet_guard::{ConfigError, Guard, GuardConfig};

use crate::storage::CliError;

/// Liveness: 200 as long as the proxy answers. Never forwarded.
pub const HEALTH_PATH: &str = "/.well-known/valet-guard/health";
/// Readiness: 200 once the issuer's keys are loaded, else 503. Never forwarded.
pub const READY_PATH: &str = "/.well-known/valet-guard/ready";

/// The environment variable holding the secret of `--client-id` (a flag value would be
/// visible to every user in `ps`).
const CLIENT_SECRET_ENV: &str = "VALET_GUARD_CLIENT_SECRET";

/// Seconds a client is asked to wait while the proxy is not ready.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Valet's issuer URL (https, or http on a loopback host: 127.0.0.0/8, ::1, localhost).
    #[arg(long)]
    pub issuer: String,
    /// The audience tokens must be for (this API's identifier).
    #[arg(long)]
    pub audience: String,
    /// Where valid requests go, e.g. http://127.0.0.1:3000 or http://127.0.0.1:3000/api
    /// (requests are forwarded under that path, never outside it).
    #[arg(long)]
    pub upstream: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub bind: SocketAddr,
    /// A scope every request needs (repeatable).
    #[arg(long = "require-scope")]
    pub require_scopes: Vec<String>,
    /// Clock skew tolerated on exp/nbf/iat, in seconds.
    #[arg(long, default_value_t = 30)]
    pub leeway: u64,
    /// Accept tokens when the status list cannot be fetched (default: refuse once
    /// the cached list is more than five minutes old).
    #[arg(long)]
    pub dangerous_status_fail_open: bool,
    /// Accept a plain-http issuer on a non-loopback host: keys and revocations would
    /// cross the network unprotected, so anyone on the path could forge tokens.
    #[arg(long)]
    pub dangerous_allow_insecure_issuer: bool,
    /// A client of the issuer (registered with the issuer as audience and the scope
    /// valet:status) for a revocation feed that requires a token; its secret comes from
    /// VALET_GUARD_CLIENT_SECRET or --client-secret-file.
    #[arg(long)]
    pub client_id: Option<String>,
    /// A file holding the secret of --client-id (trailing newlines ignored).
    #[arg(long, requires = "client_id")]
    pub client_secret_file: Option<PathBuf>,
    /// This API's public URL (RFC 9728 resource identifier), e.g. https://api.example.com.
    /// With it the proxy serves /.well-known/oauth-protected-resource and its
    /// WWW-Authenticate answers carry resource_metadata; DPoP proofs' htu are checked
    /// against its scheme and host (default: the audience, when it is a URL).
    #[arg(long)]
    pub resource: Option<String>,
    /// A scope this API understands, published as scopes_supported (repeatable).
    #[arg(long = "scope-supported")]
    pub scopes_supported: Vec<String>,
}

/// The identity headers the proxy sets; incoming headers starting with
/// `x-valet` (in any spelling) are dropped.
const IDENTITY_HEADERS: [&str; 3] = ["x-valet-subject", "x-valet-client-id", "x-valet-scope"];

struct Proxy {
    guard: Guard,
    scopes: Vec<String>,
    upstream: Upstream,
    client: reqwest::Client,
}

pub async fn run(args: GuardArgs) -> Result<(), CliError> {
    crate::commands::serve::init_logging(crate::config::LogFormat::Text);
    let upstream = Upstream::parse(&args.upstream)?;
    let policy = valet_guard::StatusPolicy {
        fail_open: args.dangerous_status_fail_open,
        ..valet_guard::StatusPolicy::default()
    };
    let mut config = GuardConfig::builder(args.issuer.clone(), args.audience.clone())
        .leeway(Duration::from_secs(args.leeway))
        .status_policy(policy)
        .dangerous_allow_insecure_http(args.dangerous_allow_insecure_issuer)
        .scopes_supported(args.scopes_supported.clone());
    if let Some(resource) = &args.resource {
        config = config.resource(resource.clone());
    }
    if let Some((client_id, secret)) = status_credentials(&args)? {
        config = config.status_credentials(client_id, secret);
    }
    let config = config.build().map_err(|error| config_error(&args, error))?;
    let guard = Guard::start_in_background(config).map_err(|error| format!("guard: {error}"))?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|error| format!("upstream HTTP client: {error}"))?;
    let proxy = Arc::new(Proxy {
        guard,
        scopes: args.require_scopes,
        upstream,
        client,
    });
    // RFC 9728: the metadata document is public, like the health checks.
    let metadata = proxy.guard.metadata_router();
    let app = axum::Router::new()
        .route(HEALTH_PATH, get(health))
        .route(READY_PATH, get(ready))
        .merge(metadata)
        .fallback(forward)
        .with_state(Arc::clone(&proxy));
    let stop_signal = crate::commands::serve::shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|error| format!("bind {}: {error}", args.bind))?;
    tracing::info!(
        listen = %args.bind, upstream = %proxy.upstream.base, issuer = %args.issuer,
        "valet guard is listening; requests are answered 503 until the issuer's keys are loaded (see {READY_PATH})"
    );
    // The same accept loop as `valet serve`: header read timeout, header size
    // limit, drained on shutdown.
    valet_server::serve_router(
        listener,
        app,
        valet_server::ServeOptions::default(),
        stop_signal,
    )
    .await?;
    Ok(())
}

/// The configuration errors an operator fixes with a flag, named by that flag.
fn config_error(args: &GuardArgs, error: ConfigError) -> CliError {
    match error {
        ConfigError::InsecureIssuer(_) => format!(
            "--issuer {}: plain http is allowed only for a loopback host (127.0.0.0/8, ::1, \
             localhost); use https, or pass --dangerous-allow-insecure-issuer to accept keys \
             and revocations over an unprotected network",
            args.issuer
        )
        .into(),
        ConfigError::Issuer(_) => format!(
            "--issuer {}: must be an absolute https URL without query or fragment",
            args.issuer
        )
        .into(),
        ConfigError::StatusCredentials => format!(
            "--client-id and its secret ({CLIENT_SECRET_ENV} or --client-secret-file) must be \
             non-empty and without control characters"
        )
        .into(),
        ConfigError::Resource(resource) => format!(
            "--resource {resource}: must be an https URL (http on a loopback host) without \
             query or fragment"
        )
        .into(),
        error => format!("guard configuration: {error}").into(),
    }
}

/// `--client-id` with its secret from the environment or a file; never from a flag value.
fn status_credentials(args: &GuardArgs) -> Result<Option<(String, String)>, CliError> {
    let from_env = match std::env::var(CLIENT_SECRET_ENV) {
        Ok(secret) => Some(secret),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!("{CLIENT_SECRET_ENV} is not valid UTF-8").into());
        }
    };
    let secret = match (from_env, &args.client_secret_file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{CLIENT_SECRET_ENV} and --client-secret-file are both set: use one"
            )
            .into());
        }
        (Some(secret), None) => Some(secret),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("--client-secret-file {}: {error}", path.display()))?;
            Some(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, None) => None,
    };
    match (&args.client_id, secret) {
        (Some(client_id), Some(secret)) => Ok(Some((client_id.clone(), secret))),
        (Some(_), None) => Err(format!(
            "--client-id needs the client's secret in {CLIENT_SECRET_ENV} or in the file \
             named by --client-secret-file"
        )
        .into()),
        (None, Some(_)) => Err(format!(
            "{CLIENT_SECRET_ENV} is set but --client-id is not: name the client too"
        )
        .into()),
        (None, None) => Ok(None),
    }
}

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

async fn health() -> Response {
    status_response(StatusCode::OK, "ok")
}

async fn ready(State(proxy): State<Arc<Proxy>>) -> Response {
    if proxy.guard.is_ready() {
        return status_response(StatusCode::OK, "ready");
    }
    let mut response = status_response(StatusCode::SERVICE_UNAVAILABLE, "not ready");
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

fn status_response(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, axum::Json(serde_json::json!({ "status": text }))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let url = match proxy
        .upstream
        .url_for(request.uri().path(), request.uri().query())
    {
        Ok(url) => url,
        Err(reason) => {
            tracing::debug!(%reason, "refused a request path");
            return (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response();
        }
    };
    let scopes: Vec<&str> = proxy.scopes.iter().map(String::as_str).collect();
    let verified = match proxy
        .guard
        .authorize_request(
            request.method().as_str(),
            request.uri().path(),
            request.headers(),
            &scopes,
        )
        .await
    {
        Ok(verified) => verified,
        Err(rejection) => return rejection.into_response(),
    };
    let (parts, body) = request.into_parts();
    let mut headers = forwarded_headers(&parts.headers, Direction::Request);
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_string());
    let forwarding = [
        ("x-forwarded-for", peer),
        ("x-forwarded-proto", Some("http".to_owned())),
        (
            "x-forwarded-host",
            parts
                .headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .map(str::to_owned),
        ),
    ];
    let identity = [
        (IDENTITY_HEADERS[0], Some(verified.subject().to_owned())),
        (IDENTITY_HEADERS[1], Some(verified.client_id().to_owned())),
        (IDENTITY_HEADERS[2], Some(verified.scopes().join(" "))),
    ];
    for (name, value) in forwarding.into_iter().chain(identity) {
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    relay(
        proxy.client.request(parts.method, url).headers(headers),
        body,
    )
    .await
}

/// Sends the request upstream and answers with its reply (filtered headers,
/// the body with its length).
async fn relay(outgoing: reqwest::RequestBuilder, body: Body) -> Response {
    let Ok(outgoing) = with_body(outgoing, body).await else {
        return (
            StatusCode::BAD_REQUEST,
            "the request body could not be read\n",
        )
            .into_response();
    };
    let reply = match outgoing.send().await {
        Ok(reply) => axum::http::Response::<reqwest::Body>::from(reply),
        Err(error) => {
            tracing::warn!(%error, "upstream unreachable");
            return (StatusCode::BAD_GATEWAY, "upstream unreachable\n").into_response();
        }
    };
    let (parts, body) = reply.into_parts();
    // The body keeps its length (`Content-Length` goes out again); a small
    // one is read whole, to go out with the head in one write.
    let mut body = Body::new(body);
    if let Some(length) = small_length(&body) {
        match read_whole(body, length).await {
            Ok(whole) => body = Body::from(whole),
            Err(error) => {
                tracing::warn!(%error, "the upstream's reply broke off");
                return (StatusCode::BAD_GATEWAY, "upstream reply broke off\n").into_response();
            }
        }
    }
    let mut response = Response::new(body);
    *response.status_mut() = parts.status;
    *response.headers_mut() = forwarded_headers(&parts.headers, Direction::Response);
    response
}

/// Bodies of known length up to this size, request or reply, are read whole
/// before they are passed on, so they go out in one write with their head
/// (streamed, the head would go first and the body in a second system call);
/// larger bodies and those of unknown length stream.
const SMALL_BODY: u64 = 64 * 1024;

/// The length of a body worth reading whole first (see [`SMALL_BODY`]).
pub(crate) fn small_length(body: &Body) -> Option<usize> {
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
pub(crate) async fn read_whole(mut body: Body, length: usize) -> Result<Bytes, axum::Error> {
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
