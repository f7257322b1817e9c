//! The [`Guard`]: start-up (discovery, JWKS, background tasks) and [`Guard::verify`].

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use valet_jose::JoseError;

use crate::config::{GuardConfig, MAX_ACCESS_TOKEN_LEN};
use crate::credentials::StreamToken;
use crate::discovery;
use crate::error::{GuardError, TokenError};
use crate::http::Http;
use crate::jwks::KeySet;
use crate::replay::ReplayCache;
use crate::status::{StatusCache, events};
use crate::tasks::Tasks;
use crate::token::{ClaimRules, VerifiedToken, check_claims};

/// RFC 9068 §2.1: the `typ` of a JWT access token.
pub(crate) const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// [`Guard::start_in_background`] retries the issuer after this, doubling, up to
/// [`MAX_START_RETRY`].
const FIRST_START_RETRY: Duration = Duration::from_millis(500);
const MAX_START_RETRY: Duration = Duration::from_secs(10);

/// Verifies one issuer's access tokens for one audience, locally.
///
/// Cheap to clone (an `Arc` inside) and `Send + Sync`: build one at start-up and share it.
/// Its background tasks (JWKS refresh, status list refreshers, the revocation feed) stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

struct Inner {
    config: GuardConfig,
    /// Set once the issuer's metadata and keys are loaded; never unset.
    loaded: Arc<OnceLock<Loaded>>,
    tasks: Arc<Tasks>,
    /// DPoP proofs seen recently (RFC 9449 §11.1).
    replay: ReplayCache,
}

/// What a ready guard verifies with.
struct Loaded {
    keys: Arc<KeySet>,
    status: Arc<StatusCache>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tasks.shutdown();
    }
}

impl Guard {
    /// Starts a guard: fetches the issuer's metadata (its `issuer` must equal the
    /// configured one exactly) and JWKS, then keeps both fresh in the background and
    /// subscribes to the revocation feed if the metadata advertises one.
    ///
    /// Fails if the metadata or the JWKS cannot be loaded now; once started, the guard keeps
    /// verifying with cached keys while the issuer is unreachable. To start while the
    /// issuer is unreachable, see [`Guard::start_in_background`].
    pub async fn new(config: GuardConfig) -> Result<Guard, GuardError> {
        let http = Http::new(config.http_timeout)?;
        let tasks = Arc::new(Tasks::default());
        let loaded = load(&http, &config, &tasks).await?;
        Ok(Guard {
            inner: Arc::new(Inner {
                config,
                loaded: Arc::new(OnceLock::from(loaded)),
                tasks,
                replay: ReplayCache::default(),
            }),
        })
    }

    /// Starts a guard that is not ready yet and becomes ready in the background: it
    /// loads the issuer's metadata and JWKS as [`Guard::new`] does, retrying with backoff
    /// (from 0.5 s, doubling, at most 10 s between attempts, each failure logged) for as
    /// long as it takes. Until then every verification fails with
    /// [`TokenError::NotReady`] (503 with `Retry-After`, so the axum layer and extractor
    /// answer 503) and [`Guard::is_ready`] is `false`. For servers that must start, and
    /// report not-ready on a health endpoint, while the issuer is down.
    ///
    /// Must be called within a Tokio runtime; fails only if it is not, or if the HTTP
    /// client cannot be built.
    pub fn start_in_background(config: GuardConfig) -> Result<Guard, GuardError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GuardError::NoRuntime);
        }
        let http = Http::new(config.http_timeout)?;
        let tasks = Arc::new(Tasks::default());
        let loaded = Arc::new(OnceLock::new());
        tasks.spawn(keep_loading(
            http,
            config.clone(),
            Arc::clone(&tasks),
            Arc::clone(&loaded),
        ));
        Ok(Guard {
            inner: Arc::new(Inner {
                config,
                loaded,
                tasks,
                replay: ReplayCache::default(),
            }),
        })
    }

    /// Whether the issuer's metadata and keys are loaded, so tokens can be verified.
    /// Always `true` for a guard from [`Guard::new`]; once `true`, stays `true` (cached
    /// keys keep verifying while the issuer is unreachable).
    pub fn is_ready(&self) -> bool {
        self.inner.loaded.get().is_some()
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.inner.config
    }

    /// Verifies an access token (the bearer token itself, without `Bearer `), requiring
    /// the configured scopes. See [`Guard::verify_with_scopes`].
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        self.verify_with_scopes(token, &[]).await
    }

    /// Verifies an access token and requires `scopes` on top of the configured ones.
    ///
    /// A guard that is not ready yet ([`Guard::start_in_background`]) answers
    /// [`TokenError::NotReady`]. Then, in order, stopping at the first failure (each a
    /// [`TokenError`] variant):
    /// 1. size ≤ [`MAX_ACCESS_TOKEN_LEN`] and three base64url segments;
    /// 2. the signature, with the issuer's key named by `kid` and that key's algorithm
    ///    only (never `none` or HMAC; `jwk`, `jku`, `x5u`, `x5c` headers are never used;
    ///    an unknown `crit` is refused); an unknown `kid` triggers at most one JWKS
    ///    refetch per `jwks_min_refetch_interval`;
    /// 3. `typ` is `at+jwt` (RFC 9068 §4), so an ID token is refused;
    /// 4. the claims: `iss` exact, `aud` contains the audience, `exp`, `nbf`, `iat` with
    ///    leeway, `sub` and `client_id` present (time read once, from the configured clock);
    /// 5. the token status list, if the token has a `status` claim (Valet always sets one);
    ///    without one the token is accepted unless `require_status` is set;
    /// 6. the scopes. Status comes first: a revoked token is `invalid_token` whatever its
    ///    scopes, and `insufficient_scope` is only said of tokens that are otherwise valid.
    ///
    /// A DPoP-bound token (`cnf.jkt`) is refused here with [`TokenError::DpopBound`]
    /// (RFC 9449 §7.2): it is accepted only by [`Guard::verify_dpop`], with a proof.
    pub async fn verify_with_scopes(
        &self,
        token: &str,
        scopes: &[&str],
    ) -> Result<VerifiedToken, TokenError> {
        let verified = self.verify_unbound(token).await?;
        if verified.dpop_jkt().is_some() {
            return Err(TokenError::DpopBound);
        }
        self.require_scopes(&verified, scopes)?;
        Ok(verified)
    }

    /// The configured scopes and `scopes`, which `verified` must all carry.
    pub(crate) fn require_scopes(
        &self,
        verified: &VerifiedToken,
        scopes: &[&str],
    ) -> Result<(), TokenError> {
        verified.require_scopes(
            self.inner
                .config
                .required_scopes
                .iter()
                .map(String::as_str)
                .chain(scopes.iter().copied()),
        )
    }

    pub(crate) fn replay_cache(&self) -> &ReplayCache {
        &self.inner.replay
    }

    /// Steps 1 to 5 of [`Guard::verify_with_scopes`]: no scopes, no binding.
    pub(crate) async fn verify_unbound(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let inner = &*self.inner;
        let config = &inner.config;
        let Some(loaded) = inner.loaded.get() else {
            return Err(TokenError::NotReady);
        };
        let now = config.clock.now();
        if token.len() > MAX_ACCESS_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let jws = loaded
            .keys
            .verify(token, ACCESS_TOKEN_TYP, MAX_ACCESS_TOKEN_LEN)
            .await
            .map_err(from_jose)?;
        let rules = ClaimRules {
            issuer: &config.issuer,
            audience: &config.audience,
            leeway: i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX),
        };
        let (verified, status) = check_claims(jws.claims, &rules, now)?;
        match status {
            Some(reference) => loaded.status.check(&reference, now).await?,
            None if config.require_status => return Err(TokenError::StatusMissing),
            None => {}
        }
        Ok(verified)
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("config", &self.inner.config)
            .field(
                "keys",
                &self.inner.loaded.get().map(|loaded| loaded.keys.current()),
            )
            .finish_non_exhaustive()
    }
}

/// Discovery, the JWKS, then the background tasks: what [`Guard::new`] does once and
/// [`Guard::start_in_background`] until it works. Nothing is spawned unless everything
/// loaded.
async fn load(http: &Http, config: &GuardConfig, tasks: &Arc<Tasks>) -> Result<Loaded, GuardError> {
    let metadata = discovery::discover(http, &config.issuer).await?;
    let stream_token = match (&config.status_credentials, &metadata.events_endpoint) {
        (Some(credentials), Some(_)) => {
            let endpoint = metadata.token_endpoint.clone().ok_or(GuardError::Metadata(
                "no token_endpoint (https, or http for an http issuer), which the status credentials need",
            ))?;
            Some(Arc::new(StreamToken::new(
                http.clone(),
                endpoint,
                &config.issuer,
                credentials.clone(),
            )))
        }
        _ => None,
    };
    let (keys, first_refresh) = KeySet::load(http.clone(), metadata.jwks_uri, config).await?;
    let keys = Arc::new(keys);
    let status = Arc::new(StatusCache::new(
        http.clone(),
        Arc::clone(&keys),
        Arc::clone(tasks),
        config,
    ));
    tasks.spawn(Arc::clone(&keys).refresh_loop(first_refresh));
    match metadata.events_endpoint {
        Some(url) => tasks.spawn(events::follow(
            Arc::clone(&status),
            http.clone(),
            url,
            stream_token,
        )),
        None => tracing::info!(
            issuer = %config.issuer,
            "the issuer advertises no status list events: revocations arrive at list ttl"
        ),
    }
    Ok(Loaded { keys, status })
}

/// [`load`] until it works, with bounded exponential backoff.
async fn keep_loading(
    http: Http,
    config: GuardConfig,
    tasks: Arc<Tasks>,
    loaded: Arc<OnceLock<Loaded>>,
) {
    let mut delay = FIRST_START_RETRY;
    let mut attempt = 1u32;
    loop {
        match load(&http, &config, &tasks).await {
            Ok(ready) => {
                // Only this task sets it.
                let _ = loaded.set(ready);
                tracing::info!(issuer = %config.issuer, attempt, "issuer metadata and keys loaded: the guard is ready");
                return;
            }
            Err(error) => {
                tracing::warn!(
                    issuer = %config.issuer, %error, attempt, retry_in = ?delay,
                    "cannot load the issuer's metadata and keys yet; requests are answered 503 until then"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_START_RETRY);
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

/// valet-jose's refusals, as token errors.
pub(crate) fn from_jose(error: JoseError) -> TokenError {
    match error {
        JoseError::TokenTooLarge { .. } => TokenError::TooLarge,
        JoseError::MalformedToken(reason) => TokenError::Malformed(reason),
        JoseError::UnsupportedAlgorithm(_) => TokenError::UnsupportedAlgorithm,
        JoseError::AlgorithmMismatch { .. } => TokenError::AlgorithmMismatch,
        JoseError::MissingKid => TokenError::MissingKeyId,
        JoseError::UnknownKid(_) => TokenError::UnknownKey,
        JoseError::TypMismatch { .. } => TokenError::WrongType,
        JoseError::InvalidSignature => TokenError::InvalidSignature,
        JoseError::Jwt(_) => TokenError::UnsupportedHeader,
        JoseError::Base64 => TokenError::Malformed("not base64url"),
        error => {
            tracing::error!(%error, "token verification failed inside valet-jose");
            TokenError::Internal
        }
    }
}
