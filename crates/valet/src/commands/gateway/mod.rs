//! `valet gateway`: a backend-for-frontend that keeps a browser app's tokens
//! out of the browser.
//!
//! The gateway signs the user in at Valet with the authorization code flow and
//! PKCE as a confidential client, keeps the tokens in a server-side session
//! store (sealed under the cookie key), and gives the browser only an opaque
//! `__Host-` cookie (HttpOnly, Secure, SameSite=Lax, Path=/). Calls under each
//! `--api PREFIX=URL` are forwarded to the URL with the session's access token in
//! `Authorization` (the browser's cookies are never forwarded); the token is
//! refreshed shortly before it expires, once per session however many calls
//! wait for it.
//!
//! Its own endpoints, under `/bff/`:
//! - `GET /bff/login?returnTo=/path`: starts a sign-in (state, nonce and PKCE
//!   verifier in a sealed, ten-minute cookie) and redirects to Valet.
//! - `GET /bff/callback`: checks `state`, `iss` (RFC 9207) and the ID token
//!   (signature against the issuer's JWKS, `iss`, `aud`, `exp`, `nonce`), then
//!   starts the session and redirects to `returnTo`.
//! - `GET /bff/user`: the ID token's claims as JSON, or 401.
//! - `POST /bff/logout`: ends the session here, revokes its refresh token and
//!   answers `{"logout_url": …}`, Valet's end-session URL for the browser to visit.
//! - `POST /bff/backchannel-logout`: OpenID Connect Back-Channel Logout 1.0: a
//!   logout token signed by the issuer ends the sessions of its `sid` (or `sub`).
//! - `GET /bff/health`: 200 while the process serves.
//!
//! CSRF: every request with a method other than GET, HEAD or OPTIONS to `/api`
//! paths and `/bff/logout` needs `X-Valet-CSRF: 1` (which a cross-site form
//! cannot send and a cross-site script cannot send without a preflight the
//! gateway never grants) *and* an `Origin` equal to `--public-url` (or, without
//! `Origin`, `Sec-Fetch-Site: same-origin`).
//!
//! With `--static DIR`, other GET paths serve files from DIR, and paths that name
//! no file serve `DIR/index.html` (a single-page app's routes).

mod api_client;
mod handlers;
mod oidc;
mod pool;
mod proxy;
mod redis;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use clap::Args;
use reqwest::Url;
use tokio::sync::OnceCell;
use valet_jose::MasterKey;

use self::api_client::ApiClient;
use self::oidc::Provider;
use self::session::{Backend, Memory, Sessions};
use crate::commands::forwarding::Upstream;
use crate::storage::CliError;

/// The environment variable holding the client secret (preferred to the flag,
/// whose value every user sees in `ps`).
pub const CLIENT_SECRET_ENV: &str = "VALET_GATEWAY_CLIENT_SECRET";
/// The environment variable holding the cookie key.
pub const COOKIE_KEY_ENV: &str = "VALET_GATEWAY_COOKIE_KEY";

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Valet's issuer URL (https, or http on a loopback host).
    #[arg(long)]
    pub issuer: String,
    /// The gateway's client at Valet: confidential, with redirect URI
    /// PUBLIC_URL/bff/callback and the authorization_code and refresh_token grants.
    #[arg(long)]
    pub client_id: String,
    /// The client's secret.
    #[arg(long, env = CLIENT_SECRET_ENV, hide_env_values = true)]
    pub client_secret: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub bind: SocketAddr,
    /// The URL browsers reach the gateway at (the callback is PUBLIC_URL/bff/callback,
    /// and state-changing requests must come from its origin).
    /// [default: http://BIND]
    #[arg(long)]
    pub public_url: Option<String>,
    /// An API behind the gateway: PREFIX=URL, e.g. /api=http://127.0.0.1:8081
    /// (PREFIX/orders goes to URL/orders; repeatable).
    #[arg(long = "api", value_name = "PREFIX=URL")]
    pub apis: Vec<String>,
    /// A directory to serve as a single-page app (index.html for unknown paths).
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// Where sessions live: memory (this process only) or redis://host[:port][/db]
    /// (shared by every gateway using the same Redis, prefix and cookie key).
    #[arg(long, default_value = "memory")]
    pub session_store: String,
    /// Prefix of the gateway's Redis keys.
    #[arg(long, default_value = "valet-gateway:")]
    pub session_prefix: String,
    /// The key sealing sessions and the login cookie: 32 bytes, base64url. Required
    /// with Redis; with memory a new one is made at each start.
    #[arg(long, env = COOKIE_KEY_ENV, hide_env_values = true)]
    pub cookie_key: Option<String>,
    /// How long a session lasts, in seconds.
    #[arg(long, default_value_t = 12 * 3600)]
    pub session_ttl: u64,
    /// A scope to ask for besides openid and offline_access (repeatable).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Where Valet sends the browser after logout (registered for the client).
    /// [default: PUBLIC_URL/]
    #[arg(long)]
    pub post_logout_redirect_uri: Option<String>,
    /// Threads serving browser connections, each running its own single-threaded
    /// runtime. One thread proxies at the least CPU per request (≈ 20,000 API
    /// calls/s on one core; docs/benchmarks.md); raise it when the gateway keeps
    /// a core busy, or run more gateways behind the load balancer.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,
    /// Accept a plain-http issuer on a non-loopback host.
    #[arg(long)]
    pub dangerous_allow_insecure_issuer: bool,
}

/// Everything a request needs.
pub struct Gateway {
    issuer: String,
    client_id: String,
    client_secret: String,
    /// For the issuer: every exchange within 30 s.
    http: reqwest::Client,
    /// For the APIs: like `valet guard`'s, a connect timeout but no total one (an
    /// API may stream or long-poll), so no timer is armed per call (one per call
    /// woke the runtime's parked driver thread: futex and eventfd calls on every
    /// request).
    api_http: ApiClient,
    /// Discovered on first use (the issuer may start after the gateway).
    provider: OnceCell<Provider>,
    /// `scheme://host[:port]` of `--public-url`.
    public_origin: String,
    redirect_uri: String,
    post_logout_redirect_uri: String,
    scope: String,
    apis: Vec<(String, Upstream)>,
    static_dir: Option<PathBuf>,
    sessions: Sessions,
    session_ttl: Duration,
    /// Seals the login cookie.
    login_key: MasterKey,
    /// One refresh at a time per session.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub async fn run(args: GatewayArgs) -> Result<(), CliError> {
    crate::commands::serve::init_logging(crate::config::LogFormat::Text);
    let bind = args.bind;
    let threads = usize::from(args.threads);
    let gateway = Arc::new(Gateway::from_args(args)?);
    let app = router(Arc::clone(&gateway));
    let stop_signal = crate::commands::serve::shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|error| format!("bind {bind}: {error}"))?;
    tracing::info!(
        listen = %bind, issuer = %gateway.issuer, public_url = %gateway.public_origin,
        "valet gateway is listening"
    );
    // Each connection stays on one single-threaded runtime, and its API calls
    // go out over that thread's own connection pool (`api_client`), so a
    // proxied request wakes no other thread.
    let options = valet_server::ServeOptions {
        connection_threads: Some(valet_server::ConnectionThreads::start(threads)?),
        ..valet_server::ServeOptions::default()
    };
    valet_server::serve_router(listener, app, options, stop_signal).await?;
    Ok(())
}

fn router(gateway: Arc<Gateway>) -> axum::Router {
    axum::Router::new()
        .route("/bff/login", get(handlers::login))
        .route("/bff/callback", get(handlers::callback))
        .route("/bff/user", get(handlers::user))
        .route("/bff/logout", post(handlers::logout))
        .route(
            "/bff/backchannel-logout",
            post(handlers::backchannel_logout),
        )
        .route("/bff/health", get(handlers::health))
        .fallback(proxy::api_or_static)
        .with_state(gateway)
}

impl Gateway {
    fn from_args(args: GatewayArgs) -> Result<Gateway, CliError> {
        let issuer = check_issuer(&args)?;
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.bind));
        let public_origin = origin(&public_url)
            .ok_or_else(|| format!("--public-url {public_url}: must be an http(s) URL"))?;
        let base = public_url.trim_end_matches('/');
        let (key, backend) = session_backend(&args)?;
        let login_key = key
            .derive(b"valet-gateway login")
            .map_err(|error| format!("cookie key: {error}"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| format!("HTTP client: {error}"))?;
        let api_http = ApiClient::new()?;
        let session_ttl = Duration::from_secs(args.session_ttl.max(60));
        // offline_access: an OpenID Connect request gets a refresh token only with
        // it (OIDC Core §11), and the gateway refreshes for the browser.
        let mut scope = vec!["openid".to_owned(), "offline_access".to_owned()];
        scope.extend(
            args.scopes
                .iter()
                .filter(|s| !scope.contains(s))
                .cloned()
                .collect::<Vec<_>>(),
        );
        Ok(Gateway {
            issuer,
            client_id: args.client_id,
            client_secret: args.client_secret,
            http,
            api_http,
            provider: OnceCell::new(),
            redirect_uri: format!("{base}/bff/callback"),
            post_logout_redirect_uri: args
                .post_logout_redirect_uri
                .unwrap_or_else(|| format!("{base}/")),
            public_origin,
            scope: scope.join(" "),
            apis: parse_apis(&args.apis)?,
            static_dir: args.static_dir,
            sessions: Sessions::new(key, backend, session_ttl),
            session_ttl,
            login_key,
            refreshing: Mutex::new(HashMap::new()),
        })
    }

    /// The issuer's metadata and keys, discovered on first use; an error (issuer
    /// unreachable) is retried by the next request.
    async fn provider(&self) -> Result<&Provider, String> {
        self.provider
            .get_or_try_init(|| {
                Provider::discover(
                    self.http.clone(),
                    &self.issuer,
                    self.client_id.clone(),
                    self.client_secret.clone(),
                )
            })
            .await
    }

    /// The lock a session's refresh holds.
    fn refresh_lock(&self, session_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut locks) = self.refreshing.lock() else {
            return Arc::new(tokio::sync::Mutex::new(()));
        };
        if locks.len() > 1024 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        Arc::clone(locks.entry(session_id.to_owned()).or_default())
    }
}

fn check_issuer(args: &GatewayArgs) -> Result<String, CliError> {
    let url =
        Url::parse(&args.issuer).map_err(|error| format!("--issuer {}: {error}", args.issuer))?;
    let secure = url.scheme() == "https"
        || (url.scheme() == "http" && valet_guard::is_loopback(&url))
        || (url.scheme() == "http" && args.dangerous_allow_insecure_issuer);
    if !secure {
        return Err(format!(
            "--issuer {}: plain http is allowed only for a loopback host; use https, or pass \
             --dangerous-allow-insecure-issuer",
            args.issuer
        )
        .into());
    }
    Ok(args.issuer.trim_end_matches('/').to_owned())
}

/// The cookie key and the session backend.
fn session_backend(args: &GatewayArgs) -> Result<(MasterKey, Backend), CliError> {
    let key = match &args.cookie_key {
        Some(text) => MasterKey::from_base64url(text.trim())
            .map_err(|_| format!("--cookie-key ({COOKIE_KEY_ENV}): must be 32 bytes, base64url"))?,
        None => MasterKey::generate().map_err(|error| format!("cookie key: {error}"))?,
    };
    let backend = if args.session_store == "memory" {
        Backend::Memory(Memory::default())
    } else {
        if args.cookie_key.is_none() {
            return Err(format!(
                "--session-store {}: a shared store needs the same --cookie-key ({COOKIE_KEY_ENV}) \
                 on every gateway",
                args.session_store
            )
            .into());
        }
        Backend::Redis(redis::Redis::parse(
            &args.session_store,
            &args.session_prefix,
        )?)
    };
    Ok((key, backend))
}

/// `--api PREFIX=URL` pairs; a prefix is `/` and a name, without a trailing `/`.
fn parse_apis(apis: &[String]) -> Result<Vec<(String, Upstream)>, CliError> {
    let mut parsed = Vec::with_capacity(apis.len());
    for api in apis {
        let Some((prefix, url)) = api.split_once('=') else {
            return Err(format!(
                "--api {api}: expected PREFIX=URL, e.g. /api=http://127.0.0.1:8081"
            )
            .into());
        };
        let prefix = prefix.trim_end_matches('/');
        if !prefix.starts_with('/')
            || prefix.starts_with("/bff")
            || prefix.contains(['?', '#', '%'])
        {
            return Err(format!(
                "--api {api}: the prefix must be a path like /api (not under /bff)"
            )
            .into());
        }
        parsed.push((prefix.to_owned(), Upstream::parse(url)?));
    }
    Ok(parsed)
}

/// `scheme://host[:port]` of an http(s) URL, as a browser sends it in `Origin`.
fn origin(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// Seconds since the Unix epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
