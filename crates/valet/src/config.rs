//! Configuration: defaults, then `valet.toml`, then `VALET_*` environment
//! variables, then command-line flags. Validated once at start; an error names
//! the setting at fault.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use valet_core::branding::Branding;
use valet_core::config::DpopPolicy;
use valet_core::config::{
    ClientRegistration, DynamicClients, MailSettings, MfaPolicy, Registration, StatusEventsAuth,
};
use valet_core::i18n::Catalogues;
use valet_core::store::MAX_ACCESS_TOKEN_TTL;
use valet_core::{KeyPolicy, Settings};
use valet_jose::Algorithm;

/// Every setting, with its default. The same names work in `valet.toml` and, upper-cased
/// with a `VALET_` prefix, in the environment (`VALET_ACCESS_TOKEN_TTL=300`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on: `IP:PORT`, or `HOST:PORT` with a host name resolved
    /// at start (Valet listens on its first IPv4 address, else its first address).
    pub bind: String,
    /// Public base URL of this server; defaults to `http://{bind}`.
    pub issuer: Option<String>,
    /// Where the SQLite database and `master.key` live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; defaults to SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Access token lifetime in seconds, unless a client overrides it.
    pub access_token_ttl: i64,
    /// No access token lives longer than this many seconds.
    pub access_token_max_ttl: i64,
    /// Seconds between automatic signing key rotations.
    pub key_rotation_period: i64,
    /// Seconds a new key is published in the JWKS before it signs.
    pub key_publish_lead: i64,
    /// `ES256` (default), `EdDSA` (Ed25519) or `RS256`: the algorithm access tokens
    /// and status list tokens are signed with. A key of it is kept and rotated.
    pub access_token_alg: Algorithm,
    /// Seconds a node may serve a client record from memory (bounds how late a
    /// deleted client or rotated secret is noticed by other nodes).
    pub client_cache_ttl: i64,
    /// Seconds a sign-in lasts before the user must log in again.
    pub session_ttl: i64,
    /// Seconds a refresh token may go unused before it expires.
    pub refresh_token_idle_ttl: i64,
    /// Seconds after which a grant's refresh tokens end, however often used.
    pub refresh_token_absolute_ttl: i64,
    /// Seconds a client may take to send a request's line and headers (counted
    /// from when the server starts waiting for them, so also how long an idle
    /// keep-alive connection stays open); then the connection is closed. Stops
    /// slow clients from holding connections open.
    pub header_read_timeout: u64,
    /// PEM certificate chain: with `tls_key`, Valet serves https itself.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Seconds audit records are kept (`valet audit`, at least 3600); older ones
    /// are deleted.
    pub audit_retention: i64,
    /// Load balancers and reverse proxies (addresses or CIDR networks) whose
    /// `X-Forwarded-For` header names the client for the per-address throttles.
    /// Empty by default: the header is ignored. In the environment, separate
    /// them with commas.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub trusted_proxies: Vec<String>,
    /// Password checks (sign-ins) that may wait for a free CPU; more are answered
    /// 503 with `Retry-After` at once.
    pub password_hash_queue: usize,
    /// Connections this node serves at once; more wait in the listen backlog
    /// until one closes. Defaults to half the file-descriptor limit (raised to
    /// its hard maximum at start), at most 16384.
    pub max_connections: Option<usize>,
    /// Revocation push streams (`/statuslists/events`) open at once; more are
    /// answered 503 with `Retry-After`.
    pub status_events_max_streams: usize,
    /// Seconds after which the server ends a push stream; its client reconnects.
    pub status_events_max_lifetime: i64,
    /// `none` (anyone may open the push stream) or `token` (a bearer access token
    /// of this server with the issuer as audience and scope `valet:status`).
    pub status_events_auth: StatusEventsAuthSetting,
    /// Failed sign-ins for one account from one address (IPv6: one /64) within
    /// `login_failure_window` before that account is refused from that address.
    pub login_max_failures: usize,
    /// Failed sign-ins from one address, whatever the accounts, within
    /// `login_failure_window` before the address is refused.
    pub login_address_max_failures: usize,
    /// Seconds a failed sign-in counts (a sliding window): also the longest a
    /// lock-out lasts after the last failure. `valet user unlock` ends one early.
    pub login_failure_window: i64,
    /// Where mail goes: `smtps://HOST[:PORT]` (TLS) or `smtp+starttls://HOST[:PORT]`
    /// (STARTTLS required), with credentials as `user:password@` before the host
    /// (percent-encoded; never logged); `smtp://HOST[:PORT]` for a relay on this
    /// machine only; or `log` (development: mail is written to the log, links
    /// included, and not sent). Unset: no mail.
    pub smtp_url: Option<SmtpUrl>,
    /// The sender of Valet's mail, e.g. `Valet <no-reply@example.com>`.
    pub mail_from: Option<String>,
    /// Lets users reset a forgotten password by mail (`/reset`); needs `smtp_url`.
    pub password_reset: bool,
    /// `closed` (only operators create users) or `open` (anyone may create an
    /// account at `/register`; needs `smtp_url` to verify addresses).
    pub registration: RegistrationSetting,
    /// Seconds a password reset link works.
    pub password_reset_ttl: i64,
    /// Seconds an email verification link works.
    pub email_verification_ttl: i64,
    /// `optional` (users who enrolled a second factor prove it; clients with
    /// `--require-mfa` and requests with `acr_values` may require one) or
    /// `required` (every user signs in with a second factor, enrolling TOTP at
    /// the next sign-in if they have none).
    pub mfa: MfaSetting,
    /// Seconds a device code and its user code work (RFC 8628).
    pub device_code_ttl: i64,
    /// Seconds a device waits between polls of `/token` (RFC 8628 `interval`).
    pub device_poll_interval: i64,
    /// Every client must push its authorization requests to `/par` first
    /// (RFC 9126); a client's own `--require-par` asks it of that client.
    pub require_pushed_authorization_requests: bool,
    /// DPoP (RFC 9449): proofs must carry a nonce from this server (`use_dpop_nonce`
    /// and a `DPoP-Nonce` header otherwise). Nonces are stateless: every node of a
    /// cluster accepts every other node's.
    pub dpop_require_nonce: bool,
    /// Seconds a DPoP proof is accepted after its `iat` (5 to 600); its `jti` is
    /// remembered that long against replay.
    pub dpop_proof_max_age: i64,
    /// Dynamic client registration at `/connect/register` (RFC 7591/7592):
    /// `closed` (404), `initial_token` (a token from `valet client
    /// initial-token create` is needed) or `open` (anyone, at
    /// `client_registration_rate` per address and hour).
    pub client_registration: ClientRegistrationSetting,
    /// Scopes a self-registered client, or one known by its metadata document,
    /// may have (space-separated).
    pub client_registration_scopes: String,
    /// Audiences (RFC 8707 resources, space-separated) such clients' tokens may
    /// be for, e.g. your MCP server's URL.
    pub client_registration_audiences: String,
    /// Registrations per client address and hour while `client_registration = open`.
    pub client_registration_rate: usize,
    /// Lets a `client_id` be the https URL of the client's metadata document
    /// (Client ID Metadata Documents, as the MCP authorization spec prefers).
    pub client_id_metadata_documents: bool,
    /// Seconds a fetched metadata document is used at least / at most,
    /// whatever its `Cache-Control` says.
    pub client_metadata_min_ttl: i64,
    pub client_metadata_max_ttl: i64,
    /// Development only: metadata documents may be at `http://` loopback URLs.
    /// Refused with an https issuer.
    pub dangerous_client_metadata_allow_loopback: bool,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Allows a plain-http issuer on a non-loopback host. Tokens and secrets would
    /// cross the network in clear: only for a TLS-terminating proxy you trust.
    pub dangerous_allow_insecure_issuer: bool,
    /// The pages' language when neither `ui_locales` nor the browser's
    /// `Accept-Language` names one Valet has (`en`, `de`, or one added in
    /// `locales_dir`).
    pub default_locale: String,
    /// A directory of `LANG.toml` catalogues (e.g. `de.toml`, `fr.toml`) that
    /// override texts of a built-in language or add a language; checked at
    /// start (unknown keys and placeholders are refused).
    pub locales_dir: Option<PathBuf>,
    /// The name shown at the top of every page.
    pub product_name: String,
    /// A logo shown next to the name: an `https://` URL or a path on this server.
    pub logo_url: Option<String>,
    /// The pages' accent colour (`#rrggbb`) in the light colour scheme; must
    /// reach 4.5:1 contrast against white.
    pub brand_color: Option<String>,
    /// The accent colour in the dark colour scheme; must reach 4.5:1 against
    /// the dark card colour #1d2026.
    pub brand_color_dark: Option<String>,
    /// `IP:PORT` of a second listener that serves `/metrics` (and the health
    /// probes) for the scraper only, e.g. `127.0.0.1:9090`; the public listener
    /// then answers 404 for `/metrics`. Unset: `/metrics` is on the public
    /// listener, next to the endpoints (keep it from the internet at the proxy).
    pub metrics_bind: Option<String>,
    /// One log line per request (target `valet::access`): method, path without
    /// its query, status, duration, bytes, request id, client address.
    pub access_log: bool,
    /// OTLP/HTTP collector to send traces to, e.g. `http://127.0.0.1:4318`
    /// (spans go to `{otlp_endpoint}/v1/traces`, protobuf). Unset: no tracing
    /// export.
    pub otlp_endpoint: Option<String>,
    /// Benchmark mode, never for real users: new password hashes are argon2id
    /// at m = 8 KiB, t = 1, p = 1 so a load test of the sign-in flow measures the
    /// protocol, not the hash. `bind` must be a loopback address; the log warns
    /// at start and every minute, and `/metrics` and `/readyz` say
    /// `valet_insecure_benchmark_mode 1`.
    pub insecure_benchmark_password_hash: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `smtp_url`: may hold a password, so its `Debug` shows only that it is set.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SmtpUrl(pub String);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpUrl(<redacted>)")
    }
}

/// The values of `registration`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationSetting {
    Closed,
    Open,
    Invite,
}

/// The values of `client_registration`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientRegistrationSetting {
    Closed,
    InitialToken,
    Open,
}

/// The values of `mfa`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MfaSetting {
    Optional,
    Required,
}

/// The values of `status_events_auth`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StatusEventsAuthSetting {
    None,
    Token,
}

/// The largest default `max_connections`, however high the descriptor limit.
pub const MAX_DEFAULT_CONNECTIONS: usize = 16_384;

/// File descriptors `max_connections` leaves to everything else.
pub const RESERVED_DESCRIPTORS: usize = 64;

/// Fewest connections `max_connections` may allow: room for the health checks,
/// a few streams and the token endpoint.
pub const MIN_CONNECTIONS: usize = 16;

impl Default for Config {
    fn default() -> Self {
        let keys = KeyPolicy::default();
        let defaults = Settings::new("");
        Self {
            bind: "127.0.0.1:8080".to_owned(),
            issuer: None,
            data_dir: PathBuf::from("./valet-data"),
            database_url: None,
            access_token_ttl: 600,
            access_token_max_ttl: 3600,
            key_rotation_period: keys.rotation_period,
            key_publish_lead: keys.publish_lead,
            access_token_alg: keys.access_token_alg,
            client_cache_ttl: 5,
            session_ttl: defaults.session_ttl,
            refresh_token_idle_ttl: defaults.refresh_token_idle_ttl,
            refresh_token_absolute_ttl: defaults.refresh_token_absolute_ttl,
            header_read_timeout: valet_server::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
            tls_cert: None,
            tls_key: None,
            audit_retention: defaults.audit_retention,
            trusted_proxies: Vec::new(),
            password_hash_queue: defaults.password_hash_queue,
            max_connections: None,
            status_events_max_streams: defaults.status_events_max_streams,
            status_events_max_lifetime: defaults.status_events_max_lifetime,
            status_events_auth: StatusEventsAuthSetting::None,
            login_max_failures: defaults.login_throttle.account_failures,
            login_address_max_failures: defaults.login_throttle.address_failures,
            login_failure_window: defaults.login_throttle.window_seconds,
            smtp_url: None,
            mail_from: None,
            password_reset: defaults.password_reset,
            registration: RegistrationSetting::Closed,
            password_reset_ttl: defaults.password_reset_ttl,
            email_verification_ttl: defaults.email_verification_ttl,
            mfa: MfaSetting::Optional,
            device_code_ttl: defaults.device_code_ttl,
            device_poll_interval: defaults.device_poll_interval,
            require_pushed_authorization_requests: defaults.require_pushed_authorization_requests,
            dpop_require_nonce: defaults.dpop.require_nonce,
            dpop_proof_max_age: defaults.dpop.proof_max_age,
            client_registration: ClientRegistrationSetting::Closed,
            client_registration_scopes: defaults.dynamic_clients.scopes.join(" "),
            client_registration_audiences: String::new(),
            client_registration_rate: defaults.dynamic_clients.open_rate_per_hour,
            client_id_metadata_documents: false,
            client_metadata_min_ttl: defaults.dynamic_clients.metadata_min_ttl,
            client_metadata_max_ttl: defaults.dynamic_clients.metadata_max_ttl,
            dangerous_client_metadata_allow_loopback: false,
            log_format: LogFormat::Text,
            dangerous_allow_insecure_issuer: false,
            default_locale: valet_core::i18n::FALLBACK_LOCALE.to_owned(),
            locales_dir: None,
            product_name: Branding::default().product_name,
            logo_url: None,
            brand_color: None,
            brand_color_dark: None,
            metrics_bind: None,
            access_log: true,
            otlp_endpoint: None,
            insecure_benchmark_password_hash: false,
        }
    }
}

/// The settings given as flags; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dangerous_allow_insecure_issuer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_benchmark_password_hash: Option<bool>,
}

/// `VALET_*` variables that are not settings of [`Config`]: the master key, the
/// configuration file, the log filter, and the client secret of `valet guard`.
pub const EXTRA_ENV_VARS: [&str; 6] = [
    "VALET_MASTER_KEY",
    "VALET_CONFIG",
    "VALET_LOG",
    "VALET_GUARD_CLIENT_SECRET",
    "VALET_GATEWAY_CLIENT_SECRET",
    "VALET_GATEWAY_COOKIE_KEY",
];

/// Variables of Valet's own test suite and benchmark scripts (`VALET_TEST_*`,
/// `VALET_REQUIRE_*`, `VALET_BENCH_*`, `VALET_UPDATE_SCREENSHOTS`): documented as
/// test-only and accepted, so a developer's shell that exports them can still run
/// `valet`. No setting starts with these prefixes.
const TEST_ENV_PREFIXES: [&str; 3] = ["VALET_TEST_", "VALET_REQUIRE_", "VALET_BENCH_"];
const TEST_ENV_VARS: [&str; 1] = ["VALET_UPDATE_SCREENSHOTS"];

/// The settings' names as `valet.toml` spells them, taken from [`Config`] itself
/// (every field, in declaration order), so a new setting is accepted from the
/// environment without a second list to keep in step.
pub fn setting_names() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        // `Config` is a struct of plain fields: it always serializes to an object.
        _ => Vec::new(),
    }
}

/// Refuses `VALET_*` environment variables that Valet does not read: a misspelled
/// setting would otherwise be ignored in silence. Names the closest known one.
pub fn check_environment<I, K>(names: I) -> Result<(), ConfigError>
where
    I: IntoIterator<Item = K>,
    K: AsRef<std::ffi::OsStr>,
{
    let settings: Vec<String> = setting_names()
        .iter()
        .map(|name| format!("VALET_{}", name.to_uppercase()))
        .collect();
    let known: Vec<&str> = settings
        .iter()
        .map(String::as_str)
        .chain(EXTRA_ENV_VARS)
        .collect();
    let mut unknown = Vec::new();
    for name in names {
        let name = name.as_ref().to_string_lossy();
        if !name.starts_with("VALET_")
            || known.contains(&name.as_ref())
            || TEST_ENV_VARS.contains(&name.as_ref())
            || TEST_ENV_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix))
        {
            continue;
        }
        let closest = known
            .iter()
            .min_by_key(|candidate| edit_distance(&name, candidate))
            .copied()
            .unwrap_or("VALET_BIND");
        unknown.push(format!(
            "environment variable {name} is not a Valet setting (did you mean {closest}?)"
        ));
    }
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    Err(ConfigError(format!(
        "{}; fix or unset it: Valet reads only the VALET_* variables listed in the README's Configuration table",
        unknown.join("; ")
    )))
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(usize::from(ca != *cb));
            let delete = previous
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = current
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or_default()
}

/// An OTLP/HTTP base URL: `http://` or `https://`, a host, no user name or
/// password (put credentials in a collector on this machine, not in the URL:
/// it is logged at start), no query or fragment.
fn check_otlp_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let fail = |reason: &str| {
        ConfigError(format!(
            "setting `otlp_endpoint`: {reason}; expected a URL such as http://127.0.0.1:4318"
        ))
    };
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .ok_or_else(|| fail("must start with http:// or https://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(fail("has no host"));
    }
    if authority.contains('@') {
        return Err(fail("must not carry a user name or password"));
    }
    if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail("must not have a query, a fragment or spaces"));
    }
    Ok(())
}

/// A list in `valet.toml`; a comma-separated string in the environment.
fn list_or_comma_separated<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrText::deserialize(deserializer)? {
        ListOrText::List(list) => list,
        ListOrText::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(String::from)
            .collect(),
    })
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration error: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where the configuration file is: `--config`/`VALET_CONFIG`, else `./valet.toml`
/// if it exists.
pub fn load(config_file: Option<&Path>, flags: FlagOverrides) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    match config_file {
        Some(path) => {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "--config {}: no such file",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        None => {
            let default = Path::new("valet.toml");
            if default.is_file() {
                figment = figment.merge(Toml::file_exact(default));
            }
        }
    }
    let names = setting_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let config: Config = figment
        .merge(Env::prefixed("VALET_").only(&names))
        .merge(Serialized::defaults(flags))
        .extract()
        .map_err(|error| ConfigError(describe_figment_error(error)))?;
    config.validate()?;
    Ok(config)
}

fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            let path = if e.path.is_empty() {
                String::new()
            } else {
                format!("setting `{}`: ", e.path.join("."))
            };
            format!("{path}{}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_address()?;
        let issuer = self.issuer();
        check_issuer(&issuer, self.dangerous_allow_insecure_issuer)?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError(
                "settings `tls_cert` and `tls_key`: give both to serve https, or neither"
                    .to_owned(),
            ));
        }
        self.check_lifetimes()?;
        self.check_ranges()?;
        self.check_limits()?;
        self.trusted_proxies()?;
        self.check_mail()?;
        self.check_dynamic_clients()?;
        self.branding()?;
        self.catalogues()?;
        self.check_observability()?;
        self.check_benchmark_mode()?;
        self.check_database_url()
    }

    /// Benchmark mode's cheap hashes must never guard reachable accounts: it
    /// runs on a loopback `bind` only.
    fn check_benchmark_mode(&self) -> Result<(), ConfigError> {
        if !self.insecure_benchmark_password_hash {
            return Ok(());
        }
        let address = self.bind_address()?;
        if !address.ip().is_loopback() {
            return Err(ConfigError(format!(
                "setting `insecure_benchmark_password_hash`: benchmark mode makes password hashes anyone can guess offline, so `bind` must be a loopback address (127.0.0.1 or [::1]), got {address}"
            )));
        }
        // A loopback bind behind a proxy would still serve the world: the issuer
        // (what clients reach) must be on loopback too, and no proxy trusted.
        let issuer = self.issuer();
        if !reqwest::Url::parse(&issuer).is_ok_and(|url| valet_guard::is_loopback(&url)) {
            return Err(ConfigError(format!(
                "setting `insecure_benchmark_password_hash`: benchmark mode serves loopback clients only, so `issuer` must be a loopback URL, got {issuer}"
            )));
        }
        if !self.trusted_proxies.is_empty() {
            return Err(ConfigError(
                "setting `insecure_benchmark_password_hash`: benchmark mode serves loopback clients only, so `trusted_proxies` must be empty".to_owned(),
            ));
        }
        Ok(())
    }

    /// `metrics_bind` is an address apart from `bind`; `otlp_endpoint` an
    /// http(s) URL without credentials, query or fragment.
    fn check_observability(&self) -> Result<(), ConfigError> {
        if let Some(address) = self.metrics_bind_address()?
            && address == self.bind_address()?
        {
            return Err(ConfigError(format!(
                "setting `metrics_bind` ({address}): must differ from `bind`, or be left unset to serve /metrics on the public listener"
            )));
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            check_otlp_endpoint(endpoint)?;
        }
        Ok(())
    }

    /// The metrics listener's address: `metrics_bind` parsed as `IP:PORT`.
    pub fn metrics_bind_address(&self) -> Result<Option<SocketAddr>, ConfigError> {
        self.metrics_bind
            .as_deref()
            .map(|text| {
                text.parse::<SocketAddr>().map_err(|_| {
                    ConfigError(format!(
                        "setting `metrics_bind` ({text}): expected IP:PORT such as 127.0.0.1:9090 or [::1]:9090"
                    ))
                })
            })
            .transpose()
    }

    /// The settings `product_name`, `logo_url`, `brand_color` and
    /// `brand_color_dark`, checked (colours for WCAG AA contrast).
    pub fn branding(&self) -> Result<Branding, ConfigError> {
        Branding::from_settings(
            &self.product_name,
            self.logo_url.as_deref(),
            self.brand_color.as_deref(),
            self.brand_color_dark.as_deref(),
        )
        .map_err(ConfigError)
    }

    /// The built-in catalogues with those in `locales_dir` laid over them,
    /// and `default_locale`.
    pub fn catalogues(&self) -> Result<Catalogues, ConfigError> {
        let files = match &self.locales_dir {
            Some(dir) => read_catalogue_files(dir)?,
            None => Vec::new(),
        };
        Catalogues::with_overrides(&self.default_locale, &files).map_err(|error| {
            match &self.locales_dir {
                Some(dir) => ConfigError(format!(
                    "setting `locales_dir` ({}): {error}",
                    dir.display()
                )),
                None => ConfigError(error),
            }
        })
    }

    /// The core's own check of the dynamic client settings, and each listed
    /// scope and audience well-formed.
    fn check_dynamic_clients(&self) -> Result<(), ConfigError> {
        let settings = self.settings();
        for scope in &settings.dynamic_clients.scopes {
            // RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E.
            let token = |b: u8| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E);
            if !scope.bytes().all(token) {
                return Err(ConfigError(format!(
                    "setting `client_registration_scopes`: {scope} is not a scope token"
                )));
            }
            // A self-registered client must never reach the admin API.
            if valet_core::admin::access::ADMIN_SCOPES.contains(&scope.as_str()) {
                return Err(ConfigError(format!(
                    "setting `client_registration_scopes`: {scope} is an admin API scope, which only an operator may give a client"
                )));
            }
        }
        let admin_audience = valet_core::admin::access::admin_audience(&settings.issuer);
        if settings.dynamic_clients.audiences.contains(&admin_audience) {
            return Err(ConfigError(format!(
                "setting `client_registration_audiences`: {admin_audience} is the admin API, which only an operator may give a client"
            )));
        }
        if settings.dynamic_clients.dangerous_metadata_allow_loopback && settings.is_https() {
            return Err(ConfigError(
                "setting `dangerous_client_metadata_allow_loopback`: for development only, and refused with an https issuer"
                    .to_owned(),
            ));
        }
        let dynamic = &settings.dynamic_clients;
        if !(1..=dynamic.metadata_max_ttl).contains(&dynamic.metadata_min_ttl)
            || dynamic.metadata_max_ttl > 7 * 86_400
        {
            return Err(ConfigError(
                "settings `client_metadata_min_ttl` and `client_metadata_max_ttl`: need 1 <= min <= max <= 604800 seconds"
                    .to_owned(),
            ));
        }
        if self.client_registration == ClientRegistrationSetting::Open
            && self.client_registration_rate == 0
        {
            return Err(ConfigError(
                "setting `client_registration_rate`: must be at least 1 while `client_registration` is open"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The mailer `smtp_url` names, if any (see `valet_server::mail`).
    pub fn mailer(&self) -> Result<Option<valet_server::mail::Mailer>, ConfigError> {
        self.smtp_url
            .as_ref()
            .map(|url| valet_server::mail::Mailer::from_url(&url.0).map_err(ConfigError))
            .transpose()
    }

    /// `smtp_url` parses, `mail_from` is a mailbox, and what needs mail has it.
    fn check_mail(&self) -> Result<(), ConfigError> {
        let mailer = self.mailer()?;
        match (&mailer, &self.mail_from) {
            (Some(valet_server::mail::Mailer::Smtp { .. }), None) => {
                return Err(ConfigError(
                    "setting `mail_from`: needed with `smtp_url`, e.g. `Valet <no-reply@example.com>`"
                        .to_owned(),
                ));
            }
            (_, Some(from)) => valet_server::mail::check_mailbox(from)
                .map_err(|reason| ConfigError(format!("setting `mail_from` ({from}): {reason}")))?,
            _ => {}
        }
        if self.registration != RegistrationSetting::Closed && mailer.is_none() {
            return Err(ConfigError(
                "setting `registration`: needs mail to verify addresses; set `smtp_url` (and `mail_from`)"
                    .to_owned(),
            ));
        }
        if self.password_reset && mailer.is_none() {
            return Err(ConfigError(
                "setting `password_reset`: needs mail; set `smtp_url` (and `mail_from`)".to_owned(),
            ));
        }
        for (name, value, range) in [
            (
                "password_reset_ttl",
                self.password_reset_ttl,
                valet_core::config::PASSWORD_RESET_TTL_RANGE,
            ),
            (
                "email_verification_ttl",
                self.email_verification_ttl,
                valet_core::config::EMAIL_VERIFICATION_TTL_RANGE,
            ),
            (
                "dpop_proof_max_age",
                self.dpop_proof_max_age,
                valet_core::config::DPOP_PROOF_MAX_AGE_RANGE,
            ),
        ] {
            if !range.contains(&value) {
                return Err(ConfigError(format!(
                    "setting `{name}`: must be between {} and {} seconds, got {value}",
                    range.start(),
                    range.end()
                )));
            }
        }
        Ok(())
    }

    /// Token, key and session lifetimes: positive, and consistent with each other.
    fn check_lifetimes(&self) -> Result<(), ConfigError> {
        let positive = [
            ("access_token_ttl", self.access_token_ttl),
            ("access_token_max_ttl", self.access_token_max_ttl),
            ("key_rotation_period", self.key_rotation_period),
            ("key_publish_lead", self.key_publish_lead),
            ("session_ttl", self.session_ttl),
            ("refresh_token_idle_ttl", self.refresh_token_idle_ttl),
            (
                "refresh_token_absolute_ttl",
                self.refresh_token_absolute_ttl,
            ),
        ];
        for (name, value) in positive {
            if value <= 0 {
                return Err(ConfigError(format!(
                    "setting `{name}`: must be a positive number of seconds, got {value}"
                )));
            }
        }
        // Revocation keeps status list blocks and revocation records this long
        // past the last moment a token could have been issued: a longer-lived
        // access token would outlive its own revocation.
        if self.access_token_max_ttl > MAX_ACCESS_TOKEN_TTL {
            return Err(ConfigError(format!(
                "setting `access_token_max_ttl`: {} exceeds {MAX_ACCESS_TOKEN_TTL} seconds (24 hours), the longest access token lifetime that revocation covers; use a shorter lifetime and refresh tokens for longer access",
                self.access_token_max_ttl
            )));
        }
        if self.access_token_ttl > self.access_token_max_ttl {
            return Err(ConfigError(format!(
                "setting `access_token_ttl`: {} exceeds access_token_max_ttl ({})",
                self.access_token_ttl, self.access_token_max_ttl
            )));
        }
        if self.key_publish_lead >= self.key_rotation_period {
            return Err(ConfigError(format!(
                "setting `key_publish_lead`: {} must be shorter than key_rotation_period ({})",
                self.key_publish_lead, self.key_rotation_period
            )));
        }
        // Keys are re-read every 10 s and the JWKS is cached for a quarter of the
        // lead: under a minute there is no safe margin.
        if self.key_publish_lead < 60 {
            return Err(ConfigError(format!(
                "setting `key_publish_lead`: {} is too short; at least 60 seconds, so every JWKS cache holds a key before it signs",
                self.key_publish_lead
            )));
        }
        if self.refresh_token_idle_ttl > self.refresh_token_absolute_ttl {
            return Err(ConfigError(format!(
                "setting `refresh_token_idle_ttl`: {} exceeds refresh_token_absolute_ttl ({})",
                self.refresh_token_idle_ttl, self.refresh_token_absolute_ttl
            )));
        }
        Ok(())
    }

    /// Cache, timeout, lock-out and retention settings within their ranges.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        if !(0..=3600).contains(&self.client_cache_ttl) {
            return Err(ConfigError(format!(
                "setting `client_cache_ttl`: must be between 0 and 3600 seconds, got {}",
                self.client_cache_ttl
            )));
        }
        if !(1..=300).contains(&self.header_read_timeout) {
            return Err(ConfigError(format!(
                "setting `header_read_timeout`: must be between 1 and 300 seconds, got {}",
                self.header_read_timeout
            )));
        }
        if !(1..=1000).contains(&self.login_max_failures) {
            return Err(ConfigError(format!(
                "setting `login_max_failures`: must be between 1 and 1000, got {}",
                self.login_max_failures
            )));
        }
        if !(self.login_max_failures..=100_000).contains(&self.login_address_max_failures) {
            return Err(ConfigError(format!(
                "setting `login_address_max_failures`: must be between login_max_failures ({}) and 100000, got {}",
                self.login_max_failures, self.login_address_max_failures
            )));
        }
        if !(60..=86_400).contains(&self.login_failure_window) {
            return Err(ConfigError(format!(
                "setting `login_failure_window`: must be between 60 and 86400 seconds, got {}",
                self.login_failure_window
            )));
        }
        if self.audit_retention < 3600 {
            return Err(ConfigError(format!(
                "setting `audit_retention`: must be at least 3600 seconds, got {}",
                self.audit_retention
            )));
        }
        Ok(())
    }

    fn check_database_url(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(ConfigError(
                "setting `database_url`: must start with sqlite:// or postgres://".to_owned(),
            ));
        }
        Ok(())
    }

    /// The resource limits (see docs/deployment.md, "Limits").
    fn check_limits(&self) -> Result<(), ConfigError> {
        if self.password_hash_queue > 65_536 {
            return Err(ConfigError(format!(
                "setting `password_hash_queue`: at most 65536 waiting password checks, got {}",
                self.password_hash_queue
            )));
        }
        if self.status_events_max_streams == 0 {
            return Err(ConfigError(
                "setting `status_events_max_streams`: must be at least 1".to_owned(),
            ));
        }
        if !(10..=86_400).contains(&self.status_events_max_lifetime) {
            return Err(ConfigError(format!(
                "setting `status_events_max_lifetime`: must be between 10 and 86400 seconds, got {}",
                self.status_events_max_lifetime
            )));
        }
        if let Some(max) = self.max_connections {
            self.check_connections(max)?;
        }
        Ok(())
    }

    /// `max_connections` (given or derived) leaves room beside the push streams,
    /// so health checks and token requests are answered while the streams are
    /// at their cap.
    pub fn check_connections(&self, max_connections: usize) -> Result<(), ConfigError> {
        if max_connections < MIN_CONNECTIONS {
            return Err(ConfigError(format!(
                "setting `max_connections`: must be at least {MIN_CONNECTIONS}, got {max_connections}"
            )));
        }
        if self
            .status_events_max_streams
            .saturating_add(MIN_CONNECTIONS)
            > max_connections
        {
            return Err(ConfigError(format!(
                "setting `status_events_max_streams`: {} leaves fewer than {MIN_CONNECTIONS} of max_connections ({max_connections}) for other requests; lower it or raise max_connections",
                self.status_events_max_streams
            )));
        }
        Ok(())
    }

    /// `max_connections`, or its default from the process's file-descriptor limit
    /// (`None` where there is none to read): half of it, at most
    /// [`MAX_DEFAULT_CONNECTIONS`]. Either way it stays [`RESERVED_DESCRIPTORS`]
    /// below the limit, for the store, the log and the listening socket.
    pub fn connection_limit(&self, descriptor_limit: Option<u64>) -> Result<usize, ConfigError> {
        let limit = descriptor_limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
        let max = match (self.max_connections, limit) {
            (Some(max), _) => max,
            (None, Some(limit)) => (limit / 2).min(MAX_DEFAULT_CONNECTIONS),
            (None, None) => valet_server::DEFAULT_MAX_CONNECTIONS,
        };
        if let Some(limit) = limit
            && max.saturating_add(RESERVED_DESCRIPTORS) > limit
        {
            return Err(ConfigError(format!(
                "setting `max_connections`: {max} connections need more file descriptors than the limit of {limit} allows ({RESERVED_DESCRIPTORS} are kept for the store and files); raise the limit (ulimit -n, LimitNOFILE=) or lower max_connections"
            )));
        }
        self.check_connections(max)?;
        Ok(max)
    }

    /// The address to listen on: `bind` parsed, or its host name resolved (the
    /// first IPv4 address, else the first address, so `localhost:8080` listens
    /// where `http://localhost:8080` usually connects first).
    pub fn bind_address(&self) -> Result<SocketAddr, ConfigError> {
        let fail = |reason: String| {
            ConfigError(format!(
                "setting `bind` ({}): {reason}; expected HOST:PORT such as 127.0.0.1:8080, [::1]:8080 or localhost:8080",
                self.bind
            ))
        };
        if let Ok(address) = self.bind.parse::<SocketAddr>() {
            return Ok(address);
        }
        let valid_port = self
            .bind
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid_port {
            return Err(fail("not a host and port".to_owned()));
        }
        let resolved: Vec<SocketAddr> =
            std::net::ToSocketAddrs::to_socket_addrs(self.bind.as_str())
                .map_err(|error| fail(format!("cannot resolve it: {error}")))?
                .collect();
        resolved
            .iter()
            .find(|address| address.is_ipv4())
            .or_else(|| resolved.first())
            .copied()
            .ok_or_else(|| fail("the host name has no address".to_owned()))
    }

    /// The issuer without a trailing slash.
    pub fn issuer(&self) -> String {
        match &self.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_owned(),
            None if self.tls_cert.is_some() => format!("https://{}", self.bind),
            None => format!("http://{}", self.bind),
        }
    }

    pub fn settings(&self) -> Settings {
        let mut settings = Settings::new(self.issuer());
        settings.access_token_ttl = self.access_token_ttl;
        settings.access_token_max_ttl = self.access_token_max_ttl;
        settings.client_cache_ttl = self.client_cache_ttl;
        settings.session_ttl = self.session_ttl;
        settings.refresh_token_idle_ttl = self.refresh_token_idle_ttl;
        settings.refresh_token_absolute_ttl = self.refresh_token_absolute_ttl;
        settings.audit_retention = self.audit_retention;
        settings.password_hash_queue = self.password_hash_queue;
        settings.insecure_benchmark_password_hash = self.insecure_benchmark_password_hash;
        settings.status_events_max_streams = self.status_events_max_streams;
        settings.status_events_max_lifetime = self.status_events_max_lifetime;
        settings.status_events_auth = match self.status_events_auth {
            StatusEventsAuthSetting::None => StatusEventsAuth::None,
            StatusEventsAuthSetting::Token => StatusEventsAuth::Token,
        };
        settings.login_throttle.account_failures = self.login_max_failures;
        settings.login_throttle.address_failures = self.login_address_max_failures;
        settings.login_throttle.window_seconds = self.login_failure_window;
        settings.mail = self.smtp_url.as_ref().map(|_| MailSettings {
            from: self
                .mail_from
                .clone()
                .unwrap_or_else(|| "valet@localhost".to_owned()),
        });
        settings.password_reset = self.password_reset;
        settings.registration = match self.registration {
            RegistrationSetting::Closed => Registration::Closed,
            RegistrationSetting::Open => Registration::Open,
            RegistrationSetting::Invite => Registration::Invite,
        };
        settings.password_reset_ttl = self.password_reset_ttl;
        settings.email_verification_ttl = self.email_verification_ttl;
        settings.dynamic_clients = DynamicClients {
            registration: match self.client_registration {
                ClientRegistrationSetting::Closed => ClientRegistration::Closed,
                ClientRegistrationSetting::InitialToken => ClientRegistration::InitialToken,
                ClientRegistrationSetting::Open => ClientRegistration::Open,
            },
            scopes: words(&self.client_registration_scopes),
            audiences: words(&self.client_registration_audiences),
            open_rate_per_hour: self.client_registration_rate,
            metadata_documents: self.client_id_metadata_documents,
            dangerous_metadata_allow_loopback: self.dangerous_client_metadata_allow_loopback,
            metadata_min_ttl: self.client_metadata_min_ttl,
            metadata_max_ttl: self.client_metadata_max_ttl,
        };
        settings.mfa = match self.mfa {
            MfaSetting::Optional => MfaPolicy::Optional,
            MfaSetting::Required => MfaPolicy::Required,
        };
        settings.device_code_ttl = self.device_code_ttl;
        settings.device_poll_interval = self.device_poll_interval;
        settings.require_pushed_authorization_requests = self.require_pushed_authorization_requests;
        settings.dpop = DpopPolicy {
            require_nonce: self.dpop_require_nonce,
            proof_max_age: self.dpop_proof_max_age,
        };
        // Both were checked by `validate`; the defaults only stand in for a
        // configuration that skipped it.
        settings.branding = Arc::new(self.branding().unwrap_or_default());
        settings.catalogues = Arc::new(self.catalogues().unwrap_or_default());
        settings.keys = KeyPolicy {
            rotation_period: self.key_rotation_period,
            publish_lead: self.key_publish_lead,
            access_token_alg: self.access_token_alg,
            ..KeyPolicy::default()
        };
        settings
    }

    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.header_read_timeout)
    }

    /// The trusted proxies' networks; a bare address is a network of one.
    pub fn trusted_proxies(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "setting `trusted_proxies`: `{entry}` is neither an IP address nor a CIDR network such as 10.0.0.0/8"
                        ))
                    })
            })
            .collect()
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("valet.db").display()),
        }
    }
}

/// RFC 8414 §2: the issuer is an https URL with no query or fragment. Plain http
/// is accepted for loopback hosts (local development) and otherwise only with
/// the dangerous override.
/// The `*.toml` files in `dir`, as (language tag from the file name, text).
fn read_catalogue_files(dir: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let cannot = |error: std::io::Error| {
        ConfigError(format!(
            "setting `locales_dir`: cannot read {}: {error}",
            dir.display()
        ))
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let tag = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).map_err(cannot)?;
        files.push((tag, text));
    }
    // A stable order, so a language's files apply the same way on every start.
    files.sort();
    Ok(files)
}

fn check_issuer(issuer: &str, allow_insecure: bool) -> Result<(), ConfigError> {
    let fail = |reason: &str| {
        Err(ConfigError(format!(
            "setting `issuer` ({issuer}): {reason}"
        )))
    };
    if issuer.contains(['?', '#']) {
        return fail("must not have a query or fragment");
    }
    if !issuer.bytes().all(|b| b.is_ascii_graphic()) {
        return fail("must be printable ASCII without spaces");
    }
    let (scheme, rest) = match issuer.split_once("://") {
        Some(parts) => parts,
        None => return fail("must be an absolute https:// URL"),
    };
    let host_port = rest.split('/').next().unwrap_or_default();
    if host_port.is_empty() {
        return fail("must name a host");
    }
    if host_port.contains('@') {
        return fail("must not contain user information (`user@`)");
    }
    match scheme {
        "https" => Ok(()),
        "http" => {
            let loopback =
                reqwest::Url::parse(issuer).is_ok_and(|url| valet_guard::is_loopback(&url));
            if loopback || allow_insecure {
                Ok(())
            } else {
                fail(
                    "http is allowed only on a loopback host; use https, or set dangerous_allow_insecure_issuer = true behind a TLS-terminating proxy",
                )
            }
        }
        _ => fail("must be an https:// URL"),
    }
}

/// The words of a space-separated setting.
fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issuer_rules() {
        assert!(check_issuer("https://id.example.com", false).is_ok());
        assert!(check_issuer("http://127.0.0.1:8080", false).is_ok());
        assert!(check_issuer("http://localhost:8080", false).is_ok());
        assert!(check_issuer("http://id.example.com", false).is_err());
        assert!(check_issuer("http://id.example.com", true).is_ok());
        assert!(check_issuer("https://id.example.com/?x=1", false).is_err());
        assert!(check_issuer("id.example.com", false).is_err());
        assert!(check_issuer("ftp://id.example.com", false).is_err());
    }

    /// The dynamic client settings reach the core, and their refusals name them.
    #[test]
    fn dynamic_client_settings() {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(
                r#"
                client_registration = "initial_token"
                client_registration_scopes = "openid mcp:tools"
                client_registration_audiences = "https://mcp.example/mcp"
                client_id_metadata_documents = true
                "#,
            ))
            .extract()
            .unwrap();
        assert!(config.validate().is_ok());
        let dynamic = config.settings().dynamic_clients;
        assert_eq!(dynamic.registration, ClientRegistration::InitialToken);
        assert_eq!(dynamic.scopes, ["openid", "mcp:tools"]);
        assert_eq!(dynamic.audiences, ["https://mcp.example/mcp"]);
        assert!(dynamic.metadata_documents);
        assert!(!dynamic.dangerous_metadata_allow_loopback);

        let hatch_on_https = Config {
            issuer: Some("https://id.example.com".to_owned()),
            dangerous_client_metadata_allow_loopback: true,
            ..Config::default()
        };
        let error = hatch_on_https.validate().unwrap_err().to_string();
        assert!(
            error.contains("`dangerous_client_metadata_allow_loopback`"),
            "{error}"
        );
        let bad_scope = Config {
            client_registration_scopes: "openid bad\\scope".to_owned(),
            ..Config::default()
        };
        let error = bad_scope.validate().unwrap_err().to_string();
        assert!(error.contains("`client_registration_scopes`"), "{error}");
        let admin_scope = Config {
            client_registration_scopes: "openid admin:write".to_owned(),
            ..Config::default()
        };
        let error = admin_scope.validate().unwrap_err().to_string();
        assert!(
            error.contains("admin:write is an admin API scope"),
            "{error}"
        );
        let admin_audience = Config {
            issuer: Some("https://id.example.com".to_owned()),
            client_registration_audiences: "https://id.example.com/admin".to_owned(),
            ..Config::default()
        };
        let error = admin_audience.validate().unwrap_err().to_string();
        assert!(error.contains("`client_registration_audiences`"), "{error}");
        let ttl = Config {
            client_metadata_min_ttl: 0,
            ..Config::default()
        };
        let error = ttl.validate().unwrap_err().to_string();
        assert!(error.contains("`client_metadata_min_ttl`"), "{error}");
    }

    #[test]
    fn the_connection_limit_follows_the_descriptor_limit() {
        let config = Config::default();
        assert_eq!(config.connection_limit(Some(1024)).unwrap(), 512);
        assert_eq!(config.connection_limit(Some(1 << 20)).unwrap(), 16_384);
        assert_eq!(
            config.connection_limit(None).unwrap(),
            valet_server::DEFAULT_MAX_CONNECTIONS
        );
        // 256 streams need room beside them.
        let error = config.connection_limit(Some(256)).unwrap_err().to_string();
        assert!(error.contains("`status_events_max_streams`"), "{error}");
        let explicit = Config {
            max_connections: Some(2000),
            ..Config::default()
        };
        assert_eq!(explicit.connection_limit(Some(4096)).unwrap(), 2000);
        let error = explicit
            .connection_limit(Some(2048))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`max_connections`") && error.contains("ulimit -n"),
            "{error}"
        );
        let small = Config {
            max_connections: Some(8),
            ..Config::default()
        };
        assert!(
            small
                .validate()
                .unwrap_err()
                .to_string()
                .contains("at least 16")
        );
        let lifetime = Config {
            status_events_max_lifetime: 5,
            ..Config::default()
        };
        let error = lifetime.validate().unwrap_err().to_string();
        assert!(error.contains("`status_events_max_lifetime`"), "{error}");
    }

    #[test]
    fn benchmark_mode_is_for_loopback_only() {
        let with = |bind: &str, issuer: Option<&str>, proxies: &[&str]| Config {
            bind: bind.to_owned(),
            issuer: issuer.map(str::to_owned),
            trusted_proxies: proxies.iter().map(|p| (*p).to_owned()).collect(),
            insecure_benchmark_password_hash: true,
            ..Config::default()
        };
        assert!(with("127.0.0.1:8080", None, &[]).validate().is_ok());
        assert!(with("[::1]:8080", None, &[]).validate().is_ok());
        for (config, field) in [
            (
                with("0.0.0.0:8080", Some("https://auth.example.test"), &[]),
                "`bind`",
            ),
            (
                with("127.0.0.1:8080", Some("https://auth.example.test"), &[]),
                "`issuer`",
            ),
            (
                with("127.0.0.1:8080", None, &["10.0.0.0/8"]),
                "`trusted_proxies`",
            ),
        ] {
            let error = config.validate().unwrap_err().to_string();
            assert!(
                error.contains("insecure_benchmark_password_hash"),
                "{error}"
            );
            assert!(error.contains(field), "{error}");
        }
        let normal = Config {
            bind: "0.0.0.0:8080".to_owned(),
            issuer: Some("https://auth.example.test".to_owned()),
            ..Config::default()
        };
        assert!(normal.validate().is_ok());
    }

    #[test]
    fn loopback_is_parsed_not_matched_by_prefix() {
        for issuer in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:8080",
            "http://LOCALHOST:8080",
        ] {
            assert!(check_issuer(issuer, false).is_ok(), "{issuer}");
        }
        for issuer in [
            "http://127.evil.example",
            "http://127.0.0.1.evil.example:8080",
            "http://127.0.0.1@evil.example",
            "http://[::2]:8080",
            "http://localhost.evil.example",
        ] {
            let error = check_issuer(issuer, false).unwrap_err().to_string();
            assert!(error.contains("`issuer`"), "{issuer}: {error}");
        }
    }

    #[test]
    fn bind_takes_an_address_or_a_host_name() {
        let with = |bind: &str| Config {
            bind: bind.to_owned(),
            ..Config::default()
        };
        assert_eq!(
            with("127.0.0.1:9000").bind_address().unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(
            with("[::1]:9000").bind_address().unwrap(),
            "[::1]:9000".parse().unwrap()
        );
        let local = with("localhost:9000").bind_address().unwrap();
        assert!(local.ip().is_loopback() && local.port() == 9000, "{local}");
        assert!(with("localhost:9000").validate().is_ok());
        for bad in ["nonsense", "localhost", ":9000", "localhost:99999"] {
            let error = with(bad).validate().unwrap_err().to_string();
            assert!(error.contains("`bind`"), "{bad}: {error}");
        }
    }

    #[test]
    fn unknown_environment_variables_are_refused_with_the_closest_name() {
        assert!(
            check_environment([
                "PATH",
                "VALET_ACCESS_TOKEN_TTL",
                "VALET_MASTER_KEY",
                "VALET_GUARD_CLIENT_SECRET",
                "VALET_TEST_DATABASE_URL",
                "VALET_REQUIRE_POSTGRES",
                "VALET_UPDATE_SCREENSHOTS",
                "VALET_TRUSTED_PROXIES",
            ])
            .is_ok()
        );
        let error = check_environment(["VALET_ACESS_TOKEN_TTL"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("VALET_ACESS_TOKEN_TTL") && error.contains("VALET_ACCESS_TOKEN_TTL"),
            "{error}"
        );
        let error = check_environment(["VALET_MASTERKEY"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("did you mean VALET_MASTER_KEY?"), "{error}");
    }

    #[test]
    fn every_setting_is_read_from_the_environment() {
        let names = setting_names();
        for name in [
            "bind",
            "access_token_max_ttl",
            "access_token_alg",
            "trusted_proxies",
            "tls_key",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
    }

    #[test]
    fn token_lifetimes_stay_within_what_revocation_covers() {
        let with = |max: i64, ttl: i64| Config {
            access_token_max_ttl: max,
            access_token_ttl: ttl,
            ..Config::default()
        };
        assert!(with(86_400, 600).validate().is_ok());
        let error = with(86_401, 600).validate().unwrap_err().to_string();
        assert!(
            error.contains("`access_token_max_ttl`") && error.contains("86400"),
            "{error}"
        );
        let error = with(600, 601).validate().unwrap_err().to_string();
        assert!(error.contains("`access_token_ttl`"), "{error}");
        let lead = Config {
            key_publish_lead: 59,
            ..Config::default()
        };
        assert!(
            lead.validate()
                .unwrap_err()
                .to_string()
                .contains("key_publish_lead")
        );
        let refresh = Config {
            refresh_token_idle_ttl: 100,
            refresh_token_absolute_ttl: 99,
            ..Config::default()
        };
        assert!(
            refresh
                .validate()
                .unwrap_err()
                .to_string()
                .contains("refresh_token_idle_ttl")
        );
    }

    #[test]
    fn branding_is_checked_at_start() {
        let refused = |adjust: fn(&mut Config)| {
            let mut config = Config::default();
            adjust(&mut config);
            config.validate().unwrap_err().to_string()
        };
        let error = refused(|c| c.brand_color = Some("#ffd700".to_owned()));
        assert!(
            error.contains("`brand_color`") && error.contains("4.5:1"),
            "{error}"
        );
        let error = refused(|c| c.brand_color_dark = Some("#333333".to_owned()));
        assert!(
            error.contains("`brand_color_dark`") && error.contains("contrast ratio"),
            "{error}"
        );
        let error = refused(|c| c.brand_color = Some("navy".to_owned()));
        assert!(error.contains("not a hex colour"), "{error}");
        let error = refused(|c| c.logo_url = Some("http://cdn.example/logo.png".to_owned()));
        assert!(error.contains("`logo_url`"), "{error}");
        let error = refused(|c| c.product_name = " ".to_owned());
        assert!(error.contains("`product_name`"), "{error}");

        let config = Config {
            product_name: "Acme ID".to_owned(),
            brand_color: Some("#0b5d1e".to_owned()),
            brand_color_dark: Some("#8fd19e".to_owned()),
            logo_url: Some("https://cdn.acme.example/logo.svg".to_owned()),
            ..Config::default()
        };
        config.validate().unwrap();
        let branding = config.settings().branding;
        assert_eq!(branding.product_name, "Acme ID");
        assert_eq!(branding.color.to_string(), "#0b5d1e");
    }

    #[test]
    fn catalogues_in_locales_dir_are_checked_at_start() {
        let dir = std::env::temp_dir().join(format!("valet-locales-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let with_file = |name: &str, text: &str, default_locale: &str| {
            for entry in std::fs::read_dir(&dir).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
            std::fs::write(dir.join(name), text).unwrap();
            let config = Config {
                locales_dir: Some(dir.clone()),
                default_locale: default_locale.to_owned(),
                ..Config::default()
            };
            config.validate().map(|()| config.settings())
        };
        let settings = with_file("fr.toml", "[login]\ntitle = \"Connexion\"\n", "fr").unwrap();
        assert_eq!(settings.catalogues.default_locale(), "fr");
        assert_eq!(
            settings.catalogues.text("fr", "login.title", None),
            Some("Connexion")
        );
        let error = with_file("de.toml", "[login]\ntitel = \"x\"\n", "en")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`locales_dir`") && error.contains("unknown key `login.titel`"),
            "{error}"
        );
        let error = with_file("de.toml", "[login]\nlead = \"{kunde}\"\n", "en")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("de.toml") && error.contains("{kunde}"),
            "{error}"
        );
        let error = with_file("de.toml", "[login\n", "en")
            .unwrap_err()
            .to_string();
        assert!(error.contains("de.toml"), "{error}");
        let error = with_file("de.toml", "", "es").unwrap_err().to_string();
        assert!(
            error.contains("`default_locale`") && error.contains("`es`"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        let config = Config {
            locales_dir: Some(PathBuf::from("/nonexistent/valet-locales")),
            ..Config::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("cannot read /nonexistent/valet-locales"),
            "{error}"
        );
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.issuer(), "http://127.0.0.1:8080");
    }

    #[test]
    fn trusted_proxies_from_toml_lists_and_comma_separated_text() {
        let from = |toml: &str| -> Config {
            Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::string(toml))
                .extract()
                .unwrap()
        };
        let list = from(r#"trusted_proxies = ["10.0.0.0/8", "192.0.2.1"]"#);
        let text = from(r#"trusted_proxies = "10.0.0.0/8, 192.0.2.1""#);
        for config in [list, text] {
            let networks = config.trusted_proxies().unwrap();
            assert_eq!(
                networks,
                vec![
                    "10.0.0.0/8".parse::<IpNet>().unwrap(),
                    "192.0.2.1/32".parse().unwrap()
                ]
            );
        }
        let bad = from(r#"trusted_proxies = ["10.0.0.0/33"]"#);
        let error = bad.validate().unwrap_err().to_string();
        assert!(
            error.contains("`trusted_proxies`") && error.contains("10.0.0.0/33"),
            "{error}"
        );
    }

    #[test]
    fn metrics_bind_is_an_address_apart_from_bind() {
        let with = |metrics: &str| Config {
            metrics_bind: Some(metrics.to_owned()),
            ..Config::default()
        };
        assert!(with("127.0.0.1:9090").validate().is_ok());
        assert!(with("[::1]:9090").validate().is_ok());
        let error = with("127.0.0.1:8080").validate().unwrap_err().to_string();
        assert!(error.contains("must differ from `bind`"), "{error}");
        let error = with("localhost").validate().unwrap_err().to_string();
        assert!(
            error.contains("setting `metrics_bind` (localhost)"),
            "{error}"
        );
    }

    #[test]
    fn otlp_endpoint_is_a_plain_http_url() {
        let with = |endpoint: &str| Config {
            otlp_endpoint: Some(endpoint.to_owned()),
            ..Config::default()
        };
        for good in [
            "http://127.0.0.1:4318",
            "https://otel.example.com/",
            "http://[::1]:4318/prefix",
        ] {
            assert!(with(good).validate().is_ok(), "{good}");
        }
        for (bad, reason) in [
            ("127.0.0.1:4318", "must start with http"),
            ("grpc://collector:4317", "must start with http"),
            ("http://", "has no host"),
            (
                "https://user:hunter2@otel.example.com",
                "user name or password",
            ),
            ("http://otel.example.com/?token=x", "query"),
        ] {
            let error = with(bad).validate().unwrap_err().to_string();
            assert!(error.contains(reason), "{bad}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
