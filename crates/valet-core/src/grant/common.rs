//! Steps every grant shares.

use valet_protocol::token::{GrantType, TokenResponse};
use valet_protocol::{ErrorCode, Scope};

use std::net::IpAddr;

use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;
use crate::policy;
use crate::store::{AuthorizationCode, Client, CodeRedemption, Grant, RefreshToken};
use crate::token::encryption::Sealer;
use crate::token::status_claim::StatusClaim;
use crate::token::{access_token, id_token, refresh_token};

/// RFC 6749 §5.2 `unauthorized_client`: the client is not registered for this grant.
pub fn ensure_grant_allowed(
    client: &AuthenticatedClient,
    grant: GrantType,
) -> Result<(), OAuthError> {
    if client.client().grant_types.contains(&grant) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for this grant_type",
        ))
    }
}

/// The grant of a user who may no longer get tokens (disabled or deleted) is
/// revoked, with its tokens.
pub(crate) async fn end_family_of_disabled_user(
    server: &AuthorizationServer,
    grant: &Grant,
    address: Option<IpAddr>,
    now: i64,
) -> Result<(), OAuthError> {
    server.store.revoke_grant(&grant.grant_id, now).await?;
    server.status_lists.wake();
    server.audit(
        AuditEvent::new(AuditKind::TokenRevoked, now)
            .user(&grant.user_id)
            .client(&grant.client_id)
            .address(address)
            .detail("grant_id", grant.grant_id.as_str())
            .detail("reason", "user disabled or deleted"),
    );
    Ok(())
}

/// Tokens issued under a user's grant: access token (always), ID token (with
/// `openid`), refresh token (when the client may refresh — for OpenID Connect
/// requests only with `offline_access`, OIDC Core §11).
pub struct IssuedTokens {
    pub response: TokenResponse,
    /// The refresh token record to store, if one was issued.
    pub refresh: Option<RefreshToken>,
    pub access_jti: String,
    pub access_expires_at: i64,
}

/// The DPoP keys (RFC 9449) the new tokens are bound to, by thumbprint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Binding<'a> {
    /// The access token's `cnf.jkt`: the key of this request's proof.
    pub access: Option<&'a str>,
    /// The refresh token's key (§5: public clients' refresh tokens are bound).
    pub refresh: Option<&'a str>,
}

impl<'a> Binding<'a> {
    /// §5: the access token is bound to the proof's key; a refresh token too when
    /// the client is public (a confidential client's refresh token is already bound
    /// to its credentials), or when the one it replaces was bound.
    pub fn new(
        client: &AuthenticatedClient,
        proof: Option<&'a str>,
        previous: Option<&'a str>,
    ) -> Self {
        let refresh = previous.or(if client.is_confidential() {
            None
        } else {
            proof
        });
        Self {
            access: proof,
            refresh,
        }
    }
}

/// RFC 9449 §5, §10: a code or refresh token bound to a key needs a proof with
/// that key; checked before the artefact is consumed, so a request without the
/// key changes nothing.
pub fn ensure_bound_key(
    bound: Option<&str>,
    proof: Option<&str>,
    what: &'static str,
) -> Result<(), OAuthError> {
    match (bound, proof) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(crate::dpop::invalid_proof(match what {
            "code" => {
                "this authorization code is bound to a DPoP key (dpop_jkt); send a DPoP proof made with it"
            }
            _ => "this refresh token is bound to a DPoP key; send a DPoP proof made with it",
        })),
        (Some(bound), Some(proof))
            if valet_jose::constant_time_eq(bound.as_bytes(), proof.as_bytes()) =>
        {
            Ok(())
        }
        (Some(_), Some(_)) => Err(crate::dpop::invalid_proof(match what {
            "code" => {
                "the DPoP proof key is not the one named by dpop_jkt at the authorization request"
            }
            _ => "the DPoP proof key is not the one this refresh token is bound to",
        })),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn tokens_for_grant(
    server: &AuthorizationServer,
    client: &Client,
    grant: &Grant,
    scope: &[String],
    resources: &[String],
    nonce: Option<&str>,
    binding: Binding<'_>,
    id_token_sealer: Option<&Sealer>,
    now: i64,
) -> Result<IssuedTokens, OAuthError> {
    let scope_set = Scope::from_tokens(scope.iter().map(String::as_str))
        .map_err(|_| OAuthError::server("a granted scope is not a valid scope token"))?;
    let audiences = policy::resource::for_user(
        resources,
        client,
        &server.settings.issuer,
        scope_set.contains("openid"),
    );
    let status = grant
        .status_idx
        .map(|idx| StatusClaim::new(&server.settings.issuer, idx));
    let access = access_token::mint(
        &server.settings,
        &server.keyring,
        client,
        &grant.user_id,
        &audiences,
        &scope_set,
        status.as_ref(),
        binding.access,
        now,
    )?;
    let id_token = if scope_set.contains("openid") {
        let signed = id_token::mint(
            &server.settings,
            &server.keyring,
            client,
            grant,
            nonce,
            &access.token,
            now,
        )?;
        // OIDC Core §10.2: signed, then encrypted; `cty` names the nested JWT.
        Some(match id_token_sealer {
            Some(sealer) => sealer.seal(signed.as_bytes(), Some("JWT"))?,
            None => signed,
        })
    } else {
        None
    };
    // Decided on the whole grant: narrowing the scope of one refresh must not
    // end the family (RFC 6749 §6).
    let granted = |name: &str| grant.scope.iter().any(|s| s == name);
    let may_refresh = client.grant_types.contains(&GrantType::RefreshToken)
        && (!granted("openid") || granted("offline_access"));
    let (refresh_token, refresh) = if may_refresh {
        let token = refresh_token::generate()?;
        let record = RefreshToken {
            token_hash: refresh_token::hash(&token),
            grant_id: grant.grant_id.clone(),
            client_id: client.client_id.clone(),
            scope: grant.scope.clone(),
            created_at: now,
            expires_at: now
                .saturating_add(server.settings.refresh_token_idle_ttl)
                .min(grant.expires_at),
            rotated_at: None,
            sealed_successor: None,
            dpop_jkt: binding.refresh.map(str::to_owned),
        };
        (Some(token), Some(record))
    } else {
        (None, None)
    };
    Ok(IssuedTokens {
        response: TokenResponse {
            access_token: access.token,
            token_type: access_token::token_type(binding.access).to_owned(),
            expires_in: access.expires_in,
            scope: access.scope,
            refresh_token,
            id_token,
            issued_token_type: None,
        },
        refresh,
        access_jti: access.jti,
        access_expires_at: now.saturating_add(access.expires_in),
    })
}

/// Why a code's redemption gave no tokens.
pub(crate) enum CodeRefused {
    /// Not live: expired, or its grant revoked.
    Unknown,
    /// Consumed already (RFC 6749 §4.1.2): the grant's id, to revoke it.
    Replayed(String),
}

/// Mints the tokens of `code`'s grant, then spends the code and records them
/// in one durable write. Minted first so that spending the code and recording
/// what it gave are one write: a request that loses the race to a concurrent
/// one has spent a signature, and hands out nothing. Tokens handed out are
/// audited as `grant_type`'s.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn redeem_for_tokens(
    server: &AuthorizationServer,
    registered: &Client,
    grant_type: GrantType,
    (code, grant): (&AuthorizationCode, &Grant),
    nonce: Option<&str>,
    binding: Binding<'_>,
    sealer: Option<&Sealer>,
    address: Option<IpAddr>,
    now: i64,
) -> Result<Result<TokenResponse, CodeRefused>, OAuthError> {
    let issued = tokens_for_grant(
        server,
        registered,
        grant,
        &code.scope,
        &code.resources,
        nonce,
        binding,
        sealer,
        now,
    )?;
    let redemption = server
        .store
        .redeem_code_and_record(
            &code.code_hash,
            now,
            &issued.access_jti,
            issued.access_expires_at,
            issued.refresh.as_ref(),
        )
        .await?;
    Ok(match redemption {
        CodeRedemption::Redeemed(_) => {
            audit_issued(server, grant_type, registered, grant, &issued, address, now);
            Ok(issued.response)
        }
        CodeRedemption::Unknown => Err(CodeRefused::Unknown),
        CodeRedemption::Replayed(record) => Err(CodeRefused::Replayed(record.grant_id)),
    })
}

/// The `token.issued` record of a grant made by a user (a code redeemed, a
/// refresh token rotated): the grant, its scope and the new access token's `jti`.
pub(crate) fn audit_issued(
    server: &AuthorizationServer,
    grant_type: GrantType,
    registered: &Client,
    grant: &Grant,
    issued: &IssuedTokens,
    address: Option<IpAddr>,
    now: i64,
) {
    server.audit(
        AuditEvent::new(AuditKind::TokenIssued, now)
            .user(&grant.user_id)
            .client(&registered.client_id)
            .address(address)
            .detail("grant_type", grant_type.as_str())
            .detail("grant_id", grant.grant_id.as_str())
            .detail(
                "scope",
                issued.response.scope.as_deref().unwrap_or_default(),
            )
            .detail("jti", issued.access_jti.as_str()),
    );
}
