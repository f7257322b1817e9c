//! `valet init`: creates the store, the master key and the first signing keys,
//! as the first `valet serve` would, without serving. Safe to run again: on a
//! store that exists it checks the master key and changes nothing else.

use std::sync::Arc;

use valet_core::audit::{AuditEvent, AuditKind};
use valet_core::keys::KeyManager;
use valet_core::{Clock, SystemClock};

use crate::config::Config;
use crate::output::timestamp;
use crate::storage::{CliError, Create, audit, master_key, open_or_create_store, redact_url};

pub async fn run(config: &Config) -> Result<(), CliError> {
    let store = open_or_create_store(config).await?;
    let master = Arc::new(master_key(config, store.as_ref(), Create::Allowed).await?);
    let settings = config.settings();
    let manager = KeyManager::new(master, settings.keys, settings.longest_token_ttl());
    let now = SystemClock.now();
    let created = manager.ensure_current(store.as_ref(), now).await?;
    for key in &created {
        audit(
            store.as_ref(),
            AuditEvent::new(AuditKind::KeyCreated, now)
                .detail("kid", key.kid.as_str())
                .detail("alg", key.alg.to_string())
                .detail("signs_from", key.signs_from),
        )
        .await;
        println!(
            "Created {} signing key {} (signs from {}).",
            key.alg,
            key.kid,
            timestamp(key.signs_from)
        );
    }
    let store_name = redact_url(&config.database_url());
    if created.is_empty() {
        println!("The store at {store_name} is ready; its master key checks out.");
    } else {
        println!("Initialized the store at {store_name}.");
    }
    Ok(())
}
