//! Valet's authorization server logic: no HTTP and no SQL here.
//!
//! # The request path
//!
//! The HTTP layer (`valet-server`) builds one [`RequestContext`] per request:
//! the time, read once from the server's [`Clock`]; the client's address (the
//! peer, or behind trusted proxies the forwarded one); and the request's id
//! (echoed as `X-Request-Id`). It extracts the header values and the form and
//! calls one method of [`AuthorizationServer`] with them; nothing below reads
//! the clock or the peer again, so one request sees one instant.
//!
//! - Token, introspection, revocation: [`endpoint`] → [`client_auth`] →
//!   [`grant`] (one file per grant) → [`policy`] → [`token`] minting → the
//!   [`store`] traits.
//! - Authorization, login and consent forms: [`authn`], the sign-in pipeline
//!   (identify → verify → consent → issue, steps picked by [`authn::policy`]),
//!   answering with an [`authorize::AuthorizeOutcome`] (a page or a redirect).
//! - UserInfo, logout, the status stream: [`endpoint`] and [`status`].
//!
//! Results go back out as a protocol response or an error ([`OAuthError`], a
//! page error, a bearer refusal), which `valet-server` turns into HTTP in one
//! module. Audit records of the sign-in, consent, logout and revocation carry
//! the request id (`detail.request_id`); the token path's records do not, so
//! issuing a token costs nothing more for it.

pub mod account;
pub mod admin;
pub mod audit;
pub mod authn;
pub mod authorize;
pub mod branding;
pub mod client_auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod context;
pub mod cors;
pub mod device;
pub mod dpop;
pub mod dynamic_clients;
pub mod endpoint;
pub mod error;
pub mod grant;
pub mod i18n;
pub mod keys;
pub mod mail;
pub mod mfa;
pub mod outbound_url;
pub mod passkeys;
pub mod policy;
pub mod register;
pub mod secrets;
pub mod session;
pub mod status;
pub mod store;
pub mod throttle;
pub mod token;
pub mod upstream;
pub mod users;

use std::sync::Arc;

use serde_json::{Map, Value};
use valet_jose::{MasterKey, PeriodKeys};
use valet_protocol::Form;
use valet_protocol::metadata::ServerMetadata;
use valet_protocol::token::{ClientAuthentication, GrantType, TokenResponse};

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::config::{KeyPolicy, Settings};
pub use crate::context::{LanguageTag, RequestContext, RequestId};
pub use crate::error::OAuthError;

use crate::audit::{AuditEvent, AuditKind, AuditLog};
use crate::client_auth::{AuthenticatedClient, ClientAuthenticator, ClientCache};
use crate::keys::{KeyError, KeyManager, Keyring};
use crate::status::{AllocationError, StatusAllocator, StatusLists};
use crate::store::Store;
use crate::throttle::LoginThrottle;
use crate::token::status_claim::{LIST_SIZE, list_uri};
use crate::users::PasswordHasher;

/// Expired records deleted per kind and maintenance pass: small batches keep every
/// delete short, so the janitor never holds long locks.
const PURGE_BATCH: u32 = 1_000;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{0}")]
    Store(#[source] OAuthError),
    #[error("settings: {0}")]
    Settings(String),
}

/// The `aud` values a client assertion may carry: the issuer (RFC 7523bis), and
/// the URL of each endpoint where clients authenticate (OIDC Core §9 names the
/// token endpoint).
fn assertion_audiences(issuer: &str) -> Vec<String> {
    use endpoint::metadata::paths;
    std::iter::once(issuer.to_owned())
        .chain(
            [paths::TOKEN, paths::INTROSPECT, paths::REVOKE]
                .into_iter()
                .map(|path| format!("{issuer}{path}")),
        )
        .collect()
}

/// The authorization server: everything an endpoint needs, shared by all requests.
pub struct AuthorizationServer {
    pub(crate) settings: Settings,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keyring: Keyring,
    pub(crate) key_manager: KeyManager,
    pub(crate) authenticator: ClientAuthenticator,
    pub(crate) clock: Arc<dyn Clock>,
    /// Opens refresh successors sealed before they were sealed per period
    /// (a grace window's worth after an upgrade).
    pub(crate) master: Arc<MasterKey>,
    /// Seals refresh successors for the grace window, per period.
    pub(crate) successor_keys: PeriodKeys,
    /// Seals the authorization requests that browsers carry until sign-in, per
    /// period (derived from the master key for that purpose only).
    pub(crate) request_keys: PeriodKeys,
    /// Seals DPoP nonces (RFC 9449 §8), per period, for every node alike.
    pub(crate) dpop_nonces: PeriodKeys,
    pub(crate) hasher: PasswordHasher,
    pub(crate) throttle: LoginThrottle,
    /// Password reset requests, counted like sign-in attempts (every request
    /// counts).
    pub(crate) reset_throttle: LoginThrottle,
    /// User codes entered at `/device` (RFC 8628 §5.1), counted like
    /// sign-in attempts, per address.
    pub(crate) device_throttle: LoginThrottle,
    /// Seals and opens what the mail outbox holds.
    pub(crate) outbox: mail::OutboxSeal,
    /// Wakes this node's mail sender when mail is queued.
    pub(crate) mail_queued: tokio::sync::Notify,
    pub(crate) status_allocator: StatusAllocator,
    pub(crate) status_lists: StatusLists,
    pub(crate) status_streams: status::stream::StreamSlots,
    pub(crate) audit: AuditLog,
    /// The WebAuthn relying party; `None` when the issuer's host cannot be one
    /// (an IP address), and then no page offers passkeys.
    pub(crate) passkeys: Option<passkeys::RelyingParty>,
    /// Open client registration's rate per address (RFC 7591).
    pub(crate) registration_throttle: throttle::RegistrationThrottle,
    /// The browser origins clients registered, for CORS.
    allowed_origins: cors::AllowedOrigins,
    metadata: ServerMetadata,
    /// Upstream providers' HTTP client and cached discovery and keys.
    pub(crate) upstreams: upstream::Upstreams,
}

impl AuthorizationServer {
    /// Prepares the keys (creating them on first start) and loads them.
    pub async fn start(
        settings: Settings,
        store: Arc<dyn Store>,
        master: MasterKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        settings.validate().map_err(StartError::Settings)?;
        let master = Arc::new(master);
        let now = clock.now();
        let key_manager = KeyManager::new(
            Arc::clone(&master),
            settings.keys,
            settings.longest_token_ttl(),
        );
        // The master key must be the store's before anything is sealed with it:
        // its check value (written now on a new store), then every existing key.
        keys::check_master_key(store.as_ref(), &master).await?;
        Keyring::load(store.as_ref(), Arc::clone(&master), now).await?;
        let created = key_manager.ensure_current(store.as_ref(), now).await?;
        let keyring = Keyring::load(store.as_ref(), Arc::clone(&master), now).await?;
        let status_lists = StatusLists::default();
        status_lists
            .start_after_existing(store.as_ref())
            .await
            .map_err(StartError::Store)?;
        let request_keys = PeriodKeys::new(
            Arc::clone(&master),
            authn::CARRIED_KEY_PURPOSE,
            authn::carried_key_period(settings.interaction_ttl),
        );
        let successor_keys = PeriodKeys::new(
            Arc::clone(&master),
            grant::refresh_token::SUCCESSOR_KEY_PURPOSE,
            grant::refresh_token::SUCCESSOR_KEY_PERIOD,
        );
        let dpop_nonces = dpop::nonce_keys(Arc::clone(&master));
        let passkeys = passkeys::RelyingParty::for_issuer(&settings.issuer, "Valet")
            .inspect_err(|reason| tracing::warn!(%reason, "passkeys are unavailable"))
            .ok();
        let outbox = mail::OutboxSeal::new(&master).map_err(|error| {
            StartError::Settings(format!("cannot derive the mail outbox key: {error}"))
        })?;
        let server = Self {
            outbox,
            mail_queued: tokio::sync::Notify::new(),
            reset_throttle: LoginThrottle::new(settings.login_throttle),
            device_throttle: LoginThrottle::new(settings.login_throttle),
            passkeys,
            request_keys,
            dpop_nonces,
            successor_keys,
            master: Arc::clone(&master),
            hasher: PasswordHasher::with_cost(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
                settings.password_hash_queue,
                if settings.insecure_benchmark_password_hash {
                    users::HashCost::InsecureBenchmark
                } else {
                    users::HashCost::Standard
                },
            ),
            throttle: LoginThrottle::new(settings.login_throttle),
            status_allocator: StatusAllocator::default(),
            status_lists,
            status_streams: status::stream::StreamSlots::default(),
            audit: AuditLog::default(),
            metadata: endpoint::metadata::metadata(&settings),
            registration_throttle: throttle::RegistrationThrottle::new(
                settings.dynamic_clients.open_rate_per_hour,
            ),
            allowed_origins: cors::AllowedOrigins::new(settings.client_cache_ttl),
            upstreams: upstream::Upstreams::default(),
            authenticator: ClientAuthenticator::new(
                ClientCache::new(settings.client_cache_ttl),
                assertion_audiences(&settings.issuer),
                Arc::clone(&master),
            ),
            settings,
            store,
            keyring,
            key_manager,
            clock,
        };
        server.audit_scheduled_keys(created, now);
        Ok(server)
    }

    /// The same record as `valet key rotate` writes, plus `via`.
    fn audit_scheduled_keys(&self, created: Vec<keys::CreatedKey>, now: i64) {
        for key in created {
            self.audit(
                AuditEvent::new(AuditKind::KeyCreated, now)
                    .detail("kid", key.kid)
                    .detail("alg", key.alg.to_string())
                    .detail("signs_from", key.signs_from)
                    .detail("via", "schedule"),
            );
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The upstream providers' client and caches ("Sign in with …").
    pub fn upstreams(&self) -> &upstream::Upstreams {
        &self.upstreams
    }

    /// Lets `client_id`s be metadata document URLs, fetched with `fetcher`,
    /// if `client_id_metadata_documents` is on (the HTTP layer supplies the
    /// fetcher; see [`dynamic_clients::document`]).
    pub fn use_document_fetcher(
        &self,
        fetcher: Arc<dyn dynamic_clients::document::DocumentFetcher>,
    ) {
        if self.settings.dynamic_clients.metadata_documents {
            self.authenticator.clients().resolve_documents(Box::new(
                dynamic_clients::document::MetadataDocuments::new(
                    fetcher,
                    self.settings.dynamic_clients.clone(),
                    self.settings.access_token_max_ttl,
                ),
            ));
        }
    }

    /// Whether users can register and sign in with passkeys here.
    pub fn passkeys_available(&self) -> bool {
        self.passkeys.is_some()
    }

    pub fn metadata(&self) -> &ServerMetadata {
        &self.metadata
    }

    /// The JWKS document, serialized.
    pub fn jwks(&self) -> Arc<[u8]> {
        self.keyring.jwks()
    }

    pub fn key_manager(&self) -> &KeyManager {
        &self.key_manager
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The token endpoint; `authorization` is the request's `Authorization`
    /// header (client authentication, RFC 6749 §2.3.1).
    /// `dpop` holds every `DPoP` header value of the request (RFC 9449 §4.1).
    pub async fn token(
        &self,
        context: &RequestContext,
        authorization: Option<&[u8]>,
        dpop: &[&[u8]],
        form: &Form,
    ) -> Result<(GrantType, TokenResponse), OAuthError> {
        endpoint::token::token(self, context, authorization, dpop, form).await
    }

    /// The device authorization endpoint (RFC 8628 §3.1).
    pub async fn device_authorization(
        &self,
        context: &RequestContext,
        authorization: Option<&[u8]>,
        form: &Form,
    ) -> Result<endpoint::device_authorization::DeviceAuthorizationResponse, OAuthError> {
        endpoint::device_authorization::device_authorization(self, context, authorization, form)
            .await
    }

    /// The pushed authorization request endpoint (RFC 9126 §2).
    pub async fn push_authorization_request(
        &self,
        context: &RequestContext,
        authorization: Option<&[u8]>,
        form: &Form,
    ) -> Result<endpoint::par::PushedAuthorizationResponse, OAuthError> {
        endpoint::par::push(self, context, authorization, form).await
    }

    pub async fn introspect(
        &self,
        context: &RequestContext,
        authorization: Option<&[u8]>,
        form: &Form,
    ) -> Result<Map<String, Value>, OAuthError> {
        endpoint::introspection::introspect(self, context, authorization, form).await
    }

    pub async fn revoke(
        &self,
        context: &RequestContext,
        authorization: Option<&[u8]>,
        form: &Form,
    ) -> Result<(), OAuthError> {
        endpoint::revocation::revoke(self, context, authorization, form).await
    }

    /// `method` and `dpop` (every `DPoP` header value) are for DPoP-bound access
    /// tokens (RFC 9449 §7).
    pub async fn userinfo(
        &self,
        context: &RequestContext,
        authorization: Option<&[u8]>,
        method: &str,
        dpop: &[&[u8]],
    ) -> Result<endpoint::userinfo::UserInfoAnswer, endpoint::userinfo::UserInfoError> {
        endpoint::userinfo::userinfo(self, context, authorization, method, dpop).await
    }

    /// Whether a browser app at `origin` (an `Origin` header) may read the
    /// answers of the endpoints it calls with its tokens (see [`cors`]). A store
    /// failure while re-reading the origins answers no (and is logged).
    pub async fn allows_origin(&self, origin: &str) -> bool {
        let now = self.clock.now();
        match self
            .allowed_origins
            .allows(self.store.as_ref(), origin, now)
            .await
        {
            Ok(allowed) => allowed,
            Err(error) => {
                tracing::warn!(%error, "reading the clients' allowed origins failed");
                false
            }
        }
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Drops this node's cached copy of a client an admin service in this
    /// process changed or deleted, so the change holds here at once (other
    /// nodes see it within `client_cache_ttl`).
    pub fn forget_client(&self, client_id: &str) {
        self.authenticator.clients().invalidate(client_id);
    }

    /// The master key, for an admin service in the same process (it seals
    /// `client_secret_jwt` clients' secrets).
    pub fn master_key(&self) -> &MasterKey {
        &self.master
    }

    /// RFC 6749 §2.3: reads the client's credentials from the `Authorization`
    /// header and the form, and checks them.
    pub(crate) async fn authenticate_client(
        &self,
        context: &RequestContext,
        authorization: Option<&[u8]>,
        form: &Form,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let presented = ClientAuthentication::from_request(authorization, form);
        self.authenticator
            .authenticate(
                self.store.as_ref(),
                presented,
                context.address,
                &self.audit,
                context.now,
            )
            .await
    }

    /// A status list index for a token of `client_id`: its own (client
    /// credentials) or, with `grant_expires_at`, a user grant's. When the store
    /// refuses a block because the client was deleted, the client is dropped from
    /// this node's cache at once instead of after its lifetime.
    pub(crate) async fn allocate_status(
        &self,
        client_id: &str,
        grant_expires_at: Option<i64>,
        now: i64,
    ) -> Result<i64, OAuthError> {
        let store = self.store.as_ref();
        let allocated = match grant_expires_at {
            Some(expires_at) => {
                self.status_allocator
                    .allocate_for_grant(store, client_id, expires_at, now)
                    .await
            }
            None => self.status_allocator.allocate(store, client_id, now).await,
        };
        match allocated {
            Ok(idx) => Ok(idx),
            Err(AllocationError::Store(error)) => Err(error.into()),
            // Deleted while this node still had it cached: forget it, and fail as a
            // request from an unknown client would (RFC 6749 §5.2 `invalid_client`).
            Err(AllocationError::ClientGone) => {
                self.authenticator.clients().invalidate(client_id);
                Err(client_auth::unknown_client())
            }
        }
    }

    pub(crate) async fn live_access_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<Map<String, Value>>, OAuthError> {
        endpoint::introspection::live_access_token(self, token, now).await
    }

    /// Key rotation on schedule, key reload (picks up other nodes' and the CLI's
    /// changes), and purging what has expired. Run periodically on every node.
    pub async fn maintain(&self) -> Result<(), KeyError> {
        let now = self.clock.now();
        let created = self
            .key_manager
            .ensure_current(self.store.as_ref(), now)
            .await?;
        self.audit_scheduled_keys(created, now);
        self.key_manager.purge(self.store.as_ref(), now).await?;
        self.keyring.reload(self.store.as_ref(), now).await?;
        self.store.purge_revocations(now, PURGE_BATCH).await?;
        self.store.purge_sessions(now, PURGE_BATCH).await?;
        self.store.purge_grants(now, PURGE_BATCH).await?;
        self.store.purge_status(now, PURGE_BATCH).await?;
        self.store.purge_initial_tokens(now, PURGE_BATCH).await?;
        self.store
            .purge_mail(now.saturating_sub(mail::FINISHED_RETENTION), PURGE_BATCH)
            .await?;
        self.store
            .purge_audit_events(
                now.saturating_sub(self.settings.audit_retention),
                PURGE_BATCH,
            )
            .await?;
        Ok(())
    }

    /// Queues an audit event (see [`audit`]); never waits.
    pub fn audit(&self, event: AuditEvent) {
        self.audit.record(event);
    }

    /// Writes the queued audit events to the log and the store. Run every second,
    /// and once more at shutdown.
    pub async fn flush_audit(&self) -> Result<usize, store::StoreError> {
        self.audit.flush(self.store.as_ref()).await
    }

    /// The signed status list token of list `list` (`None` if out of range).
    pub async fn status_list(&self, list: i64) -> Result<Option<Arc<str>>, OAuthError> {
        self.status_lists
            .token(
                self.store.as_ref(),
                &self.settings,
                &self.keyring,
                list,
                self.clock.now(),
            )
            .await
    }

    /// Revocation notices for the events endpoint.
    pub fn status_events(&self) -> tokio::sync::broadcast::Receiver<status::StatusEvent> {
        self.status_lists.subscribe()
    }

    /// A push stream of revocation notices for a caller presenting
    /// `authorization`, if the settings admit it (see [`status::stream`]).
    pub async fn open_status_stream(
        &self,
        context: &RequestContext,
        authorization: Option<&[u8]>,
    ) -> Result<status::StatusStream, status::StreamRefusal> {
        status::stream::open(self, context, authorization).await
    }

    /// Push streams open now on this node.
    pub fn open_status_streams(&self) -> usize {
        self.status_streams.open()
    }

    /// Picks up revocations recorded by any node since the last call; returns
    /// whether there were any. Waits at most `wait` for a local revocation first.
    pub async fn poll_status_changes(
        &self,
        wait: std::time::Duration,
    ) -> Result<usize, OAuthError> {
        let _ = tokio::time::timeout(wait, self.status_lists.woken()).await;
        self.status_lists
            .poll(self.store.as_ref(), &self.settings.issuer)
            .await
    }

    /// URIs of the lists that may hold live tokens (the aggregation endpoint).
    pub async fn status_list_uris(&self) -> Result<Vec<String>, OAuthError> {
        let span = self.store.live_status_span(self.clock.now()).await?;
        Ok(match span {
            Some((low, high)) => (low / LIST_SIZE..=(high.saturating_sub(1)) / LIST_SIZE)
                .map(|list| list_uri(&self.settings.issuer, list))
                .collect(),
            None => Vec::new(),
        })
    }

    /// Reloads the keyring only: cheap, run often.
    pub async fn reload_keys(&self) -> Result<(), KeyError> {
        self.keyring
            .reload(self.store.as_ref(), self.clock.now())
            .await
    }
}
