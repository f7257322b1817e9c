//! Registering and managing clients (used by `valet client …`).

use valet_jose::Algorithm;
use valet_protocol::scope::is_scope_token;
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use crate::secrets::{PlainSecret, generate_client_secret, random_id};
use crate::store::{Client, Store, StoreError};

/// What an operator asks for. Checked by [`register`] before anything is stored.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Empty means the default for the client's shape (see [`default_grant_types`]).
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<i64>,
    /// First-party app: no consent page.
    pub skip_consent: bool,
    /// Refresh rotation grace window in seconds (0 = strict).
    pub refresh_grace_seconds: i64,
    /// `RS256` (default) or `ES256`.
    pub id_token_signed_response_alg: Option<String>,
    /// May introspect any token, not only those issued to it or naming it in
    /// `aud` (a resource server that is registered under another id).
    pub introspect_any: bool,
}

/// The longest refresh grace window a client may ask for: long enough for a retry
/// over a flaky network, short enough that a stolen token is still caught.
pub const MAX_REFRESH_GRACE_SECONDS: i64 = 60;

/// A registration that cannot be stored, named by the option at fault.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("--name: {0}")]
    Name(&'static str),
    #[error(
        "--grant-type {0}: unknown grant type (known: authorization_code, client_credentials, refresh_token)"
    )]
    UnknownGrant(String),
    #[error(
        "--grant-type client_credentials: a public client has no secret and cannot use client_credentials"
    )]
    PublicClientCredentials,
    #[error("--grant-type authorization_code: needs at least one --redirect-uri")]
    MissingRedirectUri,
    #[error("--grant-type refresh_token: only together with authorization_code")]
    LoneRefreshToken,
    #[error(
        "--grant-type client_credentials: needs at least one --audience (the API its tokens are for)"
    )]
    MissingAudience,
    #[error("--public: a public client can only use authorization_code (add --redirect-uri)")]
    PublicWithoutRedirect,
    #[error("{option} {value}: {reason}")]
    InvalidUri {
        option: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error(
        "--scope {0}: not a valid scope token (RFC 6749 §3.3: printable ASCII, no space, quote or backslash)"
    )]
    InvalidScope(String),
    #[error("--audience {0:?}: must be non-empty printable ASCII without spaces")]
    InvalidAudience(String),
    #[error(
        "--access-token-ttl {value}: must be between 1 and the configured maximum of {max} seconds"
    )]
    InvalidTtl { value: i64, max: i64 },
    #[error("--refresh-grace-seconds {0}: must be between 0 and 60")]
    InvalidGrace(i64),
    #[error("--id-token-alg {0}: must be RS256 or ES256")]
    InvalidIdTokenAlg(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not generate a secret: {0}")]
    Random(String),
}

pub struct RegisteredClient {
    pub client: Client,
    /// The secret of a confidential client. It is not stored and cannot be shown again.
    pub secret: Option<PlainSecret>,
}

/// Grant types when none are given: a client with redirect URIs signs users in,
/// one without is a service.
pub fn default_grant_types(new: &NewClient) -> Vec<String> {
    let grants = if new.public || !new.redirect_uris.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        vec![GrantType::ClientCredentials]
    };
    grants.into_iter().map(|g| g.as_str().to_owned()).collect()
}

pub async fn register(
    store: &dyn Store,
    new: NewClient,
    max_ttl: i64,
    now: i64,
) -> Result<RegisteredClient, RegistrationError> {
    let grant_names = if new.grant_types.is_empty() {
        default_grant_types(&new)
    } else {
        dedup(&new.grant_types)
    };
    let (grant_types, id_token_alg) = validate(&new, &grant_names, max_ttl)?;
    // A confidential client may send its secret either way, as every client
    // could before the method was recorded (RFC 6749 §2.3.1).
    let (token_endpoint_auth_methods, secret, secret_hash) = if new.public {
        (vec![TokenEndpointAuthMethod::None], None, None)
    } else {
        let (secret, hash) =
            generate_client_secret().map_err(|e| RegistrationError::Random(e.to_string()))?;
        (
            vec![
                TokenEndpointAuthMethod::ClientSecretBasic,
                TokenEndpointAuthMethod::ClientSecretPost,
            ],
            Some(secret),
            Some(hash),
        )
    };
    let client = Client {
        client_id: random_id().map_err(|e| RegistrationError::Random(e.to_string()))?,
        name: new.name.trim().to_owned(),
        token_endpoint_auth_methods,
        secret_hash,
        redirect_uris: dedup(&new.redirect_uris),
        post_logout_redirect_uris: dedup(&new.post_logout_redirect_uris),
        grant_types,
        scopes: dedup(&new.scopes),
        audiences: dedup(&new.audiences),
        access_token_ttl: new.access_token_ttl,
        skip_consent: new.skip_consent,
        refresh_grace_seconds: new.refresh_grace_seconds,
        id_token_signed_response_alg: id_token_alg,
        created_at: now,
        updated_at: now,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        introspect_any: new.introspect_any,
    };
    store.insert_client(&client).await?;
    Ok(RegisteredClient { client, secret })
}

/// The longest overlap a rotation may give the old secret: long enough to roll a
/// fleet of services, short enough that a leaked secret does not linger.
pub const MAX_SECRET_OVERLAP_SECONDS: i64 = 30 * 86_400;

/// A secret rotation that cannot be done, named by the option at fault.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("--overlap {0}s: must be between 0 and 30 days")]
    InvalidOverlap(i64),
    #[error(transparent)]
    Registration(#[from] RegistrationError),
}

/// A new secret, and until when the replaced one still works (`None`: it
/// stopped working at once).
#[derive(Debug)]
pub struct RotatedSecret {
    pub secret: PlainSecret,
    pub previous_valid_until: Option<i64>,
}

/// Replaces a confidential client's secret. The new one works at once on every
/// node (a node whose cached record does not know it re-reads the client); with
/// `overlap_seconds` > 0 the old one keeps working until `now + overlap_seconds`,
/// so services can roll without downtime, and stops then everywhere. Only one
/// previous secret is kept: rotating again drops the oldest. Without overlap the
/// old one stops at once on this node and within the client cache lifetime on
/// others. `None` if there is no such confidential client.
pub async fn rotate_secret(
    store: &dyn Store,
    client_id: &str,
    overlap_seconds: i64,
    now: i64,
) -> Result<Option<RotatedSecret>, RotationError> {
    if !(0..=MAX_SECRET_OVERLAP_SECONDS).contains(&overlap_seconds) {
        return Err(RotationError::InvalidOverlap(overlap_seconds));
    }
    match store
        .get_client(client_id)
        .await
        .map_err(RegistrationError::from)?
    {
        Some(client) if !client.is_public() => {}
        _ => return Ok(None),
    }
    let (secret, hash) =
        generate_client_secret().map_err(|e| RegistrationError::Random(e.to_string()))?;
    let previous_valid_until = (overlap_seconds > 0).then(|| now.saturating_add(overlap_seconds));
    let rotated = store
        .set_client_secret(client_id, &hash, previous_valid_until, now)
        .await
        .map_err(RegistrationError::from)?;
    Ok(rotated.then_some(RotatedSecret {
        secret,
        previous_valid_until,
    }))
}

/// Deletes a client after revoking every grant it holds; the store's deletion
/// revokes every status list block reserved for it in the same transaction and
/// refuses new blocks from then on, so its refresh tokens die with it and its
/// access tokens — also those a node still caching the client mints afterwards —
/// turn inactive at introspection and at every resource server. Returns whether
/// it existed.
pub async fn delete(
    store: &dyn Store,
    client_id: &str,
    now: i64,
) -> Result<bool, RegistrationError> {
    store.revoke_grants_of_client(client_id, now).await?;
    Ok(store.delete_client(client_id, now).await?)
}

/// Checks a registration; returns its grant types and ID token algorithm, parsed.
fn validate(
    new: &NewClient,
    grant_types: &[String],
    max_ttl: i64,
) -> Result<(Vec<GrantType>, Option<Algorithm>), RegistrationError> {
    let name = new.name.trim();
    if name.is_empty() {
        return Err(RegistrationError::Name("must not be empty"));
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(RegistrationError::Name(
            "at most 200 characters, no control characters",
        ));
    }
    let mut grants = Vec::with_capacity(grant_types.len());
    for name in grant_types {
        grants.push(
            GrantType::parse(name).ok_or_else(|| RegistrationError::UnknownGrant(name.clone()))?,
        );
    }
    let has = |grant: GrantType| grants.contains(&grant);
    if new.public && has(GrantType::ClientCredentials) {
        return Err(RegistrationError::PublicClientCredentials);
    }
    if new.public && !has(GrantType::AuthorizationCode) {
        return Err(RegistrationError::PublicWithoutRedirect);
    }
    if has(GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
        return Err(RegistrationError::MissingRedirectUri);
    }
    if has(GrantType::RefreshToken) && !has(GrantType::AuthorizationCode) {
        return Err(RegistrationError::LoneRefreshToken);
    }
    if has(GrantType::ClientCredentials) && new.audiences.is_empty() {
        return Err(RegistrationError::MissingAudience);
    }
    for uri in &new.redirect_uris {
        check_redirect_uri("--redirect-uri", uri)?;
    }
    for uri in &new.post_logout_redirect_uris {
        check_redirect_uri("--post-logout-redirect-uri", uri)?;
    }
    if let Some(scope) = new.scopes.iter().find(|s| !is_scope_token(s)) {
        return Err(RegistrationError::InvalidScope(scope.clone()));
    }
    if let Some(aud) = new
        .audiences
        .iter()
        .find(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic()) || a.contains('#'))
    {
        return Err(RegistrationError::InvalidAudience(aud.clone()));
    }
    if !(0..=MAX_REFRESH_GRACE_SECONDS).contains(&new.refresh_grace_seconds) {
        return Err(RegistrationError::InvalidGrace(new.refresh_grace_seconds));
    }
    let id_token_alg = match &new.id_token_signed_response_alg {
        None => None,
        Some(alg) => Some(
            alg.parse::<Algorithm>()
                .map_err(|_| RegistrationError::InvalidIdTokenAlg(alg.clone()))?,
        ),
    };
    if let Some(ttl) = new.access_token_ttl
        && (ttl < 1 || ttl > max_ttl)
    {
        return Err(RegistrationError::InvalidTtl {
            value: ttl,
            max: max_ttl,
        });
    }
    Ok((grants, id_token_alg))
}

/// RFC 6749 §3.1.2 and RFC 9700 §2.1: an absolute URI without a fragment; `https`,
/// or `http` only on a loopback host (RFC 8252 §7.3), or a private-use scheme
/// with a dot in it for native apps (RFC 8252 §7.1).
fn check_redirect_uri(option: &'static str, uri: &str) -> Result<(), RegistrationError> {
    let invalid = |reason| RegistrationError::InvalidUri {
        option,
        value: uri.to_owned(),
        reason,
    };
    if uri.contains('#') {
        return Err(invalid("must not contain a fragment"));
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("must be printable ASCII without spaces"));
    }
    // Matching is exact (RFC 9700 §4.1.3, §2.1): a `*` would be taken literally,
    // never as a pattern, so refuse it rather than register something that
    // never matches what the operator meant.
    if uri.contains('*') {
        return Err(invalid(
            "must not contain a wildcard (*): redirect URIs are matched exactly; register each URI (loopback ports are matched for any port)",
        ));
    }
    // Browsers read `\` as `/`: `http://evil.example\@127.0.0.1/` goes to evil.example.
    if uri.contains('\\') {
        return Err(invalid("must not contain a backslash"));
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err(invalid("must be an absolute URI"));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(invalid("must be an absolute URI"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {
            if authority(rest).is_none_or(str::is_empty) {
                return Err(invalid("must name a host"));
            }
        }
        "http" => {
            let host = authority(rest).map(host_of);
            if !matches!(host, Some("127.0.0.1" | "[::1]" | "localhost")) {
                return Err(invalid(
                    "http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https",
                ));
            }
        }
        other if other.contains('.') => {}
        _ => {
            return Err(invalid(
                "use https, http on a loopback host, or a private-use scheme such as com.example.app:/callback",
            ));
        }
    }
    Ok(())
}

fn authority(rest: &str) -> Option<&str> {
    let rest = rest.strip_prefix("//")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    rest.get(..end)
}

fn host_of(authority: &str) -> &str {
    let without_user = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if without_user.starts_with('[') {
        return without_user
            .find(']')
            .and_then(|end| without_user.get(..=end))
            .unwrap_or(without_user);
    }
    without_user.split(':').next().unwrap_or(without_user)
}

fn dedup(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8000/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth",
        ] {
            assert!(check_redirect_uri("--redirect-uri", ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "http://127.0.0.1.evil.com/cb",
            "javascript:alert(1)",
            "/relative",
            "https:///nohost",
            "https://a b",
            "http://evil.example\\@127.0.0.1/cb",
            "https://*.example.com/cb",
            "https://app.example.com/*",
        ] {
            assert!(check_redirect_uri("--redirect-uri", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shapes_are_checked() {
        let service = NewClient {
            name: "svc".into(),
            audiences: vec!["https://api.example.com".into()],
            ..NewClient::default()
        };
        let grants = default_grant_types(&service);
        assert_eq!(grants, ["client_credentials"]);
        assert!(validate(&service, &grants, 3600).is_ok());

        let no_audience = NewClient {
            audiences: vec![],
            ..service.clone()
        };
        assert!(matches!(
            validate(&no_audience, &grants, 3600),
            Err(RegistrationError::MissingAudience)
        ));
        let public_cc = NewClient {
            public: true,
            ..service.clone()
        };
        assert!(matches!(
            validate(&public_cc, &grants, 3600),
            Err(RegistrationError::PublicClientCredentials)
        ));
        let long_ttl = NewClient {
            access_token_ttl: Some(7200),
            ..service
        };
        assert!(matches!(
            validate(&long_ttl, &grants, 3600),
            Err(RegistrationError::InvalidTtl { .. })
        ));
    }
}
