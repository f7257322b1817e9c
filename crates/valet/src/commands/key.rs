//! `valet key …`

use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use valet_core::audit::{AuditEvent, AuditKind};
use valet_core::keys::{ALGORITHMS, KeyManager};
use valet_core::{Clock, SystemClock};
use valet_jose::{Algorithm, import_jwk_set};

use crate::config::Config;
use crate::output::{relative, timestamp};
use crate::storage::{CliError, audit, master_key, open_store};

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
    /// Create the next key now: published at once, signing after key_publish_lead.
    Rotate {
        /// Only this algorithm (default: all).
        #[arg(long, value_enum)]
        alg: Option<AlgArg>,
    },
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
    let master = Arc::new(master_key(config)?);
    let settings = config.settings();
    let manager = KeyManager::new(master, settings.keys, settings.access_token_max_ttl);
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
            let algs: Vec<Algorithm> = match alg {
                Some(alg) => vec![alg.into()],
                None => ALGORITHMS.to_vec(),
            };
            for alg in algs {
                match manager.rotate(store.as_ref(), alg, now).await? {
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
                    None => println!(
                        "{alg}: another rotation happened at the same moment; run `valet key list`."
                    ),
                }
            }
        }
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
