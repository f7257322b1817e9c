//! Opening the configured store and the master key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use valet_core::keys::{KeyError, MasterKeyCheck, check_master_key, store_has_no_sealed_keys};
use valet_core::store::Store;
use valet_jose::MasterKey;
use valet_store_postgres::PostgresStore;
use valet_store_sqlite::SqliteStore;

use crate::config::Config;

pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a command may create the store it is pointed at: only `valet serve`
/// and `valet init` may; every other command works on an existing store, so that
/// one run in the wrong directory fails instead of working on a new, empty one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Allowed,
    Refused,
}

/// Opens the configured store, which must exist (see [`Create`]).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, CliError> {
    open_store_with(config, Create::Refused).await
}

/// Opens the configured store, creating it if it is missing (`serve`, `init`).
pub async fn open_or_create_store(config: &Config) -> Result<Arc<dyn Store>, CliError> {
    open_store_with(config, Create::Allowed).await
}

async fn open_store_with(config: &Config, create: Create) -> Result<Arc<dyn Store>, CliError> {
    let url = config.database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let shown = redact_url(&url);
        let store = match create {
            Create::Allowed => Some(PostgresStore::connect(&url).await),
            Create::Refused => PostgresStore::connect_existing(&url).await.transpose(),
        };
        return match store {
            Some(Ok(store)) => Ok(Arc::new(store)),
            Some(Err(error)) => {
                Err(format!("database_url: cannot open PostgreSQL at {shown}: {error}").into())
            }
            None => Err(format!(
                "no Valet store in the PostgreSQL database at {shown} (database_url): create it with `valet init` (or the first `valet serve`), or point --database-url at the right database"
            )
            .into()),
        };
    }
    let path = Path::new(
        url.strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(&url),
    );
    let opened = match create {
        Create::Allowed => {
            if let Some(parent) = path.parent() {
                ensure_private_dir(parent)?;
            }
            SqliteStore::open(path).await.map(Some)
        }
        Create::Refused => SqliteStore::open_existing(path).await,
    };
    match opened {
        Ok(Some(store)) => Ok(Arc::new(store)),
        Ok(None) => {
            let from = match &config.database_url {
                Some(_) => "database_url".to_owned(),
                None => format!("data_dir {}", config.data_dir.display()),
            };
            Err(format!(
                "no Valet store at {} ({from}): create one with `valet init` (or the first `valet serve`), or point --data-dir (or --database-url) at an existing store",
                path.display(),
            )
            .into())
        }
        Err(error) => Err(format!(
            "database_url: cannot open SQLite database {}: {error}",
            path.display()
        )
        .into()),
    }
}

/// A database URL fit to show: the password, if any (in the user info or a
/// `password=` query parameter), replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((base, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            (base, format!("?{}", query.join("&")))
        }
        None => (url, String::new()),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("{url}{query}");
    };
    let authority_end = rest.find(['/', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority
        .rsplit_once('@')
        .and_then(|(userinfo, host)| Some((userinfo.split_once(':')?.0, host)))
    {
        Some((user, host)) => format!("{scheme}://{user}:***@{host}{tail}{query}"),
        None => format!("{url}{query}"),
    }
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

/// Where a master key came from, for messages.
#[derive(Debug, Clone)]
enum MasterKeySource {
    Env,
    File(PathBuf),
}

impl std::fmt::Display for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env => f.write_str("VALET_MASTER_KEY"),
            Self::File(path) => write!(f, "the master key file {}", path.display()),
        }
    }
}

/// The master key, verified against `store` before it is returned: from
/// `VALET_MASTER_KEY` if set (required when several nodes share a database), else
/// from `master.key` in the data directory. A new key is generated (into
/// `master.key`, mode 0600) only when `create` allows it and the store holds
/// nothing sealed yet; otherwise a missing key is an error, so that no key is ever
/// sealed with a master key the rest of the deployment does not have.
pub async fn master_key(
    config: &Config,
    store: &dyn Store,
    create: Create,
) -> Result<MasterKey, CliError> {
    let path = config.data_dir.join("master.key");
    let (key, source) = match read_master_key(&path)? {
        Some(found) => found,
        None => {
            let empty = store_has_no_sealed_keys(store).await?;
            if create == Create::Allowed && empty {
                (
                    generate_master_key(config, &path)?,
                    MasterKeySource::File(path.clone()),
                )
            } else if empty {
                return Err(format!(
                    "no master key: VALET_MASTER_KEY is not set and {} does not exist. Run `valet init` (or `valet serve`) once to create one, set VALET_MASTER_KEY, or point --data-dir at the directory that holds master.key",
                    path.display()
                )
                .into());
            } else {
                return Err(format!(
                    "no master key: VALET_MASTER_KEY is not set and {} does not exist, but the store at {} holds signing keys sealed with a master key. Set VALET_MASTER_KEY to that key, restore master.key from your backup, or point --data-dir at the directory that holds it; a new key would not open them, so none is created",
                    path.display(),
                    redact_url(&config.database_url())
                )
                .into());
            }
        }
    };
    match check_master_key(store, &key).await {
        Ok(MasterKeyCheck::Adopted) => {
            tracing::info!(source = %source, "recorded a master key check value for this store");
            Ok(key)
        }
        Ok(_) => Ok(key),
        Err(error @ (KeyError::MasterKeyMismatch | KeyError::WrongMasterKey { .. })) => {
            Err(format!(
                "{source} is not the master key of the store at {}: {error}. Nothing was changed. Use the key the store was created with (VALET_MASTER_KEY, or master.key in the data directory of the node that created it); without it the signing keys cannot be opened",
                redact_url(&config.database_url())
            )
            .into())
        }
        Err(error) => Err(format!("cannot check the master key: {error}").into()),
    }
}

fn read_master_key(path: &Path) -> Result<Option<(MasterKey, MasterKeySource)>, CliError> {
    if let Ok(value) = std::env::var("VALET_MASTER_KEY") {
        let key = MasterKey::from_base64url(&value).map_err(|error| {
            format!("VALET_MASTER_KEY: {error} (expected 32 random bytes, base64url-encoded)")
        })?;
        return Ok(Some((key, MasterKeySource::Env)));
    }
    match fs::read_to_string(path) {
        Ok(text) => {
            let mode = fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "master.key is readable by other users; chmod 600 it");
            }
            let key = MasterKey::from_base64url(text.trim())
                .map_err(|error| format!("{}: {error}", path.display()))?;
            Ok(Some((key, MasterKeySource::File(path.to_owned()))))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display()).into()),
    }
}

fn generate_master_key(config: &Config, path: &Path) -> Result<MasterKey, CliError> {
    ensure_private_dir(&config.data_dir)?;
    let key = MasterKey::generate()?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    file.write_all(key.to_base64url().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new master key; back it up: without it the signing keys cannot be opened");
    eprintln!(
        "Generated a new master key in {}. Back it up: without it the signing keys cannot be opened.",
        path.display()
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://valet:s3cret@db.example:5432/valet?sslmode=require"),
            "postgres://valet:***@db.example:5432/valet?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://valet@db.example/valet"),
            "postgres://valet@db.example/valet"
        );
        assert_eq!(
            redact_url("postgres://db.example/x?sslmode=require&password=a@b"),
            "postgres://db.example/x?sslmode=require&password=***"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
