//! `valet key …`: parses the arguments, calls the admin service, prints.

use std::path::Path;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use valet_core::admin::{AdminError, KeyAdmin};
use valet_core::keys::KeyManager;
use valet_core::{Clock, SystemClock};
use valet_jose::Algorithm;

use super::admin::{AdminParts, flagged, report_audit_warnings};
use crate::config::Config;
use crate::output::{relative, timestamp};
use crate::storage::{CliError, Create, master_key};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgArg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl From<AlgArg> for Algorithm {
    fn from(alg: AlgArg) -> Self {
        match alg {
            AlgArg::Es256 => Algorithm::Es256,
            AlgArg::Rs256 => Algorithm::Rs256,
            AlgArg::EdDsa => Algorithm::EdDsa,
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
    /// Import a JWK Set with private members (EC P-256, RSA and OKP Ed25519 keys).
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
    let parts = AdminParts::open(config).await?;
    let admin = parts.admin();
    if let KeyCommand::Export = command {
        // Public keys only: no master key needed.
        let jwks = admin.public_jwks().await?;
        println!("{}", serde_json::to_string_pretty(&jwks)?);
        return Ok(());
    }
    let master = Arc::new(master_key(config, parts.store.as_ref(), Create::Refused).await?);
    let settings = config.settings();
    let manager = KeyManager::new(master, settings.keys, settings.longest_token_ttl());
    let keys = admin.keys(&manager);
    let result = match command {
        KeyCommand::List { json } => list(&keys, json).await,
        KeyCommand::Rotate { alg } => rotate(&keys, alg.into()).await,
        KeyCommand::Export => Ok(()),
        KeyCommand::Import { file, activate } => import(&keys, &file, activate).await,
        KeyCommand::Retire { kid } => retire(&keys, &kid).await,
    };
    report_audit_warnings(&admin);
    result
}

async fn list(keys: &KeyAdmin<'_, '_>, json: bool) -> Result<(), CliError> {
    let list = keys.list().await.map_err(key_error)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&list)?)?
        );
        return Ok(());
    }
    if list.is_empty() {
        println!("No keys yet: `valet serve` creates them on first start.");
        return Ok(());
    }
    let now = SystemClock.now();
    println!(
        "{:<44} {:<6} {:<12} {:<36} PUBLISHED UNTIL",
        "KID", "ALG", "STATE", "SIGNS FROM"
    );
    for k in &list {
        let from = k.activates_at.map_or("never".to_owned(), |t| {
            format!("{} ({})", timestamp(t), relative(t, now))
        });
        let until = k.publish_until.map_or("-".to_owned(), timestamp);
        println!(
            "{:<44} {:<6} {:<12} {:<36} {}",
            k.kid, k.alg, k.state, from, until
        );
    }
    Ok(())
}

async fn rotate(keys: &KeyAdmin<'_, '_>, alg: Algorithm) -> Result<(), CliError> {
    let rotated = keys.rotate(alg).await.map_err(key_error)?;
    let now = SystemClock.now();
    println!(
        "New {alg} key {}: published now, signs from {} ({}).",
        rotated.kid,
        timestamp(rotated.signs_from),
        relative(rotated.signs_from, now)
    );
    Ok(())
}

async fn import(keys: &KeyAdmin<'_, '_>, file: &Path, activate: bool) -> Result<(), CliError> {
    let text =
        std::fs::read_to_string(file).map_err(|error| format!("{}: {error}", file.display()))?;
    let kids = keys
        .import(&text, activate)
        .await
        .map_err(|error| match error {
            AdminError::Invalid(invalid) if invalid.field.name == "jwks" => {
                format!("{}: {}", file.display(), invalid.reason).into()
            }
            other => key_error(other),
        })?;
    for kid in kids {
        if activate {
            println!("Imported {kid}: signing now (running servers switch within 10 seconds).");
        } else {
            println!("Imported {kid}: published for verification, not signing.");
        }
    }
    Ok(())
}

async fn retire(keys: &KeyAdmin<'_, '_>, kid: &str) -> Result<(), CliError> {
    let until = keys.retire(kid).await.map_err(key_error)?;
    println!(
        "Key {kid} leaves the JWKS at {} ({}).",
        timestamp(until),
        relative(until, SystemClock.now())
    );
    Ok(())
}

/// Key errors in the CLI's words: a pending key with its time, a kid by name.
fn key_error(error: AdminError) -> CliError {
    match error {
        AdminError::KeyPending {
            alg,
            kid,
            activates_at,
        } => format!(
            "{alg} key {kid} is already pending: it signs from {} ({}). Nothing was written; rotate again once it signs (see `valet key list`)",
            timestamp(activates_at),
            relative(activates_at, SystemClock.now())
        )
        .into(),
        AdminError::Conflict(conflict) if conflict.field.name == "alg" => format!(
            "{}: {}, see `valet key list`",
            conflict.value.unwrap_or_default(),
            conflict.reason
        )
        .into(),
        AdminError::Conflict(conflict) if conflict.field.name == "kid" => format!(
            "key {}: {}",
            conflict.value.unwrap_or_default(),
            conflict.reason
        )
        .into(),
        other => flagged(other),
    }
}
