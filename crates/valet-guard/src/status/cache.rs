//! Status lists cached per `uri`, refreshed in the background at their `ttl` and on a
//! push, and the policy for when they cannot be fetched.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use valet_jose::JoseError;

use super::list::{ListError, ListToken, StatusList, check_list_claims};
use crate::config::{GuardConfig, StatusPolicy};
use crate::error::TokenError;
use crate::http::{FetchError, Http};
use crate::jwks::KeySet;
use crate::tasks::Tasks;
use crate::token::StatusReference;
use valet_jose::Clock;

/// draft-ietf-oauth-status-list §5.1: the `typ` of a status list token.
pub(crate) const STATUS_LIST_TYP: &str = "statuslist+jwt";

/// draft §8.1 media type, sent as `Accept`.
const STATUS_LIST_MEDIA_TYPE: &str = "application/statuslist+jwt";

/// A status list token longer than this is refused (its `lst` is compressed; Valet's are
/// a few hundred bytes to a few hundred KiB).
const MAX_LIST_TOKEN_LEN: usize = 4 * 1024 * 1024;

/// After a failed fetch, verifications do not try again synchronously for this long: while
/// the issuer is down, requests are answered at once instead of each waiting for a timeout.
const SYNC_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// A list no token has asked about for this long stops being polled and is dropped; the
/// next token naming it fetches it again.
const IDLE_EVICTION: Duration = Duration::from_secs(10 * 60);

/// Background retries after failures back off up to this.
const MAX_RETRY: Duration = Duration::from_secs(30);

pub(crate) struct StatusCache {
    http: Http,
    keys: Arc<KeySet>,
    tasks: Arc<Tasks>,
    clock: Arc<dyn Clock>,
    issuer: String,
    prefix: String,
    policy: StatusPolicy,
    leeway: i64,
    http_timeout: Duration,
    /// The origin of `ListEntry::last_used`.
    epoch: Instant,
    entries: RwLock<HashMap<String, Arc<ListEntry>>>,
}

struct ListEntry {
    uri: String,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// One fetch of this list at a time.
    fetching: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<Instant>>,
    /// Poked by the event stream: refetch now.
    wake: Notify,
    /// Milliseconds since `StatusCache::epoch` of the last verification that used it.
    last_used: AtomicU64,
    /// Requests are being answered without a usable list (logged once per outage).
    degraded: AtomicBool,
}

/// Who asks for a fetch; see [`StatusCache::refresh`].
#[derive(Clone, Copy)]
enum Refresh {
    ForRequest { now: i64 },
    Background,
}

/// A list as fetched, with when the fetch started.
struct Snapshot {
    list: StatusList,
    fetched_at: Instant,
    exp: Option<i64>,
    ttl: Duration,
}

impl StatusCache {
    pub(crate) fn new(
        http: Http,
        keys: Arc<KeySet>,
        tasks: Arc<Tasks>,
        config: &GuardConfig,
    ) -> StatusCache {
        StatusCache {
            http,
            keys,
            tasks,
            clock: Arc::clone(&config.clock),
            issuer: config.issuer.clone(),
            prefix: config.status_list_prefix(),
            policy: config.status_policy,
            leeway: i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX),
            http_timeout: config.http_timeout,
            epoch: Instant::now(),
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The status of `reference` at `now`: valid, revoked, or unknown per the policy.
    ///
    /// A cached list is used while it is at most `max_staleness` old and not past its
    /// `exp`. Otherwise (or for a list never seen) it is fetched now, within the HTTP
    /// timeout; if that fails, the policy decides.
    pub(crate) async fn check(
        self: &Arc<Self>,
        reference: &StatusReference,
        now: i64,
    ) -> Result<(), TokenError> {
        if !self.allowed(&reference.uri) {
            return Err(TokenError::StatusUriNotAllowed);
        }
        let entry = self.entry(&reference.uri);
        entry.last_used.store(self.millis(), Ordering::Relaxed);
        let cached = entry.snapshot();
        if let Some(snapshot) = &cached
            && self.usable(snapshot, now)
        {
            return lookup(snapshot, reference.idx);
        }
        let fresh = tokio::time::timeout(
            self.http_timeout,
            self.refresh(&entry, Refresh::ForRequest { now }),
        )
        .await;
        match fresh {
            Ok(Ok(snapshot)) => lookup(&snapshot, reference.idx),
            failure => {
                let reason = match failure {
                    Ok(Err(reason)) => reason,
                    _ => "timed out".to_owned(),
                };
                // Once per outage, not once per request.
                let first = !entry.degraded.swap(true, Ordering::Relaxed);
                if self.policy.fail_open {
                    if first {
                        tracing::warn!(
                            uri = %reference.uri, %reason,
                            "token status unavailable; accepting tokens of this list (fail_open)"
                        );
                    }
                    // A stale list still knows what was revoked before it was fetched.
                    match cached
                        .as_deref()
                        .map(|snapshot| lookup(snapshot, reference.idx))
                    {
                        Some(Err(TokenError::Revoked)) => Err(TokenError::Revoked),
                        _ => Ok(()),
                    }
                } else {
                    if first {
                        tracing::warn!(
                            uri = %reference.uri, %reason,
                            "token status unavailable; refusing tokens of this list (fail closed)"
                        );
                    }
                    Err(TokenError::StatusUnavailable)
                }
            }
        }
    }

    /// draft §13.1 (and no SSRF through tokens): only `{issuer}/statuslists/{name}`, where
    /// `name` is one path segment of unreserved characters (RFC 3986 §2.3), not `.`/`..`.
    pub(crate) fn allowed(&self, uri: &str) -> bool {
        uri.strip_prefix(&self.prefix).is_some_and(|name| {
            !name.is_empty()
                && name != "."
                && name != ".."
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        })
    }

    /// Asks the refresher of `uri` (if the list is cached) to refetch it now.
    pub(crate) fn wake(&self, uri: &str) -> bool {
        match self.read_entries().get(uri) {
            Some(entry) => {
                entry.wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// Asks every refresher to refetch (after the event stream reconnects: notices may
    /// have been missed meanwhile).
    pub(crate) fn wake_all(&self) {
        for entry in self.read_entries().values() {
            entry.wake.notify_one();
        }
    }

    fn usable(&self, snapshot: &Snapshot, now: i64) -> bool {
        snapshot.fetched_at.elapsed() <= self.policy.max_staleness
            && snapshot
                .exp
                .is_none_or(|exp| now < exp.saturating_add(self.leeway))
    }

    /// The entry of `uri`, created (with its refresher) on first use.
    fn entry(self: &Arc<Self>, uri: &str) -> Arc<ListEntry> {
        if let Some(entry) = self.read_entries().get(uri) {
            return Arc::clone(entry);
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get(uri) {
            return Arc::clone(entry);
        }
        let entry = Arc::new(ListEntry {
            uri: uri.to_owned(),
            snapshot: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            last_failure: Mutex::new(None),
            wake: Notify::new(),
            last_used: AtomicU64::new(self.millis()),
            degraded: AtomicBool::new(false),
        });
        entries.insert(uri.to_owned(), Arc::clone(&entry));
        drop(entries);
        self.tasks
            .spawn(refresher(Arc::clone(self), Arc::clone(&entry)));
        entry
    }

    fn read_entries(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<ListEntry>>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Fetches the list, one fetch at a time per list.
    ///
    /// A request waiting for it ([`Refresh::ForRequest`]) takes any usable list, such as
    /// one another request fetched while it waited for the lock, and does not retry within
    /// a second of a failure. The refresher ([`Refresh::Background`], after a push or at
    /// `ttl`) needs a list whose fetch started after it asked: an older one may predate the
    /// revocation it was told about.
    async fn refresh(&self, entry: &ListEntry, mode: Refresh) -> Result<Arc<Snapshot>, String> {
        let requested = Instant::now();
        let _one_at_a_time = entry.fetching.lock().await;
        if let Some(snapshot) = entry.snapshot() {
            let good_enough = match mode {
                Refresh::ForRequest { now } => self.usable(&snapshot, now),
                Refresh::Background => snapshot.fetched_at >= requested,
            };
            if good_enough {
                return Ok(snapshot);
            }
        }
        if matches!(mode, Refresh::ForRequest { .. })
            && entry
                .last_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some_and(|at| at.elapsed() < SYNC_RETRY_AFTER_FAILURE)
        {
            return Err("the last fetch failed moments ago".to_owned());
        }
        let fetched_at = Instant::now();
        match self.fetch(&entry.uri).await {
            Ok(token) => {
                let snapshot = Arc::new(Snapshot {
                    list: token.list,
                    fetched_at,
                    exp: token.exp,
                    ttl: token.ttl,
                });
                *entry
                    .snapshot
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&snapshot));
                *entry
                    .last_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                if entry.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(uri = %entry.uri, "token status available again");
                }
                tracing::debug!(uri = %entry.uri, "status list refreshed");
                Ok(snapshot)
            }
            Err(error) => {
                *entry
                    .last_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                Err(error.to_string())
            }
        }
    }

    /// GETs and verifies one status list token.
    async fn fetch(&self, uri: &str) -> Result<ListToken, ListFetchError> {
        let document = self
            .http
            .get(uri, STATUS_LIST_MEDIA_TYPE, MAX_LIST_TOKEN_LEN)
            .await
            .map_err(ListFetchError::Fetch)?;
        let text = std::str::from_utf8(&document.body).map_err(|_| ListFetchError::NotUtf8)?;
        let jws = self
            .keys
            .verify(text.trim_ascii(), STATUS_LIST_TYP, MAX_LIST_TOKEN_LEN)
            .await
            .map_err(ListFetchError::Signature)?;
        Ok(check_list_claims(
            &jws.claims,
            uri,
            &self.issuer,
            self.clock.now(),
            self.leeway,
        )?)
    }

    /// When the refresher should next fetch: `ttl` after the last fetch, sooner if
    /// `max_staleness` is shorter (so that requests do not find the list stale).
    fn next_poll(&self, entry: &ListEntry) -> Duration {
        match entry.snapshot() {
            Some(snapshot) => {
                let period = snapshot
                    .ttl
                    .min(self.policy.max_staleness / 2)
                    .max(Duration::from_secs(1));
                period.saturating_sub(snapshot.fetched_at.elapsed())
            }
            None => Duration::from_secs(1),
        }
    }

    fn evict(&self, entry: &Arc<ListEntry>) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries
            .get(&entry.uri)
            .is_some_and(|current| Arc::ptr_eq(current, entry))
        {
            entries.remove(&entry.uri);
        }
    }
}

impl ListEntry {
    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Keeps one list fresh: refetches at its `ttl` and whenever woken, backs off on failure,
/// ends when no token has used the list for [`IDLE_EVICTION`].
async fn refresher(cache: Arc<StatusCache>, entry: Arc<ListEntry>) {
    let mut retry: Option<Duration> = None;
    loop {
        let delay = retry.unwrap_or_else(|| cache.next_poll(&entry));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = entry.wake.notified() => {}
        }
        let idle = cache
            .millis()
            .saturating_sub(entry.last_used.load(Ordering::Relaxed));
        if Duration::from_millis(idle) >= IDLE_EVICTION {
            cache.evict(&entry);
            return;
        }
        match cache.refresh(&entry, Refresh::Background).await {
            Ok(_) => retry = None,
            Err(reason) => {
                let next = retry.map_or(Duration::from_secs(1), |r| (r * 2).min(MAX_RETRY));
                tracing::warn!(
                    uri = %entry.uri, %reason, retry_in = ?next,
                    "status list refresh failed; serving the cached list"
                );
                retry = Some(next);
            }
        }
    }
}

/// The status of `idx` in the list: 0 is valid (draft §7.1); any other value is not.
fn lookup(snapshot: &Snapshot, idx: u64) -> Result<(), TokenError> {
    match snapshot.list.status(idx) {
        Some(0) => Ok(()),
        Some(_) => Err(TokenError::Revoked),
        None => Err(TokenError::StatusIndexOutOfRange),
    }
}

#[derive(Debug, thiserror::Error)]
enum ListFetchError {
    #[error("{0}")]
    Fetch(FetchError),
    #[error("the response is not UTF-8")]
    NotUtf8,
    #[error("status list token rejected: {0}")]
    Signature(JoseError),
    #[error("status list token rejected: {0}")]
    Claims(#[from] ListError),
}
