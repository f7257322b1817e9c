//! The shared store test suite. Every backend crate runs [`run_all`] from its
//! integration tests; a backend is correct when the whole suite passes.
//!
//! Each check panics on failure. Ids, algorithm names and timestamps are unique per
//! call, so the suite can run again and again against a persistent test database,
//! one run at a time. The global deletions
//! ([`valet_core::store::KeyStore::delete_unpublished_keys`],
//! [`valet_core::store::RevocationStore::purge_revocations`],
//! [`valet_core::store::SessionStore::purge_sessions`], [`valet_core::store::GrantStore::purge_grants`],
//! [`valet_core::store::StatusStore::purge_status`] and [`valet_core::store::AuditStore::purge_audit_events`])
//! and the global
//! [`valet_core::store::StatusStore::live_status_span`] are checked on a private timeline
//! (microseconds since the epoch, used as if they were seconds) far ahead of any
//! real timestamp; to make their counts exact, the checks first delete every record
//! that expired before their window, so never point the suite at a database whose
//! data matters. The status list checks expect no other writer of revocations
//! while they run.
//!
//! Beyond the trait docs, the suite pins down what the backends agree on:
//! - emails collide and match ignoring ASCII case;
//! - a grant is live while not revoked and `now < expires_at`; codes and refresh
//!   tokens of a dead grant are never redeemed or rotated;
//! - revocation deletes refresh tokens and unconsumed codes, keeps consumed codes
//!   (a replay is still `Replayed`), and an access token recorded under an already
//!   revoked grant is revoked at once;
//! - `delete_user` and `delete_client` cascade to grants and revoke their recorded
//!   access tokens and, as `revoke_grant` does, their status indices;
//! - status index ranges are half-open, `[start, end)`; a revocation is in force
//!   while `now < expires_at` and a block is live while `now < valid_until`;
//!   reading revocations returns them oldest first; a block of fewer than one
//!   index or an empty range is refused;
//! - revoking a grant records no status range once all its access tokens have
//!   expired (`expires_at + MAX_ACCESS_TOKEN_TTL <= now`), as no jti is recorded
//!   for an expired access token;
//! - `purge_status` keeps the newest revocation (so `last_status_seq` never goes
//!   back) and an expired block while a revocation in force overlaps it.

// Test code: a check reads as one scenario, from setup to the last assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use valet_jose::Algorithm;
use valet_protocol::token::{GrantType, TokenEndpointAuthMethod};

use valet_core::store::{
    AuthorizationCode, Client, CodeFamily, CodeRedemption, Grant, Interaction, KeyInsert,
    MAX_ACCESS_TOKEN_TTL, PasskeyRecord, RefreshFamily, RefreshToken, RevokedToken, Rotation,
    Session, SingleUse, SingleUseKind, StatusRevocation, Store, StoreError, StoredKey, User,
};

mod audit;
mod clients;
mod concurrency;
mod forms;
mod grants;
mod keys;
mod mfa;
mod outbox;
mod passkeys;
mod registration;
mod revocations;
mod sessions;
mod single_use;
mod status;
mod upstreams;
mod users;

pub use audit::*;
pub use clients::*;
pub use concurrency::*;
pub use forms::*;
pub use grants::*;
pub use keys::*;
pub use mfa::*;
pub use outbox::*;
pub use passkeys::*;
pub use registration::*;
pub use revocations::*;
pub use sessions::*;
pub use single_use::*;
pub use status::*;
pub use upstreams::*;
pub use users::*;

/// Runs every check of the suite, one after the other.
pub async fn run_all(store: &dyn Store) {
    ping(store).await;

    clients_roundtrip(store).await;
    clients_public_roundtrip(store).await;
    clients_duplicate_conflict(store).await;
    clients_list_order(store).await;
    clients_list_after(store).await;
    clients_delete(store).await;
    clients_set_secret(store).await;
    clients_update(store).await;
    registration_initial_tokens(store).await;
    registration_tokens(store).await;
    registration_metadata_clients(store).await;

    keys_insert_and_list(store).await;
    keys_list_order(store).await;
    keys_generation_taken(store).await;
    keys_same_generation_other_alg(store).await;
    keys_duplicate_kid(store).await;
    keys_set_activation(store).await;
    keys_publish_until_only_shortens(store).await;
    keys_delete_unpublished(store).await;
    keys_master_key_check(store).await;

    revocations_insert_and_check(store).await;
    revocations_insert_is_idempotent(store).await;
    revocations_purge(store).await;

    users_roundtrip(store).await;
    users_unique(store).await;
    users_find_by_login(store).await;
    users_list_order(store).await;
    users_page_and_search(store).await;
    users_set_password_and_disabled(store).await;
    users_upgrade_password_hash_only_from_the_expected_one(store).await;
    users_delete_cascades(store).await;
    users_unlock(store).await;
    users_update(store).await;

    sessions_roundtrip_and_expiry(store).await;
    sessions_delete(store).await;
    interactions_lifecycle(store).await;
    consent_union(store).await;
    sessions_listed_and_ended_one_by_one(store).await;
    consent_revoked_with_its_grants(store).await;
    sessions_purge(store).await;

    forms_sign_in_once(store).await;
    forms_update_interaction(store).await;
    forms_consent_issues_once(store).await;
    forms_conflict_writes_nothing(store).await;

    single_use_lifecycle(store).await;
    single_use_expired_not_taken(store).await;
    single_use_purge(store).await;

    outbox_lifecycle(store).await;
    mfa_totp_enrolment(store).await;
    mfa_codes_once(store).await;
    passkeys_roundtrip(store).await;
    passkeys_delete(store).await;
    upstreams_and_links(store).await;

    grants_insert_and_get(store).await;
    codes_redeem_once(store).await;
    codes_redeemed_with_their_tokens(store).await;
    codes_expiry_and_dead_grants(store).await;
    refresh_insert_and_get(store).await;
    refresh_recorded_with_access_token(store).await;
    code_family(store).await;
    refresh_family(store).await;
    refresh_rotate(store).await;
    refresh_rotate_unknown(store).await;
    grants_revoke(store).await;
    grants_revoke_by_owner(store).await;
    grants_listed_by_owner(store).await;
    clients_delete_cascades(store).await;
    grants_purge(store).await;

    status_blocks_reserve(store).await;
    status_ranges_revoke_and_read(store).await;
    status_blocks_of_client(store).await;
    status_blocks_of_a_deleted_client(store).await;
    status_live_span(store).await;
    status_allocator_reserves_ahead(store).await;
    status_allocator_extends_for_grants(store).await;
    status_allocator_after_client_deletion(store).await;
    status_revoke_grant(store).await;
    status_revoke_grants_by_owner(store).await;
    status_revoke_on_delete(store).await;
    status_purge(store).await;

    audit_append_and_filter(store).await;
    audit_append_many(store).await;
    audit_filter_by_actor_and_until(store).await;
    audit_purge(store).await;

    concurrent_key_generation(store).await;
    concurrent_client_insert(store).await;
    concurrent_revocation_insert(store).await;
    concurrent_code_redemption(store).await;
    concurrent_refresh_rotation(store).await;
    concurrent_rotations_with_failures(store).await;
    concurrent_use_and_revocation(store).await;
    concurrent_consent(store).await;
    concurrent_form_completion(store).await;
    concurrent_status_reservations(store).await;
    concurrent_reservations_and_client_deletion(store).await;
    concurrent_status_revocations_polled(store).await;
    concurrent_single_use_take(store).await;
    concurrent_mail_claims(store).await;
    concurrent_initial_token_use(store).await;
}

/// `ping` succeeds on a working store.
pub async fn ping(store: &dyn Store) {
    store.ping().await.expect("ping");
}

// ---------------------------------------------------------------------------------
// Helpers

/// A suffix no other call (in this process or, by the clock, any other) returns.
fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{count}", std::process::id())
}

/// How far apart two "now"s of the timeline are at least: more than any time a
/// check puts its records ahead of its now (the furthest is a status block's
/// `valid_until`, `BLOCK_WINDOW + MAX_ACCESS_TOKEN_TTL` ahead, from the allocator
/// check), so no check's records reach into a later check's purge window.
const TIMELINE_SPACING: u64 = 1_000_000;
const _: () = assert!(
    TIMELINE_SPACING as i64 > valet_core::status::BLOCK_WINDOW + MAX_ACCESS_TOKEN_TTL + 1_000
);

/// A "now" on the suite's private timeline: microseconds since the epoch, far ahead
/// of any real Unix-seconds timestamp and distinct per call, so the windows of two
/// runs do not overlap.
fn timeline() -> i64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let micros = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_micros(),
    )
    .expect("micros fit u64");
    // Strictly increasing within this process, at least TIMELINE_SPACING apart.
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = micros.max(last + TIMELINE_SPACING);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return i64::try_from(next).expect("micros fit i64"),
            Err(actual) => last = actual,
        }
    }
}

/// The "now" of the tests that do not purge: any fixed time works, since their ids
/// are unique.
const NOW: i64 = 1_800_000_000;

/// A client and a user that sessions, consents and grants can hang on.
struct Party {
    client: Client,
    user: User,
}

/// Inserts a new client and user.
async fn party(store: &dyn Store, run: &str, label: &str) -> Party {
    let client = client(&format!("conf-{run}-{label}-client"), 1);
    store.insert_client(&client).await.expect("insert client");
    party_with_client(store, run, label, &client).await
}

/// Two users and two clients, as every pairing: `[u1_c1, u1_c2, u2_c1, u2_c2]`.
async fn owners(store: &dyn Store, run: &str) -> [Party; 4] {
    let u1_c1 = party(store, run, "u1").await;
    let c2 = client(&format!("conf-{run}-c2"), 1);
    store.insert_client(&c2).await.expect("insert client");
    let u1_c2 = Party {
        client: c2.clone(),
        user: u1_c1.user.clone(),
    };
    let u2_c1 = party_with_client(store, run, "u2", &u1_c1.client).await;
    let u2_c2 = Party {
        client: c2,
        user: u2_c1.user.clone(),
    };
    [u1_c1, u1_c2, u2_c1, u2_c2]
}

/// Inserts a new user of an existing client.
async fn party_with_client(store: &dyn Store, run: &str, label: &str, client: &Client) -> Party {
    let user = user(&format!("conf-{run}-{label}-user"), 1);
    store.insert_user(&user).await.expect("insert user");
    Party {
        client: client.clone(),
        user,
    }
}

fn user(user_id: &str, created_at: i64) -> User {
    User {
        user_id: user_id.to_owned(),
        username: format!("{user_id}-name"),
        email: Some(format!("{user_id}@Example.COM")),
        email_verified: true,
        name: Some("Zoë \"Q\" User".to_owned()),
        given_name: Some("Zoë".to_owned()),
        family_name: Some("User".to_owned()),
        password_hash: Some(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        ),
        disabled: false,
        created_at,
        updated_at: created_at,
        admin: false,
    }
}

/// Bytes standing in for a SHA-256: unique per run and label, not valid UTF-8.
fn hash(run: &str, label: &str) -> Vec<u8> {
    let mut bytes = vec![0x00, 0xff];
    bytes.extend_from_slice(format!("{run}-{label}").as_bytes());
    bytes
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|&item| item.to_owned()).collect()
}

fn session_of(party: &Party, session_hash: &[u8], expires_at: i64) -> Session {
    Session {
        session_hash: session_hash.to_vec(),
        sid: session_hash.iter().fold(String::from("sid-"), |sid, byte| {
            sid + &format!("{byte:02x}")
        }),
        user_id: party.user.user_id.clone(),
        auth_time: NOW - 60,
        amr: strings(&["pwd"]),
        created_at: NOW - 60,
        expires_at,
    }
}

fn grant_of(party: &Party, grant_id: &str, sid: Option<&str>, expires_at: i64) -> Grant {
    Grant {
        grant_id: grant_id.to_owned(),
        client_id: party.client.client_id.clone(),
        user_id: party.user.user_id.clone(),
        scope: strings(&["openid", "profile"]),
        sid: sid.map(str::to_owned),
        auth_time: NOW - 30,
        amr: strings(&["pwd"]),
        created_at: NOW - 10,
        expires_at,
        revoked_at: None,
        status_idx: None,
        resources: vec![],
    }
}

fn code_of(grant: &Grant, code_hash: Vec<u8>, expires_at: i64) -> AuthorizationCode {
    AuthorizationCode {
        code_hash,
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: "https://app.example/cb?x=\"1\"&y=✓".to_owned(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        scope: grant.scope.clone(),
        resources: strings(&["https://api.example/"]),
        created_at: NOW - 5,
        expires_at,
        consumed_at: None,
        // Stored and read back like every other member (RFC 9449 §10 `dpop_jkt`).
        dpop_jkt: Some(DPOP_JKT.to_owned()),
    }
}

fn refresh(grant: &Grant, token_hash: Vec<u8>, expires_at: i64) -> RefreshToken {
    RefreshToken {
        token_hash,
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        scope: grant.scope.clone(),
        created_at: NOW - 5,
        expires_at,
        rotated_at: None,
        sealed_successor: None,
        // RFC 9449 §5: the key a refresh token is bound to survives the round trip.
        dpop_jkt: Some(DPOP_JKT.to_owned()),
    }
}

/// An RFC 7638 thumbprint (RFC 9449 §6.1's example).
const DPOP_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

/// Inserts a grant live for a day from [`NOW`], with its code live for a minute.
async fn issue(
    store: &dyn Store,
    party: &Party,
    run: &str,
    label: &str,
    sid: Option<&str>,
) -> (Grant, AuthorizationCode) {
    let grant = grant_of(party, &format!("conf-{run}-{label}"), sid, NOW + 86_400);
    let code = code_of(&grant, hash(run, &format!("{label}-code")), NOW + 60);
    store
        .insert_grant_with_code(&grant, &code)
        .await
        .expect("insert grant with code");
    (grant, code)
}

/// Inserts a grant with a code of its own, live for a minute from [`NOW`].
async fn insert_grant(store: &dyn Store, grant: &Grant, run: &str) {
    let code = code_of(
        grant,
        hash(run, &format!("{}-code", grant.grant_id)),
        NOW + 60,
    );
    store
        .insert_grant_with_code(grant, &code)
        .await
        .expect("insert grant with code");
}

/// Reserves a block of status list indices at [`NOW`], registering the client
/// first if it is not (blocks are only for registered clients); returns its
/// first index.
async fn reserve(store: &dyn Store, client_id: &str, size: i64, valid_until: i64) -> i64 {
    ensure_client(store, client_id).await;
    store
        .reserve_status_block(client_id, size, valid_until, NOW)
        .await
        .expect("reserve status block")
        .expect("the client is registered")
}

/// Registers a client with this id unless one is.
async fn ensure_client(store: &dyn Store, client_id: &str) {
    match store.insert_client(&client(client_id, NOW)).await {
        Ok(()) | Err(StoreError::Conflict) => {}
        Err(error) => panic!("insert client: {error}"),
    }
}

/// Panics unless the blocks `(start, size)` are pairwise disjoint.
fn assert_disjoint(blocks: &[(i64, i64)]) {
    let mut sorted = blocks.to_vec();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        let ((start, size), (next, _)) = (pair[0], pair[1]);
        assert!(
            size > 0 && start + size <= next,
            "blocks overlap: {sorted:?}"
        );
    }
}

/// Every revocation recorded after `seq`, oldest first.
async fn revocations_since(store: &dyn Store, seq: i64) -> Vec<StatusRevocation> {
    let mut all: Vec<StatusRevocation> = Vec::new();
    loop {
        let cursor = all.last().map_or(seq, |last| last.seq);
        let page = store
            .status_revocations_after(cursor, 1_000)
            .await
            .expect("revocations after");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// `(start, end, expires_at, revoked_at)` of each revocation, in order.
fn as_ranges(revocations: &[StatusRevocation]) -> Vec<(i64, i64, i64, i64)> {
    revocations
        .iter()
        .map(|r| (r.start, r.end, r.expires_at, r.revoked_at))
        .collect()
}

/// The revocations recorded after `cursor`, as [`as_ranges`] sorted by `start`;
/// moves `cursor` past them.
async fn new_ranges(store: &dyn Store, cursor: &mut i64) -> Vec<(i64, i64, i64, i64)> {
    let recorded = revocations_since(store, *cursor).await;
    if let Some(last) = recorded.last() {
        *cursor = last.seq;
    }
    let mut ranges = as_ranges(&recorded);
    ranges.sort_unstable();
    ranges
}

/// Returns `Pending` once, so that the other futures of a [`join_all`] get polled.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

fn client(client_id: &str, created_at: i64) -> Client {
    Client {
        client_id: client_id.to_owned(),
        name: format!("Client {client_id}"),
        token_endpoint_auth_methods: vec![TokenEndpointAuthMethod::ClientSecretBasic],
        secret_hash: Some(vec![0x5a; 32]),
        redirect_uris: vec!["https://app.example/cb".to_owned()],
        post_logout_redirect_uris: vec![],
        allowed_origins: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".to_owned()],
        audiences: vec!["https://api.example/".to_owned()],
        access_token_ttl: Some(300),
        skip_consent: false,
        require_mfa: false,
        require_pushed_authorization_requests: false,
        refresh_grace_seconds: 0,
        id_token_signed_response_alg: None,
        created_at,
        updated_at: created_at,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        introspect_any: false,
        dpop_bound_access_tokens: false,
        jwks: None,
        jwks_uri: None,
        token_exchange_audiences: Vec::new(),
        registration_token_hash: None,
        metadata_expires_at: None,
        sealed_secret: None,
        id_token_encryption: None,
        userinfo_signed_response_alg: None,
        userinfo_encryption: None,
    }
}

fn key(kid: &str, alg: Algorithm, generation: i64) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        alg,
        generation,
        public_jwk: format!(r#"{{"kty":"EC","kid":"{kid}"}}"#),
        sealed_private_key: vec![0x42; 48],
        created_at: 1_700_000_000 + generation,
        activates_at: Some(1_700_000_060 + generation),
        publish_until: None,
    }
}

fn revocation(jti: &str, expires_at: i64) -> RevokedToken {
    RevokedToken {
        jti: jti.to_owned(),
        client_id: "conf-client".to_owned(),
        expires_at,
        revoked_at: expires_at - 600,
    }
}

/// The stored keys of the given algorithms, in `list_keys` order.
/// The keys of one check, `conf-{run}-…`, in `list_keys` order.
async fn keys_of(store: &dyn Store, run: &str) -> Vec<StoredKey> {
    let prefix = format!("conf-{run}-");
    store
        .list_keys()
        .await
        .expect("list keys")
        .into_iter()
        .filter(|key| key.kid.starts_with(&prefix))
        .collect()
}

/// A first generation no earlier check used, with room for 16 after it: the
/// suite can run again on one database although only two algorithms exist.
fn unique_generation() -> i64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as i64;
    let count = COUNTER.fetch_add(1, Ordering::Relaxed) as i64;
    micros * 1024 + (count % 64) * 16
}

async fn still_revoked(store: &dyn Store, records: &[RevokedToken]) -> usize {
    let mut count = 0;
    for record in records {
        if store.is_revoked(&record.jti).await.expect("is_revoked") {
            count += 1;
        }
    }
    count
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Polls all futures concurrently on the current task and returns their outputs in
/// order. Enough to put concurrent statements on several pooled connections at once,
/// without `tokio::spawn` (which would need `'static` futures).
async fn join_all<'a, T>(futures: Vec<BoxFuture<'a, T>>) -> Vec<T> {
    let mut pending: Vec<Option<BoxFuture<'a, T>>> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut all_done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(outputs.drain(..).map(|output| output.unwrap()).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}
