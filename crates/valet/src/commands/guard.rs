//! `valet guard`: a verifying reverse proxy for APIs not written in Rust.
//!
//! Every request must carry a valid access token for `--audience` (checked by
//! `valet-guard`: signature, claims, required scopes, token status list). Valid
//! requests are forwarded to `--upstream` with bodies streamed both ways and the
//! verified identity in `X-Valet-Subject`, `X-Valet-Client-Id` and `X-Valet-Scope`
//! (copies of those headers sent by the client are removed first). Invalid ones
//! get the RFC 6750 answer and never reach the upstream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Args;
use futures_util::TryStreamExt as _;
use valet_guard::{Guard, GuardConfig};

use crate::storage::CliError;

#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Valet's issuer URL (https, or http on a loopback address).
    #[arg(long)]
    pub issuer: String,
    /// The audience tokens must be for (this API's identifier).
    #[arg(long)]
    pub audience: String,
    /// Where valid requests go, e.g. http://127.0.0.1:3000
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
}

/// The identity headers the proxy sets; incoming headers starting with
/// `x-valet` (in any spelling) are dropped.
const IDENTITY_HEADERS: [&str; 3] = ["x-valet-subject", "x-valet-client-id", "x-valet-scope"];

/// RFC 9110 §7.6.1: connection-specific headers are not forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

struct Proxy {
    guard: Guard,
    scopes: Vec<String>,
    upstream: String,
    client: reqwest::Client,
}

pub async fn run(args: GuardArgs) -> Result<(), CliError> {
    crate::commands::serve::init_logging(crate::config::LogFormat::Text);
    let upstream = args.upstream.trim_end_matches('/').to_owned();
    if !(upstream.starts_with("http://") || upstream.starts_with("https://")) {
        return Err(format!("--upstream {upstream}: must be an http:// or https:// URL").into());
    }
    let policy = valet_guard::StatusPolicy {
        fail_open: args.dangerous_status_fail_open,
        ..valet_guard::StatusPolicy::default()
    };
    let config = GuardConfig::builder(args.issuer.clone(), args.audience.clone())
        .leeway(Duration::from_secs(args.leeway))
        .status_policy(policy)
        .build()
        .map_err(|error| format!("guard configuration: {error}"))?;
    let guard = Guard::new(config)
        .await
        .map_err(|error| format!("--issuer {}: {error}", args.issuer))?;
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
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(Arc::clone(&proxy));
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|error| format!("bind {}: {error}", args.bind))?;
    tracing::info!(listen = %args.bind, upstream = %proxy.upstream, issuer = %args.issuer, "valet guard is ready");
    // The same accept loop as `valet serve`: header read timeout, header size
    // limit, drained on shutdown.
    valet_server::serve_router(
        listener,
        app,
        valet_server::ServeOptions::default(),
        crate::commands::serve::shutdown_signal(),
    )
    .await?;
    Ok(())
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let scopes: Vec<&str> = proxy.scopes.iter().map(String::as_str).collect();
    let verified = match proxy.guard.authorize(request.headers(), &scopes).await {
        Ok(verified) => verified,
        Err(rejection) => return rejection.into_response(),
    };
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", proxy.upstream);
    let mut headers = forwarded_headers(&parts.headers);
    let identity = [
        (IDENTITY_HEADERS[0], verified.subject().to_owned()),
        (IDENTITY_HEADERS[1], verified.client_id().to_owned()),
        (IDENTITY_HEADERS[2], verified.scopes().join(" ")),
    ];
    for (name, value) in identity {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let upstream_body = reqwest::Body::wrap_stream(body.into_data_stream());
    let sent = proxy
        .client
        .request(parts.method, &url)
        .headers(headers)
        .body(upstream_body)
        .send()
        .await;
    match sent {
        Ok(reply) => {
            let status = reply.status();
            let headers = forwarded_headers(reply.headers());
            let body = Body::from_stream(reply.bytes_stream().map_err(std::io::Error::other));
            let mut response = Response::new(body);
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(error) => {
            tracing::warn!(%error, "upstream unreachable");
            (StatusCode::BAD_GATEWAY, "upstream unreachable\n").into_response()
        }
    }
}

/// The end-to-end headers of a request or response, without the identity
/// headers a client might try to smuggle in.
fn forwarded_headers(incoming: &HeaderMap) -> HeaderMap {
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
        // `X-Valet_Subject` is the same variable as `X-Valet-Subject` to CGI-style
        // upstreams (Rack, PHP, WSGI): every spelling of the prefix goes.
        let normalized = lower.replace('_', "-");
        if HOP_BY_HOP.contains(&lower)
            || normalized.starts_with("x-valet")
            || lower == "host"
            || lower == "content-length"
            || connection_listed.iter().any(|listed| listed == lower)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}
