//! A short-lived in-memory copy of client records, so authenticating a client on
//! the token path costs no database round trip. Entries are re-read after
//! `ttl` seconds: that bounds how late a deleted client or a rotated secret is
//! noticed by a node that did not make the change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;

use crate::error::OAuthError;
use crate::store::{Client, ClientOrigin, Store};

/// More entries than this and the cache starts over, so a flood of made-up client
/// ids cannot grow memory without bound.
const MAX_ENTRIES: usize = 10_000;

pub struct ClientCache {
    ttl: i64,
    entries: Mutex<HashMap<String, (i64, Arc<Client>)>>,
    /// Set while `client_id_metadata_documents` is on: clients known by the
    /// URL of their metadata document are resolved through it.
    documents: OnceLock<Box<dyn ClientResolver>>,
}

/// Clients that are not (or not only) in the store: a `client_id` that is the
/// URL of a metadata document (see `dynamic_clients::document`).
#[async_trait]
pub trait ClientResolver: Send + Sync {
    /// Whether `client_id` is one this resolver answers for.
    fn applies_to(&self, client_id: &str) -> bool;
    /// The client, fetched and stored if its stored copy is missing or stale;
    /// `None` if it cannot be had.
    async fn resolve(
        &self,
        store: &dyn Store,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Client>, OAuthError>;
}

impl ClientCache {
    pub fn new(ttl: i64) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            documents: OnceLock::new(),
        }
    }

    /// Resolves metadata document URLs from now on (once; later calls are ignored).
    pub fn resolve_documents(&self, documents: Box<dyn ClientResolver>) {
        let _ = self.documents.set(documents);
    }

    pub async fn get(
        &self,
        store: &dyn Store,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Arc<Client>>, OAuthError> {
        if let Some(client) = self.cached(client_id, now) {
            return Ok(Some(client));
        }
        let client = self.read(store, client_id, now).await?.map(Arc::new);
        if let Ok(mut entries) = self.entries.lock() {
            match &client {
                Some(client) => {
                    if entries.len() >= MAX_ENTRIES {
                        entries.clear();
                    }
                    entries.insert(client_id.to_owned(), (now, Arc::clone(client)));
                }
                None => {
                    entries.remove(client_id);
                }
            }
        }
        Ok(client)
    }

    /// The stored client; for a metadata document URL, the document's client,
    /// fetched again when its stored copy has expired. A client stored from a
    /// document is unknown while documents are switched off.
    async fn read(
        &self,
        store: &dyn Store,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Client>, OAuthError> {
        let stored = store.get_client(client_id).await?;
        let Some(documents) = self.documents.get() else {
            return Ok(stored.filter(|client| client.origin() != ClientOrigin::MetadataDocument));
        };
        match stored {
            Some(client) if client.origin() != ClientOrigin::MetadataDocument => Ok(Some(client)),
            Some(client) if client.metadata_expires_at.is_some_and(|until| now < until) => {
                Ok(Some(client))
            }
            _ if documents.applies_to(client_id) => documents.resolve(store, client_id, now).await,
            _ => Ok(None),
        }
    }

    /// Reads the client from the store whatever is cached, and caches the result:
    /// for a secret that the cached record does not know (rotated on another node).
    pub async fn refresh(
        &self,
        store: &dyn Store,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Arc<Client>>, OAuthError> {
        self.invalidate(client_id);
        self.get(store, client_id, now).await
    }

    /// Forgets a client at once (after this node changed or deleted it).
    pub fn invalidate(&self, client_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(client_id);
        }
    }

    fn cached(&self, client_id: &str, now: i64) -> Option<Arc<Client>> {
        let entries = self.entries.lock().ok()?;
        let (fetched_at, client) = entries.get(client_id)?;
        (now.saturating_sub(*fetched_at) < self.ttl).then(|| Arc::clone(client))
    }
}
