//! The issuer's keys (RFC 7517 §5), cached by `kid`, refreshed in the background as the
//! JWKS response's `Cache-Control` allows, refetched on an unknown `kid` at most once per
//! configured interval.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use valet_jose::{JoseError, VerificationKeys, VerifiedJws};

use crate::config::GuardConfig;
use crate::error::GuardError;
use crate::http::Http;

/// A JWK Set bigger than this is not Valet's (each key is a few hundred bytes).
const MAX_JWKS_LEN: usize = 1024 * 1024;

/// The refresh period when the JWKS response says nothing about caching.
const DEFAULT_REFRESH: Duration = Duration::from_secs(5 * 60);

pub(crate) struct KeySet {
    http: Http,
    jwks_uri: String,
    current: RwLock<Arc<VerificationKeys>>,
    min_refetch_interval: Duration,
    refresh_min: Duration,
    refresh_max: Duration,
    /// When an unknown `kid` last caused a fetch.
    last_kid_refetch: Mutex<Option<Instant>>,
    /// One unknown-`kid` fetch at a time; the others wait for its result.
    kid_refetch: tokio::sync::Mutex<()>,
}

impl KeySet {
    /// Fetches the JWKS once; the error is the guard's start-up error. Also returns the
    /// delay before the first background refresh.
    pub(crate) async fn load(
        http: Http,
        jwks_uri: String,
        config: &GuardConfig,
    ) -> Result<(KeySet, Duration), GuardError> {
        let set = KeySet {
            http,
            jwks_uri,
            current: RwLock::new(Arc::new(VerificationKeys::default())),
            min_refetch_interval: config.jwks_min_refetch_interval,
            refresh_min: config.jwks_refresh_min,
            refresh_max: config.jwks_refresh_max,
            last_kid_refetch: Mutex::new(None),
            kid_refetch: tokio::sync::Mutex::new(()),
        };
        let max_age = set.fetch().await.map_err(|reason| GuardError::Jwks {
            url: set.jwks_uri.clone(),
            reason,
        })?;
        let period = set.refresh_period(max_age);
        Ok((set, period))
    }

    /// The keys now.
    pub(crate) fn current(&self) -> Arc<VerificationKeys> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Verifies a JWS with the cached keys; a `kid` not among them triggers one
    /// rate-limited JWKS refetch and a second attempt.
    pub(crate) async fn verify(
        &self,
        token: &str,
        typ: &str,
        max_len: usize,
    ) -> Result<VerifiedJws, JoseError> {
        match self.current().verify_bounded(token, typ, max_len) {
            Err(JoseError::UnknownKid(_)) => {
                self.refetch_for_unknown_kid().await;
                self.current().verify_bounded(token, typ, max_len)
            }
            other => other,
        }
    }

    /// At most one fetch per `min_refetch_interval`, however many tokens name unknown
    /// `kid`s: forged tokens cannot make the guard hammer the issuer.
    async fn refetch_for_unknown_kid(&self) {
        if !self.kid_refetch_due() {
            return;
        }
        let _one_at_a_time = self.kid_refetch.lock().await;
        if !self.kid_refetch_due() {
            // Another request fetched while this one waited: its keys are current.
            return;
        }
        *self
            .last_kid_refetch
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        tracing::debug!(jwks_uri = %self.jwks_uri, "unknown kid: refetching the JWKS");
        if let Err(reason) = self.fetch().await {
            tracing::warn!(jwks_uri = %self.jwks_uri, %reason, "JWKS refetch failed; keeping the cached keys");
        }
    }

    fn kid_refetch_due(&self) -> bool {
        self.last_kid_refetch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= self.min_refetch_interval)
    }

    /// Fetches and installs the JWKS; returns its `max-age`. On failure the cached keys
    /// stay.
    async fn fetch(&self) -> Result<Option<Duration>, String> {
        let document = self
            .http
            .get(
                &self.jwks_uri,
                "application/jwk-set+json, application/json",
                MAX_JWKS_LEN,
            )
            .await
            .map_err(|error| error.to_string())?;
        let text = std::str::from_utf8(&document.body).map_err(|_| "not UTF-8".to_owned())?;
        let keys = VerificationKeys::from_jwk_set_json(text).map_err(|error| error.to_string())?;
        if keys.is_empty() {
            tracing::warn!(jwks_uri = %self.jwks_uri, "the JWKS holds no usable key");
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        Ok(document.max_age)
    }

    /// How long to wait before the next refresh: the response's `max-age` (5 minutes
    /// without one), within the configured bounds (default 30 s to 1 hour).
    pub(crate) fn refresh_period(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(DEFAULT_REFRESH)
            .clamp(self.refresh_min, self.refresh_max)
    }

    /// Refreshes forever (until aborted). While the issuer is down the cached keys keep
    /// verifying and a warning is logged at every failed attempt.
    pub(crate) async fn refresh_loop(self: Arc<Self>, first_delay: Duration) {
        let mut delay = first_delay;
        loop {
            tokio::time::sleep(delay).await;
            delay = match self.fetch().await {
                Ok(max_age) => self.refresh_period(max_age),
                Err(reason) => {
                    tracing::warn!(
                        jwks_uri = %self.jwks_uri,
                        %reason,
                        "JWKS refresh failed; still verifying with the cached keys"
                    );
                    self.refresh_min
                }
            };
        }
    }
}
