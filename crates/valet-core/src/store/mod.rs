//! The storage traits. Backends live in their own crates (`valet-store-sqlite`,
//! `valet-store-postgres`) and all pass the shared suite in the
//! `valet-store-conformance` crate.
//!
//! Every method is a single transaction: when it returns `Ok`, the change is durable.

mod audit_record;
mod form_write;
mod model;
mod user_page;

use async_trait::async_trait;

pub use audit_record::{AuditEvent, AuditFilter, AuditKind, MAX_RECORDED_ID};
pub use form_write::{ConsentGiven, FormWrite, FormWritten, InteractionChange, SessionStart};
pub use model::{
    AuthorizationCode, Client, ClientOrigin, CodeFamily, CodeRedemption, Consent, Grant,
    InitialAccessToken, Interaction, JweChoice, KeyInsert, MailOutcome, OutboxMail, PasskeyRecord,
    RefreshFamily, RefreshToken, RevokedToken, Rotation, Session, SingleUse, SingleUseKind,
    StatusRevocation, StoredKey, TotpCredential, Upstream, UpstreamKind, UpstreamLink, User,
};
pub use user_page::UserPageQuery;

/// No access token lives longer than this (the configuration enforces it), so a
/// revocation record can go this long after the last moment a token was issued.
pub const MAX_ACCESS_TOKEN_TTL: i64 = 86_400;

/// Why a store call failed. Backends map their driver errors here; the message of
/// `Backend` goes to logs only, never to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with the same primary key already exists.
    #[error("a record with this key already exists")]
    Conflict,
    /// A stored record could not be decoded (a bug or a hand-edited database).
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Registered clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Inserts a new client; [`StoreError::Conflict`] if the `client_id` is taken.
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    async fn get_client(&self, client_id: &str) -> Result<Option<Client>, StoreError>;
    /// All clients, ordered by `created_at` then `client_id`.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// At most `limit` clients in the order of [`Self::list_clients`], those
    /// after the position `after` (`created_at`, `client_id`) when given. The
    /// SQL stores page in the database; this default pages the whole list.
    async fn list_clients_after(
        &self,
        after: Option<(i64, &str)>,
        limit: u32,
    ) -> Result<Vec<Client>, StoreError> {
        let clients = self.list_clients().await?;
        Ok(clients
            .into_iter()
            .filter(|c| after.is_none_or(|at| (c.created_at, c.client_id.as_str()) > at))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect())
    }
    /// Deletes a client and, in the same transaction, revokes every status list
    /// block reserved for it that is still valid at `now` (as
    /// [`StatusStore::revoke_status_blocks_of_client`] does). The client's row is
    /// locked first, so a block reservation or extension for it either commits
    /// before (and is revoked here) or fails after. Returns whether a client was
    /// deleted.
    async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError>;
    /// Replaces the secret hash of a confidential client; returns whether one matched
    /// (a public client never does: it cannot be given a secret this way). With
    /// `previous_until`, the replaced hash stays accepted until then (it becomes
    /// `previous_secret_hash`, dropping any older one); without, no previous
    /// secret is kept. `sealed_secret` replaces the sealed copy a
    /// `client_secret_jwt` client keeps (`None` for any other client).
    async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        previous_until: Option<i64>,
        updated_at: i64,
        sealed_secret: Option<&[u8]>,
    ) -> Result<bool, StoreError>;
    /// Replaces a client's settings with those of `client` (matched by
    /// `client_id`): name, redirect and post-logout URIs, scopes, audiences,
    /// access token TTL, consent skipping, refresh grace, ID token algorithm,
    /// introspection permission, keys (`jwks`, `jwks_uri`), token exchange
    /// audiences and `updated_at`. Its type, grant types, secrets
    /// and `created_at` stay as stored. Returns whether a client matched.
    async fn update_client(&self, client: &Client) -> Result<bool, StoreError>;
}

/// What dynamic client registration (RFC 7591, RFC 7592) keeps besides the
/// clients themselves.
#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// [`StoreError::Conflict`] if its id or hash is taken.
    async fn insert_initial_token(&self, token: &InitialAccessToken) -> Result<(), StoreError>;
    /// The token with this hash, if it works at `now` (not expired, uses left).
    async fn live_initial_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<InitialAccessToken>, StoreError>;
    /// Spends one use of the token if it works at `now`; among concurrent
    /// callers, on any number of nodes, no more succeed than it had uses left.
    async fn use_initial_token(&self, token_hash: &[u8], now: i64) -> Result<bool, StoreError>;
    /// All of them, expired or spent too (until purged), oldest first.
    async fn list_initial_tokens(&self) -> Result<Vec<InitialAccessToken>, StoreError>;
    async fn delete_initial_token(&self, token_id: &str) -> Result<bool, StoreError>;
    /// Deletes tokens that expired before `now`, at most `limit`.
    async fn purge_initial_tokens(&self, now: i64, limit: u32) -> Result<u64, StoreError>;
    /// Replaces a dynamically registered client's registration access token.
    async fn set_registration_token(
        &self,
        client_id: &str,
        token_hash: &[u8],
        updated_at: i64,
    ) -> Result<bool, StoreError>;
    /// Stores a client whose id is its metadata document's URL, or replaces
    /// the stored copy (every metadata field and `metadata_expires_at`; never a
    /// client of another origin, which is left as it is: returns false).
    async fn upsert_metadata_client(&self, client: &Client) -> Result<bool, StoreError>;
}

/// Signing keys, private parts sealed by the caller before they reach the store.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Inserts a key unless another key of the same `alg` already holds its
    /// `generation`: that is how concurrent rotations on several nodes agree on one
    /// winner.
    async fn insert_key(&self, key: &StoredKey) -> Result<KeyInsert, StoreError>;
    /// All keys, ordered by `alg` then `generation`.
    async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Sets `activates_at` of one key; returns whether a key matched.
    async fn set_key_activation(&self, kid: &str, activates_at: i64) -> Result<bool, StoreError>;
    /// Sets `publish_until` of one key, only if it is unset or later than the
    /// given time (a key's publication never gets longer once it is bounded).
    async fn set_key_publish_until(
        &self,
        kid: &str,
        publish_until: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes keys whose `publish_until` is before `now`; returns how many.
    async fn delete_unpublished_keys(&self, now: i64) -> Result<u64, StoreError>;
    /// The value sealed with the master key that proves a master key is the
    /// store's (written and checked by `keys::check_master_key`); `None` until
    /// one is written.
    async fn master_key_check(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes the check value unless one exists; returns whether this call wrote
    /// it. An existing value is never replaced.
    async fn insert_master_key_check(&self, sealed: &[u8]) -> Result<bool, StoreError>;
}

/// Revoked access tokens, kept until they would have expired anyway.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Records a revocation; recording the same `jti` twice is not an error.
    async fn insert_revocation(&self, revoked: &RevokedToken) -> Result<(), StoreError>;
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Deletes up to `limit` records whose token expired before `now`; returns how many.
    async fn purge_revocations(&self, now: i64, limit: u32) -> Result<u64, StoreError>;
}

/// People who sign in.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// [`StoreError::Conflict`] if the username, or the email (case-insensitively),
    /// is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError>;
    /// By exact username, or else by email compared case-insensitively.
    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError>;
    /// Ordered by `created_at` then `user_id`.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// At most `limit` users in the order of [`Self::list_users`], skipping
    /// `query.offset` of them, those after the position `query.after`
    /// (`created_at`, `user_id`) when given, and whose username or email
    /// contains `query.search` (ignoring case) when given. The SQL stores page
    /// and search in the database; this default filters the whole list.
    async fn list_users_page(&self, query: &UserPageQuery) -> Result<Vec<User>, StoreError> {
        let users = self.list_users().await?;
        Ok(users
            .into_iter()
            .filter(|u| query.admits(u))
            .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(query.limit).unwrap_or(usize::MAX))
            .collect())
    }
    /// How many users [`Self::list_users_page`] would find without `after`,
    /// `offset` and `limit`.
    async fn count_users(&self, search: Option<&str>) -> Result<u64, StoreError> {
        let query = UserPageQuery {
            search: search.map(str::to_owned),
            ..UserPageQuery::default()
        };
        let users = self.list_users().await?;
        Ok(users.iter().filter(|u| query.admits(u)).count() as u64)
    }
    async fn set_user_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces the password hash with a stronger one of the same password, only
    /// while it is still `expected`: a password changed since the sign-in that
    /// triggered the upgrade stays changed. Not a change of the user (no
    /// `updated_at`). `false` when the hash was no longer `expected`.
    async fn upgrade_password_hash(
        &self,
        user_id: &str,
        expected: &str,
        upgraded: &str,
    ) -> Result<bool, StoreError>;
    async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces a user's email, `email_verified`, names, `admin` and `updated_at` with
    /// those of `user` (matched by `user_id`); the username, password, state and
    /// `created_at` stay as stored. [`StoreError::Conflict`] if the email is
    /// another user's (case-insensitively). Returns whether a user matched.
    async fn update_user(&self, user: &User) -> Result<bool, StoreError>;
    /// Deletes the user with their sessions, consents and grants; the recorded
    /// access tokens of those grants are revoked first.
    async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError>;
    /// Records that login failures for the user before `at` no longer count
    /// (`valet user unlock`); a later unlock moves it forward, never back.
    /// Returns whether the user exists.
    async fn set_user_unlocked(&self, user_id: &str, at: i64) -> Result<bool, StoreError>;
    /// The last unlock of the user that `login` names (matched as
    /// [`Self::find_user_by_login`] does), if there is such a user and an unlock.
    async fn login_unlocked_at(&self, login: &str) -> Result<Option<i64>, StoreError>;
}

/// Passkeys users registered (WebAuthn credentials).
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// [`StoreError::Conflict`] if the credential id is registered already (to
    /// this user or another: WebAuthn §7.1 step 22).
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> Result<(), StoreError>;
    async fn get_passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError>;
    /// A user's passkeys, oldest first.
    async fn list_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError>;
    /// Records a use: the credential's new serialisation, counter and backup
    /// state, and `last_used_at`. Returns whether one matched.
    async fn record_passkey_use(&self, passkey: &PasskeyRecord) -> Result<bool, StoreError>;
    /// Deletes the user's passkey with this credential id (another user's is
    /// never matched); returns whether one was deleted.
    async fn delete_passkey(&self, user_id: &str, credential_id: &[u8])
    -> Result<bool, StoreError>;
}

/// Browser sessions, pending authorization requests and remembered consent.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    /// A session that has not expired at `now`, of a user who exists and is not
    /// disabled: one statement for what every request with a session cookie asks.
    async fn get_live_session(
        &self,
        session_hash: &[u8],
        now: i64,
    ) -> Result<Option<Session>, StoreError>;
    /// Deletes and returns it (logout).
    async fn delete_session(&self, session_hash: &[u8]) -> Result<Option<Session>, StoreError>;
    async fn delete_sessions_of_user(&self, user_id: &str) -> Result<u64, StoreError>;
    /// The user's sessions that have not expired at `now`, oldest first.
    async fn list_sessions_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<Session>, StoreError>;
    /// Deletes the user's session with public id `sid` (whether or not it has
    /// expired) and returns it; `None` if the user has no such session.
    async fn delete_session_of_user(
        &self,
        user_id: &str,
        sid: &str,
    ) -> Result<Option<Session>, StoreError>;
    /// Every client the user has allowed scopes to, by client id.
    async fn list_consents(&self, user_id: &str) -> Result<Vec<Consent>, StoreError>;

    /// The scopes the user has allowed the client (empty if none).
    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, StoreError>;
    /// Adds scopes to what the user allowed the client.
    async fn add_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<(), StoreError>;

    /// Deletes expired sessions and expired single-use records (interactions
    /// among them), at most `limit` of each, as
    /// [`SingleUseStore::purge_single_use`] does.
    async fn purge_sessions(&self, now: i64, limit: u32) -> Result<u64, StoreError>;
}

/// Grants and what descends from them: codes, refresh tokens, and the `jti`s of
/// their access tokens (so revoking a grant reaches its access tokens too).
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a new grant and its first code in one transaction.
    async fn insert_grant_with_code(
        &self,
        grant: &Grant,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError>;
    async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError>;
    /// The grant holding this status list index, if the index belongs to a grant
    /// (client credentials tokens have indices of their own, with no grant).
    async fn grant_by_status_idx(&self, status_idx: i64) -> Result<Option<Grant>, StoreError>;
    /// The user's live grants (not revoked, `now < expires_at`), oldest first
    /// (by `created_at`, then `grant_id`): what the admin interfaces list.
    async fn list_grants_of_user(&self, user_id: &str, now: i64) -> Result<Vec<Grant>, StoreError>;
    /// The client's live grants, in the same order.
    async fn list_grants_of_client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<Vec<Grant>, StoreError>;
    /// Reads a code without consuming it, with its grant and whether the grant's
    /// user may get tokens, in one statement: a code not yet expired at `now`, or
    /// one already consumed (whatever its age, so a replay is still recognised).
    async fn get_code_family(
        &self,
        code_hash: &[u8],
        now: i64,
    ) -> Result<Option<CodeFamily>, StoreError>;
    /// Consumes a code atomically: of N concurrent calls exactly one gets
    /// `Redeemed`. A code past `expires_at` is `Unknown` unless already consumed.
    async fn redeem_code(&self, code_hash: &[u8], now: i64) -> Result<CodeRedemption, StoreError>;
    /// [`Self::redeem_code`], and when this call redeems the code, what the
    /// token response issues from it in the same durable write (as
    /// [`Self::record_issued`] under the code's grant): a code is never spent
    /// without its tokens recorded, nor tokens recorded for a code not spent.
    async fn redeem_code_and_record(
        &self,
        code_hash: &[u8],
        now: i64,
        jti: &str,
        expires_at: i64,
        refresh: Option<&RefreshToken>,
    ) -> Result<CodeRedemption, StoreError>;
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError>;
    /// What one token response issued under a grant (the grant must exist), in
    /// one durable write: the access token's record and the refresh token issued
    /// with it, if any. Both are stored, or neither. If the grant is already
    /// revoked, the `jti` is revoked at once: a token minted while its grant was
    /// being revoked does not escape.
    async fn record_issued(
        &self,
        grant_id: &str,
        jti: &str,
        expires_at: i64,
        refresh: Option<&RefreshToken>,
    ) -> Result<(), StoreError>;
    /// Exchanges a live refresh token of a live grant for `successor` in one
    /// transaction: marks the presented one rotated (storing `sealed_successor`
    /// on it, when given: only a client with a grace window needs it) and inserts
    /// the successor. Of N concurrent calls exactly one gets
    /// `Rotated`; the others see `AlreadyRotated` only after the winner committed.
    /// Expired tokens are `Unknown`. With `access_token` (`jti`, `exp`), the
    /// successor's access token is recorded in the same transaction as the
    /// rotation, so no crash can leave a handed-out pair whose access token a
    /// revocation of the grant would miss.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &[u8],
        successor: &RefreshToken,
        sealed_successor: Option<&[u8]>,
        access_token: Option<(&str, i64)>,
        now: i64,
    ) -> Result<Rotation, StoreError>;
    /// The refresh token with this hash, whatever its state.
    async fn get_refresh_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<RefreshToken>, StoreError>;
    /// The refresh token with this hash and its grant, whatever their states,
    /// and whether the grant's user exists and is enabled, in one read; `None`
    /// if the token or its grant is not stored.
    async fn get_refresh_family(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<RefreshFamily>, StoreError>;
    /// Revokes a grant: marks it revoked, deletes its refresh tokens and unused
    /// codes, inserts a [`RevokedToken`] for each recorded access token that has
    /// not expired, and, if the grant has a `status_idx`, revokes that index in
    /// the status list until every access token of the grant has expired: the
    /// range's `expires_at` is the grant's `expires_at` plus
    /// [`MAX_ACCESS_TOKEN_TTL`] — all in one transaction. Returns whether a live grant matched.
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError>;
    /// The same for every live grant of a session / user / client; returns how many.
    async fn revoke_grants_of_session(&self, sid: &str, now: i64) -> Result<u64, StoreError>;
    async fn revoke_grants_of_user(&self, user_id: &str, now: i64) -> Result<u64, StoreError>;
    async fn revoke_grants_of_client(&self, client_id: &str, now: i64) -> Result<u64, StoreError>;
    /// Withdraws the user's consent to a client: deletes it and revokes every
    /// live grant of the user to that client (as [`GrantStore::revoke_grant`]
    /// does), in one transaction. Returns how many grants were revoked.
    async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError>;
    /// Deletes expired codes, refresh tokens, access token records and grants past
    /// their `expires_at`, at most `limit` rows of each kind.
    async fn purge_grants(&self, now: i64, limit: u32) -> Result<u64, StoreError>;
}

/// The token status list (draft-ietf-oauth-status-list): which indices are handed
/// out to whom, and which are revoked. Issuing a token writes nothing here: nodes
/// reserve blocks of indices per client in advance.
#[async_trait]
pub trait StatusStore: Send + Sync {
    /// Reserves the next `size` indices for `client_id` and returns the first. The
    /// reservation is durable and no two calls ever get overlapping blocks, on any
    /// node. `valid_until` is the last moment a token from the block may expire
    /// (so revoking "all of a client's tokens" only needs blocks still valid).
    /// `None`, with nothing reserved, when the client is not registered: checked
    /// in the same transaction, under a lock on the client's row, so no block can
    /// be reserved for a client once [`ClientStore::delete_client`] has returned
    /// (a node that still caches the client cannot mint an unrevoked index).
    async fn reserve_status_block(
        &self,
        client_id: &str,
        size: i64,
        valid_until: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Extends `valid_until` of the block starting at `start` (a node keeps using
    /// a block longer than planned); never shortens it. Returns `false`, changing
    /// nothing, when there is no such block or its client is no longer registered
    /// (checked like [`StatusStore::reserve_status_block`] does).
    async fn extend_status_block(&self, start: i64, valid_until: i64) -> Result<bool, StoreError>;
    /// Records `[start, end)` as revoked until `expires_at`.
    async fn revoke_status_range(
        &self,
        start: i64,
        end: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Revokes every block of the client whose `valid_until` is after `now`;
    /// returns how many blocks.
    async fn revoke_status_blocks_of_client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError>;
    /// Revoked ranges overlapping `[start, end)` that have not expired at `now`.
    async fn status_revocations_between(
        &self,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Vec<StatusRevocation>, StoreError>;
    /// Revocations recorded after `seq`, oldest first, at most `limit`.
    async fn status_revocations_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<StatusRevocation>, StoreError>;
    /// The highest `seq` recorded so far (0 when none).
    async fn last_status_seq(&self) -> Result<i64, StoreError>;
    /// The lowest and highest index of any block still valid at `now`, if any: the
    /// lists worth serving.
    async fn live_status_span(&self, now: i64) -> Result<Option<(i64, i64)>, StoreError>;
    /// Deletes expired revocations and blocks, at most `limit` of each.
    async fn purge_status(&self, now: i64, limit: u32) -> Result<u64, StoreError>;
}

/// Short-lived records that are used once: interactions and mail tokens now;
/// PAR handles, device codes, DPoP `jti`s and upstream state later. Each kind
/// is its own key space; keys are hashes, never the handle a client holds.
///
/// A record is *live* while not consumed and `now < expires_at`. A consumed
/// record stays (and keeps its key taken) until it expires and is purged, so a
/// replay is recognised for as long as the record could have been used.
#[async_trait]
pub trait SingleUseStore: Send + Sync {
    /// Inserts a live record; [`StoreError::Conflict`] if its kind and key are
    /// taken, also by a consumed or expired record not yet purged.
    async fn insert_single_use(
        &self,
        kind: SingleUseKind,
        key: &[u8],
        payload: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// The record, if live at `now`.
    async fn get_single_use(
        &self,
        kind: SingleUseKind,
        key: &[u8],
        now: i64,
    ) -> Result<Option<SingleUse>, StoreError>;
    /// Replaces the payload of a record not consumed yet; its expiry stays as
    /// inserted. Without a `now`, an expired record not yet purged still
    /// matches (the caller read it live moments before), and
    /// [`Self::get_single_use`] keeps hiding it. Returns whether one matched.
    async fn update_single_use(
        &self,
        kind: SingleUseKind,
        key: &[u8],
        payload: &str,
    ) -> Result<bool, StoreError>;
    /// Consumes the record if it is live at `now` and returns it, consumed.
    /// Among concurrent callers, on any number of nodes, exactly one gets it;
    /// the others, and every later caller, get `None`.
    async fn take_single_use(
        &self,
        kind: SingleUseKind,
        key: &[u8],
        now: i64,
    ) -> Result<Option<SingleUse>, StoreError>;
    /// Deletes records (consumed or not) that expired before `now`, at most
    /// `limit`, oldest first; returns how many.
    async fn purge_single_use(&self, now: i64, limit: u32) -> Result<u64, StoreError>;

    /// Stores an interaction under the hash of its id; `Conflict` if the id was
    /// used before (and not purged since).
    async fn insert_interaction(&self, interaction: &Interaction) -> Result<(), StoreError> {
        let key = interaction_key(&interaction.interaction_id);
        self.insert_single_use(
            SingleUseKind::Interaction,
            &key,
            &interaction.payload,
            interaction.expires_at,
        )
        .await
    }

    /// One that is neither completed nor expired at `now`.
    async fn get_interaction(
        &self,
        interaction_id: &str,
        now: i64,
    ) -> Result<Option<Interaction>, StoreError> {
        let key = interaction_key(interaction_id);
        let record = self
            .get_single_use(SingleUseKind::Interaction, &key, now)
            .await?;
        Ok(record.map(|record| Interaction {
            interaction_id: interaction_id.to_owned(),
            payload: record.payload,
            expires_at: record.expires_at,
        }))
    }

    /// Replaces the payload of an interaction not completed yet (`expires_at`
    /// stays as inserted); returns whether one matched.
    async fn update_interaction(&self, interaction: &Interaction) -> Result<bool, StoreError> {
        let key = interaction_key(&interaction.interaction_id);
        self.update_single_use(SingleUseKind::Interaction, &key, &interaction.payload)
            .await
    }

    /// Completes it; returns whether this call did (so a form can be completed
    /// only once, even under double submission). Whatever its expiry, as the
    /// caller read it live moments before.
    async fn delete_interaction(&self, interaction_id: &str) -> Result<bool, StoreError> {
        let key = interaction_key(interaction_id);
        Ok(self
            .take_single_use(SingleUseKind::Interaction, &key, i64::MIN)
            .await?
            .is_some())
    }
}

/// An interaction's key: the SHA-256 of its id, so the table holds no live id.
pub fn interaction_key(interaction_id: &str) -> [u8; 32] {
    valet_jose::sha256(interaction_id.as_bytes())
}

/// Mail waiting to be sent. A mail is *pending* until finished; a sender claims
/// pending mails that are due and not leased to another sender, and then
/// either finishes a mail or puts it back for a later attempt.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Stores a new pending mail; [`StoreError::Conflict`] if the id is taken.
    async fn enqueue_mail(&self, mail: &OutboxMail) -> Result<(), StoreError>;
    /// Claims up to `limit` pending mails with `next_attempt_at <= now` whose
    /// lease has run out (`leased_until <= now`), oldest due first: each is
    /// leased until `leased_until` and its `attempts` goes up by one. Among
    /// concurrent claimers, on any number of nodes, a mail goes to one only.
    async fn claim_mail(
        &self,
        now: i64,
        leased_until: i64,
        limit: u32,
    ) -> Result<Vec<OutboxMail>, StoreError>;
    /// Replaces the sealed content of a pending mail (a request becomes the
    /// message it asked for) and, with `token`, inserts that single-use record
    /// in the same transaction, so a link is sent only if its record is
    /// stored. Returns whether a pending mail matched (nothing is stored
    /// otherwise); [`StoreError::Conflict`] if the token's key is taken.
    async fn resolve_mail(
        &self,
        mail_id: &str,
        sealed: &[u8],
        token: Option<&SingleUse>,
    ) -> Result<bool, StoreError>;
    /// Finishes a pending mail with `outcome` at `now` and deletes its content.
    /// Returns whether a pending mail matched.
    async fn finish_mail(
        &self,
        mail_id: &str,
        outcome: MailOutcome,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Puts a claimed mail back, due at `next_attempt_at` and not leased.
    async fn retry_mail(&self, mail_id: &str, next_attempt_at: i64) -> Result<bool, StoreError>;
    async fn get_mail(&self, mail_id: &str) -> Result<Option<OutboxMail>, StoreError>;
    /// Every mail, pending or finished, oldest first, at most `limit`.
    async fn list_mail(&self, limit: u32) -> Result<Vec<OutboxMail>, StoreError>;
    /// Deletes up to `limit` mails finished before `before`, oldest first.
    async fn purge_mail(&self, before: i64, limit: u32) -> Result<u64, StoreError>;
}

/// The audit trail, written in batches by the `audit` module's queue.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `events` in one transaction, in order.
    async fn append_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// The records matching every given part of `filter`, newest first (by time,
    /// then by order of appending), at most `filter.limit`.
    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError>;
    /// Deletes up to `limit` of the oldest records from before `before`.
    async fn purge_audit_events(&self, before: i64, limit: u32) -> Result<u64, StoreError>;
}

/// Second factors: TOTP credentials and recovery codes (the second-factor module keeps the rules).
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// The user's TOTP credential, confirmed or pending.
    async fn get_totp(&self, user_id: &str) -> Result<Option<TotpCredential>, StoreError>;
    /// Stores a pending credential, replacing a pending one; `false` (nothing
    /// written) if the user has a confirmed credential.
    async fn begin_totp(&self, credential: &TotpCredential) -> Result<bool, StoreError>;
    /// Confirms the pending credential whose sealed secret is `sealed_secret`,
    /// with `step` as its last accepted step, and makes `recovery_hashes` the
    /// user's recovery codes, in one transaction; `false` if that pending
    /// credential is gone (confirmed or replaced meanwhile).
    async fn confirm_totp(
        &self,
        user_id: &str,
        sealed_secret: &[u8],
        step: i64,
        recovery_hashes: &[Vec<u8>],
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Records `step` as the last accepted of the confirmed credential if it is
    /// later than the last one: `false` means the code was used already.
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;
    /// Marks an unused recovery code used: `true` once per code.
    async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &[u8],
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces the user's recovery codes (one transaction); `false` (nothing
    /// written) without a confirmed TOTP credential.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[Vec<u8>],
        now: i64,
    ) -> Result<bool, StoreError>;
    async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StoreError>;
    /// Deletes the user's TOTP credential and recovery codes; `false` if there
    /// were none.
    async fn delete_second_factors(&self, user_id: &str) -> Result<bool, StoreError>;
}

/// Upstream providers and the links of local users to their identities there.
#[async_trait]
pub trait UpstreamStore: Send + Sync {
    /// `Conflict` if the name is taken.
    async fn insert_upstream(&self, upstream: &Upstream) -> Result<(), StoreError>;
    async fn get_upstream(&self, name: &str) -> Result<Option<Upstream>, StoreError>;
    /// Every upstream, by name.
    async fn list_upstreams(&self) -> Result<Vec<Upstream>, StoreError>;
    /// Deletes the upstream and every link to it; `false` if there was none.
    async fn delete_upstream(&self, name: &str) -> Result<bool, StoreError>;
    /// `Conflict` if the (upstream, subject) identity is linked already.
    async fn insert_upstream_link(&self, link: &UpstreamLink) -> Result<(), StoreError>;
    async fn get_upstream_link(
        &self,
        upstream: &str,
        subject: &str,
    ) -> Result<Option<UpstreamLink>, StoreError>;
    /// The user's links, oldest first.
    async fn list_upstream_links(&self, user_id: &str) -> Result<Vec<UpstreamLink>, StoreError>;
    /// `false` if the user had no such link.
    async fn delete_upstream_link(
        &self,
        user_id: &str,
        upstream: &str,
        subject: &str,
    ) -> Result<bool, StoreError>;
}

/// The sign-in forms' writes.
#[async_trait]
pub trait FormStore: Send + Sync {
    /// Makes `write` in one transaction, in the order of its fields: nothing
    /// if its interaction change is refused, everything but the grant and its
    /// code if the grant's user is disabled or gone. A session, interaction,
    /// grant or code whose key is taken fails with [`StoreError::Conflict`]
    /// and writes nothing.
    async fn write_form(&self, write: &FormWrite) -> Result<FormWritten, StoreError>;
}

/// Everything Valet keeps. Implemented for any type with all the parts.
#[async_trait]
pub trait Store:
    ClientStore
    + KeyStore
    + RevocationStore
    + UserStore
    + SessionStore
    + GrantStore
    + StatusStore
    + AuditStore
    + SingleUseStore
    + OutboxStore
    + MfaStore
    + PasskeyStore
    + RegistrationStore
    + UpstreamStore
    + FormStore
{
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
}
