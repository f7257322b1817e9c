//! Sessions of `valet gateway`: the tokens of a signed-in browser, kept
//! server-side and sealed (AES-256-GCM) under the cookie key, so a copy of the
//! store holds neither usable tokens nor usable cookies.
//!
//! The browser's cookie holds a random 256-bit session id; the store key is its
//! SHA-256, and the record is sealed with that key as associated data (a record
//! moved under another key does not open). Records are tagged with the user's
//! `sub` and the issuer's `sid`, so a back-channel logout finds them.
//!
//! Opening a record (AES-GCM, then JSON) is done once per stored version: the
//! opened session is kept in memory next to the exact sealed bytes it came from,
//! and a request reuses it only when the store still holds those very bytes. The
//! store is read on every request and stays the only source of truth: a logout
//! or back-channel logout on any gateway sharing it (a deleted record), or a
//! refresh there (a new record, sealed under a fresh nonce), takes effect on the
//! next request everywhere, with no window.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
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

/// The session store: sealing, the backend, and the records opened lately.
pub struct Sessions {
    key: MasterKey,
    backend: Backend,
    ttl: Duration,
    opened: Opened,
}

impl Sessions {
    pub fn new(key: MasterKey, backend: Backend, ttl: Duration) -> Self {
        Self {
            key,
            backend,
            ttl,
            opened: Opened::default(),
        }
    }

    /// The session the store holds under this id, if any. The store is asked
    /// every time; only the opening of a record it returned before is skipped.
    pub async fn load(&self, session_id: &str) -> Result<Option<Arc<Session>>, String> {
        let store_key = store_key(session_id);
        let sealed: Option<Arc<[u8]>> = match &self.backend {
            Backend::Memory(memory) => memory.get(&store_key),
            Backend::Redis(redis) => redis.get(&store_key).await?.map(Arc::from),
        };
        let Some(sealed) = sealed else {
            self.opened.forget(&store_key);
            return Ok(None);
        };
        if let Some(session) = self.opened.get(&store_key, &sealed) {
            return Ok(Some(session));
        }
        // A record that does not open (another cookie key, tampering) is no session.
        let session = self
            .key
            .open(store_key.as_bytes(), &sealed)
            .ok()
            .and_then(|json| serde_json::from_slice::<Session>(&json).ok());
        let Some(session) = session else {
            self.opened.forget(&store_key);
            return Ok(None);
        };
        let session = Arc::new(session);
        self.opened.keep(store_key, sealed, Arc::clone(&session));
        Ok(Some(session))
    }

    pub async fn save(&self, session_id: &str, session: &Session) -> Result<(), String> {
        let store_key = store_key(session_id);
        let json = serde_json::to_vec(session).map_err(|error| error.to_string())?;
        let sealed: Arc<[u8]> = self
            .key
            .seal(store_key.as_bytes(), &json)
            .map_err(|error| format!("seal a session: {error}"))?
            .into();
        let tags = session.tags();
        match &self.backend {
            Backend::Memory(memory) => {
                memory.put(store_key.clone(), Arc::clone(&sealed), tags, self.ttl);
            }
            Backend::Redis(redis) => {
                // Forgotten first: a failed write leaves nothing opened behind.
                self.opened.forget(&store_key);
                redis.put(&store_key, &sealed, &tags, self.ttl).await?;
            }
        }
        self.opened
            .keep(store_key, sealed, Arc::new(session.clone()));
        Ok(())
    }

    pub async fn delete(&self, session_id: &str) -> Result<(), String> {
        let store_key = store_key(session_id);
        self.opened.forget(&store_key);
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
        self.opened.forget_tagged(tag);
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.delete_tagged(tag)),
            Backend::Redis(redis) => redis.delete_tagged(tag).await,
        }
    }
}

/// At most this many opened sessions are kept; past it an arbitrary one goes.
const OPENED_MAX: usize = 4096;

/// Sessions opened lately, each with the sealed record it came from: reused only
/// while the store returns exactly that record (see the module documentation).
/// Forgetting is hygiene (plaintext tokens are not kept longer than needed), not
/// what makes a logout work: a record the store no longer holds is never served.
#[derive(Default)]
struct Opened {
    entries: Mutex<HashMap<String, OpenedEntry>>,
}

struct OpenedEntry {
    sealed: Arc<[u8]>,
    session: Arc<Session>,
    tags: Vec<String>,
}

impl Opened {
    /// The session opened from `sealed`, if that is the record last opened here.
    fn get(&self, store_key: &str, sealed: &Arc<[u8]>) -> Option<Arc<Session>> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(store_key)?;
        // The same allocation (memory backend) or the same bytes (a shared store):
        // a record sealed again, even with the same content, has a new nonce.
        (Arc::ptr_eq(&entry.sealed, sealed) || *entry.sealed == **sealed)
            .then(|| Arc::clone(&entry.session))
    }

    fn keep(&self, store_key: String, sealed: Arc<[u8]>, session: Arc<Session>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= OPENED_MAX
            && !entries.contains_key(&store_key)
            && let Some(evicted) = entries.keys().next().cloned()
        {
            entries.remove(&evicted);
        }
        let tags = session.tags();
        entries.insert(
            store_key,
            OpenedEntry {
                sealed,
                session,
                tags,
            },
        );
    }

    fn forget(&self, store_key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(store_key);
        }
    }

    fn forget_tagged(&self, tag: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, entry| !entry.tags.iter().any(|t| t == tag));
        }
    }

    #[cfg(test)]
    fn contains(&self, store_key: &str) -> bool {
        self.entries
            .lock()
            .is_ok_and(|entries| entries.contains_key(store_key))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.len())
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

/// A sealed record: when it expires, its bytes, its tags.
type Record = (Instant, Arc<[u8]>, Vec<String>);

#[derive(Default)]
struct MemoryInner {
    records: HashMap<String, Record>,
    tagged: HashMap<String, HashSet<String>>,
}

impl Memory {
    fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        let inner = self.inner.lock().ok()?;
        let (expires, sealed, _) = inner.records.get(key)?;
        (*expires > Instant::now()).then(|| Arc::clone(sealed))
    }

    fn put(&self, key: String, sealed: Arc<[u8]>, tags: Vec<String>, ttl: Duration) {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn session(access_token: &str) -> Session {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::String("user-1".into()));
        claims.insert("sid".into(), Value::String("sid-1".into()));
        Session {
            claims,
            id_token: "id-token".into(),
            access_token: access_token.into(),
            refresh_token: Some("refresh".into()),
            refresh_at: 0,
            expires_at: 0,
        }
    }

    fn memory_sessions() -> Sessions {
        Sessions::new(
            MasterKey::generate().unwrap(),
            Backend::Memory(Memory::default()),
            Duration::from_secs(60),
        )
    }

    fn memory(sessions: &Sessions) -> &Memory {
        let Backend::Memory(memory) = &sessions.backend else {
            panic!("a memory backend");
        };
        memory
    }

    /// What another gateway sharing the store does: it writes the store, never
    /// this process's opened sessions.
    fn saved_elsewhere(sessions: &Sessions, session_id: &str, session: &Session) {
        let store_key = store_key(session_id);
        let json = serde_json::to_vec(session).unwrap();
        let sealed = sessions.key.seal(store_key.as_bytes(), &json).unwrap();
        memory(sessions).put(store_key, sealed.into(), session.tags(), sessions.ttl);
    }

    #[tokio::test]
    async fn a_record_is_opened_once_while_the_store_holds_it() {
        let sessions = memory_sessions();
        sessions.save("id", &session("first")).await.unwrap();
        let one = sessions.load("id").await.unwrap().unwrap();
        let two = sessions.load("id").await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&one, &two), "opened again");
        assert_eq!(two.access_token, "first");
        assert!(sessions.load("other").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn what_another_gateway_writes_to_the_store_wins_at_the_next_request() {
        let sessions = memory_sessions();
        sessions.save("id", &session("first")).await.unwrap();
        assert_eq!(
            sessions.load("id").await.unwrap().unwrap().access_token,
            "first"
        );
        // A refresh elsewhere: a new record, even for the same content.
        saved_elsewhere(&sessions, "id", &session("second"));
        let second = sessions.load("id").await.unwrap().unwrap();
        assert_eq!(second.access_token, "second");
        saved_elsewhere(&sessions, "id", &session("second"));
        let reopened = sessions.load("id").await.unwrap().unwrap();
        assert!(
            !Arc::ptr_eq(&second, &reopened),
            "a new record is opened anew"
        );
        assert_eq!(reopened.access_token, "second");
        // A logout elsewhere: the record is gone, so is the session here.
        memory(&sessions).delete(&store_key("id"));
        assert!(sessions.load("id").await.unwrap().is_none());
        // A back-channel logout elsewhere (by the user's sid).
        sessions.save("id", &session("third")).await.unwrap();
        assert!(sessions.load("id").await.unwrap().is_some());
        assert_eq!(memory(&sessions).delete_tagged(&tag("sid", "sid-1")), 1);
        assert!(sessions.load("id").await.unwrap().is_none());
        // A record that no longer opens (tampered, another key) is no session.
        sessions.save("id", &session("fourth")).await.unwrap();
        assert!(sessions.load("id").await.unwrap().is_some());
        let mut tampered = memory(&sessions).get(&store_key("id")).unwrap().to_vec();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        memory(&sessions).put(store_key("id"), tampered.into(), Vec::new(), sessions.ttl);
        assert!(sessions.load("id").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn logouts_here_forget_the_opened_session() {
        let sessions = memory_sessions();
        sessions.save("a", &session("a")).await.unwrap();
        sessions.save("b", &session("b")).await.unwrap();
        sessions.delete("a").await.unwrap();
        assert!(sessions.load("a").await.unwrap().is_none());
        assert!(!sessions.opened.contains(&store_key("a")));
        assert_eq!(
            sessions.delete_tagged(&tag("sub", "user-1")).await.unwrap(),
            1
        );
        assert!(!sessions.opened.contains(&store_key("b")));
        assert!(sessions.load("b").await.unwrap().is_none());
    }

    #[test]
    fn opened_sessions_match_by_the_exact_sealed_bytes_and_stay_bounded() {
        let opened = Opened::default();
        let sealed: Arc<[u8]> = Arc::from(&b"sealed record"[..]);
        opened.keep("k".into(), Arc::clone(&sealed), Arc::new(session("t")));
        // The same bytes fetched again from a shared store (another allocation).
        assert!(opened.get("k", &Arc::from(&b"sealed record"[..])).is_some());
        assert!(opened.get("k", &Arc::from(&b"sealed recore"[..])).is_none());
        assert!(opened.get("other", &sealed).is_none());
        for n in 0..OPENED_MAX + 10 {
            opened.keep(format!("k{n}"), Arc::clone(&sealed), Arc::new(session("t")));
        }
        assert_eq!(opened.len(), OPENED_MAX);
    }
}
