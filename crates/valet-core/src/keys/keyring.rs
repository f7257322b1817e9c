//! The keys in memory, decrypted once when loaded and prepared for signing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use valet_jose::{Algorithm, MasterKey, SigningKey, VerificationKeys};

use super::schedule::KeyError;
use crate::store::{Store, StoredKey};

/// One key as the keyring holds it.
#[derive(Clone)]
struct PublishedKey {
    key: Arc<SigningKey>,
    generation: i64,
    activates_at: Option<i64>,
    publish_until: Option<i64>,
}

impl PublishedKey {
    fn signs_at(&self, now: i64) -> bool {
        super::signs_at(self.activates_at, self.publish_until, now)
    }
}

/// A consistent view of all keys, swapped whole on reload.
struct KeySet {
    keys: Vec<PublishedKey>,
    /// The JWKS document, serialized once per reload.
    jwks: Arc<[u8]>,
    verification: Arc<VerificationKeys>,
}

/// The keys every request uses. Reading is a lock-free-in-practice `Arc` clone;
/// [`Keyring::reload`] swaps in a new set built from the store.
pub struct Keyring {
    master: Arc<MasterKey>,
    current: RwLock<Arc<KeySet>>,
    /// Why the last reload failed, until one succeeds: the node then signs with
    /// keys that may be stale, and reports itself not ready.
    reload_failure: Mutex<Option<String>>,
}

impl Keyring {
    /// Loads every key from the store. Fails if a key cannot be decrypted with
    /// this master key, so a wrong `VALET_MASTER_KEY` stops the start.
    pub async fn load(
        store: &dyn Store,
        master: Arc<MasterKey>,
        now: i64,
    ) -> Result<Self, KeyError> {
        let set = build(store, &master, now, &HashMap::new()).await?;
        Ok(Self {
            master,
            current: RwLock::new(Arc::new(set)),
            reload_failure: Mutex::new(None),
        })
    }

    /// Re-reads the store: picks up keys created by other nodes or the CLI, and
    /// drops keys past their publication. Already-decrypted keys are reused.
    pub async fn reload(&self, store: &dyn Store, now: i64) -> Result<(), KeyError> {
        let known: HashMap<String, Arc<SigningKey>> = self
            .snapshot()
            .keys
            .iter()
            .map(|k| (k.key.kid().to_owned(), Arc::clone(&k.key)))
            .collect();
        let set = match build(store, &self.master, now, &known).await {
            Ok(set) => set,
            Err(error) => {
                *self.lock_failure() = Some(error.to_string());
                return Err(error);
            }
        };
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(set);
        }
        *self.lock_failure() = None;
        Ok(())
    }

    /// Why the last reload failed, if it did and none has succeeded since (for
    /// `/readyz`: keys that cannot be unsealed make the node not ready).
    pub fn reload_failure(&self) -> Option<String> {
        self.lock_failure().clone()
    }

    fn lock_failure(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // Holds plain data, always consistent.
        self.reload_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            // A writer never panics while holding the lock, but if one did the
            // previous set is still whole.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The key that signs for `alg` at `now`.
    pub fn signing_key(&self, alg: Algorithm, now: i64) -> Option<Arc<SigningKey>> {
        self.snapshot()
            .keys
            .iter()
            .filter(|k| k.key.alg() == alg && k.signs_at(now))
            .max_by_key(|k| k.generation)
            .map(|k| Arc::clone(&k.key))
    }

    /// The JWKS document (RFC 7517 §5), public members only.
    pub fn jwks(&self) -> Arc<[u8]> {
        Arc::clone(&self.snapshot().jwks)
    }

    pub fn verification_keys(&self) -> Arc<VerificationKeys> {
        Arc::clone(&self.snapshot().verification)
    }
}

async fn build(
    store: &dyn Store,
    master: &MasterKey,
    now: i64,
    known: &HashMap<String, Arc<SigningKey>>,
) -> Result<KeySet, KeyError> {
    let stored = store.list_keys().await?;
    let mut keys = Vec::with_capacity(stored.len());
    for record in stored {
        if !super::is_published(record.publish_until, now) {
            continue;
        }
        let key = match known.get(&record.kid) {
            Some(key) => Arc::clone(key),
            None => Arc::new(unseal(master, &record)?),
        };
        keys.push(PublishedKey {
            key,
            generation: record.generation,
            activates_at: record.activates_at,
            publish_until: record.publish_until,
        });
    }
    let jwks_keys: Vec<_> = keys.iter().map(|k| k.key.public_jwk().clone()).collect();
    let jwks = serde_json::to_vec(&serde_json::json!({ "keys": jwks_keys }))
        .map_err(|error| KeyError::Corrupt(format!("JWKS serialization: {error}")))?;
    let verification = VerificationKeys::from_jwks(&jwks_keys)?;
    Ok(KeySet {
        keys,
        jwks: jwks.into(),
        verification: Arc::new(verification),
    })
}

pub(super) fn unseal(master: &MasterKey, record: &StoredKey) -> Result<SigningKey, KeyError> {
    let der = master
        .open(record.kid.as_bytes(), &record.sealed_private_key)
        .map_err(|_| KeyError::WrongMasterKey {
            kid: record.kid.clone(),
        })?;
    SigningKey::from_der(record.alg, &record.kid, &der)
        .map_err(|error| KeyError::Corrupt(format!("key {}: {error}", record.kid)))
}
