//! The CLI's side of the admin service: one [`Admin`] per command run, acting as
//! `via: cli`, and its errors told in the CLI's own words (flags, not fields).

use std::sync::Arc;

use valet_core::SystemClock;
use valet_core::admin::{Actor, Admin, AdminError, FieldError};
use valet_core::store::Store;
use valet_core::users::{HashCost, PasswordHasher};

use crate::config::Config;
use crate::storage::{CliError, open_store};

/// What an [`Admin`] borrows, opened for one command.
pub struct AdminParts {
    pub store: Arc<dyn Store>,
    clock: SystemClock,
    hasher: PasswordHasher,
    access_token_max_ttl: i64,
}

impl AdminParts {
    /// Opens the configured store, which must exist.
    pub async fn open(config: &Config) -> Result<Self, CliError> {
        Ok(Self::with_store(config, open_store(config).await?))
    }

    pub fn with_store(config: &Config, store: Arc<dyn Store>) -> Self {
        Self {
            store,
            clock: SystemClock,
            // One permit: the CLI hashes one password at a time. In benchmark
            // mode its users get the server's cheap hashes too.
            hasher: PasswordHasher::with_cost(
                1,
                valet_core::users::DEFAULT_MAX_WAITING,
                if config.insecure_benchmark_password_hash {
                    HashCost::InsecureBenchmark
                } else {
                    HashCost::Standard
                },
            ),
            access_token_max_ttl: config.access_token_max_ttl,
        }
    }

    pub fn admin(&self) -> Admin<'_> {
        Admin::new(
            self.store.as_ref(),
            &self.clock,
            &self.hasher,
            self.access_token_max_ttl,
            Actor::cli(),
        )
    }
}

/// Reports on standard error the changes whose audit record could not be
/// stored (the changes themselves were made).
pub fn report_audit_warnings(admin: &Admin<'_>) {
    for warning in admin.take_warnings() {
        eprintln!("warning: {warning}");
    }
}

/// How a field's value is shown after its flag.
#[derive(Clone, Copy)]
enum Shown {
    Plain,
    /// Quoted and escaped when invalid: it may hold spaces or control characters.
    Quoted,
    /// A number of seconds, shown with its unit.
    Seconds,
}

/// The flag that sets each field of the admin requests.
const FLAGS: [(&str, &str, Shown); 31] = [
    ("name", "--name", Shown::Plain),
    ("public", "--public", Shown::Plain),
    ("redirect_uris", "--redirect-uri", Shown::Plain),
    (
        "post_logout_redirect_uris",
        "--post-logout-redirect-uri",
        Shown::Plain,
    ),
    ("allowed_origins", "--allowed-origin", Shown::Plain),
    ("grant_types", "--grant-type", Shown::Plain),
    ("scopes", "--scope", Shown::Plain),
    ("audiences", "--audience", Shown::Quoted),
    ("access_token_ttl", "--access-token-ttl", Shown::Plain),
    (
        "refresh_grace_seconds",
        "--refresh-grace-seconds",
        Shown::Plain,
    ),
    (
        "id_token_signed_response_alg",
        "--id-token-alg",
        Shown::Plain,
    ),
    ("skip_consent", "--skip-consent", Shown::Plain),
    ("introspect_any", "--introspect-any", Shown::Plain),
    (
        "dpop_bound_access_tokens",
        "--dpop-bound-access-tokens",
        Shown::Plain,
    ),
    ("token_endpoint_auth_method", "--auth-method", Shown::Plain),
    ("jwks", "--jwks-file", Shown::Plain),
    ("jwks_uri", "--jwks-uri", Shown::Plain),
    (
        "token_exchange_audiences",
        "--token-exchange-audience",
        Shown::Quoted,
    ),
    (
        "id_token_encrypted_response_alg",
        "--id-token-encryption",
        Shown::Plain,
    ),
    (
        "id_token_encrypted_response_enc",
        "--id-token-encryption",
        Shown::Plain,
    ),
    (
        "userinfo_signed_response_alg",
        "--userinfo-signing",
        Shown::Plain,
    ),
    (
        "userinfo_encrypted_response_alg",
        "--userinfo-encryption",
        Shown::Plain,
    ),
    (
        "userinfo_encrypted_response_enc",
        "--userinfo-encryption",
        Shown::Plain,
    ),
    ("overlap_seconds", "--overlap", Shown::Seconds),
    ("username", "--username", Shown::Quoted),
    ("email", "--email", Shown::Quoted),
    ("email_verified", "--email-verified", Shown::Plain),
    ("given_name", "--given-name", Shown::Plain),
    ("family_name", "--family-name", Shown::Plain),
    ("password", "--password-stdin", Shown::Plain),
    ("alg", "--alg", Shown::Plain),
];

/// An admin error as the CLI says it: a field named by the flag that sets it
/// (`--redirect-uri http://evil.example/cb: …`), anything else as the service
/// says it.
pub fn flagged(error: AdminError) -> CliError {
    match &error {
        AdminError::Invalid(field) => render(field, true).into(),
        AdminError::Conflict(field) => render(field, false).into(),
        _ => error.into(),
    }
}

fn render(error: &FieldError, invalid: bool) -> String {
    let Some((_, flag, shown)) = FLAGS
        .iter()
        .find(|(field, _, _)| *field == error.field.name)
    else {
        return error.to_string();
    };
    let reason = &error.reason;
    match (&error.value, shown) {
        (None, _) => format!("{flag}: {reason}"),
        (Some(value), Shown::Quoted) if invalid => format!("{flag} {value:?}: {reason}"),
        (Some(value), Shown::Seconds) => format!("{flag} {value}s: {reason}"),
        (Some(value), _) => format!("{flag} {value}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use valet_core::admin::Field;

    use super::*;

    fn field(name: &'static str, value: Option<&str>, reason: &'static str) -> FieldError {
        FieldError {
            field: Field::at(name, 1),
            value: value.map(str::to_owned),
            reason: reason.into(),
        }
    }

    #[test]
    fn fields_are_told_by_their_flags() {
        let uri = field("redirect_uris", Some("http://evil.example/cb"), "use https");
        assert_eq!(
            flagged(AdminError::Invalid(uri)).to_string(),
            "--redirect-uri http://evil.example/cb: use https"
        );
        let user = field("username", Some("al ice"), "bad");
        assert_eq!(render(&user, true), "--username \"al ice\": bad");
        assert_eq!(render(&user, false), "--username al ice: bad");
        let overlap = field("overlap_seconds", Some("2678400"), "too long");
        assert_eq!(render(&overlap, true), "--overlap 2678400s: too long");
        let jwks = field("jwks", None, "not JSON");
        assert_eq!(render(&jwks, true), "--jwks-file: not JSON");
        // A field no flag sets (a registration's metadata) is named as it is.
        let unknown = field("software_statement", None, "not supported");
        assert_eq!(
            render(&unknown, true),
            "software_statement[1]: not supported"
        );
    }
}
