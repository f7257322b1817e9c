//! Opening the configured store and the master key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use valet_core::audit::AuditEvent;
use valet_core::store::Store;
use valet_jose::MasterKey;
use valet_store_postgres::PostgresStore;
use valet_store_sqlite::SqliteStore;

use crate::config::Config;

pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Records an administrative change made from the command line in the audit
/// trail (and the log, if one is set up). The change is made already, so failing
/// to record it is reported, not fatal.
pub async fn audit(store: &dyn Store, event: AuditEvent) {
    let event = event.detail("via", "cli");
    event.log();
    if let Err(error) = store
        .append_audit_events(std::slice::from_ref(&event))
        .await
    {
        eprintln!("warning: the audit record of this change could not be stored: {error}");
    }
}

pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, CliError> {
    let url = config.database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PostgresStore::connect(&url)
            .await
            .map_err(|error| format!("database_url: cannot open PostgreSQL: {error}"))?;
        return Ok(Arc::new(store));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(&url);
    if let Some(parent) = Path::new(path).parent() {
        ensure_private_dir(parent)?;
    }
    let store = SqliteStore::open(Path::new(path))
        .await
        .map_err(|error| format!("database_url: cannot open SQLite database {path}: {error}"))?;
    Ok(Arc::new(store))
}

/// Creates the directory with mode 0700 if it is missing.
pub fn ensure_private_dir(dir: &Path) -> Result<(), CliError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| format!("data_dir: cannot create {}: {error}", dir.display()))?;
    Ok(())
}

/// `VALET_MASTER_KEY` if set (required when several nodes share a database),
/// else `master.key` in the data directory, generated on first use with mode 0600.
pub fn master_key(config: &Config) -> Result<MasterKey, CliError> {
    if let Ok(value) = std::env::var("VALET_MASTER_KEY") {
        return MasterKey::from_base64url(&value).map_err(|error| {
            format!("VALET_MASTER_KEY: {error} (expected 32 random bytes, base64url-encoded)")
                .into()
        });
    }
    let path = config.data_dir.join("master.key");
    match fs::read_to_string(&path) {
        Ok(text) => {
            let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "master.key is readable by other users; chmod 600 it");
            }
            MasterKey::from_base64url(text.trim())
                .map_err(|error| format!("{}: {error}", path.display()).into())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            ensure_private_dir(&config.data_dir)?;
            let key = MasterKey::generate()?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
            file.write_all(key.to_base64url().as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "generated a new master key");
            Ok(key)
        }
        Err(error) => Err(format!("cannot read {}: {error}", path.display()).into()),
    }
}
