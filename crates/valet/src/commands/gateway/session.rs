//! Sessions of `valet gateway`: the tokens of a signed-in browser, kept
//! server-side and sealed (AES-256-GCM) under the cookie key, so a copy of the
//! store holds neither usable tokens nor usable cookies.
//!
//! The browser's cookie holds a random 256-bit session id; the store key is its
//! SHA-256, and the record is sealed with that key as associated data (a record
//! moved under another key does not open). Records are tagged with the user's
//! `sub` and the issuer's `sid`, so a back-channel logout finds them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use valet_jose::{MasterKey, b64url, random_bytes, sha256};

use super::redis::Redis;

/// What the gateway knows of a signed-in browser.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The ID token's claims, as `/bff/user` shows them.
    pub claims: Map<String, Value>,
    /// The ID token itself, for `id_token_hint` at logout.
    pub id_token: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds at which the access token is refreshed (shortly before it expires).
    pub refresh_at: i64,
    /// Unix seconds at which the access token expires.
    pub expires_at: i64,
}

impl Session {
    /// The tags a back-channel logout looks records up by.
    fn tags(&self) -> Vec<String> {
        let mut tags = Vec::with_capacity(2);
        if let Some(sub) = self.claims.get("sub").and_then(Value::as_str) {
            tags.push(tag("sub", sub));
        }
        if let Some(sid) = self.claims.get("sid").and_then(Value::as_str) {
            tags.push(tag("sid", sid));
        }
        tags
    }
}

/// The tag of a claim value (hashed: the store does not learn user ids).
pub fn tag(claim: &str, value: &str) -> String {
    b64url(sha256(format!("{claim}\0{value}").as_bytes()))
}

/// A new random session id (the cookie's value).
pub fn new_session_id() -> Result<String, String> {
    random_bytes::<32>()
        .map(b64url)
        .map_err(|error| format!("random session id: {error}"))
}

/// Where sealed records live.
pub enum Backend {
    Memory(Memory),
    Redis(Redis),
}

/// The session store: sealing, and the backend.
pub struct Sessions {
    key: MasterKey,
    backend: Backend,
    ttl: Duration,
}

impl Sessions {
    pub fn new(key: MasterKey, backend: Backend, ttl: Duration) -> Self {
        Self { key, backend, ttl }
    }

    pub async fn load(&self, session_id: &str) -> Result<Option<Session>, String> {
        let store_key = store_key(session_id);
        let sealed = match &self.backend {
            Backend::Memory(memory) => memory.get(&store_key),
            Backend::Redis(redis) => redis.get(&store_key).await?,
        };
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        // A record that does not open (another cookie key, tampering) is no session.
        let Ok(json) = self.key.open(store_key.as_bytes(), &sealed) else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&json).ok())
    }

    pub async fn save(&self, session_id: &str, session: &Session) -> Result<(), String> {
        let store_key = store_key(session_id);
        let json = serde_json::to_vec(session).map_err(|error| error.to_string())?;
        let sealed = self
            .key
            .seal(store_key.as_bytes(), &json)
            .map_err(|error| format!("seal a session: {error}"))?;
        let tags = session.tags();
        match &self.backend {
            Backend::Memory(memory) => {
                memory.put(store_key, sealed, tags, self.ttl);
                Ok(())
            }
            Backend::Redis(redis) => redis.put(&store_key, &sealed, &tags, self.ttl).await,
        }
    }

    pub async fn delete(&self, session_id: &str) -> Result<(), String> {
        let store_key = store_key(session_id);
        match &self.backend {
            Backend::Memory(memory) => {
                memory.delete(&store_key);
                Ok(())
            }
            Backend::Redis(redis) => redis.delete(&store_key).await,
        }
    }

    /// Deletes every session carrying `tag`; returns how many there were.
    pub async fn delete_tagged(&self, tag: &str) -> Result<usize, String> {
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.delete_tagged(tag)),
            Backend::Redis(redis) => redis.delete_tagged(tag).await,
        }
    }
}

fn store_key(session_id: &str) -> String {
    b64url(sha256(session_id.as_bytes()))
}

/// More records than this and expired ones are swept before adding.
const SWEEP_ABOVE: usize = 10_000;

/// Sessions in this process's memory: lost on restart, not shared.
#[derive(Default)]
pub struct Memory {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    records: HashMap<String, (Instant, Vec<u8>, Vec<String>)>,
    tagged: HashMap<String, HashSet<String>>,
}

impl Memory {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let inner = self.inner.lock().ok()?;
        let (expires, sealed, _) = inner.records.get(key)?;
        (*expires > Instant::now()).then(|| sealed.clone())
    }

    fn put(&self, key: String, sealed: Vec<u8>, tags: Vec<String>, ttl: Duration) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let now = Instant::now();
        if inner.records.len() > SWEEP_ABOVE {
            inner.records.retain(|_, (expires, _, _)| *expires > now);
            let live: HashSet<String> = inner.records.keys().cloned().collect();
            inner.tagged.retain(|_, keys| {
                keys.retain(|key| live.contains(key));
                !keys.is_empty()
            });
        }
        for tag in &tags {
            inner
                .tagged
                .entry(tag.clone())
                .or_default()
                .insert(key.clone());
        }
        inner.records.insert(key, (now + ttl, sealed, tags));
    }

    fn delete(&self, key: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.records.remove(key);
        }
    }

    fn delete_tagged(&self, tag: &str) -> usize {
        let Ok(mut inner) = self.inner.lock() else {
            return 0;
        };
        let keys = inner.tagged.remove(tag).unwrap_or_default();
        keys.iter()
            .filter(|key| inner.records.remove(key.as_str()).is_some())
            .count()
    }
}
