//! `valet init`: creates the store, the master key and the first signing keys,
//! as the first `valet serve` would, without serving. Safe to run again: on a
//! store that exists it checks the master key and changes nothing else.

use std::sync::Arc;

use valet_core::keys::KeyManager;

use super::admin::{AdminParts, flagged, report_audit_warnings};
use crate::config::Config;
use crate::output::timestamp;
use crate::storage::{CliError, Create, master_key, open_or_create_store, redact_url};

pub async fn run(config: &Config) -> Result<(), CliError> {
    let store = open_or_create_store(config).await?;
    let master = Arc::new(master_key(config, store.as_ref(), Create::Allowed).await?);
    let settings = config.settings();
    let manager = KeyManager::new(master, settings.keys, settings.longest_token_ttl());
    let parts = AdminParts::with_store(config, store);
    let admin = parts.admin();
    let created = admin.keys(&manager).ensure_current().await;
    report_audit_warnings(&admin);
    let created = created.map_err(flagged)?;
    for key in &created {
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
