//! Signing keys: list with their states, rotate one algorithm, import, retire,
//! and the public JWKS.

use serde::Serialize;
use serde_json::{Value, json};
use valet_jose::{Algorithm, import_jwk_set};

use super::{Admin, AdminError, Field};
use crate::audit::{AuditEvent, AuditKind};
use crate::keys::KeyManager;

/// A key as the admin interfaces show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyRecord {
    pub kid: String,
    #[schema(value_type = String)]
    pub alg: Algorithm,
    /// `pending`, `signing`, `retiring` or `verify-only`.
    #[schema(value_type = String)]
    pub state: &'static str,
    pub generation: i64,
    pub created_at: i64,
    pub activates_at: Option<i64>,
    pub publish_until: Option<i64>,
}

/// A key made by a rotation: published now, signing from `signs_from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RotatedKey {
    pub kid: String,
    pub alg: String,
    pub signs_from: i64,
}

/// The key operations, which need the master key (through the [`KeyManager`]).
pub struct KeyAdmin<'s, 'a> {
    admin: &'s Admin<'a>,
    manager: &'s KeyManager,
}

impl<'a> Admin<'a> {
    /// The key operations that open or seal private keys.
    pub fn keys<'s>(&'s self, manager: &'s KeyManager) -> KeyAdmin<'s, 'a> {
        KeyAdmin {
            admin: self,
            manager,
        }
    }

    /// The JWKS as `/jwks.json` serves it (RFC 7517 §5): every published key's
    /// public JWK as stored when it was created, in the store's order (by alg,
    /// then generation), which is the keyring's order too. Needs no master key.
    pub async fn public_jwks(&self) -> Result<Value, AdminError> {
        let now = self.now();
        let mut keys = Vec::new();
        for key in self.store.list_keys().await? {
            if key.publish_until.is_some_and(|until| until <= now) {
                continue;
            }
            let jwk: Value = serde_json::from_str(&key.public_jwk).map_err(|error| {
                AdminError::Internal(format!(
                    "key {}: stored public JWK is corrupt: {error}",
                    key.kid
                ))
            })?;
            keys.push(jwk);
        }
        Ok(json!({ "keys": keys }))
    }
}

impl KeyAdmin<'_, '_> {
    /// Every stored key and where it stands now.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, AdminError> {
        let now = self.admin.now();
        let keys = self.manager.status(self.admin.store, now).await?;
        Ok(keys
            .into_iter()
            .map(|k| KeyRecord {
                kid: k.kid,
                alg: k.alg,
                state: k.state.as_str(),
                generation: k.generation,
                created_at: k.created_at,
                activates_at: k.activates_at,
                publish_until: k.publish_until,
            })
            .collect())
    }

    /// Creates the keys the schedule needs now (every algorithm has a signing
    /// key, the next one is published in time), each audited as `key.created`:
    /// what `valet init` and the first start do.
    pub async fn ensure_current(&self) -> Result<Vec<RotatedKey>, AdminError> {
        let now = self.admin.now();
        let created = self.manager.ensure_current(self.admin.store, now).await?;
        let mut keys = Vec::with_capacity(created.len());
        for key in created {
            self.admin
                .record(
                    AuditEvent::new(AuditKind::KeyCreated, now)
                        .detail("kid", key.kid.as_str())
                        .detail("alg", key.alg.to_string())
                        .detail("signs_from", key.signs_from),
                )
                .await;
            keys.push(RotatedKey {
                kid: key.kid,
                alg: key.alg.to_string(),
                signs_from: key.signs_from,
            });
        }
        Ok(keys)
    }

    /// Creates the next key of `alg` now: published at once, signing after
    /// `key_publish_lead`; audited as `key.created`. Refused, with nothing
    /// written, while a key of `alg` is still pending ([`AdminError::KeyPending`]).
    pub async fn rotate(&self, alg: Algorithm) -> Result<RotatedKey, AdminError> {
        let now = self.admin.now();
        let Some((kid, signs_from)) = self.manager.rotate(self.admin.store, alg, now).await? else {
            return Err(AdminError::conflict(
                Field::new("alg"),
                Some(alg.to_string()),
                "another rotation happened at the same moment; nothing was written here",
            ));
        };
        self.admin
            .record(
                AuditEvent::new(AuditKind::KeyCreated, now)
                    .detail("kid", kid.as_str())
                    .detail("alg", alg.to_string())
                    .detail("signs_from", signs_from),
            )
            .await;
        Ok(RotatedKey {
            kid,
            alg: alg.to_string(),
            signs_from,
        })
    }

    /// Imports a JWK Set with private members (EC P-256, RSA and OKP Ed25519 keys); each key
    /// audited as `key.imported`. With `activate`, each signs for its algorithm
    /// at once; without, it is published for verification only. Returns the kids.
    pub async fn import(&self, jwks: &str, activate: bool) -> Result<Vec<String>, AdminError> {
        let keys = import_jwk_set(jwks)
            .map_err(|error| AdminError::invalid(Field::new("jwks"), None, error.to_string()))?;
        let now = self.admin.now();
        let kids = self
            .manager
            .import(self.admin.store, keys, activate, now)
            .await?;
        for kid in &kids {
            self.admin
                .record(
                    AuditEvent::new(AuditKind::KeyImported, now)
                        .detail("kid", kid.as_str())
                        .detail("activated", activate),
                )
                .await;
        }
        Ok(kids)
    }

    /// Schedules a key to leave the JWKS once every token it may have signed has
    /// expired; audited as `key.retired`. Returns when it leaves.
    pub async fn retire(&self, kid: &str) -> Result<i64, AdminError> {
        let now = self.admin.now();
        let until = self.manager.retire(self.admin.store, kid, now).await?;
        self.admin
            .record(
                AuditEvent::new(AuditKind::KeyRetired, now)
                    .detail("kid", kid)
                    .detail("published_until", until),
            )
            .await;
        Ok(until)
    }
}
