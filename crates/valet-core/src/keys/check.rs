//! Proof that a master key is the store's, before anything is sealed with it.
//!
//! The store keeps one value sealed with the master key (AES-256-GCM, see
//! [`valet_jose::MasterKey`]). Every process that is about to use a master key
//! opens that value first: a wrong key fails the authentication tag and nothing
//! is written. A store made before the check value existed adopts the key that
//! opens all of its signing keys, and records the check value then.

use valet_jose::MasterKey;

use super::keyring::unseal;
use super::schedule::KeyError;
use crate::store::Store;

/// Bound as additional authenticated data, so the value cannot stand in for a
/// sealed signing key (whose AAD is its `kid`) or the other way round.
const CHECK_AAD: &[u8] = b"valet:master-key-check";
const CHECK_PLAINTEXT: &[u8] = b"valet master key check, version 1";

/// How a master key was found to be the store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeyCheck {
    /// It opens the store's check value.
    Verified,
    /// The store had signing keys but no check value: this key opens every one of
    /// them, and the check value has now been written.
    Adopted,
    /// The store had neither: the check value has now been written with this key.
    Initialized,
}

/// Whether the store holds nothing sealed with a master key yet (no check value
/// and no signing key): only then may a new master key be generated.
pub async fn store_has_no_sealed_keys(store: &dyn Store) -> Result<bool, KeyError> {
    Ok(store.master_key_check().await?.is_none() && store.list_keys().await?.is_empty())
}

/// Verifies `master` against the store's check value, adopting it (writing the
/// check value) when the store has none. Fails with
/// [`KeyError::MasterKeyMismatch`] or [`KeyError::WrongMasterKey`] without
/// writing anything when the key is not the store's.
pub async fn check_master_key(
    store: &dyn Store,
    master: &MasterKey,
) -> Result<MasterKeyCheck, KeyError> {
    if let Some(sealed) = store.master_key_check().await? {
        return verify(master, &sealed).map(|()| MasterKeyCheck::Verified);
    }
    let keys = store.list_keys().await?;
    for key in &keys {
        unseal(master, key)?;
    }
    let sealed = master.seal(CHECK_AAD, CHECK_PLAINTEXT)?;
    if store.insert_master_key_check(&sealed).await? {
        return Ok(if keys.is_empty() {
            MasterKeyCheck::Initialized
        } else {
            MasterKeyCheck::Adopted
        });
    }
    // Another process wrote one meanwhile: ours must open it too.
    match store.master_key_check().await? {
        Some(sealed) => verify(master, &sealed).map(|()| MasterKeyCheck::Verified),
        None => Err(KeyError::Corrupt(
            "the master key check value was written and then disappeared".to_owned(),
        )),
    }
}

fn verify(master: &MasterKey, sealed: &[u8]) -> Result<(), KeyError> {
    let opened = master
        .open(CHECK_AAD, sealed)
        .map_err(|_| KeyError::MasterKeyMismatch)?;
    if opened.as_slice() == CHECK_PLAINTEXT {
        Ok(())
    } else {
        Err(KeyError::Corrupt(
            "the master key check value opens but holds something else".to_owned(),
        ))
    }
}
