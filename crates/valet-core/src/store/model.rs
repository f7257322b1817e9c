//! Records as the store keeps them. Secrets appear only as hashes or sealed bytes.

use std::fmt;

use valet_jose::{Algorithm, ContentEncryption, KeyManagement};
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

/// A registered OAuth client (RFC 6749 §2).
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// How the client may authenticate at the token endpoint (RFC 7591 §2
    /// `token_endpoint_auth_method`): `[None]` for a public client,
    /// `[PrivateKeyJwt]` for one that signs assertions with its keys, otherwise
    /// one or both of the secret methods. Never empty.
    pub token_endpoint_auth_methods: Vec<TokenEndpointAuthMethod>,
    /// SHA-256 of the client secret; `None` for a public client.
    pub secret_hash: Option<Vec<u8>>,
    /// SHA-256 of the secret it had before the last rotation, accepted until
    /// `previous_secret_expires_at` (a rotation with overlap); at most one.
    pub previous_secret_hash: Option<Vec<u8>>,
    /// Unix seconds; the previous secret works while `now` is before it.
    pub previous_secret_expires_at: Option<i64>,
    /// May introspect any token (RFC 7662 §2.1 "authorized"), not only those
    /// issued to it or naming it in `aud`.
    pub introspect_any: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins (`https://host[:port]`) that may call the token,
    /// UserInfo and revocation endpoints besides those derived from a public
    /// client's redirect URIs (the `cors` module).
    pub allowed_origins: Vec<String>,
    /// Grant types it may use (RFC 6749, RFC 7591 §2 `grant_types`).
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// Audiences (RFC 8707 resources) its tokens may be issued for; the first is the default.
    pub audiences: Vec<String>,
    /// Access token lifetime override in seconds.
    pub access_token_ttl: Option<i64>,
    /// First-party app: users are not asked for consent.
    pub skip_consent: bool,
    /// Users must sign in with a second factor (enrolling one first if they
    /// have none) to use this client.
    pub require_mfa: bool,
    /// Seconds during which a repeated refresh request returns the same successor
    /// pair instead of revoking the family; 0 = strict rotation (RFC 9700 §4.14.2).
    pub refresh_grace_seconds: i64,
    /// `id_token_signed_response_alg` (OIDC Registration §2): `RS256` when `None`.
    pub id_token_signed_response_alg: Option<Algorithm>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Its authorization requests must be pushed to `/par` first (RFC 9126 §6
    /// `require_pushed_authorization_requests`).
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request must carry a
    /// DPoP proof, so every access token it gets is bound.
    pub dpop_bound_access_tokens: bool,
    /// The client's public keys as a JWK Set document (RFC 7517 §5), for
    /// `private_key_jwt` and signed request objects; at most one of this and
    /// `jwks_uri` (RFC 7591 §2).
    pub jwks: Option<String>,
    /// Where the client publishes its JWK Set (fetched and cached).
    pub jwks_uri: Option<String>,
    /// Audiences this client may exchange a subject token into (RFC 8693);
    /// empty: it may not exchange tokens.
    pub token_exchange_audiences: Vec<String>,
    /// SHA-256 of the registration access token (RFC 7592 §1) of a client that
    /// registered itself (RFC 7591); `None` for any other client.
    pub registration_token_hash: Option<Vec<u8>>,
    /// For a client whose id is the URL of its metadata document
    /// (draft-ietf-oauth-client-id-metadata-document): until when this copy of
    /// the document may be used before it is fetched again. `None` for any
    /// other client.
    pub metadata_expires_at: Option<i64>,
    /// A `client_secret_jwt` client's secret, sealed (AES-256-GCM under a key
    /// derived from the master key, bound to the client id) so assertions MACed
    /// with it can be checked; `None` for any other client.
    pub sealed_secret: Option<Vec<u8>>,
    /// `id_token_encrypted_response_alg`/`_enc` (OIDC Registration §2): ID tokens
    /// are signed, then encrypted to the client's key (OIDC Core §10.2).
    pub id_token_encryption: Option<JweChoice>,
    /// `userinfo_signed_response_alg` (OIDC Registration §2): UserInfo answers
    /// are a JWT signed with it (OIDC Core §5.3.2); `None`: plain JSON.
    pub userinfo_signed_response_alg: Option<Algorithm>,
    /// `userinfo_encrypted_response_alg`/`_enc`: UserInfo answers are encrypted
    /// (the signed JWT if `userinfo_signed_response_alg` is set, else the JSON).
    pub userinfo_encryption: Option<JweChoice>,
}

/// A JWE `alg` and `enc` a client registered for a response (OIDC Registration §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JweChoice {
    pub alg: KeyManagement,
    pub enc: ContentEncryption,
}

/// How a client came to be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOrigin {
    /// By an operator (`valet client create`, the admin API).
    Operator,
    /// By itself, at the registration endpoint (RFC 7591).
    Dynamic,
    /// Its id is the URL of its metadata document, fetched when used.
    MetadataDocument,
}

impl ClientOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Dynamic => "dynamic",
            Self::MetadataDocument => "metadata_document",
        }
    }
}

impl Client {
    /// For a client known by its metadata document: the host (and port) that
    /// published it, as the consent page shows it.
    pub fn metadata_document_site(&self) -> Option<String> {
        if self.origin() != ClientOrigin::MetadataDocument {
            return None;
        }
        let id = self.client_id.as_str();
        let rest = id.split_once("://").map_or(id, |(_, rest)| rest);
        Some(rest.split('/').next().unwrap_or(rest).to_owned())
    }

    pub fn origin(&self) -> ClientOrigin {
        if self.metadata_expires_at.is_some() {
            ClientOrigin::MetadataDocument
        } else if self.registration_token_hash.is_some() {
            ClientOrigin::Dynamic
        } else {
            ClientOrigin::Operator
        }
    }

    /// A public client (RFC 6749 §2.1): registered for auth method `none`.
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_methods
            .contains(&TokenEndpointAuthMethod::None)
    }

    /// Whether the client registered this way of authenticating.
    pub fn allows_auth_method(&self, method: TokenEndpointAuthMethod) -> bool {
        self.token_endpoint_auth_methods.contains(&method)
    }

    /// The previous secret's hash while its overlap runs at `now`.
    pub fn previous_secret_at(&self, now: i64) -> Option<&[u8]> {
        match (&self.previous_secret_hash, self.previous_secret_expires_at) {
            (Some(hash), Some(until)) if now < until => Some(hash),
            _ => None,
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field(
                "token_endpoint_auth_methods",
                &self.token_endpoint_auth_methods,
            )
            .field(
                "secret_hash",
                &self.secret_hash.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "previous_secret_hash",
                &self.previous_secret_hash.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "previous_secret_expires_at",
                &self.previous_secret_expires_at,
            )
            .field("introspect_any", &self.introspect_any)
            .field("dpop_bound_access_tokens", &self.dpop_bound_access_tokens)
            .field("redirect_uris", &self.redirect_uris)
            .field("allowed_origins", &self.allowed_origins)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .field("audiences", &self.audiences)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("skip_consent", &self.skip_consent)
            .field("require_mfa", &self.require_mfa)
            .field("refresh_grace_seconds", &self.refresh_grace_seconds)
            .field(
                "require_pushed_authorization_requests",
                &self.require_pushed_authorization_requests,
            )
            .field("jwks", &self.jwks.as_ref().map(|_| "<keys>"))
            .field("jwks_uri", &self.jwks_uri)
            .field("token_exchange_audiences", &self.token_exchange_audiences)
            .field(
                "registration_token_hash",
                &self.registration_token_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("metadata_expires_at", &self.metadata_expires_at)
            .finish_non_exhaustive()
    }
}

/// An initial access token (RFC 7591 §3) an operator issued so that a client
/// may register itself. Stored as a SHA-256 hash.
#[derive(Clone, PartialEq, Eq)]
pub struct InitialAccessToken {
    /// A public id, to list and revoke it by.
    pub token_id: String,
    pub token_hash: Vec<u8>,
    /// What the operator wrote about it (whom it was given to).
    pub note: String,
    pub created_at: i64,
    /// Unix seconds; it works while `now` is before it.
    pub expires_at: i64,
    /// Registrations it still allows; `None`: any number until it expires.
    pub uses_left: Option<i64>,
}

impl fmt::Debug for InitialAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitialAccessToken")
            .field("token_id", &self.token_id)
            .field("note", &self.note)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("uses_left", &self.uses_left)
            .finish_non_exhaustive()
    }
}

/// A signing key. The private key is sealed (AES-256-GCM under the master key)
/// before it reaches the store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    /// The JWS algorithm it signs with.
    pub alg: Algorithm,
    /// Position in the key sequence of its algorithm; unique per `alg`.
    pub generation: i64,
    /// The public JWK, as JSON text.
    pub public_jwk: String,
    /// The sealed private key.
    pub sealed_private_key: Vec<u8>,
    pub created_at: i64,
    /// When the key starts signing; `None` for a key that is published but never signs.
    pub activates_at: Option<i64>,
    /// When the key leaves the JWKS; `None` while no successor has been scheduled.
    pub publish_until: Option<i64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("generation", &self.generation)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

/// Outcome of [`super::KeyStore::insert_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyInsert {
    Inserted,
    /// Another key of this algorithm already has that generation (or that kid).
    GenerationTaken,
}

/// A revoked access token, identified by its `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    pub jti: String,
    pub client_id: String,
    /// The token's `exp`: after it, the record can go.
    pub expires_at: i64,
    pub revoked_at: i64,
}

/// A person who signs in. `user_id` is the stable OpenID Connect `sub`.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    /// Unique, case-sensitive.
    pub username: String,
    /// Unique when present, compared case-insensitively (stored as given).
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// argon2id PHC string; `None` for a user who cannot sign in with a password.
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// May use the web console at `/admin`.
    pub admin: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A user's TOTP credential (RFC 6238). The secret is sealed under a key
/// derived from the master key for this purpose and bound to the user. Pending
/// (`confirmed_at` `None`) until a code from the app confirms it; meanwhile its
/// recovery codes wait beside it, sealed too, to be shown again.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCredential {
    pub user_id: String,
    pub sealed_secret: Vec<u8>,
    /// The recovery codes of a pending enrolment (sealed JSON); `None` once confirmed.
    pub sealed_recovery_codes: Option<Vec<u8>>,
    pub confirmed_at: Option<i64>,
    /// The last time step a code was accepted for: no code of it or before
    /// works again.
    pub last_step: Option<i64>,
    pub created_at: i64,
}

impl fmt::Debug for TotpCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpCredential")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// A signed-in browser. The cookie carries a random value; the store keeps only
/// its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub session_hash: Vec<u8>,
    /// The public session id: the ID token's `sid` (OIDC Front-Channel Logout §2).
    pub sid: String,
    pub user_id: String,
    /// When the user last authenticated (OIDC Core §2 `auth_time`).
    pub auth_time: i64,
    /// Authentication methods (RFC 8176), e.g. `pwd`.
    pub amr: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("user_id", &self.user_id)
            .field("auth_time", &self.auth_time)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A passkey (a WebAuthn credential) a user registered. The credential's public
/// key, sign counter and backup flags live in `passkey`, webauthn-rs's own
/// serialisation; the counter and flags are repeated beside it as plain values.
#[derive(Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The authenticator's credential id (WebAuthn §4 "Credential ID"), unique
    /// across users.
    pub credential_id: Vec<u8>,
    pub user_id: String,
    /// The WebAuthn user handle (a UUID) the credential was created for; a
    /// discoverable credential returns it with every assertion.
    pub user_handle: String,
    /// The name the user gave it.
    pub name: String,
    /// The credential as webauthn-rs serialises it (JSON).
    pub passkey: String,
    /// WebAuthn §6.1.1 signature counter, as last seen.
    pub sign_count: i64,
    /// WebAuthn §6.1 flags BE and BS: the credential may be, or is, synced to
    /// other devices.
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl fmt::Debug for PasskeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyRecord")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("sign_count", &self.sign_count)
            .field("backed_up", &self.backed_up)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

/// What a user allowed a client (remembered consent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub client_id: String,
    pub scopes: Vec<String>,
    /// Unix seconds of the last scope added.
    pub updated_at: i64,
}

/// An authorization request waiting for the user (login, consent). The payload is
/// the core's own JSON; the store keeps it as a [`SingleUse`] record of kind
/// [`SingleUseKind::Interaction`] until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub interaction_id: String,
    pub payload: String,
    pub expires_at: i64,
}

/// The kind of a [`SingleUse`] record: each kind is its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SingleUseKind {
    /// An authorization request waiting for the user ([`Interaction`]).
    Interaction,
    /// A password reset link's token (`mail::token`).
    PasswordReset,
    /// An email verification link's token (`mail::token`).
    EmailVerification,
    /// An invitation to register (`mail::token`).
    Invite,
    /// A WebAuthn ceremony's state between its options and the browser's
    /// answer (see the `passkeys` module).
    PasskeyCeremony,
    /// A device authorization request under its device code (RFC 8628; the
    /// `device` module): its client, scope and the user's decision.
    DeviceCode,
    /// A device request under its user code: which device code it stands for.
    DeviceUserCode,
    /// When a device last polled under its device code, and its interval.
    DevicePoll,
    /// A pushed authorization request (RFC 9126) under its `request_uri`.
    PushedRequest,
    /// A DPoP proof's `jti` (RFC 9449 §11.1), kept until the proof is too old
    /// to be accepted anyway (see the `dpop` module).
    DpopProof,
    /// The `jti` of a client assertion already used (RFC 7523 §3 item 7), kept
    /// until the assertion expires.
    ClientAssertion,
    /// A sign-in sent to an upstream provider, under a hash of its `state`:
    /// the provider, PKCE verifier, nonce and the request it signs in for
    /// (the `upstream` module).
    UpstreamState,
    /// An upstream identity no local account is linked to yet, waiting for
    /// the user's choice (create an account, or link after a local sign-in).
    UpstreamIdentity,
}

impl SingleUseKind {
    pub const ALL: [SingleUseKind; 13] = [
        SingleUseKind::Interaction,
        SingleUseKind::PasswordReset,
        SingleUseKind::EmailVerification,
        SingleUseKind::Invite,
        SingleUseKind::PasskeyCeremony,
        SingleUseKind::DeviceCode,
        SingleUseKind::DeviceUserCode,
        SingleUseKind::DevicePoll,
        SingleUseKind::PushedRequest,
        SingleUseKind::DpopProof,
        SingleUseKind::ClientAssertion,
        SingleUseKind::UpstreamState,
        SingleUseKind::UpstreamIdentity,
    ];

    /// The name the store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interaction => "interaction",
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
            Self::Invite => "invite",
            Self::PasskeyCeremony => "passkey_ceremony",
            Self::DeviceCode => "device_code",
            Self::DeviceUserCode => "device_user_code",
            Self::DevicePoll => "device_poll",
            Self::PushedRequest => "pushed_request",
            Self::DpopProof => "dpop_proof",
            Self::ClientAssertion => "client_assertion",
            Self::UpstreamState => "upstream_state",
            Self::UpstreamIdentity => "upstream_identity",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// A short-lived single-use record (see [`super::SingleUseStore`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SingleUse {
    pub kind: SingleUseKind,
    /// A hash of the handle, never the handle itself.
    pub key: Vec<u8>,
    /// The core's own encoding (JSON) of what the record carries.
    pub payload: String,
    pub expires_at: i64,
    pub consumed: bool,
}

impl fmt::Debug for SingleUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleUse")
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .field("consumed", &self.consumed)
            .finish_non_exhaustive()
    }
}

/// What a user allowed a client, from which codes, access tokens and refresh
/// tokens descend. Revoking it kills all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: Vec<String>,
    /// The session it was granted in, if any (logout revokes by it).
    pub sid: Option<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub created_at: i64,
    /// Absolute end of the grant: no refresh token outlives it.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The grant's index in the token status list: every access token issued
    /// under the grant carries it, so revoking the grant sets one bit.
    pub status_idx: Option<i64>,
    /// RFC 8707 resources the grant covers: the audiences of every access token
    /// issued under it (empty: the client's default audience).
    pub resources: Vec<String>,
}

/// An authorization code (RFC 6749 §4.1.2), stored as a hash, single use.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: Vec<u8>,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// RFC 7636 S256 challenge.
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: Vec<String>,
    /// RFC 8707 resources asked for at the authorization endpoint.
    pub resources: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    /// RFC 9449 §10: the thumbprint of the key the code is bound to (`dpop_jkt`
    /// at the authorization endpoint); redeeming it needs a proof with that key.
    pub dpop_jkt: Option<String>,
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("grant_id", &self.grant_id)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .field("consumed_at", &self.consumed_at)
            .finish_non_exhaustive()
    }
}

/// Outcome of redeeming a code, decided atomically by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// This call consumed it.
    Redeemed(AuthorizationCode),
    /// It had been consumed before: a replay (RFC 6749 §4.1.2).
    Replayed(AuthorizationCode),
    Unknown,
}

/// An opaque refresh token, stored as a hash.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: Vec<u8>,
    pub grant_id: String,
    pub client_id: String,
    pub scope: Vec<String>,
    pub created_at: i64,
    /// Idle expiry, never later than the grant's `expires_at`.
    pub expires_at: i64,
    /// Set once, when it is exchanged for a successor.
    pub rotated_at: Option<i64>,
    /// The successor token response, sealed under the master key, kept so a
    /// repeat within the client's grace window gets the same pair.
    pub sealed_successor: Option<Vec<u8>>,
    /// RFC 9449 §5: the thumbprint of the DPoP key the token is bound to; using
    /// it needs a proof with that key. Successors keep the binding.
    pub dpop_jkt: Option<String>,
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("grant_id", &self.grant_id)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .field("rotated_at", &self.rotated_at)
            .finish_non_exhaustive()
    }
}

/// A refresh token with its grant, and whether the grant's user may still get
/// tokens: what the refresh grant checks before it rotates, read in one
/// statement ([`super::GrantStore::get_refresh_family`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    pub token: RefreshToken,
    pub grant: Grant,
    /// The grant's user exists and is not disabled.
    pub user_enabled: bool,
}

/// An authorization code with its grant, and whether the grant's user may still
/// get tokens: what the code exchange checks and issues from, read in one
/// statement ([`super::GrantStore::get_code_family`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFamily {
    pub code: AuthorizationCode,
    pub grant: Grant,
    /// The grant's user exists and is not disabled.
    pub user_enabled: bool,
}

/// Outcome of [`super::GrantStore::rotate_refresh_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// This call rotated it; the successor is stored.
    Rotated { previous: RefreshToken },
    /// It was rotated before (by another request): reuse or a retry.
    AlreadyRotated {
        previous: RefreshToken,
        /// Boxed: the rare outcome need not make every `Rotation` this large.
        grant: Box<Grant>,
    },
    /// Unknown hash, or its grant is revoked.
    Unknown,
}

/// A revoked range of status list indices `[start, end)`, in the order revocations
/// were recorded (`seq` only grows), kept until `expires_at`, when every token
/// that could carry one of the indices has expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRevocation {
    pub seq: i64,
    pub start: i64,
    pub end: i64,
    pub expires_at: i64,
    pub revoked_at: i64,
}

/// A mail in the outbox (see [`super::OutboxStore`]). What it says (the
/// recipient, the subject and body, or the request it is resolved from) is the
/// core's JSON sealed under a key derived from the master key: the store sees
/// bytes only.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMail {
    pub mail_id: String,
    /// The sealed content; empty once the mail is finished.
    pub sealed: Vec<u8>,
    /// How often a sender has claimed it.
    pub attempts: i64,
    /// Not claimed before this.
    pub next_attempt_at: i64,
    pub created_at: i64,
    /// When it was sent, dropped or given up; `None` while pending.
    pub finished_at: Option<i64>,
    pub outcome: Option<MailOutcome>,
}

impl fmt::Debug for OutboxMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxMail")
            .field("mail_id", &self.mail_id)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("finished_at", &self.finished_at)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// How an outbox mail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// The SMTP server (or the log mailer) took it.
    Sent,
    /// There was nothing to send (a password reset for no known account).
    Dropped,
    /// Given up after the last attempt, or refused for good.
    Failed,
}

impl MailOutcome {
    pub const ALL: [MailOutcome; 3] = [Self::Sent, Self::Dropped, Self::Failed];

    /// The name the store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Dropped => "dropped",
            Self::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
    }
}

/// How Valet talks to an upstream provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// An OpenID provider: endpoints by discovery, identity from the ID token.
    Oidc,
    /// A plain OAuth 2 provider: endpoints configured, identity from userinfo.
    Oauth2,
}

impl UpstreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Oauth2 => "oauth2",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "oidc" => Some(Self::Oidc),
            "oauth2" => Some(Self::Oauth2),
            _ => None,
        }
    }
}

/// A provider users may sign in with ("Sign in with …"). Its client secret is
/// sealed under a key derived from the master key, bound to the name.
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The name in URLs and on the sign-in button: `[a-z0-9-]`.
    pub name: String,
    pub kind: UpstreamKind,
    /// The OpenID issuer; for an OAuth 2 provider, the `iss` it sends if any.
    pub issuer: Option<String>,
    pub client_id: String,
    pub sealed_secret: Vec<u8>,
    pub scopes: Vec<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    /// The userinfo (or ID token) claims naming the subject, email and name.
    pub subject_claim: String,
    pub email_claim: String,
    pub name_claim: String,
    /// The discovery document as fetched when the provider was added (JSON).
    pub metadata: Option<String>,
    pub created_at: i64,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A local user's link to an identity at an upstream provider: the subject
/// signs in as that user. One link per (upstream, subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLink {
    pub upstream: String,
    pub subject: String,
    pub user_id: String,
    pub linked_at: i64,
}
