//! What a [`Guard`](crate::Guard) checks and how it talks to the issuer. Every setting has a
//! safe default; [`GuardConfigBuilder::build`] validates them all at start-up.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use valet_jose::{Clock, SystemClock};

/// Accepted access tokens are at most this long (8 KiB). Valet's are a few hundred bytes;
/// the bound is checked before any parsing.
pub const MAX_ACCESS_TOKEN_LEN: usize = 8 * 1024;

/// What to do when a token's status list cannot be fetched (draft-ietf-oauth-status-list
/// §13 leaves this to the relying party).
///
/// A cached list no older than `max_staleness` is used as is while the issuer is
/// unreachable. Past that (or with no list cached at all) the guard fails closed with
/// [`TokenError::StatusUnavailable`](crate::TokenError::StatusUnavailable), unless
/// `fail_open` is set: then the token is accepted (the stale list, if any, still refuses
/// indices it marks revoked) and a warning is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusPolicy {
    /// How long a list may serve after its last successful fetch. Default 5 minutes.
    pub max_staleness: Duration,
    /// Accept tokens whose status cannot be established. Default `false` (fail closed).
    pub fail_open: bool,
}

impl Default for StatusPolicy {
    fn default() -> Self {
        StatusPolicy {
            max_staleness: Duration::from_secs(5 * 60),
            fail_open: false,
        }
    }
}

/// A validated guard configuration. Build one with [`GuardConfig::builder`].
#[derive(Clone)]
pub struct GuardConfig {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) realm: String,
    pub(crate) leeway: Duration,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) jwks_min_refetch_interval: Duration,
    pub(crate) jwks_refresh_min: Duration,
    pub(crate) jwks_refresh_max: Duration,
    pub(crate) http_timeout: Duration,
    pub(crate) status_policy: StatusPolicy,
    pub(crate) require_status: bool,
    pub(crate) status_credentials: Option<ClientCredentials>,
    pub(crate) clock: Arc<dyn Clock>,
    /// RFC 9728 §2 `resource`: this API's URL, for its metadata document and the
    /// `htu` of DPoP proofs.
    pub(crate) resource: Option<Url>,
    /// The resource identifier exactly as configured (RFC 9728 §3.3 compares it).
    pub(crate) resource_id: Option<String>,
    /// RFC 9728 §2 `scopes_supported`.
    pub(crate) scopes_supported: Vec<String>,
    /// RFC 9449 §11.1: a proof older than this is refused.
    pub(crate) dpop_proof_max_age: Duration,
}

/// A client of the issuer (its id and secret), used to obtain a token for the status
/// list event stream. `Debug` never shows the secret.
#[derive(Clone)]
pub(crate) struct ClientCredentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

impl GuardConfig {
    /// A builder for tokens issued by `issuer` (exactly as it appears in the tokens' `iss`
    /// and the issuer's metadata, RFC 8414 §3.3) and meant for `audience` (RFC 9068 §4:
    /// the token's `aud` must contain it).
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> GuardConfigBuilder {
        GuardConfigBuilder {
            issuer: issuer.into(),
            audience: audience.into(),
            realm: None,
            leeway: Duration::from_secs(30),
            required_scopes: Vec::new(),
            jwks_min_refetch_interval: Duration::from_secs(30),
            jwks_refresh_min: Duration::from_secs(30),
            jwks_refresh_max: Duration::from_secs(60 * 60),
            http_timeout: Duration::from_secs(5),
            status_policy: StatusPolicy::default(),
            require_status: false,
            status_credentials: None,
            allow_insecure_http: false,
            clock: Arc::new(SystemClock),
            resource: None,
            scopes_supported: Vec::new(),
            dpop_proof_max_age: Duration::from_secs(60),
        }
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The `realm` of `WWW-Authenticate` challenges (RFC 6750 §3).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Scopes every token must carry.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// Allowed clock skew for `exp`, `nbf` and `iat`.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The status list policy.
    pub fn status_policy(&self) -> StatusPolicy {
        self.status_policy
    }

    /// Whether tokens without a `status` claim are refused.
    pub fn require_status(&self) -> bool {
        self.require_status
    }

    /// The least time between two JWKS refetches caused by unknown `kid`s.
    pub fn jwks_min_refetch_interval(&self) -> Duration {
        self.jwks_min_refetch_interval
    }

    /// The timeout of each request to the issuer.
    pub fn http_timeout(&self) -> Duration {
        self.http_timeout
    }

    /// The client id of the status stream credentials, if any (the secret is not
    /// readable back).
    pub fn status_client_id(&self) -> Option<&str> {
        self.status_credentials
            .as_ref()
            .map(|credentials| credentials.client_id.as_str())
    }

    /// This API's resource identifier (RFC 9728 `resource`), as configured.
    pub fn resource(&self) -> Option<&str> {
        self.resource_id.as_deref()
    }

    /// Scopes published as `scopes_supported`.
    pub fn scopes_supported(&self) -> &[String] {
        &self.scopes_supported
    }

    /// The base URL DPoP proofs' `htu` are checked against: the configured resource,
    /// else the audience if it is an http(s) URL.
    pub(crate) fn dpop_base(&self) -> Option<Url> {
        self.resource.clone().or_else(|| {
            Url::parse(&self.audience)
                .ok()
                .filter(|url| matches!(url.scheme(), "https" | "http"))
        })
    }

    /// RFC 9728 §3.1: `/.well-known/oauth-protected-resource` with the resource's
    /// path (if any) after it; `None` without a configured resource.
    pub fn resource_metadata_path(&self) -> Option<String> {
        let resource = self.resource.as_ref()?;
        let path = resource.path().trim_end_matches('/');
        Some(format!("/.well-known/oauth-protected-resource{path}"))
    }

    /// The URL of this API's metadata document (RFC 9728 §3.1), for the
    /// `resource_metadata` parameter of challenges (§5.1).
    pub fn resource_metadata_url(&self) -> Option<String> {
        let resource = self.resource.as_ref()?;
        let path = self.resource_metadata_path()?;
        Some(format!("{}{path}", resource.origin().ascii_serialization()))
    }

    /// `{issuer}/statuslists/`: the only prefix a token's status list `uri` may have.
    pub(crate) fn status_list_prefix(&self) -> String {
        format!("{}/statuslists/", self.issuer.trim_end_matches('/'))
    }
}

impl fmt::Debug for GuardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("realm", &self.realm)
            .field("leeway", &self.leeway)
            .field("required_scopes", &self.required_scopes)
            .field("jwks_min_refetch_interval", &self.jwks_min_refetch_interval)
            .field("jwks_refresh_min", &self.jwks_refresh_min)
            .field("jwks_refresh_max", &self.jwks_refresh_max)
            .field("http_timeout", &self.http_timeout)
            .field("status_policy", &self.status_policy)
            .field("require_status", &self.require_status)
            .field("status_credentials", &self.status_credentials)
            .field("resource", &self.resource_id)
            .finish_non_exhaustive()
    }
}

/// Builds a [`GuardConfig`]; every setting not called keeps its documented default.
#[must_use]
pub struct GuardConfigBuilder {
    issuer: String,
    audience: String,
    realm: Option<String>,
    leeway: Duration,
    required_scopes: Vec<String>,
    jwks_min_refetch_interval: Duration,
    jwks_refresh_min: Duration,
    jwks_refresh_max: Duration,
    http_timeout: Duration,
    status_policy: StatusPolicy,
    require_status: bool,
    status_credentials: Option<ClientCredentials>,
    allow_insecure_http: bool,
    clock: Arc<dyn Clock>,
    resource: Option<String>,
    scopes_supported: Vec<String>,
    dpop_proof_max_age: Duration,
}

impl GuardConfigBuilder {
    /// This API's resource identifier (RFC 9728 §2 `resource`): an https URL (http on
    /// loopback, or with `dangerous_allow_insecure_http`) without query or fragment.
    /// With it the guard serves `/.well-known/oauth-protected-resource` and its
    /// challenges carry `resource_metadata` (§5.1); DPoP proofs' `htu` are checked
    /// against its scheme and host with the request's path. Default: none (DPoP proofs
    /// are then checked against the audience, if it is a URL).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Scopes this API understands, published as `scopes_supported` (RFC 9728 §2).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// How old a DPoP proof may be (RFC 9449 §11.1); its `jti` is remembered that
    /// long against replay. Default 60 s, between 5 s and 10 minutes.
    pub fn dpop_proof_max_age(mut self, max_age: Duration) -> Self {
        self.dpop_proof_max_age = max_age;
        self
    }

    /// Allowed clock skew between the issuer and this server for `exp`, `nbf` and `iat`
    /// (RFC 7519 §4.1.4 "some small leeway"). Default 30 s, at most 5 minutes.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Scopes every token must carry, on top of any a route asks for. Default none.
    pub fn required_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// At most one JWKS refetch per this interval is triggered by tokens naming an unknown
    /// `kid`, so forged tokens cannot make the guard hammer the issuer. Default 30 s,
    /// at least 1 s.
    pub fn jwks_min_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_min_refetch_interval = interval;
        self
    }

    /// Bounds on the background JWKS refresh period, which otherwise follows the JWKS
    /// response's `Cache-Control: max-age`. Default 30 s and 1 hour; the lower bound is at
    /// least 1 s.
    pub fn jwks_refresh_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.jwks_refresh_min = min;
        self.jwks_refresh_max = max;
        self
    }

    /// Timeout of each request to the issuer (discovery, JWKS, status lists), and so the
    /// longest a verification waits for a status list it has never seen. Default 5 s,
    /// between 100 ms and 60 s.
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// What to do when a status list cannot be fetched. Default: fail closed for lists
    /// older than 5 minutes.
    pub fn status_policy(mut self, policy: StatusPolicy) -> Self {
        self.status_policy = policy;
        self
    }

    /// Refuse tokens without a `status` claim. Default `false`: Valet puts one in every
    /// access token it issues, so this only matters for tokens from elsewhere (or from a
    /// Valet older than status lists).
    pub fn require_status(mut self, require: bool) -> Self {
        self.require_status = require;
        self
    }

    /// A client of the issuer whose tokens the issuer's status list event stream accepts
    /// (Valet with `status_events_auth = "token"`: a client registered with the issuer as
    /// an audience and the scope `valet:status`). With it, the guard obtains a token at
    /// the metadata's `token_endpoint` by the client credentials grant (RFC 6749 §4.4,
    /// `scope=valet:status`, `resource={issuer}` per RFC 8707, HTTP Basic client
    /// authentication per RFC 6749 §2.3.1), reuses it until 30 s before it expires, and
    /// presents it as `Authorization: Bearer` (RFC 6750 §2.1) when it subscribes; a 401
    /// from the stream makes it fetch a fresh one once. Status list documents stay
    /// public and are fetched without it. Default: none (the stream is opened
    /// anonymously). The secret never appears in `Debug` output or logs.
    pub fn status_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.status_credentials = Some(ClientCredentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        });
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges (RFC 6750 §3). Default: the audience.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// The clock claims are checked against. Default: the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Allow a plain-`http` issuer on a host other than loopback. Keys, status lists and
    /// revocation notices would then travel without integrity: anyone on the path could
    /// substitute the JWKS and mint tokens. Default `false`; `http://127.0.0.1`,
    /// `http://[::1]` and `http://localhost` are always allowed (development).
    pub fn dangerous_allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The resource URL (RFC 9728), and the DPoP proof window.
    fn check_resource_and_dpop(&self) -> Result<Option<Url>, ConfigError> {
        if self.dpop_proof_max_age < Duration::from_secs(5)
            || self.dpop_proof_max_age > Duration::from_secs(600)
        {
            return Err(ConfigError::Range(
                "dpop_proof_max_age",
                "between 5 seconds and 10 minutes",
            ));
        }
        self.resource
            .as_deref()
            .map(|resource| check_resource(resource, self.allow_insecure_http))
            .transpose()
    }

    /// Checks every setting.
    pub fn build(self) -> Result<GuardConfig, ConfigError> {
        let issuer = check_issuer(&self.issuer, self.allow_insecure_http)?;
        let resource = self.check_resource_and_dpop()?;
        if self.audience.is_empty() || self.audience.chars().any(char::is_control) {
            return Err(ConfigError::Audience);
        }
        let realm = self.realm.unwrap_or_else(|| self.audience.clone());
        if !realm.bytes().all(is_qdtext) {
            return Err(ConfigError::Realm);
        }
        if let Some(scope) = self
            .required_scopes
            .iter()
            .chain(&self.scopes_supported)
            .find(|s| !is_scope_token(s))
        {
            return Err(ConfigError::Scope(scope.clone()));
        }
        if self.leeway > Duration::from_secs(5 * 60) {
            return Err(ConfigError::Range("leeway", "at most 5 minutes"));
        }
        if self.jwks_min_refetch_interval < Duration::from_secs(1) {
            return Err(ConfigError::Range(
                "jwks_min_refetch_interval",
                "at least 1 second",
            ));
        }
        if self.jwks_refresh_min < Duration::from_secs(1)
            || self.jwks_refresh_max < self.jwks_refresh_min
        {
            return Err(ConfigError::Range(
                "jwks_refresh_bounds",
                "min at least 1 second and max at least min",
            ));
        }
        if self.http_timeout < Duration::from_millis(100)
            || self.http_timeout > Duration::from_secs(60)
        {
            return Err(ConfigError::Range(
                "http_timeout",
                "between 100 milliseconds and 60 seconds",
            ));
        }
        if self.status_policy.max_staleness < Duration::from_secs(1) {
            return Err(ConfigError::Range(
                "status_policy.max_staleness",
                "at least 1 second",
            ));
        }
        if let Some(credentials) = &self.status_credentials
            && (credentials.client_id.is_empty()
                || credentials.client_secret.is_empty()
                || credentials.client_id.chars().any(char::is_control)
                || credentials.client_secret.chars().any(char::is_control))
        {
            return Err(ConfigError::StatusCredentials);
        }
        Ok(GuardConfig {
            issuer,
            audience: self.audience,
            realm,
            leeway: self.leeway,
            required_scopes: self.required_scopes,
            jwks_min_refetch_interval: self.jwks_min_refetch_interval,
            jwks_refresh_min: self.jwks_refresh_min,
            jwks_refresh_max: self.jwks_refresh_max,
            http_timeout: self.http_timeout,
            status_policy: self.status_policy,
            require_status: self.require_status,
            status_credentials: self.status_credentials,
            clock: self.clock,
            resource,
            resource_id: self.resource,
            scopes_supported: self.scopes_supported,
            dpop_proof_max_age: self.dpop_proof_max_age,
        })
    }
}

/// RFC 9728 §2: the resource identifier is an https URL without query or fragment.
fn check_resource(resource: &str, allow_insecure_http: bool) -> Result<Url, ConfigError> {
    let bad = || ConfigError::Resource(resource.to_owned());
    let url = Url::parse(resource).map_err(|_| bad())?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.host_str().is_none()
        || !url.as_str().bytes().all(is_qdtext)
    {
        return Err(bad());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure_http || is_loopback(&url) => Ok(url),
        _ => Err(bad()),
    }
}

/// A setting [`GuardConfigBuilder::build`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The issuer is not an absolute `https` URL without query or fragment.
    #[error("issuer {0:?} must be an absolute https URL without query or fragment")]
    Issuer(String),
    /// A plain-`http` issuer on a host other than loopback.
    #[error(
        "issuer {0:?} uses plain http on a non-loopback host (see dangerous_allow_insecure_http)"
    )]
    InsecureIssuer(String),
    /// The audience is empty or contains control characters.
    #[error("the audience must be a non-empty string without control characters")]
    Audience,
    /// The realm cannot be sent as a quoted string.
    #[error("the realm must be printable ASCII without '\"' or '\\'")]
    Realm,
    /// A required scope is not a scope token (RFC 6749 §3.3).
    #[error("{0:?} is not a scope token (RFC 6749 §3.3)")]
    Scope(String),
    /// The status stream client id or secret is empty or contains control characters.
    #[error(
        "the status credentials need a non-empty client id and secret without control characters"
    )]
    StatusCredentials,
    /// The resource identifier is not an https URL (http on loopback) without query
    /// or fragment (RFC 9728 §2).
    #[error("resource {0:?} must be an https URL (http on loopback) without query or fragment")]
    Resource(String),
    /// A duration outside its range.
    #[error("{0} must be {1}")]
    Range(&'static str, &'static str),
}

fn check_issuer(issuer: &str, allow_insecure_http: bool) -> Result<String, ConfigError> {
    let bad = || ConfigError::Issuer(issuer.to_owned());
    let url = Url::parse(issuer).map_err(|_| bad())?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad());
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => return Err(ConfigError::InsecureIssuer(issuer.to_owned())),
        _ => return Err(bad()),
    }
    // Kept exactly as given: `iss` and the metadata's `issuer` are compared to it verbatim.
    Ok(issuer.to_owned())
}

/// Whether the URL's host is the loopback interface: an IP address in `127.0.0.0/8` or
/// `::1` (as the URL parser reads it, so `127.1` is `127.0.0.1`), or the name `localhost`
/// (RFC 6761 §6.3). Decided on the parsed host, never by a prefix: `127.evil.example` is
/// a domain name like any other.
pub fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        // The parser has already turned every IPv4 spelling into dotted decimal and
        // bracketed IPv6; a domain name never parses as an address.
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// RFC 9110 §5.6.4 `qdtext` restricted to printable ASCII: what a quoted string may hold
/// without escapes.
pub(crate) fn is_qdtext(b: u8) -> bool {
    b == b' ' || b == b'!' || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
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
    fn defaults_are_the_documented_ones() {
        let config = GuardConfig::builder("https://id.example", "https://api.example")
            .build()
            .unwrap();
        assert_eq!(config.leeway, Duration::from_secs(30));
        assert_eq!(config.jwks_min_refetch_interval, Duration::from_secs(30));
        assert_eq!(config.jwks_refresh_min, Duration::from_secs(30));
        assert_eq!(config.jwks_refresh_max, Duration::from_secs(3600));
        assert_eq!(config.status_policy.max_staleness, Duration::from_secs(300));
        assert!(!config.status_policy.fail_open);
        assert!(!config.require_status);
        assert!(config.required_scopes.is_empty());
        assert_eq!(config.realm, "https://api.example");
        assert_eq!(
            config.status_list_prefix(),
            "https://id.example/statuslists/"
        );
    }

    #[test]
    fn issuers_must_be_https_or_loopback() {
        for good in [
            "https://id.example",
            "https://id.example/tenant",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert!(GuardConfig::builder(good, "api").build().is_ok(), "{good}");
        }
        for bad in [
            "id.example",
            "ftp://id.example",
            "https://id.example?x=1",
            "https://id.example#f",
            "https://user@id.example",
            "",
        ] {
            assert!(
                matches!(
                    GuardConfig::builder(bad, "api").build(),
                    Err(ConfigError::Issuer(_))
                ),
                "{bad}"
            );
        }
        for insecure in [
            "http://id.example",
            // Loopback is decided on the parsed host, never by its first characters.
            "http://127.evil.example",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "http://[::ffff:7f00:1]",
            "http://10.0.0.1",
        ] {
            assert!(
                matches!(
                    GuardConfig::builder(insecure, "api").build(),
                    Err(ConfigError::InsecureIssuer(_))
                ),
                "{insecure}"
            );
        }
        for loopback in [
            "http://127.1:8080",
            "http://127.255.0.9",
            "http://LOCALHOST",
        ] {
            assert!(
                GuardConfig::builder(loopback, "api").build().is_ok(),
                "{loopback}"
            );
        }
        assert!(
            GuardConfig::builder("http://id.example", "api")
                .dangerous_allow_insecure_http(true)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn other_settings_are_range_checked() {
        let base = || GuardConfig::builder("https://id.example", "api");
        assert_eq!(
            GuardConfig::builder("https://id.example", "")
                .build()
                .unwrap_err(),
            ConfigError::Audience
        );
        assert_eq!(
            base().realm("a\"b").build().unwrap_err(),
            ConfigError::Realm
        );
        assert!(matches!(
            base().required_scopes(["ok", "not ok"]).build(),
            Err(ConfigError::Scope(s)) if s == "not ok"
        ));
        assert!(base().leeway(Duration::from_secs(301)).build().is_err());
        assert!(
            base()
                .jwks_min_refetch_interval(Duration::from_millis(10))
                .build()
                .is_err()
        );
        assert!(
            base()
                .jwks_refresh_bounds(Duration::from_secs(10), Duration::from_secs(5))
                .build()
                .is_err()
        );
        assert!(base().http_timeout(Duration::ZERO).build().is_err());
        assert!(
            base()
                .status_policy(StatusPolicy {
                    max_staleness: Duration::ZERO,
                    fail_open: false
                })
                .build()
                .is_err()
        );
    }

    #[test]
    fn status_credentials_are_checked_and_never_shown() {
        let base = || GuardConfig::builder("https://id.example", "api");
        let config = base()
            .status_credentials("guards", "s3cr3t-value")
            .build()
            .unwrap();
        assert_eq!(config.status_client_id(), Some("guards"));
        let debug = format!("{config:?}");
        assert!(debug.contains("guards"), "{debug}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        for (id, secret) in [("", "s"), ("id", ""), ("id\n", "s"), ("id", "s\r")] {
            assert_eq!(
                base().status_credentials(id, secret).build().unwrap_err(),
                ConfigError::StatusCredentials
            );
        }
        assert_eq!(base().build().unwrap().status_client_id(), None);
    }

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("orders:read"));
        assert!(is_scope_token("a!#[]~"));
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\tb"] {
            assert!(!is_scope_token(bad), "{bad}");
        }
    }
}
