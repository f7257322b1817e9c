//! Building, caching and announcing the signed status lists.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;
use tokio::sync::{Notify, broadcast};
use valet_jose::b64url;

use super::LIST_TTL;
use crate::config::Settings;
use crate::error::OAuthError;
use crate::keys::Keyring;
use crate::store::{StatusRevocation, Store};
use crate::token::status_claim::{LIST_SIZE, list_uri};

/// draft-ietf-oauth-status-list §5.1: the `typ` of a status list token.
pub const STATUS_LIST_TYP: &str = "statuslist+jwt";

/// Built lists kept in memory.
const CACHE_ENTRIES: usize = 256;

/// A revocation, announced on the events endpoint. Resource servers refetch the
/// signed list; the event itself is only a hint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusEvent {
    pub uri: String,
    pub idx: i64,
}

#[derive(Default)]
struct Cache {
    /// list -> (built at, signed token)
    built: HashMap<i64, (i64, Arc<str>)>,
    /// list -> generation, bumped on every revocation touching the list, so a
    /// build that raced a revocation is not cached.
    generation: HashMap<i64, u64>,
    last_seq: i64,
}

pub struct StatusLists {
    cache: Mutex<Cache>,
    events: broadcast::Sender<StatusEvent>,
    wake: Notify,
}

impl Default for StatusLists {
    fn default() -> Self {
        Self {
            cache: Mutex::new(Cache::default()),
            events: broadcast::channel(4096).0,
            wake: Notify::new(),
        }
    }
}

impl StatusLists {
    /// Starts the change feed after what the store already holds.
    pub async fn start_after_existing(&self, store: &dyn Store) -> Result<(), OAuthError> {
        let last = store.last_status_seq().await?;
        self.lock().last_seq = last;
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.events.subscribe()
    }

    /// Wakes the change-feed poller at once (after a revocation on this node).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Reads revocations recorded since the last poll (by any node), drops the
    /// lists they touch from the cache and announces them.
    pub async fn poll(&self, store: &dyn Store, issuer: &str) -> Result<usize, OAuthError> {
        let after = self.lock().last_seq;
        let new = store.status_revocations_after(after, 1000).await?;
        if new.is_empty() {
            return Ok(0);
        }
        {
            let mut cache = self.lock();
            for revocation in &new {
                for list in lists_of(revocation) {
                    cache.built.remove(&list);
                    *cache.generation.entry(list).or_default() += 1;
                }
                cache.last_seq = cache.last_seq.max(revocation.seq);
            }
        }
        for revocation in &new {
            // Nobody listening is fine: send only fails without receivers.
            let _ = self.events.send(StatusEvent {
                uri: list_uri(issuer, revocation.start / LIST_SIZE),
                idx: revocation.start % LIST_SIZE,
            });
        }
        Ok(new.len())
    }

    /// The signed status list token of list `list`, built if not cached or older
    /// than its `ttl`. `None` for a list number out of range.
    pub async fn token(
        &self,
        store: &dyn Store,
        settings: &Settings,
        keyring: &Keyring,
        list: i64,
        now: i64,
    ) -> Result<Option<Arc<str>>, OAuthError> {
        // Only lists that hold indices handed out (and not long expired) exist.
        let Some((_, end)) = store.live_status_span(now).await? else {
            return Ok(None);
        };
        if list < 0 || list > end.saturating_sub(1) / LIST_SIZE {
            return Ok(None);
        }
        // Catch up with revocations other nodes recorded: a resource server that
        // was told of a revocation may ask any node, which must not answer with
        // a list built before it.
        self.poll(store, &settings.issuer).await?;
        let generation = {
            let cache = self.lock();
            if let Some((built_at, token)) = cache.built.get(&list)
                && now.saturating_sub(*built_at) < LIST_TTL
            {
                return Ok(Some(Arc::clone(token)));
            }
            cache.generation.get(&list).copied().unwrap_or_default()
        };
        let start = list * LIST_SIZE;
        let revocations = store
            .status_revocations_between(start, start + LIST_SIZE, now)
            .await?;
        let token: Arc<str> = build(settings, keyring, list, &revocations, now)?.into();
        let mut cache = self.lock();
        if cache.generation.get(&list).copied().unwrap_or_default() == generation {
            if cache.built.len() >= CACHE_ENTRIES {
                cache.built.clear();
            }
            cache.built.insert(list, (now, Arc::clone(&token)));
        }
        Ok(Some(token))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn lists_of(revocation: &StatusRevocation) -> std::ops::RangeInclusive<i64> {
    let first = revocation.start / LIST_SIZE;
    let last = (revocation.end.saturating_sub(1)).max(revocation.start) / LIST_SIZE;
    first..=last
}

/// draft-ietf-oauth-status-list §4.1 and §5.1: one bit per index (index i is bit
/// i % 8 of byte i / 8, least significant first; 1 = invalid), ZLIB-compressed,
/// base64url, in a JWT signed with the access tokens' key.
fn build(
    settings: &Settings,
    keyring: &Keyring,
    list: i64,
    revocations: &[StatusRevocation],
    now: i64,
) -> Result<String, OAuthError> {
    let start = list * LIST_SIZE;
    let end = start + LIST_SIZE;
    let mut bits = vec![0u8; usize::try_from(LIST_SIZE / 8).unwrap_or_default()];
    for revocation in revocations {
        for idx in revocation.start.max(start)..revocation.end.min(end) {
            let offset = usize::try_from(idx - start).unwrap_or_default();
            if let Some(byte) = bits.get_mut(offset / 8) {
                *byte |= 1 << (offset % 8);
            }
        }
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&bits).map_err(OAuthError::server)?;
    let compressed = encoder.finish().map_err(OAuthError::server)?;
    let alg = settings.keys.access_token_alg;
    let key = keyring
        .signing_key(alg, now)
        .ok_or_else(|| OAuthError::server(format!("no active {alg} signing key")))?;
    let claims = json!({
        "iss": settings.issuer,
        "sub": list_uri(&settings.issuer, list),
        "iat": now,
        "exp": now.saturating_add(86_400),
        "ttl": LIST_TTL,
        "status_list": { "bits": 1, "lst": b64url(compressed) },
    });
    key.sign_jwt(STATUS_LIST_TYP, &claims)
        .map_err(OAuthError::server)
}
