//! `valet key …`

use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use valet_core::audit::{AuditEvent, AuditKind};
use valet_core::keys::{KeyError, KeyManager};
use valet_core::store::Store;
use valet_core::{Clock, SystemClock};
use valet_jose::{Algorithm, import_jwk_set};

use crate::config::Config;
use crate::output::{relative, timestamp};
use crate::storage::{CliError, Create, audit, master_key, open_store};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgArg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "RS256")]
    Rs256,
}

impl From<AlgArg> for Algorithm {
    fn from(alg: AlgArg) -> Self {
        match alg {
            AlgArg::Es256 => Algorithm::Es256,
            AlgArg::Rs256 => Algorithm::Rs256,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List published keys and their state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create the next key of one algorithm now: published at once, signing after
    /// key_publish_lead. Refused while a key of that algorithm is still pending.
    Rotate {
        /// The algorithm to rotate (required: rotate the other one separately).
        #[arg(long, value_enum)]
        alg: AlgArg,
    },
    /// Print the public JWKS (what /jwks.json serves) to standard output: public
    /// members only, for resource servers that cannot fetch it.
    Export,
    /// Import a JWK Set with private members (EC P-256 and RSA keys).
    Import {
        file: std::path::PathBuf,
        /// Make each imported key the signing key for its algorithm at once.
        #[arg(long)]
        activate: bool,
    },
    /// Stop publishing a key once every token it may have signed has expired.
    Retire { kid: String },
}

pub async fn run(config: &Config, command: KeyCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    if let KeyCommand::Export = command {
        // Public keys only: no master key needed.
        let jwks = public_jwks(store.as_ref(), SystemClock.now()).await?;
        println!("{}", serde_json::to_string_pretty(&jwks)?);
        return Ok(());
    }
    let master = Arc::new(master_key(config, store.as_ref(), Create::Refused).await?);
    let settings = config.settings();
    let manager = KeyManager::new(master, settings.keys, settings.longest_token_ttl());
    let now = SystemClock.now();
    match command {
        KeyCommand::List { json } => {
            let keys = manager.status(store.as_ref(), now).await?;
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "kid": k.kid, "alg": k.alg, "state": k.state.as_str(),
                            "generation": k.generation, "created_at": k.created_at,
                            "activates_at": k.activates_at, "publish_until": k.publish_until,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if keys.is_empty() {
                println!("No keys yet: `valet serve` creates them on first start.");
            } else {
                println!(
                    "{:<44} {:<6} {:<12} {:<36} PUBLISHED UNTIL",
                    "KID", "ALG", "STATE", "SIGNS FROM"
                );
                for k in &keys {
                    let from = k.activates_at.map_or("never".to_owned(), |t| {
                        format!("{} ({})", timestamp(t), relative(t, now))
                    });
                    let until = k.publish_until.map_or("-".to_owned(), timestamp);
                    println!(
                        "{:<44} {:<6} {:<12} {:<36} {}",
                        k.kid,
                        k.alg,
                        k.state.as_str(),
                        from,
                        until
                    );
                }
            }
        }
        KeyCommand::Rotate { alg } => {
            let alg = Algorithm::from(alg);
            let rotated = match manager.rotate(store.as_ref(), alg, now).await {
                Err(KeyError::PendingExists {
                    alg,
                    kid,
                    activates_at,
                }) => {
                    return Err(format!(
                        "{alg} key {kid} is already pending: it signs from {} ({}). Nothing was written; rotate again once it signs (see `valet key list`)",
                        timestamp(activates_at),
                        relative(activates_at, now)
                    )
                    .into());
                }
                other => other?,
            };
            match rotated {
                Some((kid, at)) => {
                    audit(
                        store.as_ref(),
                        AuditEvent::new(AuditKind::KeyCreated, now)
                            .detail("kid", kid.as_str())
                            .detail("alg", alg.to_string())
                            .detail("signs_from", at),
                    )
                    .await;
                    println!(
                        "New {alg} key {kid}: published now, signs from {} ({}).",
                        timestamp(at),
                        relative(at, now)
                    );
                }
                None => {
                    return Err(format!(
                        "{alg}: another rotation happened at the same moment; nothing was written here, see `valet key list`"
                    )
                    .into());
                }
            }
        }
        KeyCommand::Export => {}
        KeyCommand::Import { file, activate } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|error| format!("{}: {error}", file.display()))?;
            let keys =
                import_jwk_set(&text).map_err(|error| format!("{}: {error}", file.display()))?;
            let kids = manager.import(store.as_ref(), keys, activate, now).await?;
            for kid in kids {
                audit(
                    store.as_ref(),
                    AuditEvent::new(AuditKind::KeyImported, now)
                        .detail("kid", kid.as_str())
                        .detail("activated", activate),
                )
                .await;
                if activate {
                    println!(
                        "Imported {kid}: signing now (running servers switch within 10 seconds)."
                    );
                } else {
                    println!("Imported {kid}: published for verification, not signing.");
                }
            }
        }
        KeyCommand::Retire { kid } => {
            let until = manager.retire(store.as_ref(), &kid, now).await?;
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::KeyRetired, now)
                    .detail("kid", kid.as_str())
                    .detail("published_until", until),
            )
            .await;
            println!(
                "Key {kid} leaves the JWKS at {} ({}).",
                timestamp(until),
                relative(until, now)
            );
        }
    }
    Ok(())
}

/// The JWKS as `/jwks.json` serves it (RFC 7517 §5): every published key's public
/// JWK as stored when it was created, in the store's order (by alg, then
/// generation), which is the keyring's order too.
async fn public_jwks(store: &dyn Store, now: i64) -> Result<serde_json::Value, CliError> {
    let mut keys = Vec::new();
    for key in store.list_keys().await? {
        if key.publish_until.is_some_and(|until| until <= now) {
            continue;
        }
        let jwk: serde_json::Value = serde_json::from_str(&key.public_jwk)
            .map_err(|error| format!("key {}: stored public JWK is corrupt: {error}", key.kid))?;
        keys.push(jwk);
    }
    Ok(json!({ "keys": keys }))
}
