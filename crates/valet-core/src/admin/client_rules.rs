//! The rules a client's settings follow, at registration and at update: what
//! a registration ([`NewClient`]) may ask for, and each field's checks, with
//! messages that name the field. [`super::clients`] applies them.

use valet_jose::Algorithm;
use valet_protocol::scope::is_scope_token;
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use super::client_encryption_rules::EncryptionNames;
use super::{AdminError, Field};
use crate::client_auth::keys::{check_jwks, check_jwks_uri};
use crate::cors::parse_allowed_origin;
use crate::token::id_token::ID_TOKEN_ALGORITHMS;

/// The longest refresh grace window a client may ask for: long enough for a retry
/// over a flaky network, short enough that a stolen token is still caught.
pub const MAX_REFRESH_GRACE_SECONDS: i64 = 60;

/// The longest overlap a rotation may give the old secret: long enough to roll a
/// fleet of services, short enough that a leaked secret does not linger.
pub const MAX_SECRET_OVERLAP_SECONDS: i64 = 30 * 86_400;

/// A registration. Checked before anything is stored.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins that may call the token, UserInfo and revocation
    /// endpoints (CORS), besides a public client's redirect URI origins.
    pub allowed_origins: Vec<String>,
    /// Empty means the default for the client's shape (see [`default_grant_types`]).
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<i64>,
    /// First-party app: no consent page.
    pub skip_consent: bool,
    /// Users must sign in with a second factor (enrolling one if they have none).
    pub require_mfa: bool,
    /// Refresh rotation grace window in seconds (0 = strict).
    pub refresh_grace_seconds: i64,
    /// `RS256` (default) or `ES256`.
    pub id_token_signed_response_alg: Option<String>,
    /// May introspect any token, not only those issued to it or naming it in
    /// `aud` (a resource server that is registered under another id).
    pub introspect_any: bool,
    /// Its authorization requests must be pushed to `/par` first (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: bool,
    /// `private_key_jwt` for a confidential client that authenticates with a
    /// signed assertion instead of a secret (it then gets no secret and needs
    /// `jwks` or `jwks_uri`); `None` for the default: a secret (confidential) or
    /// `none` (public). `client_secret_jwt` for a confidential client that MACs
    /// assertions with its (Valet-generated) secret: the secret is then also
    /// stored sealed under the master key.
    pub token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JWK Set document (JSON text).
    pub jwks: Option<String>,
    /// Where the client publishes its JWK Set.
    pub jwks_uri: Option<String>,
    /// Audiences it may exchange tokens into (RFC 8693); needs the
    /// token-exchange grant type.
    pub token_exchange_audiences: Vec<String>,
    /// `id_token_encrypted_response_alg`/`_enc` (OIDC Registration §2).
    pub id_token_encryption: Option<EncryptionNames>,
    /// `userinfo_signed_response_alg`: `RS256` or `ES256`.
    pub userinfo_signed_response_alg: Option<String>,
    /// `userinfo_encrypted_response_alg`/`_enc`.
    pub userinfo_encryption: Option<EncryptionNames>,
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

/// Each origin checked and serialized as browsers send it (RFC 6454 §6.2),
/// without repeats.
pub(super) fn check_allowed_origins(origins: &[String]) -> Result<Vec<String>, AdminError> {
    let mut checked = Vec::with_capacity(origins.len());
    for (index, origin) in origins.iter().enumerate() {
        let serialized = parse_allowed_origin(origin).map_err(|reason| {
            AdminError::invalid(
                Field::at("allowed_origins", index),
                Some(origin.clone()),
                reason,
            )
        })?;
        checked.push(serialized);
    }
    Ok(dedup(&checked))
}

/// The rules every client's settings follow, at registration and at update;
/// returns the grant types and the ID token algorithm, parsed.
pub(super) fn validate(
    new: &NewClient,
    grant_types: &[String],
    max_ttl: i64,
) -> Result<(Vec<GrantType>, Option<Algorithm>), AdminError> {
    check_name(&new.name)?;
    let grants = check_grant_types(new, grant_types)?;
    let has = |grant: GrantType| grants.contains(&grant);
    if has(GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
        return Err(AdminError::invalid(
            Field::new("redirect_uris"),
            None,
            "authorization_code needs at least one redirect URI",
        ));
    }
    if has(GrantType::ClientCredentials) && new.audiences.is_empty() {
        return Err(AdminError::invalid(
            Field::new("audiences"),
            None,
            "client_credentials needs at least one audience (the API its tokens are for)",
        ));
    }
    for (index, uri) in new.redirect_uris.iter().enumerate() {
        check_redirect_uri(Field::at("redirect_uris", index), uri)?;
    }
    for (index, uri) in new.post_logout_redirect_uris.iter().enumerate() {
        check_redirect_uri(Field::at("post_logout_redirect_uris", index), uri)?;
    }
    if let Some((index, scope)) = new
        .scopes
        .iter()
        .enumerate()
        .find(|(_, s)| !is_scope_token(s))
    {
        return Err(AdminError::invalid(
            Field::at("scopes", index),
            Some(scope.clone()),
            "not a valid scope token (RFC 6749 §3.3: printable ASCII, no space, quote or backslash)",
        ));
    }
    if let Some((index, aud)) =
        new.audiences.iter().enumerate().find(|(_, a)| {
            a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic()) || a.contains('#')
        })
    {
        return Err(AdminError::invalid(
            Field::at("audiences", index),
            Some(aud.clone()),
            "must be non-empty printable ASCII without spaces",
        ));
    }
    if let Some((index, aud)) = new
        .token_exchange_audiences
        .iter()
        .enumerate()
        .find(|(_, a)| a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic()) || a.contains('#'))
    {
        return Err(AdminError::invalid(
            Field::at("token_exchange_audiences", index),
            Some(aud.clone()),
            "must be non-empty printable ASCII without spaces or fragment",
        ));
    }
    check_keys(new)?;
    let id_token_alg = check_numbers(new, max_ttl)?;
    Ok((grants, id_token_alg))
}

/// RFC 7591 §2: `jwks` and `jwks_uri` are not both given; each is checked.
pub(super) fn check_keys(new: &NewClient) -> Result<(), AdminError> {
    if new.jwks.is_some() && new.jwks_uri.is_some() {
        return Err(AdminError::invalid(
            Field::new("jwks_uri"),
            None,
            "give either jwks or jwks_uri, not both (RFC 7591 §2)",
        ));
    }
    if let Some(jwks) = &new.jwks {
        check_jwks(jwks).map_err(|reason| {
            AdminError::invalid(
                Field::new("jwks"),
                None,
                format!("not a usable JWK Set: {reason}"),
            )
        })?;
    }
    if let Some(uri) = &new.jwks_uri {
        check_jwks_uri(uri).map_err(|reason| {
            AdminError::invalid(Field::new("jwks_uri"), Some(uri.clone()), reason)
        })?;
    }
    Ok(())
}

/// The client's assertion method (`private_key_jwt` or `client_secret_jwt`),
/// if it asked for one, checked against its type and keys; `None` for the
/// default (a secret, or none for a public client).
pub(super) fn check_auth_method(
    new: &NewClient,
) -> Result<Option<TokenEndpointAuthMethod>, AdminError> {
    let field = || Field::new("token_endpoint_auth_method");
    match new.token_endpoint_auth_method.as_deref() {
        None => Ok(None),
        Some(name) => match TokenEndpointAuthMethod::parse(name) {
            Some(
                TokenEndpointAuthMethod::PrivateKeyJwt | TokenEndpointAuthMethod::ClientSecretJwt,
            ) if new.public => Err(AdminError::invalid(
                field(),
                Some(name.to_owned()),
                "a public client authenticates with none",
            )),
            Some(TokenEndpointAuthMethod::PrivateKeyJwt)
                if new.jwks.is_none() && new.jwks_uri.is_none() =>
            {
                Err(AdminError::invalid(
                    field(),
                    Some(name.to_owned()),
                    "private_key_jwt needs the client's public keys: jwks or jwks_uri",
                ))
            }
            Some(
                method @ (TokenEndpointAuthMethod::PrivateKeyJwt
                | TokenEndpointAuthMethod::ClientSecretJwt),
            ) => Ok(Some(method)),
            Some(
                TokenEndpointAuthMethod::ClientSecretBasic
                | TokenEndpointAuthMethod::ClientSecretPost,
            ) if !new.public => Ok(None),
            Some(TokenEndpointAuthMethod::None) if new.public => Ok(None),
            _ => Err(AdminError::invalid(
                field(),
                Some(name.to_owned()),
                "must be private_key_jwt or client_secret_jwt, or left out for the default (a secret, or none for a public client)",
            )),
        },
    }
}

pub(super) fn check_name(name: &str) -> Result<(), AdminError> {
    let name = name.trim();
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.chars().count() > 200 || name.chars().any(char::is_control) {
        "at most 200 characters, no control characters"
    } else {
        return Ok(());
    };
    Err(AdminError::invalid(Field::new("name"), None, reason))
}

/// Each grant type known, and the combination one a client of this type may have.
pub(super) fn check_grant_types(
    new: &NewClient,
    grant_types: &[String],
) -> Result<Vec<GrantType>, AdminError> {
    let mut grants = Vec::with_capacity(grant_types.len());
    for (index, name) in grant_types.iter().enumerate() {
        // The short name stands for RFC 8693's URN.
        let grant = match name.as_str() {
            "token_exchange" | "token-exchange" => Some(GrantType::TokenExchange),
            name => GrantType::parse(name),
        };
        grants.push(grant.ok_or_else(|| {
            AdminError::invalid(
                Field::at("grant_types", index),
                Some(name.clone()),
                "unknown grant type (known: authorization_code, client_credentials, refresh_token, device_code, token_exchange)",
            )
        })?);
    }
    let has = |grant: GrantType| grants.contains(&grant);
    let problem = if new.public && has(GrantType::TokenExchange) {
        Some((
            Some(GrantType::TokenExchange.as_str()),
            "a public client cannot authenticate and cannot exchange tokens",
        ))
    } else if has(GrantType::TokenExchange) && new.token_exchange_audiences.is_empty() {
        Some((
            Some(GrantType::TokenExchange.as_str()),
            "token exchange needs at least one token exchange audience (the APIs it may exchange tokens for)",
        ))
    } else if !has(GrantType::TokenExchange) && !new.token_exchange_audiences.is_empty() {
        Some((
            None,
            "token exchange audiences need the token_exchange grant type",
        ))
    } else if new.public && has(GrantType::ClientCredentials) {
        Some((
            Some("client_credentials"),
            "a public client has no secret and cannot use client_credentials",
        ))
    } else if new.public && !has(GrantType::AuthorizationCode) && !has(GrantType::DeviceCode) {
        Some((
            None,
            "a public client can only use authorization_code (with redirect URIs) or device_code",
        ))
    } else if has(GrantType::RefreshToken)
        && !has(GrantType::AuthorizationCode)
        && !has(GrantType::DeviceCode)
    {
        Some((
            Some("refresh_token"),
            "only together with authorization_code or device_code",
        ))
    } else {
        None
    };
    match problem {
        Some((value, reason)) => Err(AdminError::invalid(
            Field::new("grant_types"),
            value.map(str::to_owned),
            reason,
        )),
        None => Ok(grants),
    }
}

/// The numbers and the ID token algorithm; returns the algorithm, parsed.
pub(super) fn check_numbers(
    new: &NewClient,
    max_ttl: i64,
) -> Result<Option<Algorithm>, AdminError> {
    if !(0..=MAX_REFRESH_GRACE_SECONDS).contains(&new.refresh_grace_seconds) {
        return Err(AdminError::invalid(
            Field::new("refresh_grace_seconds"),
            Some(new.refresh_grace_seconds.to_string()),
            "must be between 0 and 60",
        ));
    }
    let id_token_alg = match &new.id_token_signed_response_alg {
        None => None,
        // EdDSA is for access tokens only: relying parties need not know it (OIDC Core
        // §15.1 makes only RS256 mandatory) and discovery does not offer it for ID tokens.
        Some(alg) => Some(
            alg.parse::<Algorithm>()
                .ok()
                .filter(|alg| ID_TOKEN_ALGORITHMS.contains(alg))
                .ok_or_else(|| {
                    AdminError::invalid(
                        Field::new("id_token_signed_response_alg"),
                        Some(alg.clone()),
                        "must be RS256 or ES256",
                    )
                })?,
        ),
    };
    if let Some(ttl) = new.access_token_ttl
        && (ttl < 1 || ttl > max_ttl)
    {
        return Err(AdminError::invalid(
            Field::new("access_token_ttl"),
            Some(ttl.to_string()),
            format!(
                "must be between 1 and the configured maximum of {max_ttl} seconds (access_token_max_ttl)"
            ),
        ));
    }
    Ok(id_token_alg)
}

/// RFC 6749 §3.1.2 and RFC 9700 §2.1: an absolute URI without a fragment; `https`,
/// or `http` only on a loopback host (RFC 8252 §7.3), or a private-use scheme
/// with a dot in it for native apps (RFC 8252 §7.1).
pub(super) fn check_redirect_uri(field: Field, uri: &str) -> Result<(), AdminError> {
    let invalid = |reason: &'static str| AdminError::invalid(field, Some(uri.to_owned()), reason);
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

pub(super) fn authority(rest: &str) -> Option<&str> {
    let rest = rest.strip_prefix("//")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    rest.get(..end)
}

pub(super) fn host_of(authority: &str) -> &str {
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

pub(super) fn dedup(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn field_of<T: std::fmt::Debug>(result: Result<T, AdminError>) -> String {
        match result {
            Err(AdminError::Invalid(error)) => error.field.to_string(),
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn redirect_uri_rules() {
        let field = Field::at("redirect_uris", 0);
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8000/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth",
        ] {
            assert!(check_redirect_uri(field, ok).is_ok(), "{ok}");
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
            assert!(check_redirect_uri(field, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shapes_are_checked_and_errors_name_fields() {
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
        assert_eq!(field_of(validate(&no_audience, &grants, 3600)), "audiences");
        let public_cc = NewClient {
            public: true,
            ..service.clone()
        };
        let Err(AdminError::Invalid(error)) = validate(&public_cc, &grants, 3600) else {
            panic!("public client_credentials accepted");
        };
        assert_eq!(
            error.to_string(),
            "grant_types: a public client has no secret and cannot use client_credentials"
        );
        // RFC 8628: a device needs no redirect URI, public or not; refresh
        // tokens go with it. Typed as `device_code`, stored as its URN.
        let device = NewClient {
            public: true,
            audiences: vec![],
            ..service.clone()
        };
        let device_grants = ["device_code".to_owned(), "refresh_token".to_owned()];
        assert!(validate(&device, &device_grants, 3600).is_ok());
        let Err(error) = validate(&device, &["refresh_token".to_owned()], 3600) else {
            panic!("refresh_token alone accepted");
        };
        assert!(error.to_string().contains("device_code"), "{error}");
        assert_eq!(
            GrantType::parse("device_code").map(GrantType::as_str),
            Some("urn:ietf:params:oauth:grant-type:device_code")
        );
        let long_ttl = NewClient {
            access_token_ttl: Some(7200),
            ..service.clone()
        };
        let Err(error) = validate(&long_ttl, &grants, 3600) else {
            panic!("a TTL over the maximum accepted");
        };
        assert_eq!(
            error.to_string(),
            "access_token_ttl: must be between 1 and the configured maximum of 3600 seconds (access_token_max_ttl)"
        );
        let second_uri_bad = NewClient {
            redirect_uris: vec![
                "https://app.example.com/cb".into(),
                "http://evil.example/cb".into(),
            ],
            ..service.clone()
        };
        let Err(error) = validate(&second_uri_bad, &grants, 3600) else {
            panic!("an http redirect URI accepted");
        };
        assert!(
            error
                .to_string()
                .starts_with("redirect_uris[1]: http is allowed only"),
            "{error}"
        );
        let unknown = vec!["client_credentials".into(), "password".into()];
        assert_eq!(
            field_of(validate(&service, &unknown, 3600)),
            "grant_types[1]"
        );
        let bad_audience = NewClient {
            audiences: vec!["https://api.example.com".into(), "a b".into()],
            ..service
        };
        assert_eq!(
            field_of(validate(&bad_audience, &grants, 3600)),
            "audiences[1]"
        );
    }
}
