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
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use valet_guard::{ConfigError, Guard, GuardConfig};

use crate::commands::forwarding::{
    Direction, Upstream, forwarded_headers, whole_if_small, with_body,
};
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
        listen = %args.bind, upstream = %proxy.upstream.base(), issuer = %args.issuer,
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
    // The body keeps its length (`Content-Length` goes out again).
    let body = match whole_if_small(Body::new(body)).await {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, "the upstream's reply broke off");
            return (StatusCode::BAD_GATEWAY, "upstream reply broke off\n").into_response();
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = parts.status;
    *response.headers_mut() = forwarded_headers(&parts.headers, Direction::Response);
    response
}
