//! JWT access tokens per RFC 9068.

use serde::{Serialize, Serializer};
use valet_protocol::Scope;

use crate::config::Settings;
use crate::error::OAuthError;
use crate::keys::Keyring;
use crate::secrets::token_id;
use crate::store::Client;
use crate::token::status_claim::StatusClaim;

/// RFC 9068 §2.1: the `typ` header of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// RFC 9068 §2.2 claims. `aud` is a string for one audience and an array for more.
#[derive(Debug, Serialize)]
pub struct AccessTokenClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    #[serde(serialize_with = "audience")]
    pub aud: &'a [String],
    pub exp: i64,
    pub iat: i64,
    pub jti: &'a str,
    pub client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
    /// draft-ietf-oauth-status-list §6.1: where resource servers learn of revocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a StatusClaim>,
    /// RFC 9449 §6.1: the DPoP key the token is bound to (`{"jkt": …}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation<'a>>,
    /// RFC 8693 §4.1: the party acting for `sub` (token exchange), with the
    /// earlier actors nested inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<&'a serde_json::Value>,
}

/// RFC 7800 §3.1 `cnf`, with the RFC 9449 §6.1 member `jkt`.
#[derive(Debug, Serialize)]
pub struct Confirmation<'a> {
    pub jkt: &'a str,
}

/// RFC 9449 §5: the `token_type` of a token bound to `dpop_jkt` is `DPoP`.
pub fn token_type(dpop_jkt: Option<&str>) -> &'static str {
    if dpop_jkt.is_some() { "DPoP" } else { "Bearer" }
}

fn audience<S: Serializer>(aud: &&[String], serializer: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => serializer.serialize_str(one),
        many => many.serialize(serializer),
    }
}

pub struct MintedAccessToken {
    pub token: String,
    pub expires_in: i64,
    pub jti: String,
    /// The granted scope as the token response's `scope` (RFC 6749 §5.1);
    /// `None` when empty.
    pub scope: Option<String>,
}

/// The lifetime of the client's access tokens: its override or the default, never
/// above the configured maximum.
pub fn lifetime(settings: &Settings, client: &Client) -> i64 {
    client
        .access_token_ttl
        .unwrap_or(settings.access_token_ttl)
        .min(settings.access_token_max_ttl)
        .max(1)
}

#[allow(clippy::too_many_arguments)]
pub fn mint(
    settings: &Settings,
    keyring: &Keyring,
    client: &Client,
    subject: &str,
    audiences: &[String],
    scope: &Scope,
    status: Option<&StatusClaim>,
    dpop_jkt: Option<&str>,
    now: i64,
) -> Result<MintedAccessToken, OAuthError> {
    let expires_in = lifetime(settings, client);
    mint_with(
        settings,
        keyring,
        Minting {
            client,
            subject,
            audiences,
            scope,
            status,
            act: None,
            dpop_jkt,
            expires_in,
        },
        now,
    )
}

/// What an access token says, for [`mint_with`].
pub struct Minting<'a> {
    pub client: &'a Client,
    pub subject: &'a str,
    pub audiences: &'a [String],
    pub scope: &'a Scope,
    pub status: Option<&'a StatusClaim>,
    pub act: Option<&'a serde_json::Value>,
    /// The DPoP key (RFC 7638 thumbprint) the token is bound to, if any.
    pub dpop_jkt: Option<&'a str>,
    pub expires_in: i64,
}

/// [`mint`] with every claim chosen by the caller (token exchange: the lifetime
/// capped by the subject token's, an `act` claim).
pub fn mint_with(
    settings: &Settings,
    keyring: &Keyring,
    minting: Minting<'_>,
    now: i64,
) -> Result<MintedAccessToken, OAuthError> {
    let Minting {
        client,
        subject,
        audiences,
        scope,
        status,
        act,
        dpop_jkt,
        expires_in,
    } = minting;
    let alg = settings.keys.access_token_alg;
    let key = keyring
        .signing_key(alg, now)
        .ok_or_else(|| OAuthError::server(format!("no active {alg} signing key")))?;
    let jti = token_id()?;
    let scope_text = (!scope.is_empty()).then(|| scope.to_string());
    let claims = AccessTokenClaims {
        iss: &settings.issuer,
        sub: subject,
        aud: audiences,
        exp: now.saturating_add(expires_in),
        iat: now,
        jti: &jti,
        client_id: &client.client_id,
        scope: scope_text.as_deref(),
        status,
        cnf: dpop_jkt.map(|jkt| Confirmation { jkt }),
        act,
    };
    let token = key
        .sign_jwt(ACCESS_TOKEN_TYP, &claims)
        .map_err(OAuthError::server)?;
    Ok(MintedAccessToken {
        token,
        expires_in,
        jti,
        scope: scope_text,
    })
}

/// Whether a token's `aud` claim (a string or an array, RFC 7519 §4.1.3) names
/// `audience`.
pub fn audience_includes(
    claims: &serde_json::Map<String, serde_json::Value>,
    audience: &str,
) -> bool {
    match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => aud == audience,
        Some(serde_json::Value::Array(auds)) => {
            auds.iter().any(|aud| aud.as_str() == Some(audience))
        }
        _ => false,
    }
}
