//! The [`Guard`]: start-up (discovery, JWKS, background tasks) and [`Guard::verify`].

use std::fmt;
use std::sync::Arc;

use valet_jose::JoseError;

use crate::config::{GuardConfig, MAX_ACCESS_TOKEN_LEN};
use crate::discovery;
use crate::error::{GuardError, TokenError};
use crate::http::Http;
use crate::jwks::KeySet;
use crate::status::{StatusCache, events};
use crate::tasks::Tasks;
use crate::token::{ClaimRules, VerifiedToken, check_claims};

/// RFC 9068 §2.1: the `typ` of a JWT access token.
pub(crate) const ACCESS_TOKEN_TYP: &str = "at+jwt";

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
    keys: Arc<KeySet>,
    status: Arc<StatusCache>,
    tasks: Arc<Tasks>,
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
    /// verifying with cached keys while the issuer is unreachable.
    pub async fn new(config: GuardConfig) -> Result<Guard, GuardError> {
        let http = Http::new(config.http_timeout)?;
        let metadata = discovery::discover(&http, &config.issuer).await?;
        let (keys, first_refresh) = KeySet::load(http.clone(), metadata.jwks_uri, &config).await?;
        let keys = Arc::new(keys);
        let tasks = Arc::new(Tasks::default());
        let status = Arc::new(StatusCache::new(
            http.clone(),
            Arc::clone(&keys),
            Arc::clone(&tasks),
            &config,
        ));
        tasks.spawn(Arc::clone(&keys).refresh_loop(first_refresh));
        match metadata.events_endpoint {
            Some(url) => tasks.spawn(events::follow(Arc::clone(&status), http, url)),
            None => tracing::info!(
                issuer = %config.issuer,
                "the issuer advertises no status list events: revocations arrive at list ttl"
            ),
        }
        Ok(Guard {
            inner: Arc::new(Inner {
                config,
                keys,
                status,
                tasks,
            }),
        })
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
    /// In order, stopping at the first failure (each a [`TokenError`] variant):
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
    pub async fn verify_with_scopes(
        &self,
        token: &str,
        scopes: &[&str],
    ) -> Result<VerifiedToken, TokenError> {
        let inner = &*self.inner;
        let config = &inner.config;
        let now = config.clock.now();
        if token.len() > MAX_ACCESS_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let jws = inner
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
            Some(reference) => inner.status.check(&reference, now).await?,
            None if config.require_status => return Err(TokenError::StatusMissing),
            None => {}
        }
        verified.require_scopes(
            config
                .required_scopes
                .iter()
                .map(String::as_str)
                .chain(scopes.iter().copied()),
        )?;
        Ok(verified)
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("config", &self.inner.config)
            .field("keys", &self.inner.keys.current())
            .finish_non_exhaustive()
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
