//! Creating, rotating, importing and retiring keys in the store.

use std::sync::Arc;

use valet_jose::{Algorithm, ImportedKey, JoseError, MasterKey, PrivateKeyDer, SigningKey};

use super::{is_published, signs_at};
use crate::config::KeyPolicy;
use crate::store::{KeyInsert, Store, StoreError, StoredKey};

/// The algorithms Valet always keeps a signing key for: ES256 signs access tokens by
/// default and ID tokens for clients that ask; RS256 is the one algorithm every OpenID
/// Connect relying party must accept. The configured `access_token_alg` is kept too.
pub const ALGORITHMS: [Algorithm; 2] = [Algorithm::Es256, Algorithm::Rs256];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the master key does not decrypt signing key {kid}: VALET_MASTER_KEY (or master.key) is not the one these keys were sealed with"
    )]
    WrongMasterKey { kid: String },
    #[error(
        "the master key is not this store's: it does not open the store's master key check value"
    )]
    MasterKeyMismatch,
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Jose(#[from] JoseError),
    #[error("no key with kid {0}")]
    NotFound(String),
    #[error("a key with kid {0} already exists")]
    DuplicateKid(String),
    #[error(
        "key {0} is the current signing key: run `valet key rotate` and retire it once its successor signs"
    )]
    RetireSigning(String),
    #[error(
        "{alg} key {kid} is already pending (it signs from {activates_at}, Unix time): a second pending key would be published for nothing; wait until it signs, then rotate again"
    )]
    PendingExists {
        alg: Algorithm,
        kid: String,
        activates_at: i64,
    },
}

/// Where a key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, will start signing at `activates_at`.
    Pending,
    /// The key that signs now.
    Signing,
    /// Superseded: published only so tokens it signed still verify.
    Retiring,
    /// Imported without activation: published, never signs.
    VerifyOnly,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Signing => "signing",
            Self::Retiring => "retiring",
            Self::VerifyOnly => "verify-only",
        }
    }
}

/// A key as `valet key list` shows it.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub kid: String,
    pub alg: Algorithm,
    pub generation: i64,
    pub state: KeyState,
    pub created_at: i64,
    pub activates_at: Option<i64>,
    pub publish_until: Option<i64>,
}

/// Applies the key schedule to the store. Every change is a store write that
/// other nodes see at their next keyring reload.
pub struct KeyManager {
    master: Arc<MasterKey>,
    policy: KeyPolicy,
    /// The longest an access token may live: how long a superseded key must stay
    /// published.
    max_token_ttl: i64,
}

/// A key the schedule made: what its audit record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedKey {
    pub kid: String,
    pub alg: Algorithm,
    /// When it starts signing; it is published at once.
    pub signs_from: i64,
}

impl KeyManager {
    pub fn new(master: Arc<MasterKey>, policy: KeyPolicy, max_token_ttl: i64) -> Self {
        Self {
            master,
            policy,
            max_token_ttl,
        }
    }

    /// [`ALGORITHMS`] and the access-token algorithm, each once.
    fn kept_algorithms(&self) -> Vec<Algorithm> {
        let mut algorithms = ALGORITHMS.to_vec();
        if !algorithms.contains(&self.policy.access_token_alg) {
            algorithms.push(self.policy.access_token_alg);
        }
        algorithms
    }

    /// Makes sure every algorithm has a signing key and that the next key is
    /// published `publish_lead` before the current one is due for rotation. Safe
    /// to run on every node at once: the store lets one of them win.
    pub async fn ensure_current(
        &self,
        store: &dyn Store,
        now: i64,
    ) -> Result<Vec<CreatedKey>, KeyError> {
        let keys = store.list_keys().await?;
        let mut created = Vec::new();
        for alg in self.kept_algorithms() {
            let latest = keys
                .iter()
                .filter(|k| k.alg == alg && is_published(k.publish_until, now))
                .filter_map(|k| k.activates_at.map(|at| (k.generation, at)))
                .max_by_key(|(generation, _)| *generation);
            let activates_at = match latest {
                // First start: nothing was ever signed, so the key may sign at once.
                None => now,
                Some((_, at)) if at > now => continue,
                Some((_, at)) => {
                    let due = at.saturating_add(self.policy.rotation_period);
                    if due.saturating_sub(self.policy.publish_lead) > now {
                        continue;
                    }
                    due.max(now.saturating_add(self.policy.publish_lead))
                }
            };
            if let Some(kid) = self
                .create_successor(store, &keys, alg, activates_at, now)
                .await?
            {
                created.push(CreatedKey {
                    kid,
                    alg,
                    signs_from: activates_at,
                });
            }
        }
        Ok(created)
    }

    /// Manual rotation: a new key, published now, signing after `publish_lead`.
    /// Refused, with nothing written, while a key of `alg` is still pending (a
    /// second one would only stack up in the JWKS).
    pub async fn rotate(
        &self,
        store: &dyn Store,
        alg: Algorithm,
        now: i64,
    ) -> Result<Option<(String, i64)>, KeyError> {
        let keys = store.list_keys().await?;
        if let Some(pending) = keys.iter().find(|k| {
            k.alg == alg
                && is_published(k.publish_until, now)
                && k.activates_at.is_some_and(|at| at > now)
        }) {
            return Err(KeyError::PendingExists {
                alg,
                kid: pending.kid.clone(),
                activates_at: pending.activates_at.unwrap_or_default(),
            });
        }
        let activates_at = now.saturating_add(self.policy.publish_lead);
        Ok(self
            .create_successor(store, &keys, alg, activates_at, now)
            .await?
            .map(|kid| (kid, activates_at)))
    }

    /// Imports keys from another server. With `activate`, each imported key signs
    /// for its algorithm at once (the keys it replaces stay published until their
    /// tokens expire); without, they are published for verification only.
    pub async fn import(
        &self,
        store: &dyn Store,
        imported: Vec<ImportedKey>,
        activate: bool,
        now: i64,
    ) -> Result<Vec<String>, KeyError> {
        let mut kids = Vec::with_capacity(imported.len());
        for key in imported {
            let keys = store.list_keys().await?;
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(KeyError::DuplicateKid(key.kid));
            }
            // Proves the key is usable before it is stored.
            let signing = SigningKey::from_der(key.alg, &key.kid, key.der.as_bytes())?;
            let activates_at = activate.then_some(now);
            let record = self.seal(
                &signing,
                &key.der,
                next_generation(&keys, key.alg),
                activates_at,
                now,
            )?;
            match store.insert_key(&record).await? {
                KeyInsert::Inserted => {}
                KeyInsert::GenerationTaken => return Err(KeyError::DuplicateKid(key.kid)),
            }
            if activate {
                self.retire_predecessors(store, &keys, key.alg, record.generation, now)
                    .await?;
            }
            kids.push(key.kid);
        }
        Ok(kids)
    }

    /// Takes a key out of signing and publication once every token it could have
    /// signed has expired.
    pub async fn retire(&self, store: &dyn Store, kid: &str, now: i64) -> Result<i64, KeyError> {
        let status = self.status(store, now).await?;
        match status.iter().find(|k| k.kid == kid) {
            None => return Err(KeyError::NotFound(kid.to_owned())),
            Some(key) if key.state == KeyState::Signing => {
                return Err(KeyError::RetireSigning(kid.to_owned()));
            }
            Some(_) => {}
        }
        let until = now.saturating_add(self.retention());
        if store.set_key_publish_until(kid, until).await? {
            Ok(until)
        } else {
            Err(KeyError::NotFound(kid.to_owned()))
        }
    }

    /// Deletes keys whose publication has ended.
    pub async fn purge(&self, store: &dyn Store, now: i64) -> Result<u64, KeyError> {
        Ok(store.delete_unpublished_keys(now).await?)
    }

    pub async fn status(&self, store: &dyn Store, now: i64) -> Result<Vec<KeyStatus>, KeyError> {
        let keys = store.list_keys().await?;
        let signing: Vec<(Algorithm, i64)> = Algorithm::ALL
            .iter()
            .filter_map(|alg| {
                keys.iter()
                    .filter(|k| k.alg == *alg && signs_at(k.activates_at, k.publish_until, now))
                    .max_by_key(|k| k.generation)
                    .map(|k| (k.alg, k.generation))
            })
            .collect();
        Ok(keys
            .into_iter()
            .filter(|k| is_published(k.publish_until, now))
            .map(|k| {
                let state = match k.activates_at {
                    None => KeyState::VerifyOnly,
                    Some(at) if at > now => KeyState::Pending,
                    Some(_) if signing.contains(&(k.alg, k.generation)) => KeyState::Signing,
                    Some(_) => KeyState::Retiring,
                };
                KeyStatus {
                    kid: k.kid,
                    alg: k.alg,
                    generation: k.generation,
                    state,
                    created_at: k.created_at,
                    activates_at: k.activates_at,
                    publish_until: k.publish_until,
                }
            })
            .collect())
    }

    fn retention(&self) -> i64 {
        self.max_token_ttl
            .saturating_add(self.policy.retention_margin)
    }

    async fn create_successor(
        &self,
        store: &dyn Store,
        keys: &[StoredKey],
        alg: Algorithm,
        activates_at: i64,
        now: i64,
    ) -> Result<Option<String>, KeyError> {
        let (signing, der) = SigningKey::generate(alg)?;
        let generation = next_generation(keys, alg);
        let record = self.seal(&signing, &der, generation, Some(activates_at), now)?;
        match store.insert_key(&record).await? {
            KeyInsert::Inserted => {}
            // Another node rotated first; its key is as good as ours.
            KeyInsert::GenerationTaken => return Ok(None),
        }
        self.retire_predecessors(store, keys, alg, generation, activates_at)
            .await?;
        Ok(Some(record.kid))
    }

    /// Every older key of `alg` stops signing when the new one activates, and
    /// stays published until the tokens it signed have expired.
    async fn retire_predecessors(
        &self,
        store: &dyn Store,
        keys: &[StoredKey],
        alg: Algorithm,
        generation: i64,
        successor_activates_at: i64,
    ) -> Result<(), KeyError> {
        let until = successor_activates_at.saturating_add(self.retention());
        for key in keys
            .iter()
            .filter(|k| k.alg == alg && k.generation < generation && k.activates_at.is_some())
        {
            store.set_key_publish_until(&key.kid, until).await?;
        }
        Ok(())
    }

    fn seal(
        &self,
        signing: &SigningKey,
        der: &PrivateKeyDer,
        generation: i64,
        activates_at: Option<i64>,
        now: i64,
    ) -> Result<StoredKey, KeyError> {
        let public_jwk = serde_json::to_string(signing.public_jwk())
            .map_err(|error| KeyError::Corrupt(format!("JWK serialization: {error}")))?;
        Ok(StoredKey {
            kid: signing.kid().to_owned(),
            alg: signing.alg(),
            generation,
            public_jwk,
            sealed_private_key: self.master.seal(signing.kid().as_bytes(), der.as_bytes())?,
            created_at: now,
            activates_at,
            publish_until: None,
        })
    }
}

fn next_generation(keys: &[StoredKey], alg: Algorithm) -> i64 {
    keys.iter()
        .filter(|k| k.alg == alg)
        .map(|k| k.generation)
        .max()
        .map_or(1, |max| max.saturating_add(1))
}
